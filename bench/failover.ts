/**
 * Failover benchmark: three scheduler replicas as real processes on one PostgreSQL
 * database (LEADER_ELECTION=postgres), the leader ended again and again, by `kill -9`
 * (the lease has to expire) and by SIGTERM (the lease is released and the standbys are
 * woken with NOTIFY). Prints min / median / max of the time from the signal to the first
 * moment a standby reports `"scheduler_status":"running"` on /health.
 *
 *   npx tsx bench/failover.ts            # 5 runs of each
 *   RUNS=10 npx tsx bench/failover.ts
 *
 * Timings: LEASE_DURATION_SECONDS=3, RENEW_DEADLINE_SECONDS=2, RETRY_PERIOD_SECONDS=0.5
 * (override with the same variables). Needs PostgreSQL at TEST_DATABASE_URL (default
 * postgres://postgres@127.0.0.1:5432/test, a database per run is created and dropped).
 *
 * The cluster helpers are exported for test/failover.test.ts.
 */
import os from "node:os";
import { pathToFileURL } from "node:url";
import { systemClock } from "../controller/clock.js";
import { type Simulator, startSimulator } from "../controller/simulator/index.js";
import { createTestDatabase } from "../test/support/database.js";
import { type ChildScheduler, minimalEnv, sleep, startSchedulerHttp } from "../test/support/process.js";

export interface Timings {
  leaseSeconds: number;
  renewDeadlineSeconds: number;
  retryPeriodSeconds: number;
}

export const DEFAULT_TIMINGS: Timings = {
  leaseSeconds: Number(process.env.LEASE_DURATION_SECONDS ?? 3),
  renewDeadlineSeconds: Number(process.env.RENEW_DEADLINE_SECONDS ?? 2),
  retryPeriodSeconds: Number(process.env.RETRY_PERIOD_SECONDS ?? 0.5),
};

export interface ClusterOptions {
  databaseUrl: string;
  /** API-Football (the simulator started by `startApi`). */
  apiUrl: string;
  competitions: string;
  timings?: Timings;
  /** Extra environment for every replica. */
  env?: Record<string, string>;
}

interface LeaderBlock {
  identity: string;
  is_leader: boolean;
  holder: string | null;
  epoch: number | null;
  transitions: number;
}

/** A simulator for the replicas to ask (no quotas), in this process. */
export async function startApi(): Promise<{ sim: Simulator; competitions: string }> {
  const sim = await startSimulator({
    port: 0,
    host: "127.0.0.1",
    clock: systemClock,
    faults: { minuteLimit: null, dayLimit: null },
  });
  const league = sim.leagues()[0]!;
  return { sim, competitions: `${league.id}:${league.season}` };
}

export class Cluster {
  readonly replicas = new Map<string, ChildScheduler>();
  readonly timings: Timings;

  constructor(private readonly options: ClusterOptions) {
    this.timings = options.timings ?? DEFAULT_TIMINGS;
  }

  /** Start a replica with POD_NAME=id; resolves once its HTTP server answers. */
  async add(id: string): Promise<ChildScheduler> {
    const t = this.timings;
    const child = await startSchedulerHttp({
      env: minimalEnv({
        DATABASE_URL: this.options.databaseUrl,
        LEADER_ELECTION: "postgres",
        POD_NAME: id,
        HOST: "127.0.0.1",
        LOG_LEVEL: "info",
        LEASE_DURATION_SECONDS: String(t.leaseSeconds),
        RENEW_DEADLINE_SECONDS: String(t.renewDeadlineSeconds),
        RETRY_PERIOD_SECONDS: String(t.retryPeriodSeconds),
        FOOTBALL_API_URL: this.options.apiUrl,
        FOOTBALL_API_KEY: "failover-test-key",
        SCHEDULER_COMPETITIONS: this.options.competitions,
        API_DAILY_BUDGET: "1000000",
        API_DAILY_RESERVE: "0",
        API_CALLS_PER_MINUTE: "100000",
        ...this.options.env,
      }),
    });
    this.replicas.set(id, child);
    await child.waitForHttp("/health", (a) => a.status === 200, 30_000);
    return child;
  }

  alive(): [string, ChildScheduler][] {
    return [...this.replicas].filter(([, c]) => !c.hasExited);
  }

  /** The leader block of `/status` of every live replica that answers. */
  async leaderBlocks(): Promise<Map<string, LeaderBlock>> {
    const out = new Map<string, LeaderBlock>();
    await Promise.all(
      this.alive().map(async ([id, child]) => {
        try {
          const answer = await child.get("/status", 2000);
          const leader = (answer.json as { leader?: LeaderBlock } | undefined)?.leader;
          if (leader) out.set(id, leader);
        } catch {
          // stopped (SIGSTOP) or exiting
        }
      }),
    );
    return out;
  }

