/**
 * Issue 4's API figure: one busy match day of three leagues replayed with the real loops at a
 * clock speed the loops can honour (the 60 s live interval is 40 ms of real time), on a quota
 * that does not bind (Pro plan, 7,500 a day), so the calls made show the planner's own cost:
 * calls used versus the lower bound of one live call per live interval while any match is live
 * (plus the day's season sync per competition).
 */
import { startHarness } from "../test/support/harness.js";
import { callStats, liveWindows, replayWindows } from "../test/support/replay.js";
import { type Figure, progress, round, type Section } from "./common.js";

const MIN = 60_000;

export async function benchMatchDay(): Promise<Section> {
  const t0 = performance.now();
  const speed = Number(process.env.BENCH_MATCHDAY_SPEED ?? 1500);
  const liveMs = 60_000;
  const h = await startHarness({
    label: "bench_matchday",
    leagues: [39, 140, 78],
    speed,
    dailyBudget: 7500,
    dailyReserve: 10,
    callsPerMinute: 300,
    intervalsMs: { live_matches: liveMs },
  });
  try {
    const fixtures = h.simulator.fixtures();
    // The UTC day (after the anchor) on which the most fixtures of all three leagues are played.
    const byDay = new Map<string, number>();
    for (const f of fixtures)
      if (f.kickoff > h.clock.now()) {
        const d = f.kickoff.toISOString().slice(0, 10);
        byDay.set(d, (byDay.get(d) ?? 0) + 1);
      }
    const day = [...byDay].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0];
    const dayFixtures = fixtures.filter((f) => f.kickoff.toISOString().slice(0, 10) === day);
    const windows = liveWindows(dayFixtures);
    // The day's first sync (three season calls) happens before the measured stretch.
    h.clock.set(new Date(windows[0]!.start - 150 * MIN));
    await h.reconciler.reconcileOnce({ useApi: true });
    h.simulator.clearLog();
    progress(
      `matchday: ${day}, ${dayFixtures.length} fixtures, ${windows.length} live windows, clock ${speed}×`,
    );
    // One stretch from two hours before the first kick-off to 30 min after the last whistle.
    const span = [{ start: windows[0]!.start, end: windows.at(-1)!.end, fixtures: dayFixtures.length }];
    const run = await replayWindows(h, span, { beforeMs: 120 * MIN, afterMs: 30 * MIN });
    await run.stop();
    const calls = callStats(h, windows, liveMs, { beforeMs: 0, afterMs: 0 });
    const liveMinutes = windows.reduce((n, w) => n + (w.end - w.start) / MIN, 0);
    const [open] = await h.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM fixtures WHERE fixture_id = ANY(${dayFixtures.map((f) => f.fixtureId)})
         AND status NOT IN ('FINISHED', 'FINISHED_AET', 'FINISHED_PEN', 'TECHNICAL_LOSS')`;
    const figures: Figure[] = [
      {
        name: "API calls used",
        value: calls.total,
        unit: "calls",
        note: `live ${calls.byKind.live}, ids ${calls.byKind.ids}, season ${calls.byKind.season}`,
      },
      {
        name: "lower bound (one live call per live minute)",
        value: calls.lowerBound.live,
        unit: "calls",
        note: `${round(liveMinutes, 0)} live minutes in ${windows.length} windows`,
      },
      { name: "used / lower bound", value: round(calls.total / calls.lowerBound.live, 2), unit: "×" },
      { name: "fixtures not final at the end", value: open?.n ?? -1, unit: "fixtures" },
    ];
    return {
      topic: "Reconciler: API calls over a match day",
      setup: `${day}: ${dayFixtures.length} fixtures of 3 leagues; live interval 60 s, clock ${speed}× (real loops), Pro plan quota; ${round(run.realMs / 1000)} s real`,
      figures,
      durationMs: performance.now() - t0,
    };
  } finally {
    await h.close();
  }
}
