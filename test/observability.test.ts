/**
 * The operations surface end to end (issue 6): the real scheduler as a process
 * (`node --import tsx controller/main.ts`) on a fresh PostgreSQL database in demo mode with a
 * fast clock, a standby beside it, and a real Prometheus (Debian's package; see
 * scripts/ensure-prometheus.sh) of our own on a free port with its own config and data dir.
 *
 * Checks /status (everything the issue lists, no secret), /metrics (every issue metric;
 * `promtool check metrics` on the live output), Prometheus scraping it (PromQL through its
 * HTTP API; the alert rules load and evaluate cleanly on real series), and the management
 * API on real processes: no/wrong token → 401, right token → the action happens in the
 * database, a standby → 409 naming the leader, and neither the admin token nor the database
 * password appears in any response or log line.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { SCHEDULE_MODES } from "../controller/config.js";
import { createTestDatabase, type TestDatabase } from "./support/database.js";
import { ChildScheduler, freePort, minimalEnv, REPO_ROOT, tempDir } from "./support/process.js";

const TOKEN = "obs-admin-token-5f1c9a7e2b4d6f80";
const DB_PASSWORD = "obs-db-password-7a3e91";
const CLOCK_START = "2025-08-16T13:50:00Z"; // a Saturday: Premier League matches under way soon

const ISSUE_METRICS = [
  "scheduler_reconcile_total",
  "scheduler_reconcile_duration_seconds",
  "scheduler_last_reconcile_success_timestamp_seconds",
  "scheduler_api_requests_total",
  "scheduler_api_request_duration_seconds",
  "scheduler_api_quota_remaining",
  "scheduler_queue_depth",
  "scheduler_schedule_mode",
  "scheduler_fixtures",
  "scheduler_fixture_updates_total",
  "scheduler_predictions_locked_total",
  "scheduler_predictions_scored_total",
  "scheduler_unknown_status_total",
  "scheduler_malformed_rows_total",
  "scheduler_is_leader",
  "scheduler_leader_transitions_total",
  "scheduler_fencing_rejections_total",
];

// biome-ignore lint/suspicious/noExplicitAny: JSON under test, checked field by field
type Json = any;

let db: TestDatabase;
let leader: ChildScheduler;
let standby: ChildScheduler;
let prometheus: ChildProcess | undefined;
let prometheusUrl = "";
let prometheusLog = "";
let promDir: { dir: string; remove(): void };
/** Every HTTP body and header we received, for the leak check at the end. */
const received: string[] = [];

function schedulerEnv(port: number, podName: string): Record<string, string> {
  const url = new URL(db.url);
  url.password = DB_PASSWORD; // trust auth ignores it; it must still never be printed
  return minimalEnv({
    DATABASE_URL: url.toString(),
    SCHEDULER_DEMO: "true",
    PORT: String(port),
    HOST: "127.0.0.1",
    ADMIN_TOKEN: TOKEN,
    POD_NAME: podName,
    CLOCK_SPEED: "60",
    CLOCK_START,
    LEASE_DURATION_SECONDS: "4",
    RENEW_DEADLINE_SECONDS: "3",
    RETRY_PERIOD_SECONDS: "0.5",
    LOG_LEVEL: "info",
  });
}

async function startScheduler(podName: string): Promise<ChildScheduler> {
  const port = await freePort();
  const child = new ChildScheduler({ env: schedulerEnv(port, podName) });
  child.baseUrl = `http://127.0.0.1:${port}`;
  return child;
}