  /** Ids of live replicas whose /health says "running", polled all at once. */
  async running(ids: string[]): Promise<string[]> {
    const states = await Promise.all(
      ids.map(async (id) => {
        try {
          const answer = await this.replicas.get(id)!.get("/health", 1000);
          return (answer.json as { scheduler_status?: string } | undefined)?.scheduler_status === "running";
        } catch {
          return false;
        }
      }),
    );
    return ids.filter((_, i) => states[i]);
  }

  /** Wait until exactly one of `among` leads (and the others agree); returns its id. */
  async waitForSingleLeader(among: string[], timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    for (;;) {
      const blocks = await this.leaderBlocks();
      const leaders = among.filter((id) => blocks.get(id)?.is_leader);
      const agreed = among.every((id) => blocks.get(id)?.holder === leaders[0]);
      if (leaders.length === 1 && agreed) return leaders[0]!;
      last = JSON.stringify(Object.fromEntries(blocks));
      if (Date.now() > deadline) throw new Error(`no single leader within ${timeoutMs} ms; last: ${last}`);
      await sleep(50);
    }
  }

  /** Poll /health of `among` every 20 ms from now until one runs; the milliseconds since `since`. */
  async waitForNewLeader(
    among: string[],
    since: number,
    timeoutMs: number,
  ): Promise<{ id: string; ms: number }> {
    for (;;) {
      const found = await this.running(among);
      const at = Date.now();
      if (found.length > 0) return { id: found[0]!, ms: at - since };
      if (at - since > timeoutMs) throw new Error(`no standby led within ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.replicas.values()].map((c) => c.kill()));
  }
}

/**
 * End the current leader with `how`, measure until a standby leads, then start a fresh
 * replica in place of the one that went (so there are three again).
 */
export async function failoverOnce(
  cluster: Cluster,
  how: "SIGKILL" | "SIGTERM",
  nextId: string,
): Promise<{ leader: string; next: string; ms: number }> {
  const ids = cluster.alive().map(([id]) => id);
  const leader = await cluster.waitForSingleLeader(ids, 20_000);
  const standbys = ids.filter((id) => id !== leader);
  const child = cluster.replicas.get(leader)!;
  const t0 = Date.now();
  child.child.kill(how);
  const { id, ms } = await cluster.waitForNewLeader(standbys, t0, 30_000);
  const exit = await child.waitForExit(15_000);
  if (how === "SIGTERM" && exit.code !== 0) throw new Error(`${leader} exited ${exit.code} after SIGTERM`);
  await cluster.add(nextId);
  return { leader, next: id, ms };
}

const summary = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const median =
    sorted.length % 2
      ? sorted[(sorted.length - 1) / 2]!
      : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  return { min: sorted[0]!, median, max: sorted[sorted.length - 1]! };
};

async function main() {
  const runs = Number(process.env.RUNS ?? 5);
  const db = await createTestDatabase("bench_failover", { migrate: true });
  const { sim, competitions } = await startApi();
  const cluster = new Cluster({ databaseUrl: db.url, apiUrl: sim.url, competitions });
  const t = cluster.timings;
  console.log(
    `failover benchmark: 3 replicas, lease ${t.leaseSeconds} s, renew deadline ${t.renewDeadlineSeconds} s, retry ${t.retryPeriodSeconds} s; ` +
      `${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), Node ${process.version}`,
  );
  let n = 0;
  try {
    await Promise.all(["r1", "r2", "r3"].map((id) => cluster.add(id)));
    n = 3;
    const results: Record<string, number[]> = { SIGKILL: [], SIGTERM: [] };
    for (let i = 0; i < runs; i++) {
      for (const how of ["SIGKILL", "SIGTERM"] as const) {
        const r = await failoverOnce(cluster, how, `r${++n}`);
        results[how]!.push(r.ms);
        console.log(
          `  ${how === "SIGKILL" ? "kill -9" : "SIGTERM"} of ${r.leader}: ${r.next} leads after ${r.ms} ms`,
        );
      }
    }
    for (const [how, values] of Object.entries(results)) {
      const s = summary(values);
      const bound =
        how === "SIGKILL"
          ? `lease + retry = ${(t.leaseSeconds + t.retryPeriodSeconds) * 1000} ms`
          : "2000 ms";
      console.log(
        `${how === "SIGKILL" ? "kill -9" : "SIGTERM"}: n=${values.length} min ${s.min} ms, median ${s.median} ms, max ${s.max} ms (bound ${bound})`,
      );
    }
  } finally {
    await cluster.close();
    await sim.close();
    await db.drop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
