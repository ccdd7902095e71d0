/**
 * Season replay on the in-process harness (test/support/harness.ts): the clock jumps from one
 * live window to the next and runs fast through each, with the reconciler's real loops running;
 * then the outcome is checked against the simulator's truth. Shared by
 * test/season-replay.test.ts (asserts) and bench/season.ts (figures).
 */
import type { Sql } from "../../controller/database.js";
import { type Points, pointsFor } from "../../controller/plan.js";
import type { SimFixture } from "../../controller/simulator/index.js";
import { durationMinutes } from "../../controller/simulator/season.js";
import type { Harness } from "./harness.js";

const MIN = 60_000;
export const final = (f: SimFixture): [number, number] => f.et ?? f.ft;
const utcDay = (t: number | string) => new Date(t).toISOString().slice(0, 10);

/** A stretch of clock time during which at least one match is under way. */
export interface LiveWindow {
  start: number;
  end: number;
  fixtures: number;
}

/** The union of [kick-off, final whistle] over `fixtures`, in order. */
export function liveWindows(fixtures: readonly SimFixture[]): LiveWindow[] {
  const spans = fixtures
    .map((f) => [f.kickoff.getTime(), f.kickoff.getTime() + durationMinutes(f) * MIN] as const)
    .sort((a, b) => a[0] - b[0]);
  const windows: LiveWindow[] = [];
  for (const [start, end] of spans) {
    const last = windows.at(-1);
    if (last && start <= last.end) {
      last.end = Math.max(last.end, end);
      last.fixtures++;
    } else windows.push({ start, end, fixtures: 1 });
  }
  return windows;
}

/** A prediction as seeded (its status before the replay). */
export interface Seed {
  id: number;
  fixtureId: number;
  score1: number;
  score2: number;
  status: "EDITABLE" | "SUBMITTED";
}

/**
 * `users` new users, each predicting `perUser` distinct fixtures spread over the season: a
 * deterministic mix of exact, outcome-only and wrong guesses, about one in nine EDITABLE.
 * One INSERT for the users and one (through unnest) for the predictions.
 */
