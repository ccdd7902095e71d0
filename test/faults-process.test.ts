/**
 * Fault suite, process side (issue 8): two scheduler replicas as real processes
 * (LEADER_ELECTION=postgres, lease 3 s / renew deadline 2 s / retry 0.5 s) on one database,
 * sharing a fast clock with the simulator (test/support/fault-cluster.ts):
 *  - kill -9 of the leader while its apply waits on rows the test holds: nothing of that
 *    transaction is visible, the standby applies it all once, nothing twice;
 *  - SIGSTOP of the leader with a transaction open: the database ends it (idle-in-transaction
 *    timeout), so the paused leader does not block the next one;
 *  - SIGSTOP before a kick-off, SIGCONT after the takeover: no kick-off lock missed, the old
 *    leader commits nothing, nothing written twice (test/failover.test.ts stops the leader
 *    during an API call, with no match starting);
 *  - SIGTERM just before a kick-off: the standby takes over and the kick-off's predictions are
 *    LOCKED within the contract's 5 s of clock time.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import postgres from "postgres";
import type { SimFixture, Simulator } from "../controller/simulator/index.js";
import { createTestDatabase, type TestDatabase } from "./support/database.js";
import {
  type Replica,
  type SharedClock,
  schedulerStatus,
  sharedClock,
  startReplica,
  startSharedSimulator,
  stopReplicas,
  waitForOneLeader,
} from "./support/fault-cluster.js";
import {
  assertScoredOnce,
  insertFixtures,
  MIN,
  predictionStatuses,
  snapshot,
  waitFor,
} from "./support/faults.js";
import { ANCHOR, pickRound, seedPredictions, seedUsers } from "./support/harness.js";
import { sleep } from "./support/process.js";

interface Cluster {
  db: TestDatabase;
  admin: postgres.Sql;
  sim: Simulator;
  clock: SharedClock;
  round: SimFixture[];
  k0: number;
  first: SimFixture[];
  competitions: string;
  replicas: Replica[];
  add(id: string): Promise<Replica>;
  close(): Promise<void>;
}

/** A round's fixtures and predictions in a fresh database; the clock `offsetMs` from the first kick-off. */
async function cluster(label: string, offsetMs: number, speed: number): Promise<Cluster> {
  const db = await createTestDatabase(label, { migrate: true });
  const probe = await startSharedSimulator(sharedClock(ANCHOR, 1));
  const round = pickRound(probe.fixtures(), 39, ANCHOR);
  await probe.close();
  const k0 = Math.min(...round.map((f) => f.kickoff.getTime()));
  await insertFixtures(db.sql, round);
  await seedPredictions(db.sql, await seedUsers(db.sql, 6), round, { editableEvery: 5 });
  const clock = sharedClock(new Date(k0 + offsetMs), speed);
  const sim = await startSharedSimulator(clock);
  const admin = postgres(db.url, { max: 2, onnotice: () => {} });
  const replicas: Replica[] = [];
  const competitions = `39:${round[0]!.season}`;
  return {
    db,
    admin,
    sim,
    clock,
    round,
    k0,
    first: round.filter((f) => f.kickoff.getTime() === k0),
    competitions,
    replicas,
    async add(id) {
      const r = await startReplica({ id, databaseUrl: db.url, sim, clock, competitions });
      replicas.push(r);
      return r;
    },
    async close() {
      await stopReplicas(replicas);
      await admin.end({ timeout: 1 }).catch(() => {});
      await sim.close();
      await db.drop();
    },
  };
}

const ids = (fixtures: SimFixture[]) => fixtures.map((f) => f.fixtureId);

async function holdPredictionLocks(admin: postgres.Sql, fixtureIds: number[]) {
  const session = await admin.reserve();
  await session`BEGIN`;
  const rows =
    await session`SELECT id FROM user_predictions WHERE fixture_id = ANY(${fixtureIds}) FOR UPDATE`;
  assert.ok(rows.length > 0, "the test holds prediction rows");
  let done = false;
  return async () => {
    if (done) return;
    done = true;
    await session`ROLLBACK`.catch(() => {});
    session.release();
  };
}

/** The backend of replica `id` waiting on a lock inside an apply that has written fixture rows. */
async function applyWaiting(admin: postgres.Sql, id: string): Promise<number | undefined> {
  const rows = await admin<{ pid: number }[]>`
    SELECT a.pid FROM pg_stat_activity a
     WHERE a.application_name = ${`backend-scheduler:${id}`} AND a.wait_event_type = 'Lock'
       AND EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                    WHERE l.pid = a.pid AND c.relname = 'fixtures' AND l.mode = 'RowExclusiveLock' AND l.granted)`;
  return rows[0]?.pid;
}

async function count(sql: TestDatabase["sql"], query: string): Promise<number> {
  const [row] = await sql.unsafe<{ n: number }[]>(query);
  return row?.n ?? 0;
}

