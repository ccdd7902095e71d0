/**
 * An injected clock, so that tests and the simulator can run a season in minutes.
 * `now()` is the scheduler's idea of the current time; `sleep()` waits for a span of
 * *clock* time (which may pass faster than real time).
 */
export interface Clock {
  now(): Date;
  /** Resolves after `ms` of clock time, or rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** How many clock milliseconds pass per real millisecond (1 for the system clock). */
  readonly speed: number;
}

export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms, signal) => sleepReal(ms, signal),
  speed: 1,
};

/**
 * A clock that starts at `start` and runs `speed` times faster than real time.
 * Used by the simulator and by tests ("fast clock").
 */
export function scaledClock(start: Date, speed: number, realOrigin = Date.now()): Clock {
  // Two processes given the same (start, speed, realOrigin) agree on the time: that is
  // how a test runs the simulator and the scheduler on one fast clock.
  const clockOrigin = start.getTime();
  return {
    speed,
    now: () => new Date(clockOrigin + (Date.now() - realOrigin) * speed),
    sleep: (ms, signal) => sleepReal(ms / speed, signal),
  };
}

function sleepReal(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(done, Math.max(0, ms));
    function done() {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }
    function onAbort() {
      clearTimeout(timer);
      reject(signal?.reason);
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
