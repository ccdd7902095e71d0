/**
 * The pure heart of the reconciler: `plan(desired, observed, now) → Plan`.
 * No I/O, no clock of its own: everything it needs comes in as data, so every rule of
 * CONTRACT.md § 4 is table-tested in test/plan.test.ts. reconciler.ts owns the plumbing
 * (loading desired state, calling the API, applying the plan in one transaction).
 */
import type { ScheduleMode } from "./config.js";
import type { ApiFixture } from "./football-api.js";
/** The host `matchstatus` enum (CONTRACT § 3). */
export const MATCH_STATUSES = [
  "NOT_STARTED",
  "FIRST_HALF",
  "HALFTIME",
  "SECOND_HALF",
  "EXTRA_TIME",
  "PENALTY",
  "FINISHED",
  "FINISHED_AET",
  "FINISHED_PEN",
  "BREAK_TIME",
  "SUSPENDED",
  "INTERRUPTED",
  "POSTPONED",
  "CANCELLED",
  "ABANDONED",
  "TECHNICAL_LOSS",
  "WALKOVER",
  "LIVE",
] as const;

export type MatchStatus = (typeof MATCH_STATUSES)[number];

/** API-Football short codes → host enum (CONTRACT § 4). Anything else is unknown and never guessed. */
export const STATUS_MAP: Readonly<Record<string, MatchStatus>> = {
  TBD: "NOT_STARTED",
  NS: "NOT_STARTED",
  "1H": "FIRST_HALF",
  HT: "HALFTIME",
  "2H": "SECOND_HALF",
  ET: "EXTRA_TIME",
  BT: "BREAK_TIME",
  P: "PENALTY",
  FT: "FINISHED",
  AET: "FINISHED_AET",
  PEN: "FINISHED_PEN",
  SUSP: "SUSPENDED",
  INT: "INTERRUPTED",
  PST: "POSTPONED",
  CANC: "CANCELLED",
  ABD: "ABANDONED",
  AWD: "TECHNICAL_LOSS",
  WO: "WALKOVER",
  LIVE: "LIVE",
};

export function mapStatus(code: string): MatchStatus | undefined {
  return Object.hasOwn(STATUS_MAP, code) ? STATUS_MAP[code] : undefined;
}

/** The match has kicked off and is not over (paused ones included: they resume or end). */
export const UNDER_WAY: ReadonlySet<MatchStatus> = new Set<MatchStatus>([
  "FIRST_HALF",
  "HALFTIME",
  "SECOND_HALF",
  "EXTRA_TIME",
  "BREAK_TIME",
  "PENALTY",
  "LIVE",
  "SUSPENDED",
  "INTERRUPTED",
]);
/** Final with a result that predictions are scored against. */
export const SCORABLE: ReadonlySet<MatchStatus> = new Set<MatchStatus>([
  "FINISHED",
  "FINISHED_AET",
  "FINISHED_PEN",
]);
/** Over for good, one way or another: the API is not asked about these again except in full syncs. */
export const SETTLED: ReadonlySet<MatchStatus> = new Set<MatchStatus>([
  ...SCORABLE,
  "CANCELLED",
  "ABANDONED",
  "TECHNICAL_LOSS",
  "WALKOVER",
]);
/** Called off before kick-off: its predictions are not locked. */
const CALLED_OFF: ReadonlySet<MatchStatus> = new Set<MatchStatus>(["POSTPONED", "CANCELLED"]);

const HOUR = 3_600_000;
/** How long after kick-off a fixture still showing NOT_STARTED is asked about by id. */
export const LAGGING_WINDOW_MS = 24 * HOUR;
export const STARTING_SOON_MS = 2 * HOUR;
export const UPCOMING_MS = 7 * 24 * HOUR;
export const IDS_PER_CALL = 20;
export const PRE_KICKOFF_CHECK_MS = 5 * 60_000;

export interface Points {
  exact: number;
  outcome: number;
}

/** 3 for the exact score, 1 for the right outcome, else 0 (configurable). */
export function pointsFor(
  predicted: { home: number; away: number },
  actual: { home: number; away: number },
  points: Points,
): number {
  if (predicted.home === actual.home && predicted.away === actual.away) return points.exact;
  return Math.sign(predicted.home - predicted.away) === Math.sign(actual.home - actual.away)
    ? points.outcome
    : 0;
}

