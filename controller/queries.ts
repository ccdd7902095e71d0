/**
 * Note: postgres.js infers array parameter types from the values; booleans must go
 * through `sql.array()` to arrive as bool[].
 *
 * Every statement the reconciler and the management API run, in one place. Set-based:
 * arrays go in through `unnest`, and every write carries an `IS DISTINCT FROM` guard so
 * that a loop over unchanged data rewrites no row. Lease and fencing SQL live in
 * lease-queries.ts.
 *
 * `timestamp` columns hold UTC; dates go in as ISO strings cast through timestamptz.
 */
import type { Sql, TransactionSql } from "./database.js";
import type {
  FixtureRow,
  FixtureState,
  FixtureWrite,
  MatchStatus,
  Override,
  Points,
  ScoreAction,
} from "./plan.js";
import { SCORABLE, UNDER_WAY } from "./plan.js";

type Db = Sql | TransactionSql;

const iso = (d: Date | null) => (d === null ? null : d.toISOString());
const toUtc = (param: string) => `(${param}::timestamptz AT TIME ZONE 'UTC')`;

interface FixtureRecord {
  fixture_id: number;
  date: Date;
  status: MatchStatus;
  round: string | null;
  season: string;
  home_team: string;
  away_team: string;
  home_team_logo: string | null;
  away_team_logo: string | null;
  home_score: number | null;
  away_score: number | null;
  league: string;
  league_id: number | null;
  venue: string | null;
  venue_city: string | null;
  match_timestamp: Date | null;
  submitted: number;
  locked: number;
}

const FIXTURE_COLUMNS = `f.fixture_id, f.date, f.status::text AS status, f.round, f.season, f.home_team, f.away_team,
  f.home_team_logo, f.away_team_logo, f.home_score, f.away_score, f.league, f.league_id, f.venue, f.venue_city,
  f.match_timestamp`;

function toRow(r: FixtureRecord): FixtureRow {
  return {
    fixtureId: r.fixture_id,
    date: r.date,
    status: r.status,
    round: r.round,
    season: r.season,
    homeTeam: r.home_team,
    awayTeam: r.away_team,
    homeLogo: r.home_team_logo,
    awayLogo: r.away_team_logo,
    homeScore: r.home_score,
    awayScore: r.away_score,
    league: r.league,
    leagueId: r.league_id,
    venue: r.venue,
    venueCity: r.venue_city,
    matchTimestamp: r.match_timestamp,
  };
}

const OPEN = "prediction_status IN ('SUBMITTED', 'LOCKED')";
// A literal list (not a parameter) so that the partial index of migration 3 applies.
const UNDER_WAY_LIST = [...UNDER_WAY].map((s) => `'${s}'`).join(", ");

/**
 * The ids of the fixtures that matter now: under way, kicking off or kicked off within the
 * window, and `ids` (what the API just answered about). With `catchUp`, also every fixture
 * that kicked off (or left NOT_STARTED) and still has open predictions, however long ago:
 * that branch probes all past fixtures, so the reconciler runs it at the start of a term
 * and every few minutes, not on every sweep.
 */
export function activeFixtureIdsStatement(
  now: Date,
  windowMs: { before: number; after: number },
  ids: readonly number[],
  catchUp: boolean,
): { text: string; params: unknown[] } {
  const catchUpBranch = catchUp
    ? `UNION
       SELECT f.fixture_id FROM fixtures f
        WHERE (f.date <= ${toUtc("$4")} OR f.status <> 'NOT_STARTED')
          AND EXISTS (SELECT 1 FROM user_predictions p WHERE p.fixture_id = f.fixture_id AND p.${OPEN})`
    : "";
  return {
    text: `SELECT fixture_id FROM fixtures WHERE date >= ${toUtc("$1")} AND date <= ${toUtc("$2")}
           UNION
           SELECT fixture_id FROM fixtures WHERE status IN (${UNDER_WAY_LIST})
           UNION
           SELECT unnest($3::int[])
           ${catchUpBranch}`,
    params: [
      new Date(now.getTime() - windowMs.before).toISOString(),
      new Date(now.getTime() + windowMs.after).toISOString(),
      [...ids],
      ...(catchUp ? [now.toISOString()] : []),
    ],
  };
}

