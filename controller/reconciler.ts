/**
 * The plumbing around plan.ts: load desired state from the database, ask the API (through
 * the bounded queue), plan, and apply the plan in one fenced transaction.
 *
 * The write transaction is apply.ts. Two loops run while this replica leads:
 * - the sweep loop, database only, wakes at the next kick-off (lock within seconds, even
 *   with the API down) and at least every SWEEP_INTERVAL to lock and score;
 * - the API loop asks the API as often as the schedule mode says (stretched to fit the
 *   day's quota), plus a full season sync per competition at start and once a day.
 * Both go through `reconcileOnce`, so the rules live in one place (plan.ts).
 */
import type { ApiQueue } from "./api-queue.js";
import { applyPlan, type CompetitionError } from "./apply.js";
import type { Clock } from "./clock.js";
import type { CompetitionKey, ScheduleMode } from "./config.js";
import type { Sql } from "./database.js";
import type { Elector } from "./elector.js";
import { backoffDelay, toSchedulerError } from "./errors.js";
import type { FootballApiClient } from "./football-api.js";
import type { Logger } from "./logger.js";
import { apiRequestLabels, type Metrics } from "./metrics.js";
import {
  type ApiAnswer,
  type ApiCall,
  type Desired,
  type FixtureState,
  LAGGING_WINDOW_MS,
  type Plan,
  type Points,
  plan,
  UNDER_WAY,
  UPCOMING_MS,
} from "./plan.js";
import * as q from "./queries.js";

const SWEEP_INTERVAL_MS = 30_000; // clock time
const MIN_REAL_WAIT_MS = 20; // however fast the clock runs, loops never spin
const MAX_FETCH_ROUNDS = 3;
const CATCH_UP_INTERVAL_MS = 5 * 60_000; // real time

export interface ReconcilerOptions {
  sql: Sql;
  elector: Elector;
  client: FootballApiClient;
  queue: ApiQueue;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  competitions: () => CompetitionKey[];
  intervalsMs: Record<ScheduleMode, number>;
  /** Per-competition overrides (Competition resources); the shortest wins, as one call serves all. */
  intervalOverrides?: () => Partial<Record<ScheduleMode, number>>[];
  fullSyncIntervalMs: number;
  points: Points;
  dryRun: boolean;
  identity: string;
}

export interface ReconcileResult {
  kind: "sweep" | "api";
  startedAt: Date;
  durationMs: number;
  result: "success" | "error" | "fenced";
  actions: ActionCounts;
  apiCalls: number;
  error: string | null;
}

export interface ActionCounts {
  fixturesWritten: number;
  predictionsLocked: number;
  predictionsScored: number;
  unknownStatuses: number;
  planned: number;
}

interface CompetitionRuntime {
  lastFullSyncAt: Date | null;
  lastError: string | null;
  lastErrorAt: Date | null;
  retryAfter: Date | null;
  failures: number;
  name: string | null;
}

export class Reconciler {
  private readonly o: ReconcilerOptions;
  private mode: ScheduleMode = "minimal";
  private lastApiRunAt: Date | null = null;
  private nextApiRunAt: Date | null = null;
  private nextSweepAt: Date | null = null;
  private forceApi = false;
  private readonly resyncRequested = new Set<string>();
  private readonly competitionState = new Map<string, CompetitionRuntime>();
  private lastCallsPerRun = 1;
  private lastCatchUpAt = 0;
  private stretch: { modeIntervalMs: number; effectiveIntervalMs: number; reason: string } | null = null;
  private lastResult: ReconcileResult | null = null;
  private lastProgressAt = Date.now();
  private readonly unknownCodes = new Map<string, number>();
  private readonly unknownSeen = new Set<string>();
  private malformedRows = 0;
  private dryRunActions = 0;
  private readonly liveLastSeen = new Map<number, number>();
  /** Clock time of the API's last answer about each fixture (pre-kick-off checks). */
  private readonly lastAnsweredAt = new Map<number, Date>();
  private wakeSweep: (() => void) | undefined;
  private wakeApi: (() => void) | undefined;
  private running = false;
  private previousTerm: Promise<void> = Promise.resolve();

