/**
 * The API-Football client against the simulator over real HTTP on loopback: every call, the
 * quota headers, every error shape (inside HTTP 200 and as HTTP statuses), retries with
 * backoff, and every fault knob. Time is virtual: the client's sleep moves the shared clock,
 * so a minute of rate limiting or a day of quota passes without waiting. All log output is
 * captured, and the API key must appear nowhere in it, nor in any error or returned value.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { after, before, beforeEach, describe, test } from "node:test";
import type { Clock } from "../controller/clock.js";
import type { SchedulerError } from "../controller/errors.js";
import {
  chunkIds,
  FootballApiClient,
  type FootballApiOptions,
  MAX_IDS_PER_CALL,
  type RequestEvent,
} from "../controller/football-api.js";
import { createLogger } from "../controller/logger.js";
import { type Simulator, startSimulator } from "../controller/simulator/index.js";
import type { SimFixture } from "../controller/simulator/season.js";

const KEY = "apikey-7f3c9e1d2b4a";
const ANCHOR = new Date("2026-12-04T12:00:00Z");
const MINUTE = 60_000;

/** Virtual time: `sleep` moves the clock instead of waiting. */
function virtualClock(start: Date): Clock & { set(d: Date): void } {
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

// Everything the client logs, every error it throws and everything it returns ends up here,
// to check at the end that the key is in none of it.
const logText: string[] = [];
const seen: string[] = [];
// No secrets are given to the logger: its scrubbing would hide a leak of the key by the client.
const logger = createLogger({
  level: "trace",
  destination: new Writable({
    write(chunk, _enc, done) {
      logText.push(String(chunk));
      done();
    },
  }),
});

const clock = virtualClock(ANCHOR);
let sim: Simulator;
let premier: SimFixture[];
let sleeps: number[];
let events: RequestEvent[];

function client(overrides: Partial<FootballApiOptions> = {}) {
  return new FootballApiClient({
    baseUrl: sim.url,
    apiKey: KEY,
    timeoutMs: 2000,
    maxRetries: 3,
    logger,
    clock,
    random: () => 1,
    sleep: async (ms) => {
      sleeps.push(ms);
      await clock.sleep(ms);
    },
    onRequest: (e) => events.push(e),
    ...overrides,
  });
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<SchedulerError> {
  try {
    await promise;
  } catch (error) {
    const e = error as SchedulerError;
    seen.push(String(e.message), JSON.stringify(e.details ?? {}));
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

function keep<T>(value: T): T {
  seen.push(JSON.stringify(value));
  return value;
}

before(async () => {
  sim = await startSimulator({ clock, anchor: ANCHOR, apiKey: KEY });
  premier = sim.fixtures().filter((f) => f.leagueId === 39);
});
beforeEach(() => {
  sim.reset();
  clock.set(ANCHOR);
  sleeps = [];
  events = [];
});
after(async () => {
  await sim.close();
});

describe("calls", () => {
  test("fixturesBySeason: a whole season, normalized, with the quota from the headers", async () => {
    const season = sim.leagues().find((l) => l.id === 39)!.season;
    const answer = keep(await client().fixturesBySeason(39, season));
    assert.equal(answer.fixtures.length, 380);
    assert.equal(answer.malformed, 0);
    const first = answer.fixtures.find((f) => f.fixtureId === premier[0]!.fixtureId)!;
    assert.deepEqual(first, {
      fixtureId: 390_001,
      date: premier[0]!.kickoff,
      timestamp: premier[0]!.kickoff.getTime() / 1000,
      statusShort: "FT",
      statusLong: "Match Finished",
      elapsed: 90,
      leagueId: 39,
      leagueName: "Premier League",
      season,
      round: "Regular Season - 1",
      homeTeam: "Manchester United FC",
      awayTeam: "Fulham FC",
      homeLogo: first.homeLogo,
      awayLogo: first.awayLogo,
      homeGoals: 1,
      awayGoals: 0,
      venueName: null,
      venueCity: null,
    });
    assert.match(first.homeLogo!, /^data:image\/svg\+xml,/);
    assert.equal(answer.quota.dayLimit, 7500);
    assert.equal(answer.quota.dayRemaining, 7499);
    assert.equal(answer.quota.minuteLimit, 300);
    assert.equal(answer.quota.minuteRemaining, 299);
    assert.deepEqual(answer.quota.updatedAt, ANCHOR);
    assert.deepEqual(sim.requestLog()[0]!.query, { league: "39", season: String(season) });
    assert.deepEqual(events, [
      { endpoint: "fixtures:season", outcome: "ok", durationMs: events[0]!.durationMs },
    ]);
  });

  test("fixturesByIds: up to 20 ids a call, joined by dashes; more is refused before any request", async () => {
    const ids = premier.slice(0, 3).map((f) => f.fixtureId);
    const answer = keep(await client().fixturesByIds(ids));
    assert.deepEqual(
      answer.fixtures.map((f) => f.fixtureId),
      ids,
    );
    assert.equal(sim.requestLog()[0]!.query.ids, ids.join("-"));
    const many = premier.slice(0, 21).map((f) => f.fixtureId);
    await assert.rejects(client().fixturesByIds(many), RangeError);
    assert.deepEqual((await client().fixturesByIds([])).fixtures, []);
    assert.equal(sim.requestLog().length, 1);
    assert.equal(MAX_IDS_PER_CALL, 20);
    assert.deepEqual(
      chunkIds(Array.from({ length: 45 }, (_, i) => i)).map((c) => c.length),
      [20, 20, 5],
    );
    assert.deepEqual(chunkIds([1, 2, 3], 2), [[1, 2], [3]]);
  });

  test("liveFixtures: live=all or live=L1-L2, only matches under way", async () => {
    const match = premier.find((f) => f.kickoff > ANCHOR)!;
    clock.set(new Date(match.kickoff.getTime() + 30 * MINUTE));
    const all = keep(await client().liveFixtures());
    const mine = all.fixtures.find((f) => f.fixtureId === match.fixtureId)!;
    assert.equal(mine.statusShort, "1H");
    assert.equal(mine.elapsed, 31);
    const others = await client().liveFixtures([140, 78]);
    assert.ok(others.fixtures.every((f) => f.leagueId !== 39));
    assert.deepEqual(
      sim.requestLog().map((e) => e.query.live),
      ["all", "140-78"],
    );
  });

  test("fixturesByDate: one UTC day; a malformed date is refused before any request", async () => {
    const day = premier[0]!.kickoff.toISOString().slice(0, 10);
    const answer = keep(await client().fixturesByDate(day));
    assert.ok(answer.fixtures.length > 0);
    assert.ok(answer.fixtures.every((f) => f.date.toISOString().startsWith(day)));
    assert.throws(() => client().fixturesByDate("04/12/2026"), RangeError);
    assert.equal(sim.requestLog().length, 1);
  });

  test("status: the account, free of quota, and it refreshes the day's count", async () => {
    const api = client();
    await api.liveFixtures();
    const status = keep(await api.status());
    assert.equal(status.plan, "Pro");
    assert.equal(status.active, true);
    assert.ok(status.subscriptionEnd instanceof Date);
    assert.equal(status.requestsToday, 1);
    assert.equal(status.dayLimit, 7500);
    assert.equal(status.quota.dayRemaining, 7499);
    assert.deepEqual(
      sim.requestLog().map((e) => [e.path, e.counted]),
      [
        ["/fixtures", true],
        ["/status", false],
      ],
    );
  });
});

describe("retries and HTTP failures", () => {
  test("429 then success, waiting as Retry-After says", async () => {
    sim.setFaults({ failNext: { count: 1, status: 429, retryAfterSeconds: 2 } });
    const answer = await client().liveFixtures();
    assert.equal(answer.malformed, 0);
    assert.deepEqual(
      sim.requestLog().map((e) => e.status),
      [429, 200],
    );
    assert.deepEqual(sleeps, [2000]);
    assert.deepEqual(
      events.map((e) => e.outcome),
      ["API_RATE_LIMIT", "ok"],
    );
  });

  test("5xx is retried with capped exponential backoff, then thrown as API_SERVER_ERROR", async () => {
    sim.setFaults({ errorRate: 1 });
    const error = await rejectsWith(client({ maxRetries: 2 }).liveFixtures(), "API_SERVER_ERROR");
    assert.equal(error.message, "[GET] /fixtures?live=all: 500 Internal Server Error");
    assert.equal(error.retryable, true);
    assert.equal(sim.requestLog().length, 3);
    assert.deepEqual(sleeps, [1000, 2000]);
    // With real jitter the waits stay within [ceiling/2, ceiling].
    sleeps = [];
    await rejectsWith(
      client({ maxRetries: 3, random: Math.random, retryMaxMs: 3000 }).liveFixtures(),
      "API_SERVER_ERROR",
    );
    const ceilings = [1000, 2000, 3000];
    for (const [i, ms] of sleeps.entries()) assert.ok(ms >= ceilings[i]! / 2 && ms <= ceilings[i]!, `${ms}`);
    sim.setFaults({ errorRate: 0, failNext: { count: 2, status: 503 } });
    assert.equal((await client().liveFixtures()).malformed, 0);
    assert.deepEqual(
      sim
        .requestLog()
        .slice(-3)
        .map((e) => e.status),
      [503, 503, 200],
    );
  });

  test("a request that never answers times out (API_TIMEOUT), and is retried", async () => {
    sim.setFaults({ hangNext: 1 });
    assert.equal((await client({ timeoutMs: 100 }).liveFixtures()).malformed, 0);
    assert.deepEqual(
      events.map((e) => e.outcome),
      ["API_TIMEOUT", "ok"],
    );
    sim.setFaults({ hangNext: 2 });
    const error = await rejectsWith(client({ timeoutMs: 100, maxRetries: 1 }).liveFixtures(), "API_TIMEOUT");
    assert.equal(error.message, "[GET] /fixtures?live=all: no answer within 100 ms");
  });

  test("latency below the timeout is only slower", async () => {
    sim.setFaults({ latencyMs: 60 });
    await client({ timeoutMs: 1000 }).liveFixtures();
    assert.ok(events[0]!.durationMs >= 50, `${events[0]!.durationMs} ms`);
    assert.equal(events[0]!.outcome, "ok");
  });

  test("a refused connection is API_NETWORK after the retries", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await rejectsWith(
      client({ baseUrl: `http://127.0.0.1:${port}`, maxRetries: 1 }).status(),
      "API_NETWORK",
    );
    assert.match(error.message, /^\[GET\] \/status: ECONNREFUSED/);
    assert.equal(events.length, 2);
  });

  test("401/403 are a bad key (not retried); other 4xx are API_HTTP_ERROR (not retried)", async () => {
    sim.setFaults({ failNext: { count: 1, status: 403 } });
    const api = client();
    await rejectsWith(api.liveFixtures(), "API_BAD_KEY");
    assert.equal(api.quota.blockedReason, "API_BAD_KEY");
    sim.setFaults({ failNext: { count: 1, status: 404 } });
    const error = await rejectsWith(client().liveFixtures(), "API_HTTP_ERROR");
    assert.equal(error.message, "[GET] /fixtures?live=all: 404 Not Found");
    assert.equal(sim.requestLog().length, 2);
  });

  test("an abort stops a call at once (ABORTED), also before it starts and during a backoff", async () => {
    sim.setFaults({ hangNext: 1 });
    const controller = new AbortController();
    const pending = client({ timeoutMs: 5000 }).liveFixtures(undefined, controller.signal);
    setTimeout(() => controller.abort(), 30);
    const started = Date.now();
    await rejectsWith(pending, "ABORTED");
    assert.ok(Date.now() - started < 1000);
    await rejectsWith(client().liveFixtures(undefined, AbortSignal.abort()), "ABORTED");
    const during = new AbortController();
    sim.setFaults({ failNext: { count: 1, status: 500 } });
    const api = client({
      sleep: async () => {
        during.abort();
        throw new Error("aborted");
      },
    });
    await rejectsWith(api.liveFixtures(undefined, during.signal), "ABORTED");
  });
});

describe("errors inside HTTP 200", () => {
  test("the per-minute limit ({rateLimit}) backs off until the next minute", async () => {
    sim.setFaults({ minuteLimit: 1 });
    const api = client();
    await api.liveFixtures();
    await api.liveFixtures();
    assert.deepEqual(
      sim.requestLog().map((e) => e.error),
      [null, "rateLimit", "rateLimit", "rateLimit", null],
    );
    assert.deepEqual(sleeps, [10_000, 20_000, 40_000]);
    sim.reset();
    sim.setFaults({ minuteLimit: 0 });
    const error = await rejectsWith(client({ maxRetries: 0 }).liveFixtures(), "API_RATE_LIMIT");
    assert.match(error.message, /rateLimit: Too many requests\. Your rate limit is 0 requests per minute\./);
    assert.equal(error.retryable, true);
  });

  test("daily quota exhausted: API_DAILY_QUOTA, no more calls until 00:00 UTC", async () => {
    sim.setFaults({ dayLimit: 2 });
    const api = client();
    await api.liveFixtures();
    await api.liveFixtures();
    const error = await rejectsWith(api.liveFixtures(), "API_DAILY_QUOTA");
    assert.match(
      error.message,
      /^\[GET\] \/fixtures\?live=all: requests: You have reached the request limit/,
    );
    assert.equal(error.retryable, false);
    assert.deepEqual(api.quota.blockedUntil, new Date("2026-12-05T00:00:00Z"));
    assert.equal(api.quota.blockedReason, "API_DAILY_QUOTA");
    assert.equal(api.quota.dayRemaining, 0);
    const calls = sim.requestLog().length;
    await rejectsWith(api.fixturesBySeason(39, 2026), "API_DAILY_QUOTA");
    await rejectsWith(api.fixturesByIds([390_001]), "API_DAILY_QUOTA");
    assert.equal(sim.requestLog().length, calls, "no request while blocked");
    // /status is free: it may still be asked.
    assert.equal((await api.status()).requestsToday, 2);
    clock.set(new Date("2026-12-05T00:00:01Z"));
    await api.liveFixtures();
    assert.equal(api.quota.blockedUntil, null);
    assert.equal(api.quota.dayRemaining, 1);
  });

  test("bad key: API_BAD_KEY, no more calls (not even /status) until the key is replaced", async () => {
    const api = client({ apiKey: "apikey-wrong-0000" });
    const error = await rejectsWith(api.liveFixtures(), "API_BAD_KEY");
    assert.match(error.message, /token: Error\/Missing application key/);
    assert.equal(error.retryable, false);
    assert.equal(api.quota.blockedReason, "API_BAD_KEY");
    assert.ok(api.quota.blockedUntil! > new Date("9999-01-01"));
    await rejectsWith(api.liveFixtures(), "API_BAD_KEY");
    await rejectsWith(api.status(), "API_BAD_KEY");
    assert.equal(sim.requestLog().length, 1);
    api.setApiKey(KEY);
    assert.equal((await api.liveFixtures()).malformed, 0);
    // The simulator's bad-key knob: same answer whatever the key; reset() lifts the block.
    sim.setFaults({ badKey: true });
    await rejectsWith(api.liveFixtures(), "API_BAD_KEY");
    sim.setFaults({ badKey: false });
    await rejectsWith(api.liveFixtures(), "API_BAD_KEY");
    api.reset();
    assert.equal((await api.liveFixtures()).malformed, 0);
  });

  test("every error shape maps to a stable code; bad JSON is API_BAD_RESPONSE; the key is never echoed", async () => {
    const cases: { status: number; body: string; code: string }[] = [
      {
        status: 200,
        body: JSON.stringify({ errors: { token: "Error/Missing application key." } }),
        code: "API_BAD_KEY",
      },
      {
        status: 200,
        body: JSON.stringify({ errors: { access: `The application key ${KEY} is not valid` } }),
        code: "API_BAD_KEY",
      },
      {
        status: 200,
        body: JSON.stringify({ errors: { requests: "You have reached the request limit" } }),
        code: "API_DAILY_QUOTA",
      },
      {
        status: 200,
        body: JSON.stringify({ errors: { rateLimit: "Too many requests." } }),
        code: "API_RATE_LIMIT",
      },
      {
        status: 200,
        body: JSON.stringify({ errors: { season: "The Season field is required." } }),
        code: "API_ERROR",
      },
      {
        status: 200,
        body: JSON.stringify({
          errors: [{ time: "2026-12-04 12:00:00", bug: "This is on our side.", report: "x" }],
        }),
        code: "API_ERROR",
      },
      { status: 200, body: "<html>proxy error</html>", code: "API_BAD_RESPONSE" },
      { status: 200, body: JSON.stringify({ nothing: true, errors: "weird" }), code: "API_BAD_RESPONSE" },
      { status: 502, body: "bad gateway", code: "API_SERVER_ERROR" },
      { status: 429, body: "{}", code: "API_RATE_LIMIT" },
    ];
    let current = cases[0]!;
    const server = createServer((_req, res) => {
      res.statusCode = current.status;
      res.setHeader("content-type", "application/json");
      res.setHeader("x-ratelimit-requests-limit", "100");
      res.setHeader("x-ratelimit-requests-remaining", "42");
      res.end(current.body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      for (const c of cases) {
        current = c;
        const api = client({ baseUrl, maxRetries: 0 });
        const error = await rejectsWith(api.liveFixtures(), c.code);
        assert.ok(error.message.startsWith("[GET] /fixtures?live=all: "), error.message);
        assert.ok(!error.message.includes(KEY));
        assert.equal(api.quota.dayRemaining, c.code === "API_DAILY_QUOTA" ? 0 : 42);
      }
      // An empty errors array or object is success.
      for (const errors of [[], {}]) {
        current = {
          status: 200,
          body: JSON.stringify({ get: "fixtures", errors, results: 0, response: [] }),
          code: "",
        };
        assert.equal((await client({ baseUrl }).liveFixtures()).fixtures.length, 0);
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe("rows", () => {
  test("malformed rows are skipped, counted and logged with their fixture id; the rest is used", async () => {
    sim.setFaults({ malformedRows: 3 });
    const ids = premier.slice(0, 2).map((f) => f.fixtureId);
    const before = logText.length;
    const answer = keep(await client().fixturesByIds(ids));
    assert.deepEqual(
      answer.fixtures.map((f) => f.fixtureId),
      ids,
    );
    assert.equal(answer.malformed, 3);
    const warnings = logText
      .slice(before)
      .join("")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .filter((l) => l.msg === "skipped a malformed fixture row");
    assert.deepEqual(
      warnings.map((w) => [w.level, w.fixtureId]),
      [
        [40, 9_900_000],
        [40, "9900001"],
        [40, null],
      ],
    );
  });

  test("status codes pass through raw: unknown, postponed, lagging; scores as corrected", async () => {
    const [a, b] = premier.filter((f) => f.kickoff < ANCHOR) as SimFixture[];
    const next = premier.find((f) => f.kickoff > ANCHOR)!;
    sim.setFaults({
      unknownStatus: { [a!.fixtureId]: "XYZ" },
      corrections: { [b!.fixtureId]: { home: 4, away: 4 } },
      postponed: [next.fixtureId],
    });
    const api = client();
    const byId = async () =>
      new Map(
        (await api.fixturesByIds([a!.fixtureId, b!.fixtureId, next.fixtureId])).fixtures.map((f) => [
          f.fixtureId,
          f,
        ]),
      );
    let rows = await byId();
    assert.equal(rows.get(a!.fixtureId)!.statusShort, "XYZ");
    assert.deepEqual([rows.get(b!.fixtureId)!.homeGoals, rows.get(b!.fixtureId)!.awayGoals], [4, 4]);
    assert.equal(rows.get(next.fixtureId)!.statusShort, "PST");
    assert.equal(rows.get(next.fixtureId)!.homeGoals, null);
    sim.setFaults({ postponed: [], statusLag: { minutes: 15 } });
    clock.set(new Date(next.kickoff.getTime() + 10 * MINUTE));
    rows = await byId();
    assert.equal(rows.get(next.fixtureId)!.statusShort, "NS");
  });
});

test("the API key appears in no log line, error or returned value", () => {
  const everything = logText.join("");
  assert.ok(logText.length > 20, "the client logged");
  assert.ok(everything.includes("API call"), "debug lines are there");
  assert.ok(seen.length > 10);
  assert.ok(!everything.includes(KEY), "key in the log");
  for (const text of seen) assert.ok(!text.includes(KEY), "key in an error or a result");
});