/** The active fixtures (see activeFixtureIdsStatement), each with its open prediction counts. */
export async function loadActiveFixtures(
  db: Db,
  now: Date,
  windowMs: { before: number; after: number },
  ids: readonly number[],
  options: { catchUp?: boolean } = {},
): Promise<Map<number, FixtureState>> {
  const statement = activeFixtureIdsStatement(now, windowMs, ids, options.catchUp ?? false);
  const candidates = await db.unsafe<{ fixture_id: number }[]>(statement.text, statement.params as never[]);
  const map = new Map<number, FixtureState>();
  if (candidates.length === 0) return map;
  const rows = await db.unsafe<FixtureRecord[]>(
    `SELECT ${FIXTURE_COLUMNS}, c.submitted, c.locked
       FROM fixtures f
       CROSS JOIN LATERAL (
         SELECT count(*) FILTER (WHERE p.prediction_status = 'SUBMITTED')::int AS submitted,
                count(*) FILTER (WHERE p.prediction_status = 'LOCKED')::int AS locked
           FROM user_predictions p WHERE p.fixture_id = f.fixture_id AND p.${OPEN}) c
      WHERE f.fixture_id = ANY($1::int[])`,
    [candidates.map((c) => c.fixture_id)] as never[],
  );
  for (const r of rows) map.set(r.fixture_id, { row: toRow(r), submitted: r.submitted, locked: r.locked });
  return map;
}

/** The next kick-off of any fixture in the host table (the lock timer's target). */
export async function nextKickoff(db: Db, now: Date): Promise<Date | null> {
  const [row] = await db.unsafe<{ next: Date | null }[]>(
    `SELECT min(date) AS next FROM fixtures
      WHERE date > ${toUtc("$1")} AND status NOT IN ('POSTPONED', 'CANCELLED')`,
    [now.toISOString()],
  );
  return row?.next ?? null;
}

export async function loadOverrides(db: Db): Promise<Map<number, Override>> {
  const rows = await db<
    { fixture_id: number; status: MatchStatus; home_score: number | null; away_score: number | null }[]
  >`SELECT fixture_id, status::text AS status, home_score, away_score FROM scheduler.fixture_overrides`;
  return new Map(
    rows.map((r) => [
      r.fixture_id,
      { fixtureId: r.fixture_id, status: r.status, homeScore: r.home_score, awayScore: r.away_score },
    ]),
  );
}

export interface CompetitionRecord {
  leagueId: number;
  season: number;
  name: string | null;
  lastFullSyncAt: Date | null;
  lastError: string | null;
  lastErrorAt: Date | null;
}

export async function loadCompetitionRecords(db: Db): Promise<CompetitionRecord[]> {
  const rows = await db<
    {
      league_id: number;
      season: number;
      name: string | null;
      last_full_sync_at: Date | null;
      last_error: string | null;
      last_error_at: Date | null;
    }[]
  >`SELECT league_id, season, name, last_full_sync_at, last_error, last_error_at FROM scheduler.competitions`;
  return rows.map((r) => ({
    leagueId: r.league_id,
    season: r.season,
    name: r.name,
    lastFullSyncAt: r.last_full_sync_at,
    lastError: r.last_error,
    lastErrorAt: r.last_error_at,
  }));
}

/** Counts for /status and the metrics gauges. */
export async function countByStatus(db: Db): Promise<{
  fixtures: Record<string, number>;
  predictions: Record<string, number>;
}> {
  const fixtures = await db<{ status: string; n: number }[]>`
    SELECT status::text AS status, count(*)::int AS n FROM fixtures GROUP BY status`;
  const predictions = await db<{ status: string; n: number }[]>`
    SELECT prediction_status::text AS status, count(*)::int AS n FROM user_predictions GROUP BY prediction_status`;
  return {
    fixtures: Object.fromEntries(fixtures.map((r) => [r.status, r.n])),
    predictions: Object.fromEntries(predictions.map((r) => [r.status, r.n])),
  };
}

