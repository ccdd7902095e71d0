/**
 * Fault suite, database side (issue 8), on the real PostgreSQL without ever restarting it:
 *  - the connection cut mid-apply through a TCP proxy: the transaction is all or nothing, the
 *    loop reports errors while cut and resumes when the proxy is restored;
 *  - slow queries: an apply waiting on rows another session holds past lock_timeout, and one
 *    slowed by a pg_sleep trigger past statement_timeout: the loop reports the error, applies
 *    nothing partially, and recovers;
 *  - the database unreachable for longer than the lease, for the leader only (a partition)
 *    and then for every replica: the leader steps down, one leader resumes, nothing is
 *    written twice (two scheduler processes, each through its own proxy, on a fast clock).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import postgres from "postgres";
import { type ConnectOptions, connect } from "../controller/database.js";
import type { Simulator } from "../controller/simulator/index.js";
import { createTestDatabase, type TestDatabase } from "./support/database.js";
import {
  cutBetweenTransactions,
  type Replica,
  type SharedClock,
  schedulerStatus,
  sharedClock,
  startReplica,
  startSharedSimulator,
  stopReplicas,
  viaPort,
  waitForOneLeader,
} from "./support/fault-cluster.js";
import { finish, ids, type Scenario, scenario, step } from "./support/fault-scenario.js";
import {
  assertNothingLost,
  assertRoundScored,
  assertScoredOnce,
  insertFixtures,
  MIN,
  predictionStatuses,
  snapshot,
  waitFor,
} from "./support/faults.js";
import { ANCHOR, pickRound, seedPredictions, seedUsers } from "./support/harness.js";
import { sleep } from "./support/process.js";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.js";

interface DbScenario {
  s: Scenario;
  real: TestDatabase;
  /** A plain session of the test's own (no scheduler timeouts), to hold locks with. */
  admin: postgres.Sql;
  proxy: TcpProxy | undefined;
  close(): Promise<void>;
}

/** A scenario whose reconciler reaches its database through `options` (and maybe a proxy). */
async function dbScenario(
  label: string,
  options: { proxied?: boolean; connect?: Partial<ConnectOptions> } = {},
): Promise<DbScenario> {
  const real = await createTestDatabase(label, { migrate: true });
  const proxy = options.proxied ? await startTcpProxy(Number(new URL(real.url).port || 5432)) : undefined;
  const sql = connect({
    url: proxy ? viaPort(real.url, proxy.port) : real.url,
    max: 4,
    connectTimeoutSeconds: 2,
    ...options.connect,
  });
  const admin = postgres(real.url, { max: 2, onnotice: () => {} });
  const s = await scenario(label, { db: { ...real, sql } });
  return {
    s,
    real,
    admin,
    proxy,
    async close() {
      await s.h.close();
      await sql.end({ timeout: 1 }).catch(() => {});
      await admin.end({ timeout: 1 }).catch(() => {});
      await proxy?.close();
      await real.drop();
    },
  };
}

/** Hold FOR UPDATE locks on the predictions of `fixtureIds` in a session of the test's own. */
async function holdPredictionLocks(admin: postgres.Sql, fixtureIds: number[]) {
  const session = await admin.reserve();
  await session`BEGIN`;
  const rows = await session`
    SELECT id FROM user_predictions WHERE fixture_id = ANY(${fixtureIds}) FOR UPDATE`;
  assert.ok(rows.length > 0, "the test holds prediction rows");
  return async () => {
    await session`ROLLBACK`.catch(() => {});
    session.release();
  };
}

