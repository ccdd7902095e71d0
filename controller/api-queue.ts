/**
 * The one path every API-Football call takes: a p-queue bounding concurrency and calls per
 * minute (a sliding window, in clock time), plus a daily budget counted per UTC day of the
 * clock. Ordinary calls stop at `dailyBudget - dailyReserve`; essential ones (e.g. the
 * results of matches that just finished) may use the reserve, never more than `dailyBudget`.
 * The API's own count (`dayRemaining`) is never exceeded either, and nothing is sent while
 * the client is blocked (bad key, daily quota).
 */
import PQueue from "p-queue";
import type { Clock } from "./clock.js";
import { SchedulerError } from "./errors.js";
import type { QuotaSnapshot } from "./football-api.js";

export interface ApiQueueOptions {
  concurrency: number;
  callsPerMinute: number;
  dailyBudget: number;
  dailyReserve: number;
  clock: Clock;
  /** The client's quota, read before each call. */
  quota: () => QuotaSnapshot;
  /** Calls already made today (e.g. restored after a restart). */
  callsToday?: number;
  /** Called after each call is counted, with its UTC day (to persist the count). */
  onCall?: (day: string) => void;
}

export interface RunOptions {
  /** May use the daily reserve. */
  essential?: boolean;
  signal?: AbortSignal;
}

function utcDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

export class ApiQueue {
  private readonly queue: PQueue;
  private readonly options: ApiQueueOptions;
  private day: string;
  private calls: number;
  private running = 0;
  private shutdown = new AbortController();

  constructor(options: ApiQueueOptions) {
    if (options.dailyReserve >= options.dailyBudget) {
      throw new RangeError("ApiQueue: dailyReserve must be less than dailyBudget");
    }
    this.options = options;
    this.day = utcDay(options.clock.now());
    this.calls = options.callsToday ?? 0;
    this.queue = new PQueue({
      concurrency: options.concurrency,
      intervalCap: options.callsPerMinute,
      // A minute of clock time: a fast clock fills its minutes faster.
      interval: Math.max(1, Math.round(60_000 / options.clock.speed)),
      strict: true,
    });
  }

  /** Calls waiting to start. */
  get depth(): number {
    return this.queue.size;
  }

  get inFlight(): number {
    return this.running;
  }

  get callsToday(): number {
    this.rollDay();
    return this.calls;
  }

  /** Ordinary calls still allowed today (0 while blocked); the reconciler stretches its intervals by it. */
  remainingToday(): number {
    return this.allowance(false);
  }

  /**
   * Run `fn` when the queue allows; rejects with API_BUDGET_EXHAUSTED (or the block's code)
   * without calling when today's budget is spent. `fn` gets a signal aborted by `abortAll()`
   * or by the caller's signal.
   */
  async run<T>(
    endpoint: string,
    fn: (signal: AbortSignal) => Promise<T>,
    options: RunOptions = {},
  ): Promise<T> {
    const essential = options.essential ?? false;
    this.refuseIfSpent(endpoint, essential);
    // One controller per call, linked by hand to the caller's signal and to shutdown (rather
    // than AbortSignal.any on the long-lived shutdown signal), and unlinked when done.
    const controller = new AbortController();
    const signal = controller.signal;
    const sources = [options.signal, this.shutdown.signal].filter((s): s is AbortSignal => s !== undefined);
    const onAbort = (event: Event) => controller.abort((event.target as AbortSignal).reason);
    for (const source of sources) {
      if (source.aborted) controller.abort(source.reason);
      else source.addEventListener("abort", onAbort, { once: true });
    }
    try {
      return await this.queue.add(
        async () => {
          // The budget may have been spent while this call waited.
          this.refuseIfSpent(endpoint, essential);
          if (signal.aborted) throw abortedError(endpoint, signal);
          this.calls++;
          this.options.onCall?.(this.day);
          this.running++;
          try {
            return await fn(signal);
          } finally {
            this.running--;
          }
        },
        { signal },
      );
    } catch (error) {
      if (error instanceof SchedulerError) throw error;
      if (signal.aborted) throw abortedError(endpoint, signal);
      throw error;
    } finally {
      for (const source of sources) source.removeEventListener("abort", onAbort);
    }
  }

  /** Abort every call in flight and every call waiting (shutdown). The queue stays usable. */
  abortAll(reason = "shutting down"): void {
    const controller = this.shutdown;
    this.shutdown = new AbortController();
    controller.abort(new SchedulerError("ABORTED", reason));
  }

  /** Resolves when nothing is queued or running. */
  onIdle(): Promise<void> {
    return this.queue.onIdle();
  }

  private rollDay() {
    const today = utcDay(this.options.clock.now());
    if (today !== this.day) {
      this.day = today;
      this.calls = 0;
    }
  }

  private allowance(essential: boolean): number {
    this.rollDay();
    const { dailyBudget, dailyReserve, clock } = this.options;
    const quota = this.options.quota();
    const now = clock.now();
    if (quota.blockedUntil && quota.blockedUntil.getTime() > now.getTime()) return 0;
    const reserve = essential ? 0 : dailyReserve;
    let left = dailyBudget - reserve - this.calls;
    // The API's own count, when it is from today (it resets at 00:00 UTC); calls in flight
    // have not been counted in it yet.
    if (quota.dayRemaining !== null && quota.updatedAt && utcDay(quota.updatedAt) === this.day) {
      left = Math.min(left, quota.dayRemaining - reserve - this.running);
    }
    return Math.max(0, left);
  }

  private refuseIfSpent(endpoint: string, essential: boolean) {
    const quota = this.options.quota();
    if (quota.blockedUntil && quota.blockedReason && quota.blockedUntil > this.options.clock.now()) {
      throw new SchedulerError(
        quota.blockedReason,
        `${endpoint}: API calls blocked (${quota.blockedReason})`,
        {
          details: { blockedUntil: quota.blockedUntil.toISOString() },
        },
      );
    }
    if (this.allowance(essential) > 0) return;
    throw new SchedulerError(
      "API_BUDGET_EXHAUSTED",
      `${endpoint}: daily API budget spent (${this.calls} calls today, budget ${this.options.dailyBudget}, reserve ${this.options.dailyReserve})`,
      { details: { day: this.day, callsToday: this.calls, essential } },
    );
  }
}

function abortedError(endpoint: string, signal: AbortSignal): SchedulerError {
  return new SchedulerError("ABORTED", `${endpoint}: aborted`, { cause: signal.reason });
}
