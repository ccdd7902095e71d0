/**
 * `npm run bench`: every benchmark, one table, figures written to bench/results.json.
 *
 *   npm run bench                               # all: reconcile, matchday, season, scale, failover
 *   BENCH_ONLY=reconcile,scale npm run bench    # some (results.json keeps the others' last figures)
 *
 * Needs PostgreSQL at TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test); each
 * part creates and drops its own databases. Benchmarks are never tests: nothing here asserts
 * a time. Knobs: BENCH_USERS (reconcile, 94 × 1,066 ≈ 100k predictions), BENCH_FIXTURES and
 * BENCH_PREDICTIONS_PER_FIXTURE (scale, 100k × 10), BENCH_MATCHDAY_SPEED, REPLAY_SPEED,
 * REPLAY_LIVE_INTERVAL_SECONDS, RUNS (failover).
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { machine, round, type Section } from "./common.js";
import { benchFailover } from "./failover-figures.js";
import { benchMatchDay } from "./matchday.js";
import { benchReconcile } from "./reconcile.js";
import { benchScale } from "./scale.js";
import { benchSeason } from "./season.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.join(HERE, "results.json");

const PARTS: Record<string, () => Promise<Section & { explain?: string }>> = {
  reconcile: benchReconcile,
  matchday: benchMatchDay,
  season: benchSeason,
  scale: benchScale,
  failover: benchFailover,
};

function table(sections: Section[]): string {
  const rows: string[][] = [];
  for (const s of sections) {
    rows.push([`${s.topic}`, "", "", `${s.setup} (${round(s.durationMs / 1000)} s)`]);
    for (const f of s.figures) rows.push([`  ${f.name}`, String(f.value), f.unit, f.note ?? ""]);
  }
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    `| ${r[0]!.padEnd(widths[0]!)} | ${r[1]!.padStart(widths[1]!)} | ${r[2]!.padEnd(widths[2]!)} | ${r[3]} |`;
  return [
    line(["figure", "value", "unit", "note"]),
    `|${"-".repeat(widths[0]! + 2)}|${"-".repeat(widths[1]! + 1)}:|${"-".repeat(widths[2]! + 2)}|---|`,
    ...rows.map(line),
  ].join("\n");
}

async function main() {
  const only = (process.env.BENCH_ONLY ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = only.filter((p) => !(p in PARTS));
  if (unknown.length > 0) {
    console.error(`bench: unknown part ${unknown[0]} (known: ${Object.keys(PARTS).join(", ")})`);
    process.exit(2);
  }
  const selected = Object.keys(PARTS).filter((p) => only.length === 0 || only.includes(p));
  const m = machine();
  console.log(`backend-scheduler benchmarks: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}`);
  const started = performance.now();
  const sections: Record<string, Section & { explain?: string }> = {};
  const failed: string[] = [];
  for (const part of selected) {
    process.stderr.write(`bench ${part} …\n`);
    try {
      sections[part] = await PARTS[part]!();
    } catch (error) {
      failed.push(part);
      console.error(`bench ${part} failed: ${(error as Error).stack ?? error}`);
    }
  }
  console.log(`\n${table(Object.values(sections))}\n`);
  console.log(`total ${round((performance.now() - started) / 1000)} s`);
  if (sections.scale?.explain) console.log(`\nsweep query plan at scale:\n${sections.scale.explain}`);

  const previous = existsSync(RESULTS)
    ? (JSON.parse(readFileSync(RESULTS, "utf8")) as { parts?: Record<string, unknown> })
    : {};
  const parts: Record<string, unknown> = { ...(previous.parts ?? {}) };
  for (const [name, s] of Object.entries(sections))
    parts[name] = { ...s, durationMs: round(s.durationMs, 0), machine: m, at: new Date().toISOString() };
  writeFileSync(
    RESULTS,
    `${JSON.stringify({ command: "npm run bench", machine: m, updated: new Date().toISOString(), parts }, null, 2)}\n`,
  );
  // Keep the committed file in the repository's format (biome checks it).
  await new Promise<void>((resolve) =>
    execFile(path.join(HERE, "..", "node_modules", ".bin", "biome"), ["format", "--write", RESULTS], () =>
      resolve(),
    ),
  );
  console.log(`figures written to ${path.relative(process.cwd(), RESULTS)}`);
  if (failed.length > 0) process.exit(1);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
