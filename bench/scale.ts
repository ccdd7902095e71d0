/**
 * Issue 8's scale and memory benchmark: 100k fixtures and 1M predictions, generated with
 * set-based SQL (generate_series) in a bench database, then
 * - in process: a full reconcile (three season calls + the sweep over the whole table) and an
 *   idle one, timed around `reconcileOnce`, plus EXPLAIN ANALYZE of the sweep's query;
 * - the real program as a child process (`node dist/main.js`, demo mode on that database):
 *   RSS from /proc/<pid>/status (VmRSS, VmHWM) and /health latency (p50/p99 over a few hundred
 *   requests) while reconciles run (forced through the management API).
 *
 * Generated data: fixture ids from 10,000,001 (clear of the simulator's), one every ~15 clock
 * minutes around now (half past, half future); past ones FINISHED with scores and their
 * predictions PROCESSED, future ones NOT_STARTED with SUBMITTED/EDITABLE predictions, plus a
 * few hundred just kicked off with SUBMITTED ones (work for the lock sweep).
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Sql } from "../controller/database.js";
import { LAGGING_WINDOW_MS, UPCOMING_MS } from "../controller/plan.js";
import * as q from "../controller/queries.js";
import { createTestDatabase, type TestDatabase } from "../test/support/database.js";
import { startHarness } from "../test/support/harness.js";
import { buildOnce, minimalEnv, REPO_ROOT, sleep, startSchedulerHttp } from "../test/support/process.js";
import { type Figure, median, percentile, progress, round, type Section, timed } from "./common.js";

const ADMIN_TOKEN = "bench-admin-token-0123456789";

export async function generate(sql: Sql, fixtures: number, perFixture: number, now: Date): Promise<void> {
  const users = perFixture * 10;
  await sql`
    INSERT INTO users (username, email, hashed_password, created_at)
    SELECT 'bench' || g, 'bench' || g || '@example.test', 'x', now() FROM generate_series(1, ${users}) g`;
  await sql.unsafe(
    `INSERT INTO fixtures (fixture_id, date, status, round, season, home_team, away_team, home_score, away_score,
                           league, league_id, last_updated)
     SELECT 10000000 + g,
            ($2::timestamptz AT TIME ZONE 'UTC') + ((g - $1 / 2) * interval '15 minutes'),
            (CASE WHEN g < $1 / 2 - 8 THEN 'FINISHED' ELSE 'NOT_STARTED' END)::matchstatus,
            'Regular Season - ' || (g % 38 + 1), '2025', 'Home ' || (g % 500), 'Away ' || (g % 499),
            CASE WHEN g < $1 / 2 - 8 THEN g % 4 END, CASE WHEN g < $1 / 2 - 8 THEN g % 3 END,
            'Bench League ' || (g % 200), 900000 + g % 200, now()
       FROM generate_series(1, $1) g`,
    [fixtures, now.toISOString()],
  );
  // Each fixture gets perFixture predictions from a sliding range of users.
  await sql.unsafe(
    `INSERT INTO user_predictions (user_id, fixture_id, week, season, score1, score2, points, prediction_status,
                                   processed_at, submission_time)
     SELECT u.id, f.fixture_id, 1, '2025', (u.id + f.fixture_id) % 4, (u.id * 3 + f.fixture_id) % 3,
            CASE WHEN f.status = 'FINISHED' THEN (u.id % 4 = 0)::int * 3 ELSE 0 END,
            (CASE WHEN f.status = 'FINISHED' THEN 'PROCESSED'
                  WHEN (u.id + f.fixture_id) % 9 = 0 THEN 'EDITABLE' ELSE 'SUBMITTED' END)::predictionstatus,
            CASE WHEN f.status = 'FINISHED' THEN f.date + interval '2 hours' END, now()
       FROM fixtures f
       JOIN LATERAL (SELECT id FROM users
                      WHERE id > (f.fixture_id * 7) % (${users} - $1) ORDER BY id LIMIT $1) u ON true
      WHERE f.fixture_id > 10000000`,
    [perFixture],
  );
  await sql`VACUUM ANALYZE`;
}

function procStatus(pid: number): { rssMiB: number; hwmMiB: number } {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(text)?.[1] ?? Number.NaN);
  return { rssMiB: round(kb("VmRSS") / 1024), hwmMiB: round(kb("VmHWM") / 1024) };
}

async function explainSweep(sql: Sql, now: Date): Promise<{ ms: number; plan: string }> {
  // The sweep's candidate query (queries.ts), with the loop's parameters, catch-up branch included.
  const statement = q.activeFixtureIdsStatement(
    now,
    { before: LAGGING_WINDOW_MS, after: UPCOMING_MS },
    [],
    true,
  );
  const rows = await sql.unsafe<{ "QUERY PLAN": string }[]>(
    `EXPLAIN (ANALYZE, BUFFERS, SUMMARY) ${statement.text}`,
    statement.params as never[],
  );
  const plan = rows.map((r) => r["QUERY PLAN"]).join("\n");
  const ms = Number(/Execution Time: ([\d.]+) ms/.exec(plan)?.[1] ?? Number.NaN);
  return { ms, plan };
}

export async function benchScale(): Promise<Section & { explain: string }> {
  const t0 = performance.now();
  const fixtures = Number(process.env.BENCH_FIXTURES ?? 100_000);
  const perFixture = Number(process.env.BENCH_PREDICTIONS_PER_FIXTURE ?? 10);
  const figures: Figure[] = [];
  let explain = "";
  let db: TestDatabase | undefined;
  try {
    db = await createTestDatabase("bench_scale", { migrate: true });
    const now = new Date();
    progress(`scale: generating ${fixtures} fixtures and ${fixtures * perFixture} predictions`);
    const gen = await timed(() => generate(db!.sql, fixtures, perFixture, now));
    const [counts] = await db.sql<{ f: number; p: number; open: number }[]>`
      SELECT (SELECT count(*) FROM fixtures)::int AS f, (SELECT count(*) FROM user_predictions)::int AS p,
             (SELECT count(*) FROM user_predictions WHERE prediction_status IN ('SUBMITTED', 'LOCKED'))::int AS open`;
    figures.push({
      name: "generate (set-based SQL)",
      value: round(gen.ms / 1000),
      unit: "s",
      note: `${counts!.f} fixtures, ${counts!.p} predictions (${counts!.open} open)`,
    });

    // In process: full and idle reconciles on the clock of now.
    {
      const explainBefore = await explainSweep(db.sql, now);
      const h = await startHarness({
        label: "bench_scale_inproc",
        leagues: [39, 140, 78],
        speed: 1,
        db,
        start: now,
        faults: { minuteLimit: null, dayLimit: null },
      });
      try {
        const full = await timed(() => h.reconciler.reconcileOnce({ useApi: true }));
        if (full.value.result !== "success") throw new Error(`full reconcile failed: ${full.value.error}`);
        const idle: number[] = [];
        for (let i = 0; i < 10; i++)
          idle.push((await timed(() => h.reconciler.reconcileOnce({ useApi: false }))).ms);
        figures.push(
          {
            name: "full reconcile (in process)",
            value: round(full.ms, 0),
            unit: "ms",
            note: `3 season calls, ${full.value.actions.fixturesWritten} fixtures written, ${full.value.actions.predictionsLocked} predictions locked`,
          },
          { name: "idle reconcile (sweep, median of 10)", value: round(median(idle), 1), unit: "ms" },
          {
            name: "catch-up candidate query (EXPLAIN)",
            value: round(explainBefore.ms, 1),
            unit: "ms",
            note: "every 5 min: open predictions of all past fixtures; the every-pass query is the idle reconcile above",
          },
        );
        explain = explainBefore.plan;
      } finally {
        await h.close(); // keeps the database (passed in)
      }
    }

    // The real program: RSS and /health latency.
    progress("scale: building and starting the scheduler (node dist/main.js) on the bench database");
    const built = existsSync(path.join(REPO_ROOT, "dist", "main.js"));
    if (!built || process.env.BENCH_BUILD !== "false") await buildOnce();
    const child = await startSchedulerHttp({
      built: true,
      env: minimalEnv({
        DATABASE_URL: db.url,
        SCHEDULER_DEMO: "true",
        LEADER_ELECTION: "none",
        HOST: "127.0.0.1",
        LOG_LEVEL: "info",
        ADMIN_TOKEN,
        API_DAILY_BUDGET: "100000",
        API_CALLS_PER_MINUTE: "10000",
      }),
    });
    try {
      const spawned = Date.now();
      await child.waitForHttp(
        "/health",
        (a) => (a.json as { scheduler_status?: string })?.scheduler_status === "running",
        60_000,
      );
      await child.waitForHttp(
        "/status",
        (a) => (a.json as { last_reconcile?: { kind?: string } })?.last_reconcile != null,
        60_000,
      );
      const firstStatusMs = Date.now() - spawned;
      const afterStart = procStatus(child.pid!);
      // /health while reconciles run: force them through the management API meanwhile.
      const latencies: number[] = [];
      let forcing = true;
      const forcer = (async () => {
        let n = 0;
        while (forcing) {
          await fetch(`${child.baseUrl}/api/v1/reconcile`, {
            method: "POST",
            headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
          }).catch(() => {});
          n++;
          await sleep(50);
        }
        return n;
      })();
      for (let i = 0; i < 400; i++) {
        const t = performance.now();
        const answer = await child.get("/health", 5000);
        latencies.push(performance.now() - t);
        if (answer.status !== 200) throw new Error(`/health ${answer.status}: ${answer.text}`);
        await sleep(5);
      }
      forcing = false;
      const forced = await forcer;
      const lastStatus = (await child.get("/status")).json as {
        last_reconcile?: { duration_ms?: number; kind?: string };
      };
      const end = procStatus(child.pid!);
      figures.push(
        { name: "scheduler RSS after start + first reconcile", value: afterStart.rssMiB, unit: "MiB" },
        {
          name: "scheduler RSS after the /health run",
          value: end.rssMiB,
          unit: "MiB",
          note: `peak (VmHWM) ${end.hwmMiB} MiB`,
        },
        {
          name: "/health latency p50 while reconciling",
          value: round(percentile(latencies, 50), 2),
          unit: "ms",
          note: `${latencies.length} requests, ${forced} reconciles forced meanwhile`,
        },
        {
          name: "/health latency p99 while reconciling",
          value: round(percentile(latencies, 99), 2),
          unit: "ms",
          note: `max ${round(Math.max(...latencies), 1)} ms`,
        },
        {
          name: "last reconcile (from /status)",
          value: lastStatus.last_reconcile?.duration_ms ?? "n/a",
          unit: "ms",
          note: `${lastStatus.last_reconcile?.kind ?? "?"}; first reconcile reported ${firstStatusMs} ms after spawn`,
        },
      );
    } finally {
      await child.signalAndWait("SIGTERM", 15_000).catch(() => child.kill());
    }
    return {
      topic: "Scale and memory",
      setup: `${counts!.f} fixtures, ${counts!.p} predictions in PostgreSQL; program: node dist/main.js, demo mode (3 simulated leagues + 1 cup) on that database`,
      figures,
      durationMs: performance.now() - t0,
      explain,
    };
  } finally {
    await db?.drop();
  }
}
