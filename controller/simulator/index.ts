/**
 * The bundled API-Football simulator: a real HTTP server answering the subset of API-Football
 * v3 the scheduler uses (`/fixtures`, `/status`, `/leagues`) with the real envelope, rate-limit
 * headers and error shapes, over real calendars shifted around an anchor "now" and played out
 * on an injected clock. Fault knobs (HTTP 500s, latency, hangs, limits, bad key, malformed
 * rows, odd statuses, postponements, corrections, lagging statuses) are set at start or at run
 * time through `/__sim/*`.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { Clock } from "../clock.js";
import {
  BUNDLED_LEAGUES,
  buildLeague,
  FINISHED_STATUSES,
  LIVE_STATUSES,
  type MatchState,
  postponedState,
  type SimFixture,
  STATUS_LONG,
  shiftWeeksFor,
  stateAt,
} from "./season.js";

export type { SimFixture } from "./season.js";

/** Every knob; all off by default except the plan's limits. */
export interface Faults {
  /** Share of API requests (0..1) answered with HTTP 500. */
  errorRate: number;
  /** The next N API requests are answered with this HTTP status (429 carries Retry-After). */
  failNext: { count: number; status: number; retryAfterSeconds?: number } | null;
  /** Real milliseconds added before every answer. */
  latencyMs: number;
  /** The next N API requests are never answered (until the server closes). */
  hangNext: number;
  /** Share of API requests (0..1) never answered. */
  hangRate: number;
  /** Requests per clock minute before `{"rateLimit": …}` (HTTP 200); null: unlimited. */
  minuteLimit: number | null;
  /** Counted requests per UTC day before `{"requests": …}` (HTTP 200); null: unlimited. */
  dayLimit: number | null;
  /** More than this many requests in one real second → HTTP 429 (a burst); null: off. */
  burstPerSecond: number | null;
  /** Every request gets the token error, whatever key it carries. */
  badKey: boolean;
  /** Malformed rows mixed into every fixtures answer. */
  malformedRows: number;
  /** fixture id → status code to report instead of the real one (e.g. "XYZ"). */
  unknownStatus: Record<string, string>;
  /** Fixture ids reported as postponed (`PST`). */
  postponed: number[];
  /** fixture id → corrected final score, shown once the match is finished. */
  corrections: Record<string, { home: number; away: number }>;
  /** Status lags the clock by this many minutes (for `fixtureIds`, or every fixture when absent). */
  statusLag: { minutes: number; fixtureIds?: number[] } | null;
}

export const DEFAULT_FAULTS: Faults = {
  errorRate: 0,
  failNext: null,
  latencyMs: 0,
  hangNext: 0,
  hangRate: 0,
  // API-Football's Pro plan.
  minuteLimit: 300,
  dayLimit: 7500,
  burstPerSecond: null,
  badKey: false,
  malformedRows: 0,
  unknownStatus: {},
  postponed: [],
  corrections: {},
  statusLag: null,
};

export interface RequestLogEntry {
  seq: number;
  method: string;
  path: string;
  query: Record<string, string>;
  /** Clock time of arrival. */
  time: string;
  /** HTTP status answered; 0 while unanswered (a hang). */
  status: number;
  /** The key of the error inside a 200 envelope (`token`, `requests`, `rateLimit`, …), if any. */
  error: string | null;
  /** Whether it counted against the daily quota. */
  counted: boolean;
}

export interface SimulatorOptions {
  port?: number;
  host?: string;
  clock: Clock;
  /** Where the anchor is kept, so a restart neither duplicates nor rewinds fixtures. */
  dataDir?: string;
  /** Fixes the anchor instead (tests); ignored when `dataDir` already holds one. */
  anchor?: Date;
  /** The one key accepted; when unset any non-empty key is. */
  apiKey?: string;
  /** League ids to serve (default: all bundled). */
  leagues?: number[];
  faults?: Partial<Faults>;
  /** Randomness for error/hang rates (tests pass a fixed one). */
  random?: () => number;
}

export interface SimulatorLeague {
  id: number;
  name: string;
  country: string;
  type: "League" | "Cup";
  season: number;
  start: Date;
  end: Date;
  fixtures: number;
}

