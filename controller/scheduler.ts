/**
 * One scheduler process: wires the database, the API client and queue, the elector,
 * the reconciler and the HTTP surface, and takes them down again in the order the
 * contract asks (CONTRACT.md § 1): stop taking work, abort API calls, let an open
 * transaction finish, release the lease, close the server and the database.
 */
import { type FSWatcher, readFileSync, watch } from "node:fs";
import type { Server } from "node:http";
import path from "node:path";
import { createAdminRouter } from "./admin-api.js";
import { ApiQueue } from "./api-queue.js";
import { type Clock, scaledClock, systemClock } from "./clock.js";
import {
  type CompetitionResource,
  type CompetitionWatcher,
  startCompetitionWatcher,
} from "./competition-resources.js";
import { type CompetitionKey, type Config, loadConfig, redactUrl } from "./config.js";
import { connect, migrate, ping, type Sql } from "./database.js";
import { createNoElector, type Elector } from "./elector.js";
import { createKubernetesElector } from "./elector-kubernetes.js";
import { createPostgresElector } from "./elector-postgres.js";
import { type EmbeddedDatabase, startEmbeddedDatabase } from "./embedded-database.js";
import { backoffDelay, SchedulerError, toSchedulerError } from "./errors.js";
import { FootballApiClient } from "./football-api.js";
import { closeServer, createApp, listen } from "./http-server.js";
import type { Logger } from "./logger.js";
import { apiRequestLabels, createMetrics, type Metrics } from "./metrics.js";
import { MATCH_STATUSES, type MatchStatus } from "./plan.js";
import * as q from "./queries.js";
import { Reconciler } from "./reconciler.js";
import { type Simulator, startSimulator } from "./simulator/index.js";
import { VERSION } from "./version.js";

/** Liveness bound: a leader whose loops made no progress for this long is stuck. */
const STUCK_AFTER_MS = 5 * 60_000;
/** Past twice that, the process asks to be restarted (a supervisor without probes, e.g. Railway). */
const WATCHDOG_AFTER_MS = 2 * STUCK_AFTER_MS;
const DEMO_API_KEY = "demo-key-not-secret";

export function createClock(config: Config): Clock {
  if (config.clock.speed === 1 && !config.clock.start) return systemClock;
  return scaledClock(
    config.clock.start ?? new Date(),
    config.clock.speed,
    config.clock.realStart ?? Date.now(),
  );
}

export class SchedulerProcess {
  readonly metrics: Metrics;
  private readonly startedAt = Date.now();
  private phase: "starting" | "started" | "stopping" | "stopped" = "starting";
  private sql: Sql | undefined;
  private embedded: EmbeddedDatabase | undefined;
  private simulator: Simulator | undefined;
  private server: Server | undefined;
  private elector: Elector | undefined;
  private reconciler: Reconciler | undefined;
  private client: FootballApiClient | undefined;
  private queue: ApiQueue | undefined;
  private migrated = false;
  private runAbort: AbortController | undefined;
  private running: Promise<void> | undefined;
  private configWatcher: FSWatcher | undefined;
  private competitionWatcher: CompetitionWatcher | undefined;
  private competitionResources: CompetitionResource[] = [];
  private statusWriter: NodeJS.Timeout | undefined;
  private readonly competitionSources = new Map<string, CompetitionKey[]>();
  private stopping: Promise<void> | undefined;
  private readonly startAbort = new AbortController();
  private watchdog: NodeJS.Timeout | undefined;
  /** Called when the leader's loops are stuck past the watchdog bound (main.ts restarts). */
  onStuck: ((reason: string) => void) | undefined;

  constructor(
    private config: Config,
    private readonly logger: Logger,
    readonly clock: Clock = createClock(config),
  ) {
    this.metrics = createMetrics();
    this.competitionSources.set("config", config.competitions);
  }

  get httpAddress(): { port: number; host: string } | undefined {
    const address = this.server?.address();
    return address && typeof address === "object" ? { port: address.port, host: address.address } : undefined;
  }