describe("database faults", () => {
  test("connection cut through the proxy (reset, then black hole): passes report it, nothing partial, the loop resumes", async () => {
    // Cut between transactions: postgres.js 3.4.10 crashes the whole process when a connection
    // closes inside one (it writes ROLLBACK to a null socket from a setImmediate, upstream
    // porsager/postgres#1208); that is reported, not exercised here. All-or-nothing of a
    // transaction that does not finish is covered by the timeout cases below and by kill -9.
    const d = await dbScenario("faults_db_cut", { proxied: true });
    try {
      const { s, proxy } = d;
      const kicked = ids(s.at(0));
      const runsBefore = await d.real.sql`SELECT id FROM scheduler.reconcile_runs`;
      proxy!.cut("reset");
      const cut = await step(s.h, s.kickoffs[0]! + 10 * MIN);
      assert.equal(cut.result, "error", "a pass without the database fails");
      assert.match(cut.error ?? "", /DB_UNAVAILABLE/, cut.error ?? "");
      const sweep = await s.h.reconciler.reconcileOnce({ useApi: false });
      assert.equal(sweep.result, "error", "so does a sweep; neither throws");
      assert.equal(
        s.h.reconciler.snapshot(s.h.clock.now()).last_reconcile?.result,
        "error",
        "/status says so",
      );
      // A black hole: a pass waits (nothing answers) until the connection is given up.
      proxy!.restore();
      proxy!.cut("blackhole");
      let settled = false;
      const hanging = s.h.reconciler.reconcileOnce({ useApi: false }).finally(() => {
        settled = true;
      });
      await sleep(1000);
      const mid = await snapshot(d.real.sql);
      for (const id of kicked)
        assert.equal(mid.fixtures.get(id)?.xmin, s.start.fixtures.get(id)?.xmin, "row kept");
      assert.ok((await predictionStatuses(d.real.sql, kicked)).SUBMITTED, "nothing applied while cut");
      assert.equal(
        (await d.real.sql`SELECT id FROM scheduler.reconcile_runs`).length,
        runsBefore.length,
        "no run recorded while cut",
      );
      assertNothingLost(s.start, mid, { label: "cut" });
      proxy!.restore();
      const ended = await hanging;
      assert.ok(settled, "the pass ended once the proxy dropped the dead connections");
      assert.ok(ended.result === "error" || ended.result === "success", `pass ended: ${ended.result}`);
      // Restored: the next pass applies everything.
      const resumed = await step(s.h, s.kickoffs[0]! + 12 * MIN);
      assert.equal(resumed.result, "success", `resumed: ${resumed.error}`);
      assert.equal(
        (await predictionStatuses(d.real.sql, kicked)).SUBMITTED,
        undefined,
        "locked after the restore",
      );
      const [row] = await d.real.sql<{ status: string }[]>`
        SELECT status::text FROM fixtures WHERE fixture_id = ${kicked[0]!}`;
      assert.equal(row?.status, "FIRST_HALF");
      await finish(s);
    } finally {
      await d.close();
    }
  });

  test("slow query: an apply waiting past lock_timeout is reported, applies nothing, and the loop recovers", async () => {
    const d = await dbScenario("faults_db_locked", { connect: { lockTimeoutMs: 1000 } });
    const { s, admin } = d;
    let stop: (() => Promise<void>) | undefined;
    try {
      const kicked = ids(s.at(0));
      const release = await holdPredictionLocks(admin, kicked);
      try {
        s.h.clock.set(new Date(s.kickoffs[0]! - 20_000));
        s.h.clock.setSpeed(10);
        stop = s.h.run();
        await waitFor(
          () =>
            /DB_LOCKED|lock timeout/i.test(
              s.h.reconciler.snapshot(s.h.clock.now()).last_reconcile?.error ?? "",
            ),
          20_000,
          "the loop to report the lock timeout",
          () => JSON.stringify(s.h.reconciler.snapshot(s.h.clock.now()).last_reconcile),
        );
        assert.ok(
          s.h.logLines.some((l) => l.includes("reconcile failed") && /lock timeout|DB_LOCKED/.test(l)),
          "the error is logged",
        );
        assert.ok((await predictionStatuses(d.real.sql, kicked)).SUBMITTED, "nothing applied yet");
      } finally {
        await release();
      }
      // The loop backs off and retries on its own.
      await waitFor(
        async () => (await predictionStatuses(d.real.sql, kicked)).SUBMITTED === undefined,
        20_000,
        "the loop to lock once the rows are free",
      );
      await waitFor(
        () => s.h.reconciler.snapshot(s.h.clock.now()).last_reconcile?.result === "success",
        20_000,
        "a successful reconcile",
      );
      await stop();
      stop = undefined;
      assertNothingLost(s.start, await snapshot(d.real.sql), { label: "lock timeout" });
      await finish(s);
    } finally {
      await stop?.();
      await d.close();
    }
  });

  test("slow query: a pg_sleep trigger past statement_timeout rolls the apply back; dropped, the loop recovers", async () => {
    const d = await dbScenario("faults_db_sleep", { connect: { statementTimeoutMs: 1000 } });
    const { s, admin } = d;
    try {
      await admin.unsafe(`
        CREATE FUNCTION fault_slow() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN PERFORM pg_sleep(1.5); RETURN NEW; END $$;
        CREATE TRIGGER fault_slow BEFORE UPDATE ON fixtures FOR EACH ROW EXECUTE FUNCTION fault_slow();`);
      const kicked = ids(s.at(0));
      assert.ok(kicked.length >= 1, "a row to slow down");
      const slow = await step(s.h, s.kickoffs[0]! + 10 * MIN);
      assert.equal(slow.result, "error", "the slowed apply fails");
      assert.match(slow.error ?? "", /statement timeout|DB_LOCKED/i, slow.error ?? "");
      const mid = await snapshot(d.real.sql);
      for (const id of kicked) assert.equal(mid.fixtures.get(id)?.status, "NOT_STARTED", "rolled back");
      assert.ok((await predictionStatuses(d.real.sql, kicked)).SUBMITTED, "locks rolled back with it");
      assertNothingLost(s.start, mid, { label: "statement timeout" });
      await admin.unsafe("DROP TRIGGER fault_slow ON fixtures; DROP FUNCTION fault_slow()");
      const ok = await step(s.h, s.kickoffs[0]! + 11 * MIN);
      assert.equal(ok.result, "success", `recovered: ${ok.error}`);
      assert.equal((await predictionStatuses(d.real.sql, kicked)).SUBMITTED, undefined);
      await finish(s);
    } finally {
      await d.close();
    }
  });
});