/** Per competition: fixtures in the host table and how many are under way. */
export async function countByCompetition(
  db: Db,
): Promise<{ leagueId: number; season: string; fixtures: number; live: number }[]> {
  const rows = await db.unsafe<{ league_id: number; season: string; fixtures: number; live: number }[]>(
    `SELECT league_id, season, count(*)::int AS fixtures,
            count(*) FILTER (WHERE status::text = ANY($1::text[]))::int AS live
       FROM fixtures WHERE league_id IS NOT NULL GROUP BY league_id, season`,
    [[...UNDER_WAY]],
  );
  return rows.map((r) => ({ leagueId: r.league_id, season: r.season, fixtures: r.fixtures, live: r.live }));
}

// ---------------------------------------------------------------------------------------
// Writes: each runs inside the apply transaction, after elector.fence(tx).

/**
 * Insert new fixtures and update changed ones in one statement. The WHERE guard means a
 * row whose values already match is not touched (last_updated and xmin stay as they are).
 * competition_id is the backend's and never written. Returns the ids actually written.
 */
export async function upsertFixtures(
  tx: TransactionSql,
  writes: readonly FixtureWrite[],
  now: Date,
): Promise<number[]> {
  if (writes.length === 0) return [];
  const v = writes.map((w) => w.values);
  const rows = await tx.unsafe<{ fixture_id: number }[]>(
    `INSERT INTO fixtures AS f (fixture_id, date, status, round, season, home_team, away_team, home_team_logo,
        away_team_logo, home_score, away_score, league, league_id, venue, venue_city, match_timestamp, last_updated)
     SELECT u.id, (u.date::timestamptz AT TIME ZONE 'UTC'), u.status::matchstatus, u.round, u.season, u.home, u.away,
            u.home_logo, u.away_logo, u.home_score, u.away_score, u.league, u.league_id, u.venue, u.venue_city,
            (u.ts::timestamptz AT TIME ZONE 'UTC'), ${toUtc("$17")}
       FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                   $9::text[], $10::int[], $11::int[], $12::text[], $13::int[], $14::text[], $15::text[], $16::text[])
         AS u(id, date, status, round, season, home, away, home_logo, away_logo, home_score, away_score, league,
              league_id, venue, venue_city, ts)
     ON CONFLICT (fixture_id) DO UPDATE SET
       date = EXCLUDED.date, status = EXCLUDED.status, round = EXCLUDED.round, season = EXCLUDED.season,
       home_team = EXCLUDED.home_team, away_team = EXCLUDED.away_team, home_team_logo = EXCLUDED.home_team_logo,
       away_team_logo = EXCLUDED.away_team_logo, home_score = EXCLUDED.home_score, away_score = EXCLUDED.away_score,
       league = EXCLUDED.league, league_id = EXCLUDED.league_id, venue = EXCLUDED.venue,
       venue_city = EXCLUDED.venue_city, match_timestamp = EXCLUDED.match_timestamp,
       last_updated = EXCLUDED.last_updated
     WHERE (f.date, f.status, f.round, f.season, f.home_team, f.away_team, f.home_team_logo, f.away_team_logo,
            f.home_score, f.away_score, f.league, f.league_id, f.venue, f.venue_city, f.match_timestamp)
       IS DISTINCT FROM
           (EXCLUDED.date, EXCLUDED.status, EXCLUDED.round, EXCLUDED.season, EXCLUDED.home_team, EXCLUDED.away_team,
            EXCLUDED.home_team_logo, EXCLUDED.away_team_logo, EXCLUDED.home_score, EXCLUDED.away_score,
            EXCLUDED.league, EXCLUDED.league_id, EXCLUDED.venue, EXCLUDED.venue_city, EXCLUDED.match_timestamp)
     RETURNING f.fixture_id`,
    [
      v.map((r) => r.fixtureId),
      v.map((r) => iso(r.date)),
      v.map((r) => r.status),
      v.map((r) => r.round),
      v.map((r) => r.season),
      v.map((r) => r.homeTeam),
      v.map((r) => r.awayTeam),
      v.map((r) => r.homeLogo),
      v.map((r) => r.awayLogo),
      v.map((r) => r.homeScore),
      v.map((r) => r.awayScore),
      v.map((r) => r.league),
      v.map((r) => r.leagueId),
      v.map((r) => r.venue),
      v.map((r) => r.venueCity),
      v.map((r) => iso(r.matchTimestamp)),
      now.toISOString(),
    ] as never[],
  );
  return rows.map((r) => r.fixture_id);
}

