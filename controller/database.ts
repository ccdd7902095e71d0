/**
 * The database connection (the `postgres` driver) and the migration runner.
 *
 * With no DATABASE_URL the scheduler runs on an embedded PostgreSQL (PGlite) served on
 * a loopback port by pglite-socket, so one driver and one SQL dialect serve both
 * (see embedded-database.ts).
 */
import postgres from "postgres";
import { SchedulerError, toSchedulerError } from "./errors.js";
import type { Logger } from "./logger.js";
import { LATEST_VERSION, MIGRATIONS } from "./migrations.js";

export type Sql = postgres.Sql;
export type TransactionSql = postgres.TransactionSql;

export interface ConnectOptions {
  url: string;
  /** Pool size; the embedded database takes one connection at a time. */
  max?: number;
  applicationName?: string;
  /**
   * Bounds that keep a stopped (SIGSTOP) replica from blocking the next leader:
   * the database ends its idle transaction and nobody waits long on its locks.
   */
  idleInTransactionTimeoutMs?: number;
  lockTimeoutMs?: number;
  statementTimeoutMs?: number;
  connectTimeoutSeconds?: number;
  logger?: Logger;
}

/** `timestamp without time zone` columns hold UTC (CONTRACT § 3): read them as UTC. */
const utcTimestamp = {
  to: 1114,
  from: [1114],
  serialize: (value: Date | string) => (value instanceof Date ? value.toISOString() : value),
  parse: (value: string) => new Date(`${value.replace(" ", "T")}Z`),
};

export function connect(options: ConnectOptions): Sql {
  return postgres(options.url, {
    max: options.max ?? 5,
    idle_timeout: 60,
    connect_timeout: options.connectTimeoutSeconds ?? 10,
    onnotice: () => {},
    types: { utcTimestamp } as unknown as Record<string, postgres.PostgresType>,
    connection: {
      application_name: options.applicationName ?? "backend-scheduler",
      TimeZone: "UTC",
      idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? 5000,
      lock_timeout: options.lockTimeoutMs ?? 5000,
      statement_timeout: options.statementTimeoutMs ?? 60_000,
      // Short OLTP statements: JIT compilation only adds latency to them.
      jit: "off",
    } as Record<string, string | number>,
  });
}

const MIGRATION_LOCK = "backend-scheduler:migrations";

/**
 * Bring the database to LATEST_VERSION. Each migration runs in its own transaction
 * under a transaction-scoped advisory lock, so two replicas starting together both
 * succeed and each migration runs once. A database ahead of this code refuses to start.
 */
export async function migrate(sql: Sql, logger?: Logger): Promise<{ applied: number[]; version: number }> {
  const applied: number[] = [];
  try {
    for (const migration of MIGRATIONS) {
      await sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(hashtext(${MIGRATION_LOCK}))`;
        await tx`CREATE SCHEMA IF NOT EXISTS scheduler`;
        await tx`
          CREATE TABLE IF NOT EXISTS scheduler.migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            ran_at timestamptz NOT NULL DEFAULT now()
          )`;
        const [row] = await tx<
          { max: number | null }[]
        >`SELECT max(version) AS max FROM scheduler.migrations`;
        const current = row?.max ?? 0;
        if (current > LATEST_VERSION) {
          throw new SchedulerError(
            "DB_AHEAD_OF_CODE",
            `database schema is at version ${current}, newer than this scheduler's ${LATEST_VERSION}; upgrade the scheduler`,
          );
        }
        if (current >= migration.version) return;
        // Insert the row first so that a concurrent migrator without the lock would clash cleanly.
        await tx`INSERT INTO scheduler.migrations (version, name) VALUES (${migration.version}, ${migration.name})`;
        await tx.unsafe(migration.sql);
        applied.push(migration.version);
        logger?.info({ version: migration.version, name: migration.name }, "migration applied");
      });
    }
  } catch (error) {
    if (error instanceof SchedulerError) throw error;
    throw toSchedulerError(error, "DB_QUERY_FAILED");
  }
  return { applied, version: LATEST_VERSION };
}

/** True when the database answers a trivial query (the readiness check). */
export async function ping(sql: Sql, timeoutMs = 2000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    return await Promise.race([sql`SELECT 1`.then(() => true), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