export interface Simulator {
  url: string;
  anchor: Date;
  close(): Promise<void>;
  setFaults(faults: Partial<Faults>): Faults;
  faults(): Faults;
  /** Faults back to the start options, counters and log cleared. */
  reset(): void;
  requestLog(): RequestLogEntry[];
  clearLog(): void;
  /** The full season truth (every fixture, its real and final scores), for tests. */
  fixtures(): SimFixture[];
  leagues(): SimulatorLeague[];
}

const ERRORS = {
  token:
    "Error/Missing application key. Go to https://www.api-football.com/documentation-v3 to learn how to get your API application key.",
  requests:
    "You have reached the request limit for the day, Go to https://dashboard.api-football.com to upgrade your plan.",
  rateLimit: (n: number) => `Too many requests. Your rate limit is ${n} requests per minute.`,
};

const ANCHOR_FILE = "simulator-anchor.json";

function loadAnchor(dataDir: string | undefined, fallback: Date): Date {
  if (!dataDir) return fallback;
  const file = path.join(dataDir, ANCHOR_FILE);
  try {
    const stored = JSON.parse(readFileSync(file, "utf8")) as { anchor?: string };
    const anchor = new Date(String(stored.anchor));
    if (!Number.isNaN(anchor.getTime())) return anchor;
  } catch {
    // absent or unreadable: start a new anchor below
  }
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${JSON.stringify({ anchor: fallback.toISOString() })}\n`);
  return fallback;
}

function utcDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** API-Football's date format: `2024-08-16T19:00:00+00:00`. */
function apiDate(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "+00:00");
}

export async function startSimulator(options: SimulatorOptions): Promise<Simulator> {
  const clock = options.clock;
  const random = options.random ?? Math.random;
  const anchor = loadAnchor(options.dataDir, options.anchor ?? clock.now());
  const shiftWeeks = shiftWeeksFor(anchor);
  const served = BUNDLED_LEAGUES.filter((l) => !options.leagues || options.leagues.includes(l.id));
  const all: SimFixture[] = served.flatMap((l) => buildLeague(l, shiftWeeks));
  const initialFaults: Faults = { ...DEFAULT_FAULTS, ...options.faults };
  let faults: Faults = structuredClone(initialFaults);

  let log: RequestLogEntry[] = [];
  let seq = 0;
  let day = "";
  let usedToday = 0;
  let minute = -1;
  let usedThisMinute = 0;
  let burst: number[] = [];
  const hung = new Set<ServerResponse>();

  function leagues(): SimulatorLeague[] {
    return served.map((l) => {
      const own = all.filter((f) => f.leagueId === l.id);
      const times = own.map((f) => f.kickoff.getTime());
      return {
        id: l.id,
        name: l.name,
        country: l.country,
        type: l.type,
        season: own[0]!.season,
        start: new Date(Math.min(...times)),
        end: new Date(Math.max(...times)),
        fixtures: own.length,
      };
    });
  }

  function stateOf(f: SimFixture, now: Date): MatchState {
    if (faults.postponed.includes(f.fixtureId)) return postponedState();
    const lag = faults.statusLag;
    const lagged = lag && (!lag.fixtureIds || lag.fixtureIds.includes(f.fixtureId));
    const state = stateAt(f, lagged ? new Date(now.getTime() - lag.minutes * 60_000) : now);
    const correction = faults.corrections[String(f.fixtureId)];
    if (correction && FINISHED_STATUSES.has(state.short)) {
      state.goals = { home: correction.home, away: correction.away };
      if (!f.et) state.score.fulltime = { ...state.goals };
    }
    const unknown = faults.unknownStatus[String(f.fixtureId)];
    if (unknown) state.short = unknown;
    return state;
  }

  function row(f: SimFixture, now: Date): unknown {
    const s = stateOf(f, now);
    const finished = FINISHED_STATUSES.has(s.short);
    const winner = (mine: number | null, theirs: number | null) =>
      finished && mine !== null && theirs !== null && mine !== theirs ? mine > theirs : null;
    const started = s.short !== "NS" && s.short !== "PST";
    const kickoff = Math.floor(f.kickoff.getTime() / 1000);
    return {
      fixture: {
        id: f.fixtureId,
        referee: null,
        timezone: "UTC",
        date: apiDate(f.kickoff),
        timestamp: kickoff,
        periods: {
          first: started ? kickoff : null,
          second: started && !["1H", "HT"].includes(s.short) ? kickoff + 62 * 60 : null,
        },
        venue: { id: null, name: null, city: null },
        status: {
          long: STATUS_LONG[s.short] ?? "Unknown",
          short: s.short,
          elapsed: s.elapsed,
          extra: s.extra,
        },
      },
      league: {
        id: f.leagueId,
        name: f.leagueName,
        country: f.country,
        logo: null,
        flag: null,
        season: f.season,
        round: f.round,
        standings: f.leagueId !== 2,
      },
      teams: {
        home: {
          id: f.home.id,
          name: f.home.name,
          logo: teamLogo(f.home),
          winner: winner(s.goals.home, s.goals.away),
        },
        away: {
          id: f.away.id,
          name: f.away.name,
          logo: teamLogo(f.away),
          winner: winner(s.goals.away, s.goals.home),
        },
      },
      goals: s.goals,
      score: s.score,
    };
  }

  /** Rows that fail API-Football's shape in different ways; some carry a fixture id. */
  function malformed(count: number): unknown[] {
    return Array.from({ length: count }, (_, i) => {
      const id = 9_900_000 + i;
      switch (i % 3) {
        case 0:
          return { fixture: { id, date: "not a date", status: { short: "NS" } }, league: { id: 39 } };
        case 1:
          return { fixture: { id: String(id) }, teams: null, goals: { home: "two", away: 0 } };
        default:
          return { league: { id: 39, name: "Premier League" }, goals: null };
      }
    });
  }

  function headers(res: ServerResponse) {
    const dayLimit = faults.dayLimit ?? 1_000_000;
    const minuteLimit = faults.minuteLimit ?? 1_000_000;
    res.setHeader("x-ratelimit-requests-limit", String(dayLimit));
    res.setHeader("x-ratelimit-requests-remaining", String(Math.max(0, dayLimit - usedToday)));
    res.setHeader("X-RateLimit-Limit", String(minuteLimit));
    res.setHeader("X-RateLimit-Remaining", String(Math.max(0, minuteLimit - usedThisMinute)));
  }

  function envelope(get: string, parameters: Record<string, string>, errors: unknown, response: unknown) {
    const results = Array.isArray(response) ? response.length : response ? 1 : 0;
    const hasParameters = Object.keys(parameters).length > 0;
    return {
      get,
      parameters: hasParameters ? parameters : [],
      errors,
      results,
      paging: { current: 1, total: 1 },
      response,
    };
  }

  function send(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}) {
    res.statusCode = status;
    res.setHeader("content-type", "application/json");
    for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
    res.end(JSON.stringify(body));
  }

  function fixturesFor(
    query: Record<string, string>,
    now: Date,
  ): { errors?: Record<string, string>; rows?: SimFixture[] } {
    const known = ["id", "ids", "live", "date", "league", "season", "timezone"];
    const unknown = Object.keys(query).filter((k) => !known.includes(k));
    if (unknown.length > 0) return { errors: { [unknown[0]!]: `The ${unknown[0]} field do not exist.` } };
    if (Object.keys(query).filter((k) => k !== "timezone").length === 0) {
      return { errors: { required: "At least one parameter is required." } };
    }
    let rows = all;
    if (query.id !== undefined) {
      if (!/^\d+$/.test(query.id)) return { errors: { id: "The Id field must contain an integer." } };
      rows = rows.filter((f) => f.fixtureId === Number(query.id));
    }
    if (query.ids !== undefined) {
      const ids = query.ids.split("-");
      if (ids.some((id) => !/^\d+$/.test(id))) {
        return { errors: { ids: "The Ids field must contain integers separated by a dash." } };
      }
      if (ids.length > 20) return { errors: { ids: "Maximum of 20 fixtures ids." } };
      rows = rows.filter((f) => ids.includes(String(f.fixtureId)));
    }
    if (query.league !== undefined) {
      if (!/^\d+$/.test(query.league))
        return { errors: { league: "The League field must contain an integer." } };
      if (query.season === undefined && query.date === undefined && query.live === undefined) {
        return { errors: { season: "The Season field is required." } };
      }
      rows = rows.filter((f) => f.leagueId === Number(query.league));
    }
    if (query.season !== undefined) {
      if (!/^\d{4}$/.test(query.season)) {
        return { errors: { season: "The Season field must contain 4 characters. Example: 2019" } };
      }
      rows = rows.filter((f) => f.season === Number(query.season));
    }
    if (query.date !== undefined) {
      if (!/^\d{4}-\d{2}-\d{2}$/.test(query.date)) {
        return { errors: { date: "The Date field must contain a valid date. Example: 2019-10-22" } };
      }
      rows = rows.filter((f) => utcDay(f.kickoff) === query.date);
    }
    if (query.live !== undefined) {
      const leagueIds = query.live === "all" ? null : query.live.split("-");
      if (leagueIds?.some((id) => !/^\d+$/.test(id))) {
        return { errors: { live: "The Live field must contain 'all' or league ids separated by a dash." } };
      }
      rows = rows.filter(
        (f) =>
          (!leagueIds || leagueIds.includes(String(f.leagueId))) && LIVE_STATUSES.has(stateOf(f, now).short),
      );
    }
    return { rows };
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? "/", "http://simulator");
    if (url.pathname.startsWith("/__sim/")) return control(req, res, url);
    const now = clock.now();
    const query = Object.fromEntries(url.searchParams);
    const entry: RequestLogEntry = {
      seq: ++seq,
      method: req.method ?? "GET",
      path: url.pathname,
      query,
      time: now.toISOString(),
      status: 0,
      error: null,
      counted: false,
    };
    log.push(entry);
    res.on("finish", () => {
      entry.status = res.statusCode;
    });

    if (faults.hangNext > 0 || (faults.hangRate > 0 && random() < faults.hangRate)) {
      if (faults.hangNext > 0) faults.hangNext--;
      hung.add(res);
      res.on("close", () => hung.delete(res));
      return;
    }
    if (faults.latencyMs > 0) await new Promise((r) => setTimeout(r, faults.latencyMs));
    if (res.destroyed) return;

    // Windows roll over on the clock: a day is a UTC day, a minute a clock minute.
    if (utcDay(now) !== day) {
      day = utcDay(now);
      usedToday = 0;
    }
    const thisMinute = Math.floor(now.getTime() / 60_000);
    if (thisMinute !== minute) {
      minute = thisMinute;
      usedThisMinute = 0;
    }
    const endpoint = url.pathname.replace(/^\/+|\/+$/g, "");
    const free = endpoint === "status";
    const fail = (key: string, message: string) => {
      entry.error = key;
      headers(res);
      send(res, 200, envelope(endpoint, query, { [key]: message }, []));
    };

    const key = req.headers["x-apisports-key"] ?? req.headers["x-rapidapi-key"];
    if (
      faults.badKey ||
      typeof key !== "string" ||
      key === "" ||
      (options.apiKey && key !== options.apiKey)
    ) {
      return fail("token", ERRORS.token);
    }
    if (faults.failNext && faults.failNext.count > 0) {
      const { status, retryAfterSeconds } = faults.failNext;
      faults.failNext = { ...faults.failNext, count: faults.failNext.count - 1 };
      headers(res);
      const extra: Record<string, string> =
        status === 429 ? { "retry-after": String(retryAfterSeconds ?? 1) } : {};
      return send(
        res,
        status,
        { message: status === 429 ? "Too many requests" : "Internal Server Error" },
        extra,
      );
    }
    if (faults.errorRate > 0 && random() < faults.errorRate) {
      headers(res);
      return send(res, 500, { message: "Internal Server Error" });
    }
    if (faults.burstPerSecond !== null) {
      const real = Date.now();
      burst = burst.filter((t) => real - t < 1000);
      burst.push(real);
      if (burst.length > faults.burstPerSecond) {
        headers(res);
        return send(res, 429, { message: "Too many requests" }, { "retry-after": "1" });
      }
    }
    if (!free) {
      if (faults.minuteLimit !== null && usedThisMinute >= faults.minuteLimit) {
        return fail("rateLimit", ERRORS.rateLimit(faults.minuteLimit));
      }
      if (faults.dayLimit !== null && usedToday >= faults.dayLimit) return fail("requests", ERRORS.requests);
    }

    if (endpoint === "status") {
      headers(res);
      return send(
        res,
        200,
        envelope("status", {}, [], {
          account: { firstname: "Demo", lastname: "Simulator", email: "demo@example.invalid" },
          subscription: {
            plan: "Pro",
            end: apiDate(new Date(now.getTime() + 365 * 86_400_000)),
            active: true,
          },
          requests: { current: usedToday, limit_day: faults.dayLimit ?? 1_000_000 },
        }),
      );
    }
    if (endpoint === "fixtures" || endpoint === "leagues") {
      usedToday++;
      usedThisMinute++;
      entry.counted = true;
      if (endpoint === "leagues") {
        headers(res);
        return send(res, 200, envelope("leagues", query, [], leaguesResponse(now)));
      }
      const found = fixturesFor(query, now);
      if (found.errors) {
        entry.error = Object.keys(found.errors)[0] ?? null;
        headers(res);
        return send(res, 200, envelope("fixtures", query, found.errors, []));
      }
      const rows = [...found.rows!.map((f) => row(f, now)), ...malformed(faults.malformedRows)];
      headers(res);
      return send(res, 200, envelope("fixtures", query, [], rows));
    }
    entry.error = "endpoint";
    headers(res);
    return send(res, 200, envelope(endpoint, query, { endpoint: "This endpoint do not exist." }, []));
  }

  function leaguesResponse(now: Date) {
    return leagues().map((l) => ({
      league: { id: l.id, name: l.name, type: l.type, logo: null },
      country: { name: l.country, code: null, flag: null },
      seasons: [
        {
          year: l.season,
          start: utcDay(l.start),
          end: utcDay(l.end),
          current: now.getTime() <= l.end.getTime() + 7 * 86_400_000,
          coverage: { fixtures: { events: false, lineups: false, statistics_fixtures: false } },
        },
      ],
    }));
  }

  async function control(req: IncomingMessage, res: ServerResponse, url: URL) {
    const route = `${req.method} ${url.pathname}`;
    switch (route) {
      case "GET /__sim/faults":
        return send(res, 200, faults);
      case "POST /__sim/faults": {
        let body: unknown;
        try {
          body = JSON.parse(await readBody(req));
        } catch {
          return send(res, 400, { error: "body must be JSON" });
        }
        if (!body || typeof body !== "object" || Array.isArray(body)) {
          return send(res, 400, { error: "body must be a JSON object of faults" });
        }
        const unknownKeys = Object.keys(body).filter((k) => !(k in DEFAULT_FAULTS));
        if (unknownKeys.length > 0) return send(res, 400, { error: `unknown fault ${unknownKeys[0]}` });
        return send(res, 200, simulator.setFaults(body as Partial<Faults>));
      }
      case "GET /__sim/requests":
        return send(res, 200, log);
      case "POST /__sim/reset":
        simulator.reset();
        return send(res, 200, faults);
      case "GET /__sim/fixtures":
        return send(res, 200, all);
      case "GET /__sim/leagues":
        return send(res, 200, leagues());
      default:
        return send(res, 404, { error: `no such control route: ${route}` });
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, { message: `simulator error: ${(error as Error).message}` });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const baseUrl = `http://${host === "0.0.0.0" || host === "[::]" ? "127.0.0.1" : host}:${address.port}`;

  const simulator: Simulator = {
    url: baseUrl,
    anchor,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hung) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
    setFaults(partial) {
      faults = { ...faults, ...structuredClone(partial) };
      return faults;
    },
    faults: () => faults,
    reset() {
      faults = structuredClone(initialFaults);
      log = [];
      usedToday = 0;
      usedThisMinute = 0;
      burst = [];
    },
    requestLog: () => log.map((e) => ({ ...e, query: { ...e.query } })),
    clearLog() {
      log = [];
    },
    fixtures: () => all,
    leagues,
  };
  return simulator;
}

/**
 * A team's logo as a small self-contained SVG (initials on a colour taken from the team id).
 * A data URL rather than a link to this server, so it does not change with the port and a
 * restarted simulator does not make every fixture row look changed.
 */
export function teamLogo(team: { id: number; name: string }): string {
  const initials = team.name
    .split(/\s+/)
    .filter((w) => /^\p{Lu}/u.test(w))
    .slice(0, 3)
    .map((w) => w[0])
    .join("");
  const hue = (team.id * 47) % 360;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><circle cx="32" cy="32" r="30" fill="hsl(${hue},55%,40%)"/><text x="32" y="39" font-size="20" text-anchor="middle" fill="#fff" font-family="sans-serif">${initials}</text></svg>`;
  return `data:image/svg+xml,${encodeURIComponent(svg)}`;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      body += chunk;
    });
    req.on("end", () => resolve(body));
    req.on("error", reject);
  });
}
