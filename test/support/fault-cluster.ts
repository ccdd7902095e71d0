/**
 * Scheduler replicas as real processes for the fault suite, on one fast clock shared with an
 * in-process simulator (CLOCK_START / CLOCK_SPEED / CLOCK_REAL_START, the same numbers given to
 * `scaledClock` here), each replica optionally reaching PostgreSQL through its own TCP proxy
 * (test/support/tcp-proxy.ts) so that a test can cut one replica off its database.
 */
import { type Clock, scaledClock } from "../../controller/clock.js";
import { type Simulator, startSimulator } from "../../controller/simulator/index.js";
import { ANCHOR } from "./harness.js";
import { type ChildScheduler, minimalEnv, sleep, startSchedulerHttp } from "./process.js";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.js";

export const FAULT_API_KEY = "fault-suite-key-0123456789";
export const ADMIN_TOKEN = "fault-suite-admin-token-0123456789";

export interface SharedClock {
  start: Date;
  speed: number;
  realStart: number;
  clock: Clock;
}

export function sharedClock(start: Date, speed: number): SharedClock {
  const realStart = Date.now();
  return { start, speed, realStart, clock: scaledClock(start, speed, realStart) };
}

export async function startSharedSimulator(clock: SharedClock, leagues = [39]): Promise<Simulator> {
  return await startSimulator({
    host: "127.0.0.1",
    port: 0,
    clock: clock.clock,
    anchor: ANCHOR,
    apiKey: FAULT_API_KEY,
    leagues,
    faults: { minuteLimit: null, dayLimit: null },
    random: () => 0.5,
  });
}

export interface Replica {
  id: string;
  child: ChildScheduler;
  proxy: TcpProxy | undefined;
}

export interface ReplicaOptions {
  id: string;
  databaseUrl: string;
  sim: Simulator;
  clock: SharedClock;
  competitions: string;
  /** Reach the database through a TCP proxy of its own (cut it with `replica.proxy.cut()`). */
  proxied?: boolean;
  env?: Record<string, string>;
}

/** The URL of the same database through a proxy on another port. */
export function viaPort(url: string, port: number): string {
  const u = new URL(url);
  u.port = String(port);
  return u.toString();
}

export async function startReplica(o: ReplicaOptions): Promise<Replica> {
  const proxy = o.proxied ? await startTcpProxy(Number(new URL(o.databaseUrl).port || 5432)) : undefined;
  const child = await startSchedulerHttp({
    env: minimalEnv({
      DATABASE_URL: proxy ? viaPort(o.databaseUrl, proxy.port) : o.databaseUrl,
      LEADER_ELECTION: "postgres",
      POD_NAME: o.id,
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      LEASE_DURATION_SECONDS: "3",
      RENEW_DEADLINE_SECONDS: "2",
      RETRY_PERIOD_SECONDS: "0.5",
      FOOTBALL_API_URL: o.sim.url,
      FOOTBALL_API_KEY: FAULT_API_KEY,
      SCHEDULER_COMPETITIONS: o.competitions,
      API_DAILY_BUDGET: "1000000",
      API_DAILY_RESERVE: "0",
      API_CALLS_PER_MINUTE: "100000",
      API_TIMEOUT_SECONDS: "2",
      ADMIN_TOKEN,
      CLOCK_START: o.clock.start.toISOString(),
      CLOCK_SPEED: String(o.clock.speed),
      CLOCK_REAL_START: String(o.clock.realStart),
      ...o.env,
    }),
  });
  try {
    await child.waitForHttp("/health", (a) => a.status === 200, 30_000);
  } catch (error) {
    await child.kill();
    await proxy?.close();
    throw error;
  }
  return { id: o.id, child, proxy };
}

export async function stopReplicas(replicas: Iterable<Replica | undefined>): Promise<void> {
  await Promise.all(
    [...replicas].map(async (r) => {
      if (!r) return;
      r.child.child.kill("SIGCONT");
      await r.child.kill();
      await r.proxy?.close();
    }),
  );
}

/** /health's scheduler_status of a replica, or a reason it did not answer. */
export async function schedulerStatus(r: Replica, timeoutMs = 1000): Promise<string> {
  try {
    const answer = await r.child.get("/health", timeoutMs);
    const s = (answer.json as { scheduler_status?: string } | undefined)?.scheduler_status ?? "?";
    return answer.status === 200 ? s : `${answer.status}:${s}`;
  } catch (error) {
    return `no answer (${(error as Error).message})`;
  }
}

/** Wait until exactly one of `replicas` says "running" and every other one "standby". */
export async function waitForOneLeader(replicas: Replica[], timeoutMs: number): Promise<Replica> {
  const deadline = Date.now() + timeoutMs;
  let last: string[] = [];
  for (;;) {
    last = await Promise.all(replicas.map((r) => schedulerStatus(r)));
    const leaders = replicas.filter((_, i) => last[i] === "running");
    if (leaders.length === 1 && last.every((s) => s === "running" || s === "standby")) return leaders[0]!;
    if (Date.now() > deadline)
      throw new Error(
        `no single leader within ${timeoutMs} ms: ${replicas.map((r, i) => `${r.id}=${last[i]}`).join(", ")}`,
      );
    await sleep(50);
  }
}

/**
 * Cut a replica off its database at a moment when it has no transaction open. postgres.js
 * 3.4.10 crashes the process when a connection closes inside a transaction (ROLLBACK written
 * to a null socket from a setImmediate, upstream porsager/postgres#1208): that bug is reported
 * separately, and these cuts are timed so that it does not decide the outcome.
 */
export async function cutBetweenTransactions(
  sql: import("../../controller/database.js").Sql,
  replicas: Replica[],
  mode: "blackhole" | "reset",
): Promise<void> {
  const names = replicas.map((r) => `backend-scheduler:${r.id}`);
  for (let i = 0; i < 400; i++) {
    const open = await sql`
      SELECT 1 FROM pg_stat_activity
       WHERE application_name = ANY(${names}) AND xact_start IS NOT NULL AND pid <> pg_backend_pid()`;
    if (open.length === 0) break;
    await sleep(2);
  }
  for (const r of replicas) r.proxy!.cut(mode);
}
