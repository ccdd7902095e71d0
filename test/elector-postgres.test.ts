/**
 * The PostgreSQL lease elector, in process, on the real PostgreSQL (one database for this
 * file). Short timings: lease 1.2 s, renew deadline 0.8 s, retry 0.2 s unless a test needs
 * otherwise.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { pino } from "pino";
import type { Elector, ElectorOptions } from "../controller/elector.js";
import { createPostgresElector } from "../controller/elector-postgres.js";
import { SchedulerError } from "../controller/errors.js";
import { acquireOrRenewLease, readLease } from "../controller/lease-queries.js";
import { createMetrics, type Metrics } from "../controller/metrics.js";
import { createTestDatabase, type TestDatabase } from "./support/database.js";
import { startTcpProxy } from "./support/tcp-proxy.js";
import { waitFor } from "./support/wait.js";

const FAST = { leaseDurationMs: 1200, renewDeadlineMs: 800, retryPeriodMs: 200 };
// Logs to stderr, silent unless TEST_LOG_LEVEL is set (e.g. TEST_LOG_LEVEL=debug).
const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }, pino.destination(2));

let db: TestDatabase;
let leaseCounter = 0;
const everyReplica: Replica[] = [];

before(async () => {
  db = await createTestDatabase("elector_postgres", { migrate: true });
  await db.sql`CREATE TABLE fenced_writes (id serial PRIMARY KEY, writer text NOT NULL, epoch bigint NOT NULL)`;
});
after(async () => {
  // A failed test may leave electors running: stop them all (stop() is idempotent).
  await Promise.all(everyReplica.map((r) => r.elector.stop()));
  await db.drop();
});

interface Replica {
  elector: Elector;
  metrics: Metrics;
  started: { epoch: number; signal: AbortSignal; at: number }[];
  stoppedAt: number[];
  leaders: (string | null)[];
}

const counter = (m: { get(): Promise<{ values: { value: number }[] }> }) =>
  m.get().then((v) => v.values[0]?.value ?? 0);

function replica(identity: string, leaseName: string, overrides: Partial<ElectorOptions> = {}): Replica {
  const metrics = createMetrics();
  const options: ElectorOptions = {
    identity,
    leaseName,
    leaseNamespace: undefined,
    ...FAST,
    sql: db.sql,
    databaseUrl: db.url,
    logger,
    metrics,
    ...overrides,
  };
  const r: Replica = {
    elector: createPostgresElector(options),
    metrics,
    started: [],
    stoppedAt: [],
    leaders: [],
  };
  everyReplica.push(r);
  return r;
}

async function start(r: Replica) {
  await r.elector.start({
    onStartedLeading: (signal, epoch) => r.started.push({ signal, epoch, at: Date.now() }),
    onStoppedLeading: () => r.stoppedAt.push(Date.now()),
    onNewLeader: (identity) => r.leaders.push(identity),
  });
  return r;
}

const newLease = () => `lease-${++leaseCounter}`;

describe("lease statements", () => {
  test("acquire, renew, refuse while held, take over once expired; epoch and transitions", async () => {
    const name = newLease();
    const first = await acquireOrRenewLease(db.sql, { name, identity: "a", durationMs: 300, epoch: null });
    assert.equal(first?.acquired, true);
    assert.equal(first?.epoch, 1);
    assert.equal(first?.transitions, 0);

    const renewed = await acquireOrRenewLease(db.sql, { name, identity: "a", durationMs: 300, epoch: 1 });
    assert.deepEqual([renewed?.acquired, renewed?.epoch, renewed?.transitions], [true, 1, 0]);
    assert.ok(renewed!.renewedAt! >= first!.renewedAt!);
    assert.deepEqual(renewed!.acquiredAt, first!.acquiredAt);

    const refused = await acquireOrRenewLease(db.sql, { name, identity: "b", durationMs: 300, epoch: null });
    assert.deepEqual([refused?.acquired, refused?.holder, refused?.epoch], [false, "a", 1]);
    assert.ok(refused!.expiresInMs > 0 && refused!.expiresInMs <= 300);

    // Our own identity with another (or no) term is not a renewal: taken only once expired.
    const sameName = await acquireOrRenewLease(db.sql, { name, identity: "a", durationMs: 300, epoch: null });
    assert.equal(sameName?.acquired, false);

    await new Promise((r) => setTimeout(r, 350));
    const taken = await acquireOrRenewLease(db.sql, { name, identity: "b", durationMs: 300, epoch: null });
    assert.deepEqual([taken?.acquired, taken?.holder, taken?.epoch, taken?.transitions], [true, "b", 2, 1]);

    // The expired leader cannot renew its old term any more.
    const late = await acquireOrRenewLease(db.sql, { name, identity: "a", durationMs: 300, epoch: 1 });
    assert.deepEqual([late?.acquired, late?.holder], [false, "b"]);
  });
});

describe("postgres elector", () => {
  test("acquires, renews by the database clock and reports its state; a second replica stays standby", async () => {
    const name = newLease();
    const a = await start(replica("a", name));
    await waitFor(() => a.started.length === 1, 3000, "a to lead");
    assert.equal(a.started[0]!.epoch, 1);
    const b = await start(replica("b", name));
    const row1 = await readLease(db.sql, name);
    // Longer than the lease: a live leader keeps it, b never leads.
    await new Promise((r) => setTimeout(r, FAST.leaseDurationMs + 300));
    const row2 = await readLease(db.sql, name);
    assert.equal(row2?.holder, "a");
    assert.equal(row2?.epoch, 1);
    assert.ok(row2!.renewedAt! > row1!.renewedAt!, "renewed");
    assert.deepEqual(row2!.acquiredAt, row1!.acquiredAt);
    assert.equal(b.started.length, 0);

    const sa = a.elector.state();
    assert.equal(sa.backend, "postgres");
    assert.equal(sa.isLeader, true);
    assert.equal(sa.holder, "a");
    assert.equal(sa.epoch, 1);
    assert.equal(sa.leaseName, name);
    assert.ok(sa.since instanceof Date);
    assert.equal(a.elector.healthy(), true);
    assert.equal(await counter(a.metrics.isLeader), 1);
    assert.equal(await counter(a.metrics.leaderTransitions), 1);

    const sb = b.elector.state();
    assert.equal(sb.isLeader, false);
    assert.equal(sb.holder, "a");
    assert.equal(sb.epoch, 1);
    assert.equal(b.elector.healthy(), true);
    assert.equal(await counter(b.metrics.isLeader), 0);
    assert.deepEqual(b.leaders, ["a"]);

    await b.elector.stop();
    await a.elector.stop();
  });

  test("release on stop: the standby takes over at once through NOTIFY, epochs grow", async () => {
    const name = newLease();
    // A retry period of 5 s: a take-over within 2 s can only come from the NOTIFY.
    const slow = { leaseDurationMs: 12_000, renewDeadlineMs: 8_000, retryPeriodMs: 5_000 };
    const a = await start(replica("a", name, slow));
    await waitFor(() => a.started.length === 1, 3000, "a to lead");
    const b = await start(replica("b", name, slow));
    const c = await start(replica("c", name, slow));
    await waitFor(
      () => b.elector.state().holder === "a" && c.elector.state().holder === "a",
      3000,
      "standbys",
    );

    const t0 = Date.now();
    await a.elector.stop();
    assert.equal(a.stoppedAt.length, 1);
    assert.equal(a.started[0]!.signal.aborted, true);
    const [next] = await waitFor(
      () => {
        const leaders = [b, c].filter((r) => r.started.length === 1);
        return leaders.length > 0 && leaders;
      },
      2000,
      "a standby to lead after the release",
    );
    const handover = next!.started[0]!.at - t0;
    assert.ok(handover < 2000, `hand-over took ${handover} ms`);
    assert.equal(next!.started[0]!.epoch, 2);
    const other = next === b ? c : b;
    assert.equal(other.started.length, 0);
    assert.equal(a.elector.state().isLeader, false);
    assert.equal(await counter(a.metrics.isLeader), 0);
    assert.equal(await counter(a.metrics.leaderTransitions), 2);

    await next!.elector.stop();
    const [third] = await waitFor(() => (other.started.length === 1 ? [other] : false), 2000, "the last one");
    assert.equal(third!.started[0]!.epoch, 3);
    const row = await readLease(db.sql, name);
    assert.deepEqual([row?.holder, row?.epoch, row?.transitions], [other === b ? "b" : "c", 3, 2]);
    await other.elector.stop();
    const released = await readLease(db.sql, name);
    assert.equal(released?.holder, null);
    assert.equal(released?.durationMs, 1000);
    assert.equal(released?.epoch, 3);
  });

  test("a lease left by a crashed holder is taken over once it expires by the database clock", async () => {
    const name = newLease();
    await db.sql`
      INSERT INTO scheduler.lease (name, holder, acquired_at, renewed_at, duration_ms, transitions, epoch)
      VALUES (${name}, 'crashed', now(), now(), 1000, 4, 7)`;
    const t0 = Date.now();
    const b = await start(replica("b", name));
    await waitFor(() => b.started.length === 1, 3000, "b to lead");
    // Not before the lease ran out, and soon after (it knows when it expires).
    const waited = b.started[0]!.at - t0;
    assert.ok(waited >= 900, `took over after ${waited} ms, before expiry`);
    assert.equal(b.started[0]!.epoch, 8);
    assert.equal(b.elector.state().transitions, 5);
    assert.deepEqual(b.leaders, ["crashed", "b"]);
    await b.elector.stop();
  });

  test("fencing: a write after a takeover rolls back; a takeover waits for a fenced transaction in flight", async () => {
    const name = newLease();
    // A long retry period so that the leader does not notice the takeover by renewing first.
    const slow = { leaseDurationMs: 6_000, renewDeadlineMs: 4_000, retryPeriodMs: 2_000 };
    const a = await start(replica("a", name, slow));
    await waitFor(() => a.started.length === 1, 3000, "a to lead");
    const epoch = a.started[0]!.epoch;

    // A fenced write passes while a leads.
    await db.sql.begin(async (tx) => {
      await a.elector.fence(tx);
      await tx`INSERT INTO fenced_writes (writer, epoch) VALUES ('a', ${epoch})`;
    });

    // While a fenced transaction is open, a takeover (the row's UPDATE) waits for it.
    let takeoverDone = false;
    let takeover: Promise<unknown> | undefined;
    await db.sql.begin(async (tx) => {
      await a.elector.fence(tx);
      takeover = db.sql`
        UPDATE scheduler.lease SET holder = 'b', epoch = epoch + 1, renewed_at = now() WHERE name = ${name}`.then(
        () => {
          takeoverDone = true;
        },
      );
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(takeoverDone, false, "the takeover waits for the fenced transaction");
      await tx`INSERT INTO fenced_writes (writer, epoch) VALUES ('a', ${epoch})`;
    });
    await takeover;
    assert.equal(takeoverDone, true);

    // a still believes it leads (no renewal yet), but the database knows better.
    assert.equal(a.elector.state().isLeader, true);
    const before = await counter(a.metrics.fencingRejections);
    await assert.rejects(
      db.sql.begin(async (tx) => {
        await tx`INSERT INTO fenced_writes (writer, epoch) VALUES ('a-stale', ${epoch})`;
        await a.elector.fence(tx);
        await tx`INSERT INTO fenced_writes (writer, epoch) VALUES ('a-stale', ${epoch})`;
      }),
      (error: unknown) => error instanceof SchedulerError && error.code === "FENCED",
    );
    assert.equal(await counter(a.metrics.fencingRejections), before + 1);
    const stale = await db.sql`SELECT 1 FROM fenced_writes WHERE writer = 'a-stale'`;
    assert.equal(stale.length, 0, "the fenced transaction rolled back");
    const written = await db.sql`SELECT 1 FROM fenced_writes WHERE writer = 'a'`;
    assert.equal(written.length, 2);
    // The fence also ends the term at once.
    assert.equal(a.elector.state().isLeader, false);
    assert.equal(a.started[0]!.signal.aborted, true);
    assert.equal(a.stoppedAt.length, 1);
    // And a standby's fence refuses without asking.
    await assert.rejects(
      db.sql.begin((tx) => a.elector.fence(tx)),
      (error: unknown) => error instanceof SchedulerError && error.code === "FENCED",
    );
    assert.equal(await counter(a.metrics.fencingRejections), before + 2);
    await a.elector.stop();
  });

  test("database unreachable for the leader: it steps down by the renew deadline, a standby takes over", async () => {
    for (const mode of ["blackhole", "reset"] as const) {
      const name = newLease();
      const proxy = await startTcpProxy(Number(new URL(db.url).port || 5432));
      const proxiedUrl = db.url.replace(/@[^/]+\//, `@127.0.0.1:${proxy.port}/`);
      const a = await start(replica("a", name, { databaseUrl: proxiedUrl }));
      await waitFor(() => a.started.length === 1, 3000, "a to lead");
      const b = await start(replica("b", name));
      await waitFor(() => b.elector.state().holder === "a", 3000, "b to see a");

      const cutAt = Date.now();
      proxy.cut(mode);
      await waitFor(() => a.stoppedAt.length === 1, FAST.renewDeadlineMs + 500, `a to step down (${mode})`);
      const steppedDown = a.stoppedAt[0]! - cutAt;
      assert.ok(
        steppedDown <= FAST.renewDeadlineMs + 50,
        `${mode}: stepped down ${steppedDown} ms after the cut`,
      );
      assert.equal(a.started[0]!.signal.aborted, true);
      assert.equal(a.elector.state().isLeader, false);
      assert.equal(await counter(a.metrics.isLeader), 0);

      // b takes over once the lease expired: after the deadline, within lease + retry of the cut.
      await waitFor(
        () => b.started.length === 1,
        FAST.leaseDurationMs + FAST.retryPeriodMs + 500,
        "b to lead",
      );
      assert.ok(b.started[0]!.at >= a.stoppedAt[0]!, "never two leaders at once");
      assert.equal(b.started[0]!.epoch, 2);

      // The network comes back: a stays standby and sees b.
      proxy.restore();
      await waitFor(() => a.elector.state().holder === "b", 3000, "a to see b");
      assert.equal(a.started.length, 1);
      assert.equal(a.elector.healthy(), true);
      await a.elector.stop();
      await b.elector.stop();
      await proxy.close();
    }
  });

  test("healthy() is false when the leader has not renewed within the renew deadline", async () => {
    const name = newLease();
    const a = await start(replica("a", name));
    await waitFor(() => a.started.length === 1, 3000, "a to lead");
    assert.equal(a.elector.healthy(), true);
    // A stuck event loop: no timer can run, no renewal can happen.
    const until = Date.now() + FAST.renewDeadlineMs + 100;
    while (Date.now() < until) {
      // busy
    }
    assert.equal(a.elector.healthy(), false);
    await a.elector.stop();
  });
});
