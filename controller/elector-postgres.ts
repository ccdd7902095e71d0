/**
 * Leader election on a lease row in PostgreSQL (LEADER_ELECTION=postgres), and the
 * client-go loop that the Kubernetes back end shares (`createLeaseElector`).
 *
 * The loop is client-go's `tools/leaderelection`:
 *  - campaign: try to acquire every RetryPeriod with jitter (client-go's JitterFactor 1.2);
 *    when the lock says when the current lease runs out, try again right then, and at once
 *    when a releasing leader NOTIFYs (the standbys LISTEN on a dedicated connection);
 *  - lead: `onStartedLeading(signal, epoch)`, then renew every RetryPeriod; without a
 *    successful renewal for RenewDeadline (counted from when the last successful attempt
 *    was sent), or as soon as an attempt shows another holder or term, abort `signal`,
 *    call `onStoppedLeading` and campaign again as a standby;
 *  - `stop()`: abort, `onStoppedLeading`, then release (ReleaseOnCancel: empty holder, 1 s).
 *
 * Because RenewDeadline < LeaseDuration and the renew deadline is counted from the *sending*
 * of the last successful renewal (never later than the database stamped it), a leader gives
 * up before any other replica can see its lease expire. Fencing (`fence(tx)`) covers what
 * timing cannot: a paused process that wakes after a takeover commits nothing.
 *
 * Lease traffic uses its own small connection (`max: 1`), so a busy pool cannot starve
 * renewals, with lock and statement timeouts bounded by the election timings; an attempt
 * that hangs (a black-holed network) is abandoned and the connection replaced.
 */
import postgres from "postgres";
import { connect, type Sql, type TransactionSql } from "./database.js";
import type { Elector, ElectorOptions, LeaderCallbacks, LeaderState } from "./elector.js";
import { SchedulerError } from "./errors.js";
import {
  acquireOrRenewLease,
  fenceLease,
  LEASE_CHANNEL,
  type LeaseRecord,
  releaseLease,
} from "./lease-queries.js";

/** client-go's JitterFactor for the acquire loop: wait RetryPeriod × (1 + rand × 1.2). */
export const JITTER_FACTOR = 1.2;

/** What one acquire-or-renew attempt learnt. */
export interface LeaseObservation {
  /** The caller holds the lease after this attempt (acquired or renewed). */
  acquired: boolean;
  /** When acquired: the caller's term. Otherwise the current holder's, when known. */
  epoch: number | null;
  holder: string | null;
  transitions: number;
  /** When the holder acquired the lease. */
  since: Date | null;
  renewedAt: Date | null;
  /** When not acquired: milliseconds until the lease may be taken, when known. */
  freeInMs?: number;
}

/** A back end's lock: the part of the election that differs between PostgreSQL and Kubernetes. */
export interface LeaseLock {
  readonly backend: "postgres" | "kubernetes";
  /** One attempt. `epoch` is the term this replica leads with, or null while campaigning. */
  tryAcquireOrRenew(epoch: number | null): Promise<LeaseObservation>;
  /** Release whatever this identity holds (`epoch` null) or that term only, and wake the standbys. */
  release(epoch: number | null): Promise<void>;
  /** The fencing check inside the caller's transaction: true while `epoch` is current. */
  fence(tx: TransactionSql, epoch: number): Promise<boolean>;
  /** An attempt hung: drop its connection so that the next attempt starts on a fresh one. */
  reset?(): void;
  close(): Promise<void>;
}