  constructor(options: ReconcilerOptions) {
    this.o = options;
  }

  /**
   * Run both loops until `signal` aborts (leadership lost or shutdown). A term that begins
   * while the previous one is still winding down (a query of the old term in flight when
   * leadership was lost and won back) starts once that one has ended, rather than not at all.
   */
  run(signal: AbortSignal): Promise<void> {
    const term = this.previousTerm.then(() => this.runTerm(signal));
    this.previousTerm = term.catch(() => {});
    return term;
  }

  private async runTerm(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    this.running = true;
    // A new term starts from scratch: full syncs at start, the API asked at once.
    this.competitionState.clear();
    this.lastAnsweredAt.clear();
    this.nextApiRunAt = null;
    this.lastCatchUpAt = 0;
    this.lastProgressAt = Date.now();
    try {
      await Promise.all([this.sweepLoop(signal), this.apiLoop(signal)]);
    } finally {
      this.running = false;
      this.o.metrics.queueDepth.set(0);
    }
  }

  /** Run now (management API, config change): both loops wake, the API is asked. */
  poke(options: { api?: boolean } = {}): void {
    if (options.api) this.forceApi = true;
    this.wakeSweep?.();
    this.wakeApi?.();
  }

  /** Ask for a full season sync of one competition; false when it is not kept in sync. */
  requestResync(leagueId: number, season: number): boolean {
    if (!this.o.competitions().some((c) => c.leagueId === leagueId && c.season === season)) return false;
    this.resyncRequested.add(`${leagueId}:${season}`);
    this.poke({ api: true });
    return true;
  }

  /** The last pass's outcome (for /health's body). */
  lastOutcome(): ReconcileResult | null {
    return this.lastResult;
  }

  /** For /health: when did either loop last make progress (real time). */
  progressAgeMs(): number {
    return this.running ? Date.now() - this.lastProgressAt : 0;
  }

