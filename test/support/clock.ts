/**
 * A fast clock for tests whose speed can change mid-run: slow around the moment a test
 * measures (a kick-off), fast through the hours in between. Shared in-process by the
 * simulator and the reconciler, so both see the same time.
 */
import type { Clock } from "../../controller/clock.js";

export class TestClock implements Clock {
  private base: number;
  private realBase = Date.now();
  private currentSpeed: number;

  constructor(start: Date, speed: number) {
    this.base = start.getTime();
    this.currentSpeed = speed;
  }

  get speed(): number {
    return this.currentSpeed;
  }

  now(): Date {
    return new Date(this.base + (Date.now() - this.realBase) * this.currentSpeed);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return realSleep(Math.max(0, ms) / this.currentSpeed, signal);
  }

  /** Change speed from now on (time so far is kept). */
  setSpeed(speed: number): void {
    this.base = this.now().getTime();
    this.realBase = Date.now();
    this.currentSpeed = speed;
  }

  /** Jump to a moment (only ever forward in these tests). */
  set(at: Date): void {
    this.base = at.getTime();
    this.realBase = Date.now();
  }

  /** Resolve once the clock has reached `at`. */
  async until(at: Date): Promise<void> {
    for (;;) {
      const left = at.getTime() - this.now().getTime();
      if (left <= 0) return;
      await realSleep(Math.min(200, Math.max(1, left / this.currentSpeed)));
    }
  }
}

function realSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
