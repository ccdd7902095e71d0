/**
 * Three replicas as real processes (`node --import tsx controller/main.ts`) on one real
 * PostgreSQL database, LEADER_ELECTION=postgres, lease 3 s / renew deadline 2 s / retry
 * 0.5 s, asking a simulator in this process:
 *  - exactly one leader;
 *  - kill -9 of the leader → a standby leads within lease + retry;
 *  - SIGTERM of the leader → it exits 0 and a standby leads within 2 s;
 *  - SIGSTOP of the leader (while it waits on an API answer) past the lease, then SIGCONT
 *    → its write is refused by fencing (counted in its /metrics), it commits nothing after
 *    the takeover and no row is written twice.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Cluster, failoverOnce, startApi } from "../bench/failover.js";
import type { Simulator } from "../controller/simulator/index.js";
import { createTestDatabase, type TestDatabase } from "./support/database.js";
import { sleep } from "./support/process.js";

const LEASE_MS = 3000;
const RETRY_MS = 500;

let db: TestDatabase;
let sim: Simulator;
let cluster: Cluster;
let competition: string;
const ADMIN_TOKEN = "failover-test-admin-token-0123456789";

before(async () => {
  db = await createTestDatabase("failover", { migrate: true });
  const api = await startApi();
  sim = api.sim;
  competition = api.competitions;
  cluster = new Cluster({
    databaseUrl: db.url,
    apiUrl: sim.url,
    competitions: api.competitions,
    env: { ADMIN_TOKEN },
  });
  await Promise.all(["r1", "r2", "r3"].map((id) => cluster.add(id)));
});

after(async () => {
  await cluster?.close();
  await sim?.close();
  await db?.drop();
});

const fencingRejections = async (id: string) => {
  const text = (await cluster.replicas.get(id)!.get("/metrics")).text;
  const match = /^scheduler_fencing_rejections_total (\d+(?:\.\d+)?)$/m.exec(text);
  return match ? Number(match[1]) : Number.NaN;
};

describe("three replicas on one database", () => {
  test("exactly one leader, all agree on it, and the lease row names it", async () => {
    const leader = await cluster.waitForSingleLeader(["r1", "r2", "r3"], 20_000);
    const blocks = await cluster.leaderBlocks();
    assert.equal([...blocks.values()].filter((b) => b.is_leader).length, 1);
    for (const [id, block] of blocks) {
      assert.equal(block.holder, leader, `${id} sees ${leader}`);
      assert.equal(block.identity, id);
    }
    const [row] = await db.sql`SELECT holder, epoch FROM scheduler.lease WHERE name = 'backend-scheduler'`;
    assert.equal(row?.holder, leader);
    assert.equal(Number(row?.epoch), blocks.get(leader)!.epoch);
    const health = await cluster.replicas.get(leader)!.get("/health");
    assert.deepEqual(health.json, { status: "healthy", scheduler_status: "running" });
    const standby = [...blocks.keys()].find((id) => id !== leader)!;
    const standbyHealth = await cluster.replicas.get(standby)!.get("/health");
    assert.equal(standbyHealth.status, 200);
    assert.deepEqual(standbyHealth.json, { status: "healthy", scheduler_status: "standby" });
  });

  test("kill -9 of the leader: a standby leads within lease + retry", async () => {
    const r = await failoverOnce(cluster, "SIGKILL", "r4");
    assert.notEqual(r.next, r.leader);
    assert.ok(
      r.ms < LEASE_MS + RETRY_MS,
      `a standby led ${r.ms} ms after kill -9 (bound ${LEASE_MS + RETRY_MS} ms)`,
    );
    const alive = cluster.alive().map(([id]) => id);
    assert.equal(await cluster.waitForSingleLeader(alive, 10_000), r.next);
  });

  test("SIGTERM of the leader: it releases, exits 0, and a standby leads within 2 s", async () => {
    const r = await failoverOnce(cluster, "SIGTERM", "r5");
    assert.ok(r.ms < 2000, `a standby led ${r.ms} ms after SIGTERM`);
    const logs = cluster.replicas.get(r.leader)!.logs();
    assert.ok(
      logs.some((l) => l.msg === "stopped leading" && l.reason === "stopping"),
      "the old leader stepped down on stop",
    );
    const alive = cluster.alive().map(([id]) => id);
    assert.equal(await cluster.waitForSingleLeader(alive, 10_000), r.next);
  });

  test("SIGSTOP past the lease, then SIGCONT: the old leader's write is fenced, nothing is written twice", async () => {
    const alive = cluster.alive().map(([id]) => id);
    const leader = await cluster.waitForSingleLeader(alive, 10_000);
    const old = cluster.replicas.get(leader)!;
    const standbys = alive.filter((id) => id !== leader);
    const before = await fencingRejections(leader);
    const [{ epoch: oldEpoch }] = (await db.sql`
      SELECT epoch::int AS epoch FROM scheduler.lease WHERE name = 'backend-scheduler'`) as unknown as [
      { epoch: number },
    ];

    // Catch the leader with an API call in flight: the simulator leaves the next one unanswered.
    sim.clearLog();
    sim.setFaults({ hangNext: 1 });
    // An operator's resync makes the leader ask the API for the season at once.
    const resync = await fetch(`${old.baseUrl}/api/v1/competitions/${competition}/resync`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    assert.equal(resync.status, 202);
    await waitUntil(
      () => sim.requestLog().some((e) => e.status === 0),
      10_000,
      "the leader's API call to hang",
    );
    old.child.kill("SIGSTOP");
    const stoppedAt = Date.now();
    try {
      const { id: next } = await cluster.waitForNewLeader(standbys, stoppedAt, 20_000);
      const [takeover] = (await db.sql`
        SELECT holder, epoch::int AS epoch, acquired_at FROM scheduler.lease WHERE name = 'backend-scheduler'`) as unknown as [
        { holder: string; epoch: number; acquired_at: Date },
      ];
      assert.equal(takeover.holder, next);
      assert.ok(takeover.epoch > oldEpoch);
      // Well past the old lease, then wake the old leader up.
      await sleep(Math.max(0, stoppedAt + LEASE_MS + RETRY_MS - Date.now()));
      const runsBefore = await db.sql`SELECT id FROM scheduler.reconcile_runs WHERE holder = ${leader}`;
      old.child.kill("SIGCONT");

      // Its pending reconcile reaches its write transaction: the fence refuses it.
      await waitUntilAsync(
        async () => (await fencingRejections(leader)) > before,
        10_000,
        "a fencing rejection",
      );
      // (pino writes asynchronously: the log line may trail the metric a little)
      await waitUntil(
        () => old.logs().some((l) => l.msg === "reconcile failed" && l.code === "FENCED"),
        5000,
        "the old leader to log its fenced reconcile",
      );
      await cluster.waitForSingleLeader(alive, 10_000);
      const blocks = await cluster.leaderBlocks();
      assert.equal(blocks.get(leader)?.is_leader, false, "the old leader is a standby now");
      assert.equal(blocks.get(leader)?.holder, next);

      // It committed nothing after the takeover…
      const runsAfter = await db.sql`SELECT id FROM scheduler.reconcile_runs WHERE holder = ${leader}`;
      assert.equal(runsAfter.length, runsBefore.length, "no reconcile run of the old leader after SIGCONT");
      const late = await db.sql`
        SELECT c.id FROM scheduler.fixture_changes c JOIN scheduler.reconcile_runs r ON r.id = c.run_id
         WHERE r.holder = ${leader} AND r.epoch = ${oldEpoch} AND c.changed_at >= ${takeover.acquired_at}`;
      assert.equal(late.length, 0, "no change of the old term after the takeover");
      // …and no row was written twice: each fixture inserted once, no change recorded twice.
      const twiceInserted = await db.sql`
        SELECT fixture_id FROM scheduler.fixture_changes WHERE kind = 'insert' GROUP BY fixture_id HAVING count(*) > 1`;
      assert.equal(twiceInserted.length, 0);
      const inserted =
        await db.sql`SELECT count(*)::int AS n FROM scheduler.fixture_changes WHERE kind = 'insert'`;
      const fixtures = await db.sql`SELECT count(*)::int AS n FROM fixtures`;
      assert.ok(fixtures[0]!.n > 0, "the leaders did write fixtures");
      assert.equal(inserted[0]!.n, fixtures[0]!.n);
    } finally {
      old.child.kill("SIGCONT");
    }
  });
});

async function waitUntil(condition: () => boolean, timeoutMs: number, label: string) {
  await waitUntilAsync(async () => condition(), timeoutMs, label);
}

async function waitUntilAsync(condition: () => Promise<boolean>, timeoutMs: number, label: string) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}`);
    await sleep(50);
  }
}
