/**
 * The embedded default (PGlite under DATA_DIR, served by pglite-socket, reached through the
 * same `postgres` driver): the same migrations as on the real PostgreSQL, data that
 * survives a restart, the DATA_DIR lock (a stale one is taken over; a live second process
 * is refused with one clear line naming DATA_DIR).
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { connect, migrate, type Sql } from "../controller/database.js";
import { type EmbeddedDatabase, startEmbeddedDatabase } from "../controller/embedded-database.js";
import { LATEST_VERSION, MIGRATIONS } from "../controller/migrations.js";
import {
  catalogSnapshot,
  describeColumns,
  describeConstraints,
  enumLabels,
  HOST_COLUMNS,
  HOST_CONSTRAINTS,
  MATCH_STATUSES,
  PREDICTION_STATUSES,
  SCHEDULER_TABLES,
  tablesIn,
} from "./support/catalog.js";
import { createTestDatabase } from "./support/database.js";
import { minimalEnv, startScheduler, startSchedulerHttp, tempDir } from "./support/process.js";

const ALL_VERSIONS = MIGRATIONS.map((m) => m.version);
const LOCK_FILE = "scheduler.lock";

let tmp: ReturnType<typeof tempDir>;
before(() => {
  tmp = tempDir("embedded");
});
after(() => {
  tmp.remove();
});

/** Start the embedded database and a one-connection pool on it (PGlite is single-connection). */
async function open(
  dataDir: string,
): Promise<{ embedded: EmbeddedDatabase; sql: Sql; close(): Promise<void> }> {
  const embedded = await startEmbeddedDatabase(dataDir);
  const sql = connect({ url: embedded.url, max: 1 });
  return {
    embedded,
    sql,
    async close() {
      await sql.end({ timeout: 5 });
      await embedded.close();
    },
  };
}