export interface LeaseElectorHooks {
  /** Jitter source (tests). */
  random?: () => number;
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** The client-go loop over any lock; both back ends are built from it. */
export function createLeaseElector(
  lock: LeaseLock,
  options: ElectorOptions,
  hooks: LeaseElectorHooks = {},
): Elector {
  const { identity, leaseName, retryPeriodMs, renewDeadlineMs, metrics } = options;
  const random = hooks.random ?? Math.random;
  const log = options.logger.child({
    component: "elector",
    backend: lock.backend,
    identity,
    lease: leaseName,
  });

  let callbacks: LeaderCallbacks | undefined;
  let loop: Promise<void> | undefined;
  let stopping = false;
  let stopped: Promise<void> | undefined;

  let leading = false;
  let epoch: number | null = null;
  let since: Date | null = null;
  let lastRenewAt = 0;
  let leaderAbort: AbortController | undefined;
  let deadlineTimer: NodeJS.Timeout | undefined;
  let observed: LeaseObservation | undefined;
  let reportedHolder: string | null | undefined;
  let inFlight: Promise<unknown> = Promise.resolve();
  let failures = 0;

  // A sleep that a NOTIFY, a step-down or stop() can cut short.
  let wake: (() => void) | undefined;
  let wakePending = false;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (wakePending || stopping) {
        wakePending = false;
        return resolve();
      }
      const done = () => {
        clearTimeout(timer);
        if (wake === done) wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      wake = done;
    });
  const wakeUp = () => {
    if (wake) wake();
    else wakePending = true;
  };

  // Standbys LISTEN for a release on a dedicated connection (not the pool's: LISTEN holds it).
  let listenSql: Sql | undefined;
  let listening = false;
  let subscribing: Promise<void> | undefined;
  const ensureListening = () => {
    if (!options.databaseUrl || listening || subscribing || stopping) return subscribing;
    // `onnotify` is a driver option its type declarations leave out (sql.listen uses it).
    const listenOptions = {
      max: 1,
      idle_timeout: 0,
      max_lifetime: null,
      connect_timeout: Math.max(1, Math.ceil(renewDeadlineMs / 1000)),
      onnotice: () => {},
      onnotify: (channel: string, payload: string) => {
        if (channel === LEASE_CHANNEL && payload === leaseName && !leading && !stopping) {
          log.debug("lease released: trying at once");
          wakeUp();
        }
      },
      onclose: () => {
        listening = false;
      },
      connection: { application_name: "backend-scheduler-listen" },
    };
    listenSql ??= postgres(options.databaseUrl, listenOptions as postgres.Options<Record<string, never>>);
    const listener = listenSql;
    subscribing = listener
      .unsafe(`LISTEN ${LEASE_CHANNEL}`)
      .then(() => {
        listening = true;
      })
      .catch((error) => log.debug({ err: errorText(error) }, "LISTEN failed; polling until it works"))
      .finally(() => {
        subscribing = undefined;
      });
    return subscribing;
  };

  const observe = (o: LeaseObservation) => {
    observed = o;
    if (o.holder !== reportedHolder) {
      reportedHolder = o.holder;
      log.info({ holder: o.holder, epoch: o.epoch }, "lease holder observed");
      try {
        callbacks?.onNewLeader?.(o.holder);
      } catch (error) {
        log.error({ err: errorText(error) }, "onNewLeader threw");
      }
    }
  };