  private async sweepLoop(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      const result = await this.reconcileOnce({ useApi: false, signal });
      failures = result.result === "error" ? failures + 1 : 0;
      if (signal.aborted) break;
      const now = this.o.clock.now();
      let wakeAt = new Date(now.getTime() + SWEEP_INTERVAL_MS);
      try {
        const kickoff = await q.nextKickoff(this.o.sql, now);
        if (kickoff && kickoff < wakeAt) wakeAt = kickoff;
      } catch {
        // database down: the next sweep reports it
      }
      this.nextSweepAt = wakeAt;
      await this.waitUntil(wakeAt, failures, signal, (wake) => {
        this.wakeSweep = wake;
      });
    }
  }

  private async apiLoop(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      const now = this.o.clock.now();
      if (this.apiWorkDue(now)) {
        const result = await this.reconcileOnce({ useApi: true, signal });
        failures = result.result === "error" ? failures + 1 : 0;
      }
      if (signal.aborted) break;
      await this.waitUntil(this.nextApiWakeAt(), failures, signal, (wake) => {
        this.wakeApi = wake;
      });
    }
  }

  private apiWorkDue(now: Date): boolean {
    if (this.apiIntervalDue(now)) return true;
    return this.seasonSyncDueAt() <= now.getTime();
  }

  private seasonSyncDueAt(): number {
    let due = Number.POSITIVE_INFINITY;
    for (const c of this.o.competitions()) {
      const key = `${c.leagueId}:${c.season}`;
      if (this.resyncRequested.has(key)) return 0;
      const state = this.competitionState.get(key);
      if (!state?.lastFullSyncAt) return state?.retryAfter?.getTime() ?? 0;
      const at = Math.max(
        state.lastFullSyncAt.getTime() + this.o.fullSyncIntervalMs,
        state.retryAfter?.getTime() ?? 0,
      );
      due = Math.min(due, at);
    }
    return due;
  }

  private nextApiWakeAt(): Date {
    const next = Math.min(this.nextApiRunAt?.getTime() ?? 0, this.seasonSyncDueAt());
    return new Date(next);
  }

  /**
   * Sleep until the clock reaches `wakeAt`, a poke, or abort; after errors, back off in
   * real time instead. Timers can fire a little early, which a fast clock magnifies, so
   * the wait goes on until the clock has really reached `wakeAt`.
   */
  private async waitUntil(
    wakeAt: Date,
    failures: number,
    signal: AbortSignal,
    register: (wake: () => void) => void,
  ): Promise<void> {
    let woken = false;
    let cut: (() => void) | undefined;
    register(() => {
      woken = true;
      cut?.();
    });
    const nap = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(ms, 2_147_000_000));
        function done() {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          resolve();
        }
        cut = done;
        signal.addEventListener("abort", done, { once: true });
      });
    if (failures > 0) {
      await nap(backoffDelay(failures - 1, 500, 15_000));
      return;
    }
    const start = Date.now();
    while (!signal.aborted && !woken) {
      const clockLeft = wakeAt.getTime() - this.o.clock.now().getTime();
      const realLeft = Math.max(clockLeft / this.o.clock.speed, MIN_REAL_WAIT_MS - (Date.now() - start));
      if (realLeft <= 0) return;
      await nap(Math.ceil(realLeft) + 1);
    }
  }

  /** One pass: load, (ask the API,) plan, apply. Never throws. */
  async reconcileOnce(options: { useApi: boolean; signal?: AbortSignal }): Promise<ReconcileResult> {
    const startedAt = this.o.clock.now();
    const realStart = performance.now();
    const kind = options.useApi ? "api" : "sweep";
    let apiCalls = 0;
    let modeCalls = 0; // the mode's own calls (live, ids), without the daily season syncs
    const counts: ActionCounts = {
      fixturesWritten: 0,
      predictionsLocked: 0,
      predictionsScored: 0,
      unknownStatuses: 0,
      planned: 0,
    };
    let result: ReconcileResult["result"] = "success";
    let errorText: string | null = null;
    try {
      const now = startedAt;
      const competitions = this.o.competitions();
      const apiDue = options.useApi && this.apiIntervalDue(now);
      const desired = await this.loadDesired(now, competitions, apiDue);
      const observed = { answers: [] as ApiAnswer[] };
      const competitionErrors: CompetitionError[] = [];
      let current = plan(desired, observed, now);

      if (options.useApi) {
        this.forceApi = false;
        const attempted = new Set<string>();
        for (let round = 0; round < MAX_FETCH_ROUNDS; round++) {
          const calls = current.fetches.filter((c) => !attempted.has(callKey(c)) && this.mayCall(c, now));
          if (calls.length === 0) break;
          for (const c of calls) attempted.add(callKey(c));
          const outcomes = await Promise.allSettled(calls.map((c) => this.fetch(c, options.signal)));
          apiCalls += calls.length;
          modeCalls += calls.filter((c) => c.kind !== "season").length;
          const newIds: number[] = [];
          outcomes.forEach((outcome, i) => {
            const call = calls[i]!;
            if (outcome.status === "fulfilled") {
              observed.answers.push(outcome.value);
              this.noteAnswered(outcome.value, now);
              for (const f of outcome.value.fixtures)
                if (!desired.fixtures.has(f.fixtureId)) newIds.push(f.fixtureId);
              if (call.kind === "season") this.seasonSynced(call, now, outcome.value);
            } else {
              const error = toSchedulerError(outcome.reason, "API_ERROR");
              if (error.code === "API_BUDGET_EXHAUSTED") {
                this.o.metrics.apiRequests.inc(apiRequestLabels(call.kind, error.code));
              }
              this.o.logger.warn(
                { call: describeCall(call), code: error.code, err: error.message },
                "API call failed",
              );
              for (const key of callCompetitions(call, competitions)) {
                competitionErrors.push({ ...key, message: `${error.code}: ${error.message}` });
                this.seasonFailed(key, call, now, error.message);
              }
            }
          });
          if (newIds.length > 0) {
            const extra = await q.loadActiveFixtures(this.o.sql, now, this.window(), newIds);
            for (const [id, state] of extra) (desired.fixtures as Map<number, FixtureState>).set(id, state);
          }
          current = plan(desired, observed, now);
          if (options.signal?.aborted) break;
        }
        this.setMode(current.mode);
        if (apiDue) this.scheduleNextApiRun(now, current.mode, modeCalls);
      } else {
        this.setMode(current.mode);
      }
      this.noteObservations(current, desired, observed);
      counts.planned =
        current.fixtureWrites.length +
        current.locks.length +
        current.scores.length +
        current.unknownStatuses.length;
      counts.unknownStatuses = current.unknownStatuses.length;

      if (this.o.dryRun) {
        this.dryRunActions += counts.planned;
        this.o.metrics.dryRunActions.inc(counts.planned);
        if (counts.planned > 0)
          this.o.logger.info({ dryRun: true, ...summarise(current) }, "dry run: plan not applied");
      } else if (hasWrites(current, competitionErrors)) {
        const applied = await this.apply(current, competitionErrors, startedAt, now);
        Object.assign(counts, applied);
      }
    } catch (error) {
      const e = toSchedulerError(error);
      result = e.code === "FENCED" ? "fenced" : "error";
      errorText = `${e.code}: ${e.message}`;
      const level = e.code === "FENCED" ? "warn" : "error";
      this.o.logger[level]({ code: e.code, err: e.message, kind }, "reconcile failed");
    }
    const durationMs = performance.now() - realStart;
    this.lastProgressAt = Date.now();
    const outcome: ReconcileResult = {
      kind,
      startedAt,
      durationMs,
      result,
      actions: counts,
      apiCalls,
      error: errorText,
    };
    this.lastResult = outcome;
    this.o.logger.debug(
      { kind, result, durationMs: Math.round(durationMs), clock: startedAt.toISOString(), apiCalls },
      "reconcile done",
    );
    this.o.metrics.reconcileTotal.inc({ result });
    this.o.metrics.reconcileDuration.observe(durationMs / 1000);
    if (result === "success") this.o.metrics.lastReconcileSuccess.set(Date.now() / 1000);
    return outcome;
  }

  private window() {
    return { before: LAGGING_WINDOW_MS, after: UPCOMING_MS };
  }

  /** The mode's interval has passed, the API was never asked this term, or an operator asked. */
  private apiIntervalDue(now: Date): boolean {
    return this.forceApi || this.nextApiRunAt === null || now >= this.nextApiRunAt;
  }

  private async loadDesired(now: Date, competitions: CompetitionKey[], apiDue: boolean): Promise<Desired> {
    // The catch-up branch (open predictions of fixtures long past) at the start of a term
    // and every few minutes; the window covers everything else on every pass.
    const catchUp = Date.now() - this.lastCatchUpAt >= CATCH_UP_INTERVAL_MS;
    const [fixtures, overrides] = await Promise.all([
      q.loadActiveFixtures(this.o.sql, now, this.window(), [], { catchUp }),
      q.loadOverrides(this.o.sql),
    ]);
    if (catchUp) this.lastCatchUpAt = Date.now();
    // Rows of pinned fixtures are needed to apply the pin even if nothing else touches them.
    const missingPins = [...overrides.keys()].filter((id) => !fixtures.has(id));
    if (missingPins.length > 0) {
      for (const [id, state] of await q.loadActiveFixtures(this.o.sql, now, this.window(), missingPins)) {
        fixtures.set(id, state);
      }
    }
    return {
      competitions: competitions.map((c) => {
        const key = `${c.leagueId}:${c.season}`;
        const state = this.competitionState.get(key);
        return {
          leagueId: c.leagueId,
          season: c.season,
          lastFullSyncAt: state?.lastFullSyncAt ?? null,
          resyncRequested: this.resyncRequested.has(key),
        };
      }),
      fixtures,
      overrides,
      apiDue,
      fullSyncIntervalMs: this.o.fullSyncIntervalMs,
      points: this.o.points,
      lastAnsweredAt: this.lastAnsweredAt,
    };
  }

  private noteAnswered(answer: ApiAnswer, now: Date): void {
    for (const f of answer.fixtures) this.lastAnsweredAt.set(f.fixtureId, now);
    // Only recent answers matter; keep the map small.
    if (this.lastAnsweredAt.size > 5_000) {
      const cutoff = now.getTime() - 24 * 3_600_000;
      for (const [id, at] of this.lastAnsweredAt) if (at.getTime() < cutoff) this.lastAnsweredAt.delete(id);
    }
  }

  /** Season calls of a competition that failed wait for their backoff. */
  private mayCall(call: ApiCall, now: Date): boolean {
    if (call.kind !== "season") return true;
    const state = this.competitionState.get(`${call.leagueId}:${call.season}`);
    const requested = this.resyncRequested.has(`${call.leagueId}:${call.season}`);
    return requested || !state?.retryAfter || state.retryAfter <= now;
  }

  private async fetch(call: ApiCall, signal?: AbortSignal): Promise<ApiAnswer> {
    const { client, queue } = this.o;
    const essential = call.kind !== "season";
    const endpoint = call.kind;
    const answer = await queue.run(
      endpoint,
      (callSignal: AbortSignal) => {
        switch (call.kind) {
          case "season":
            return client.fixturesBySeason(call.leagueId, call.season, callSignal);
          case "live":
            return client.liveFixtures(call.leagueIds, callSignal);
          case "ids":
            return client.fixturesByIds(call.ids, callSignal);
        }
      },
      { essential, signal },
    );
    if (answer.malformed > 0) {
      this.malformedRows += answer.malformed;
      this.o.metrics.malformedRows.inc(answer.malformed);
    }
    return { call, fixtures: answer.fixtures };
  }

  private seasonSynced(call: Extract<ApiCall, { kind: "season" }>, now: Date, answer: ApiAnswer): void {
    const key = `${call.leagueId}:${call.season}`;
    this.resyncRequested.delete(key);
    this.competitionState.set(key, {
      lastFullSyncAt: now,
      lastError: null,
      lastErrorAt: null,
      retryAfter: null,
      failures: 0,
      name: answer.fixtures[0]?.leagueName ?? this.competitionState.get(key)?.name ?? null,
    });
  }

  private seasonFailed(key: CompetitionKey, call: ApiCall, now: Date, message: string): void {
    const k = `${key.leagueId}:${key.season}`;
    const state = this.competitionState.get(k) ?? {
      lastFullSyncAt: null,
      lastError: null,
      lastErrorAt: null,
      retryAfter: null,
      failures: 0,
      name: null,
    };
    state.lastError = message;
    state.lastErrorAt = now;
    if (call.kind === "season") {
      state.failures += 1;
      this.resyncRequested.delete(k);
      // Clock-time backoff so a failing competition does not eat the day's quota.
      state.retryAfter = new Date(now.getTime() + backoffDelay(state.failures - 1, 60_000, 3_600_000));
    }
    this.competitionState.set(k, state);
  }

  /**
   * The mode's interval, stretched when the day's remaining budget (less the reserve)
   * cannot cover it until the quota resets at 00:00 UTC.
   */
  private scheduleNextApiRun(now: Date, mode: ScheduleMode, callsThisRun: number): void {
    this.lastApiRunAt = now;
    const modeInterval = this.intervalFor(mode);
    if (callsThisRun === 0) {
      // Nothing to ask in this mode right now: nothing to budget either.
      this.stretch = null;
      this.nextApiRunAt = new Date(now.getTime() + modeInterval);
      return;
    }
    this.lastCallsPerRun = callsThisRun;
    const resetAt = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
    const msToReset = resetAt - now.getTime();
    const remaining = this.o.queue.remainingToday();
    const perRun = Math.max(1, this.lastCallsPerRun);
    const runsAffordable = Math.floor(remaining / perRun);
    let interval = modeInterval;
    let reason: string | null = null;
    if (runsAffordable <= 0) {
      interval = msToReset;
      reason = `no API budget left today (reserve kept); next call after the quota resets at ${new Date(resetAt).toISOString()}`;
    } else if (msToReset / runsAffordable > modeInterval && modeInterval * runsAffordable < msToReset) {
      interval = Math.ceil(msToReset / runsAffordable);
      reason = `${remaining} calls left today at ~${perRun} a run: interval stretched to fit until ${new Date(resetAt).toISOString()}`;
    }
    if (reason) {
      const level = this.stretch ? "debug" : "info";
      this.o.logger[level]({ mode, modeIntervalMs: modeInterval, intervalMs: interval }, reason);
    }
    this.stretch = reason ? { modeIntervalMs: modeInterval, effectiveIntervalMs: interval, reason } : null;
    this.nextApiRunAt = new Date(now.getTime() + (reason ? interval : modeInterval));
  }

  intervalFor(mode: ScheduleMode): number {
    let interval = this.o.intervalsMs[mode];
    for (const overrides of this.o.intervalOverrides?.() ?? []) {
      const value = overrides[mode];
      if (value !== undefined && value > 0) interval = Math.min(interval, value);
    }
    return interval;
  }

  private setMode(mode: ScheduleMode): void {
    if (mode === this.mode) return;
    const previous = this.mode;
    this.mode = mode;
    for (const m of Object.keys(this.o.intervalsMs))
      this.o.metrics.scheduleMode.set({ mode: m }, m === mode ? 1 : 0);
    this.o.logger.info({ from: previous, to: mode }, "schedule mode changed");
    // A busier mode asks sooner: pull the next API run in.
    if (this.lastApiRunAt) {
      const interval = Math.max(this.intervalFor(mode), this.stretch?.effectiveIntervalMs ?? 0);
      const sooner = new Date(this.lastApiRunAt.getTime() + interval);
      if (!this.nextApiRunAt || sooner < this.nextApiRunAt) {
        this.nextApiRunAt = sooner;
        this.wakeApi?.();
      }
    }
  }

  private noteObservations(current: Plan, desired: Desired, observed: { answers: ApiAnswer[] }): void {
    for (const u of current.unknownStatuses) {
      this.unknownCodes.set(u.code, (this.unknownCodes.get(u.code) ?? 0) + 1);
      this.o.metrics.unknownStatus.inc({ code: boundedCode(u.code) });
      const key = `${u.fixtureId}:${u.code}`;
      if (!this.unknownSeen.has(key)) {
        if (this.unknownSeen.size >= 10_000) this.unknownSeen.clear(); // bounded memory; a repeat warning is harmless
        this.unknownSeen.add(key);
        this.o.logger.warn(
          { fixtureId: u.fixtureId, code: u.code },
          "unknown status code from the API: row left as it was",
        );
      }
    }
    // Freshness of live fixtures (real time of the last API answer about each), for the
    // "live fixture not updated" alert.
    const nowSec = Date.now() / 1000;
    const live = new Set<number>();
    for (const state of desired.fixtures.values())
      if (UNDER_WAY.has(state.row.status)) live.add(state.row.fixtureId);
    for (const w of current.fixtureWrites) {
      if (UNDER_WAY.has(w.values.status)) live.add(w.fixtureId);
      else live.delete(w.fixtureId);
    }
    for (const id of [...this.liveLastSeen.keys()]) if (!live.has(id)) this.liveLastSeen.delete(id);
    for (const id of live) if (!this.liveLastSeen.has(id)) this.liveLastSeen.set(id, nowSec);
    for (const a of observed.answers)
      for (const f of a.fixtures) if (live.has(f.fixtureId)) this.liveLastSeen.set(f.fixtureId, nowSec);
    const oldest = Math.min(...this.liveLastSeen.values());
    this.o.metrics.liveFixtureLastUpdate.set(Number.isFinite(oldest) ? oldest : 0);
  }

  private async apply(
    current: Plan,
    competitionErrors: CompetitionError[],
    startedAt: Date,
    now: Date,
  ): Promise<Pick<ActionCounts, "fixturesWritten" | "predictionsLocked" | "predictionsScored">> {
    const outcome = await applyPlan(this.o, current, competitionErrors, startedAt, now);
    this.o.metrics.fixtureUpdates.inc(outcome.fixturesWritten);
    this.o.metrics.predictionsLocked.inc(outcome.predictionsLocked);
    this.o.metrics.predictionsScored.inc(outcome.predictionsScored);
    if (outcome.fixturesWritten + outcome.predictionsLocked + outcome.predictionsScored > 0) {
      this.o.logger.info(outcome, "reconcile applied");
    }
    return outcome;
  }

  /** What /status shows of the reconciler. */
  snapshot(now: Date) {
    const competitions = this.o.competitions().map((c) => {
      const state = this.competitionState.get(`${c.leagueId}:${c.season}`);
      return {
        league_id: c.leagueId,
        season: c.season,
        name: state?.name ?? null,
        last_full_sync: state?.lastFullSyncAt?.toISOString() ?? null,
        last_error: state?.lastError ?? null,
        last_error_at: state?.lastErrorAt?.toISOString() ?? null,
        next_retry: state?.retryAfter?.toISOString() ?? null,
      };
    });
    return {
      running: this.running,
      schedule_mode: this.mode,
      mode_interval_seconds: this.intervalFor(this.mode) / 1000,
      next_api_run: this.nextApiRunAt?.toISOString() ?? (this.running ? now.toISOString() : null),
      next_sweep: this.nextSweepAt?.toISOString() ?? null,
      last_api_run: this.lastApiRunAt?.toISOString() ?? null,
      quota_stretch: this.stretch
        ? {
            mode_interval_seconds: this.stretch.modeIntervalMs / 1000,
            effective_interval_seconds: Math.round(this.stretch.effectiveIntervalMs / 1000),
            reason: this.stretch.reason,
          }
        : null,
      competitions,
      last_reconcile: this.lastResult
        ? {
            kind: this.lastResult.kind,
            start: this.lastResult.startedAt.toISOString(),
            duration_ms: Math.round(this.lastResult.durationMs * 10) / 10,
            result: this.lastResult.result,
            actions_applied: this.lastResult.actions,
            api_calls: this.lastResult.apiCalls,
            error: this.lastResult.error,
          }
        : null,
      unknown_status_codes: Object.fromEntries(this.unknownCodes),
      malformed_rows_skipped: this.malformedRows,
      dry_run: this.o.dryRun ? { actions_planned: this.dryRunActions } : null,
    };
  }
}

