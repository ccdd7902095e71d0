/**
 * Issue 8's season replay figures: the same replay as test/season-replay.test.ts (three leagues,
 * 1,066 fixtures, 2,000 users × 24 predictions, free plan 100 calls a day, real loops jumping
 * from one live window to the next), with its outcome checked and its cost reported.
 */
import { startHarness } from "../test/support/harness.js";
import {
  callStats,
  checkOutcome,
  liveWindows,
  REPLAY,
  replayWindows,
  seedSeason,
  settle,
} from "../test/support/replay.js";
import { type Figure, progress, round, type Section } from "./common.js";

const MIN = 60_000;

export async function benchSeason(): Promise<Section> {
  const t0 = performance.now();
  const speed = Number(process.env.REPLAY_SPEED ?? 60_000);
  const liveMs = Number(process.env.REPLAY_LIVE_INTERVAL_SECONDS ?? 1800) * 1000;
  const h = await startHarness({
    label: "bench_season",
    leagues: [...REPLAY.leagues],
    speed,
    dailyBudget: REPLAY.dailyBudget,
    dailyReserve: REPLAY.dailyReserve,
    callsPerMinute: REPLAY.callsPerMinute,
    faults: { dayLimit: REPLAY.dailyBudget, minuteLimit: REPLAY.callsPerMinute },
    intervalsMs: { live_matches: liveMs },
  });
  try {
    const fixtures = h.simulator.fixtures();
    const windows = liveWindows(fixtures);
    h.clock.set(new Date(windows[0]!.start - 24 * 60 * MIN));
    const first = await h.reconciler.reconcileOnce({ useApi: true });
    if (first.result !== "success") throw new Error(`initial sync failed: ${first.error}`);
    const seeds = await seedSeason(h.sql, fixtures, 2_000, 24);
    progress(
      `season: ${fixtures.length} fixtures, ${seeds.length} predictions, ${windows.length} windows at ${speed}×`,
    );
    const run = await replayWindows(h, windows, {
      onWindow: () => {
        h.logLines.length = 0;
      },
    });
    h.clock.set(new Date(windows.at(-1)!.end + 60 * MIN));
    h.reconciler.poke();
    await settle(async () => {
      const [open] = await h.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM user_predictions p JOIN fixtures f USING (fixture_id)
         WHERE p.prediction_status IN ('SUBMITTED', 'LOCKED') AND f.status <> 'TECHNICAL_LOSS'`;
      return open?.n === 0;
    }, 30_000);
    await run.stop();
    const outcome = await checkOutcome(h.sql, fixtures, seeds, h.clock.now(), REPLAY.points);
    const calls = callStats(h, windows, liveMs);
    const figures: Figure[] = [
      {
        name: "replay duration (real)",
        value: round(run.realMs / 1000),
        unit: "s",
        note: `${round(run.clockRunMs / 3_600_000, 0)} clock hours run, the rest jumped`,
      },
      {
        name: "API calls used",
        value: calls.total,
        unit: "calls",
        note: `season ${calls.byKind.season}, live ${calls.byKind.live}, ids ${calls.byKind.ids}`,
      },
      {
        name: "lower bound",
        value: calls.lowerBound.total,
        unit: "calls",
        note: `season ${calls.lowerBound.season} (3 per day run) + live ${calls.lowerBound.live} (one per ${liveMs / MIN} min live)`,
      },
      {
        name: "busiest day",
        value: calls.maxPerDay,
        unit: `calls (quota ${REPLAY.dailyBudget})`,
        note: `${calls.busiestDay}; quota errors: ${JSON.stringify(calls.errors)}`,
      },
      {
        name: "outcome problems",
        value: outcome.problemCount,
        unit: "",
        note: `${outcome.processed} PROCESSED with reference points, ${outcome.lockedOnly} LOCKED (awarded), ${outcome.editable} EDITABLE untouched`,
      },
    ];
    return {
      topic: "Season replay",
      setup: `${fixtures.length} fixtures (leagues 39, 140, 78), ${seeds.length} predictions, free plan (100/day), live interval ${liveMs / MIN} min, clock ${speed}×`,
      figures,
      durationMs: performance.now() - t0,
    };
  } finally {
    await h.close();
  }
}
