/**
 * An in-process reconciler on a real PostgreSQL database and the real simulator over
 * HTTP on loopback, sharing one TestClock. Used by the reconciler and replay tests.
 */
import { Writable } from "node:stream";
import { ApiQueue } from "../../controller/api-queue.js";
import type { CompetitionKey } from "../../controller/config.js";
import type { Sql } from "../../controller/database.js";
import { createNoElector, type Elector } from "../../controller/elector.js";
import { FootballApiClient } from "../../controller/football-api.js";
import { createLogger, type Logger } from "../../controller/logger.js";
import { createMetrics, type Metrics } from "../../controller/metrics.js";
import { Reconciler } from "../../controller/reconciler.js";
import {
  type Faults,
  type SimFixture,
  type Simulator,
  startSimulator,
} from "../../controller/simulator/index.js";
import { TestClock } from "./clock.js";
import { createTestDatabase, type TestDatabase } from "./database.js";

export const TEST_API_KEY = "test-key-0123456789abcdef";

export interface Harness {
  db: TestDatabase;
  sql: Sql;
  clock: TestClock;
  simulator: Simulator;
  client: FootballApiClient;
  queue: ApiQueue;
  metrics: Metrics;
  logger: Logger;
  logLines: string[];
  reconciler: Reconciler;
  elector: Elector;
  competitions: CompetitionKey[];
  /** Start both loops; returns a stop function that waits for them to end. */
  run(): () => Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  label: string;
  leagues: number[];
  start?: Date;
  speed?: number;
  faults?: Partial<Faults>;
  anchor?: Date;
  dailyBudget?: number;
  dailyReserve?: number;
  callsPerMinute?: number;
  dryRun?: boolean;
  intervalsMs?: Partial<Record<string, number>>;
  /** Use an existing database instead of a fresh one. */
  db?: TestDatabase;
}

export const ANCHOR = new Date("2026-12-04T12:00:00Z");

export async function startHarness(options: HarnessOptions): Promise<Harness> {
  const db = options.db ?? (await createTestDatabase(options.label, { migrate: true }));
  const clock = new TestClock(options.start ?? ANCHOR, options.speed ?? 60);
  const simulator = await startSimulator({
    host: "127.0.0.1",
    port: 0,
    clock,
    anchor: options.anchor ?? ANCHOR,
    apiKey: TEST_API_KEY,
    leagues: options.leagues,
    faults: options.faults,
    random: () => 0.5,
  });
  const logLines: string[] = [];
  const logger = createLogger({
    level: "debug",
    secrets: [TEST_API_KEY],
    destination: new Writable({
      write(chunk, _encoding, callback) {
        logLines.push(String(chunk));
        callback();
      },
    }),
  });
  const metrics = createMetrics();
  const client = new FootballApiClient({
    baseUrl: simulator.url,
    apiKey: TEST_API_KEY,
    timeoutMs: 2000,
    maxRetries: 2,
    logger,
    clock,
    retryBaseMs: 1000,
    retryMaxMs: 10_000,
  });
  const queue = new ApiQueue({
    concurrency: 2,
    callsPerMinute: options.callsPerMinute ?? 1000,
    dailyBudget: options.dailyBudget ?? 7500,
    dailyReserve: options.dailyReserve ?? 10,
    clock,
    quota: () => client.quota,
  });
  const leagues = simulator.leagues();
  const competitions = leagues.map((l) => ({ leagueId: l.id, season: l.season }));
  const elector = createNoElector("test-replica", "backend-scheduler");
  const reconciler = new Reconciler({
    sql: db.sql,
    elector,
    client,
    queue,
    clock,
    logger,
    metrics,
    competitions: () => competitions,
    intervalsMs: {
      live_matches: 60_000,
      matches_starting_soon: 300_000,
      match_day: 900_000,
      upcoming_matches: 1_800_000,
      minimal: 3_600_000,
      ...options.intervalsMs,
    },
    fullSyncIntervalMs: 86_400_000,
    points: { exact: 3, outcome: 1 },
    dryRun: options.dryRun ?? false,
    identity: "test-replica",
  });
  return {
    db,
    sql: db.sql,
    clock,
    simulator,
    client,
    queue,
    metrics,
    logger,
    logLines,
    reconciler,
    elector,
    competitions,
    run() {
      const abort = new AbortController();
      const done = reconciler.run(abort.signal);
      return async () => {
        abort.abort();
        queue.abortAll();
        await done;
      };
    },
    async close() {
      await simulator.close();
      if (!options.db) await db.drop();
    },
  };
}

