/**
 * Shared by the benchmark modules: the machine, a figure row, timing helpers.
 * A figure is one line of the printed table and one entry of bench/results.json.
 */
import os from "node:os";

export interface Figure {
  /** What was measured, e.g. "apply: set-based". */
  name: string;
  value: number | string;
  unit: string;
  /** How, against what, or the bound it is compared with. */
  note?: string;
}

export interface Section {
  topic: string;
  /** The setup in one line (data sizes, clock speed, plan). */
  setup: string;
  figures: Figure[];
  durationMs: number;
}

export function machine() {
  return {
    cpu: os.cpus()[0]?.model?.trim() ?? "unknown",
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Progress on stderr, so the table on stdout stays clean. */
export function progress(message: string): void {
  process.stderr.write(`  · ${message}\n`);
}
