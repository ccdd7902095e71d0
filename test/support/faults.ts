/**
 * Shared checks of the fault suite (test/faults-*.test.ts): what every fault case asserts
 * against the real database.
 *  - nothing lost: no fixture or prediction row deleted, no known fixture value replaced by
 *    null, no prediction status moved backwards (a lock is never undone);
 *  - nothing guessed: a fixture whose API status was unknown keeps its whole row;
 *  - nothing scored twice: PROCESSED predictions keep their points and processed_at, and
 *    each fixture has at most one 'score' entry in the audit trail;
 *  - the loop recovers: the expected final state (every prediction of a finished fixture
 *    PROCESSED with the reference points) is reached once the fault is gone.
 */
import assert from "node:assert/strict";
import type { Sql } from "../../controller/database.js";
import { pointsFor } from "../../controller/plan.js";
import type { SimFixture } from "../../controller/simulator/index.js";

export const MIN = 60_000;
export const HOUR = 60 * MIN;

export interface FixtureSnap {
  fixture_id: number;
  status: string;
  home_score: number | null;
  away_score: number | null;
  round: string | null;
  venue: string | null;
  home_team_logo: string | null;
  away_team_logo: string | null;
  match_timestamp: Date | null;
  last_updated: Date | null;
  xmin: string;
}

export interface PredictionSnap {
  id: number;
  fixture_id: number;
  score1: number;
  score2: number;
  points: number;
  prediction_status: string;
  processed_at: Date | null;
  xmin: string;
}

export interface Snapshot {
  fixtures: Map<number, FixtureSnap>;
  predictions: Map<number, PredictionSnap>;
}

export async function snapshot(sql: Sql): Promise<Snapshot> {
  const fixtures = await sql<FixtureSnap[]>`
    SELECT fixture_id, status::text AS status, home_score, away_score, round, venue, home_team_logo,
           away_team_logo, match_timestamp, last_updated, xmin::text AS xmin
      FROM fixtures`;
  const predictions = await sql<PredictionSnap[]>`
    SELECT id, fixture_id, score1, score2, points, prediction_status::text AS prediction_status,
           processed_at, xmin::text AS xmin
      FROM user_predictions`;
  return {
    fixtures: new Map(fixtures.map((f) => [f.fixture_id, f])),
    predictions: new Map(predictions.map((p) => [p.id, p])),
  };
}

const RANK: Record<string, number> = { EDITABLE: -1, SUBMITTED: 0, LOCKED: 1, PROCESSED: 2 };
const KNOWN_FIELDS = [
  "home_score",
  "away_score",
  "round",
  "venue",
  "home_team_logo",
  "away_team_logo",
  "match_timestamp",
] as const;

/**
 * Between two snapshots: nothing deleted, nothing known nulled, no status backwards, EDITABLE
 * untouched, PROCESSED points and processed_at unchanged (except fixtures in `rescored`).
 */
export function assertNothingLost(
  before: Snapshot,
  after: Snapshot,
  options: { rescored?: Iterable<number>; label?: string } = {},
): void {
  const label = options.label ? `${options.label}: ` : "";
  const rescored = new Set(options.rescored ?? []);
  for (const [id, f] of before.fixtures) {
    const now = after.fixtures.get(id);
    assert.ok(now, `${label}fixture ${id} was deleted`);
    for (const field of KNOWN_FIELDS) {
      if (f[field] !== null)
        assert.notEqual(now[field], null, `${label}fixture ${id}: known ${field} replaced by null`);
    }
  }
  for (const [id, p] of before.predictions) {
    const now = after.predictions.get(id);
    assert.ok(now, `${label}prediction ${id} was deleted`);
    assert.equal(now.score1, p.score1, `${label}prediction ${id}: score1 written`);
    assert.equal(now.score2, p.score2, `${label}prediction ${id}: score2 written`);
    if (p.prediction_status === "EDITABLE") {
      assert.equal(now.prediction_status, "EDITABLE", `${label}EDITABLE prediction ${id} was touched`);
      assert.equal(now.xmin, p.xmin, `${label}EDITABLE prediction ${id} was rewritten`);
    }
    assert.ok(
      RANK[now.prediction_status]! >= RANK[p.prediction_status]!,
      `${label}prediction ${id} went back from ${p.prediction_status} to ${now.prediction_status}`,
    );
    if (p.prediction_status === "PROCESSED" && !rescored.has(p.fixture_id)) {
      assert.equal(now.points, p.points, `${label}prediction ${id} scored again (points)`);
      assert.equal(
        now.processed_at?.getTime(),
        p.processed_at?.getTime(),
        `${label}prediction ${id} scored again (processed_at)`,
      );
    }
  }
}

/**
 * Each fixture scored at most once: one scoring entry ('score', or 'rescore' when the result
 * arrived with a status or score change in the same apply) per fixture, two for fixtures in
 * `corrected` (the first scoring and the re-score after the correction).
 */