/** The audit trail: what changed, from what, to what, when and by which loop. */
export async function recordFixtureChanges(
  tx: TransactionSql,
  runId: number,
  entries: readonly { fixtureId: number; kind: string; changes: unknown }[],
  clockNow: Date,
): Promise<void> {
  if (entries.length === 0) return;
  await tx.unsafe(
    `INSERT INTO scheduler.fixture_changes (run_id, fixture_id, kind, changes, clock_time)
     SELECT $1, u.id, u.kind, u.changes::jsonb, ${toUtc("$5")}
       FROM unnest($2::int[], $3::text[], $4::text[]) AS u(id, kind, changes)`,
    [
      runId,
      entries.map((e) => e.fixtureId),
      entries.map((e) => e.kind),
      entries.map((e) => JSON.stringify(e.changes)),
      clockNow.toISOString(),
    ] as never[],
  );
}

/** The API's raw status per fixture; written only when it changed. */
export async function upsertFixtureSync(
  tx: TransactionSql,
  entries: readonly { fixtureId: number; leagueId: number; season: number; code: string; known: boolean }[],
  seenAt: Date,
): Promise<void> {
  if (entries.length === 0) return;
  await tx.unsafe(
    `INSERT INTO scheduler.fixture_sync AS s (fixture_id, league_id, season, api_status, unknown_status, last_seen_at)
     SELECT u.id, u.league_id, u.season, u.code, CASE WHEN u.known THEN NULL ELSE u.code END, $6::timestamptz
       FROM unnest($1::int[], $2::int[], $3::int[], $4::text[], $5::bool[]) AS u(id, league_id, season, code, known)
     ON CONFLICT (fixture_id) DO UPDATE SET
       league_id = EXCLUDED.league_id, season = EXCLUDED.season, api_status = EXCLUDED.api_status,
       unknown_status = EXCLUDED.unknown_status, last_seen_at = EXCLUDED.last_seen_at
     WHERE (s.api_status, s.unknown_status, s.league_id, s.season)
       IS DISTINCT FROM (EXCLUDED.api_status, EXCLUDED.unknown_status, EXCLUDED.league_id, EXCLUDED.season)`,
    [
      entries.map((e) => e.fixtureId),
      entries.map((e) => e.leagueId),
      entries.map((e) => e.season),
      entries.map((e) => e.code),
      tx.array(entries.map((e) => e.known)),
      seenAt.toISOString(),
    ] as never[],
  );
}

/**
 * SUBMITTED → LOCKED for fixtures that kicked off (by the clock) or are reported under
 * way, never for one postponed or cancelled. The conditions are checked again here
 * against the row as it is now, not as it was when planned.
 */