/** A host `fixtures` row, as the scheduler reads and writes it. */
export interface FixtureRow {
  fixtureId: number;
  date: Date;
  status: MatchStatus;
  round: string | null;
  season: string;
  homeTeam: string;
  awayTeam: string;
  homeLogo: string | null;
  awayLogo: string | null;
  homeScore: number | null;
  awayScore: number | null;
  league: string;
  leagueId: number | null;
  venue: string | null;
  venueCity: string | null;
  matchTimestamp: Date | null;
}

export type FixtureField = Exclude<keyof FixtureRow, "fixtureId">;
export const FIXTURE_FIELDS: readonly FixtureField[] = [
  "date",
  "status",
  "round",
  "season",
  "homeTeam",
  "awayTeam",
  "homeLogo",
  "awayLogo",
  "homeScore",
  "awayScore",
  "league",
  "leagueId",
  "venue",
  "venueCity",
  "matchTimestamp",
];

export interface FixtureState {
  row: FixtureRow;
  /** Predictions of this fixture by status, as far as the sweeps care. */
  submitted: number;
  locked: number;
}

export interface Override {
  fixtureId: number;
  status: MatchStatus;
  homeScore: number | null;
  awayScore: number | null;
}

export interface CompetitionDesired {
  leagueId: number;
  season: number;
  lastFullSyncAt: Date | null;
  /** An operator asked for a full resync. */
  resyncRequested: boolean;
}

export interface Desired {
  competitions: CompetitionDesired[];
  /** Fixtures that matter now (under way, near now, open predictions) and rows of every observed id. */
  fixtures: ReadonlyMap<number, FixtureState>;
  overrides: ReadonlyMap<number, Override>;
  /** The API may be asked this loop (the mode's interval has passed, or an operator asked). */
  apiDue: boolean;
  fullSyncIntervalMs: number;
  points: Points;
  /**
   * When the API last answered about each fixture (absent: not recently). Fixtures close to
   * kick-off are checked for a postponement at most once per PRE_KICKOFF_CHECK_MS, whatever
   * the mode, so a busy live mode does not skip them and does not ask every minute either.
   */
  lastAnsweredAt?: ReadonlyMap<number, Date>;
}

export type ApiCall =
  | { kind: "season"; leagueId: number; season: number }
  | { kind: "live"; leagueIds: number[] }
  | { kind: "ids"; ids: number[] };

export interface ApiAnswer {
  call: ApiCall;
  fixtures: ApiFixture[];
}

export interface Observed {
  answers: ApiAnswer[];
}

export interface FixtureWrite {
  fixtureId: number;
  insert: boolean;
  values: FixtureRow;
  /** field → [from, to]; every field for an insert. */
  changes: Partial<Record<FixtureField, [unknown, unknown]>>;
  reason: "api" | "override";
}

export interface ScoreAction {
  fixtureId: number;
  home: number;
  away: number;
  /** The result changed: PROCESSED predictions are scored again against it. */
  rescore: boolean;
}

export interface Plan {
  mode: ScheduleMode;
  /** API calls still to make this loop (given what is already observed). */
  fetches: ApiCall[];
  fixtureWrites: FixtureWrite[];
  /** Raw API status per fixture, for the scheduler's own sync table. */
  apiStatuses: { fixtureId: number; leagueId: number; season: number; code: string; known: boolean }[];
  unknownStatuses: { fixtureId: number; code: string }[];
  /** Fixtures whose SUBMITTED predictions become LOCKED. */
  locks: number[];
  /** Fixtures whose LOCKED (and, after a correction, PROCESSED) predictions are scored. */
  scores: ScoreAction[];
  /** Competitions whose full season answer was observed. */
  competitionSyncs: { leagueId: number; season: number; name: string | null; fixtures: number }[];
}

const competitionKey = (leagueId: number | null, season: number | string) => `${leagueId}:${season}`;

