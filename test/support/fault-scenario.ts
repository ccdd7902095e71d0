/**
 * A match day for the fault suite: an in-process reconciler (test/support/harness.ts) set one
 * hour before the first kick-off of a Premier League round, synced, with predictions seeded;
 * `step` moves the clock and runs one pass; `finish` plays the round out and checks the end
 * state (every prediction PROCESSED with the reference points, nothing scored twice, a later
 * loop rewrites nothing).
 */
import assert from "node:assert/strict";
import type { SimFixture } from "../../controller/simulator/index.js";
import {
  assertNothingLost,
  assertRoundScored,
  assertScoredOnce,
  HOUR,
  MIN,
  type Snapshot,
  snapshot,
} from "./faults.js";
import {
  ANCHOR,
  type Harness,
  type HarnessOptions,
  pickRound,
  seedPredictions,
  seedUsers,
  startHarness,
} from "./harness.js";

export interface Scenario {
  h: Harness;
  round: SimFixture[];
  kickoffs: number[];
  /** Fixtures of the round kicking off at kickoffs[i]. */
  at(i: number): SimFixture[];
  start: Snapshot;
}

/** A harness set one hour before the first kick-off of a round, synced, with predictions seeded. */
export async function scenario(label: string, options: Partial<HarnessOptions> = {}): Promise<Scenario> {
  const h = await startHarness({ label, leagues: [39], speed: 60, ...options });
  try {
    const round = pickRound(h.simulator.fixtures(), 39, ANCHOR);
    const kickoffs = [...new Set(round.map((f) => f.kickoff.getTime()))].sort((a, b) => a - b);
    h.clock.set(new Date(kickoffs[0]! - HOUR));
    const first = await h.reconciler.reconcileOnce({ useApi: true });
    assert.equal(first.result, "success", `initial sync: ${first.error}`);
    const users = await seedUsers(h.sql, 6);
    await seedPredictions(h.sql, users, round, { editableEvery: 5 });
    return {
      h,
      round,
      kickoffs,
      at: (i) => round.filter((f) => f.kickoff.getTime() === kickoffs[i]),
      start: await snapshot(h.sql),
    };
  } catch (error) {
    await h.close();
    throw error;
  }
}

export async function step(h: Harness, at: number, useApi = true) {
  h.clock.set(new Date(at));
  return await h.reconciler.reconcileOnce({ useApi });
}

export const ids = (fixtures: SimFixture[]) => fixtures.map((f) => f.fixtureId);

/** The API calls the simulator saw since `from` (index into its log). */
export function callsSince(h: Harness, from: number) {
  return h.simulator.requestLog().slice(from);
}

/**
 * Play the round to its end with the fault gone: every prediction PROCESSED with the reference
 * points, a later loop changes no PROCESSED prediction, nothing was scored twice.
 */
export async function finish(
  s: Scenario,
  options: { notScored?: number[]; corrections?: Record<number, { home: number; away: number }> } = {},
) {
  const end = s.kickoffs.at(-1)! + 150 * MIN;
  const result = await step(s.h, end);
  assert.equal(result.result, "success", `the loop recovers: ${result.error}`);
  // Final whistles that a live answer no longer lists are asked by id in the same pass; a
  // second pass must not be needed, but is harmless.
  await step(s.h, end + 5 * MIN);
  const processed = await assertRoundScored(s.h.sql, s.round, options);
  assert.ok(processed >= 10, `predictions processed: ${processed}`);
  const final = await snapshot(s.h.sql);
  assertNothingLost(s.start, final, { label: "start → end" });
  // A later loop (and a full resync) rewrites nothing and scores nothing again.
  s.h.reconciler.requestResync(39, s.round[0]!.season);
  const again = await step(s.h, end + 30 * MIN);
  assert.equal(again.result, "success", `later loop: ${again.error}`);
  const later = await snapshot(s.h.sql);
  assertNothingLost(final, later, { label: "later loop" });
  for (const [id, p] of final.predictions)
    assert.equal(later.predictions.get(id)?.xmin, p.xmin, `prediction ${id} rewritten by a later loop`);
  await assertScoredOnce(s.h.sql);
}