function hasWrites(p: Plan, errors: unknown[]): boolean {
  return (
    p.fixtureWrites.length > 0 ||
    p.apiStatuses.length > 0 ||
    p.locks.length > 0 ||
    p.scores.length > 0 ||
    p.competitionSyncs.length > 0 ||
    errors.length > 0
  );
}

function summarise(p: Plan) {
  return {
    mode: p.mode,
    fixtureWrites: p.fixtureWrites
      .map((w) => ({ fixtureId: w.fixtureId, insert: w.insert, changes: w.changes }))
      .slice(0, 50),
    fixtureWriteCount: p.fixtureWrites.length,
    locks: p.locks,
    scores: p.scores,
    unknownStatuses: p.unknownStatuses,
  };
}

function callKey(call: ApiCall): string {
  switch (call.kind) {
    case "season":
      return `season:${call.leagueId}:${call.season}`;
    case "live":
      return `live:${call.leagueIds.join("-")}`;
    case "ids":
      return `ids:${call.ids.join("-")}`;
  }
}

function describeCall(call: ApiCall): string {
  return callKey(call).slice(0, 120);
}

/** Competitions an API failure is attributed to (season calls only; others are shared). */
function callCompetitions(call: ApiCall, competitions: CompetitionKey[]): CompetitionKey[] {
  if (call.kind === "season") return [{ leagueId: call.leagueId, season: call.season }];
  if (call.kind === "live") return competitions.filter((c) => call.leagueIds.includes(c.leagueId));
  return [];
}

/** Label values stay bounded: odd codes collapse into one. */
function boundedCode(code: string): string {
  return /^[A-Z0-9]{1,6}$/.test(code) ? code : "other";
}