export async function lockPredictions(
  tx: TransactionSql,
  fixtureIds: readonly number[],
  now: Date,
): Promise<{ fixtureId: number; locked: number }[]> {
  if (fixtureIds.length === 0) return [];
  const rows = await tx.unsafe<{ fixture_id: number; n: number }[]>(
    `WITH locked AS (
       UPDATE user_predictions p SET prediction_status = 'LOCKED'
         FROM fixtures f
        WHERE p.fixture_id = f.fixture_id
          AND p.fixture_id = ANY($1::int[])
          AND p.prediction_status = 'SUBMITTED'
          AND f.status NOT IN ('POSTPONED', 'CANCELLED')
          AND (f.date <= ${toUtc("$2")} OR f.status <> 'NOT_STARTED')
       RETURNING p.fixture_id)
     SELECT fixture_id, count(*)::int AS n FROM locked GROUP BY fixture_id`,
    [[...fixtureIds], now.toISOString()] as never[],
  );
  return rows.map((r) => ({ fixtureId: r.fixture_id, locked: r.n }));
}

/**
 * LOCKED → PROCESSED with points, and after a correction PROCESSED predictions whose points
 * no longer match are scored again. Only while the fixture row still holds the result the
 * plan scored against. The CASE mirrors plan.ts `pointsFor`.
 */
export async function scorePredictions(
  tx: TransactionSql,
  scores: readonly ScoreAction[],
  points: Points,
  now: Date,
): Promise<{ fixtureId: number; scored: number }[]> {
  if (scores.length === 0) return [];
  const rows = await tx.unsafe<{ fixture_id: number; n: number }[]>(
    `WITH r AS (
       SELECT * FROM unnest($1::int[], $2::int[], $3::int[], $4::bool[]) AS r(fixture_id, home, away, rescore)
     ), computed AS (
       SELECT p.id, CASE
                WHEN p.score1 = r.home AND p.score2 = r.away THEN $5::int
                WHEN sign(p.score1 - p.score2) = sign(r.home - r.away) THEN $6::int
                ELSE 0 END AS points
         FROM user_predictions p
         JOIN r ON r.fixture_id = p.fixture_id
         JOIN fixtures f ON f.fixture_id = p.fixture_id
        WHERE f.status::text = ANY($8::text[]) AND f.home_score = r.home AND f.away_score = r.away
          AND (p.prediction_status = 'LOCKED' OR (r.rescore AND p.prediction_status = 'PROCESSED'))
     ), scored AS (
       UPDATE user_predictions p
          SET prediction_status = 'PROCESSED', points = c.points, processed_at = ${toUtc("$7")}
         FROM computed c
        WHERE p.id = c.id
          AND (p.prediction_status = 'LOCKED' OR p.points IS DISTINCT FROM c.points)
       RETURNING p.fixture_id)
     SELECT fixture_id, count(*)::int AS n FROM scored GROUP BY fixture_id`,
    [
      scores.map((s) => s.fixtureId),
      scores.map((s) => s.home),
      scores.map((s) => s.away),
      tx.array(scores.map((s) => s.rescore)),
      points.exact,
      points.outcome,
      now.toISOString(),
      [...SCORABLE],
    ] as never[],
  );
  return rows.map((r) => ({ fixtureId: r.fixture_id, scored: r.n }));
}

export async function recordCompetitionSyncs(
  tx: TransactionSql,
  syncs: readonly { leagueId: number; season: number; name: string | null }[],
  at: Date,
): Promise<void> {
  if (syncs.length === 0) return;
  await tx.unsafe(
    `INSERT INTO scheduler.competitions AS c (league_id, season, name, last_full_sync_at, last_error, last_error_at)
     SELECT u.league_id, u.season, u.name, $4::timestamptz, NULL, NULL
       FROM unnest($1::int[], $2::int[], $3::text[]) AS u(league_id, season, name)
     ON CONFLICT (league_id, season) DO UPDATE SET
       name = coalesce(EXCLUDED.name, c.name), last_full_sync_at = EXCLUDED.last_full_sync_at,
       last_error = NULL, last_error_at = NULL`,
    [
      syncs.map((s) => s.leagueId),
      syncs.map((s) => s.season),
      syncs.map((s) => s.name),
      at.toISOString(),
    ] as never[],
  );
}