/** Users and predictions seeded into the host tables. */
export interface SeededPrediction {
  id: number;
  userId: number;
  fixtureId: number;
  score1: number;
  score2: number;
  status: "EDITABLE" | "SUBMITTED" | "LOCKED";
}

export async function seedUsers(sql: Sql, count: number): Promise<number[]> {
  const rows = await sql<{ id: number }[]>`
    INSERT INTO users (username, email, hashed_password, created_at)
    SELECT 'user' || g || '_' || ${Math.floor(Math.random() * 1e9)}, 'user' || g || '_' || ${Math.floor(Math.random() * 1e9)} || '@example.test', 'x', now()
      FROM generate_series(1, ${count}) AS g
    RETURNING id`;
  return rows.map((r) => r.id);
}

/**
 * Predictions for `fixtures` by `users`: a deterministic mix of exact, outcome-only and
 * wrong guesses against the simulator's truth, mostly SUBMITTED, some EDITABLE.
 */
export async function seedPredictions(
  sql: Sql,
  users: number[],
  fixtures: SimFixture[],
  options: { editableEvery?: number; status?: "SUBMITTED" | "LOCKED" } = {},
): Promise<SeededPrediction[]> {
  const userIds: number[] = [];
  const fixtureIds: number[] = [];
  const s1: number[] = [];
  const s2: number[] = [];
  const statuses: string[] = [];
  const seasons: string[] = [];
  users.forEach((userId, u) => {
    fixtures.forEach((f, i) => {
      const final = f.et ?? f.ft;
      const kind = (u + i) % 3; // 0 exact, 1 outcome only, 2 wrong
      let guess: [number, number];
      if (kind === 0) guess = [final[0], final[1]];
      else if (kind === 1) {
        const d = Math.sign(final[0] - final[1]);
        guess =
          d > 0 ? [final[0] + 1, final[1]] : d < 0 ? [final[0], final[1] + 1] : [final[0] + 1, final[1] + 1];
      } else {
        const d = Math.sign(final[0] - final[1]);
        guess = d > 0 ? [0, 2] : d < 0 ? [2, 0] : [1, 0];
      }
      userIds.push(userId);
      fixtureIds.push(f.fixtureId);
      s1.push(guess[0]);
      s2.push(guess[1]);
      statuses.push(
        options.editableEvery && (u + i) % options.editableEvery === 0
          ? "EDITABLE"
          : (options.status ?? "SUBMITTED"),
      );
      seasons.push(String(f.season));
    });
  });
  const rows = await sql.unsafe<
    {
      id: number;
      user_id: number;
      fixture_id: number;
      score1: number;
      score2: number;
      prediction_status: string;
    }[]
  >(
    `INSERT INTO user_predictions (user_id, fixture_id, week, season, score1, score2, prediction_status, submission_time)
     SELECT u.user_id, u.fixture_id, 1, u.season, u.s1, u.s2, u.status::predictionstatus, now()
       FROM unnest($1::int[], $2::int[], $3::int[], $4::int[], $5::text[], $6::text[])
         AS u(user_id, fixture_id, s1, s2, status, season)
     RETURNING id, user_id, fixture_id, score1, score2, prediction_status::text`,
    [userIds, fixtureIds, s1, s2, statuses, seasons] as never[],
  );
  return rows.map((r) => ({
    id: r.id,
    userId: r.user_id,
    fixtureId: r.fixture_id,
    score1: r.score1,
    score2: r.score2,
    status: r.prediction_status as SeededPrediction["status"],
  }));
}

/**
 * The busiest day of a round of one league after `after`: its fixtures kick off at
 * several different times, so a test sees kick-offs, live matches and final whistles
 * overlap within a few clock hours.
 */
export function pickRound(
  fixtures: SimFixture[],
  leagueId: number,
  after: Date,
  minKickoffTimes = 3,
): SimFixture[] {
  const byDay = new Map<string, SimFixture[]>();
  for (const f of fixtures.filter((x) => x.leagueId === leagueId && x.kickoff > after && !x.synthetic)) {
    const key = `${f.round}|${f.kickoff.toISOString().slice(0, 10)}`;
    byDay.set(key, [...(byDay.get(key) ?? []), f]);
  }
  const days = [...byDay.values()]
    .filter((d) => new Set(d.map((f) => f.kickoff.getTime())).size >= minKickoffTimes)
    .sort((a, b) => a[0]!.kickoff.getTime() - b[0]!.kickoff.getTime());
  const day = days[0];
  if (!day) throw new Error(`no suitable match day for league ${leagueId}`);
  return [...day].sort((a, b) => a.kickoff.getTime() - b.kickoff.getTime() || a.fixtureId - b.fixtureId);
}
