/**
 * Every SQL statement of leader election and fencing, in one place (pg-boss's plans.ts
 * style). Each is a single parameterised statement, and every time it compares or
 * stores comes from the database's clock (`now()` / `clock_timestamp()`), never from a
 * replica's: replicas' clocks may disagree, the database's is the one they share.
 *
 * The row `scheduler.lease(name)` holds, for the postgres back end, the lease itself;
 * for every back end it holds the fencing **epoch**: a number that grows by one each
 * time a replica starts a term as leader. A write transaction of the leader calls
 * `fenceLease` first; it passes only while the row still names this replica with the
 * epoch it was elected with and the lease has not expired by the database clock.
 */
import type { Sql, TransactionSql } from "./database.js";

/** Channel a releasing leader NOTIFYs (payload: the lease name) so that standbys try at once. */
export const LEASE_CHANNEL = "scheduler_lease";

/** The lease row as one attempt saw it. */
export interface LeaseRecord {
  /** True when this attempt acquired or renewed the lease for the caller. */
  acquired: boolean;
  holder: string | null;
  epoch: number;
  transitions: number;
  acquiredAt: Date | null;
  renewedAt: Date | null;
  durationMs: number;
  /** Milliseconds until the lease expires by the database clock (negative: expired). */
  expiresInMs: number;
}

interface LeaseRow {
  acquired: boolean;
  holder: string | null;
  epoch: number;
  transitions: number;
  acquired_at: Date | null;
  renewed_at: Date | null;
  duration_ms: number;
  expires_in_ms: number;
}

const toRecord = (row: LeaseRow): LeaseRecord => ({
  acquired: row.acquired,
  holder: row.holder === "" ? null : row.holder,
  epoch: Number(row.epoch),
  transitions: Number(row.transitions),
  acquiredAt: row.acquired_at,
  renewedAt: row.renewed_at,
  durationMs: Number(row.duration_ms),
  expiresInMs: Number(row.expires_in_ms),
});

export interface AcquireParams {
  name: string;
  identity: string;
  durationMs: number;
  /** The epoch the caller leads with, or null while campaigning. */
  epoch: number | null;
}

/**
 * Acquire or renew in one statement (an upsert). It succeeds when
 *  - the caller renews: the row names the caller with the epoch it leads with, or
 *  - the lease is free: no row, an empty holder (released), or expired by the database clock.
 * A term change (anything but a renewal) starts a new epoch, resets `acquired_at` and
 * counts a transition, as client-go counts LeaderTransitions. A row that names the caller
 * with another epoch (a replica with our identity elsewhere, or a term we lost track of)
 * is treated like anyone else's: it is taken only once expired.
 *
 * When the upsert updates nothing, the second branch reports the row as the statement's
 * snapshot saw it, so the caller learns the holder and when to try again.
 */
export async function acquireOrRenewLease(sql: Sql, p: AcquireParams): Promise<LeaseRecord | undefined> {
  const rows = await sql<LeaseRow[]>`
    WITH attempt AS (
      INSERT INTO scheduler.lease AS l
        (name, holder, acquired_at, renewed_at, duration_ms, transitions, epoch)
      VALUES (${p.name}, ${p.identity}, now(), now(), ${p.durationMs}, 0, 1)
      ON CONFLICT (name) DO UPDATE SET
        holder = excluded.holder,
        renewed_at = excluded.renewed_at,
        duration_ms = excluded.duration_ms,
        acquired_at = CASE WHEN l.holder = excluded.holder AND l.epoch = ${p.epoch}::bigint
                           THEN l.acquired_at ELSE excluded.acquired_at END,
        transitions = CASE WHEN l.holder = excluded.holder AND l.epoch = ${p.epoch}::bigint
                           THEN l.transitions ELSE l.transitions + 1 END,
        epoch = CASE WHEN l.holder = excluded.holder AND l.epoch = ${p.epoch}::bigint
                     THEN l.epoch ELSE l.epoch + 1 END
      WHERE (l.holder = excluded.holder AND l.epoch = ${p.epoch}::bigint)
         OR coalesce(l.holder, '') = ''
         OR l.renewed_at + l.duration_ms * interval '1 millisecond' <= now()
      RETURNING l.*
    )
    SELECT true AS acquired, holder, epoch::float8 AS epoch, transitions, acquired_at, renewed_at,
           duration_ms,
           (extract(epoch FROM renewed_at + duration_ms * interval '1 millisecond' - now()) * 1000)::float8
             AS expires_in_ms
      FROM attempt
    UNION ALL
    SELECT false, holder, epoch::float8, transitions, acquired_at, renewed_at, duration_ms,
           (extract(epoch FROM renewed_at + duration_ms * interval '1 millisecond' - now()) * 1000)::float8
      FROM scheduler.lease
     WHERE name = ${p.name} AND NOT EXISTS (SELECT 1 FROM attempt)`;
  const row = rows[0];
  return row ? toRecord(row) : undefined;
}