  /** One attempt, bounded: when leading, by what is left before the renew deadline. */
  const attempt = async (leadingEpoch: number | null): Promise<LeaseObservation | undefined> => {
    const budget = leading ? lastRenewAt + renewDeadlineMs - Date.now() : renewDeadlineMs;
    const pending = lock.tryAcquireOrRenew(leadingEpoch);
    inFlight = pending.catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), Math.max(50, budget));
    });
    try {
      const result = await Promise.race([pending, timeout]);
      if (result === "timeout") {
        lock.reset?.();
        throw new SchedulerError(
          "DB_UNAVAILABLE",
          `lease attempt timed out after ${Math.max(50, budget)} ms`,
        );
      }
      if (failures > 0) log.info({ failures }, "lease back end answers again");
      failures = 0;
      return result;
    } catch (error) {
      failures += 1;
      const conflict = error instanceof SchedulerError && error.code === "KUBE_CONFLICT";
      const level = failures === 1 && !conflict ? "warn" : "debug";
      log[level]({ err: errorText(error), failures, leading }, "lease attempt failed");
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  };

  const armDeadline = () => {
    clearTimeout(deadlineTimer);
    const left = lastRenewAt + renewDeadlineMs - Date.now();
    deadlineTimer = setTimeout(
      () => stepDown(`no successful renewal within the renew deadline (${renewDeadlineMs} ms)`),
      Math.max(0, left),
    );
  };

  const startLeading = (o: LeaseObservation, sentAt: number) => {
    leading = true;
    epoch = o.epoch;
    since = o.since ?? new Date(sentAt);
    lastRenewAt = sentAt;
    leaderAbort = new AbortController();
    armDeadline();
    metrics.isLeader.set(1);
    metrics.leaderTransitions.inc();
    log.info({ epoch, transitions: o.transitions }, "started leading");
    try {
      callbacks?.onStartedLeading(leaderAbort.signal, o.epoch!);
    } catch (error) {
      log.error({ err: errorText(error) }, "onStartedLeading threw");
    }
  };

  const stepDown = (reason: string) => {
    if (!leading) return;
    leading = false;
    clearTimeout(deadlineTimer);
    const controller = leaderAbort;
    leaderAbort = undefined;
    const term = epoch;
    epoch = null;
    metrics.isLeader.set(0);
    metrics.leaderTransitions.inc();
    if (stopping) log.info({ epoch: term, reason }, "stopped leading");
    else log.warn({ epoch: term, reason }, "stopped leading");
    controller?.abort(new SchedulerError("NOT_LEADER", `leadership ended: ${reason}`));
    try {
      callbacks?.onStoppedLeading();
    } catch (error) {
      log.error({ err: errorText(error) }, "onStoppedLeading threw");
    }
    wakeUp();
  };

  const campaignDelay = (o: LeaseObservation | undefined) => {
    const jittered = retryPeriodMs * (1 + random() * JITTER_FACTOR);
    const free = o?.freeInMs;
    // Try again the moment the lease runs out, when that comes before the next poll.
    if (free !== undefined && free >= 0 && free + 5 < jittered) return free + 5;
    return jittered;
  };

  const renew = async () => {
    while (leading && !stopping) {
      await sleep(retryPeriodMs);
      if (!leading || stopping) return;
      const term = epoch;
      const sentAt = Date.now();
      const o = await attempt(term);
      if (!leading || stopping || epoch !== term) return;
      if (!o) continue; // the deadline timer decides
      observe(o);
      if (o.acquired && o.epoch === term) {
        lastRenewAt = sentAt;
        armDeadline();
      } else if (o.acquired) {
        // The lease lapsed and this attempt took it afresh: the old term is over.
        stepDown(`term ${term} lapsed; a new one begins`);
        startLeading(o, sentAt);
      } else {
        stepDown(`lease now held by ${o.holder ?? "nobody"} (epoch ${o.epoch})`);
        return;
      }
    }
  };

  const run = async () => {
    while (!stopping) {
      void ensureListening();
      wakePending = false; // a NOTIFY from now on means "try again at once"
      const sentAt = Date.now();
      const o = await attempt(null);
      if (stopping) return;
      if (o) observe(o);
      if (o?.acquired && o.epoch !== null) {
        startLeading(o, sentAt);
        await renew();
        continue;
      }
      await sleep(campaignDelay(o));
    }
  };

  const withTimeout = async <T>(promise: Promise<T>, ms: number, what: string) => {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        promise,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    async start(cb) {
      if (loop) return;
      callbacks = cb;
      // Be subscribed before the first attempt, so a release right after start is not missed.
      const subscribed = ensureListening();
      if (subscribed) await withTimeout(subscribed, 2000, "LISTEN").catch(() => {});
      loop = run().catch((error) => log.error({ err: errorText(error) }, "election loop crashed"));
    },

    stop() {
      stopped ??= (async () => {
        stopping = true;
        wakeUp();
        stepDown("stopping");
        // An attempt in flight may just have won a term: let it settle, then release
        // whatever this identity holds (no-op when nothing).
        await withTimeout(inFlight, 1000, "attempt").catch(() => {});
        const releaseBudget = Math.min(3000, Math.max(1000, renewDeadlineMs));
        try {
          await withTimeout(lock.release(null), releaseBudget, "release");
        } catch (error) {
          log.warn({ err: errorText(error) }, "lease release failed; standbys wait for expiry");
        }
        await withTimeout(loop ?? Promise.resolve(), 1000, "loop").catch(() => {});
        await Promise.allSettled([lock.close(), listenSql?.end({ timeout: 1 })]);
      })();
      return stopped;
    },

    state(): LeaderState {
      return {
        backend: lock.backend,
        identity,
        isLeader: leading,
        leaseName,
        holder: leading ? identity : (observed?.holder ?? null),
        epoch: leading ? epoch : (observed?.epoch ?? null),
        transitions: observed?.transitions ?? 0,
        since: leading ? since : (observed?.since ?? null),
        lastRenewAt: leading ? new Date(lastRenewAt) : (observed?.renewedAt ?? null),
      };
    },

    async fence(tx) {
      const term = epoch;
      if (!leading || term === null) {
        metrics.fencingRejections.inc();
        throw new SchedulerError("FENCED", "write refused: this replica is not the leader");
      }
      if (!(await lock.fence(tx, term))) {
        metrics.fencingRejections.inc();
        log.warn({ epoch: term }, "write fenced: the lease moved on");
        // Our term is over whatever the renew loop believes yet.
        if (epoch === term) stepDown(`fenced: epoch ${term} is no longer current`);
        throw new SchedulerError("FENCED", `write refused: lease epoch ${term} is no longer current`, {
          details: { epoch: term },
        });
      }
    },

    healthy: () => !leading || Date.now() - lastRenewAt <= renewDeadlineMs,
  };
}

