/**
 * The scheduler as a real process under LEADER_ELECTION=kubernetes, against the fake
 * Kubernetes API server (real Lease and Competition wire formats) and real PostgreSQL:
 * Competition resources added, disabled and deleted are followed without a restart, and
 * the leader writes their status back. No real cluster runs here.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { BUNDLED_LEAGUES, buildLeague, shiftWeeksFor } from "../controller/simulator/season.js";
import { createTestDatabase, type TestDatabase } from "./support/database.js";
import { COMPETITIONS, type FakeKubeApi, startFakeKubeApi } from "./support/fake-kube-api.js";
import { type ChildScheduler, minimalEnv, sleep, startSchedulerHttp, tempDir } from "./support/process.js";
import { waitFor } from "./support/wait.js";

const NS = "football";

interface CompetitionStatus {
  fixtures?: number;
  observedGeneration?: number;
  lastSyncTime?: string;
  conditions?: { type: string; status: string; reason?: string }[];
}
type CompetitionObject = { status?: CompetitionStatus } | undefined;

/** Wait for a condition over HTTP or the database; a failed request counts as "not yet". */
const until = <T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000) =>
  waitFor(() => check().catch(() => undefined), timeoutMs, what, 100);

describe("Competition resources drive the scheduler (LEADER_ELECTION=kubernetes)", () => {
  let db: TestDatabase;
  let api: FakeKubeApi;
  let scheduler: ChildScheduler;
  const data = tempDir("kube-mode");
  const season = buildLeague(BUNDLED_LEAGUES.find((l) => l.id === 39)!, shiftWeeksFor(new Date()))[0]!.season;

  const status = async () =>
    (await scheduler.get("/status")).json as { competitions: { league_id: number; season: number }[] };
  const competitionsInStatus = async () =>
    (await status()).competitions.map((c) => `${c.league_id}:${c.season}`);
  const fixturesOf = async (leagueId: number) =>
    (
      (await db.sql`SELECT count(*)::int AS n FROM fixtures WHERE league_id = ${leagueId}`)[0] as {
        n: number;
      }
    ).n;

  before(async () => {
    db = await createTestDatabase("kube_mode");
    api = await startFakeKubeApi();
    const kubeconfig = await api.writeKubeconfig(undefined, { namespace: NS });
    scheduler = await startSchedulerHttp({
      env: minimalEnv({
        DATABASE_URL: db.url,
        SCHEDULER_DEMO: "true",
        DATA_DIR: data.dir,
        LEADER_ELECTION: "kubernetes",
        KUBECONFIG: kubeconfig,
        LEASE_NAMESPACE: NS,
        POD_NAME: "scheduler-0",
        LEASE_DURATION_SECONDS: "3",
        RENEW_DEADLINE_SECONDS: "2",
        RETRY_PERIOD_SECONDS: "0.5",
        SCHEDULER_COMPETITIONS: `2:${season}`,
        LOG_LEVEL: "info",
      }),
    });
    await scheduler.waitForHttp(
      "/health",
      (a) => (a.json as { scheduler_status?: string })?.scheduler_status === "running",
      60_000,
    );
  });

  after(async () => {
    await scheduler?.signalAndWait("SIGTERM").catch(() => scheduler.kill());
    await api?.close();
    await db?.drop();
    data.remove();
  });

  test("the leader holds the Lease in its namespace", async () => {
    const lease = await until("the Lease", async () =>
      api.get(
        { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease" },
        NS,
        "backend-scheduler",
      ),
    );
    assert.equal((lease.spec as { holderIdentity?: string }).holderIdentity, "scheduler-0");
    assert.deepEqual(await competitionsInStatus(), [`2:${season}`]);
  });

  test("a Competition added at run time is kept in sync, and its status is written back", async () => {
    api.create(COMPETITIONS, NS, {
      metadata: { name: "premier-league" },
      spec: { leagueId: 39, season, enabled: true },
    });
    await until("league 39 in /status", async () => (await competitionsInStatus()).includes(`39:${season}`));
    const expected = buildLeague(BUNDLED_LEAGUES.find((l) => l.id === 39)!, shiftWeeksFor(new Date())).length;
    await until("league 39 fixtures in the database", async () => (await fixturesOf(39)) === expected);
    const written = await until("the Competition status", async () => {
      const object = api.get(COMPETITIONS, NS, "premier-league") as CompetitionObject;
      const s = object?.status;
      return s &&
        s.fixtures === expected &&
        s.conditions?.some((c) => c.type === "Ready" && c.status === "True")
        ? s
        : undefined;
    });
    assert.equal(written.observedGeneration, 1);
    assert.ok(written.lastSyncTime, "lastSyncTime written");
  });

  test("disabling it stops keeping it in sync, without deleting any fixture", async () => {
    api.mutate(COMPETITIONS, NS, "premier-league", (o) => {
      (o.spec as Record<string, unknown>).enabled = false;
      o.metadata.generation = (o.metadata.generation ?? 1) + 1;
    });
    await until(
      "league 39 gone from /status",
      async () => !(await competitionsInStatus()).includes(`39:${season}`),
    );
    const object = await until("Disabled status", async () => {
      const o = api.get(COMPETITIONS, NS, "premier-league") as CompetitionObject;
      return o?.status?.conditions?.some((c) => c.type === "Ready" && c.reason === "Disabled")
        ? o
        : undefined;
    });
    assert.equal(object.status?.observedGeneration, 2);
    assert.ok((await fixturesOf(39)) > 0, "fixtures of a competition no longer synced are never deleted");
  });

  test("deleting it leaves the configured competitions only", async () => {
    api.remove(COMPETITIONS, NS, "premier-league");
    api.create(COMPETITIONS, NS, { metadata: { name: "bad" }, spec: { leagueId: "not a number", season } });
    await sleep(1000);
    assert.deepEqual(await competitionsInStatus(), [`2:${season}`]);
    assert.equal((await scheduler.get("/health")).status, 200);
  });
});
