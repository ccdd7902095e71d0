/**
 * The simulator's season: real 2024/25 calendars (openfootball, public domain) shifted by
 * whole weeks around an anchor "now", and what each match looks like at a given clock time.
 * Everything here is pure and deterministic: the same anchor gives the same fixtures, ids,
 * goal minutes and statuses.
 */
import { readFileSync } from "node:fs";

export interface LeagueInfo {
  id: number;
  name: string;
  country: string;
  type: "League" | "Cup";
  file: string;
  /** The calendar's kick-off times are local to this zone. */
  timeZone: string;
}

/** The bundled competitions, with API-Football's league ids. */
export const BUNDLED_LEAGUES: readonly LeagueInfo[] = [
  {
    id: 39,
    name: "Premier League",
    country: "England",
    type: "League",
    file: "en.1.json",
    timeZone: "Europe/London",
  },
  {
    id: 140,
    name: "La Liga",
    country: "Spain",
    type: "League",
    file: "es.1.json",
    timeZone: "Europe/Madrid",
  },
  {
    id: 78,
    name: "Bundesliga",
    country: "Germany",
    type: "League",
    file: "de.1.json",
    timeZone: "Europe/Berlin",
  },
  {
    id: 2,
    name: "UEFA Champions League",
    country: "World",
    type: "Cup",
    file: "uefa.cl.json",
    timeZone: "Europe/Paris",
  },
];

export type Pair = [number, number];

export interface Goal {
  minute: number;
  side: "home" | "away";
}

/** One match as the simulator knows it: the whole truth, whatever the clock says. */
export interface SimFixture {
  fixtureId: number;
  leagueId: number;
  leagueName: string;
  country: string;
  season: number;
  round: string;
  /** Position in the calendar file (0-based). */
  index: number;
  kickoff: Date;
  home: { id: number; name: string };
  away: { id: number; name: string };
  /** Scores from the calendar (ft = after 90', et = after 120', cumulative; pen = shoot-out). */
  ht: Pair;
  ft: Pair;
  et: Pair | null;
  pen: Pair | null;
  /** The result was awarded (status AWD once played). */
  awarded: boolean;
  /** The calendar has no result; the simulator made one up (deterministically). */
  synthetic: boolean;
  goals: Goal[];
}

interface CalendarMatch {
  round: string;
  date: string;
  time?: string;
  team1: string;
  team2: string;
  score?: { ht?: number[]; ft?: number[]; et?: number[]; p?: number[] };
  status?: string;
}

const WEEK_MS = 7 * 24 * 3600_000;

export function calendarsUrl(): URL {
  // Works from controller/simulator (tsx) and from dist/simulator (the build copies them).
  return new URL("./calendars/", import.meta.url);
}

export function readCalendar(league: LeagueInfo): CalendarMatch[] {
  const body = JSON.parse(readFileSync(new URL(league.file, calendarsUrl()), "utf8")) as {
    matches: CalendarMatch[];
  };
  return body.matches;
}

/** Milliseconds to add to a UTC wall time to get the local wall time in `timeZone` at `at`. */
const formatters = new Map<string, Intl.DateTimeFormat>();

function zoneOffsetMs(at: number, timeZone: string): number {
  // Building a DateTimeFormat is slow; one per zone.
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timeZone, format);
  }
  const parts = format.formatToParts(new Date(at));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const local = Date.UTC(
    get("year"),
    get("month") - 1,
    get("day"),
    get("hour"),
    get("minute"),
    get("second"),
  );
  return local - at;
}

/** `2024-08-16`, `20:00` local in `timeZone` → the UTC instant. */
export function localToUtc(date: string, time: string, timeZone: string): Date {
  const [y, mo, d] = date.split("-").map(Number) as [number, number, number];
  const [h, mi] = time.split(":").map(Number) as [number, number];
  const wall = Date.UTC(y, mo - 1, d, h, mi);
  let utc = wall - zoneOffsetMs(wall, timeZone);
  utc = wall - zoneOffsetMs(utc, timeZone); // second pass settles DST changes
  return new Date(utc);
}

/** Small seeded PRNG (mulberry32), so goal minutes are the same on every run. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Deterministic fixture id: league id and position in the calendar. */
export function fixtureIdFor(leagueId: number, index: number): number {
  return leagueId * 10_000 + index + 1;
}

