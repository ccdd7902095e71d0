/**
 * The simulator as its own process, for tests, benchmarks and demos:
 *   npx tsx controller/simulator/server.ts   (or `npm run simulator` after a build)
 * Configured by SIMULATOR_PORT, SIMULATOR_HOST, CLOCK_SPEED, CLOCK_START, CLOCK_REAL_START,
 * DATA_DIR, SIMULATOR_API_KEY and SIMULATOR_FAULTS (JSON). Prints one JSON line with its URL.
 */
import { type Clock, scaledClock, systemClock } from "../clock.js";
import { type Faults, startSimulator } from "./index.js";

function fail(message: string): never {
  process.stderr.write(`${JSON.stringify({ level: "fatal", msg: message })}\n`);
  process.exit(1);
}

function number(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) fail(`${name}: must be a non-negative number, got ${raw}`);
  return value;
}

const speed = number("CLOCK_SPEED", 1);
if (speed <= 0) fail("CLOCK_SPEED: must be greater than 0");
const startText = process.env.CLOCK_START;
const start = startText ? new Date(startText) : undefined;
if (start && Number.isNaN(start.getTime()))
  fail(`CLOCK_START: must be an ISO-8601 date-time, got ${startText}`);
const realStart = number("CLOCK_REAL_START", 0) || undefined;
const clock: Clock =
  speed === 1 && !start ? systemClock : scaledClock(start ?? new Date(), speed, realStart ?? Date.now());

let faults: Partial<Faults> | undefined;
if (process.env.SIMULATOR_FAULTS) {
  try {
    faults = JSON.parse(process.env.SIMULATOR_FAULTS) as Partial<Faults>;
  } catch {
    fail("SIMULATOR_FAULTS: must be a JSON object");
  }
}

const simulator = await startSimulator({
  port: number("SIMULATOR_PORT", 0),
  host: process.env.SIMULATOR_HOST || "127.0.0.1",
  clock,
  dataDir: process.env.DATA_DIR || undefined,
  apiKey: process.env.SIMULATOR_API_KEY || undefined,
  faults,
});

process.stdout.write(
  `${JSON.stringify({
    level: "info",
    time: new Date().toISOString(),
    msg: "simulator listening",
    url: simulator.url,
    anchor: simulator.anchor.toISOString(),
    clock: clock.now().toISOString(),
    speed,
    leagues: simulator.leagues().map((l) => ({ id: l.id, season: l.season, fixtures: l.fixtures })),
  })}\n`,
);

function stop() {
  simulator.close().then(() => process.exit(0));
}
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