async function admin(
  target: ChildScheduler,
  method: string,
  urlPath: string,
  options: { token?: string | null; json?: unknown } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (options.token !== null) headers.authorization = `Bearer ${options.token ?? TOKEN}`;
  if (options.json !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${target.baseUrl}/api/v1${urlPath}`, {
    method,
    headers,
    body: options.json === undefined ? undefined : JSON.stringify(options.json),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  received.push(text, JSON.stringify([...res.headers]));
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function statusOf(target: ChildScheduler): Promise<Json> {
  const answer = await target.get("/status");
  received.push(answer.text);
  assert.equal(answer.status, 200, answer.text);
  return answer.json as Json;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ""}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function run(
  command: string,
  args: string[],
  input: string,
): Promise<{ code: number; output: string }> {
  return await new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (c) => {
      output += c;
    });
    child.stderr.on("data", (c) => {
      output += c;
    });
    child.on("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "ENOENT"
          ? new Error(`${command} is not installed: run scripts/ensure-prometheus.sh`)
          : error,
      ),
    );
    child.on("close", (code) => resolve({ code: code ?? -1, output }));
    child.stdin.end(input);
  });
}

async function promQuery(
  expr: string,
): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`, {
    signal: AbortSignal.timeout(5000),
  });
  const body = (await res.json()) as { status: string; data: { result: never[] }; error?: string };
  assert.equal(body.status, "success", `${expr}: ${body.error}`);
  return body.data.result;
}

before(async () => {
  db = await createTestDatabase("observability");
  leader = await startScheduler("obs-leader");
  await leader.waitForHttp("/ready", undefined, 30_000);
  await leader.waitForHttp("/status", (a) => (a.json as Json)?.leader?.is_leader === true, 30_000);
  // The standby starts once the leader holds the lease, so who leads is known.
  standby = await startScheduler("obs-standby");
  await standby.waitForHttp("/health", (a) => (a.json as Json)?.scheduler_status === "standby", 30_000);
});

after(async () => {
  prometheus?.kill("SIGKILL");
  await Promise.allSettled([standby?.signalAndWait("SIGTERM"), leader?.signalAndWait("SIGTERM")]);
  promDir?.remove();
  await db?.drop();
});

describe("/status and /metrics of a running scheduler", () => {
  test("/status has everything issue 6 lists, filled from live state", async () => {
    const s = await waitFor("a first reconcile and an API answer", async () => {
      const s = await statusOf(leader);
      return s.last_reconcile && s.api_quota?.daily_remaining !== null && s.competitions?.length > 0
        ? s
        : undefined;
    });
    assert.equal(typeof s.version, "string");
    assert.equal(typeof s.uptime_seconds, "number");
    assert.equal(s.mode, "demo");
    assert.deepEqual(
      { identity: s.leader.identity, is_leader: s.leader.is_leader, lease_name: s.leader.lease_name },
      { identity: "obs-leader", is_leader: true, lease_name: "backend-scheduler" },
    );
    assert.equal(typeof s.leader.transitions, "number");
    assert.ok(s.leader.since && !Number.isNaN(Date.parse(s.leader.since)));
    assert.ok((SCHEDULE_MODES as readonly string[]).includes(s.schedule_mode), s.schedule_mode);
    assert.ok(s.next_run === null || !Number.isNaN(Date.parse(s.next_run)));
    for (const c of s.competitions) {
      for (const key of ["league_id", "name", "season", "fixtures", "live", "last_full_sync", "last_error"]) {
        assert.ok(key in c, `competition lacks ${key}: ${JSON.stringify(c)}`);
      }
    }
    assert.ok(s.competitions.some((c: Json) => c.league_id === 39 && c.fixtures > 0));
    assert.equal(typeof s.fixtures_by_status, "object");
    assert.ok(Object.values(s.fixtures_by_status as Record<string, number>).reduce((a, b) => a + b, 0) > 0);
    assert.equal(typeof s.predictions_by_status, "object");
    assert.equal(typeof s.queue.depth, "number");
    assert.equal(typeof s.queue.in_flight, "number");
    for (const key of ["start", "duration_ms", "result", "actions_applied", "error"]) {
      assert.ok(key in s.last_reconcile, `last_reconcile lacks ${key}`);
    }
    for (const key of [
      "daily_limit",
      "daily_remaining",
      "minute_limit",
      "minute_remaining",
      "calls_today",
      "reserve",
    ]) {
      assert.ok(key in s.api_quota, `api_quota lacks ${key}`);
    }
    assert.equal(typeof s.api_quota.daily_remaining, "number");
    assert.equal(typeof s.unknown_status_codes, "object");
    assert.equal(typeof s.malformed_rows_skipped, "number");
    const standbyStatus = await statusOf(standby);
    assert.equal(standbyStatus.leader.is_leader, false);
    assert.equal(standbyStatus.leader.holder, "obs-leader");
  });

  test("/metrics exposes every metric of the issue, and promtool check metrics accepts the live output", async () => {
    const res = await fetch(`${leader.baseUrl}/metrics`);
    const text = await res.text();
    received.push(text);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    for (const name of ISSUE_METRICS) assert.match(text, new RegExp(`^# TYPE ${name} `, "m"), name);
    assert.match(text, /^scheduler_is_leader 1$/m);
    assert.match(text, /^process_cpu_user_seconds_total /m);
    assert.doesNotMatch(text, /nodejs_active_(handles|requests|resources)_total/);
    assert.doesNotMatch(text, /fixture_id=/, "no fixture ids in labels");
    const check = await run("promtool", ["check", "metrics"], text);
    assert.equal(check.code, 0, check.output);
    assert.equal(check.output.trim(), "", check.output);
    const standbyMetrics = await (await fetch(`${standby.baseUrl}/metrics`)).text();
    received.push(standbyMetrics);
    assert.match(standbyMetrics, /^scheduler_is_leader 0$/m);
  });
});