export function plan(desired: Desired, observed: Observed, now: Date): Plan {
  const configured = new Set(desired.competitions.map((c) => competitionKey(c.leagueId, c.season)));
  const isConfigured = (row: FixtureRow) => configured.has(competitionKey(row.leagueId, row.season));

  // 1. What the API said, the latest answer winning per fixture.
  const latest = new Map<number, ApiFixture>();
  for (const answer of observed.answers)
    for (const fixture of answer.fixtures) latest.set(fixture.fixtureId, fixture);

  // 2. Fixture rows to write: API answers (or an operator's pin) that differ from the row.
  const fixtureWrites: FixtureWrite[] = [];
  const apiStatuses: Plan["apiStatuses"] = [];
  const unknownStatuses: Plan["unknownStatuses"] = [];
  const effective = new Map<number, FixtureRow>();
  for (const [id, state] of desired.fixtures) effective.set(id, state.row);

  for (const fixture of latest.values()) {
    const status = mapStatus(fixture.statusShort);
    apiStatuses.push({
      fixtureId: fixture.fixtureId,
      leagueId: fixture.leagueId,
      season: fixture.season,
      code: fixture.statusShort,
      known: status !== undefined,
    });
    if (status === undefined) {
      // Never guessed: the whole row stays as it was.
      unknownStatuses.push({ fixtureId: fixture.fixtureId, code: fixture.statusShort });
      continue;
    }
    const existing = desired.fixtures.get(fixture.fixtureId)?.row;
    const target = rowFromApi(fixture, status, existing);
    const pin = desired.overrides.get(fixture.fixtureId);
    const write = diffRow(existing, pin ? applyOverride(target, pin) : target, pin ? "override" : "api");
    if (write) {
      fixtureWrites.push(write);
      effective.set(write.fixtureId, write.values);
    }
  }
  // A pin applies even when the API said nothing about the fixture this loop.
  for (const pin of desired.overrides.values()) {
    if (latest.has(pin.fixtureId)) continue;
    const existing = desired.fixtures.get(pin.fixtureId)?.row;
    if (!existing) continue;
    const write = diffRow(existing, applyOverride(existing, pin), "override");
    if (write) {
      fixtureWrites.push(write);
      effective.set(write.fixtureId, write.values);
    }
  }

  // 3. Locks by the clock and by what the API reports, for every fixture in the host table.
  const locks: number[] = [];
  const scores: ScoreAction[] = [];
  // A correction: the row was already final with a result, and the result changed.
  const rescored = new Set(
    fixtureWrites
      .filter((w) => {
        const before = desired.fixtures.get(w.fixtureId)?.row;
        const wasFinal =
          before && SCORABLE.has(before.status) && before.homeScore !== null && before.awayScore !== null;
        return wasFinal && ("homeScore" in w.changes || "awayScore" in w.changes);
      })
      .map((w) => w.fixtureId),
  );
  for (const [id, row] of effective) {
    const state = desired.fixtures.get(id);
    const submitted = state?.submitted ?? 0;
    const locked = state?.locked ?? 0;
    const willLock = submitted > 0 && shouldLock(row, now);
    if (willLock) locks.push(id);
    // 4. Scores: locked predictions of a final fixture, and re-scores after a correction.
    if (SCORABLE.has(row.status) && row.homeScore !== null && row.awayScore !== null) {
      if (locked > 0 || willLock || rescored.has(id)) {
        scores.push({ fixtureId: id, home: row.homeScore, away: row.awayScore, rescore: rescored.has(id) });
      }
    }
  }

  // 5. Which API calls this loop still needs.
  const fetches = planFetches(desired, observed, latest, effective, isConfigured, now);

  const competitionSyncs = observed.answers
    .filter((a): a is ApiAnswer & { call: { kind: "season" } } => a.call.kind === "season")
    .map((a) => ({
      leagueId: a.call.leagueId,
      season: a.call.season,
      name: a.fixtures[0]?.leagueName ?? null,
      fixtures: a.fixtures.length,
    }));

  return {
    mode: chooseMode([...effective.values()].filter(isConfigured), now),
    fetches,
    fixtureWrites,
    apiStatuses,
    unknownStatuses,
    locks,
    scores,
    competitionSyncs,
  };
}