describe("embedded PGlite database", () => {
  const dataDir = () => path.join(tmp.dir, "data");

  test("the same migrations as on PostgreSQL: everything created, a second run changes nothing", async () => {
    const db = await open(dataDir());
    try {
      assert.match(db.embedded.url, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
      const first = await migrate(db.sql);
      assert.deepEqual(first.applied, ALL_VERSIONS);
      assert.deepEqual(await enumLabels(db.sql, "matchstatus"), MATCH_STATUSES);
      assert.deepEqual(await enumLabels(db.sql, "predictionstatus"), PREDICTION_STATUSES);
      assert.deepEqual(await tablesIn(db.sql, "public"), ["fixtures", "user_predictions", "users"]);
      for (const [table, columns] of Object.entries(HOST_COLUMNS)) {
        assert.deepEqual(await describeColumns(db.sql, table), columns, `columns of ${table}`);
        assert.deepEqual(
          await describeConstraints(db.sql, table),
          HOST_CONSTRAINTS[table],
          `keys of ${table}`,
        );
      }
      assert.deepEqual(await tablesIn(db.sql, "scheduler"), SCHEDULER_TABLES);

      const snapshot = await catalogSnapshot(db.sql);
      const second = await migrate(db.sql);
      assert.deepEqual(second.applied, []);
      assert.equal(second.version, LATEST_VERSION);
      assert.deepEqual(await catalogSnapshot(db.sql), snapshot);

      // One dialect: the catalog matches the real PostgreSQL's after the same migrations.
      const real = await createTestDatabase("embedded_reference", { migrate: true });
      try {
        const realSnapshot = await catalogSnapshot(real.sql);
        assert.deepEqual(snapshot, realSnapshot);
      } finally {
        await real.drop();
      }

      // UTC timestamps round-trip through pglite-socket as on the real server.
      await db.sql`INSERT INTO users (username, hashed_password, created_at)
        VALUES ('ana', 'x', ${new Date("2025-08-16T14:00:00Z")})`;
      const [row] = await db.sql<{ created_at: Date; text: string }[]>`
        SELECT created_at, created_at::text AS text FROM users WHERE username = 'ana'`;
      assert.equal(row?.created_at.toISOString(), "2025-08-16T14:00:00.000Z");
      assert.equal(row?.text, "2025-08-16 14:00:00");
    } finally {
      await db.close();
    }
    assert.equal(existsSync(path.join(dataDir(), LOCK_FILE)), false, "close releases the lock file");
  });

  test("data survives a restart; migrations do not run again", async () => {
    const db = await open(dataDir());
    try {
      const again = await migrate(db.sql);
      assert.deepEqual(again.applied, [], "already at the latest version");
      const [row] = await db.sql<{ username: string }[]>`SELECT username FROM users WHERE username = 'ana'`;
      assert.equal(row?.username, "ana", "the row written before the restart is still there");
      const versions = await db.sql<
        { version: number }[]
      >`SELECT version FROM scheduler.migrations ORDER BY 1`;
      assert.deepEqual(
        versions.map((v) => v.version),
        ALL_VERSIONS,
      );
      await db.sql`INSERT INTO users (username, hashed_password) VALUES ('bo', 'y')`;
    } finally {
      await db.close();
    }
    const db2 = await open(dataDir());
    try {
      const names = await db2.sql<{ username: string }[]>`SELECT username FROM users ORDER BY 1`;
      assert.deepEqual(
        names.map((n) => n.username),
        ["ana", "bo"],
      );
    } finally {
      await db2.close();
    }
  });

  test("a stale lock file (its process is gone) is taken over", async () => {
    const dir = dataDir(); // already initialised: a fresh PGlite directory costs seconds
    // A pid that cannot be alive: a child that has already exited.
    const child = startScheduler({ args: ["--version"], env: minimalEnv() });
    const exit = await child.waitForExit(20_000);
    assert.equal(exit.code, 0);
    const deadPid = child.pid!;
    writeFileSync(path.join(dir, LOCK_FILE), `${deadPid}\n`);
    const db = await open(dir);
    try {
      assert.equal(readFileSync(path.join(dir, LOCK_FILE), "utf8").trim(), String(process.pid));
      const [row] = await db.sql<{ one: number }[]>`SELECT 1 AS one`;
      assert.equal(row?.one, 1);
    } finally {
      await db.close();
    }
  });

  test("a second scheduler process on the same DATA_DIR is refused with one clear line", async () => {
    const dir = dataDir();
    const env = minimalEnv({ DATA_DIR: dir, HOST: "127.0.0.1", LOG_LEVEL: "warn" });
    const first = await startSchedulerHttp({ env, cwd: tmp.dir });
    try {
      // Ready: the embedded database is up and migrated (the demo simulator starts too).
      await first.waitForHttp("/ready", (a) => a.status === 200, 60_000);
      assert.equal(readFileSync(path.join(dir, LOCK_FILE), "utf8").trim(), String(first.pid));

      const second = await startSchedulerHttp({ env, cwd: tmp.dir });
      const exit = await second.waitForExit(30_000);
      assert.notEqual(exit.code, 0, second.describe());
      const lines = exit.stderr.split("\n").filter((l) => l.trim() !== "");
      assert.equal(lines.length, 1, `one line on stderr\n${second.describe()}`);
      assert.match(lines[0]!, /^backend-scheduler: .*DATA_DIR/);
      assert.ok(lines[0]!.includes(dir), "names the directory");
      assert.ok(lines[0]!.includes(`pid ${first.pid}`), "names the holder");
      assert.doesNotMatch(exit.stderr, /^\s+at /m, "no stack trace");

      // The refused process left the first one and its lock alone.
      assert.equal((await first.get("/ready")).status, 200);
      assert.equal(readFileSync(path.join(dir, LOCK_FILE), "utf8").trim(), String(first.pid));

      const stopped = await first.signalAndWait("SIGTERM", 15_000);
      assert.equal(stopped.code, 0, first.describe());
      assert.equal(existsSync(path.join(dir, LOCK_FILE)), false, "a clean stop releases the lock");
    } finally {
      await first.kill();
    }
  });
});
