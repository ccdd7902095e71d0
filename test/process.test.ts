/**
 * The built program (`npm run build`, then `node dist/main.js`) as an operator runs it:
 * with no configuration at all it comes up on the embedded database with the bundled
 * simulator, answers /health, /ready, /status and /metrics, and exits 0 within 10 s of
 * SIGTERM or SIGINT; with its database unreachable it stays alive (/health 200, /ready 503)
 * and still stops cleanly.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  buildOnce,
  type ChildScheduler,
  minimalEnv,
  startSchedulerHttp,
  tempDir,
} from "./support/process.js";

const STOP_BOUND_MS = 10_000;
const ADMIN_TOKEN = "process-test-admin-token-0123456789";

let tmp: ReturnType<typeof tempDir>;
before(async () => {
  tmp = tempDir("process");
  await buildOnce();
});
after(() => {
  tmp.remove();
});

/** Keys that name a secret must never carry a value other than a redaction mark. */
function secretsIn(value: unknown, at = ""): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => secretsIn(v, `${at}[${i}]`));
  if (value && typeof value === "object") {
    return Object.entries(value).flatMap(([k, v]) => {
      const here = at ? `${at}.${k}` : k;
      if (
        /(^|_)(api_?key|key|token|password|secret)s?$/i.test(k) &&
        typeof v === "string" &&
        v !== "[redacted]"
      ) {
        return [`${here}=${v}`];
      }
      return secretsIn(v, here);
    });
  }
  return [];
}

async function stopWithin(child: ChildScheduler, signal: NodeJS.Signals): Promise<number> {
  const sent = Date.now();
  const exit = await child.signalAndWait(signal, STOP_BOUND_MS + 5000);
  const tookMs = Date.now() - sent;
  assert.equal(exit.signal, null, `exited by itself, not killed by ${exit.signal}\n${child.describe()}`);
  assert.equal(exit.code, 0, `exit 0 after ${signal}\n${child.describe()}`);
  assert.ok(tookMs < STOP_BOUND_MS, `exited ${tookMs} ms after ${signal}, bound ${STOP_BOUND_MS} ms`);
  assert.doesNotMatch(exit.stderr, /^\s+at /m, `no stack trace\n${exit.stderr}`);
  assert.ok(
    child.logs().some((r) => r.msg === "shutting down" && String(r.reason) === signal),
    `logs the shutdown and its reason\n${child.describe()}`,
  );
  return tookMs;
}

describe("the built program (node dist/main.js)", () => {
  test("no configuration at all: healthy, ready, /status without secrets, SIGTERM exits 0", async (t) => {
    // Nothing but PORT (the default 8001 may be taken): DATA_DIR defaults to ./.data in cwd.
    const child = await startSchedulerHttp({ built: true, env: minimalEnv(), cwd: tmp.dir });
    try {
      const health = await child.waitForHttp(
        "/health",
        (a) => a.status === 200 && (a.json as { scheduler_status?: string }).scheduler_status === "running",
        60_000,
      );
      assert.deepEqual(health.json, { status: "healthy", scheduler_status: "running" });
      const ready = await child.waitForHttp("/ready", (a) => a.status === 200, 30_000);
      assert.equal((ready.json as { status: string }).status, "ready");
      assert.ok(existsSync(path.join(tmp.dir, ".data", "scheduler.lock")), "embedded database under ./.data");

      const status = await child.get("/status");
      assert.equal(status.status, 200);
      const body = status.json as Record<string, unknown> & { leader: Record<string, unknown> };
      assert.equal(body.mode, "demo", "demo mode is said in /status");
      assert.equal(body.demo, true);
      assert.equal(typeof body.version, "string");
      assert.equal(typeof body.uptime_seconds, "number");
      assert.equal(body.leader.is_leader, true);
      assert.equal(body.leader.lease_name, "backend-scheduler");
      assert.deepEqual(secretsIn(body), []);
      assert.ok(
        child.logs().some((r) => r.level === 40 && /DEMO MODE/.test(String(r.msg))),
        "demo mode is said loudly in the log",
      );

      const metrics = await child.get("/metrics");
      assert.equal(metrics.status, 200);
      assert.match(metrics.text, /^# (HELP|TYPE) /m);

      const unknown = await child.get("/no-such-path");
      assert.equal(unknown.status, 404);

      t.diagnostic(`exited ${await stopWithin(child, "SIGTERM")} ms after SIGTERM`);
      assert.equal(existsSync(path.join(tmp.dir, ".data", "scheduler.lock")), false, "lock released");
    } finally {
      await child.kill();
    }
  });

  test("SIGINT exits 0 too (restart on the same data; an admin token never shows)", async (t) => {
    const child = await startSchedulerHttp({
      built: true,
      env: minimalEnv({ ADMIN_TOKEN, LOG_LEVEL: "debug" }),
      cwd: tmp.dir,
    });
    try {
      await child.waitForHttp("/ready", (a) => a.status === 200, 60_000);
      const health = await child.get("/health");
      assert.equal(health.status, 200);
      const status = await child.get("/status");
      assert.equal(status.status, 200);
      assert.deepEqual(secretsIn(status.json), []);
      assert.ok(!status.text.includes(ADMIN_TOKEN), "/status shows the admin token");
      t.diagnostic(`exited ${await stopWithin(child, "SIGINT")} ms after SIGINT`);
      assert.ok(!child.stdout.includes(ADMIN_TOKEN), "the log shows the admin token");
      assert.ok(!child.stderr.includes(ADMIN_TOKEN), "stderr shows the admin token");
    } finally {
      await child.kill();
    }
  });

  test("database unreachable at start: alive (/health 200), not ready (/ready 503), SIGTERM exits 0", async (t) => {
    // A port that refuses connections: bound and closed again, so nothing listens there.
    const closed = await new Promise<number>((resolve) => {
      const server: Server = createServer();
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        server.close(() => resolve(typeof address === "object" && address ? address.port : 1));
      });
    });
    const child = await startSchedulerHttp({
      built: true,
      env: minimalEnv({
        DATABASE_URL: `postgres://postgres:unused-password@127.0.0.1:${closed}/backend`,
        SCHEDULER_DEMO: "true",
        DATA_DIR: path.join(tmp.dir, "unused"),
      }),
      cwd: tmp.dir,
    });
    try {
      const health = await child.waitForHttp("/health", (a) => a.status === 200, 30_000);
      assert.equal((health.json as { status: string }).status, "healthy");
      // The database outage shows in /ready, and keeps showing while it lasts.
      await child.waitForOutput(/database not ready/, 30_000);
      const ready = await child.get("/ready");
      assert.equal(ready.status, 503, ready.text);
      assert.equal((ready.json as { status: string }).status, "not_ready");
      assert.equal((await child.get("/health")).status, 200, "an outage is never a liveness failure");
      const status = await child.get("/status");
      assert.equal(status.status, 200);
      assert.ok(!status.text.includes("unused-password"), "/status shows the database password");
      t.diagnostic(`exited ${await stopWithin(child, "SIGTERM")} ms after SIGTERM`);
      assert.ok(!child.stdout.includes("unused-password"), "the log shows the database password");
    } finally {
      await child.kill();
    }
  });
});