/** After the test: each fixture inserted once, locked in one apply, scored at most once. */
async function assertNothingTwice(c: Cluster, insertedByTest = c.round.length) {
  await assertScoredOnce(c.db.sql);
  const fixtures = await count(c.db.sql, "SELECT count(*)::int AS n FROM fixtures");
  const inserted = await count(
    c.db.sql,
    "SELECT count(*)::int AS n FROM scheduler.fixture_changes WHERE kind = 'insert'",
  );
  assert.equal(inserted + insertedByTest, fixtures, "every fixture the scheduler added was inserted once");
}

describe("kill -9 of the leader mid-apply", () => {
  test("the transaction is all or nothing; the standby applies it once", async () => {
    const c = await cluster("faults_proc_kill", 2 * MIN, 20);
    let release: (() => Promise<void>) | undefined;
    try {
      const before = await snapshot(c.db.sql);
      // The first fixtures kicked off two minutes ago: every apply of the new leader (season
      // sync with 380 inserts, their rows under way, their locks) waits on the rows held here.
      release = await holdPredictionLocks(c.admin, ids(c.first));
      const r1 = await c.add("r1");
      await waitForOneLeader([r1], 20_000);
      const r2 = await c.add("r2");
      await waitFor(
        async () => (await applyWaiting(c.admin, "r1")) !== undefined,
        30_000,
        "the leader's apply to wait on the held rows with fixture rows written",
      );
      r1.child.child.kill("SIGKILL");
      await r1.child.exited;
      // Nothing of the killed transaction is visible.
      const mid = await snapshot(c.db.sql);
      assert.equal(mid.fixtures.size, before.fixtures.size, "none of the killed apply's inserts is visible");
      for (const [id, f] of before.fixtures)
        assert.equal(mid.fixtures.get(id)?.xmin, f.xmin, `fixture ${id}: no partial update`);
      for (const [id, p] of before.predictions)
        assert.equal(mid.predictions.get(id)?.prediction_status, p.prediction_status, `prediction ${id}`);
      assert.equal(
        await count(c.db.sql, "SELECT count(*)::int AS n FROM scheduler.reconcile_runs WHERE holder = 'r1'"),
        0,
        "no run of the killed leader committed",
      );
      await release();
      // The standby leads and applies everything once.
      await waitForOneLeader([r2], 20_000);
      await waitFor(
        async () => (await predictionStatuses(c.db.sql, ids(c.first))).SUBMITTED === undefined,
        30_000,
        "the new leader to lock the kicked-off fixtures",
        () => r2.child.describe(),
      );
      await waitFor(
        async () => (await count(c.db.sql, "SELECT count(*)::int AS n FROM fixtures")) > c.round.length,
        20_000,
        "the season sync",
      );
      const [row] = await c.db.sql<{ status: string }[]>`
        SELECT status::text FROM fixtures WHERE fixture_id = ${c.first[0]!.fixtureId}`;
      assert.notEqual(row?.status, "NOT_STARTED", "the row under way written by the new leader");
      await assertNothingTwice(c);
    } finally {
      await release?.();
      await c.close();
    }
  });
});

describe("SIGSTOP of the leader with a transaction open", () => {
  test("the database ends the paused transaction; the standby is not blocked and applies once", async () => {
    const c = await cluster("faults_proc_stop_tx", 2 * MIN, 20);
    let release: (() => Promise<void>) | undefined;
    try {
      release = await holdPredictionLocks(c.admin, ids(c.first));
      const r1 = await c.add("r1");
      await waitForOneLeader([r1], 20_000);
      const r2 = await c.add("r2");
      let pid: number | undefined;
      await waitFor(
        async () => {
          pid = await applyWaiting(c.admin, "r1");
          return pid !== undefined;
        },
        30_000,
        "the leader's apply to wait on the held rows",
      );
      r1.child.child.kill("SIGSTOP");
      // The rows are free: the paused leader's statement finishes and its transaction sits
      // idle, holding locks, with nobody to commit it…
      await release();
      await waitFor(
        async () =>
          (
            await c.admin`SELECT 1 FROM pg_stat_activity WHERE pid = ${pid!} AND state = 'idle in transaction'`
          ).length > 0 || (await c.admin`SELECT 1 FROM pg_stat_activity WHERE pid = ${pid!}`).length === 0,
        10_000,
        "the paused transaction to sit idle",
      );
      // …until the database ends it (idle_in_transaction_session_timeout, a third of the lease).
      await waitFor(
        async () => (await c.admin`SELECT 1 FROM pg_stat_activity WHERE pid = ${pid!}`).length === 0,
        10_000,
        "the database to end the paused transaction",
      );
      await waitFor(async () => (await schedulerStatus(r2)) === "running", 15_000, "the standby to lead");
      await waitFor(
        async () => (await predictionStatuses(c.db.sql, ids(c.first))).SUBMITTED === undefined,
        30_000,
        "the new leader to lock, not blocked by the paused one",
        () => r2.child.describe(),
      );
      assert.equal(
        await count(c.db.sql, "SELECT count(*)::int AS n FROM scheduler.reconcile_runs WHERE holder = 'r1'"),
        0,
        "the paused leader committed nothing",
      );
      await waitFor(
        async () => (await count(c.db.sql, "SELECT count(*)::int AS n FROM fixtures")) > c.round.length,
        20_000,
        "the season sync",
      );
      await assertNothingTwice(c);
    } finally {
      await release?.();
      await c.close();
    }
  });
});

