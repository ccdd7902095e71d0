/**
 * A whole season of three leagues (Premier League, La Liga, Bundesliga: 1,066 fixtures) replayed
 * on real PostgreSQL and the simulator over HTTP, with the reconciler's real loops, tens of
 * thousands of predictions and API-Football's free plan (100 calls a day). The clock jumps from
 * one live window to the next and runs fast through each, so ~9 months of clock time take about
 * a minute. Figures (calls used against the lower bound) are printed; `npm run bench` records them.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { SimFixture } from "../controller/simulator/index.js";
import { type Harness, startHarness } from "./support/harness.js";
import {
  type CallStats,
  callStats,
  checkOutcome,
  type LiveWindow,
  liveWindows,
  type Outcome,
  percentile,
  REPLAY,
  type ReplayRun,
  replayWindows,
  type Seed,
  seedSeason,
  settle,
} from "./support/replay.js";

const MIN = 60_000;
const SPEED = Number(process.env.REPLAY_SPEED ?? 60_000);
const LIVE_INTERVAL_MS = Number(process.env.REPLAY_LIVE_INTERVAL_SECONDS ?? 1800) * 1000;
const USERS = 2_000;
const PER_USER = 24;

describe("a season of three leagues, replayed on the free plan", () => {
  let h: Harness;
  let fixtures: SimFixture[];
  let windows: LiveWindow[];
  let seeds: Seed[];
  let run: ReplayRun;
  let stopLoops: (() => Promise<void>) | undefined;
  let calls: CallStats;
  let outcome: Outcome;
  const problems: string[] = [];
  const stretchedLiveMs: number[] = [];

  before(async () => {
    h = await startHarness({
      label: "season_replay",
      leagues: [...REPLAY.leagues],
      speed: SPEED,
      dailyBudget: REPLAY.dailyBudget,
      dailyReserve: REPLAY.dailyReserve,
      callsPerMinute: REPLAY.callsPerMinute,
      // The simulator enforces the same plan: a call past it would show as an error.
      faults: { dayLimit: REPLAY.dailyBudget, minuteLimit: REPLAY.callsPerMinute },
      intervalsMs: { live_matches: LIVE_INTERVAL_MS },
    });
    fixtures = h.simulator.fixtures();
    windows = liveWindows(fixtures);
    // A day before the first kick-off of the season.
    h.clock.set(new Date(windows[0]!.start - 24 * 60 * MIN));
  });

  after(async () => {
    await stopLoops?.();
    await h?.close();
  });

  test("the initial sync inserts the three seasons with three calls", async () => {
    assert.equal(fixtures.length > 1_000, true, `${fixtures.length} fixtures served`);
    const result = await h.reconciler.reconcileOnce({ useApi: true });
    assert.equal(result.result, "success", result.error ?? "initial sync failed");
    assert.equal(result.apiCalls, 3, "one season call per competition");
    const [row] = await h.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM fixtures`;
    assert.equal(row?.n, fixtures.length, "every fixture of the three seasons inserted");
  });

  test("thousands of users predict fixtures across the season", async () => {
    seeds = await seedSeason(h.sql, fixtures, USERS, PER_USER);
    const editable = seeds.filter((s) => s.status === "EDITABLE").length;
    assert.equal(seeds.length, USERS * PER_USER, "every prediction seeded");
    assert.ok(editable > 1_000 && editable < seeds.length / 5, `${editable} EDITABLE of ${seeds.length}`);
    const covered = new Set(seeds.map((s) => s.fixtureId)).size;
    assert.equal(covered, fixtures.length, "every fixture has predictions");
  });

  test("the real loops run through every live window of the season", async () => {
    const replay = await replayWindows(h, windows, {
      onWindow: () => {
        // Keep memory flat (the harness logs at debug level), but keep every warning and error.
        for (const line of h.logLines) {
          if (/"level":(40|50|60)/.test(line)) problems.push(line);
          const stretched = /"mode":"live_matches".*"intervalMs":(\d+).*interval stretched/.exec(line);
          if (stretched) stretchedLiveMs.push(Number(stretched[1]));
        }
        h.logLines.length = 0;
      },
    });
    stopLoops = replay.stop;
    run = replay;
    // After the last final whistle: everything finished is scored (results may trail by a loop).
    const lastEnd = windows.at(-1)!.end;
    if (h.clock.now().getTime() < lastEnd + 60 * MIN) h.clock.set(new Date(lastEnd + 60 * MIN));
    h.reconciler.poke();
    const settled = await settle(async () => {
      const [open] = await h.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM user_predictions p JOIN fixtures f USING (fixture_id)
         WHERE p.prediction_status IN ('SUBMITTED', 'LOCKED') AND f.status <> 'TECHNICAL_LOSS'`;
      return open?.n === 0;
    }, 30_000);
    await stopLoops();
    stopLoops = undefined;
    assert.ok(settled, `open predictions left after the season: ${h.logLines.slice(-10).join("")}`);
    assert.ok(run.windows === windows.length, "every window replayed");
    console.log(`warnings and errors: ${problems.length}\n${problems.slice(0, 20).join("")}`);
  });

  test("every prediction has the state and points the reference computation gives", async () => {
    outcome = await checkOutcome(h.sql, fixtures, seeds, h.clock.now(), REPLAY.points);
    assert.deepEqual(outcome.problems, [], `${outcome.problemCount} problems`);
    assert.equal(outcome.predictions, seeds.length, "every seeded prediction checked");
    assert.ok(outcome.processed > 30_000, `${outcome.processed} processed`);
  });

  test("API calls stay within the free plan's quota every day", () => {
    calls = callStats(h, windows, LIVE_INTERVAL_MS);
    assert.deepEqual(calls.errors, {}, "no call answered with a quota, rate-limit or key error");
    const over = [...calls.perDay].filter(([, n]) => n > REPLAY.dailyBudget);
    assert.deepEqual(over, [], `days over ${REPLAY.dailyBudget} calls`);
    assert.ok(calls.byKind.season >= 3, "season syncs made");
    assert.ok(calls.byKind.live > 0, "live calls made");
    const lock = outcome.lockDelaysMs;
    console.log(
      `season replay: ${fixtures.length} fixtures, ${seeds.length} predictions, ${windows.length} live windows, ` +
        `${(run.realMs / 1000).toFixed(1)} s real for ${(run.clockRunMs / 3_600_000).toFixed(0)} h of clock run at ${SPEED}x; ` +
        `API calls ${calls.total} (season ${calls.byKind.season}, live ${calls.byKind.live}, ids ${calls.byKind.ids}) ` +
        `vs lower bound ${calls.lowerBound.total} (season ${calls.lowerBound.season}, live ${calls.lowerBound.live} at ${LIVE_INTERVAL_MS / MIN} min); ` +
        `live interval stretched for the quota ${stretchedLiveMs.length} times (median ${percentile(stretchedLiveMs, 50) / MIN} min); ` +
        `busiest day ${calls.busiestDay} ${calls.maxPerDay}/${REPLAY.dailyBudget}; ` +
        `lock delay (clock) p50 ${percentile(lock, 50) / 1000} s, max ${Math.max(...lock) / 1000} s (${JSON.stringify(outcome.worstLock)}), ` +
        `${outcome.lockedOnApiWord} locked on the API's word; audit: ${outcome.scoreChanges} score + ${outcome.rescoreChanges} rescore entries`,
    );
  });
});
