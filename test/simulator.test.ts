/**
 * The simulator over real HTTP on loopback: the season (counts against the shipped calendar,
 * whole-week shift, deterministic ids, seasons numbered by start year, anchor kept under
 * DATA_DIR), match progress on the clock (NS → 1H → HT → 2H → FT, ET/P → PEN), the wire
 * format (envelope, rate-limit headers, error shapes), every fault knob through the control
 * endpoint, the request log, and the standalone command.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Clock } from "../controller/clock.js";
import { type Simulator, startSimulator, teamLogo } from "../controller/simulator/index.js";
import { type SimFixture, shiftWeeksFor } from "../controller/simulator/season.js";

const KEY = "sim-test-key-0001";
const CALENDARS = fileURLToPath(new URL("../controller/simulator/calendars/", import.meta.url));
const WEEK = 7 * 24 * 3600_000;
const MINUTE = 60_000;

/** A clock the test moves by hand. */
function manualClock(start: Date): Clock & { set(d: Date): void } {
  let now = start.getTime();
  return {
    speed: 1,
    now: () => new Date(now),
    sleep: async () => {},
    set: (d) => {
      now = d.getTime();
    },
  };
}

interface CalendarMatch {
  team1: string;
  team2: string;
  score: { ht?: number[]; ft?: number[]; et?: number[]; p?: number[] };
}
function calendar(file: string): CalendarMatch[] {
  return JSON.parse(readFileSync(path.join(CALENDARS, file), "utf8")).matches;
}

/** The parts of API-Football's wire format these tests read. */
interface Side {
  home: number | null;
  away: number | null;
}
interface WireRow {
  fixture: { id: number; date: string; timestamp: number; status: { short: string; elapsed: number | null } };
  league: { id: number; name: string; round: string };
  teams: { home: { name: string; logo: string; winner: boolean | null }; away: { name: string } };
  goals: Side;
  score: { halftime: Side; penalty: Side };
}
interface WireBody {
  get: string;
  parameters: unknown;
  errors: Record<string, string>;
  results: number;
  response: WireRow[];
}

async function get(sim: Simulator, pathAndQuery: string, key: string | null = KEY) {
  const res = await fetch(`${sim.url}${pathAndQuery}`, {
    headers: key === null ? {} : { "x-apisports-key": key },
  });
  return { res, body: (await res.json()) as WireBody };
}