describe("a term that ends while a query hangs", () => {
  test("slow query at a step-down: the next term runs once the old one has wound down", async () => {
    const d = await dbScenario("faults_db_term", { connect: { lockTimeoutMs: 30_000 } });
    const { s, admin } = d;
    let stopSecond: (() => Promise<void>) | undefined;
    try {
      const kicked = ids(s.at(0));
      // A session of the test's own takes the fixtures table: the loop's next read waits on it.
      const session = await admin.reserve();
      await session`BEGIN`;
      await session`LOCK TABLE fixtures IN ACCESS EXCLUSIVE MODE`;
      let firstStopped: Promise<void> | undefined;
      try {
        s.h.clock.set(new Date(s.kickoffs[0]! - 60_000));
        s.h.clock.setSpeed(10);
        const stopFirst = s.h.run();
        await waitFor(
          async () =>
            (
              await admin`SELECT 1 FROM pg_stat_activity
                WHERE datname = current_database() AND wait_event_type = 'Lock'`
            ).length > 0,
          10_000,
          "the loop to wait on the table",
        );
        // Leadership ends (the first term is aborted) and comes back at once, as after a
        // step-down and re-election, while the old term's query still waits.
        firstStopped = stopFirst();
        stopSecond = s.h.run();
      } finally {
        await session`ROLLBACK`;
        session.release();
      }
      await firstStopped;
      // The second term reconciles: kick-off locks land.
      await waitFor(
        async () => (await predictionStatuses(d.real.sql, kicked)).SUBMITTED === undefined,
        20_000,
        "the second term to lock at kick-off",
        () => JSON.stringify(s.h.reconciler.snapshot(s.h.clock.now())),
      );
      assert.equal(s.h.reconciler.snapshot(s.h.clock.now()).running, true, "the second term runs");
      await stopSecond();
      stopSecond = undefined;
      assertNothingLost(s.start, await snapshot(d.real.sql), { label: "term change" });
    } finally {
      await stopSecond?.();
      await d.close();
    }
  });
});