/** Lock once kick-off has passed (whatever the API says yet) or the match is reported under way. */
export function shouldLock(row: FixtureRow, now: Date): boolean {
  if (UNDER_WAY.has(row.status) || SETTLED.has(row.status)) return !CALLED_OFF.has(row.status);
  return row.date.getTime() <= now.getTime() && !CALLED_OFF.has(row.status);
}

function planFetches(
  desired: Desired,
  observed: Observed,
  latest: ReadonlyMap<number, ApiFixture>,
  effective: ReadonlyMap<number, FixtureRow>,
  isConfigured: (row: FixtureRow) => boolean,
  now: Date,
): ApiCall[] {
  const asked = (call: ApiCall) => observed.answers.some((a) => sameCall(a.call, call));
  const fetches: ApiCall[] = [];

  // Full season syncs: at start (never synced), once a day, or when an operator asks.
  const syncedNow = new Set<string>();
  for (const c of desired.competitions) {
    const call: ApiCall = { kind: "season", leagueId: c.leagueId, season: c.season };
    const due =
      c.resyncRequested ||
      c.lastFullSyncAt === null ||
      now.getTime() - c.lastFullSyncAt.getTime() >= desired.fullSyncIntervalMs;
    if (asked(call)) syncedNow.add(competitionKey(c.leagueId, c.season));
    else if (due) {
      fetches.push(call);
      syncedNow.add(competitionKey(c.leagueId, c.season));
    }
  }
  if (!desired.apiDue) return fetches;

  // Fixtures this loop should hear about, unless a season answer covers them already.
  const mode = chooseMode([...effective.values()].filter(isConfigured), now);
  const underWay: FixtureRow[] = [];
  const pending: FixtureRow[] = [];
  for (const row of effective.values()) {
    if (!isConfigured(row) || syncedNow.has(competitionKey(row.leagueId, row.season))) continue;
    if (latest.has(row.fixtureId)) continue;
    if (UNDER_WAY.has(row.status)) underWay.push(row);
    else if (
      isLagging(row, now) ||
      isDueBeforeKickoff(row, mode, now, desired.lastAnsweredAt?.get(row.fixtureId))
    ) {
      pending.push(row);
    }
  }

  // While matches are live, one `live` call covers every live fixture of all competitions;
  // fixtures under way that it no longer lists (finished, suspended, abandoned) are asked by id.
  const liveCall = observed.answers.find((a) => a.call.kind === "live");
  if (underWay.length > 0 && !liveCall) {
    const leagueIds = [...new Set(desired.competitions.map((c) => c.leagueId))].sort((a, b) => a - b);
    fetches.push({ kind: "live", leagueIds });
    // Ids wait for the live answer: it may well list the lagging ones too.
    return fetches;
  }
  return [...fetches, ...idCalls([...underWay, ...pending], observed)];
}

function idCalls(rows: FixtureRow[], observed: Observed): ApiCall[] {
  const alreadyAsked = new Set<number>();
  for (const a of observed.answers)
    if (a.call.kind === "ids") for (const id of a.call.ids) alreadyAsked.add(id);
  const ids = [...new Set(rows.map((r) => r.fixtureId))]
    .filter((id) => !alreadyAsked.has(id))
    .sort((a, b) => a - b);
  const calls: ApiCall[] = [];
  for (let i = 0; i < ids.length; i += IDS_PER_CALL)
    calls.push({ kind: "ids", ids: ids.slice(i, i + IDS_PER_CALL) });
  return calls;
}

/** Kick-off has passed but the row still says NOT_STARTED: ask until it is under way or final. */
function isLagging(row: FixtureRow, now: Date): boolean {
  const sinceKickoff = now.getTime() - row.date.getTime();
  return row.status === "NOT_STARTED" && sinceKickoff >= 0 && sinceKickoff <= LAGGING_WINDOW_MS;
}

/**
 * Within two hours of kick-off a fixture is asked about in case it is postponed or moved,
 * so that its predictions are not locked at a kick-off that will not happen. In
 * live_matches mode too (another match may be live), but not more often than every
 * PRE_KICKOFF_CHECK_MS.
 */
