/**
 * Issue 4's benchmark: sync 3 full leagues (1,066 fixtures) with ~100k predictions.
 *
 * Each run starts from the same state in a fresh database: the three seasons inserted while
 * nothing had kicked off, then ~100k SUBMITTED predictions; the clock then jumps past the end
 * of the season, so one sync turns every fixture FINISHED and locks and scores every
 * prediction. Measured side by side:
 * - the product's set-based apply (queries.ts: unnest + IS DISTINCT FROM, one statement per kind),
 * - a per-row baseline written here: one INSERT … ON CONFLICT per fixture (and per sync row),
 *   one UPDATE per prediction (straight to PROCESSED with its points), in one transaction,
 * - the whole `reconcileOnce({useApi: true})` (three season calls, plan, set-based apply).
 * Both applies get the same plan; the end states are compared.
 */

import { applyPlan } from "../controller/apply.js";
import type { Sql } from "../controller/database.js";
import { createNoElector } from "../controller/elector.js";
import {
  type ApiAnswer,
  LAGGING_WINDOW_MS,
  type Plan,
  plan,
  pointsFor,
  UPCOMING_MS,
} from "../controller/plan.js";
import * as q from "../controller/queries.js";
import { type Harness, startHarness } from "../test/support/harness.js";
import { liveWindows, seedSeason } from "../test/support/replay.js";
import { type Figure, progress, round, type Section, timed } from "./common.js";

const LEAGUES = [39, 140, 78];
const POINTS = { exact: 3, outcome: 1 };

async function prepared(label: string, users: number): Promise<Harness> {
  const h = await startHarness({
    label,
    leagues: LEAGUES,
    speed: 1,
    faults: { minuteLimit: null, dayLimit: null },
  });
  const windows = liveWindows(h.simulator.fixtures());
  h.clock.set(new Date(windows[0]!.start - 86_400_000));
  const first = await h.reconciler.reconcileOnce({ useApi: true });
  if (first.result !== "success") throw new Error(`initial sync failed: ${first.error}`);
  const fixtures = h.simulator.fixtures();
  await seedSeason(h.sql, fixtures, users, fixtures.length);
  await h.sql`UPDATE user_predictions SET prediction_status = 'SUBMITTED'`;
  await h.sql`VACUUM ANALYZE user_predictions`;
  h.clock.set(new Date(windows.at(-1)!.end + 3_600_000));
  return h;
}

/** The plan the reconciler makes for the season answers, as its first fetch round would. */
async function seasonPlan(h: Harness): Promise<{ plan: Plan; now: Date }> {
  const now = h.clock.now();
  const answers: ApiAnswer[] = [];
  for (const c of h.competitions) {
    const answer = await h.client.fixturesBySeason(c.leagueId, c.season);
    answers.push({ call: { kind: "season", ...c }, fixtures: answer.fixtures });
  }
  const ids = answers.flatMap((a) => a.fixtures.map((f) => f.fixtureId));
  const fixtures = await q.loadActiveFixtures(
    h.sql,
    now,
    { before: LAGGING_WINDOW_MS, after: UPCOMING_MS },
    ids,
  );
  const desired = {
    competitions: h.competitions.map((c) => ({ ...c, lastFullSyncAt: now, resyncRequested: false })),
    fixtures,
    overrides: new Map(),
    apiDue: true,
    fullSyncIntervalMs: 86_400_000,
    points: POINTS,
  };
  return { plan: plan(desired, { answers }, now), now };
}

/** The product's apply (apply.ts: one transaction, fenced, audited), as the reconciler runs it. */
async function applySetBased(sql: Sql, p: Plan, now: Date) {
  const applied = await applyPlan(
    { sql, elector: createNoElector("bench", "bench"), points: POINTS, identity: "bench" },
    p,
    [],
    now,
    now,
  );
  return {
    fixtures: applied.fixturesWritten,
    predictions: applied.predictionsScored,
    locked: applied.predictionsLocked,
  };
}