  /** Start everything. Throws SchedulerError for what a user must fix (locked DATA_DIR, DB ahead of code). */
  async start(): Promise<void> {
    const { config, logger } = this;
    if (config.demo) {
      logger.warn(
        "DEMO MODE: no FOOTBALL_API_KEY set, so the bundled API-Football simulator serves simulated fixtures and results. Never point demo mode at a real backend.",
      );
    }
    // HTTP first, so probes get answers (not connection refused) while the database comes up.
    this.server = await listen(this.createHttpApp(), config.http.port, config.http.host);
    logger.info({ address: this.httpAddress }, "http server listening");

    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      this.embedded = await startEmbeddedDatabase(config.dataDir);
      databaseUrl = this.embedded.url;
      logger.info({ dataDir: config.dataDir }, "embedded PostgreSQL (PGlite) started");
    }
    const election = config.election;
    this.sql = connect({
      url: databaseUrl,
      max: this.embedded ? 1 : 5,
      applicationName: `backend-scheduler:${election.identity}`.slice(0, 63),
      idleInTransactionTimeoutMs: Math.max(1000, Math.floor(election.leaseDurationMs / 3)),
      lockTimeoutMs: Math.max(1000, Math.floor(election.leaseDurationMs / 3)),
      logger,
    });
    await this.migrateWithRetry(databaseUrl);
    if (this.phase !== "starting") return;

    const apiUrl = await this.apiUrl();
    const apiKey = config.api.key ?? DEMO_API_KEY;
    this.client = new FootballApiClient({
      baseUrl: apiUrl,
      apiKey,
      timeoutMs: config.api.timeoutMs,
      maxRetries: config.api.maxRetries,
      logger,
      clock: this.clock,
      onRequest: (e) => {
        const labels = apiRequestLabels(e.endpoint, e.outcome);
        this.metrics.apiRequests.inc(labels);
        this.metrics.apiRequestDuration.observe({ endpoint: labels.endpoint }, e.durationMs / 1000);
        const quota = this.client?.quota;
        if (quota?.dayRemaining != null)
          this.metrics.apiQuotaRemaining.set({ window: "day" }, quota.dayRemaining);
        if (quota?.minuteRemaining != null)
          this.metrics.apiQuotaRemaining.set({ window: "minute" }, quota.minuteRemaining);
        if (quota?.dayLimit != null) this.metrics.apiQuotaLimit.set({ window: "day" }, quota.dayLimit);
        if (quota?.minuteLimit != null)
          this.metrics.apiQuotaLimit.set({ window: "minute" }, quota.minuteLimit);
      },
    });
    const today = this.clock.now().toISOString().slice(0, 10);
    const callsToday = await q.apiUsage(this.sql, today).catch(() => 0);
    this.queue = new ApiQueue({
      concurrency: config.api.concurrency,
      callsPerMinute: config.api.callsPerMinute,
      dailyBudget: config.api.dailyBudget,
      dailyReserve: config.api.dailyReserve,
      clock: this.clock,
      quota: () => this.client!.quota,
      callsToday,
      onCall: (day) => {
        this.metrics.queueDepth.set(this.queue?.depth ?? 0);
        if (this.sql) q.addApiUsage(this.sql, day, 1).catch(() => {});
      },
    });

    this.elector = this.createElector(databaseUrl);
    this.reconciler = new Reconciler({
      sql: this.sql,
      elector: this.elector,
      client: this.client,
      queue: this.queue,
      clock: this.clock,
      logger,
      metrics: this.metrics,
      competitions: () => this.competitions(),
      intervalsMs: config.intervalsMs,
      intervalOverrides: () =>
        this.competitionResources.filter((c) => c.enabled && c.intervalsMs).map((c) => c.intervalsMs!),
      fullSyncIntervalMs: config.fullSyncIntervalMs,
      points: config.points,
      dryRun: config.dryRun,
      identity: election.identity,
    });
    this.watchConfigFile();
    await this.watchCompetitionResources();

