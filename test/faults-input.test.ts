/**
 * Fault suite, input side (issue 8), against the real program (one process on a test
 * database, asking an in-process simulator):
 *  - SCHEDULER_CONFIG replaced by invalid YAML, then by a schema violation: the old
 *    configuration stays, one error line each, the process keeps running; a valid change
 *    (a new competition) is then picked up, also when the file is replaced by a rename;
 *  - hostile HTTP: huge bodies (413), bad JSON (400), wrong content types (415), slowloris-like
 *    partial headers (closed by the server's timeouts), path traversal, very long URLs, many
 *    concurrent requests: the process stays up and /health keeps answering.
 */
import assert from "node:assert/strict";
import { renameSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { systemClock } from "../controller/clock.js";
import { type Simulator, startSimulator } from "../controller/simulator/index.js";
import { createTestDatabase, type TestDatabase } from "./support/database.js";
import { waitFor } from "./support/faults.js";
import { type ChildScheduler, minimalEnv, sleep, startSchedulerHttp, tempDir } from "./support/process.js";

const API_KEY = "input-fault-key-0123456789";
const ADMIN_TOKEN = "input-fault-admin-token-0123456789";

let db: TestDatabase;
let sim: Simulator;
let tmp: ReturnType<typeof tempDir>;
let configFile: string;
let child: ChildScheduler;
let seasons: Map<number, number>;

const rejected = () =>
  child.logs().filter((l) => l.msg === "configuration file rejected; keeping the previous configuration");
const reloaded = () => child.logs().filter((l) => l.msg === "configuration file reloaded");

async function competitions(): Promise<string[]> {
  const status = (await child.get("/status")).json as {
    competitions: { league_id: number; season: number }[];
  };
  return status.competitions.map((c) => `${c.league_id}:${c.season}`).sort();
}

async function healthy(label: string) {
  assert.ok(!child.hasExited, `${label}: the process is still running\n${child.describe()}`);
  const h = await child.get("/health", 5000);
  assert.equal(h.status, 200, `${label}: /health ${h.status} ${h.text}`);
}

before(async () => {
  db = await createTestDatabase("faults_input", { migrate: true });
  sim = await startSimulator({
    host: "127.0.0.1",
    port: 0,
    clock: systemClock,
    apiKey: API_KEY,
    leagues: [39, 140, 78],
    faults: { minuteLimit: null, dayLimit: null },
  });
  seasons = new Map(sim.leagues().map((l) => [l.id, l.season]));
  tmp = tempDir("faults-input");
  configFile = path.join(tmp.dir, "scheduler.yaml");
  writeFileSync(configFile, `SCHEDULER_COMPETITIONS: "39:${seasons.get(39)}"\nLOG_LEVEL: info\n`);
  child = await startSchedulerHttp({
    env: minimalEnv({
      DATABASE_URL: db.url,
      LEADER_ELECTION: "none",
      HOST: "127.0.0.1",
      FOOTBALL_API_URL: sim.url,
      FOOTBALL_API_KEY: API_KEY,
      SCHEDULER_CONFIG: configFile,
      ADMIN_TOKEN,
      API_DAILY_BUDGET: "100000",
      API_CALLS_PER_MINUTE: "1000",
    }),
  });
  await child.waitForLog("backend-scheduler started", 30_000);
  await child.waitForHttp("/ready", (a) => a.status === 200, 20_000);
});

after(async () => {
  await child?.kill();
  await sim?.close();
  await db?.drop();
  tmp?.remove();
});

describe("a corrupt configuration file on reload", () => {
  test("invalid YAML, then a schema violation: the old config stays, one error line each, still running", async () => {
    const before = await competitions();
    assert.deepEqual(before, [`39:${seasons.get(39)}`]);
    writeFileSync(configFile, 'SCHEDULER_COMPETITIONS: ["39:2025"\nLOG_LEVEL: [unclosed\n');
    await waitFor(() => rejected().length >= 1, 10_000, "the invalid YAML to be rejected");
    await sleep(700); // one change, one line: the watcher's events are debounced
    assert.equal(rejected().length, 1, "one error line for the invalid YAML");
    assert.match(String(rejected()[0]!.err), /not valid YAML/);
    await healthy("after invalid YAML");
    assert.deepEqual(await competitions(), before, "the previous competitions are kept");

    writeFileSync(configFile, 'SCHEDULER_COMPETITIONS: "39:20x5"\nAPI_TIMEOUT_SECONDS: -1\n');
    await waitFor(() => rejected().length >= 2, 10_000, "the schema violation to be rejected");
    await sleep(700);
    assert.equal(rejected().length, 2, "one error line for the schema violation");
    assert.match(String(rejected()[1]!.err), /SCHEDULER_COMPETITIONS|API_TIMEOUT_SECONDS/);
    assert.doesNotMatch(child.stdout + child.stderr, /^\s+at /m, "no stack trace");
    await healthy("after a schema violation");
    assert.deepEqual(await competitions(), before, "the previous competitions are still kept");
  });

  test("a valid change is then picked up: a new competition is synced", async () => {
    const count = reloaded().length;
    writeFileSync(configFile, `SCHEDULER_COMPETITIONS: "39:${seasons.get(39)},140:${seasons.get(140)}"\n`);
    await waitFor(() => reloaded().length > count, 10_000, "the valid file to be reloaded");
    await waitFor(
      async () => (await competitions()).includes(`140:${seasons.get(140)}`),
      10_000,
      "the new competition in /status",
    );
    await waitFor(
      async () => {
        const [row] = await db.sql<
          { n: number }[]
        >`SELECT count(*)::int AS n FROM fixtures WHERE league_id = 140`;
        return (row?.n ?? 0) > 0;
      },
      20_000,
      "the new competition's fixtures",
    );
    await healthy("after the change");
  });

  test("a file replaced by a rename (editors, ConfigMap updates) is picked up as well", async () => {
    const count = reloaded().length;
    const next = path.join(tmp.dir, "scheduler.yaml.new");
    writeFileSync(
      next,
      `SCHEDULER_COMPETITIONS: "39:${seasons.get(39)},140:${seasons.get(140)},78:${seasons.get(78)}"\n`,
    );
    renameSync(next, configFile);
    await waitFor(() => reloaded().length > count, 10_000, "the renamed file to be reloaded");
    await waitFor(
      async () => (await competitions()).includes(`78:${seasons.get(78)}`),
      10_000,
      "the third competition in /status",
    );
    // And the watch survives the rename: a later in-place change is seen too.
    const again = reloaded().length;
    writeFileSync(configFile, `SCHEDULER_COMPETITIONS: "39:${seasons.get(39)},78:${seasons.get(78)}"\n`);
    await waitFor(() => reloaded().length > again, 10_000, "a later change to be reloaded");
    await healthy("after the rename");
  });
});

/** One raw HTTP exchange (no client normalisation of the path); resolves with the status line. */
function raw(request: string, timeoutMs = 5000): Promise<{ status: number; text: string }> {
  const { port } = new URL(child.baseUrl!);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), "127.0.0.1");
    let text = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms to ${request.slice(0, 60)}`));
    }, timeoutMs);
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      text += chunk;
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
    socket.on("error", () => {});
    socket.write(request);
  });
}

describe("oversized and hostile HTTP requests", () => {
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const post = (
    p: string,
    body: string | Uint8Array,
    headers: Record<string, string> = {},
    method = "POST",
  ) =>
    fetch(`${child.baseUrl}${p}`, { method, body, headers, signal: AbortSignal.timeout(10_000) }).then(
      async (r) => ({ status: r.status, text: await r.text() }),
    );

  test("huge bodies → 413, bad JSON → 400, wrong content types → 415, no token → 401", async () => {
    const huge = JSON.stringify({
      status: "FINISHED",
      home_score: 1,
      away_score: 0,
      reason: "x".repeat(2_000_000),
    });
    const json = { ...auth, "content-type": "application/json" };
    assert.equal((await post("/api/v1/fixtures/1/override", huge, json, "PUT")).status, 413);
    assert.equal((await post("/api/v1/reconcile", huge, json)).status, 413);
    assert.equal((await post("/api/v1/reconcile", huge, { "content-type": "application/json" })).status, 401);
    assert.equal((await post("/api/v1/fixtures/1/override", "{not json", json, "PUT")).status, 400);
    assert.equal((await post("/api/v1/fixtures/1/override", '{"status":', json, "PUT")).status, 400);
    for (const type of [
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
    ]) {
      const r = await post(
        "/api/v1/fixtures/1/override",
        '{"status":"FINISHED"}',
        { ...auth, "content-type": type },
        "PUT",
      );
      assert.equal(r.status, 415, `${type}: ${r.status}`);
    }
    const latin = await post("/api/v1/reconcile", "{}", {
      ...auth,
      "content-type": "application/json; charset=latin1",
    });
    assert.equal(latin.status, 415, `charset latin1: ${latin.status}`);
    // A body where none belongs, on public paths.
    const big = new Uint8Array(5_000_000);
    const onHealth = await post("/health", big, { "content-type": "application/octet-stream" });
    assert.ok(onHealth.status === 404 || onHealth.status === 413, `POST /health: ${onHealth.status}`);
    for (const answer of [onHealth])
      assert.doesNotMatch(answer.text, /ADMIN_TOKEN|input-fault/, "no secret echoed");
    await healthy("after huge bodies");
  });

  test("path traversal and very long URLs are refused; nothing from the file system is served", async () => {
    for (const p of [
      "/../../../../etc/passwd",
      "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
      "/..%2f..%2f..%2fetc%2fpasswd",
      "/api/v1/fixtures/..%2f..%2fetc%2fpasswd/history",
      "/api/v1/fixtures/1%00/history",
      "/status/../../package.json",
    ]) {
      const r = await raw(
        `GET ${p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nConnection: close\r\n\r\n`,
      );
      assert.ok(r.status >= 400 && r.status < 500, `${p}: ${r.status}`);
      assert.doesNotMatch(r.text, /root:|"dependencies"/, `${p}: no file served`);
    }
    const long = await raw(
      `GET /status?${"a".repeat(200_000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    assert.ok(long.status === 431 || long.status === 414 || long.status === 400, `long URL: ${long.status}`);
    const longPath = await fetch(`${child.baseUrl}/api/v1/fixtures/${"9".repeat(8000)}/history`, {
      headers: auth,
    });
    assert.equal(longPath.status, 400, "an absurd fixture id is a 400");
    await healthy("after traversal and long URLs");
  });

  test("slowloris: partial headers are cut off by the server's timeouts while /health answers", async () => {
    const { port } = new URL(child.baseUrl!);
    const sockets = Array.from({ length: 30 }, () => {
      const s = net.connect(Number(port), "127.0.0.1");
      s.on("error", () => {});
      s.write("GET /health HTTP/1.1\r\nHost: x\r\n");
      return s;
    });
    const closed = sockets.map((s) => new Promise<void>((resolve) => s.on("close", () => resolve())));
    const drip = setInterval(() => {
      for (const s of sockets) if (!s.destroyed) s.write(`X-Drip-${Math.floor(Math.random() * 1e6)}: 1\r\n`);
    }, 1000);
    try {
      await healthy("with slow clients connected");
      // Bounded by the server's header and request timeouts (5 s / 10 s) and their checking interval.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(closed),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new Error(`slow connections open after 45 s: ${sockets.filter((s) => !s.destroyed).length}`),
              ),
            45_000,
          );
        }),
      ]).finally(() => clearTimeout(timer));
    } finally {
      clearInterval(drip);
      for (const s of sockets) s.destroy();
    }
    await healthy("after slow clients");
  });

  test("many concurrent requests: every one answered, the process stays healthy", async () => {
    const paths = ["/health", "/ready", "/status", "/metrics", "/api/v1/reconcile", "/nope"];
    const answers = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        fetch(`${child.baseUrl}${paths[i % paths.length]}`, {
          method: paths[i % paths.length] === "/api/v1/reconcile" ? "POST" : "GET",
          signal: AbortSignal.timeout(20_000),
        }).then(
          async (r) => ({ status: r.status, len: (await r.text()).length }),
          (e) => ({ status: 0, len: String(e).length }),
        ),
      ),
    );
    const failed = answers.filter((a) => a.status === 0 || a.status >= 500);
    assert.deepEqual(failed, [], `every request answered without a 5xx (${failed.length} failed)`);
    assert.ok(
      answers
        .filter((_a, i) => paths[i % paths.length] === "/api/v1/reconcile")
        .every((a) => a.status === 401),
      "unauthenticated admin calls are 401",
    );
    await healthy("after a burst");
    assert.ok(!child.logs().some((l) => l.level === 60), "nothing fatal logged");
  });
});