describe("a live window: kick-offs across leader changes (three replicas)", () => {
  // The round's first kick-off at k0, and fixtures of a competition not kept in sync (so
  // locked by the clock alone, CONTRACT § 4) kicking off at k0 + 12 s: two kick-offs a few
  // seconds apart on a real-time clock.
  let c: Cluster;
  let second: SimFixture[];
  let replicas: Replica[];
  before(async () => {
    c = await cluster("faults_proc_live", -20_000, 1);
    second = c.first.map((f, i) => ({
      ...f,
      fixtureId: 8_000_001 + i,
      leagueId: 999,
      kickoff: new Date(c.k0 + 12_000),
    }));
    await insertFixtures(c.db.sql, second);
    await seedPredictions(c.db.sql, await seedUsers(c.db.sql, 4), second, { editableEvery: 3 });
    replicas = await Promise.all(["r1", "r2", "r3"].map((id) => c.add(id)));
  });
  after(async () => {
    await c?.close();
  });

  test("SIGSTOP before a kick-off, SIGCONT after the takeover: no lock missed, the old leader commits nothing", async () => {
    const leader = await waitForOneLeader(replicas, 20_000);
    const standbys = replicas.filter((r) => r !== leader);
    const untilStop = c.k0 - 2000 - c.clock.clock.now().getTime();
    assert.ok(untilStop > 0, `replicas up before the kick-off (${untilStop} ms left)`);
    await sleep(untilStop);
    leader.child.child.kill("SIGSTOP");
    const stoppedAt = Date.now();
    try {
      await waitFor(
        async () => (await Promise.all(standbys.map((r) => schedulerStatus(r)))).includes("running"),
        15_000,
        "a standby to lead",
      );
      await waitFor(
        async () => (await predictionStatuses(c.db.sql, ids(c.first))).SUBMITTED === undefined,
        15_000,
        "the kick-off locked by the new leader",
      );
      const [takeover] = await c.db.sql<{ holder: string; acquired_at: Date }[]>`
        SELECT holder, acquired_at FROM scheduler.lease`;
      assert.ok(takeover && takeover.holder !== leader.id, "a standby holds the lease");
      await sleep(Math.max(0, stoppedAt + 4000 - Date.now()));
      leader.child.child.kill("SIGCONT");
      await waitFor(
        async () => (await schedulerStatus(leader)) === "standby",
        10_000,
        "the old leader to stand by",
      );
      const late = await c.db.sql`
        SELECT id FROM scheduler.reconcile_runs WHERE holder = ${leader.id} AND finished_at > ${takeover!.acquired_at}`;
      assert.equal(late.length, 0, "nothing committed by the old leader after the takeover");
      assert.equal((await waitForOneLeader(replicas, 10_000)).id, takeover!.holder, "one leader");
      await assertNothingTwice(c, c.round.length + second.length);
    } finally {
      leader.child.child.kill("SIGCONT");
    }
  });

  test("SIGTERM just before a kick-off: a standby leads and locks within 5 s of kick-off", async () => {
    const leader = await waitForOneLeader(replicas, 10_000);
    const standbys = replicas.filter((r) => r !== leader);
    const kickoff = second[0]!.kickoff.getTime();
    const untilTerm = kickoff - 1000 - c.clock.clock.now().getTime();
    assert.ok(untilTerm > 0, `the second kick-off is still ahead (${untilTerm} ms left)`);
    assert.ok((await predictionStatuses(c.db.sql, ids(second))).SUBMITTED, "SUBMITTED before the kick-off");
    await sleep(untilTerm);
    const exit = leader.child.signalAndWait("SIGTERM", 15_000);
    await waitFor(
      async () => (await Promise.all(standbys.map((r) => schedulerStatus(r)))).includes("running"),
      5000,
      "a standby to lead",
    );
    await waitFor(
      async () => (await predictionStatuses(c.db.sql, ids(second))).SUBMITTED === undefined,
      15_000,
      "the kick-off locked",
    );
    const locks = await c.db.sql<{ fixture_id: number; t: Date }[]>`
      SELECT fixture_id, clock_time AS t FROM scheduler.fixture_changes
       WHERE kind = 'lock' AND fixture_id = ANY(${ids(second)})`;
    assert.equal(locks.length, second.length, "each fixture locked in one apply");
    for (const l of locks) {
      const delay = l.t.getTime() - kickoff;
      assert.ok(delay >= 0 && delay <= 5000, `fixture ${l.fixture_id} locked ${delay} ms after kick-off`);
    }
    const statuses = await predictionStatuses(c.db.sql, ids(second));
    assert.ok((statuses.EDITABLE ?? 0) > 0, "EDITABLE predictions left alone");
    const e = await exit;
    assert.equal(e.code, 0, `the old leader exits 0\n${leader.child.describe()}`);
    await assertNothingTwice(c, c.round.length + second.length);
  });
});