describe("a real Prometheus scrapes the scheduler", () => {
  before(async () => {
    promDir = tempDir("prometheus");
    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    const config = path.join(promDir.dir, "prometheus.yml");
    const targets = [leader, standby].map((s) => `"${new URL(s.baseUrl!).host}"`).join(", ");
    writeFileSync(
      config,
      [
        "global:",
        "  scrape_interval: 1s",
        "  evaluation_interval: 1s",
        "rule_files:",
        `  - ${JSON.stringify(path.join(REPO_ROOT, "ops/alerts.yml"))}`,
        "scrape_configs:",
        "  - job_name: backend-scheduler",
        `    static_configs: [{ targets: [${targets}] }]`,
        "",
      ].join("\n"),
    );
    prometheus = spawn(
      "prometheus",
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${path.join(promDir.dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    prometheus.stdout!.on("data", (c) => {
      prometheusLog += c;
    });
    prometheus.stderr!.on("data", (c) => {
      prometheusLog += c;
    });
    const spawned = new Promise<void>((_resolve, reject) =>
      prometheus!.on("error", (error: NodeJS.ErrnoException) =>
        reject(
          error.code === "ENOENT"
            ? new Error("prometheus is not installed: run scripts/ensure-prometheus.sh")
            : error,
        ),
      ),
    );
    await Promise.race([
      spawned,
      waitFor("Prometheus to be ready", async () =>
        (await fetch(`${prometheusUrl}/-/ready`)).ok ? true : undefined,
      ),
    ]).catch((error) => {
      throw new Error(`${(error as Error).message}\n${prometheusLog}`);
    });
  });

  test("a PromQL query through Prometheus' HTTP API returns the scheduler's series", async () => {
    const leaders = await waitFor("scheduler_is_leader scraped from both replicas", async () => {
      const r = await promQuery('scheduler_is_leader{job="backend-scheduler"}');
      return r.length === 2 ? r : undefined;
    });
    const byInstance = Object.fromEntries(leaders.map((r) => [r.metric.instance, r.value[1]]));
    assert.equal(byInstance[new URL(leader.baseUrl!).host], "1");
    assert.equal(byInstance[new URL(standby.baseUrl!).host], "0");
    const up = await promQuery('up{job="backend-scheduler"}');
    assert.deepEqual(
      up.map((r) => r.value[1]),
      ["1", "1"],
    );
    // Every scheduler_* series the leader exposes (labelled metrics without any value yet,
    // like scheduler_unknown_status_total before a first unknown code, have none) is in Prometheus.
    const exposedText = await (await fetch(`${leader.baseUrl}/metrics`)).text();
    const exposed = new Set([...exposedText.matchAll(/^(scheduler_[a-z_]+)(?:\{| )/gm)].map((m) => m[1]!));
    for (const name of ISSUE_METRICS) {
      const histogram = name.endsWith("_duration_seconds");
      if (name !== "scheduler_unknown_status_total") {
        assert.ok(
          exposed.has(histogram ? `${name}_bucket` : name),
          `the leader exposes no sample of ${name}`,
        );
      }
    }
    const scraped = await waitFor("every exposed series in Prometheus", async () => {
      const names = await promQuery(
        'count by (__name__) ({__name__=~"scheduler_.+", job="backend-scheduler"})',
      );
      const scraped = new Set(names.map((r) => r.metric.__name__));
      return [...exposed].every((n) => scraped.has(n)) ? scraped : undefined;
    });
    assert.ok(scraped.size >= 15, `only ${scraped.size} scheduler_* metrics in Prometheus`);
    const reconciles = await promQuery(
      'sum(scheduler_reconcile_total{job="backend-scheduler", result="success"})',
    );
    assert.ok(Number(reconciles[0]?.value[1]) > 0, "the leader has reconciled successfully");
  });

  test("the alert rules load and evaluate without error on the real series; no alert fires on a healthy pair", async () => {
    const groups = await waitFor(
      "every alert rule evaluated",
      async () => {
        const res = await fetch(`${prometheusUrl}/api/v1/rules?type=alert`);
        const body = (await res.json()) as {
          data: {
            groups: { rules: { name: string; health: string; lastError?: string; state: string }[] }[];
          };
        };
        const rules = body.data.groups.flatMap((g) => g.rules);
        return rules.length > 0 && rules.every((r) => r.health === "ok") ? rules : undefined;
      },
      15_000,
    ).catch(async (error) => {
      const res = await fetch(`${prometheusUrl}/api/v1/rules?type=alert`);
      throw new Error(`${(error as Error).message}: ${await res.text()}`);
    });
    assert.equal(groups.length, 10);
    // After a few evaluations, a healthy leader + standby have no alert, firing or pending.
    await new Promise((r) => setTimeout(r, 2500));
    const alerts = await promQuery("ALERTS");
    assert.deepEqual(
      alerts.map((a) => `${a.metric.alertname} ${a.metric.alertstate}`),
      [],
    );
  });
});

describe("management API end to end", () => {
  test("no token or a wrong token: 401, and nothing happens", async () => {
    const before = await db.sql`SELECT count(*)::int AS n FROM scheduler.fixture_overrides`;
    const fixture = (await db.sql`SELECT fixture_id FROM fixtures ORDER BY fixture_id LIMIT 1`)[0]!
      .fixture_id;
    assert.equal((await admin(leader, "POST", "/reconcile", { token: null })).status, 401);
    assert.equal(
      (
        await admin(leader, "PUT", `/fixtures/${fixture}/override`, {
          token: "wrong-token-wrong-token",
          json: { status: "CANCELLED" },
        })
      ).status,
      401,
    );
    const afterCount = await db.sql`SELECT count(*)::int AS n FROM scheduler.fixture_overrides`;
    assert.equal(afterCount[0]!.n, before[0]!.n);
  });

  test("right token: a pin is written, the reconciler applies it to the host row, history shows it, unpin removes it", async () => {
    // A fixture far in the future: the API says NOT_STARTED and will keep saying so.
    const [target] = await db.sql`
      SELECT fixture_id, league_id, season FROM fixtures
       WHERE status = 'NOT_STARTED' AND league_id = 39 ORDER BY date DESC LIMIT 1`;
    assert.ok(target, "the demo sync filled the fixtures table");
    const id = target.fixture_id as number;
    const pin = await admin(leader, "PUT", `/fixtures/${id}/override`, {
      json: { status: "FINISHED", home_score: 3, away_score: 2, reason: "observability test" },
    });
    assert.equal(pin.status, 202, JSON.stringify(pin.body));
    const [stored] =
      await db.sql`SELECT status::text, home_score, away_score, reason FROM scheduler.fixture_overrides WHERE fixture_id = ${id}`;
    assert.deepEqual(
      { ...stored },
      { status: "FINISHED", home_score: 3, away_score: 2, reason: "observability test" },
    );
    await waitFor("the pinned values in the host table", async () => {
      const [row] =
        await db.sql`SELECT status::text, home_score, away_score FROM fixtures WHERE fixture_id = ${id}`;
      return row?.status === "FINISHED" && row.home_score === 3 && row.away_score === 2 ? row : undefined;
    });
    const history = await admin(leader, "GET", `/fixtures/${id}/history`);
    assert.equal(history.status, 200);
    assert.equal(history.body.fixture_id, id);
    const changes = history.body.changes as unknown[];
    assert.ok(changes.length > 0, "the pin's change is recorded");
    assert.match(JSON.stringify(changes), /FINISHED/);
    // A standby answers the read as well (from the same database).
    assert.equal((await admin(standby, "GET", `/fixtures/${id}/history`)).status, 200);

    const unpin = await admin(leader, "DELETE", `/fixtures/${id}/override`);
    assert.equal(unpin.status, 202);
    assert.equal(
      (await db.sql`SELECT 1 FROM scheduler.fixture_overrides WHERE fixture_id = ${id}`).length,
      0,
    );
    assert.equal((await admin(leader, "DELETE", `/fixtures/${id}/override`)).status, 404);
    assert.equal(
      (await admin(leader, "PUT", "/fixtures/2147483647/override", { json: { status: "CANCELLED" } })).status,
      404,
    );
  });

  test("right token: reconcile now and resync are accepted and run", async () => {
    const runs = async () => {
      const text = await (await fetch(`${leader.baseUrl}/metrics`)).text();
      return [...text.matchAll(/^scheduler_reconcile_total\{result="[a-z]+"\} (\d+)/gm)].reduce(
        (sum, m) => sum + Number(m[1]),
        0,
      );
    };
    const before = await runs();
    const res = await admin(leader, "POST", "/reconcile");
    assert.equal(res.status, 202);
    await waitFor(
      "a reconcile after POST /reconcile",
      async () => ((await runs()) > before ? true : undefined),
      10_000,
    );
    assert.equal((await admin(leader, "POST", "/competitions/39:2025/resync")).status, 202);
    const unknown = await admin(leader, "POST", "/competitions/999:2025/resync");
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error, "unknown_competition");
  });

  test("a standby answers 409 with the leader's identity and writes nothing", async () => {
    const [row] = await db.sql`SELECT fixture_id FROM fixtures ORDER BY fixture_id LIMIT 1`;
    const id = row!.fixture_id as number;
    for (const [method, urlPath, json] of [
      ["POST", "/reconcile", undefined],
      ["POST", "/competitions/39:2025/resync", undefined],
      ["PUT", `/fixtures/${id}/override`, { status: "CANCELLED" }],
      ["DELETE", `/fixtures/${id}/override`, undefined],
    ] as const) {
      const res = await admin(standby, method, urlPath, { json });
      assert.equal(res.status, 409, `${method} ${urlPath}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error, "not_leader");
      assert.equal(res.body.leader, "obs-leader");
    }
    assert.equal(
      (await db.sql`SELECT 1 FROM scheduler.fixture_overrides WHERE fixture_id = ${id}`).length,
      0,
    );
  });

  test("neither the admin token nor the database password appears in any response or log line", () => {
    assert.ok(received.length > 10);
    for (const text of received) {
      assert.ok(!text.includes(TOKEN), `a response carried the admin token: ${text.slice(0, 200)}`);
      assert.ok(
        !text.includes(DB_PASSWORD),
        `a response carried the database password: ${text.slice(0, 200)}`,
      );
    }
    for (const child of [leader, standby]) {
      const output = child.stdout + child.stderr;
      assert.ok(output.length > 0);
      assert.ok(!output.includes(TOKEN), "a log line carried the admin token");
      assert.ok(!output.includes(DB_PASSWORD), "a log line carried the database password");
    }
  });
});