/** API-Football's round names ("Regular Season - 14", "Round of 16", …). */
export function apiRound(round: string): string {
  const matchday = /^Matchday (\d+)$/.exec(round);
  if (matchday) return `Regular Season - ${matchday[1]}`;
  const stage = /^League, Matchday (\d+)$/.exec(round);
  if (stage) return `League Stage - ${stage[1]}`;
  if (round.startsWith("Playoffs")) return "Knockout Round Play-offs";
  const finals: Record<string, string> = {
    "Finals, Round of 16": "Round of 16",
    "Finals, Quarterfinals": "Quarter-finals",
    "Finals, Semifinals": "Semi-finals",
    "Finals, Final": "Final",
  };
  return finals[round] ?? round;
}

function pair(value: number[] | undefined): Pair | null {
  return Array.isArray(value) && value.length === 2 && value.every((n) => Number.isInteger(n) && n >= 0)
    ? [value[0]!, value[1]!]
    : null;
}

function goalsBetween(random: () => number, count: number, side: Goal["side"], from: number, to: number) {
  return Array.from({ length: Math.max(0, count) }, () => ({
    minute: from + Math.floor(random() * (to - from + 1)),
    side,
  }));
}

/**
 * The whole-week shift that puts the anchor in the middle of the bundled seasons (the median
 * kick-off of all of them), so that some matches are over, some under way and some to come.
 * Whole weeks keep every match on its weekday.
 */
export function shiftWeeksFor(anchor: Date): number {
  const kickoffs = BUNDLED_LEAGUES.flatMap((league) =>
    readCalendar(league).map((m) => localToUtc(m.date, m.time ?? "15:00", league.timeZone).getTime()),
  ).sort((a, b) => a - b);
  const median = kickoffs[Math.floor(kickoffs.length / 2)]!;
  return Math.round((anchor.getTime() - median) / WEEK_MS);
}

/** Build one league's fixtures, shifted by `shiftWeeks`. */
export function buildLeague(league: LeagueInfo, shiftWeeks: number): SimFixture[] {
  const matches = readCalendar(league);
  const shiftMs = shiftWeeks * WEEK_MS;
  const kickoffs = matches.map(
    (m) => new Date(localToUtc(m.date, m.time ?? "15:00", league.timeZone).getTime() + shiftMs),
  );
  // API-Football numbers a season by the year it starts.
  const season = new Date(Math.min(...kickoffs.map((d) => d.getTime()))).getUTCFullYear();
  const teamNames = [...new Set(matches.flatMap((m) => [m.team1, m.team2]))].sort();
  const teamId = (name: string) => league.id * 1000 + teamNames.indexOf(name) + 1;

  return matches.map((m, index) => {
    const fixtureId = fixtureIdFor(league.id, index);
    const random = seeded(fixtureId);
    let ft = pair(m.score?.ft);
    const synthetic = ft === null;
    if (ft === null) {
      const pick = [0, 0, 1, 1, 1, 2, 2, 3];
      ft = [pick[Math.floor(random() * pick.length)]!, pick[Math.floor(random() * pick.length)]!];
    }
    let ht = pair(m.score?.ht);
    const et = pair(m.score?.et);
    const pen = pair(m.score?.p);
    let goals: Goal[];
    if (ht && ht[0] <= ft[0] && ht[1] <= ft[1]) {
      goals = [
        ...goalsBetween(random, ht[0], "home", 1, 45),
        ...goalsBetween(random, ht[1], "away", 1, 45),
        ...goalsBetween(random, ft[0] - ht[0], "home", 46, 90),
        ...goalsBetween(random, ft[1] - ht[1], "away", 46, 90),
      ];
    } else {
      goals = [...goalsBetween(random, ft[0], "home", 1, 90), ...goalsBetween(random, ft[1], "away", 1, 90)];
      const first = goals.filter((g) => g.minute <= 45);
      ht = [first.filter((g) => g.side === "home").length, first.filter((g) => g.side === "away").length];
    }
    if (et) {
      goals.push(
        ...goalsBetween(random, et[0] - ft[0], "home", 91, 120),
        ...goalsBetween(random, et[1] - ft[1], "away", 91, 120),
      );
    }
    goals.sort((a, b) => a.minute - b.minute);
    return {
      fixtureId,
      leagueId: league.id,
      leagueName: league.name,
      country: league.country,
      season,
      round: apiRound(m.round),
      index,
      kickoff: kickoffs[index]!,
      home: { id: teamId(m.team1), name: m.team1 },
      away: { id: teamId(m.team2), name: m.team2 },
      ht,
      ft,
      et,
      pen,
      awarded: m.status === "awarded",
      synthetic,
      goals,
    };
  });
}

// ---- What a match looks like at a moment ----

