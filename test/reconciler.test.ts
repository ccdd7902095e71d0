/**
 * The reconciler end to end: a real league round, time-shifted, on real PostgreSQL and
 * the simulator over HTTP, with a fast clock that slows down around the moments measured.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { pointsFor } from "../controller/plan.js";
import type { SimFixture } from "../controller/simulator/index.js";
import {
  ANCHOR,
  type Harness,
  pickRound,
  type SeededPrediction,
  seedPredictions,
  seedUsers,
  startHarness,
} from "./support/harness.js";
import { waitFor } from "./support/wait.js";

const MIN = 60_000;
const final = (f: SimFixture) => f.et ?? f.ft;

async function predictionRows(h: Harness, fixtureIds: number[]) {
  return await h.sql<
    {
      id: number;
      fixture_id: number;
      score1: number;
      score2: number;
      points: number;
      prediction_status: string;
      processed_at: Date | null;
    }[]
  >`SELECT id, fixture_id, score1, score2, points, prediction_status::text, processed_at
      FROM user_predictions WHERE fixture_id = ANY(${fixtureIds}) ORDER BY id`;
}

async function fixtureRow(h: Harness, id: number) {
  const [row] = await h.sql<{ status: string; home_score: number | null; away_score: number | null }[]>`
    SELECT status::text, home_score, away_score FROM fixtures WHERE fixture_id = ${id}`;
  return row;
}

describe("a round of the Premier League, kick-off to final whistle", () => {
  let h: Harness;
  let round: SimFixture[];
  let seeded: SeededPrediction[];
  let stop: () => Promise<void>;
  const lockDelaysMs: number[] = [];
  let postponed: SimFixture;
  let unknown: SimFixture;
  let corrected: SimFixture;
  let apiDownAtKickoff: SimFixture;
  let pastFinished: SimFixture;

  before(async () => {
    h = await startHarness({ label: "reconciler_e2e", leagues: [39], speed: 600 });
    round = pickRound(h.simulator.fixtures(), 39, ANCHOR);
    // Distinct roles for distinct fixtures of the round.
    const kickoffs = [...new Set(round.map((f) => f.kickoff.getTime()))].sort((a, b) => a - b);
    const first = round.filter((f) => f.kickoff.getTime() === kickoffs[0]);
    const second = round.filter((f) => f.kickoff.getTime() === kickoffs[1]);
    assert.ok(first.length >= 1 && second.length >= 3, "the match day has the expected shape");
    apiDownAtKickoff = second[0]!;
    unknown = second[1]!;
    postponed = second[2]!;
    corrected = round[round.length - 1]!;
    // Slack before the first kick-off, so slow set-up on a busy machine cannot eat into it.
    h.clock.set(new Date(kickoffs[0]! - 120 * MIN));
    pastFinished = h.simulator
      .fixtures()
      .filter(
        (f) => f.leagueId === 39 && f.kickoff.getTime() < kickoffs[0]! - 3 * 24 * 60 * MIN && !f.synthetic,
      )
      .at(-1)!;
  });

  after(async () => {
    await stop?.();
    await h?.close();
  });

  test("the initial sync inserts the whole season with one API call", async () => {
    const result = await h.reconciler.reconcileOnce({ useApi: true });
    assert.equal(result.result, "success", result.error ?? "");
    const calls = h.simulator.requestLog().filter((r) => r.path === "/fixtures");
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.query.league, "39");
    const [{ n }] =
      (await h.sql`SELECT count(*)::int AS n FROM fixtures WHERE league_id = 39`) as unknown as [
        { n: number },
      ];
    assert.equal(n, h.simulator.fixtures().filter((f) => f.leagueId === 39).length);
    const [row] = await h.sql<
      { league: string; season: string; home_team_logo: string | null; venue: string | null; round: string }[]
    >`
      SELECT league, season, home_team_logo, venue, round FROM fixtures WHERE fixture_id = ${round[0]!.fixtureId}`;
    assert.equal(row?.league, "Premier League");
    assert.equal(row?.season, String(round[0]!.season));
    assert.ok(row?.home_team_logo, "logo stored");
    assert.ok(row?.round, "round stored");
  });

  test("predictions are seeded for the round and for a fixture already final", async () => {
    const users = await seedUsers(h.sql, 30);
    seeded = await seedPredictions(h.sql, users, round, { editableEvery: 5 });
    // Locked predictions of a fixture that finished while no scheduler ran: the sweep scores them.
    seeded.push(...(await seedPredictions(h.sql, users.slice(0, 6), [pastFinished], { status: "LOCKED" })));
    assert.ok(
      seeded.some((p) => p.status === "EDITABLE"),
      "some EDITABLE seeded",
    );
    assert.ok(seeded.filter((p) => p.status === "SUBMITTED").length > 100, "enough SUBMITTED seeded");
  });

  test("the round plays out: locks by kick-off, scores at the final whistle", async () => {
    h.simulator.setFaults({ postponed: [postponed.fixtureId], malformedRows: 2 });
    const firstKickoff = Math.min(...round.map((f) => f.kickoff.getTime()));
    assert.ok(
      h.clock.now().getTime() < firstKickoff - 15 * MIN,
      "set-up left time before the first kick-off",
    );
    h.clock.set(new Date(firstKickoff - 15 * MIN));
    stop = h.run();
    // A postponement announced before kick-off reaches the database.
    await h.reconciler.reconcileOnce({ useApi: true });
    assert.equal((await fixtureRow(h, postponed.fixtureId))?.status, "POSTPONED");

    const kickoffs = [...new Set(round.map((f) => f.kickoff.getTime()))].sort((a, b) => a - b);
    for (const kickoff of kickoffs) {
      const at = new Date(kickoff);
      const kicking = round.filter((f) => f.kickoff.getTime() === kickoff && f !== postponed);
      if (kicking.includes(apiDownAtKickoff)) {
        // API down from just before this kick-off: locking by the clock must not care.
        await h.clock.until(new Date(kickoff - 2 * MIN));
        h.simulator.setFaults({ errorRate: 1 });
      }
      // Slow down around the kick-off to measure the lock, then fast again.
      await h.clock.until(new Date(kickoff - 20_000));
      h.clock.setSpeed(20);
      h.reconciler.poke();
      await h.clock.until(new Date(kickoff + 5_000));
      const rows = await predictionRows(
        h,
        kicking.map((f) => f.fixtureId),
      );
      const stillSubmitted = rows.filter((r) => r.prediction_status === "SUBMITTED");
      assert.deepEqual(
        stillSubmitted,
        [],
        `SUBMITTED predictions left 5 s after kick-off ${at.toISOString()}`,
      );
      const lockTimes = await h.sql<{ t: Date }[]>`
        SELECT min(clock_time) AS t FROM scheduler.fixture_changes
         WHERE kind = 'lock' AND fixture_id = ANY(${kicking.map((f) => f.fixtureId)})`;
      if (lockTimes[0]?.t) lockDelaysMs.push(lockTimes[0].t.getTime() - kickoff);
      h.simulator.setFaults({ errorRate: 0 });
      h.clock.setSpeed(900);
      h.reconciler.poke();
      if (kicking.includes(unknown)) {
        // The unknown status appears during the second half of one fixture and keeps its row.
        await h.clock.until(new Date(unknown.kickoff.getTime() + 70 * MIN));
        h.clock.setSpeed(60);
        h.reconciler.poke({ api: true });
        await h.clock.until(new Date(unknown.kickoff.getTime() + 72 * MIN));
        const beforeUnknown = await fixtureRow(h, unknown.fixtureId);
        h.simulator.setFaults({ unknownStatus: { [String(unknown.fixtureId)]: "XYZ" } });
        h.reconciler.poke({ api: true });
        await h.clock.until(new Date(unknown.kickoff.getTime() + 75 * MIN));
        await waitFor(
          () => h.metrics.unknownStatus.get().then((m) => m.values.some((v) => v.value > 0)),
          30_000,
          "the unknown status to be counted",
          100,
        );
        assert.deepEqual(
          await fixtureRow(h, unknown.fixtureId),
          beforeUnknown,
          "an unknown status must leave the row as it was",
        );
        assert.notEqual(beforeUnknown?.status, "NOT_STARTED");
        h.simulator.setFaults({ unknownStatus: {} });
        h.clock.setSpeed(900);
        h.reconciler.poke();
      }
    }

    // Run until every fixture of the round is over.
    const lastEnd = Math.max(...round.map((f) => f.kickoff.getTime())) + 4 * 60 * MIN;
    await h.clock.until(new Date(lastEnd));
    h.reconciler.poke({ api: true });
    await waitFor(
      async () => {
        const rows = await predictionRows(
          h,
          round.filter((f) => f !== postponed).map((f) => f.fixtureId),
        );
        return rows.every((r) => r.prediction_status !== "LOCKED" && r.prediction_status !== "SUBMITTED");
      },
      30_000,
      "every prediction of the round scored",
      100,
    ).catch(async (error) => {
      const open =
        await h.sql`SELECT p.fixture_id, p.prediction_status::text, f.status::text, f.home_score, f.away_score, s.api_status
        FROM user_predictions p JOIN fixtures f USING (fixture_id) LEFT JOIN scheduler.fixture_sync s USING (fixture_id)
        WHERE p.prediction_status IN ('LOCKED','SUBMITTED') GROUP BY 1,2,3,4,5,6`;
      console.log(
        JSON.stringify(open),
        JSON.stringify(h.reconciler.snapshot(h.clock.now())),
        h.logLines.slice(-15).join(""),
      );
      throw error;
    });
  });

  test("every prediction of a finished fixture is PROCESSED with the reference points", async () => {
    const rows = await predictionRows(h, [...round.map((f) => f.fixtureId), pastFinished.fixtureId]);
    const truth = new Map([...round, pastFinished].map((f) => [f.fixtureId, final(f)]));
    const byId = new Map(seeded.map((p) => [p.id, p]));
    let processed = 0;
    for (const r of rows) {
      const seed = byId.get(r.id)!;
      if (seed.status === "EDITABLE") {
        assert.equal(r.prediction_status, "EDITABLE", "EDITABLE predictions are never touched");
        assert.equal(r.points, 0);
        assert.equal(r.processed_at, null);
        continue;
      }
      if (r.fixture_id === postponed.fixtureId) {
        assert.equal(
          r.prediction_status,
          "SUBMITTED",
          "a fixture postponed before kick-off is neither locked nor scored",
        );
        continue;
      }
      const [home, away] = truth.get(r.fixture_id)!;
      assert.equal(r.prediction_status, "PROCESSED");
      assert.equal(
        r.points,
        pointsFor({ home: r.score1, away: r.score2 }, { home, away }, { exact: 3, outcome: 1 }),
      );
      assert.ok(r.processed_at, "processed_at set");
      processed++;
    }
    assert.ok(processed > 100, `only ${processed} processed`);
    const [fx] = await h.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM fixtures WHERE fixture_id = ANY(${round.map((f) => f.fixtureId)})
        AND status IN ('FINISHED', 'FINISHED_AET', 'FINISHED_PEN')`;
    assert.equal(fx?.n, round.length - 1);
  });

  test("kick-off locks landed within 5 s of clock time", () => {
    assert.ok(lockDelaysMs.length >= 2, `lock delays measured: ${lockDelaysMs.length}`);
    for (const d of lockDelaysMs) assert.ok(d >= 0 && d <= 5000, `lock ${d} ms after kick-off`);
  });

  test("malformed rows were skipped and counted, the rest used", async () => {
    const metric = await h.metrics.malformedRows.get();
    assert.ok((metric.values[0]?.value ?? 0) > 0, "malformed rows counted");
    assert.ok(
      h.logLines.some((l) => l.includes("malformed")),
      "malformed rows logged",
    );
  });

  test("a second loop over unchanged data changes no row", async () => {
    h.simulator.setFaults({ malformedRows: 0 });
    await stop();
    const snapshot = async () =>
      await h.sql<{ t: string; n: string }[]>`
        SELECT 'f' AS t, string_agg(fixture_id || ':' || xmin::text || ':' || coalesce(last_updated::text, ''), ',' ORDER BY fixture_id) AS n FROM fixtures
        UNION ALL
        SELECT 'p', string_agg(id || ':' || xmin::text, ',' ORDER BY id) FROM user_predictions`;
    await h.reconciler.reconcileOnce({ useApi: true });
    const first = await snapshot();
    h.reconciler.requestResync(39, round[0]!.season);
    const again = await h.reconciler.reconcileOnce({ useApi: true });
    assert.equal(again.result, "success");
    assert.ok(again.apiCalls >= 1, "the second loop asked the API again");
    await h.reconciler.reconcileOnce({ useApi: false });
    assert.deepEqual(await snapshot(), first);
  });

  test("a correction after the final whistle re-scores the processed predictions", async () => {
    const [h0, a0] = final(corrected);
    const fix = { home: h0 + 1, away: a0 };
    h.simulator.setFaults({ corrections: { [String(corrected.fixtureId)]: fix } });
    h.reconciler.requestResync(39, corrected.season);
    const result = await h.reconciler.reconcileOnce({ useApi: true });
    assert.equal(result.result, "success");
    const row = await fixtureRow(h, corrected.fixtureId);
    assert.equal(row?.home_score, fix.home);
    const rows = await predictionRows(h, [corrected.fixtureId]);
    for (const r of rows.filter((x) => x.prediction_status === "PROCESSED")) {
      assert.equal(r.points, pointsFor({ home: r.score1, away: r.score2 }, fix, { exact: 3, outcome: 1 }));
    }
    const history = await h.sql<{ kind: string }[]>`
      SELECT kind FROM scheduler.fixture_changes WHERE fixture_id = ${corrected.fixtureId} ORDER BY id`;
    assert.ok(
      history.some((x) => x.kind === "rescore"),
      "rescore recorded",
    );
  });

  test("every change is in the audit trail, and the API key is in no log line", async () => {
    const [c] = await h.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM scheduler.fixture_changes`;
    assert.ok((c?.n ?? 0) > round.length, "changes recorded");
    assert.ok(h.logLines.length > 0, "logs captured");
    assert.ok(!h.logLines.some((l) => l.includes("test-key-0123456789abcdef")), "API key leaked into logs");
  });
});

describe("the first sync of three competitions", () => {
  test("makes one API call per competition, even with matches live", async () => {
    const h = await startHarness({ label: "reconciler_initial", leagues: [39, 140, 78], speed: 1 });
    try {
      // A Saturday afternoon with matches under way somewhere.
      const live = pickRound(h.simulator.fixtures(), 39, ANCHOR);
      h.clock.set(new Date(live[0]!.kickoff.getTime() + 30 * MIN));
      const result = await h.reconciler.reconcileOnce({ useApi: true });
      assert.equal(result.result, "success", result.error ?? "");
      const calls = h.simulator.requestLog().filter((r) => r.path === "/fixtures");
      assert.equal(calls.length, 3);
      assert.deepEqual(calls.map((c) => c.query.league).sort(), ["140", "39", "78"]);
      const [{ n }] = (await h.sql`SELECT count(*)::int AS n FROM fixtures`) as unknown as [{ n: number }];
      assert.equal(n, h.simulator.fixtures().length);
    } finally {
      await h.close();
    }
  });
});

describe("the daily quota", () => {
  test("a live interval is stretched to last until 00:00 UTC, and /status says so", async () => {
    const h = await startHarness({
      label: "reconciler_quota",
      leagues: [39],
      speed: 1,
      dailyBudget: 30,
      dailyReserve: 5,
    });
    try {
      const day = pickRound(h.simulator.fixtures(), 39, ANCHOR);
      const kickoff = day[0]!.kickoff.getTime();
      h.clock.set(new Date(kickoff - 60 * MIN));
      assert.equal((await h.reconciler.reconcileOnce({ useApi: true })).result, "success");
      // Twenty minutes into the first match: live mode, one live call a minute would need
      // hundreds of calls before midnight; 24 are left.
      h.clock.set(new Date(kickoff + 20 * MIN));
      const live = await h.reconciler.reconcileOnce({ useApi: true });
      assert.equal(live.result, "success", live.error ?? "");
      const snapshot = h.reconciler.snapshot(h.clock.now());
      assert.equal(snapshot.schedule_mode, "live_matches");
      assert.ok(snapshot.quota_stretch, "the stretch is shown");
      assert.equal(snapshot.quota_stretch?.mode_interval_seconds, 60);
      const gap = Date.parse(snapshot.next_api_run!) - h.clock.now().getTime();
      assert.ok(gap > 60_000 * 5, `next API run in ${gap} ms, not stretched`);
      // The stretched interval fits the remaining calls into the rest of the day.
      const midnight = Date.UTC(
        h.clock.now().getUTCFullYear(),
        h.clock.now().getUTCMonth(),
        h.clock.now().getUTCDate() + 1,
      );
      const runs =
        (midnight - h.clock.now().getTime()) / (snapshot.quota_stretch!.effective_interval_seconds * 1000);
      assert.ok(runs <= h.queue.remainingToday() + 1, `${runs} runs for ${h.queue.remainingToday()} calls`);
    } finally {
      await h.close();
    }
  });
});

describe("dry run", () => {
  test("plans and counts, writes nothing to the host tables", async () => {
    const h = await startHarness({ label: "reconciler_dry", leagues: [39], speed: 1, dryRun: true });
    try {
      const result = await h.reconciler.reconcileOnce({ useApi: true });
      assert.equal(result.result, "success");
      assert.ok(result.actions.planned > 300, `planned ${result.actions.planned}`);
      const [{ n }] = (await h.sql`SELECT count(*)::int AS n FROM fixtures`) as unknown as [{ n: number }];
      assert.equal(n, 0);
      const snapshot = h.reconciler.snapshot(h.clock.now());
      assert.equal(snapshot.dry_run?.actions_planned, result.actions.planned);
    } finally {
      await h.close();
    }
  });
});
