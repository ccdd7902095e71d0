/**
 * The Competition watcher against the fake Kubernetes API server (real HTTP, real
 * @kubernetes/client-node informer): add, modify, delete, invalid resources, 410 → relist,
 * API errors → retry, status written through the status subresource. Also the fake server's
 * own wire behaviour that the leader-election tests rely on.
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import {
  type CompetitionResource,
  type CompetitionWatcher,
  parseCompetition,
  startCompetitionWatcher,
} from "../controller/competition-resources.js";
import { createLogger } from "../controller/logger.js";
import {
  COMPETITIONS,
  type FakeKubeApi,
  LEASES,
  startFakeKubeApi,
  statusObject,
} from "./support/fake-kube-api.js";

const NS = "sched";

function captureLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  // The fake token must never appear in a log line (scrubbed like a real secret).
  return {
    logger: createLogger({ level: "debug", destination, secrets: ["fake-token-never-logged"] }),
    lines,
  };
}

function competition(name: string, spec: Record<string, unknown>) {
  return { apiVersion: "scheduler.prdiktit.io/v1alpha1", kind: "Competition", metadata: { name }, spec };
}

interface Harness {
  api: FakeKubeApi;
  watcher: CompetitionWatcher;
  calls: CompetitionResource[][];
  lines: Record<string, unknown>[];
  last(): CompetitionResource[];
}

async function harness(api: FakeKubeApi, namespace = NS): Promise<Harness> {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(api.kubeconfigYaml({ namespace }));
  const { logger, lines } = captureLogger();
  const calls: CompetitionResource[][] = [];
  const watcher = startCompetitionWatcher({
    kubeConfig,
    namespace,
    logger,
    retryDelayMs: 20,
    maxRetryDelayMs: 100,
    onChange: (list) => calls.push(list),
  });
  return { api, watcher, calls, lines, last: () => calls.at(-1) ?? [] };
}

const names = (list: CompetitionResource[]) => list.map((c) => `${c.name}=${c.leagueId}:${c.season}`);

describe("parseCompetition", () => {
  const meta = { name: "x", generation: 3 };
  const cases: [string, Record<string, unknown> | undefined, string | RegExp][] = [
    ["minimal", { leagueId: 39, season: 2025 }, "ok"],
    ["disabled", { leagueId: 39, season: 2025, enabled: false }, "ok"],
    ["intervals", { leagueId: 39, season: 2025, intervals: { liveMatchesSeconds: 30 } }, "ok"],
    ["no spec", undefined, /spec is missing/],
    ["league as string", { leagueId: "39", season: 2025 }, /spec\.leagueId/],
    ["league zero", { leagueId: 0, season: 2025 }, /spec\.leagueId/],
    ["season 25", { leagueId: 39, season: 25 }, /spec\.season/],
    ["enabled as string", { leagueId: 39, season: 2025, enabled: "yes" }, /spec\.enabled/],
    [
      "negative interval",
      { leagueId: 39, season: 2025, intervals: { matchDaySeconds: -1 } },
      /matchDaySeconds/,
    ],
    ["unknown interval", { leagueId: 39, season: 2025, intervals: { hourly: 1 } }, /hourly/],
  ];
  for (const [label, spec, want] of cases) {
    test(label, () => {
      const result = parseCompetition({ metadata: meta, ...(spec ? { spec } : {}) });
      if (want === "ok") assert.equal(result.ok, true, JSON.stringify(result));
      else {
        assert.equal(result.ok, false);
        assert.match((result as { reason: string }).reason, want as RegExp);
      }
    });
  }

  test("fields are mapped, enabled defaults to true, intervals become milliseconds", () => {
    const result = parseCompetition({
      metadata: meta,
      spec: { leagueId: 140, season: 2025, intervals: { liveMatchesSeconds: 30, minimalSeconds: 7200 } },
    });
    assert.deepEqual(result, {
      ok: true,
      competition: {
        name: "x",
        leagueId: 140,
        season: 2025,
        enabled: true,
        generation: 3,
        intervals: { liveMatchesSeconds: 30, minimalSeconds: 7200 },
        intervalsMs: { live_matches: 30_000, minimal: 7_200_000 },
      },
    });
  });
});

describe("Competition watcher", () => {
  let api: FakeKubeApi;
  before(async () => {
    api = await startFakeKubeApi();
  });
  after(async () => {
    await api.close();
  });

  test("first list, then add, modify and delete are followed; status-only changes are not", async () => {
    api.create(COMPETITIONS, NS, competition("premier-league", { leagueId: 39, season: 2025 }));
    api.create(COMPETITIONS, "elsewhere", competition("other-namespace", { leagueId: 1, season: 2025 }));
    const h = await harness(api);
    try {
      await h.watcher.ready;
      assert.equal(h.calls.length, 1);
      assert.deepEqual(names(h.last()), ["premier-league=39:2025"]);
      assert.equal(h.last()[0]!.enabled, true);
      assert.equal(h.last()[0]!.generation, 1);

      api.create(COMPETITIONS, NS, competition("la-liga", { leagueId: 140, season: 2025, enabled: false }));
      await api.waitFor(() => h.last().length === 2, 3000, "la-liga added");
      assert.deepEqual(names(h.last()), ["la-liga=140:2025", "premier-league=39:2025"]);
      assert.equal(h.last()[0]!.enabled, false);

      api.mutate(COMPETITIONS, NS, "premier-league", (o) => {
        o.spec.season = 2026;
        o.spec.intervals = { liveMatchesSeconds: 20 };
      });
      await api.waitFor(() => h.last().find((c) => c.season === 2026), 3000, "season modified");
      const pl = h.last().find((c) => c.name === "premier-league")!;
      assert.equal(pl.generation, 2);
      assert.deepEqual(pl.intervalsMs, { live_matches: 20_000 });

      const before = h.calls.length;
      api.mutate(COMPETITIONS, NS, "premier-league", (o) => {
        o.status = { fixtures: 1 };
      });
      api.create(COMPETITIONS, "elsewhere", competition("still-elsewhere", { leagueId: 2, season: 2025 }));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(h.calls.length, before, "a status change or another namespace calls onChange again");

      api.remove(COMPETITIONS, NS, "la-liga");
      await api.waitFor(() => h.last().length === 1, 3000, "la-liga deleted");
      assert.deepEqual(names(h.last()), ["premier-league=39:2026"]);
      assert.deepEqual(names(h.watcher.current()), ["premier-league=39:2026"]);

      const watches = api.requests.filter((r) => r.query.watch === "true");
      assert.ok(watches.length >= 1, "the informer watched");
      assert.ok(
        watches.every((r) => r.path === `/apis/scheduler.prdiktit.io/v1alpha1/namespaces/${NS}/competitions`),
        "watches only its namespace's competitions",
      );
    } finally {
      await h.watcher.stop();
      api.remove(COMPETITIONS, NS, "premier-league");
    }
  });

  test("an invalid resource is skipped and logged once; fixing it brings it in", async () => {
    api.create(COMPETITIONS, NS, competition("good", { leagueId: 39, season: 2025 }));
    api.create(COMPETITIONS, NS, competition("bad", { leagueId: "thirty-nine", season: 2025 }));
    const h = await harness(api);
    try {
      await h.watcher.ready;
      assert.deepEqual(names(h.last()), ["good=39:2025"]);
      api.mutate(COMPETITIONS, NS, "good", (o) => {
        o.metadata.labels = { touched: "yes" };
      });
      await new Promise((r) => setTimeout(r, 50));
      const warnings = h.lines.filter((l) => String(l.msg).includes("Competition bad skipped"));
      assert.equal(warnings.length, 1, JSON.stringify(h.lines));
      assert.match(String(warnings[0]!.msg), /spec\.leagueId must be a positive whole number/);
      assert.equal(warnings[0]!.level, 40);

      api.mutate(COMPETITIONS, NS, "bad", (o) => {
        o.spec.leagueId = 61;
      });
      await api.waitFor(() => h.last().length === 2, 3000, "fixed resource");
      assert.deepEqual(names(h.last()), ["bad=61:2025", "good=39:2025"]);
    } finally {
      await h.watcher.stop();
      api.remove(COMPETITIONS, NS, "good");
      api.remove(COMPETITIONS, NS, "bad");
    }
  });

  for (const goneAs of ["event", "http"] as const) {
    test(`410 Gone (${goneAs}) makes the informer relist, and changes missed meanwhile are seen`, async () => {
      api.create(COMPETITIONS, NS, competition("serie-a", { leagueId: 135, season: 2025 }));
      api.create(COMPETITIONS, NS, competition("ligue-1", { leagueId: 61, season: 2025 }));
      const h = await harness(api);
      try {
        await h.watcher.ready;
        await api.waitFor(() => api.openWatches === 1, 3000, "watch open");
        assert.deepEqual(names(h.last()), ["ligue-1=61:2025", "serie-a=135:2025"]);
        const lists = () =>
          api.requests.filter(
            (r) => r.method === "GET" && r.query.watch === undefined && r.path.endsWith("/competitions"),
          ).length;
        const listsBefore = lists();
        // Expire, then hold the client's re-watch back until changes have happened, so the
        // only way to see them is the relist.
        api.failNext({ watch: true, status: 0, delayMs: 150 });
        api.expireWatches({ goneAs });
        api.remove(COMPETITIONS, NS, "serie-a");
        api.create(COMPETITIONS, NS, competition("bundesliga", { leagueId: 78, season: 2025 }));
        await api.waitFor(
          () => names(h.last()).join() === "bundesliga=78:2025,ligue-1=61:2025",
          5000,
          `relist after 410 (${goneAs}); got ${JSON.stringify(h.last())}`,
        );
        assert.ok(lists() > listsBefore, "the informer listed again");
        if (goneAs === "http")
          assert.ok(
            api.requests.some((r) => r.query.watch === "true" && r.status === 410),
            "a watch got HTTP 410",
          );
      } finally {
        await h.watcher.stop();
        for (const n of ["serie-a", "ligue-1", "bundesliga"]) api.remove(COMPETITIONS, NS, n);
      }
    });
  }

  test("a failing list (500, CRD missing 404) is logged and retried until it works", async () => {
    api.create(COMPETITIONS, NS, competition("eredivisie", { leagueId: 88, season: 2025 }));
    api.failNext({ method: "GET", path: /competitions$/, watch: false, status: 500 });
    api.failNext({ method: "GET", path: /competitions$/, watch: false, status: 404 });
    const h = await harness(api);
    try {
      await h.watcher.ready;
      assert.deepEqual(names(h.last()), ["eredivisie=88:2025"]);
      const retries = h.lines.filter((l) => String(l.msg).includes("retrying"));
      assert.equal(retries.length, 2, JSON.stringify(h.lines));
      assert.match(String(retries[0]!.msg), /HTTP 500/);
      // a watch broken by the server is re-established
      api.failNext({ watch: true, status: 500 });
      api.closeWatches();
      api.create(COMPETITIONS, NS, competition("primeira", { leagueId: 94, season: 2025 }));
      await api.waitFor(() => h.last().length === 2, 5000, "recovered watch");
    } finally {
      await h.watcher.stop();
      for (const n of ["eredivisie", "primeira"]) api.remove(COMPETITIONS, NS, n);
    }
  });

  test("writeStatus patches the status subresource; Ready keeps its transition time; no rewrite when unchanged", async () => {
    api.create(COMPETITIONS, NS, competition("mls", { leagueId: 253, season: 2025 }));
    const h = await harness(api);
    try {
      await h.watcher.ready;
      const calls = h.calls.length;
      const synced = new Date("2025-08-16T14:00:00.123Z");
      const result = await h.watcher.writeStatus("mls", {
        fixtures: 500,
        live: 3,
        lastSyncTime: synced,
        ready: true,
        reason: "Synced",
        message: "500 fixtures in sync",
      });
      assert.equal(result, "written");
      const patch = api.requests.findLast((r) => r.method === "PATCH")!;
      assert.equal(
        patch.path,
        `/apis/scheduler.prdiktit.io/v1alpha1/namespaces/${NS}/competitions/mls/status`,
      );
      assert.equal(patch.contentType, "application/merge-patch+json");
      const stored = api.get(COMPETITIONS, NS, "mls")!;
      assert.equal(stored.metadata.generation, 1, "a status write does not bump the generation");
      assert.equal(stored.status.fixtures, 500);
      assert.equal(stored.status.live, 3);
      assert.equal(stored.status.lastSyncTime, "2025-08-16T14:00:00Z");
      assert.equal(stored.status.observedGeneration, 1);
      const [ready] = stored.status.conditions;
      assert.equal(ready.type, "Ready");
      assert.equal(ready.status, "True");
      assert.equal(ready.reason, "Synced");
      assert.equal(ready.message, "500 fixtures in sync");
      assert.match(ready.lastTransitionTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

      // the informer sees its own write, then the same status again is not written
      await api.waitFor(() => api.requests.filter((r) => r.method === "PATCH").length === 1);
      await new Promise((r) => setTimeout(r, 50));
      const again = await h.watcher.writeStatus("mls", {
        fixtures: 500,
        live: 3,
        lastSyncTime: synced,
        ready: true,
        reason: "Synced",
        message: "500 fixtures in sync",
      });
      assert.equal(again, "unchanged");
      assert.equal(api.requests.filter((r) => r.method === "PATCH").length, 1);

      // a new count keeps the transition time; a failure changes it
      await new Promise((r) => setTimeout(r, 1100));
      await h.watcher.writeStatus("mls", {
        fixtures: 501,
        live: 0,
        ready: true,
        reason: "Synced",
        message: "ok",
      });
      await api.waitFor(() => h.watcher && api.get(COMPETITIONS, NS, "mls")!.status.fixtures === 501);
      const kept = api.get(COMPETITIONS, NS, "mls")!.status;
      assert.equal(kept.conditions[0].lastTransitionTime, ready.lastTransitionTime);
      assert.equal(kept.lastSyncTime, "2025-08-16T14:00:00Z", "an omitted lastSyncTime is left alone");
      await new Promise((r) => setTimeout(r, 50));
      await h.watcher.writeStatus("mls", {
        fixtures: 501,
        live: 0,
        ready: false,
        reason: "ApiError",
        message: "HTTP 500",
      });
      const failed = api.get(COMPETITIONS, NS, "mls")!.status.conditions[0];
      assert.equal(failed.status, "False");
      assert.notEqual(failed.lastTransitionTime, ready.lastTransitionTime);

      assert.equal(
        await h.watcher.writeStatus("gone", { fixtures: 0, live: 0, ready: false, reason: "X", message: "" }),
        "not-found",
      );
      api.failNext({ method: "PATCH", status: 409 });
      await assert.rejects(
        h.watcher.writeStatus("mls", { fixtures: 9, live: 0, ready: true, reason: "Synced", message: "x" }),
        (e: Error & { code?: string; retryable?: boolean }) =>
          e.code === "KUBE_CONFLICT" && e.retryable === true && /HTTP 409/.test(e.message),
      );
      api.failNext({ method: "PATCH", status: 403 });
      await assert.rejects(
        h.watcher.writeStatus("mls", { fixtures: 9, live: 0, ready: true, reason: "Synced", message: "x" }),
        (e: Error & { code?: string; retryable?: boolean }) =>
          e.code === "KUBE_ERROR" && e.retryable === false,
      );
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(h.calls.length, calls, "status writes never call onChange");
    } finally {
      await h.watcher.stop();
      api.remove(COMPETITIONS, NS, "mls");
    }
  });

  test("stop() ends the watch and no onChange follows", async () => {
    const h = await harness(api);
    await h.watcher.ready;
    await api.waitFor(() => api.openWatches === 1, 3000, "watch open");
    await h.watcher.stop();
    await h.watcher.stop();
    await api.waitFor(() => api.openWatches === 0, 3000, "watch closed");
    const count = h.calls.length;
    api.create(COMPETITIONS, NS, competition("after-stop", { leagueId: 5, season: 2025 }));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(h.calls.length, count);
    api.remove(COMPETITIONS, NS, "after-stop");
  });
});

describe("fake Kubernetes API server", () => {
  let api: FakeKubeApi;
  before(async () => {
    api = await startFakeKubeApi();
  });
  after(async () => {
    await api.close();
  });
  const base = () => `${api.url}/apis/coordination.k8s.io/v1/namespaces/default/leases`;
  const send = async (method: string, url: string, body?: unknown, contentType = "application/json") => {
    const res = await fetch(url, {
      method,
      headers: { "content-type": contentType, authorization: "Bearer whatever" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return {
      status: res.status, // biome-ignore lint/suspicious/noExplicitAny: test reads free-form JSON
      body: (await res.json()) as Record<string, any>,
    };
  };

  test("create, conflict on a stale resourceVersion, 404 and AlreadyExists as Status objects", async () => {
    const created = await send("POST", base(), { metadata: { name: "l1" }, spec: { holderIdentity: "a" } });
    assert.equal(created.status, 201);
    assert.equal(created.body.kind, "Lease");
    assert.equal(created.body.apiVersion, "coordination.k8s.io/v1");
    const rv = created.body.metadata.resourceVersion;
    assert.match(rv, /^\d+$/);

    const dup = await send("POST", base(), { metadata: { name: "l1" }, spec: {} });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.reason, "AlreadyExists");

    const updated = await send("PUT", `${base()}/l1`, { ...created.body, spec: { holderIdentity: "b" } });
    assert.equal(updated.status, 200);
    assert.notEqual(updated.body.metadata.resourceVersion, rv);
    const stale = await send("PUT", `${base()}/l1`, { ...created.body, spec: { holderIdentity: "c" } });
    assert.equal(stale.status, 409);
    assert.deepEqual(
      { kind: stale.body.kind, reason: stale.body.reason, code: stale.body.code },
      { kind: "Status", reason: "Conflict", code: 409 },
    );
    assert.equal(api.get(LEASES, "default", "l1")!.spec.holderIdentity, "b");

    const missing = await send("GET", `${base()}/nope`);
    assert.deepEqual(
      missing.body,
      statusObject(404, "NotFound", 'leases.coordination.k8s.io "nope" not found', {
        name: "nope",
        group: "coordination.k8s.io",
        kind: "leases",
      }),
    );

    const patched = await send(
      "PATCH",
      `${base()}/l1`,
      { spec: { leaseDurationSeconds: 15 } },
      "application/merge-patch+json",
    );
    assert.equal(patched.body.spec.holderIdentity, "b");
    assert.equal(patched.body.spec.leaseDurationSeconds, 15);
    const jp = await send(
      "PATCH",
      `${base()}/l1`,
      [{ op: "replace", path: "/spec/holderIdentity", value: "d" }],
      "application/json-patch+json",
    );
    assert.equal(jp.body.spec.holderIdentity, "d");

    api.failNext({ method: "GET", path: "/leases/l1", status: 500, times: 2 });
    assert.equal((await send("GET", `${base()}/l1`)).status, 500);
    assert.equal((await send("GET", `${base()}/l1`)).status, 500);
    assert.equal((await send("GET", `${base()}/l1`)).status, 200);

    const list = await send("GET", base());
    assert.equal(list.body.kind, "LeaseList");
    assert.equal(list.body.metadata.resourceVersion, String(api.resourceVersion));
    assert.deepEqual(
      list.body.items.map((i: { metadata: { name: string } }) => i.metadata.name),
      ["l1"],
    );

    const deleted = await send("DELETE", `${base()}/l1`);
    assert.equal(deleted.status, 200);
    assert.equal(api.get(LEASES, "default", "l1"), undefined);
  });

  test("a watch streams newline-delimited events from a resourceVersion, and 410 when too old", async () => {
    const start = api.resourceVersion;
    api.create(LEASES, "default", { metadata: { name: "w1" }, spec: {} });
    api.mutate(LEASES, "default", "w1", (o) => {
      o.spec.holderIdentity = "x";
    });
    api.remove(LEASES, "default", "w1");
    const res = await fetch(`${base()}?watch=true&resourceVersion=${start}&timeoutSeconds=1`);
    assert.equal(res.status, 200);
    const events = (await res.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      events.map((e) => e.type),
      ["ADDED", "MODIFIED", "DELETED"],
    );
    assert.equal(events[1].object.spec.holderIdentity, "x");

    api.expireWatches();
    const old = await fetch(`${base()}?watch=true&resourceVersion=${start}`);
    const [gone] = (await old.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(gone.type, "ERROR");
    assert.equal(gone.object.code, 410);
    assert.equal(gone.object.reason, "Expired");
  });
});
