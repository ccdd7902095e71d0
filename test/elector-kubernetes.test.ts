/**
 * The Kubernetes Lease elector against the fake API server (real HTTP, real Lease wire
 * format, resourceVersion conflicts), with its fencing epoch on the real PostgreSQL.
 * No real cluster runs here. Lease 2 s (the Lease counts whole seconds), renew deadline
 * 1.5 s, retry 0.3 s unless a test needs otherwise.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import type { Elector, ElectorOptions } from "../controller/elector.js";
import { createKubernetesElector } from "../controller/elector-kubernetes.js";
import { SchedulerError } from "../controller/errors.js";
import { readLease, recordTakeover } from "../controller/lease-queries.js";
import { createMetrics, type Metrics } from "../controller/metrics.js";
import { createTestDatabase, type TestDatabase } from "./support/database.js";
import { type FakeKubeApi, LEASES, startFakeKubeApi } from "./support/fake-kube-api.js";
import { waitFor } from "./support/wait.js";

const FAST = { leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 300 };
const NS = "scheduling";
const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }, pino.destination(2));

let db: TestDatabase;
let api: FakeKubeApi;
let leaseCounter = 0;
const everyReplica: Replica[] = [];

before(async () => {
  db = await createTestDatabase("elector_kubernetes", { migrate: true });
  api = await startFakeKubeApi();
});
after(async () => {
  await Promise.all(everyReplica.map((r) => r.elector.stop()));
  await api.close();
  await db.drop();
});

interface Replica {
  elector: Elector;
  metrics: Metrics;
  started: { epoch: number; signal: AbortSignal; at: number }[];
  stoppedAt: number[];
}

const counter = (m: { get(): Promise<{ values: { value: number }[] }> }) =>
  m.get().then((v) => v.values[0]?.value ?? 0);

function kubeConfig() {
  const kc = new KubeConfig();
  kc.loadFromString(api.kubeconfigYaml());
  return kc;
}

async function replica(
  identity: string,
  leaseName: string,
  overrides: Partial<ElectorOptions & { kubeConfig: KubeConfig | undefined }> = {},
): Promise<Replica> {
  const metrics = createMetrics();
  const r: Replica = {
    elector: createKubernetesElector({
      identity,
      leaseName,
      leaseNamespace: NS,
      ...FAST,
      sql: db.sql,
      databaseUrl: db.url,
      logger,
      metrics,
      kubeConfig: kubeConfig(),
      ...overrides,
    }),
    metrics,
    started: [],
    stoppedAt: [],
  };
  everyReplica.push(r);
  await r.elector.start({
    onStartedLeading: (signal, epoch) => r.started.push({ signal, epoch, at: Date.now() }),
    onStoppedLeading: () => r.stoppedAt.push(Date.now()),
  });
  return r;
}

const newLease = () => `k-lease-${++leaseCounter}`;
const leaseOf = (name: string) => api.get(LEASES, NS, name);
const leaseRequests = (name: string, method: string) =>
  api.requests.filter(
    (q) =>
      q.method === method &&
      q.path.endsWith(`/namespaces/${NS}/leases${method === "POST" ? "" : `/${name}`}`),
  );

describe("kubernetes elector", () => {
  test("acquire creates the Lease and records the term in PostgreSQL; renewals carry resourceVersion; a second replica stays standby", async () => {
    const name = newLease();
    const a = await replica("a", name);
    await waitFor(() => a.started.length === 1, 3000, "a to lead");
    const created = leaseOf(name);
    assert.equal(created?.spec.holderIdentity, "a");
    assert.equal(created?.spec.leaseDurationSeconds, 2);
    assert.equal(created?.spec.leaseTransitions, 0);
    assert.match(created?.spec.acquireTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, "MicroTime");
    assert.equal(a.started[0]!.epoch, 1);
    const row = await readLease(db.sql, name);
    assert.deepEqual([row?.holder, row?.epoch], ["a", 1]);

    const b = await replica("b", name);
    await new Promise((r) => setTimeout(r, FAST.leaseDurationMs + 500));
    assert.equal(b.started.length, 0, "b stays standby while a renews");
    const renewed = leaseOf(name);
    assert.equal(renewed?.spec.holderIdentity, "a");
    assert.equal(renewed?.spec.acquireTime, created?.spec.acquireTime);
    assert.ok(new Date(renewed?.spec.renewTime) > new Date(created?.spec.renewTime), "renewTime advances");
    const puts = leaseRequests(name, "PUT");
    assert.ok(puts.length >= 3, `${puts.length} renewals`);
    for (const put of puts) {
      assert.ok(
        (put.body as { metadata: { resourceVersion?: string } }).metadata.resourceVersion,
        "optimistic concurrency",
      );
    }
    // The fencing row is stamped with each renewal (database clock).
    const stamped = await readLease(db.sql, name);
    assert.ok(stamped!.renewedAt! > row!.renewedAt!);

    const sa = a.elector.state();
    assert.deepEqual([sa.backend, sa.isLeader, sa.holder, sa.epoch], ["kubernetes", true, "a", 1]);
    assert.equal(a.elector.healthy(), true);
    const sb = b.elector.state();
    assert.deepEqual([sb.isLeader, sb.holder], [false, "a"]);
    assert.equal(await counter(a.metrics.isLeader), 1);
    assert.equal(await counter(b.metrics.isLeader), 0);
    await b.elector.stop();
    await a.elector.stop();
  });

  test("a 409 Conflict on renewal is retried next period without losing leadership", async () => {
    const name = newLease();
    const a = await replica("a", name);
    await waitFor(() => a.started.length === 1, 3000, "a to lead");
    const before = leaseRequests(name, "PUT").length;
    api.failNext({ method: "PUT", path: `/leases/${name}`, status: 409, reason: "Conflict", times: 2 });
    await waitFor(
      () => leaseRequests(name, "PUT").filter((q) => q.status === 200).length > before,
      3000,
      "a renewal after the conflicts",
    );
    const conflicts = leaseRequests(name, "PUT").filter((q) => q.status === 409);
    assert.equal(conflicts.length, 2);
    assert.equal(a.stoppedAt.length, 0);
    assert.equal(a.elector.state().isLeader, true);

    await a.elector.stop();
  });

  test("takeover after expiry, judged by the local time of observation (not renewTime); epoch + 1 fences the old term", async () => {
    const name = newLease();
    // A crashed holder whose renewTime is far in the past (another clock): still wait a full lease.
    api.create(LEASES, NS, {
      metadata: { name },
      spec: {
        holderIdentity: "crashed",
        leaseDurationSeconds: 2,
        acquireTime: "2020-01-01T00:00:00.000000Z",
        renewTime: "2020-01-01T00:00:00.000000Z",
        leaseTransitions: 3,
      },
    });
    await recordTakeover(db.sql, { name, identity: "crashed", durationMs: 60_000, transitions: 3 });
    const crashedEpoch = (await readLease(db.sql, name))!.epoch;

    const t0 = Date.now();
    const b = await replica("b", name);
    await waitFor(() => b.started.length === 1, 4000, "b to lead");
    const waited = b.started[0]!.at - t0;
    assert.ok(waited >= 2000, `took over after ${waited} ms`);
    assert.equal(b.started[0]!.epoch, crashedEpoch + 1);
    const lease = leaseOf(name);
    assert.equal(lease?.spec.holderIdentity, "b");
    assert.equal(lease?.spec.leaseTransitions, 4);
    const row = await readLease(db.sql, name);
    assert.deepEqual([row?.holder, row?.epoch, row?.transitions], ["b", crashedEpoch + 1, 4]);

    // b's writes pass the fence; once a newer term is recorded (another replica took the
    // Lease while b was paused, say), b's next write is refused and rolled back.
    await db.sql.begin((tx) => b.elector.fence(tx));
    await recordTakeover(db.sql, { name, identity: "c", durationMs: 2000, transitions: 5 });
    await assert.rejects(
      db.sql.begin((tx) => b.elector.fence(tx)),
      (error: unknown) => error instanceof SchedulerError && error.code === "FENCED",
    );
    assert.equal(await counter(b.metrics.fencingRejections), 1);
    assert.equal(b.elector.state().isLeader, false);
    assert.equal(b.started[0]!.signal.aborted, true);
    await b.elector.stop();
  });

  test("release on stop: empty holder, 1 s lease; the standby leads within a retry period", async () => {
    const name = newLease();
    const slow = { leaseDurationMs: 10_000, renewDeadlineMs: 6_000, retryPeriodMs: 2_000 };
    const a = await replica("a", name, slow);
    await waitFor(() => a.started.length === 1, 3000, "a to lead");
    // b finds its credentials the way loadFromDefault does: KUBECONFIG.
    process.env.KUBECONFIG = await api.writeKubeconfig();
    const b = await replica("b", name, { ...slow, kubeConfig: undefined });
    await waitFor(() => b.elector.state().holder === "a", 3000, "b to see a");

    const t0 = Date.now();
    await a.elector.stop();
    type LeaseBody = { spec: { holderIdentity: string; leaseDurationSeconds: number } };
    const puts = api.requests.filter((q) => q.method === "PUT" && q.path.endsWith(`/${name}`));
    const released = puts.map((q) => q.body as LeaseBody).find((body) => body.spec.holderIdentity === "");
    assert.ok(released, "a released the Lease");
    assert.equal(released.spec.holderIdentity, "");
    assert.equal(released.spec.leaseDurationSeconds, 1);
    assert.equal(a.stoppedAt.length, 1);
    assert.equal(a.started[0]!.signal.aborted, true);

    await waitFor(() => b.started.length === 1, slow.retryPeriodMs, "b to lead within a retry period");
    assert.ok(b.started[0]!.at - t0 < slow.retryPeriodMs);
    assert.equal(b.started[0]!.epoch, 2);
    const lease = leaseOf(name);
    assert.deepEqual([lease?.spec.holderIdentity, lease?.spec.leaseTransitions], ["b", 1]);
    await b.elector.stop();
    delete process.env.KUBECONFIG;
  });

  test("API server unreachable for the leader: it steps down by the renew deadline", async () => {
    const name = newLease();
    const a = await replica("a", name);
    await waitFor(() => a.started.length === 1, 3000, "a to lead");
    const cutAt = Date.now();
    api.failNext({ path: `/leases/${name}`, status: 0, times: 1000 }); // sockets destroyed
    await waitFor(() => a.stoppedAt.length === 1, FAST.renewDeadlineMs + 500, "a to step down");
    assert.ok(a.stoppedAt[0]! - cutAt <= FAST.renewDeadlineMs + 50);
    assert.equal(await counter(a.metrics.isLeader), 0);
    api.clearFaults();
    // The API returns: a (the Lease still names it) starts a new term.
    await waitFor(() => a.started.length === 2, 3000, "a to lead again");
    assert.equal(a.started[1]!.epoch, a.started[0]!.epoch + 1);
    await a.elector.stop();
  });
});