/** The baseline: what an ORM loop does, one statement per row. */
async function applyPerRow(sql: Sql, p: Plan, now: Date) {
  return await sql.begin(async (tx) => {
    let statements = 0;
    let fixtures = 0;
    for (const w of p.fixtureWrites) {
      const v = w.values;
      const rows = await tx`
        INSERT INTO fixtures AS f (fixture_id, date, status, round, season, home_team, away_team, home_team_logo,
            away_team_logo, home_score, away_score, league, league_id, venue, venue_city, match_timestamp, last_updated)
        VALUES (${v.fixtureId}, (${v.date.toISOString()}::timestamptz AT TIME ZONE 'UTC'), ${v.status}::matchstatus,
            ${v.round}, ${v.season}, ${v.homeTeam}, ${v.awayTeam}, ${v.homeLogo}, ${v.awayLogo}, ${v.homeScore},
            ${v.awayScore}, ${v.league}, ${v.leagueId}, ${v.venue}, ${v.venueCity},
            (${v.matchTimestamp?.toISOString() ?? null}::timestamptz AT TIME ZONE 'UTC'),
            (${now.toISOString()}::timestamptz AT TIME ZONE 'UTC'))
        ON CONFLICT (fixture_id) DO UPDATE SET date = EXCLUDED.date, status = EXCLUDED.status,
          home_score = EXCLUDED.home_score, away_score = EXCLUDED.away_score, round = EXCLUDED.round,
          match_timestamp = EXCLUDED.match_timestamp, last_updated = EXCLUDED.last_updated
        WHERE (f.date, f.status, f.round, f.home_score, f.away_score, f.match_timestamp)
          IS DISTINCT FROM (EXCLUDED.date, EXCLUDED.status, EXCLUDED.round, EXCLUDED.home_score,
                            EXCLUDED.away_score, EXCLUDED.match_timestamp)
        RETURNING fixture_id`;
      statements++;
      fixtures += rows.length;
    }
    for (const s of p.apiStatuses) {
      await tx`
        INSERT INTO scheduler.fixture_sync AS s (fixture_id, league_id, season, api_status, last_seen_at)
        VALUES (${s.fixtureId}, ${s.leagueId}, ${s.season}, ${s.code}, ${now.toISOString()}::timestamptz)
        ON CONFLICT (fixture_id) DO UPDATE SET api_status = EXCLUDED.api_status, last_seen_at = EXCLUDED.last_seen_at
        WHERE s.api_status IS DISTINCT FROM EXCLUDED.api_status`;
      statements++;
    }
    let predictions = 0;
    for (const s of p.scores) {
      const open = await tx<{ id: number; score1: number; score2: number }[]>`
        SELECT id, score1, score2 FROM user_predictions
         WHERE fixture_id = ${s.fixtureId} AND prediction_status IN ('SUBMITTED', 'LOCKED')`;
      statements++;
      for (const r of open) {
        const points = pointsFor({ home: r.score1, away: r.score2 }, { home: s.home, away: s.away }, POINTS);
        await tx`
          UPDATE user_predictions SET prediction_status = 'PROCESSED', points = ${points},
                 processed_at = (${now.toISOString()}::timestamptz AT TIME ZONE 'UTC')
           WHERE id = ${r.id}`;
        statements++;
        predictions++;
      }
    }
    return { statements, fixtures, predictions, locked: predictions };
  });
}

async function endState(sql: Sql): Promise<string> {
  const [r] = await sql<{ s: string }[]>`
    SELECT count(*) FILTER (WHERE prediction_status = 'PROCESSED') || '/' || sum(points) || '/' ||
           (SELECT count(*) FROM fixtures WHERE status = 'FINISHED') AS s FROM user_predictions`;
  return r!.s;
}

export async function benchReconcile(): Promise<Section> {
  const t0 = performance.now();
  const users = Number(process.env.BENCH_USERS ?? 94); // × 1,066 fixtures ≈ 100k predictions
  const figures: Figure[] = [];
  const harnesses: Harness[] = [];
  try {
    progress("reconcile: preparing three databases (3 leagues, ~100k predictions each)");
    const [a, b, c] = await Promise.all(
      ["set", "row", "e2e"].map((l) => prepared(`bench_reconcile_${l}`, users)),
    );
    harnesses.push(a!, b!, c!);
    const [{ n: predictions }] = (await a!
      .sql`SELECT count(*)::int AS n FROM user_predictions`) as unknown as [{ n: number }];
    const pa = await seasonPlan(a!);
    const pb = await seasonPlan(b!);
    progress(
      `reconcile: plan of ${pa.plan.fixtureWrites.length} fixture writes, ${pa.plan.scores.length} scores`,
    );
    const set = await timed(() => applySetBased(a!.sql, pa.plan, pa.now));
    progress(`reconcile: set-based apply ${round(set.ms)} ms; per-row baseline running`);
    const row = await timed(() => applyPerRow(b!.sql, pb.plan, pb.now));
    const same = (await endState(a!.sql)) === (await endState(b!.sql));
    const e2e = await timed(() => c!.reconciler.reconcileOnce({ useApi: true }));
    if (e2e.value.result !== "success") throw new Error(`reconcileOnce failed: ${e2e.value.error}`);
    const idle = await timed(() => c!.reconciler.reconcileOnce({ useApi: false }));
    figures.push(
      {
        name: "apply, set-based (product)",
        value: round(set.ms, 0),
        unit: "ms",
        note: `one transaction of set-based statements (apply.ts, audit and NOTIFY included): ${set.value.fixtures} fixtures, ${set.value.predictions} predictions locked+scored`,
      },
      {
        name: "apply, per-row baseline",
        value: round(row.ms, 0),
        unit: "ms",
        note: `${row.value.statements} statements: ${row.value.fixtures} fixtures, ${row.value.predictions} predictions; same end state: ${same}`,
      },
      { name: "speed-up, set-based vs per-row", value: round(row.ms / set.ms, 1), unit: "×" },
      {
        name: "reconcileOnce (3 season calls + plan + apply)",
        value: round(e2e.ms, 0),
        unit: "ms",
        note: `${e2e.value.actions.fixturesWritten} fixtures, ${e2e.value.actions.predictionsScored} predictions scored, ${e2e.value.apiCalls} API calls`,
      },
      { name: "idle sweep after it (nothing to do)", value: round(idle.ms, 1), unit: "ms" },
    );
    if (!same) throw new Error("set-based and per-row applies ended in different states");
    return {
      topic: "Reconciler: sync of 3 full leagues",
      setup: `${pa.plan.fixtureWrites.length} fixtures, ${predictions} predictions (SUBMITTED → PROCESSED), fresh PostgreSQL database per variant`,
      figures,
      durationMs: performance.now() - t0,
    };
  } finally {
    for (const h of harnesses) await h.close();
  }
}
