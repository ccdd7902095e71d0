/**
 * Leader election, shaped like client-go's leaderelection package: one config object,
 * OnStartedLeading / OnStoppedLeading callbacks, ReleaseOnCancel on stop. Unlike
 * client-go we fence: every reconcile write transaction calls `fence(tx)`, which checks
 * inside that transaction that this replica still holds the current lease epoch.
 *
 * Back ends: `none` (here), `postgres` (elector-postgres.ts), `kubernetes`
 * (elector-kubernetes.ts). For all of them the epoch lives in PostgreSQL.
 */
import type { TransactionSql } from "./database.js";

export interface LeaderCallbacks {
  /** This replica leads from now on; `signal` aborts the moment leadership is lost or released. */
  onStartedLeading(signal: AbortSignal, epoch: number): void;
  /** Always called after leading ends (lost, released or stopped). */
  onStoppedLeading(): void;
  /** Someone (maybe us) was observed as the holder. */
  onNewLeader?(identity: string | null): void;
}

export interface LeaderState {
  backend: "none" | "postgres" | "kubernetes";
  identity: string;
  isLeader: boolean;
  leaseName: string;
  holder: string | null;
  epoch: number | null;
  transitions: number;
  /** When this replica (if leader) or the current holder acquired the lease. */
  since: Date | null;
  lastRenewAt: Date | null;
}

export interface Elector {
  /** Begin trying to acquire; returns at once (the loop runs in the background). */
  start(callbacks: LeaderCallbacks): Promise<void>;
  /** Stop campaigning; if leading, release the lease (empty holder) so a standby takes over at once. */
  stop(): Promise<void>;
  state(): LeaderState;
  /**
   * Call first inside every write transaction. Throws SchedulerError("FENCED") unless this
   * replica still holds the lease epoch it was elected with; the transaction then rolls back.
   */
  fence(tx: TransactionSql): Promise<void>;
  /** False when this replica leads but has not renewed within the renew deadline (for /health). */
  healthy(): boolean;
}

/** LEADER_ELECTION=none: a single replica that always leads; fencing is a no-op. */
export function createNoElector(
  identity: string,
  leaseName: string,
  metrics?: import("./metrics.js").Metrics,
): Elector {
  let leading = false;
  let since: Date | null = null;
  let controller: AbortController | undefined;
  let callbacks: LeaderCallbacks | undefined;
  return {
    async start(cb) {
      callbacks = cb;
      leading = true;
      since = new Date();
      controller = new AbortController();
      metrics?.isLeader.set(1);
      metrics?.leaderTransitions.inc();
      cb.onNewLeader?.(identity);
      cb.onStartedLeading(controller.signal, 1);
    },
    async stop() {
      if (!leading) return;
      leading = false;
      metrics?.isLeader.set(0);
      metrics?.leaderTransitions.inc();
      controller?.abort(new Error("stopped"));
      callbacks?.onStoppedLeading();
    },
    state: () => ({
      backend: "none",
      identity,
      isLeader: leading,
      leaseName,
      holder: leading ? identity : null,
      epoch: leading ? 1 : null,
      transitions: 0,
      since,
      lastRenewAt: since,
    }),
    async fence() {},
    healthy: () => true,
  };
}

/** What every back end is built from (config.election plus the plumbing). */
export interface ElectorOptions {
  identity: string;
  leaseName: string;
  leaseNamespace: string | undefined;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** The scheduler's pool; the epoch lives here for every back end. */
  sql: import("./database.js").Sql;
  /** For LISTEN (the postgres back end wakes standbys on release); absent on the embedded database. */
  databaseUrl: string | undefined;
  logger: import("./logger.js").Logger;
  metrics: import("./metrics.js").Metrics;
}