async function control(sim: Simulator, route: string, body?: unknown) {
  const res = await fetch(`${sim.url}${route}`, {
    method: body === undefined && !route.endsWith("reset") ? "GET" : "POST",
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & unknown[] };
}

const ANCHOR = new Date("2026-12-04T12:00:00Z");
const clock = manualClock(ANCHOR);
let sim: Simulator;
let premier: SimFixture[];

before(async () => {
  sim = await startSimulator({ clock, anchor: ANCHOR, apiKey: KEY });
  premier = sim.fixtures().filter((f) => f.leagueId === 39);
});
after(() => sim.close());

describe("the season", () => {
  test("Premier League: fixture count and finished results match the shipped calendar", async () => {
    const matches = calendar("en.1.json");
    const season = sim.leagues().find((l) => l.id === 39)!;
    assert.equal(season.fixtures, matches.length);
    clock.set(new Date(season.end.getTime() + 3 * 3600_000));
    try {
      const { body } = await get(sim, `/fixtures?league=39&season=${season.season}`);
      assert.equal(body.results, matches.length);
      const finished = body.response.filter((r: WireRow) => r.fixture.status.short === "FT");
      assert.equal(finished.length, matches.filter((m) => m.score.ft).length);
      // Every final score is the calendar's, in calendar order.
      for (const row of body.response) {
        const index = row.fixture.id - 39 * 10_000 - 1;
        const match = matches[index]!;
        assert.equal(row.teams.home.name, match.team1);
        assert.deepEqual([row.goals.home, row.goals.away], match.score.ft);
        if (match.score.ht)
          assert.deepEqual([row.score.halftime.home, row.score.halftime.away], match.score.ht);
      }
    } finally {
      clock.set(ANCHOR);
    }
  });

  test("La Liga and Bundesliga: every calendar result is kept; missing ones are marked synthetic", () => {
    for (const [id, file] of [
      [140, "es.1.json"],
      [78, "de.1.json"],
    ] as const) {
      const matches = calendar(file);
      const own = sim.fixtures().filter((f) => f.leagueId === id);
      assert.equal(own.length, matches.length);
      assert.equal(own.filter((f) => !f.synthetic).length, matches.filter((m) => m.score.ft).length);
      for (const f of own.filter((x) => !x.synthetic)) assert.deepEqual(f.ft, matches[f.index]!.score.ft);
    }
    assert.equal(sim.fixtures().filter((f) => f.leagueId === 78 && f.awarded).length, 1);
  });

  test("shifted by whole weeks around the anchor, with upcoming and finished matches at once", () => {
    const weeks = shiftWeeksFor(ANCHOR);
    assert.ok(Number.isInteger(weeks) && weeks > 0);
    // Man United v Fulham, 2024-08-16 20:00 London (19:00 UTC), moved by whole weeks.
    const first = premier[0]!;
    assert.equal((first.kickoff.getTime() - Date.parse("2024-08-16T19:00:00Z")) % WEEK, 0);
    assert.equal(first.kickoff.getUTCDay(), 5); // still a Friday
    const past = premier.filter((f) => f.kickoff < ANCHOR).length;
    assert.ok(past > 50 && past < 330, `${past} of 380 matches before the anchor`);
  });

  test("fixture ids are deterministic and unique; seasons are numbered by the year they start", async () => {
    const ids = sim.fixtures().map((f) => f.fixtureId);
    assert.equal(new Set(ids).size, ids.length);
    assert.equal(premier[0]!.fixtureId, 390_001);
    const again = await startSimulator({ clock, anchor: ANCHOR, leagues: [39] });
    try {
      assert.deepEqual(
        again.fixtures().map((f) => [f.fixtureId, f.kickoff.toISOString()]),
        premier.map((f) => [f.fixtureId, f.kickoff.toISOString()]),
      );
      const league = again.leagues()[0]!;
      assert.equal(league.season, league.start.getUTCFullYear());
    } finally {
      await again.close();
    }
  });

  test("the anchor is kept under DATA_DIR: a restart later neither duplicates nor rewinds", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "sim-anchor-"));
    try {
      const a = await startSimulator({ clock: manualClock(ANCHOR), dataDir, leagues: [39] });
      const firstIds = a.fixtures().map((f) => `${f.fixtureId}@${f.kickoff.toISOString()}`);
      await a.close();
      const stored = JSON.parse(readFileSync(path.join(dataDir, "simulator-anchor.json"), "utf8"));
      assert.equal(stored.anchor, ANCHOR.toISOString());
      const later = manualClock(new Date(ANCHOR.getTime() + 3 * WEEK));
      const b = await startSimulator({ clock: later, dataDir, leagues: [39] });
      try {
        assert.equal(b.anchor.toISOString(), ANCHOR.toISOString());
        assert.deepEqual(
          b.fixtures().map((f) => `${f.fixtureId}@${f.kickoff.toISOString()}`),
          firstIds,
        );
      } finally {
        await b.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("match progress follows the clock", () => {
  test("NS → 1H → HT → 2H → FT with the calendar's half-time and final scores", async () => {
    // Man United 1-0 Fulham (ht 0-0).
    const f = premier[0]!;
    const at = async (minutes: number) => {
      clock.set(new Date(f.kickoff.getTime() + minutes * MINUTE));
      const { body } = await get(sim, `/fixtures?ids=${f.fixtureId}`);
      return body.response[0]!;
    };
    try {
      const before = await at(-5);
      assert.equal(before.fixture.status.short, "NS");
      assert.deepEqual(before.goals, { home: null, away: null });
      assert.equal(before.fixture.status.elapsed, null);
      const first = await at(20);
      assert.equal(first.fixture.status.short, "1H");
      assert.equal(first.fixture.status.elapsed, 21);
      assert.deepEqual(first.goals, { home: 0, away: 0 });
      const half = await at(50);
      assert.equal(half.fixture.status.short, "HT");
      assert.equal(half.fixture.status.elapsed, 45);
      assert.deepEqual(half.goals, { home: 0, away: 0 });
      const second = await at(80);
      assert.equal(second.fixture.status.short, "2H");
      assert.equal(second.fixture.status.elapsed, 64);
      const full = await at(115);
      assert.equal(full.fixture.status.short, "FT");
      assert.equal(full.fixture.status.elapsed, 90);
      assert.deepEqual(full.goals, { home: 1, away: 0 });
      assert.equal(full.teams.home.winner, true);
      // Goals never go down on the way.
      let last = 0;
      for (let m = 0; m <= 115; m += 5) {
        const row = await at(m);
        const total = (row.goals.home ?? 0) + (row.goals.away ?? 0);
        assert.ok(total >= last);
        last = total;
      }
    } finally {
      clock.set(ANCHOR);
    }
  });

  test("a knock-out tie that went to penalties: ET → P → PEN, goals after 120', shoot-out in score.penalty", async () => {
    const tie = sim.fixtures().find((f) => f.leagueId === 2 && f.pen && f.home.name.startsWith("Liverpool"))!;
    assert.ok(tie, "Liverpool v PSG is in the calendar");
    const at = async (minutes: number) => {
      clock.set(new Date(tie.kickoff.getTime() + minutes * MINUTE));
      const { body } = await get(sim, `/fixtures?ids=${tie.fixtureId}`);
      return body.response[0]!;
    };
    try {
      assert.equal((await at(112)).fixture.status.short, "BT");
      const extra = await at(125);
      assert.equal(extra.fixture.status.short, "ET");
      const elapsed = extra.fixture.status.elapsed ?? 0;
      assert.ok(elapsed > 90 && elapsed <= 120);
      assert.equal((await at(150)).fixture.status.short, "P");
      const done = await at(170);
      assert.equal(done.fixture.status.short, "PEN");
      assert.equal(done.fixture.status.elapsed, 120);
      assert.deepEqual([done.goals.home, done.goals.away], tie.et);
      assert.deepEqual([done.score.penalty.home, done.score.penalty.away], tie.pen);
      assert.equal(done.league.round, "Round of 16");
    } finally {
      clock.set(ANCHOR);
    }
  });

  test("live=all and live=L1-L2 list only matches under way; date= lists a UTC day", async () => {
    const f = premier.find((x) => x.kickoff > ANCHOR)!;
    clock.set(new Date(f.kickoff.getTime() + 10 * MINUTE));
    try {
      const all = await get(sim, "/fixtures?live=all");
      assert.ok(all.body.response.some((r: WireRow) => r.fixture.id === f.fixtureId));
      for (const r of all.body.response)
        assert.ok(["1H", "HT", "2H", "ET", "BT", "P"].includes(r.fixture.status.short));
      const other = await get(sim, "/fixtures?live=140-78");
      assert.ok(other.body.response.every((r: WireRow) => r.league.id !== 39));
      const day = f.kickoff.toISOString().slice(0, 10);
      const byDate = await get(sim, `/fixtures?date=${day}`);
      assert.ok(byDate.body.response.length > 0);
      for (const r of byDate.body.response) assert.equal(r.fixture.date.slice(0, 10), day);
      assert.ok(byDate.body.response.some((r: WireRow) => r.fixture.id === f.fixtureId));
    } finally {
      clock.set(ANCHOR);
    }
  });
});

describe("the wire format", () => {
  test("the envelope, the row shape and both rate-limit windows in the headers", async () => {
    await control(sim, "/__sim/reset");
    const { res, body } = await get(sim, `/fixtures?ids=${premier[0]!.fixtureId}-${premier[1]!.fixtureId}`);
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(body), ["get", "parameters", "errors", "results", "paging", "response"]);
    assert.equal(body.get, "fixtures");
    assert.deepEqual(body.parameters, { ids: `${premier[0]!.fixtureId}-${premier[1]!.fixtureId}` });
    assert.deepEqual(body.errors, []);
    assert.equal(body.results, 2);
    const row = body.response[0]!;
    assert.equal(row.fixture.date, premier[0]!.kickoff.toISOString().replace(".000Z", "+00:00"));
    assert.equal(row.fixture.timestamp, premier[0]!.kickoff.getTime() / 1000);
    assert.equal(row.league.name, "Premier League");
    assert.equal(row.league.round, "Regular Season - 1");
    // Logos are self-contained data URLs (stable across restarts and ports) that fit varchar(512).
    assert.match(row.teams.home.logo, /^data:image\/svg\+xml,/);
    assert.ok(decodeURIComponent(row.teams.home.logo).includes(">MUF<"), "Manchester United FC's initials");
    for (const f of sim.fixtures()) assert.ok(teamLogo(f.home).length <= 512, f.home.name);
    assert.equal(res.headers.get("x-ratelimit-requests-limit"), "7500");
    assert.equal(res.headers.get("x-ratelimit-requests-remaining"), "7499");
    assert.equal(res.headers.get("x-ratelimit-limit"), "300");
    assert.equal(res.headers.get("x-ratelimit-remaining"), "299");
  });

  test("a missing or wrong key gets the token error inside HTTP 200", async () => {
    for (const key of [null, "wrong-key"]) {
      const { res, body } = await get(sim, "/fixtures?live=all", key);
      assert.equal(res.status, 200);
      assert.match(String(body.errors.token), /^Error\/Missing application key/);
      assert.deepEqual(body.response, []);
    }
  });

  test("parameter errors, more than 20 ids and unknown endpoints answer like API-Football", async () => {
    const ids = Array.from({ length: 21 }, (_, i) => premier[i]!.fixtureId).join("-");
    assert.ok((await get(sim, `/fixtures?ids=${ids}`)).body.errors.ids);
    assert.ok((await get(sim, "/fixtures?league=39")).body.errors.season);
    assert.ok((await get(sim, "/fixtures")).body.errors.required);
    assert.ok((await get(sim, "/teams?id=1")).body.errors.endpoint);
    const leagues = await get(sim, "/leagues?current=true");
    assert.deepEqual(
      leagues.body.response.map((l: { league: { id: number } }) => l.league.id),
      [39, 140, 78, 2],
    );
  });
});

describe("fault knobs (control endpoint) and the request log", () => {
  test("daily limit: the requests error inside 200; /status is free and shows the count", async () => {
    await control(sim, "/__sim/reset");
    await control(sim, "/__sim/faults", { dayLimit: 2 });
    assert.deepEqual((await get(sim, "/fixtures?live=all")).body.errors, []);
    assert.deepEqual((await get(sim, "/fixtures?live=all")).body.errors, []);
    const over = await get(sim, "/fixtures?live=all");
    assert.equal(over.res.status, 200);
    assert.match(String(over.body.errors.requests), /request limit for the day/);
    assert.equal(over.res.headers.get("x-ratelimit-requests-remaining"), "0");
    const status = await get(sim, "/status");
    assert.deepEqual(status.body.errors, []);
    assert.deepEqual((status.body.response as unknown as { requests: unknown }).requests, {
      current: 2,
      limit_day: 2,
    });
    const log = (await control(sim, "/__sim/requests")).body;
    assert.deepEqual(
      (log as Record<string, unknown>[]).map((e) => [e.path, e.status, e.error, e.counted]),
      [
        ["/fixtures", 200, null, true],
        ["/fixtures", 200, null, true],
        ["/fixtures", 200, "requests", false],
        ["/status", 200, null, false],
      ],
    );
    // A new UTC day on the clock resets the count.
    clock.set(new Date(ANCHOR.getTime() + 24 * 3600_000));
    try {
      assert.deepEqual((await get(sim, "/fixtures?live=all")).body.errors, []);
    } finally {
      clock.set(ANCHOR);
    }
  });

  test("per-minute limit: the rateLimit error inside 200; bursts: HTTP 429 with Retry-After", async () => {
    await control(sim, "/__sim/reset");
    await control(sim, "/__sim/faults", { minuteLimit: 1 });
    assert.deepEqual((await get(sim, "/fixtures?live=all")).body.errors, []);
    const limited = await get(sim, "/fixtures?live=all");
    assert.equal(
      limited.body.errors.rateLimit,
      "Too many requests. Your rate limit is 1 requests per minute.",
    );
    clock.set(new Date(ANCHOR.getTime() + MINUTE));
    try {
      assert.deepEqual((await get(sim, "/fixtures?live=all")).body.errors, []);
    } finally {
      clock.set(ANCHOR);
    }
    await control(sim, "/__sim/reset");
    await control(sim, "/__sim/faults", { burstPerSecond: 2 });
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      const { res } = await get(sim, "/fixtures?live=all");
      statuses.push(res.status);
      if (res.status === 429) assert.equal(res.headers.get("retry-after"), "1");
    }
    assert.deepEqual(statuses, [200, 200, 429, 429]);
  });

  test("bad key knob, error rate, failNext, latency and hangs", async () => {
    await control(sim, "/__sim/reset");
    await control(sim, "/__sim/faults", { badKey: true });
    assert.ok((await get(sim, "/fixtures?live=all")).body.errors.token);
    await control(sim, "/__sim/faults", { badKey: false, errorRate: 1 });
    assert.equal((await get(sim, "/fixtures?live=all")).res.status, 500);
    await control(sim, "/__sim/faults", { errorRate: 0, failNext: { count: 1, status: 503 } });
    assert.equal((await get(sim, "/fixtures?live=all")).res.status, 503);
    assert.equal((await get(sim, "/fixtures?live=all")).res.status, 200);
    await control(sim, "/__sim/faults", { latencyMs: 60 });
    const started = Date.now();
    await get(sim, "/fixtures?live=all");
    assert.ok(Date.now() - started >= 55);
    await control(sim, "/__sim/faults", { latencyMs: 0, hangNext: 1 });
    await assert.rejects(
      fetch(`${sim.url}/fixtures?live=all`, {
        headers: { "x-apisports-key": KEY },
        signal: AbortSignal.timeout(150),
      }),
      /abort|timeout/i,
    );
    assert.equal(sim.requestLog().at(-1)!.status, 0, "the hung request was never answered");
    await control(sim, "/__sim/faults", { hangRate: 1 });
    await assert.rejects(
      fetch(`${sim.url}/fixtures?live=all`, {
        headers: { "x-apisports-key": KEY },
        signal: AbortSignal.timeout(100),
      }),
      /abort|timeout/i,
    );
    await control(sim, "/__sim/faults", { hangRate: 0 });
    assert.equal((await get(sim, "/fixtures?live=all")).res.status, 200);
    assert.equal((await control(sim, "/__sim/faults", { nonsense: 1 })).status, 400);
  });

  test("malformed rows, an unknown status, a postponement, a score correction and a lagging status", async () => {
    await control(sim, "/__sim/reset");
    const [a, b, c, d] = premier.filter((f) => f.kickoff < ANCHOR).slice(0, 4) as SimFixture[];
    const upcoming = premier.find((f) => f.kickoff > ANCHOR)!;
    await control(sim, "/__sim/faults", {
      malformedRows: 3,
      unknownStatus: { [a!.fixtureId]: "XYZ" },
      postponed: [upcoming.fixtureId],
      corrections: { [b!.fixtureId]: { home: 7, away: 7 } },
      statusLag: { minutes: 20, fixtureIds: [upcoming.fixtureId] },
    });
    const ids = [a, b, c, d, upcoming].map((f) => f!.fixtureId).join("-");
    const { body } = await get(sim, `/fixtures?ids=${ids}`);
    assert.equal(body.results, 8);
    const byId = new Map(
      body.response
        .filter((r: WireRow) => typeof r?.fixture?.id === "number")
        .map((r: WireRow) => [r.fixture.id, r]),
    );
    assert.equal((byId.get(a!.fixtureId) as WireRow).fixture.status.short, "XYZ");
    assert.deepEqual((byId.get(b!.fixtureId) as WireRow).goals, { home: 7, away: 7 });
    assert.equal((byId.get(c!.fixtureId) as WireRow).fixture.status.short, "FT");
    assert.equal((byId.get(upcoming.fixtureId) as WireRow).fixture.status.short, "PST");
    // Lag: ten minutes after kick-off the lagging fixture still says NS.
    await control(sim, "/__sim/faults", { postponed: [] });
    clock.set(new Date(upcoming.kickoff.getTime() + 10 * MINUTE));
    try {
      const lagging = await get(sim, `/fixtures?ids=${upcoming.fixtureId}`);
      const real = lagging.body.response.find((r: WireRow) => r.fixture?.id === upcoming.fixtureId)!;
      assert.equal(real.fixture.status.short, "NS");
      clock.set(new Date(upcoming.kickoff.getTime() + 25 * MINUTE));
      const later = await get(sim, `/fixtures?ids=${upcoming.fixtureId}`);
      assert.equal(
        later.body.response.find((r: WireRow) => r.fixture?.id === upcoming.fixtureId)!.fixture.status.short,
        "1H",
      );
    } finally {
      clock.set(ANCHOR);
    }
    // Reset brings back the start options and clears the log.
    const reset = await control(sim, "/__sim/reset");
    assert.equal(reset.body.malformedRows, 0);
    assert.deepEqual((await control(sim, "/__sim/requests")).body, []);
  });

  test("faults given at start apply from the first request", async () => {
    const faulty = await startSimulator({ clock, anchor: ANCHOR, leagues: [39], faults: { dayLimit: 0 } });
    try {
      assert.ok((await get(faulty, "/fixtures?live=all")).body.errors.requests);
      assert.equal(faulty.requestLog().length, 1);
      faulty.clearLog();
      assert.equal(faulty.requestLog().length, 0);
    } finally {
      await faulty.close();
    }
  });
});

test("the standalone command prints its URL as one JSON line and serves", async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), "sim-cmd-"));
  const child = spawn(process.execPath, ["--import", "tsx", "controller/simulator/server.ts"], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    env: {
      ...process.env,
      SIMULATOR_PORT: "0",
      CLOCK_SPEED: "60",
      CLOCK_START: "2026-12-05T14:00:00Z",
      DATA_DIR: dataDir,
      SIMULATOR_API_KEY: KEY,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (chunk) => {
        out += chunk;
        if (out.includes("\n")) resolve(out.split("\n")[0]!);
      });
      child.once("exit", (code) => reject(new Error(`exited ${code}`)));
    });
    const started = JSON.parse(line);
    assert.match(started.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(started.speed, 60);
    const res = await fetch(`${started.url}/status`, { headers: { "x-apisports-key": KEY } });
    assert.equal(
      ((await res.json()) as { response: { subscription: { plan: string } } }).response.subscription.plan,
      "Pro",
    );
    const stored = JSON.parse(readFileSync(path.join(dataDir, "simulator-anchor.json"), "utf8"));
    assert.equal(stored.anchor, started.anchor);
  } finally {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  }
});