describe("database unreachable for longer than the lease (two scheduler processes)", () => {
  let db: TestDatabase;
  let sim: Simulator;
  let clock: SharedClock;
  let r1: Replica | undefined;
  let r2: Replica | undefined;
  let live: ReturnType<typeof pickRound>;

  before(async () => {
    db = await createTestDatabase("faults_db_outage", { migrate: true });
    // 2H of the first fixtures of a round, a minute of clock per real second.
    const probe = await startSharedSimulator(sharedClock(ANCHOR, 1));
    const round = pickRound(probe.fixtures(), 39, ANCHOR);
    await probe.close();
    const k0 = Math.min(...round.map((f) => f.kickoff.getTime()));
    live = round.filter((f) => f.kickoff.getTime() === k0);
    await insertFixtures(db.sql, live);
    await seedPredictions(db.sql, await seedUsers(db.sql, 8), live);
    clock = sharedClock(new Date(k0 + 85 * MIN), 60);
    sim = await startSharedSimulator(clock);
    const common = { databaseUrl: db.url, sim, clock, competitions: `39:${live[0]!.season}`, proxied: true };
    r1 = await startReplica({ ...common, id: "r1" });
    await waitForOneLeader([r1], 20_000);
    r2 = await startReplica({ ...common, id: "r2" });
  });

  after(async () => {
    await stopReplicas([r1, r2]);
    await sim?.close();
    await db?.drop();
  });

  test("the cut-off leader steps down, the other leads; on return one leader; nothing written twice", async () => {
    const replicas = [r1!, r2!];
    const first = await waitForOneLeader(replicas, 20_000);
    const other = replicas.find((r) => r !== first)!;
    await waitFor(
      async () => (await predictionStatuses(db.sql, ids(live))).SUBMITTED === undefined,
      20_000,
      "the leader to lock the live fixtures",
    );
    const [{ epoch: oldEpoch }] = (await db.sql`
      SELECT epoch::int AS epoch FROM scheduler.lease`) as unknown as [{ epoch: number }];

    // Partition: only the leader loses its database, for longer than the lease (3 s).
    await cutBetweenTransactions(db.sql, [first], "blackhole");
    const cutAt = Date.now();
    const seen = new Set<string>();
    let takeoverAt: number | undefined;
    while (Date.now() - cutAt < 5000) {
      const [a, b] = await Promise.all([schedulerStatus(first), schedulerStatus(other)]);
      seen.add(a);
      if (b === "running" && takeoverAt === undefined) takeoverAt = Date.now();
      await sleep(100);
    }
    assert.ok(seen.has("standby"), `the cut-off leader stepped down (saw ${[...seen].join(", ")})`);
    assert.ok(
      [...seen].every((x) => x === "running" || x === "standby"),
      `a database outage is never a liveness failure (/health said ${[...seen].join(", ")})`,
    );
    assert.ok(takeoverAt !== undefined, "the other replica took over during the partition");
    assert.equal(await schedulerStatus(first), "standby");
    first.proxy!.restore();
    assert.equal((await waitForOneLeader(replicas, 10_000)).id, other.id, "one leader after the return");
    const [takeover] = (await db.sql`
      SELECT holder, epoch::int AS epoch, acquired_at FROM scheduler.lease`) as unknown as [
      { holder: string; epoch: number; acquired_at: Date },
    ];
    assert.equal(takeover.holder, other.id);
    assert.ok(takeover.epoch > oldEpoch, "a new term");

    // Then every replica loses the database for longer than the lease.
    await cutBetweenTransactions(db.sql, replicas, "reset");
    await waitFor(
      async () => (await Promise.all(replicas.map((r) => schedulerStatus(r)))).every((x) => x === "standby"),
      10_000,
      "every replica to stand by while the database is gone",
    );
    await sleep(3500);
    assert.deepEqual(
      await Promise.all(replicas.map((r) => schedulerStatus(r))),
      ["standby", "standby"],
      "nobody leads without the database, and /health stays 200",
    );
    first.proxy!.restore();
    other.proxy!.restore();
    await waitForOneLeader(replicas, 15_000);

    // The round plays out; nothing written twice, nothing written by an old term after takeover.
    await waitFor(
      async () => {
        const s = await predictionStatuses(db.sql, ids(live));
        return s.LOCKED === undefined && s.SUBMITTED === undefined;
      },
      60_000,
      "the live fixtures to be scored",
      async () => {
        const status = async (r: Replica) => {
          const j = (await r.child.get("/status").catch(() => ({ json: null }))).json as Record<
            string,
            unknown
          >;
          return JSON.stringify({ leader: j?.leader, scheduler: j?.scheduler, last: j?.last_reconcile });
        };
        return `${JSON.stringify(await predictionStatuses(db.sql, ids(live)))}\n${await status(r1!)}\n${await status(r2!)}\n${r1!.child.describe()}\n${r2!.child.describe()}`;
      },
    );
    const processed = await assertRoundScored(db.sql, live);
    assert.ok(processed > 0, "scored");
    await assertScoredOnce(db.sql);
    const late = await db.sql`
      SELECT c.id FROM scheduler.fixture_changes c JOIN scheduler.reconcile_runs r ON r.id = c.run_id
       WHERE r.epoch = ${oldEpoch} AND c.changed_at > ${takeover.acquired_at}`;
    assert.equal(late.length, 0, "no change of the old term after the takeover");
    const [{ n: inserted }] = (await db.sql`
      SELECT count(*)::int AS n FROM scheduler.fixture_changes WHERE kind = 'insert'`) as unknown as [
      { n: number },
    ];
    const [{ n: fixtures }] = (await db.sql`
      SELECT count(*)::int AS n FROM fixtures`) as unknown as [{ n: number }];
    assert.equal(inserted + live.length, fixtures, "each fixture inserted once (the live ones were there)");
  });
});