export async function assertScoredOnce(sql: Sql, corrected: Iterable<number> = []): Promise<void> {
  const allowed = new Set(corrected);
  const entries = await sql<{ fixture_id: number; n: number }[]>`
    SELECT fixture_id, count(*)::int AS n FROM scheduler.fixture_changes
     WHERE kind IN ('score', 'rescore') GROUP BY fixture_id`;
  const twice = entries.filter((e) => e.n > (allowed.has(e.fixture_id) ? 2 : 1));
  assert.deepEqual(twice, [], `fixtures scored more than once: ${JSON.stringify(twice)}`);
  const locks = await sql<{ fixture_id: number; n: number }[]>`
    SELECT fixture_id, count(*)::int AS n FROM scheduler.fixture_changes
     WHERE kind = 'lock' GROUP BY fixture_id HAVING count(*) > 1`;
  // A second 'lock' entry is fine only when new SUBMITTED rows appeared; the suite seeds once.
  assert.deepEqual([...locks], [], `fixtures locked in more than one apply: ${JSON.stringify(locks)}`);
  const inserted = await sql<{ fixture_id: number }[]>`
    SELECT fixture_id FROM scheduler.fixture_changes WHERE kind = 'insert'
     GROUP BY fixture_id HAVING count(*) > 1`;
  assert.deepEqual([...inserted], [], `fixtures inserted twice: ${JSON.stringify(inserted)}`);
}

/** The final score predictions are scored against (the simulator's truth, or a correction). */
export function truthOf(f: SimFixture, corrections: Record<number, { home: number; away: number }> = {}) {
  const c = corrections[f.fixtureId];
  if (c) return c;
  const [home, away] = f.et ?? f.ft;
  return { home, away };
}

/**
 * The expected end state of a played round: every non-EDITABLE prediction of a finished
 * fixture PROCESSED with the reference points; those of `notScored` (postponed) never
 * PROCESSED; EDITABLE ones untouched. Returns how many were checked as PROCESSED.
 */
export async function assertRoundScored(
  sql: Sql,
  round: SimFixture[],
  options: {
    notScored?: number[];
    corrections?: Record<number, { home: number; away: number }>;
    label?: string;
  } = {},
): Promise<number> {
  const label = options.label ? `${options.label}: ` : "";
  const snap = await snapshot(sql);
  const byId = new Map(round.map((f) => [f.fixtureId, f]));
  const notScored = new Set(options.notScored ?? []);
  let processed = 0;
  for (const p of snap.predictions.values()) {
    const f = byId.get(p.fixture_id);
    if (!f) continue;
    if (p.prediction_status === "EDITABLE") {
      assert.equal(p.points, 0, `${label}EDITABLE prediction ${p.id} got points`);
      assert.equal(p.processed_at, null, `${label}EDITABLE prediction ${p.id} processed`);
      continue;
    }
    if (notScored.has(p.fixture_id) || f.awarded) {
      assert.notEqual(
        p.prediction_status,
        "PROCESSED",
        `${label}prediction ${p.id} of a postponed fixture scored`,
      );
      continue;
    }
    const truth = truthOf(f, options.corrections);
    assert.equal(
      p.prediction_status,
      "PROCESSED",
      `${label}prediction ${p.id} of fixture ${f.fixtureId} not PROCESSED`,
    );
    assert.equal(
      p.points,
      pointsFor({ home: p.score1, away: p.score2 }, truth, { exact: 3, outcome: 1 }),
      `${label}prediction ${p.id}: points against ${truth.home}-${truth.away}`,
    );
    assert.ok(p.processed_at, `${label}prediction ${p.id}: processed_at set`);
    processed++;
  }
  for (const f of round) {
    if (notScored.has(f.fixtureId) || f.awarded) continue;
    const row = snap.fixtures.get(f.fixtureId);
    const truth = truthOf(f, options.corrections);
    assert.match(row?.status ?? "", /^FINISHED/, `${label}fixture ${f.fixtureId} finished`);
    assert.equal(row?.home_score, truth.home, `${label}fixture ${f.fixtureId} home score`);
    assert.equal(row?.away_score, truth.away, `${label}fixture ${f.fixtureId} away score`);
  }
  return processed;
}

/** Predictions of `fixtureIds` by status. */
export async function predictionStatuses(sql: Sql, fixtureIds: number[]): Promise<Record<string, number>> {
  const rows = await sql<{ s: string; n: number }[]>`
    SELECT prediction_status::text AS s, count(*)::int AS n FROM user_predictions
     WHERE fixture_id = ANY(${fixtureIds}) GROUP BY 1`;
  return Object.fromEntries(rows.map((r) => [r.s, r.n]));
}

/** Poll until `check` is true (real time); fails with `label` and the last detail otherwise. */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  label: string,
  detail?: () => Promise<string> | string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let ok = false;
    try {
      ok = await check();
    } catch {
      ok = false;
    }
    if (ok) return;
    if (Date.now() > deadline) {
      const more = detail ? await Promise.resolve(detail()).catch((e) => String(e)) : "";
      assert.fail(`timed out after ${timeoutMs} ms waiting for ${label}${more ? `\n${more}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Insert the fixtures of a round into the host table as the backend would have them before
 * any sync (kick-off, teams, league), so predictions can be seeded before a scheduler runs.
 */
export async function insertFixtures(sql: Sql, fixtures: SimFixture[]): Promise<void> {
  for (const f of fixtures) {
    await sql`
      INSERT INTO fixtures (fixture_id, date, status, round, season, home_team, away_team, league, league_id)
      VALUES (${f.fixtureId}, ${f.kickoff.toISOString()}::timestamptz AT TIME ZONE 'UTC', 'NOT_STARTED', ${f.round},
              ${String(f.season)}, ${f.home.name}, ${f.away.name}, ${f.leagueName}, ${f.leagueId})
      ON CONFLICT (fixture_id) DO NOTHING`;
  }
}
