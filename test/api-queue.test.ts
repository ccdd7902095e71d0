/**
 * The bounded API call path: daily budget and reserve by UTC day of the clock, the API's own
 * remaining count, blocks, concurrency, the per-minute cap on a fast clock, abort on shutdown,
 * and the whole path end to end (queue → client → simulator).
 */
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { Writable } from "node:stream";
import { describe, test } from "node:test";
import { ApiQueue, type ApiQueueOptions } from "../controller/api-queue.js";
import { type Clock, scaledClock } from "../controller/clock.js";
import type { SchedulerError } from "../controller/errors.js";
import { FootballApiClient, type QuotaSnapshot } from "../controller/football-api.js";
import { createLogger } from "../controller/logger.js";
import { startSimulator } from "../controller/simulator/index.js";

const NOON = new Date("2026-12-04T12:00:00Z");

function manualClock(start: Date): Clock & { set(d: Date): void } {
  let now = start.getTime();
  return {
    speed: 1,
    now: () => new Date(now),
    sleep: async (ms) => {
      now += ms;
    },
    set: (d) => {
      now = d.getTime();
    },
  };
}

function emptyQuota(): QuotaSnapshot {
  return {
    dayLimit: null,
    dayRemaining: null,
    minuteLimit: null,
    minuteRemaining: null,
    updatedAt: null,
    blockedUntil: null,
    blockedReason: null,
  };
}