    await this.elector.start({
      onStartedLeading: (signal, epoch) => {
        logger.info({ identity: election.identity, epoch }, "started leading: reconciling");
        const run = new AbortController();
        this.runAbort = run;
        const both = AbortSignal.any([signal, run.signal]);
        both.addEventListener("abort", () => this.queue?.abortAll(), { once: true });
        this.startStatusWriter(both);
        this.running = this.reconciler!.run(both).catch((error) => {
          logger.error({ err: toSchedulerError(error).message }, "reconciler stopped with an error");
        });
      },
      onStoppedLeading: () => {
        logger.info({ identity: election.identity }, "stopped leading: standby");
      },
      onNewLeader: (holder) => logger.info({ holder }, "leader observed"),
    });
    this.phase = "started";
    this.watchdog = setInterval(() => {
      const age = this.reconciler?.progressAgeMs() ?? 0;
      if (this.elector?.state().isLeader && age > WATCHDOG_AFTER_MS) {
        this.onStuck?.(`control loop made no progress for ${Math.round(age / 1000)} s`);
      }
    }, 30_000);
    this.watchdog.unref();
    logger.info(
      {
        version: VERSION,
        identity: election.identity,
        election: election.mode,
        demo: config.demo,
        dryRun: config.dryRun,
        competitions: this.competitions().map((c) => `${c.leagueId}:${c.season}`),
        database: this.embedded ? `embedded (${config.dataDir})` : redactUrl(databaseUrl),
      },
      "backend-scheduler started",
    );
  }

  /** Graceful stop: idempotent, shares one in-flight promise (as pg-boss does). */
  stop(reason = "stop"): Promise<void> {
    this.stopping ??= this.doStop(reason);
    return this.stopping;
  }

  private async doStop(reason: string): Promise<void> {
    const { logger } = this;
    logger.info({ reason }, "shutting down");
    this.phase = "stopping";
    this.startAbort.abort(new Error("stopping"));
    clearInterval(this.watchdog);
    this.configWatcher?.close();
    clearInterval(this.statusWriter);
    await this.competitionWatcher?.stop().catch(() => {});
    // Stop taking work and abort in-flight API calls; an open transaction runs to its end.
    this.runAbort?.abort(new Error("shutdown"));
    this.queue?.abortAll();
    if (this.running) await withTimeout(this.running, 6000);
    // Release the lease so a standby takes over at once.
    if (this.elector) await withTimeout(this.elector.stop(), 2000).catch(() => {});
    if (this.server) await closeServer(this.server);
    if (this.sql) await this.sql.end({ timeout: 2 }).catch(() => {});
    if (this.simulator) await this.simulator.close().catch(() => {});
    if (this.embedded) await this.embedded.close();
    this.phase = "stopped";
    logger.info("stopped");
  }

  /** Operators and tests: the reconciler, once started. */
  get reconcilerInstance(): Reconciler | undefined {
    return this.reconciler;
  }

  competitions(): CompetitionKey[] {
    const seen = new Map<string, CompetitionKey>();
    for (const list of this.competitionSources.values())
      for (const c of list) seen.set(`${c.leagueId}:${c.season}`, c);
    return [...seen.values()].sort((a, b) => a.leagueId - b.leagueId || a.season - b.season);
  }

  private setCompetitionSource(source: string, list: CompetitionKey[]): void {
    const before = JSON.stringify(this.competitions());
    this.competitionSources.set(source, list);
    if (JSON.stringify(this.competitions()) !== before) {
      this.logger.info(
        { source, competitions: this.competitions().map((c) => `${c.leagueId}:${c.season}`) },
        "competitions changed",
      );
      this.reconciler?.poke({ api: true });
    }
  }

  private async migrateWithRetry(databaseUrl: string): Promise<void> {
    // A database that is down at start delays readiness; it is not a crash.
    for (let attempt = 0; this.phase === "starting"; attempt++) {
      try {
        await migrate(this.sql!, this.logger);
        this.migrated = true;
        return;
      } catch (error) {
        const e = toSchedulerError(error, "DB_UNAVAILABLE");
        if (e.code === "DB_AHEAD_OF_CODE" || !e.retryable) throw e;
        const delay = backoffDelay(attempt, 500, 10_000);
        this.logger.warn(
          { code: e.code, err: e.message, database: redactUrl(databaseUrl), retryInMs: delay },
          "database not ready",
        );
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  private async apiUrl(): Promise<string> {
    if (!this.config.demo) return this.config.api.url!;
    this.simulator = await startSimulator({
      port: this.config.simulatorPort,
      host: "127.0.0.1",
      clock: this.clock,
      dataDir: this.config.dataDir,
      apiKey: DEMO_API_KEY,
    });
    this.logger.warn({ url: this.simulator.url }, "DEMO MODE: bundled API-Football simulator listening");
    if (this.config.competitions.length === 0) {
      // Demo with no competitions configured: keep every league the simulator serves.
      this.competitionSources.set(
        "demo",
        this.simulator.leagues().map((l) => ({ leagueId: l.id, season: l.season })),
      );
    }
    return this.simulator.url;
  }

  private createElector(databaseUrl: string): Elector {
    const e = this.config.election;
    const options = {
      identity: e.identity,
      leaseName: e.leaseName,
      leaseNamespace: e.leaseNamespace,
      leaseDurationMs: e.leaseDurationMs,
      renewDeadlineMs: e.renewDeadlineMs,
      retryPeriodMs: e.retryPeriodMs,
      sql: this.sql!,
      databaseUrl: this.embedded ? undefined : databaseUrl,
      logger: this.logger,
      metrics: this.metrics,
    };
    if (e.mode === "postgres") return createPostgresElector(options);
    if (e.mode === "kubernetes") return createKubernetesElector(options);
    return createNoElector(e.identity, e.leaseName, this.metrics);
  }

  /**
   * Outside Kubernetes, SCHEDULER_CONFIG is re-read on change; a bad file keeps the old config.
   * The directory is watched, not the file: editors and ConfigMap volumes replace a file by a
   * rename, after which a watch on the file itself would follow the old, deleted one. A change
   * counts when the file's content differs from the last one read (one reload, or one error
   * line, per change).
   */
  private watchConfigFile(): void {
    const file = this.config.configFile;
    if (!file) return;
    let timer: NodeJS.Timeout | undefined;
    const read = () => {
      try {
        return readFileSync(file, "utf8");
      } catch {
        return undefined;
      }
    };
    let last = read();
    const reload = () => {
      const text = read();
      if (text === last) return;
      last = text;
      try {
        const next = loadConfig(process.env);
        this.setCompetitionSource("config", next.competitions);
        if (next.log.level !== this.config.log.level) this.logger.level = next.log.level;
        this.config = { ...this.config, competitions: next.competitions, log: next.log };
        this.logger.info({ file }, "configuration file reloaded");
      } catch (error) {
        this.logger.error(
          { file, err: toSchedulerError(error).message },
          "configuration file rejected; keeping the previous configuration",
        );
      }
    };
    try {
      this.configWatcher = watch(path.dirname(path.resolve(file)), () => {
        clearTimeout(timer);
        timer = setTimeout(reload, 200);
      });
    } catch (error) {
      this.logger.warn({ file, err: (error as Error).message }, "cannot watch configuration file");
    }
  }

  /** Under LEADER_ELECTION=kubernetes, Competition resources add to the competitions kept in sync. */
  private async watchCompetitionResources(): Promise<void> {
    if (this.config.election.mode !== "kubernetes") return;
    this.competitionWatcher = startCompetitionWatcher({
      namespace: this.config.election.leaseNamespace,
      logger: this.logger,
      onChange: (list) => {
        this.competitionResources = list;
        this.setCompetitionSource(
          "kubernetes",
          list.filter((c) => c.enabled).map((c) => ({ leagueId: c.leagueId, season: c.season })),
        );
      },
    });
  }

  /** The leader writes each Competition's status (fixtures, live, last sync, Ready). */
  private startStatusWriter(signal: AbortSignal): void {
    const watcher = this.competitionWatcher;
    if (!watcher) return;
    const write = async () => {
      if (signal.aborted || !this.sql || !this.reconciler) return;
      try {
        const counts = await q.countByCompetition(this.sql);
        const snapshot = this.reconciler.snapshot(this.clock.now());
        for (const c of this.competitionResources) {
          const n = counts.find((x) => x.leagueId === c.leagueId && x.season === String(c.season));
          const state = snapshot.competitions.find(
            (x) => x.league_id === c.leagueId && x.season === c.season,
          );
          const ready = c.enabled && Boolean(state?.last_full_sync) && !state?.last_error;
          await watcher.writeStatus(c.name, {
            fixtures: n?.fixtures ?? 0,
            live: n?.live ?? 0,
            lastSyncTime: state?.last_full_sync ?? null,
            observedGeneration: c.generation,
            ready,
            reason: !c.enabled ? "Disabled" : state?.last_error ? "SyncError" : ready ? "Synced" : "Pending",
            message: !c.enabled
              ? "spec.enabled is false: not kept in sync"
              : (state?.last_error ??
                (ready ? "fixtures in sync with API-Football" : "waiting for the first full sync")),
          });
        }
      } catch (error) {
        this.logger.warn({ err: toSchedulerError(error).message }, "writing Competition status failed");
      }
    };
    clearInterval(this.statusWriter);
    this.statusWriter = setInterval(() => void write(), 5_000);
    this.statusWriter.unref();
    signal.addEventListener("abort", () => clearInterval(this.statusWriter), { once: true });
    void write();
  }

  // -------------------------------------------------------------------------------------
  // HTTP

  private createHttpApp() {
    const adminRouter = createAdminRouter({
      token: this.config.adminToken,
      logger: this.logger,
      actions: {
        leader: () => {
          const s = this.elector?.state();
          return {
            isLeader: s?.isLeader ?? false,
            identity: this.config.election.identity,
            holder: s?.holder ?? null,
          };
        },
        reconcileNow: () => this.reconciler?.poke({ api: true }),
        resync: (leagueId, season) => this.reconciler?.requestResync(leagueId, season) ?? false,
        fixtureHistory: async (id) => {
          const sql = this.requireSql();
          if (!(await q.fixtureExists(sql, id))) return null;
          return await q.fixtureHistory(sql, id);
        },
        setOverride: async (id, pin) => {
          const sql = this.requireSql();
          const done = await sql.begin(async (tx) => {
            await this.elector!.fence(tx);
            if (!(await q.fixtureExists(tx, id))) return false;
            await q.setOverride(tx, {
              fixtureId: id,
              status: pin.status as MatchStatus,
              homeScore: pin.homeScore,
              awayScore: pin.awayScore,
              reason: pin.reason ?? null,
            });
            return true;
          });
          if (done) this.reconciler?.poke();
          return done;
        },
        removeOverride: async (id) => {
          const sql = this.requireSql();
          const done = await sql.begin(async (tx) => {
            await this.elector!.fence(tx);
            return await q.removeOverride(tx, id);
          });
          // The API's own values come back with the next answer about it.
          if (done) this.reconciler?.poke({ api: true });
          return done;
        },
      },
    });
    return createApp({
      health: () => this.health(),
      ready: () => this.ready(),
      status: () => this.status(),
      metrics: this.metrics,
      refreshMetrics: () => this.refreshMetrics(),
      logger: this.logger,
      adminRouter,
    });
  }

  /** Gauges that mirror state kept elsewhere; fixture counts come from the leader only. */
  private async refreshMetrics(): Promise<void> {
    this.metrics.queueDepth.set(this.queue?.depth ?? 0);
    const leading = this.elector?.state().isLeader ?? false;
    if (!leading || !this.sql || !this.migrated) {
      for (const status of MATCH_STATUSES) this.metrics.fixtures.set({ status }, 0);
      return;
    }
    try {
      const counts = await q.countByStatus(this.sql);
      for (const status of MATCH_STATUSES)
        this.metrics.fixtures.set({ status }, counts.fixtures[status] ?? 0);
    } catch {
      // database down: keep the last values; /ready and the logs tell
    }
  }

  private requireSql(): Sql {
    if (!this.sql || !this.migrated) throw new SchedulerError("DB_UNAVAILABLE", "database not ready");
    return this.sql;
  }

  health() {
    const leader = this.elector?.state();
    const schedulerStatus =
      this.phase === "starting"
        ? "starting"
        : this.phase === "stopping" || this.phase === "stopped"
          ? "stopping"
          : leader?.isLeader
            ? "running"
            : "standby";
    let stuck: string | undefined;
    if (leader?.isLeader && this.elector && !this.elector.healthy())
      stuck = "lease renewal has made no progress";
    const age = this.reconciler?.progressAgeMs() ?? 0;
    if (leader?.isLeader && age > STUCK_AFTER_MS)
      stuck = `control loop made no progress for ${Math.round(age / 1000)} s`;
    // Outages show here for humans, never as a 503: a restart cures neither. A healthy
    // process answers exactly the contract's body.
    const details: Record<string, unknown> = {};
    if (!this.migrated) details.database = "not_ready";
    const last = this.reconciler?.lastOutcome();
    if (last && last.result !== "success")
      details.last_reconcile = { result: last.result, error: last.error };
    const blocked = this.client?.quota.blockedUntil;
    if (blocked && blocked.getTime() > this.clock.now().getTime())
      details.api_blocked_until = blocked.toISOString();
    return { schedulerStatus, stuck, details };
  }

  async ready(): Promise<{ ready: boolean; reason?: string }> {
    if (!this.migrated || !this.sql) return { ready: false, reason: "database migrations have not run yet" };
    if (this.phase === "stopping" || this.phase === "stopped")
      return { ready: false, reason: "shutting down" };
    return (await ping(this.sql)) ? { ready: true } : { ready: false, reason: "database does not answer" };
  }

  async status(): Promise<Record<string, unknown>> {
    const now = this.clock.now();
    const leader = this.elector?.state();
    const reconciler = this.reconciler?.snapshot(now);
    let counts: Awaited<ReturnType<typeof q.countByStatus>> | null = null;
    let perCompetition: Awaited<ReturnType<typeof q.countByCompetition>> = [];
    let databaseError: string | null = null;
    if (this.sql && this.migrated) {
      try {
        [counts, perCompetition] = await Promise.all([
          q.countByStatus(this.sql),
          q.countByCompetition(this.sql),
        ]);
      } catch (error) {
        databaseError = toSchedulerError(error).message;
      }
    }
    const quota = this.client?.quota;
    const competitions = (
      reconciler?.competitions ??
      this.competitions().map((c) => ({ league_id: c.leagueId, season: c.season }))
    ).map((c) => {
      const n = perCompetition.find((p) => p.leagueId === c.league_id && p.season === String(c.season));
      return { ...c, fixtures: n?.fixtures ?? 0, live: n?.live ?? 0 };
    });
    return {
      service: "backend-scheduler",
      version: VERSION,
      uptime_seconds: Math.round((Date.now() - this.startedAt) / 1000),
      mode: this.config.demo ? "demo" : "live",
      demo: this.config.demo,
      dry_run: this.config.dryRun,
      phase: this.phase,
      clock: { now: now.toISOString(), speed: this.clock.speed },
      leader: {
        backend: leader?.backend ?? this.config.election.mode,
        identity: this.config.election.identity,
        is_leader: leader?.isLeader ?? false,
        lease_name: this.config.election.leaseName,
        holder: leader?.holder ?? null,
        epoch: leader?.epoch ?? null,
        transitions: leader?.transitions ?? 0,
        since: leader?.since?.toISOString() ?? null,
        last_renew: leader?.lastRenewAt?.toISOString() ?? null,
      },
      schedule_mode: reconciler?.schedule_mode ?? null,
      next_run: reconciler?.next_api_run ?? null,
      scheduler: reconciler ?? null,
      competitions,
      fixtures_by_status: counts?.fixtures ?? null,
      predictions_by_status: counts?.predictions ?? null,
      database: {
        embedded: Boolean(this.embedded),
        ready: this.migrated && !databaseError,
        error: databaseError,
      },
      queue: { depth: this.queue?.depth ?? 0, in_flight: this.queue?.inFlight ?? 0 },
      last_reconcile: reconciler?.last_reconcile ?? null,
      api_quota: {
        daily_limit: quota?.dayLimit ?? null,
        daily_remaining: quota?.dayRemaining ?? null,
        minute_limit: quota?.minuteLimit ?? null,
        minute_remaining: quota?.minuteRemaining ?? null,
        calls_today: this.queue?.callsToday ?? 0,
        daily_budget: this.config.api.dailyBudget,
        reserve: this.config.api.dailyReserve,
        blocked_until: quota?.blockedUntil ? new Date(quota.blockedUntil).toISOString() : null,
        blocked_reason: quota?.blockedReason ?? null,
        stretch: reconciler?.quota_stretch ?? null,
      },
      unknown_status_codes: reconciler?.unknown_status_codes ?? {},
      malformed_rows_skipped: reconciler?.malformed_rows_skipped ?? 0,
    };
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    });
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