export async function seedSeason(
  sql: Sql,
  fixtures: readonly SimFixture[],
  users: number,
  perUser: number,
): Promise<Seed[]> {
  const tag = Math.floor(Math.random() * 1e9);
  const userRows = await sql<{ id: number }[]>`
    INSERT INTO users (username, email, hashed_password, created_at)
    SELECT 'replay' || g || '_' || ${tag}, 'replay' || g || '_' || ${tag} || '@example.test', 'x', now()
      FROM generate_series(1, ${users}) AS g
    RETURNING id`;
  const sorted = [...fixtures].sort((a, b) => a.fixtureId - b.fixtureId);
  const n = sorted.length;
  // A step coprime with n gives each user perUser distinct fixtures.
  let step = 53;
  while (gcd(step, n) !== 1) step++;
  const cols = { user: [] as number[], fixture: [] as number[], s1: [] as number[], s2: [] as number[] };
  const status: string[] = [];
  const season: string[] = [];
  userRows.forEach(({ id }, u) => {
    for (let k = 0; k < Math.min(perUser, n); k++) {
      const f = sorted[(u * 37 + k * step) % n]!;
      const [h, a] = final(f);
      const d = Math.sign(h - a);
      let guess: [number, number];
      switch ((u + k) % 4) {
        case 0:
          guess = [h, a];
          break;
        case 1:
          guess = d > 0 ? [h + 1, a] : d < 0 ? [h, a + 1] : [h + 1, a + 1];
          break;
        case 2:
          guess = d > 0 ? [0, 2] : d < 0 ? [2, 0] : [1, 0];
          break;
        default:
          guess = [(u + k) % 3, (u * 3 + k) % 4];
      }
      cols.user.push(id);
      cols.fixture.push(f.fixtureId);
      cols.s1.push(guess[0]);
      cols.s2.push(guess[1]);
      status.push((u * 7 + k) % 9 === 0 ? "EDITABLE" : "SUBMITTED");
      season.push(String(f.season));
    }
  });
  const rows = await sql.unsafe<
    { id: number; fixture_id: number; score1: number; score2: number; prediction_status: Seed["status"] }[]
  >(
    `INSERT INTO user_predictions (user_id, fixture_id, week, season, score1, score2, prediction_status, submission_time)
     SELECT u.user_id, u.fixture_id, 1, u.season, u.s1, u.s2, u.status::predictionstatus, now()
       FROM unnest($1::int[], $2::int[], $3::int[], $4::int[], $5::text[], $6::text[])
         AS u(user_id, fixture_id, s1, s2, status, season)
     RETURNING id, fixture_id, score1, score2, prediction_status::text`,
    [cols.user, cols.fixture, cols.s1, cols.s2, status, season] as never[],
  );
  return rows.map((r) => ({
    id: r.id,
    fixtureId: r.fixture_id,
    score1: r.score1,
    score2: r.score2,
    status: r.prediction_status,
  }));
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

export interface ReplayOptions {
  /** Clock time run before each window's first kick-off (pre-kick-off checks). */
  beforeMs?: number;
  /** Clock time run after each window's last final whistle (results by id). */
  afterMs?: number;
  /** Called after each window (progress, log trimming). */
  onWindow?: (index: number, window: LiveWindow) => void;
}

export interface ReplayRun {
  realMs: number;
  windows: number;
  /** Clock time the loops ran through (the rest was jumped over). */
  clockRunMs: number;
}

/**
 * Run the harness's real loops (`h.run()`) through every window: jump the clock to
 * `beforeMs` ahead of the window, poke, and let the fast clock run to `afterMs` past its end.
 * The loops stay running between windows; returns their stop function with the figures.
 */
export async function replayWindows(
  h: Harness,
  windows: readonly LiveWindow[],
  options: ReplayOptions = {},
): Promise<ReplayRun & { stop: () => Promise<void> }> {
  const before = options.beforeMs ?? 20 * MIN;
  const after = options.afterMs ?? 30 * MIN;
  const t0 = performance.now();
  const stop = h.run();
  let clockRunMs = 0;
  for (const [i, w] of windows.entries()) {
    const from = w.start - before;
    if (h.clock.now().getTime() < from) h.clock.set(new Date(from));
    h.reconciler.poke();
    const startAt = h.clock.now().getTime();
    await h.clock.until(new Date(w.end + after));
    clockRunMs += h.clock.now().getTime() - startAt;
    options.onWindow?.(i, w);
  }
  return { realMs: performance.now() - t0, windows: windows.length, clockRunMs, stop };
}

export type CallKind = "season" | "live" | "ids" | "other";

export interface CallStats {
  total: number;
  byKind: Record<CallKind, number>;
  perDay: Map<string, number>;
  maxPerDay: number;
  busiestDay: string | null;
  /** Answers carrying an API error (quota, rate limit, token). */
  errors: Record<string, number>;
  lowerBound: { season: number; live: number; total: number };
}

/**
 * API calls from the simulator's request log (counted ones, by UTC day of the clock), against
 * a lower bound: one season call per competition per day the clock ran through, plus one
 * live call per live interval while any match is live.
 */
export function callStats(
  h: Harness,
  windows: readonly LiveWindow[],
  liveIntervalMs: number,
  options: ReplayOptions = {},
): CallStats {
  const log = h.simulator.requestLog().filter((e) => e.counted);
  const byKind: Record<CallKind, number> = { season: 0, live: 0, ids: 0, other: 0 };
  const perDay = new Map<string, number>();
  const errors: Record<string, number> = {};
  for (const e of log) {
    const kind: CallKind =
      e.path !== "/fixtures"
        ? "other"
        : e.query.live !== undefined
          ? "live"
          : e.query.ids !== undefined || e.query.id !== undefined
            ? "ids"
            : e.query.season !== undefined
              ? "season"
              : "other";
    byKind[kind]++;
    perDay.set(utcDay(e.time), (perDay.get(utcDay(e.time)) ?? 0) + 1);
    if (e.error) errors[e.error] = (errors[e.error] ?? 0) + 1;
  }
  let busiestDay: string | null = null;
  for (const [day, n] of perDay) if (!busiestDay || n > perDay.get(busiestDay)!) busiestDay = day;
  const before = options.beforeMs ?? 20 * MIN;
  const after = options.afterMs ?? 30 * MIN;
  const days = new Set<string>();
  for (const w of windows)
    for (let t = w.start - before; t <= w.end + after; t += 3_600_000) days.add(utcDay(t));
  for (const w of windows) days.add(utcDay(w.end + after));
  const season = days.size * h.competitions.length;
  const live = windows.reduce((n, w) => n + Math.ceil((w.end - w.start) / liveIntervalMs), 0);
  return {
    total: log.length,
    byKind,
    perDay,
    maxPerDay: busiestDay ? perDay.get(busiestDay)! : 0,
    busiestDay,
    errors,
    lowerBound: { season, live, total: season + live },
  };
}

export interface Outcome {
  predictions: number;
  processed: number;
  lockedOnly: number;
  editable: number;
  /** Human-readable problems (empty when everything holds); capped. */
  problems: string[];
  problemCount: number;
  /** Clock milliseconds from kick-off to the lock, per fixture with SUBMITTED predictions. */
  lockDelaysMs: number[];
  /** Fixtures locked when the API said the match was under way, ahead of the loop's clock. */
  lockedOnApiWord: number;
  worstLock: { delay: number; fixtureId: number; at: Date };
  /** Audit entries by label (first scorings may be labelled "rescore", see checkOutcome). */
  scoreChanges: number;
  rescoreChanges: number;
}

/**
 * Compare the database with the simulator's truth after the replay: fixtures final with the
 * right score; every prediction of a finished fixture PROCESSED with the reference points;
 * SUBMITTED ones of a fixture that kicked off at least LOCKED; EDITABLE untouched; one lock
 * and one score change per fixture, all its predictions processed at that one moment.
 */
export async function checkOutcome(
  sql: Sql,
  fixtures: readonly SimFixture[],
  seeds: readonly Seed[],
  now: Date,
  points: Points,
): Promise<Outcome> {
  const problems: string[] = [];
  let problemCount = 0;
  const problem = (text: string) => {
    problemCount++;
    if (problems.length < 20) problems.push(text);
  };
  const truth = new Map(fixtures.map((f) => [f.fixtureId, f]));
  const finished = (f: SimFixture) =>
    !f.awarded && f.kickoff.getTime() + durationMinutes(f) * MIN <= now.getTime();

  const fixtureRows = await sql<
    { fixture_id: number; status: string; home_score: number | null; away_score: number | null }[]
  >`SELECT fixture_id, status::text, home_score, away_score FROM fixtures`;
  const dbFixture = new Map(fixtureRows.map((r) => [r.fixture_id, r]));
  for (const f of fixtures) {
    const row = dbFixture.get(f.fixtureId);
    if (!row) {
      problem(`fixture ${f.fixtureId} missing`);
      continue;
    }
    if (finished(f)) {
      const [h, a] = final(f);
      const want = f.et ? (f.pen ? "FINISHED_PEN" : "FINISHED_AET") : "FINISHED";
      if (row.status !== want || row.home_score !== h || row.away_score !== a)
        problem(
          `fixture ${f.fixtureId}: ${row.status} ${row.home_score}-${row.away_score}, truth ${want} ${h}-${a}`,
        );
    }
  }

  const rows = await sql<
    { id: number; fixture_id: number; points: number; prediction_status: string; processed_at: Date | null }[]
  >`SELECT id, fixture_id, points, prediction_status::text, processed_at FROM user_predictions`;
  const seedById = new Map(seeds.map((s) => [s.id, s]));
  let processed = 0;
  let lockedOnly = 0;
  let editable = 0;
  const processedAt = new Map<number, Set<number>>();
  const submittedPerFixture = new Map<number, number>();
  for (const r of rows) {
    const seed = seedById.get(r.id);
    if (!seed) continue; // not this replay's
    const f = truth.get(r.fixture_id)!;
    if (seed.status === "EDITABLE") {
      editable++;
      if (r.prediction_status !== "EDITABLE" || r.points !== 0 || r.processed_at !== null)
        problem(`EDITABLE prediction ${r.id} touched: ${r.prediction_status} ${r.points} ${r.processed_at}`);
      continue;
    }
    submittedPerFixture.set(r.fixture_id, (submittedPerFixture.get(r.fixture_id) ?? 0) + 1);
    const kickedOff = f.kickoff.getTime() <= now.getTime();
    if (finished(f)) {
      const [home, away] = final(f);
      const expected = pointsFor({ home: seed.score1, away: seed.score2 }, { home, away }, points);
      if (r.prediction_status !== "PROCESSED" || r.points !== expected || r.processed_at === null) {
        problem(
          `prediction ${r.id} of fixture ${f.fixtureId} (${home}-${away}, guess ${seed.score1}-${seed.score2}): ` +
            `${r.prediction_status} ${r.points} points, expected PROCESSED ${expected}`,
        );
      } else {
        processed++;
        const set = processedAt.get(r.fixture_id) ?? new Set<number>();
        set.add(r.processed_at.getTime());
        processedAt.set(r.fixture_id, set);
      }
    } else if (kickedOff) {
      if (r.prediction_status !== "LOCKED" && r.prediction_status !== "PROCESSED")
        problem(`prediction ${r.id} of fixture ${f.fixtureId} (kicked off) is ${r.prediction_status}`);
      else lockedOnly++;
    } else if (r.prediction_status !== "SUBMITTED") {
      problem(`prediction ${r.id} of fixture ${f.fixtureId} (not kicked off) is ${r.prediction_status}`);
    }
  }
  for (const [id, times] of processedAt)
    if (times.size !== 1) problem(`fixture ${id}: predictions processed at ${times.size} different times`);

  // Scores are counted with rescores: plan.ts marks the first scoring "rescore" when the
  // same loop also wrote the fixture's final status (see the report); one of either per fixture.
  const changes = await sql<
    { fixture_id: number; kind: string; n: number; total: number; first: Date; api_said_live: boolean }[]
  >`
    SELECT c.fixture_id, CASE WHEN c.kind = 'rescore' THEN 'score' ELSE c.kind END AS kind, count(*)::int AS n,
           coalesce(sum(coalesce((c.changes->>'predictionsScored')::int, (c.changes->>'predictionsLocked')::int)), 0)::int AS total,
           min(c.clock_time) AS first,
           bool_or(EXISTS (SELECT 1 FROM scheduler.fixture_changes a
                            WHERE a.run_id = c.run_id AND a.fixture_id = c.fixture_id AND a.kind = 'api'
                              AND a.changes->'status'->>0 = 'NOT_STARTED')) AS api_said_live
      FROM scheduler.fixture_changes c WHERE c.kind IN ('lock', 'score', 'rescore')
     GROUP BY 1, 2`;
  const [labels] = await sql<{ score: number; rescore: number }[]>`
    SELECT count(*) FILTER (WHERE kind = 'score')::int AS score, count(*) FILTER (WHERE kind = 'rescore')::int AS rescore
      FROM scheduler.fixture_changes`;
  const byFixture = new Map<
    number,
    Map<string, { n: number; total: number; first: Date; api_said_live: boolean }>
  >();
  for (const c of changes) {
    const m = byFixture.get(c.fixture_id) ?? new Map();
    m.set(c.kind, c);
    byFixture.set(c.fixture_id, m);
  }
  const lockDelaysMs: number[] = [];
  const scoreChanges = labels?.score ?? 0;
  const rescoreChanges = labels?.rescore ?? 0;
  let lockedOnApiWord = 0;
  const worstLock = { delay: 0, fixtureId: 0, at: new Date(0) };
  for (const [fixtureId, submitted] of submittedPerFixture) {
    const f = truth.get(fixtureId)!;
    const kinds = byFixture.get(fixtureId);
    const lock = kinds?.get("lock");
    const score = kinds?.get("score");
    if (f.kickoff.getTime() <= now.getTime()) {
      if (lock?.n !== 1 || lock.total !== submitted)
        problem(`fixture ${fixtureId}: ${lock?.n ?? 0} lock changes for ${lock?.total ?? 0} of ${submitted}`);
      if (lock) {
        // Before kick-off by the reconciler's clock only when the API said the match was under
        // way in the same loop (its answer is a little ahead of the loop's start on a fast clock).
        const delay = lock.first.getTime() - f.kickoff.getTime();
        if (delay < 0 && !lock.api_said_live)
          problem(`fixture ${fixtureId}: locked ${-delay} ms before kick-off, API not saying it started`);
        if (delay < 0) lockedOnApiWord++;
        else lockDelaysMs.push(delay);
        if (delay > worstLock.delay) Object.assign(worstLock, { delay, fixtureId, at: lock.first });
      }
    }
    if (finished(f) && (score?.n !== 1 || score.total !== submitted))
      problem(
        `fixture ${fixtureId}: ${score?.n ?? 0} score changes for ${score?.total ?? 0} of ${submitted}`,
      );
  }
  return {
    predictions: processed + lockedOnly + editable,
    processed,
    lockedOnly,
    editable,
    problems,
    problemCount,
    lockDelaysMs,
    lockedOnApiWord,
    worstLock,
    scoreChanges,
    rescoreChanges,
  };
}

/** Wait until `check` holds (real time); false on timeout. */
export async function settle(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** The replay's configuration, shared by the test and the benchmark. */
export const REPLAY = {
  leagues: [39, 140, 78],
  /** API-Football's free plan. */
  dailyBudget: 100,
  dailyReserve: 10,
  callsPerMinute: 10,
  points: { exact: 3, outcome: 1 },
} as const;
