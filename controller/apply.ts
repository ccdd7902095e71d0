/**
 * Apply one plan in one transaction: fence first (a replica that lost the lease commits
 * nothing), then every write of the pass, the audit trail of what changed, and one
 * NOTIFY scheduler_events for the backend when anything did.
 */
import type { Sql } from "./database.js";
import type { Elector } from "./elector.js";
import type { Plan, Points } from "./plan.js";
import * as q from "./queries.js";

export interface CompetitionError {
  leagueId: number;
  season: number;
  message: string;
}

export interface ApplyDeps {
  sql: Sql;
  elector: Elector;
  points: Points;
  identity: string;
}

export interface Applied {
  fixturesWritten: number;
  predictionsLocked: number;
  predictionsScored: number;
}

export async function applyPlan(
  deps: ApplyDeps,
  current: Plan,
  competitionErrors: readonly CompetitionError[],
  startedAt: Date,
  now: Date,
): Promise<Applied> {
  return await deps.sql.begin(async (tx) => {
    await deps.elector.fence(tx);
    const written = new Set(await q.upsertFixtures(tx, current.fixtureWrites, now));
    await q.upsertFixtureSync(tx, current.apiStatuses, now);
    const locked = await q.lockPredictions(tx, current.locks, now);
    const scored = await q.scorePredictions(tx, current.scores, deps.points, now);
    await q.recordCompetitionSyncs(tx, current.competitionSyncs, now);
    await q.recordCompetitionErrors(tx, competitionErrors, now);
    const lockedTotal = locked.reduce((n, r) => n + r.locked, 0);
    const scoredTotal = scored.reduce((n, r) => n + r.scored, 0);
    const changed = written.size + lockedTotal + scoredTotal;
    if (changed > 0) {
      const summary = { fixtures: written.size, locked: lockedTotal, scored: scoredTotal };
      const state = deps.elector.state();
      const runId = await q.insertReconcileRun(tx, {
        startedAt,
        holder: deps.identity,
        epoch: state.epoch,
        result: "success",
        summary,
      });
      const scoreOf = new Map(current.scores.map((s) => [s.fixtureId, s]));
      await q.recordFixtureChanges(
        tx,
        runId,
        [
          ...current.fixtureWrites
            .filter((w) => written.has(w.fixtureId))
            .map((w) => ({
              fixtureId: w.fixtureId,
              kind: w.insert ? "insert" : w.reason,
              changes: w.changes,
            })),
          ...locked.map((r) => ({
            fixtureId: r.fixtureId,
            kind: "lock",
            changes: { predictionsLocked: r.locked },
          })),
          ...scored.map((r) => {
            const s = scoreOf.get(r.fixtureId);
            return {
              fixtureId: r.fixtureId,
              kind: s?.rescore ? "rescore" : "score",
              changes: { predictionsScored: r.scored, against: s ? `${s.home}-${s.away}` : null },
            };
          }),
        ],
        now,
      );
      await q.notifyEvents(tx, {
        run: runId,
        fixtures_changed: written.size,
        predictions_locked: lockedTotal,
        predictions_scored: scoredTotal,
        fixture_ids: [
          ...new Set([...written, ...locked.map((r) => r.fixtureId), ...scored.map((r) => r.fixtureId)]),
        ].slice(0, 100),
      });
    }
    return {
      fixturesWritten: written.size,
      predictionsLocked: lockedTotal,
      predictionsScored: scoredTotal,
    };
  });
}
