/**
 * Migrations on the real PostgreSQL (127.0.0.1:5432), a fresh database per scenario, all
 * created by and dropped with this file: an empty database gets everything; a second run
 * changes nothing; concurrent migrators (connections in this process, and separate
 * processes) all succeed and each migration runs once; a backend's existing tables and rows
 * are left exactly as they are; a database ahead of the code is refused.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { connect, migrate, type Sql } from "../controller/database.js";
import { SchedulerError } from "../controller/errors.js";
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
import { createTestDatabase, type TestDatabase } from "./support/database.js";
import { freePort, minimalEnv, REPO_ROOT, startScheduler, tempDir } from "./support/process.js";

/** database.ts's advisory lock key (held here to make migrators queue up behind it). */
const MIGRATION_LOCK = "backend-scheduler:migrations";
const ALL_VERSIONS = MIGRATIONS.map((m) => m.version);

const databases: TestDatabase[] = [];
let tmp: ReturnType<typeof tempDir>;
/** The catalog of a database migrated once from empty: the reference the others compare to. */
let reference: string[] | undefined;

async function freshDatabase(label: string): Promise<TestDatabase> {
  const db = await createTestDatabase(`migrations_${label}`);
  databases.push(db);
  return db;
}

before(() => {
  tmp = tempDir("migrations");
});
after(async () => {
  await Promise.all(databases.map((db) => db.drop()));
  tmp.remove();
});

async function migrationRows(sql: Sql): Promise<number[]> {
  const rows = await sql<{ version: number }[]>`SELECT version FROM scheduler.migrations ORDER BY version`;
  return rows.map((r) => r.version);
}

async function referenceCatalog(): Promise<string[]> {
  if (!reference) {
    const db = await freshDatabase("reference");
    await migrate(db.sql);
    reference = await catalogSnapshot(db.sql);
  }
  return reference;
}

/**
 * Hold the migration lock on one connection, run `start()` (which launches migrators),
 * wait until `waiters` sessions queue on the lock, then let go. Proves they really raced.
 */
async function raceBehindLock<T>(
  db: TestDatabase,
  waiters: number,
  start: () => T,
  failed: (started: T) => string | undefined = () => undefined,
): Promise<T> {
  let started: T | undefined;
  // Its own connection: the default idle-in-transaction bound (5 s) would end the holder
  // while child processes are still starting on a busy machine.
  const holder = connect({ url: db.url, max: 1, idleInTransactionTimeoutMs: 120_000 });
  try {
    await holder.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(hashtext(${MIGRATION_LOCK}))`;
      started = start();
      const deadline = Date.now() + 20_000;
      for (;;) {
        const [row] = await db.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM pg_locks
        WHERE locktype = 'advisory' AND NOT granted
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`;
        if ((row?.n ?? 0) >= waiters) break;
        const failure = failed(started as T);
        if (failure) throw new Error(failure);
        if (Date.now() > deadline)
          throw new Error(`only ${row?.n} of ${waiters} migrators queued on the lock`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    });
  } finally {
    await holder.end({ timeout: 5 });
  }
  return started as T;
}