export async function recordCompetitionErrors(
  tx: TransactionSql,
  errors: readonly { leagueId: number; season: number; message: string }[],
  at: Date,
): Promise<void> {
  if (errors.length === 0) return;
  await tx.unsafe(
    `INSERT INTO scheduler.competitions AS c (league_id, season, last_error, last_error_at)
     SELECT u.league_id, u.season, u.message, $4::timestamptz
       FROM unnest($1::int[], $2::int[], $3::text[]) AS u(league_id, season, message)
     ON CONFLICT (league_id, season) DO UPDATE SET last_error = EXCLUDED.last_error, last_error_at = EXCLUDED.last_error_at
     WHERE c.last_error IS DISTINCT FROM EXCLUDED.last_error`,
    [
      errors.map((e) => e.leagueId),
      errors.map((e) => e.season),
      errors.map((e) => e.message),
      at.toISOString(),
    ] as never[],
  );
}

export async function insertReconcileRun(
  tx: TransactionSql,
  run: { startedAt: Date; holder: string; epoch: number | null; result: string; summary: unknown },
): Promise<number> {
  const [row] = await tx<{ id: string }[]>`
    INSERT INTO scheduler.reconcile_runs (started_at, finished_at, holder, epoch, result, summary)
    VALUES (${run.startedAt}, now(), ${run.holder}, ${run.epoch}, ${run.result}, ${JSON.stringify(run.summary)}::jsonb)
    RETURNING id`;
  return Number(row!.id);
}

export async function notifyEvents(tx: TransactionSql, payload: unknown): Promise<void> {
  await tx`SELECT pg_notify('scheduler_events', ${JSON.stringify(payload)})`;
}

/** API calls counted per UTC day, so the daily budget survives a restart. */
export async function addApiUsage(db: Db, day: string, calls: number): Promise<void> {
  await db`
    INSERT INTO scheduler.api_usage (day, calls) VALUES (${day}::date, ${calls})
    ON CONFLICT (day) DO UPDATE SET calls = scheduler.api_usage.calls + EXCLUDED.calls`;
}

export async function apiUsage(db: Db, day: string): Promise<number> {
  const [row] = await db<{ calls: number }[]>`SELECT calls FROM scheduler.api_usage WHERE day = ${day}::date`;
  return row?.calls ?? 0;
}

// ---------------------------------------------------------------------------------------
// Management API

export async function fixtureExists(db: Db, fixtureId: number): Promise<boolean> {
  const rows = await db`SELECT 1 FROM fixtures WHERE fixture_id = ${fixtureId}`;
  return rows.length > 0;
}

export async function fixtureHistory(db: Db, fixtureId: number, limit = 500): Promise<unknown[]> {
  const rows = await db`
    SELECT c.id, c.run_id, c.changed_at, c.clock_time, c.kind, c.changes, r.holder, r.epoch
      FROM scheduler.fixture_changes c LEFT JOIN scheduler.reconcile_runs r ON r.id = c.run_id
     WHERE c.fixture_id = ${fixtureId}
     ORDER BY c.id DESC LIMIT ${limit}`;
  return [...rows];
}

export async function setOverride(
  tx: TransactionSql,
  pin: Override & { reason: string | null },
): Promise<void> {
  await tx`
    INSERT INTO scheduler.fixture_overrides (fixture_id, status, home_score, away_score, reason)
    VALUES (${pin.fixtureId}, ${pin.status}::matchstatus, ${pin.homeScore}, ${pin.awayScore}, ${pin.reason})
    ON CONFLICT (fixture_id) DO UPDATE SET status = EXCLUDED.status, home_score = EXCLUDED.home_score,
      away_score = EXCLUDED.away_score, reason = EXCLUDED.reason, created_at = now()`;
}

export async function removeOverride(tx: TransactionSql, fixtureId: number): Promise<boolean> {
  const rows =
    await tx`DELETE FROM scheduler.fixture_overrides WHERE fixture_id = ${fixtureId} RETURNING fixture_id`;
  return rows.length > 0;
}