export const STATUS_LONG: Record<string, string> = {
  TBD: "Time To Be Defined",
  NS: "Not Started",
  "1H": "First Half",
  HT: "Halftime",
  "2H": "Second Half",
  ET: "Extra Time",
  BT: "Break Time",
  P: "Penalty In Progress",
  SUSP: "Match Suspended",
  INT: "Match Interrupted",
  FT: "Match Finished",
  AET: "Match Finished After Extra Time",
  PEN: "Match Finished After Penalty",
  PST: "Match Postponed",
  CANC: "Match Cancelled",
  ABD: "Match Abandoned",
  AWD: "Technical Loss",
  WO: "WalkOver",
  LIVE: "In Progress",
};

export const LIVE_STATUSES = new Set(["1H", "HT", "2H", "ET", "BT", "P", "SUSP", "INT", "LIVE"]);
export const FINISHED_STATUSES = new Set(["FT", "AET", "PEN", "AWD", "WO"]);

export interface MatchState {
  short: string;
  elapsed: number | null;
  extra: number | null;
  goals: { home: number | null; away: number | null };
  score: {
    halftime: { home: number | null; away: number | null };
    fulltime: { home: number | null; away: number | null };
    extratime: { home: number | null; away: number | null };
    penalty: { home: number | null; away: number | null };
  };
}

// Minutes after kick-off (clock time) at which each phase starts: two stoppage minutes in the
// first half, three in the second, a 15-minute half-time, 5 minutes before extra time.
const SECOND_HALF = 62;
const FULL_TIME = 110;
const EXTRA_TIME = 115;
const AFTER_EXTRA_TIME = 147;
const AFTER_PENALTIES = 160;

const none = { home: null, away: null };
const side = (p: Pair | null) => (p ? { home: p[0], away: p[1] } : none);

/** How long after kick-off the match is over (clock minutes). */
export function durationMinutes(f: SimFixture): number {
  if (!f.et) return FULL_TIME;
  return f.pen ? AFTER_PENALTIES : AFTER_EXTRA_TIME;
}

export function stateAt(f: SimFixture, now: Date): MatchState {
  const m = (now.getTime() - f.kickoff.getTime()) / 60_000;
  const count = (upTo: number): Pair => {
    const scored = f.goals.filter((g) => g.minute <= upTo);
    return [scored.filter((g) => g.side === "home").length, scored.filter((g) => g.side === "away").length];
  };
  const live = (short: string, elapsed: number, extra: number | null, upTo: number): MatchState => {
    const goals = count(upTo);
    return {
      short,
      elapsed,
      extra,
      goals: side(goals),
      score: {
        halftime: m >= 47 ? side(f.ht) : side(goals),
        fulltime: none,
        extratime: none,
        penalty: none,
      },
    };
  };
  if (m < 0) return { short: "NS", elapsed: null, extra: null, goals: none, score: blankScore() };
  if (m < 47) {
    const minute = Math.floor(m) + 1;
    return live("1H", Math.min(45, minute), minute > 45 ? minute - 45 : null, Math.min(45, minute));
  }
  if (m < SECOND_HALF) return live("HT", 45, null, 45);
  if (m < FULL_TIME) {
    const minute = 46 + Math.floor(m - SECOND_HALF);
    return live("2H", Math.min(90, minute), minute > 90 ? minute - 90 : null, Math.min(90, minute));
  }
  if (f.et && m < AFTER_EXTRA_TIME) {
    const state =
      m < EXTRA_TIME
        ? live("BT", 90, null, 90)
        : live("ET", Math.min(120, 91 + Math.floor(m - EXTRA_TIME)), null, 91 + Math.floor(m - EXTRA_TIME));
    state.score.fulltime = side(f.ft);
    return state;
  }
  if (f.et && f.pen && m < AFTER_PENALTIES) {
    const state = live("P", 120, null, 120);
    state.score.fulltime = side(f.ft);
    state.score.extratime = side([f.et[0] - f.ft[0], f.et[1] - f.ft[1]]);
    return state;
  }
  const final = f.et ?? f.ft;
  return {
    short: f.awarded ? "AWD" : f.et ? (f.pen ? "PEN" : "AET") : "FT",
    elapsed: f.et ? 120 : 90,
    extra: null,
    goals: side(final),
    score: {
      halftime: side(f.ht),
      fulltime: side(f.ft),
      extratime: f.et ? side([f.et[0] - f.ft[0], f.et[1] - f.ft[1]]) : none,
      penalty: side(f.pen),
    },
  };
}

function blankScore(): MatchState["score"] {
  return { halftime: none, fulltime: none, extratime: none, penalty: none };
}

/** The state a postponed match shows. */
export function postponedState(): MatchState {
  return { short: "PST", elapsed: null, extra: null, goals: none, score: blankScore() };
}