describe("migrations on the real PostgreSQL", () => {
  test("an empty database gets the host tables, both enum types and the scheduler schema", async () => {
    const db = await freshDatabase("empty");
    const result = await migrate(db.sql);
    assert.deepEqual(result.applied, ALL_VERSIONS);
    assert.equal(result.version, LATEST_VERSION);

    assert.deepEqual(await enumLabels(db.sql, "matchstatus"), MATCH_STATUSES);
    assert.deepEqual(await enumLabels(db.sql, "predictionstatus"), PREDICTION_STATUSES);
    assert.deepEqual(await tablesIn(db.sql, "public"), ["fixtures", "user_predictions", "users"]);
    for (const [table, columns] of Object.entries(HOST_COLUMNS)) {
      assert.deepEqual(await describeColumns(db.sql, table), columns, `columns of ${table}`);
      assert.deepEqual(await describeConstraints(db.sql, table), HOST_CONSTRAINTS[table], `keys of ${table}`);
    }
    assert.deepEqual(await tablesIn(db.sql, "scheduler"), SCHEDULER_TABLES);
    assert.deepEqual(await migrationRows(db.sql), ALL_VERSIONS);

    // Timestamps are `timestamp without time zone` holding UTC, read back as UTC.
    await db.sql`INSERT INTO fixtures (fixture_id, date, season, home_team, away_team, league)
      VALUES (1, ${new Date("2025-08-16T14:00:00Z")}, '2025', 'A', 'B', 'Premier League')`;
    const [row] = await db.sql<{ date: Date; status: string; text: string }[]>`
      SELECT date, status, date::text AS text FROM fixtures WHERE fixture_id = 1`;
    assert.equal(row?.date.toISOString(), "2025-08-16T14:00:00.000Z");
    assert.equal(row?.text, "2025-08-16 14:00:00");
    assert.equal(row?.status, "NOT_STARTED");
  });

  test("a second run applies nothing and changes nothing in the catalog", async () => {
    const db = await freshDatabase("twice");
    await migrate(db.sql);
    const before = await catalogSnapshot(db.sql);
    const [ranAt] = await db.sql<
      { ran: Date[] }[]
    >`SELECT array_agg(ran_at ORDER BY version) AS ran FROM scheduler.migrations`;
    const again = await migrate(db.sql);
    assert.deepEqual(again.applied, []);
    assert.deepEqual(await catalogSnapshot(db.sql), before);
    const [ranAtAgain] = await db.sql<
      { ran: Date[] }[]
    >`SELECT array_agg(ran_at ORDER BY version) AS ran FROM scheduler.migrations`;
    assert.deepEqual(ranAtAgain?.ran, ranAt?.ran, "migration rows untouched");
    assert.deepEqual(before, await referenceCatalog(), "the same catalog as any other fresh database");
  });

  test("connections racing in one process: all succeed, each migration runs once", async () => {
    const db = await freshDatabase("race_in_process");
    const pools = [0, 1, 2].map(() => connect({ url: db.url, max: 1, lockTimeoutMs: 30_000 }));
    try {
      const results = await raceBehindLock(db, pools.length, () =>
        pools.map((pool) => migrate(pool).then((r) => r.applied)),
      );
      const applied = await Promise.all(results);
      assert.deepEqual(
        applied.flat().sort((a, b) => a - b),
        ALL_VERSIONS,
        `each version applied by exactly one migrator: ${JSON.stringify(applied)}`,
      );
      assert.deepEqual(await migrationRows(db.sql), ALL_VERSIONS);
      assert.deepEqual(await catalogSnapshot(db.sql), await referenceCatalog());
    } finally {
      await Promise.all(pools.map((pool) => pool.end({ timeout: 5 })));
    }
  });

  test("racing without any help (no lock held first): all succeed", async () => {
    const db = await freshDatabase("race_free");
    const pools = [0, 1, 2, 3].map(() => connect({ url: db.url, max: 1 }));
    try {
      const applied = await Promise.all(pools.map((pool) => migrate(pool).then((r) => r.applied)));
      assert.deepEqual(
        applied.flat().sort((a, b) => a - b),
        ALL_VERSIONS,
      );
      assert.deepEqual(await migrationRows(db.sql), ALL_VERSIONS);
    } finally {
      await Promise.all(pools.map((pool) => pool.end({ timeout: 5 })));
    }
  });

  test("two processes migrating at once: both exit 0, each migration ran once", async () => {
    const db = await freshDatabase("race_processes");
    const script = path.join(tmp.dir, "migrate-once.mts"); // .mts: ESM outside a "type": "module" package
    const database = pathToFileURL(path.join(REPO_ROOT, "controller/database.ts")).href;
    writeFileSync(
      script,
      [
        `import { connect, migrate } from ${JSON.stringify(database)};`,
        "const sql = connect({ url: process.env.MIGRATE_URL!, max: 1, lockTimeoutMs: 30_000 });",
        "try {",
        "  const result = await migrate(sql);",
        '  process.stdout.write(JSON.stringify(result) + "\\n");',
        "} finally {",
        "  await sql.end({ timeout: 5 });",
        "}",
        "",
      ].join("\n"),
    );
    const env = minimalEnv({ MIGRATE_URL: db.url });
    const children = await raceBehindLock(
      db,
      2,
      () => [0, 1].map(() => startScheduler({ script, env })),
      (started) => started.find((c) => c.hasExited)?.describe(),
    );
    try {
      const exits = await Promise.all(children.map((c) => c.waitForExit(30_000)));
      for (const exit of exits) assert.equal(exit.code, 0, `migrator failed: ${exit.stderr}`);
      const applied = exits.map((e) => (JSON.parse(e.stdout.trim()) as { applied: number[] }).applied);
      assert.deepEqual(
        applied.flat().sort((a, b) => a - b),
        ALL_VERSIONS,
        `each version applied by exactly one process: ${JSON.stringify(applied)}`,
      );
      assert.deepEqual(await migrationRows(db.sql), ALL_VERSIONS);
      assert.deepEqual(await catalogSnapshot(db.sql), await referenceCatalog());
    } finally {
      await Promise.all(children.map((c) => c.kill()));
    }
  });

  test("a backend's existing host tables and rows are left exactly as they are", async () => {
    const db = await freshDatabase("existing");
    // The backend's own shape: same contract columns plus extras, its own index and defaults.
    await db.sql.unsafe(`
      CREATE TYPE matchstatus AS ENUM (${MATCH_STATUSES.map((s) => `'${s}'`).join(", ")});
      CREATE TYPE predictionstatus AS ENUM (${PREDICTION_STATUSES.map((s) => `'${s}'`).join(", ")});
      CREATE TABLE users (
        id serial PRIMARY KEY,
        username varchar UNIQUE NOT NULL,
        email varchar UNIQUE,
        hashed_password varchar NOT NULL,
        is_active boolean DEFAULT true,
        created_at timestamp,
        favourite_team varchar(80),
        is_admin boolean NOT NULL DEFAULT false
      );
      CREATE TABLE fixtures (
        fixture_id integer PRIMARY KEY,
        date timestamp NOT NULL,
        status matchstatus NOT NULL DEFAULT 'NOT_STARTED',
        round varchar,
        season varchar NOT NULL,
        home_team varchar NOT NULL,
        away_team varchar NOT NULL,
        home_team_logo varchar(512),
        away_team_logo varchar(512),
        home_score integer,
        away_score integer,
        league varchar NOT NULL,
        competition_id integer,
        venue varchar,
        venue_city varchar,
        match_timestamp timestamp,
        last_updated timestamp,
        league_id integer,
        broadcaster text,
        CONSTRAINT fixtures_scores_check CHECK (home_score IS NULL OR home_score >= 0)
      );
      CREATE INDEX ix_fixtures_league_season ON fixtures (league_id, season);
      CREATE TABLE user_predictions (
        id serial PRIMARY KEY,
        user_id integer NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        fixture_id integer NOT NULL REFERENCES fixtures(fixture_id),
        week integer NOT NULL,
        season varchar NOT NULL,
        score1 integer NOT NULL DEFAULT 0,
        score2 integer NOT NULL DEFAULT 0,
        points integer NOT NULL DEFAULT 0,
        created timestamp NOT NULL DEFAULT now(),
        submission_time timestamp,
        last_modified timestamp,
        processed_at timestamp,
        prediction_status predictionstatus NOT NULL DEFAULT 'EDITABLE',
        bonus_type varchar(20),
        bonus_points integer NOT NULL DEFAULT 0,
        is_rivalry_week boolean NOT NULL DEFAULT false,
        client_note text DEFAULT 'web',
        UNIQUE (user_id, fixture_id)
      );
      INSERT INTO users (username, email, hashed_password, created_at, favourite_team, is_admin) VALUES
        ('ana', 'ana@example.test', 'x', '2025-01-02 03:04:05', 'Arsenal', true),
        ('bo', NULL, 'y', NULL, NULL, false);
      INSERT INTO fixtures (fixture_id, date, status, round, season, home_team, away_team, home_score,
                            away_score, league, league_id, last_updated, broadcaster) VALUES
        (1208021, '2025-08-15 19:00:00', 'FINISHED', 'Regular Season - 1', '2025', 'Liverpool',
         'Bournemouth', 4, 2, 'Premier League', 39, '2025-08-15 21:00:00', 'Sky'),
        (1208022, '2025-08-16 11:30:00', 'NOT_STARTED', 'Regular Season - 1', '2025', 'Aston Villa',
         'Newcastle', NULL, NULL, 'Premier League', 39, NULL, NULL);
      INSERT INTO user_predictions (user_id, fixture_id, week, season, score1, score2, points,
                                    created, prediction_status, processed_at, client_note) VALUES
        (1, 1208021, 1, '2025', 4, 2, 3, '2025-08-14 10:00:00', 'PROCESSED', '2025-08-15 21:05:00', 'ios'),
        (2, 1208021, 1, '2025', 1, 0, 1, '2025-08-14 11:00:00', 'PROCESSED', '2025-08-15 21:05:00', DEFAULT),
        (1, 1208022, 1, '2025', 2, 2, 0, '2025-08-14 12:00:00', 'SUBMITTED', NULL, DEFAULT);
    `);
    const rowsOf = async () => {
      const out: Record<string, unknown> = {};
      for (const table of ["users", "fixtures", "user_predictions"]) {
        out[table] = await db.sql.unsafe(`SELECT row_to_json(t)::text AS row FROM ${table} t ORDER BY 1`);
      }
      const [seq] = await db.sql`SELECT last_value FROM users_id_seq`;
      out.users_id_seq = seq;
      return out;
    };
    const rowsBefore = await rowsOf();
    const catalogBefore = await catalogSnapshot(db.sql);

    const result = await migrate(db.sql);
    assert.deepEqual(result.applied, ALL_VERSIONS);

    assert.deepEqual(await rowsOf(), rowsBefore, "rows untouched");
    const catalogAfter = await catalogSnapshot(db.sql);
    const removed = catalogBefore.filter((line) => !catalogAfter.includes(line));
    assert.deepEqual(removed, [], "nothing of the backend's was dropped or altered");
    const added = catalogAfter.filter((line) => !catalogBefore.includes(line));
    const foreign = added.filter(
      (line) =>
        !/^(schema scheduler|\w+ scheduler\.)/.test(line) &&
        !/^(index|relation) public\.scheduler_\w+_idx /.test(line),
    );
    assert.deepEqual(foreign, [], "only the scheduler's schema and its own indexes were added");
    assert.ok(added.some((l) => l.startsWith("relation scheduler.lease ")));
    assert.deepEqual(await tablesIn(db.sql, "scheduler"), SCHEDULER_TABLES);

    // And the backend's extras still work (defaults, check) after the migration.
    await db.sql`INSERT INTO user_predictions (user_id, fixture_id, week, season) VALUES (2, 1208022, 1, '2025')`;
    const [extra] =
      await db.sql`SELECT client_note FROM user_predictions WHERE user_id = 2 AND fixture_id = 1208022`;
    assert.equal(extra?.client_note, "web");
  });

  test("partly present host tables: the missing ones are created against the existing ones", async () => {
    const db = await freshDatabase("partial");
    await db.sql.unsafe(`
      CREATE TABLE users (id serial PRIMARY KEY, username varchar UNIQUE NOT NULL, email varchar UNIQUE,
        hashed_password varchar NOT NULL, is_active boolean DEFAULT true, created_at timestamp);
      INSERT INTO users (username, hashed_password) VALUES ('ana', 'x');
    `);
    await migrate(db.sql);
    assert.deepEqual(await tablesIn(db.sql, "public"), ["fixtures", "user_predictions", "users"]);
    assert.deepEqual(await describeColumns(db.sql, "user_predictions"), HOST_COLUMNS.user_predictions);
    assert.deepEqual(
      await describeConstraints(db.sql, "user_predictions"),
      HOST_CONSTRAINTS.user_predictions,
    );
    const [count] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM users`;
    assert.equal(count?.n, 1);
  });

  test("a database ahead of the code is refused, and left as it is", async () => {
    const db = await freshDatabase("ahead");
    await migrate(db.sql);
    const future = LATEST_VERSION + 1;
    await db.sql`INSERT INTO scheduler.migrations (version, name) VALUES (${future}, 'from a newer scheduler')`;
    const before = await catalogSnapshot(db.sql);
    await assert.rejects(migrate(db.sql), (error: unknown) => {
      assert.ok(error instanceof SchedulerError, `a SchedulerError, got ${String(error)}`);
      assert.equal(error.code, "DB_AHEAD_OF_CODE");
      assert.match(error.message, new RegExp(`version ${future}\\b.*\\b${LATEST_VERSION}\\b`));
      assert.match(error.message, /upgrade/);
      return true;
    });
    assert.deepEqual(await catalogSnapshot(db.sql), before);
    assert.deepEqual(await migrationRows(db.sql), [...ALL_VERSIONS, future]);

    // The program itself refuses to start: one line on stderr, non-zero exit, no stack trace.
    const child = startScheduler({
      env: minimalEnv({
        DATABASE_URL: db.url,
        SCHEDULER_DEMO: "true",
        PORT: String(await freePort()),
        HOST: "127.0.0.1",
        DATA_DIR: path.join(tmp.dir, "unused"),
      }),
      cwd: tmp.dir,
    });
    try {
      const exit = await child.waitForExit(30_000);
      assert.equal(exit.code, 1, child.describe());
      const lines = exit.stderr.split("\n").filter((l) => l.trim() !== "");
      assert.equal(lines.length, 1, child.describe());
      assert.match(
        lines[0]!,
        /^backend-scheduler: DB_AHEAD_OF_CODE: database schema is at version \d+, newer/,
      );
      assert.doesNotMatch(exit.stderr, /^\s+at /m);
    } finally {
      await child.kill();
    }
  });
});