function isDueBeforeKickoff(
  row: FixtureRow,
  mode: ScheduleMode,
  now: Date,
  lastAnswered: Date | undefined,
): boolean {
  if (row.status !== "NOT_STARTED") return false;
  if (mode !== "matches_starting_soon" && mode !== "live_matches") return false;
  const untilKickoff = row.date.getTime() - now.getTime();
  if (untilKickoff <= 0 || untilKickoff > STARTING_SOON_MS) return false;
  return !lastAnswered || now.getTime() - lastAnswered.getTime() >= PRE_KICKOFF_CHECK_MS;
}

/** The schedule mode from the configured competitions' fixtures near now. */
export function chooseMode(rows: readonly FixtureRow[], now: Date): ScheduleMode {
  const t = now.getTime();
  const today = now.toISOString().slice(0, 10);
  let mode: ScheduleMode = "minimal";
  const rank: Record<ScheduleMode, number> = {
    minimal: 0,
    upcoming_matches: 1,
    match_day: 2,
    matches_starting_soon: 3,
    live_matches: 4,
  };
  const raise = (m: ScheduleMode) => {
    if (rank[m] > rank[mode]) mode = m;
  };
  for (const row of rows) {
    if (UNDER_WAY.has(row.status) || isLagging(row, now)) return "live_matches";
    if (row.status !== "NOT_STARTED") continue;
    const untilKickoff = row.date.getTime() - t;
    if (untilKickoff < 0) continue;
    if (untilKickoff <= STARTING_SOON_MS) raise("matches_starting_soon");
    else if (row.date.toISOString().slice(0, 10) === today) raise("match_day");
    else if (untilKickoff <= UPCOMING_MS) raise("upcoming_matches");
  }
  return mode;
}

function sameCall(a: ApiCall, b: ApiCall): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === "season" && b.kind === "season") return a.leagueId === b.leagueId && a.season === b.season;
  return true;
}

/** The host row the API describes. Nothing known is replaced by a missing value. */
export function rowFromApi(
  api: ApiFixture,
  status: MatchStatus,
  existing: FixtureRow | undefined,
): FixtureRow {
  const keep = <T>(value: T | null, old: T | null | undefined): T | null =>
    (value ?? old ?? null) as T | null;
  // Before kick-off goals are null and must be; once under way or final, a null is a gap in the answer.
  const scoresMayBeNull = status === "NOT_STARTED" || CALLED_OFF.has(status);
  return {
    fixtureId: api.fixtureId,
    date: api.date,
    status,
    round: keep(api.round, existing?.round),
    season: String(api.season),
    homeTeam: api.homeTeam,
    awayTeam: api.awayTeam,
    homeLogo: keep(api.homeLogo, existing?.homeLogo),
    awayLogo: keep(api.awayLogo, existing?.awayLogo),
    homeScore: scoresMayBeNull ? api.homeGoals : keep(api.homeGoals, existing?.homeScore),
    awayScore: scoresMayBeNull ? api.awayGoals : keep(api.awayGoals, existing?.awayScore),
    league: api.leagueName,
    leagueId: api.leagueId,
    venue: keep(api.venueName, existing?.venue),
    venueCity: keep(api.venueCity, existing?.venueCity),
    matchTimestamp:
      api.timestamp === null ? (existing?.matchTimestamp ?? null) : new Date(api.timestamp * 1000),
  };
}

function applyOverride(row: FixtureRow, pin: Override): FixtureRow {
  return { ...row, status: pin.status, homeScore: pin.homeScore, awayScore: pin.awayScore };
}

function diffRow(
  existing: FixtureRow | undefined,
  target: FixtureRow,
  reason: FixtureWrite["reason"],
): FixtureWrite | undefined {
  if (!existing) {
    const changes: FixtureWrite["changes"] = {};
    for (const field of FIXTURE_FIELDS) changes[field] = [null, serialise(target[field])];
    return { fixtureId: target.fixtureId, insert: true, values: target, changes, reason };
  }
  const changes: FixtureWrite["changes"] = {};
  for (const field of FIXTURE_FIELDS) {
    const from = serialise(existing[field]);
    const to = serialise(target[field]);
    if (from !== to) changes[field] = [from, to];
  }
  if (Object.keys(changes).length === 0) return undefined;
  return { fixtureId: target.fixtureId, insert: false, values: target, changes, reason };
}

function serialise(value: unknown): string | number | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  return value as string | number;
}