function queue(overrides: Partial<ApiQueueOptions> = {}) {
  return new ApiQueue({
    concurrency: 2,
    callsPerMinute: 1000,
    dailyBudget: 5,
    dailyReserve: 2,
    clock: manualClock(NOON),
    quota: emptyQuota,
    ...overrides,
  });
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<SchedulerError> {
  try {
    await promise;
  } catch (error) {
    assert.equal((error as SchedulerError).code, code, (error as Error).message);
    return error as SchedulerError;
  }
  assert.fail(`expected ${code}`);
}

const ok = async () => "done";

describe("daily budget", () => {
  test("ordinary calls stop at budget − reserve; essential ones may use the reserve, never more", async () => {
    const days: string[] = [];
    const q = queue({ onCall: (day) => days.push(day) });
    assert.equal(q.remainingToday(), 3);
    for (let i = 0; i < 3; i++) assert.equal(await q.run("fixtures:season", ok), "done");
    assert.equal(q.remainingToday(), 0);
    let called = false;
    const error = await rejectsWith(
      q.run("fixtures:season", async () => {
        called = true;
      }),
      "API_BUDGET_EXHAUSTED",
    );
    assert.equal(called, false);
    assert.equal(error.retryable, false);
    assert.equal(await q.run("fixtures:ids", ok, { essential: true }), "done");
    assert.equal(await q.run("fixtures:ids", ok, { essential: true }), "done");
    await rejectsWith(q.run("fixtures:ids", ok, { essential: true }), "API_BUDGET_EXHAUSTED");
    assert.equal(q.callsToday, 5);
    assert.deepEqual(days, Array(5).fill("2026-12-04"));
  });

  test("the count is per UTC day of the clock and starts from callsToday", async () => {
    const clock = manualClock(new Date("2026-12-04T23:59:00Z"));
    const q = queue({ clock, callsToday: 3 });
    assert.equal(q.callsToday, 3);
    await rejectsWith(q.run("fixtures:live", ok), "API_BUDGET_EXHAUSTED");
    clock.set(new Date("2026-12-05T00:00:00Z"));
    assert.equal(q.callsToday, 0);
    assert.equal(q.remainingToday(), 3);
    assert.equal(await q.run("fixtures:live", ok), "done");
    assert.equal(q.callsToday, 1);
  });

  test("never beyond the API's own remaining count (minus the reserve), when it is from today", async () => {
    const clock = manualClock(NOON);
    let quota: QuotaSnapshot = { ...emptyQuota(), dayLimit: 100, dayRemaining: 3, updatedAt: NOON };
    const q = queue({ clock, dailyBudget: 50, dailyReserve: 2, quota: () => quota });
    assert.equal(q.remainingToday(), 1);
    await q.run("fixtures:live", ok);
    quota = { ...quota, dayRemaining: 2 };
    assert.equal(q.remainingToday(), 0);
    await rejectsWith(q.run("fixtures:live", ok), "API_BUDGET_EXHAUSTED");
    assert.equal(await q.run("fixtures:ids", ok, { essential: true }), "done");
    // Yesterday's number says nothing about today.
    quota = { ...quota, dayRemaining: 0, updatedAt: new Date("2026-12-03T23:00:00Z") };
    assert.equal(q.remainingToday(), 50 - 2 - 2);
  });

  test("refuses while the client is blocked (daily quota, bad key)", async () => {
    const clock = manualClock(NOON);
    let quota: QuotaSnapshot = {
      ...emptyQuota(),
      blockedUntil: new Date("2026-12-05T00:00:00Z"),
      blockedReason: "API_DAILY_QUOTA",
    };
    const q = queue({ clock, quota: () => quota });
    assert.equal(q.remainingToday(), 0);
    await rejectsWith(q.run("fixtures:live", ok, { essential: true }), "API_DAILY_QUOTA");
    quota = { ...quota, blockedUntil: new Date(8.64e15), blockedReason: "API_BAD_KEY" };
    await rejectsWith(q.run("fixtures:live", ok), "API_BAD_KEY");
    quota = { ...quota, blockedUntil: new Date("2026-12-04T11:00:00Z") };
    assert.equal(await q.run("fixtures:live", ok), "done");
    assert.throws(() => queue({ dailyBudget: 5, dailyReserve: 5 }), RangeError);
  });
});

describe("bounds and shutdown", () => {
  test("concurrency: at most N in flight, the rest queued (depth)", async () => {
    const q = queue({ concurrency: 2, dailyBudget: 100 });
    const gates: (() => void)[] = [];
    let maxInFlight = 0;
    const task = () =>
      new Promise<string>((resolve) => {
        maxInFlight = Math.max(maxInFlight, q.inFlight);
        gates.push(() => resolve("done"));
      });
    const runs = Array.from({ length: 5 }, () => q.run("fixtures:ids", task));
    await new Promise((r) => setImmediate(r));
    assert.equal(q.inFlight, 2);
    assert.equal(q.depth, 3);
    while (gates.length > 0 || q.inFlight > 0) {
      gates.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(await Promise.all(runs), Array(5).fill("done"));
    assert.equal(maxInFlight, 2);
    assert.equal(q.depth, 0);
  });

  test("per-minute cap in clock time: on a 600× clock, 3 calls a minute means one window per 100 ms", async () => {
    const clock = scaledClock(NOON, 600);
    const q = queue({ clock, callsPerMinute: 3, concurrency: 10, dailyBudget: 100 });
    const starts: number[] = [];
    const started = Date.now();
    await Promise.all(
      Array.from({ length: 6 }, () =>
        q.run("fixtures:live", async () => {
          starts.push(Date.now() - started);
        }),
      ),
    );
    assert.equal(starts.length, 6);
    // Sliding window: any four consecutive starts span at least one clock minute (100 ms).
    for (let i = 0; i + 3 < starts.length; i++) {
      assert.ok(starts[i + 3]! - starts[i]! >= 90, `starts at ${starts}`);
    }
    assert.ok(starts[2]! < starts[3]!);
  });

  test("abortAll aborts calls in flight and queued ones; the queue stays usable", async () => {
    const q = queue({ concurrency: 1, dailyBudget: 100 });
    let seenSignal: AbortSignal | undefined;
    const inFlight = q.run("fixtures:live", (signal) => {
      seenSignal = signal;
      return new Promise((_resolve, reject) => {
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    });
    const queued = q.run("fixtures:live", ok);
    await new Promise((r) => setImmediate(r));
    assert.equal(q.inFlight, 1);
    assert.equal(q.depth, 1);
    q.abortAll();
    await rejectsWith(inFlight, "ABORTED");
    await rejectsWith(queued, "ABORTED");
    assert.equal(seenSignal?.aborted, true);
    assert.equal(q.callsToday, 1, "the queued call was never made");
    assert.equal(await q.run("fixtures:live", ok), "done");
    // A caller's own signal; a long-lived one is left without listeners after each call.
    await rejectsWith(q.run("fixtures:live", ok, { signal: AbortSignal.abort() }), "ABORTED");
    const longLived = new AbortController().signal;
    for (let i = 0; i < 3; i++) await q.run("fixtures:live", ok, { signal: longLived });
    assert.equal(getEventListeners(longLived, "abort").length, 0);
  });
});

test("end to end: queue → client → simulator; the API's count and a spent quota stop the calls", async () => {
  const clock = scaledClock(NOON, 1000);
  const sim = await startSimulator({
    clock,
    anchor: NOON,
    apiKey: "e2e-key-123456",
    faults: { dayLimit: 4 },
  });
  const logger = createLogger({
    level: "silent",
    destination: new Writable({ write: (_c, _e, done) => done() }),
  });
  const client = new FootballApiClient({
    baseUrl: sim.url,
    apiKey: "e2e-key-123456",
    timeoutMs: 2000,
    maxRetries: 1,
    logger,
    clock,
  });
  const q = new ApiQueue({
    concurrency: 2,
    callsPerMinute: 100,
    dailyBudget: 100,
    dailyReserve: 1,
    clock,
    quota: () => client.quota,
  });
  try {
    const results = await Promise.all(
      Array.from({ length: 3 }, () =>
        q.run("fixtures:live", (signal) => client.liveFixtures(undefined, signal)),
      ),
    );
    assert.equal(results.length, 3);
    assert.equal(client.quota.dayRemaining, 1);
    // One left by the API's count, and it is the reserve: only an essential call may use it.
    await rejectsWith(
      q.run("fixtures:live", (signal) => client.liveFixtures(undefined, signal)),
      "API_BUDGET_EXHAUSTED",
    );
    await q.run("fixtures:ids", (signal) => client.fixturesByIds([390_001], signal), { essential: true });
    assert.equal(q.remainingToday(), 0);
    assert.equal(
      sim.requestLog().filter((e) => e.counted).length,
      4,
      "the simulator saw exactly the calls the budget allowed",
    );
  } finally {
    await sim.close();
  }
});