/** The lease row as it is now (observation only: /status, tests). */
export async function readLease(sql: Sql, name: string): Promise<LeaseRecord | undefined> {
  const rows = await sql<LeaseRow[]>`
    SELECT false AS acquired, holder, epoch::float8 AS epoch, transitions, acquired_at, renewed_at,
           duration_ms,
           (extract(epoch FROM renewed_at + duration_ms * interval '1 millisecond' - now()) * 1000)::float8
             AS expires_in_ms
      FROM scheduler.lease WHERE name = ${name}`;
  const row = rows[0];
  return row ? toRecord(row) : undefined;
}

export interface ReleaseParams {
  name: string;
  identity: string;
  /** Release only this term; null releases whatever term the identity holds (on stop). */
  epoch: number | null;
}

/**
 * Release as client-go's ReleaseOnCancel does: empty holder, a 1 s lease, times reset,
 * transitions kept. In the same statement, NOTIFY the standbys (delivered on commit).
 * Returns whether a row was released.
 */
export async function releaseLease(sql: Sql, p: ReleaseParams): Promise<boolean> {
  const rows = await sql`
    WITH released AS (
      UPDATE scheduler.lease
         SET holder = '', duration_ms = 1000, acquired_at = now(), renewed_at = now()
       WHERE name = ${p.name} AND holder = ${p.identity}
         AND epoch = coalesce(${p.epoch}::bigint, epoch)
      RETURNING name
    )
    SELECT pg_notify(${LEASE_CHANNEL}, name) FROM released`;
  return rows.length > 0;
}

export interface FenceParams {
  name: string;
  identity: string;
  epoch: number;
}

/**
 * The fencing check, run first inside the caller's write transaction. `FOR SHARE` on
 * the lease row means a takeover (an UPDATE of that row) waits until this transaction
 * has committed or rolled back, and a transaction that runs after a takeover committed
 * sees the new holder and epoch (READ COMMITTED re-checks the newest row version) and
 * gets no row. Expiry uses `clock_timestamp()`, the database's time of this check.
 */
export async function fenceLease(tx: TransactionSql, p: FenceParams): Promise<boolean> {
  const rows = await tx`
    SELECT 1 FROM scheduler.lease
     WHERE name = ${p.name} AND holder = ${p.identity} AND epoch = ${p.epoch}::bigint
       AND renewed_at + duration_ms * interval '1 millisecond' > clock_timestamp()
       FOR SHARE`;
  return rows.length > 0;
}

export interface TakeoverParams {
  name: string;
  identity: string;
  durationMs: number;
  /** The Lease's leaseTransitions after the takeover, mirrored here for /status. */
  transitions: number;
}

/**
 * Kubernetes back end: the Lease made this replica leader; start its term here (epoch + 1).
 * Unconditional, because the Lease (not this row) decides who leads; the row only fences.
 */
export async function recordTakeover(
  sql: Sql,
  p: TakeoverParams,
): Promise<{ epoch: number; acquiredAt: Date }> {
  const rows = await sql<{ epoch: number; acquired_at: Date }[]>`
    INSERT INTO scheduler.lease AS l
      (name, holder, acquired_at, renewed_at, duration_ms, transitions, epoch)
    VALUES (${p.name}, ${p.identity}, now(), now(), ${p.durationMs}, ${p.transitions}, 1)
    ON CONFLICT (name) DO UPDATE SET
      holder = excluded.holder, acquired_at = now(), renewed_at = now(),
      duration_ms = excluded.duration_ms, transitions = excluded.transitions, epoch = l.epoch + 1
    RETURNING epoch::float8 AS epoch, acquired_at`;
  const row = rows[0]!;
  return { epoch: Number(row.epoch), acquiredAt: row.acquired_at };
}

/**
 * Kubernetes back end: after each successful Lease renewal, extend the fencing row's
 * validity by the database clock. False when the row no longer names this term: another
 * replica has started a newer one, and this one must step down.
 */
export async function touchFencingRecord(
  sql: Sql,
  p: FenceParams & { durationMs: number; transitions: number },
): Promise<boolean> {
  const rows = await sql`
    UPDATE scheduler.lease
       SET renewed_at = now(), duration_ms = ${p.durationMs}, transitions = ${p.transitions}
     WHERE name = ${p.name} AND holder = ${p.identity} AND epoch = ${p.epoch}::bigint
    RETURNING 1`;
  return rows.length > 0;
}
