/**
 * Failover figures for `npm run bench`, through bench/failover.ts's cluster helpers: three
 * replicas on one PostgreSQL database, the leader ended by kill -9 and by SIGTERM, the time
 * from the signal until a standby reports "running" on /health.
 */
import { createTestDatabase } from "../test/support/database.js";
import { type Figure, median, progress, type Section } from "./common.js";
import { Cluster, failoverOnce, startApi } from "./failover.js";

export async function benchFailover(): Promise<Section> {
  const t0 = performance.now();
  const runs = Number(process.env.RUNS ?? 3);
  const db = await createTestDatabase("bench_failover", { migrate: true });
  const { sim, competitions } = await startApi();
  const cluster = new Cluster({ databaseUrl: db.url, apiUrl: sim.url, competitions });
  const t = cluster.timings;
  try {
    progress(`failover: 3 replicas, ${runs} runs of kill -9 and SIGTERM`);
    await Promise.all(["r1", "r2", "r3"].map((id) => cluster.add(id)));
    let n = 3;
    const results: Record<"SIGKILL" | "SIGTERM", number[]> = { SIGKILL: [], SIGTERM: [] };
    for (let i = 0; i < runs; i++)
      for (const how of ["SIGKILL", "SIGTERM"] as const)
        results[how].push((await failoverOnce(cluster, how, `r${++n}`)).ms);
    const figure = (how: "SIGKILL" | "SIGTERM", bound: string): Figure => {
      const v = results[how];
      return {
        name: `${how === "SIGKILL" ? "kill -9" : "SIGTERM"}: signal → standby running (median)`,
        value: median(v),
        unit: "ms",
        note: `n=${v.length}, min ${Math.min(...v)}, max ${Math.max(...v)}; bound ${bound}`,
      };
    };
    return {
      topic: "Failover",
      setup: `3 replica processes, LEADER_ELECTION=postgres, lease ${t.leaseSeconds} s, renew deadline ${t.renewDeadlineSeconds} s, retry ${t.retryPeriodSeconds} s`,
      figures: [
        figure("SIGKILL", `lease + retry = ${(t.leaseSeconds + t.retryPeriodSeconds) * 1000} ms`),
        figure("SIGTERM", "2000 ms"),
      ],
      durationMs: performance.now() - t0,
    };
  } finally {
    await cluster.close();
    await sim.close();
    await db.drop();
  }
}