/** The lease connection: one session, timeouts bounded by the election timings. */
function openLeaseConnection(url: string, options: ElectorOptions): Sql {
  return connect({
    url,
    max: 1,
    applicationName: "backend-scheduler-lease",
    lockTimeoutMs: Math.max(100, Math.round(options.retryPeriodMs)),
    statementTimeoutMs: Math.max(500, Math.round(options.renewDeadlineMs)),
    connectTimeoutSeconds: Math.max(1, Math.ceil(options.renewDeadlineMs / 1000)),
    logger: options.logger,
  });
}

const observationOf = (r: LeaseRecord | undefined): LeaseObservation =>
  r
    ? {
        acquired: r.acquired,
        epoch: r.epoch,
        holder: r.holder,
        transitions: r.transitions,
        since: r.acquiredAt,
        renewedAt: r.renewedAt,
        freeInMs: r.holder === null ? 0 : Math.max(0, r.expiresInMs),
      }
    : { acquired: false, epoch: null, holder: null, transitions: 0, since: null, renewedAt: null };

/** LEADER_ELECTION=postgres: the lease is the row `scheduler.lease(name)`. */
export function createPostgresElector(options: ElectorOptions, hooks: LeaseElectorHooks = {}): Elector {
  const { identity, leaseName: name, leaseDurationMs: durationMs } = options;
  // Without a URL (the embedded database) the pool's single connection has to do.
  let sql = options.databaseUrl ? openLeaseConnection(options.databaseUrl, options) : options.sql;
  const lock: LeaseLock = {
    backend: "postgres",
    async tryAcquireOrRenew(epoch) {
      return observationOf(await acquireOrRenewLease(sql, { name, identity, durationMs, epoch }));
    },
    async release(epoch) {
      await releaseLease(sql, { name, identity, epoch });
    },
    fence: (tx, epoch) => fenceLease(tx, { name, identity, epoch }),
    reset() {
      if (!options.databaseUrl) return;
      const old = sql;
      sql = openLeaseConnection(options.databaseUrl, options);
      old.end({ timeout: 0 }).catch(() => {});
    },
    async close() {
      if (options.databaseUrl) await sql.end({ timeout: 1 });
    },
  };
  return createLeaseElector(lock, options, hooks);
}
