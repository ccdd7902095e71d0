/**
 * Fault suite, API side (issue 8): an in-process reconciler on a real PostgreSQL database and
 * the simulator over HTTP on one fast TestClock (test/support/harness.ts), a Premier League
 * match day with seeded predictions, and one API fault per case: HTTP 500s, hangs (timeouts),
 * 429 bursts, the daily quota spent mid-day, a bad key, malformed rows, an unknown status, a
 * status lagging the clock, a score correction after the final whistle, postponements.
 *
 * Every case asserts against the database that nothing is lost, nothing is guessed, nothing is
 * scored twice, and that the loop recovers to the expected final state once the fault is gone
 * (test/support/faults.ts).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { callsSince, finish, ids, scenario, step } from "./support/fault-scenario.js";
import {
  assertNothingLost,
  assertRoundScored,
  assertScoredOnce,
  HOUR,
  MIN,
  predictionStatuses,
  snapshot,
  waitFor,
} from "./support/faults.js";
import { startHarness, TEST_API_KEY } from "./support/harness.js";

describe("API faults", () => {
  test("HTTP 500s: the loop survives, locks by the clock, writes no guess, recovers", async () => {
    const s = await scenario("faults_api_500");
    try {
      const { h } = s;
      h.simulator.setFaults({ errorRate: 1 });
      const from = h.simulator.requestLog().length;
      const r = await step(h, s.kickoffs[0]! + 10 * MIN);
      assert.equal(r.result, "success", `a failed API call is not a failed reconcile: ${r.error}`);
      assert.ok(r.apiCalls > 0, "the API was asked");
      const errors = callsSince(h, from).filter((c) => c.status === 500);
      assert.ok(errors.length >= 3, `each failing call retried (${errors.length} HTTP 500s)`);
      // Locked by the clock although the API said nothing.
      const kicked = await predictionStatuses(h.sql, ids(s.at(0)));
      assert.equal(kicked.SUBMITTED, undefined, `SUBMITTED left at kick-off: ${JSON.stringify(kicked)}`);
      assert.ok((kicked.LOCKED ?? 0) > 0, "predictions locked by the clock");
      // Nothing guessed: the rows of the kicked-off fixtures are as the last answer left them.
      const mid = await snapshot(h.sql);
      for (const f of s.at(0))
        assert.equal(
          mid.fixtures.get(f.fixtureId)?.xmin,
          s.start.fixtures.get(f.fixtureId)?.xmin,
          "row kept",
        );
      assertNothingLost(s.start, mid, { label: "during 500s" });
      h.simulator.setFaults({ errorRate: 0 });
      await finish(s);
    } finally {
      await s.h.close();
    }
  });

  test("timeouts: a hanging API delays neither the kick-off lock nor the loop; the retry recovers", async () => {
    const s = await scenario("faults_api_hang");
    const { h } = s;
    const stopLoops = { fn: undefined as undefined | (() => Promise<void>) };
    try {
      const k0 = s.kickoffs[0]!;
      h.simulator.setFaults({ hangRate: 1 });
      h.clock.set(new Date(k0 - 30_000));
      h.clock.setSpeed(10);
      stopLoops.fn = h.run();
      // The sweep locks at kick-off while every API call hangs.
      await waitFor(
        async () => (await predictionStatuses(h.sql, ids(s.at(0)))).SUBMITTED === undefined,
        20_000,
        "kick-off locks while the API hangs",
      );
      const [lock] = await h.sql<{ t: Date }[]>`
        SELECT min(clock_time) AS t FROM scheduler.fixture_changes
         WHERE kind = 'lock' AND fixture_id = ANY(${ids(s.at(0))})`;
      const delay = lock!.t.getTime() - k0;
      assert.ok(delay >= 0 && delay <= 5000, `locked ${delay} ms of clock time after kick-off (bound 5 s)`);
      assert.ok(
        h.simulator.requestLog().some((c) => c.status === 0),
        "an API call was hanging meanwhile",
      );
      await waitFor(() => h.logLines.some((l) => l.includes("API_TIMEOUT")), 15_000, "a timed-out API call");
      // The API answers again: the retry (or the next run) gets through.
      h.simulator.setFaults({ hangRate: 0 });
      await waitFor(
        async () => {
          const [row] = await h.sql<{ status: string }[]>`
            SELECT status::text FROM fixtures WHERE fixture_id = ${s.at(0)[0]!.fixtureId}`;
          return row?.status !== "NOT_STARTED";
        },
        20_000,
        "the loop to hear from the API again",
      );
      await stopLoops.fn();
      stopLoops.fn = undefined;
      const mid = await snapshot(h.sql);
      assertNothingLost(s.start, mid, { label: "after hangs" });
      await finish(s);
    } finally {
      await stopLoops.fn?.();
      await h.close();
    }
  });

  test("429 bursts: calls back off, the refused competition is synced later, nothing twice", async () => {
    const h = await startHarness({
      label: "faults_api_429",
      leagues: [39, 140],
      speed: 60,
      faults: { burstPerSecond: 1 },
    });
    try {
      const first = await h.reconciler.reconcileOnce({ useApi: true });
      assert.equal(first.result, "success", `429s slow the loop, never fail it: ${first.error}`);
      const limited = h.simulator.requestLog().filter((c) => c.status === 429);
      assert.ok(limited.length >= 1, "the burst limit answered 429");
      const perLeague = async () =>
        new Map(
          (
            await h.sql<{ league_id: number; n: number }[]>`
              SELECT league_id, count(*)::int AS n FROM fixtures GROUP BY league_id`
          ).map((r) => [r.league_id, r.n]),
        );
      const expected = new Map(h.simulator.leagues().map((l) => [l.id, l.fixtures]));
      const afterFirst = await perLeague();
      const refused = [...expected.keys()].filter((id) => (afterFirst.get(id) ?? 0) === 0);
      for (const id of expected.keys()) {
        const n = afterFirst.get(id) ?? 0;
        assert.ok(n === 0 || n === expected.get(id), `league ${id}: all or nothing (${n})`);
      }
      const errors = await h.sql<{ league_id: number; last_error: string | null }[]>`
        SELECT league_id, last_error FROM scheduler.competitions`;
      for (const id of refused) {
        const e = errors.find((x) => x.league_id === id);
        assert.match(e?.last_error ?? "", /RATE_LIMIT|429/, `league ${id}: the 429 is its last error`);
      }
      const before = await snapshot(h.sql);
      // Past the competition's backoff and the burst window, the next run syncs what was refused.
      await new Promise((r) => setTimeout(r, 1100));
      h.clock.set(new Date(h.clock.now().getTime() + 2 * HOUR));
      const second = await h.reconciler.reconcileOnce({ useApi: true });
      assert.equal(second.result, "success", `second run: ${second.error}`);
      assert.deepEqual(await perLeague(), expected, "every fixture of both competitions is there");
      const after = await snapshot(h.sql);
      assertNothingLost(before, after, { label: "429" });
      const stillFailing = await h.sql`
        SELECT league_id FROM scheduler.competitions WHERE last_error IS NOT NULL`;
      assert.equal(stillFailing.length, 0, "no competition is left with an error");
      await assertScoredOnce(h.sql);
    } finally {
      await h.close();
    }
  });

  test("daily quota spent mid-day: calls stop until 00:00 UTC, locks go on, scoring resumes", async () => {
    const s = await scenario("faults_api_quota");
    try {
      const { h } = s;
      const end = s.kickoffs.at(-1)! + 150 * MIN;
      const day = new Date(s.kickoffs[0]!).toISOString().slice(0, 10);
      const midnight = Date.parse(`${day}T00:00:00Z`) + 24 * HOUR;
      assert.ok(end < midnight, "the round ends before midnight (test precondition)");
      // One call left today: the initial sync used it.
      h.simulator.setFaults({ dayLimit: 1 });
      const r = await step(h, s.kickoffs[0]! + 10 * MIN);
      assert.equal(r.result, "success", `quota error: ${r.error}`);
      assert.ok(
        h.simulator.requestLog().some((c) => c.error === "requests"),
        "the API said the day's requests are used up",
      );
      assert.equal(h.client.quota.blockedReason, "API_DAILY_QUOTA");
      assert.ok(
        h.reconciler.snapshot(h.clock.now()).quota_stretch,
        "/status says the interval was stretched",
      );
      const calls = h.simulator.requestLog().length;
      // The rest of the day: every kick-off locked by the clock, no API call.
      for (let i = 1; i < s.kickoffs.length; i++) {
        h.reconciler.poke({ api: true });
        const later = await step(h, s.kickoffs[i]! + 2 * MIN);
        assert.equal(later.result, "success", `run at kick-off ${i}: ${later.error}`);
        await step(h, s.kickoffs[i]! + 3 * MIN, false);
      }
      await step(h, end);
      assert.equal(
        h.simulator.requestLog().length,
        calls,
        "no API call after the quota error until midnight",
      );
      const all = await predictionStatuses(h.sql, ids(s.round));
      assert.equal(all.SUBMITTED, undefined, `every kicked-off fixture locked: ${JSON.stringify(all)}`);
      assert.equal(all.PROCESSED, undefined, "nothing scored without a final result");
      const mid = await snapshot(h.sql);
      assertNothingLost(s.start, mid, { label: "quota" });
      // After 00:00 UTC of the clock the calls resume and the round is scored.
      const resumed = await step(h, midnight + 5 * MIN);
      assert.equal(resumed.result, "success", `after the reset: ${resumed.error}`);
      assert.ok(h.simulator.requestLog().length > calls, "calls resumed after the reset");
      const processed = await assertRoundScored(h.sql, s.round);
      assert.ok(processed >= 10, `scored after the reset: ${processed}`);
      assertNothingLost(mid, await snapshot(h.sql), { label: "after the reset" });
      await assertScoredOnce(h.sql);
    } finally {
      await s.h.close();
    }
  });

  test("bad key: calls stop at once, sweeps keep locking, a new key recovers", async () => {
    const s = await scenario("faults_api_badkey");
    try {
      const { h } = s;
      h.simulator.setFaults({ badKey: true });
      const r = await step(h, s.kickoffs[0]! + 10 * MIN);
      assert.equal(r.result, "success", `bad key: ${r.error}`);
      const tokenErrors = h.simulator.requestLog().filter((c) => c.error === "token");
      assert.equal(tokenErrors.length, 1, "one refused call, not retried");
      assert.equal(h.client.quota.blockedReason, "API_BAD_KEY");
      const calls = h.simulator.requestLog().length;
      for (let i = 1; i < s.kickoffs.length; i++) {
        h.reconciler.poke({ api: true });
        await step(h, s.kickoffs[i]! + 1 * MIN);
        await step(h, s.kickoffs[i]! + 2 * MIN, false);
      }
      assert.equal(h.simulator.requestLog().length, calls, "no call with a key known to be bad");
      const all = await predictionStatuses(h.sql, ids(s.round));
      assert.equal(all.SUBMITTED, undefined, `sweeps locked every kick-off: ${JSON.stringify(all)}`);
      assertNothingLost(s.start, await snapshot(h.sql), { label: "bad key" });
      assert.ok(!h.logLines.some((l) => l.includes(TEST_API_KEY)), "the key is in no log line");
      // The operator fixes the account.
      h.simulator.setFaults({ badKey: false });
      h.client.setApiKey(TEST_API_KEY);
      h.reconciler.poke({ api: true });
      await finish(s);
    } finally {
      await s.h.close();
    }
  });

  test("malformed rows: skipped and counted, never inserted, the rest used", async () => {
    const s = await scenario("faults_api_malformed", { faults: { malformedRows: 3 } });
    try {
      const { h } = s;
      const [bad] = await h.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM fixtures WHERE fixture_id >= 9900000`;
      assert.equal(bad?.n, 0, "no malformed row inserted");
      const [good] = await h.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM fixtures`;
      assert.equal(good?.n, h.simulator.leagues()[0]!.fixtures, "every valid row inserted");
      await step(h, s.kickoffs[0]! + 10 * MIN);
      await step(h, s.kickoffs[0]! + 60 * MIN);
      assert.ok(h.reconciler.snapshot(h.clock.now()).malformed_rows_skipped >= 6, "malformed rows counted");
      await finish(s);
      const [still] = await h.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM fixtures WHERE fixture_id >= 9900000`;
      assert.equal(still?.n, 0, "no malformed row inserted later");
    } finally {
      await s.h.close();
    }
  });

  test("unknown status: the whole row is kept, never guessed, not scored until known", async () => {
    const s = await scenario("faults_api_unknown");
    try {
      const { h } = s;
      const live = s.at(0)[0]!;
      const later = s.at(1)[0]!;
      await step(h, s.kickoffs[0]! + 10 * MIN);
      const [underWay] = await h.sql<{ status: string }[]>`
        SELECT status::text FROM fixtures WHERE fixture_id = ${live.fixtureId}`;
      assert.equal(underWay?.status, "FIRST_HALF");
      const before = await snapshot(h.sql);
      h.simulator.setFaults({ unknownStatus: { [live.fixtureId]: "XYZ", [later.fixtureId]: "QQ" } });
      await step(h, s.kickoffs[0]! + 60 * MIN);
      await step(h, s.kickoffs[0]! + 150 * MIN);
      await step(h, s.kickoffs[1]! + 10 * MIN);
      const during = await snapshot(h.sql);
      for (const id of [live.fixtureId, later.fixtureId]) {
        assert.equal(
          during.fixtures.get(id)?.xmin,
          before.fixtures.get(id)?.xmin,
          `fixture ${id}: an unknown status leaves the whole row as it was`,
        );
      }
      assert.equal(during.fixtures.get(later.fixtureId)?.status, "NOT_STARTED");
      const sync = await h.sql<{ fixture_id: number; unknown_status: string | null }[]>`
        SELECT fixture_id, unknown_status FROM scheduler.fixture_sync
         WHERE fixture_id = ANY(${[live.fixtureId, later.fixtureId]}) ORDER BY fixture_id`;
      assert.deepEqual(
        sync.map((r) => r.unknown_status).sort(),
        ["QQ", "XYZ"],
        "the raw unknown codes are recorded",
      );
      const counted = h.reconciler.snapshot(h.clock.now()).unknown_status_codes;
      assert.ok((counted.XYZ ?? 0) > 0 && (counted.QQ ?? 0) > 0, `counted: ${JSON.stringify(counted)}`);
      assert.ok(
        h.logLines.some((l) => l.includes("unknown status code")),
        "logged",
      );
      // Locked by the clock; not scored while the result is unknown.
      const liveStatuses = await predictionStatuses(h.sql, [live.fixtureId, later.fixtureId]);
      assert.equal(liveStatuses.SUBMITTED, undefined, "locked by the clock");
      assert.equal(liveStatuses.PROCESSED, undefined, "not scored on an unknown status");
      assertNothingLost(s.start, during, { label: "unknown status" });
      h.simulator.setFaults({ unknownStatus: {} });
      await finish(s);
      // An unknown status after the final whistle changes nothing either.
      const done = await snapshot(h.sql);
      h.simulator.setFaults({ unknownStatus: { [live.fixtureId]: "ZZZ" } });
      h.reconciler.requestResync(39, live.season);
      const r = await step(h, s.kickoffs.at(-1)! + 4 * HOUR);
      assert.equal(r.result, "success");
      const after = await snapshot(h.sql);
      assert.equal(after.fixtures.get(live.fixtureId)?.xmin, done.fixtures.get(live.fixtureId)?.xmin);
      assertNothingLost(done, after, { label: "unknown after final" });
      await assertScoredOnce(h.sql);
    } finally {
      await s.h.close();
    }
  });

  test("status lagging the clock: locked by the clock, asked by ids until under way, never guessed", async () => {
    const s = await scenario("faults_api_lag");
    try {
      const { h } = s;
      const lagging = s.at(0)[0]!;
      const k0 = s.kickoffs[0]!;
      h.simulator.setFaults({ statusLag: { minutes: 30, fixtureIds: [lagging.fixtureId] } });
      const idCalls = (from: number) =>
        callsSince(h, from).filter((c) => c.query.ids !== undefined && c.status === 200);
      for (const minute of [5, 15, 25]) {
        const from = h.simulator.requestLog().length;
        const r = await step(h, k0 + minute * MIN);
        assert.equal(r.result, "success", r.error ?? "");
        const asked = idCalls(from);
        assert.ok(
          asked.some((c) => c.query.ids!.split("-").includes(String(lagging.fixtureId))),
          `minute ${minute}: the lagging fixture is asked by ids`,
        );
        const lagIds = new Set(asked.flatMap((c) => c.query.ids!.split("-")));
        assert.ok(asked.length <= Math.ceil(lagIds.size / 20), "batched ids, never one call per fixture");
        const [row] = await h.sql<{ status: string }[]>`
          SELECT status::text FROM fixtures WHERE fixture_id = ${lagging.fixtureId}`;
        assert.equal(row?.status, "NOT_STARTED", `minute ${minute}: still NS at the API, not guessed`);
        const statuses = await predictionStatuses(h.sql, [lagging.fixtureId]);
        assert.equal(statuses.SUBMITTED, undefined, `minute ${minute}: locked by the clock anyway`);
      }
      // Under way at the API (30 minutes late): it moves on, and is followed by `live` from then on.
      await step(h, k0 + 40 * MIN);
      const [row] = await h.sql<{ status: string }[]>`
        SELECT status::text FROM fixtures WHERE fixture_id = ${lagging.fixtureId}`;
      assert.equal(row?.status, "FIRST_HALF");
      const from = h.simulator.requestLog().length;
      await step(h, k0 + 50 * MIN);
      assert.ok(
        callsSince(h, from).some((c) => c.query.live !== undefined),
        "fixtures under way are followed with one live call",
      );
      assert.ok(
        !idCalls(from).some((c) => c.query.ids!.split("-").includes(String(lagging.fixtureId))),
        "no longer asked by id once under way and listed live",
      );
      h.simulator.setFaults({ statusLag: null });
      await finish(s);
    } finally {
      await s.h.close();
    }
  });

  test("score correction after the final: re-scored once, nothing else touched", async () => {
    const s = await scenario("faults_api_correction");
    try {
      const { h } = s;
      await finish(s);
      const corrected = s.round.at(-1)!;
      const [home, away] = corrected.et ?? corrected.ft;
      const fix = { home: home + 1, away };
      const before = await snapshot(h.sql);
      h.simulator.setFaults({ corrections: { [corrected.fixtureId]: fix } });
      h.reconciler.requestResync(39, corrected.season);
      const r = await step(h, s.kickoffs.at(-1)! + 5 * HOUR);
      assert.equal(r.result, "success", r.error ?? "");
      assert.ok(r.actions.predictionsScored > 0, "re-scored");
      await assertRoundScored(h.sql, s.round, { corrections: { [corrected.fixtureId]: fix } });
      const after = await snapshot(h.sql);
      assertNothingLost(before, after, { rescored: [corrected.fixtureId], label: "correction" });
      // Predictions whose points did not change keep their processed_at.
      for (const [id, p] of before.predictions) {
        const now = after.predictions.get(id)!;
        if (p.fixture_id === corrected.fixtureId && p.points === now.points)
          assert.equal(now.xmin, p.xmin, `prediction ${id} rewritten though its points did not change`);
      }
      // Scored once at the final whistle, re-scored once after the correction.
      const scorings = await h.sql<{ kind: string; against: string }[]>`
        SELECT kind, changes->>'against' AS against FROM scheduler.fixture_changes
         WHERE fixture_id = ${corrected.fixtureId} AND kind IN ('score', 'rescore') ORDER BY id`;
      assert.deepEqual(
        scorings.map((e) => e.against),
        [`${home}-${away}`, `${fix.home}-${fix.away}`],
        `scored once, re-scored once: ${JSON.stringify(scorings)}`,
      );
      assert.equal(scorings.at(-1)?.kind, "rescore");
      // The corrected result is kept by later loops: nothing scored a third time.
      h.reconciler.requestResync(39, corrected.season);
      await step(h, s.kickoffs.at(-1)! + 6 * HOUR);
      const later = await snapshot(h.sql);
      assertNothingLost(after, later, { label: "after correction" });
      for (const [id, p] of after.predictions)
        assert.equal(later.predictions.get(id)?.xmin, p.xmin, `prediction ${id} rewritten`);
      await assertScoredOnce(h.sql, [corrected.fixtureId]);
    } finally {
      await s.h.close();
    }
  });

  test("postponement: before kick-off never locked, after kick-off the lock stays, never scored", async () => {
    const s = await scenario("faults_api_postponed");
    try {
      const { h } = s;
      const early = s.at(0)[0]!;
      const late = s.at(1)[0]!;
      h.simulator.setFaults({ postponed: [early.fixtureId] });
      // Within two hours of kick-off, fixtures about to start are asked about.
      const r = await step(h, s.kickoffs[0]! - 30 * MIN);
      assert.equal(r.result, "success", r.error ?? "");
      const [row] = await h.sql<{ status: string }[]>`
        SELECT status::text FROM fixtures WHERE fixture_id = ${early.fixtureId}`;
      assert.equal(row?.status, "POSTPONED");
      await step(h, s.kickoffs[0]! + 10 * MIN);
      await step(h, s.kickoffs[1]! + 10 * MIN);
      const lateLocked = await predictionStatuses(h.sql, [late.fixtureId]);
      assert.ok(
        (lateLocked.LOCKED ?? 0) > 0 && !lateLocked.SUBMITTED,
        "the later fixture kicked off: locked",
      );
      // Postponed after kick-off (abandoned before a ball was kicked, re-scheduled): the lock stays.
      h.simulator.setFaults({ postponed: [early.fixtureId, late.fixtureId] });
      await step(h, s.kickoffs[1]! + 20 * MIN);
      const [lateRow] = await h.sql<{ status: string }[]>`
        SELECT status::text FROM fixtures WHERE fixture_id = ${late.fixtureId}`;
      assert.equal(lateRow?.status, "POSTPONED");
      const earlyStatuses = await predictionStatuses(h.sql, [early.fixtureId]);
      assert.equal(earlyStatuses.LOCKED, undefined, "postponed before kick-off: never locked");
      assert.ok((earlyStatuses.SUBMITTED ?? 0) > 0, "its predictions stay SUBMITTED");
      await finish(s, { notScored: [early.fixtureId, late.fixtureId] });
      assert.deepEqual(
        await predictionStatuses(h.sql, [late.fixtureId]),
        lateLocked,
        "a lock is never undone, a postponed fixture never scored",
      );
      const [kickoffTimer] = await h.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM scheduler.fixture_changes
         WHERE fixture_id = ${early.fixtureId} AND kind IN ('lock', 'score')`;
      assert.equal(kickoffTimer?.n, 0);
    } finally {
      await s.h.close();
    }
  });
});
