/**
 * The whole configuration: one zod schema keyed by the environment variables of the
 * contract (CONTRACT.md § 1). A file named by SCHEDULER_CONFIG (YAML or JSON, same keys)
 * is read first and the environment wins over it. Wrong input becomes one line naming
 * the variable or field; see `formatConfigError`.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import path from "node:path";
import YAML from "yaml";
import { z } from "zod";
import { SchedulerError } from "./errors.js";

export const DEFAULT_API_URL = "https://v3.football.api-sports.io";

export const SCHEDULE_MODES = [
  "live_matches",
  "matches_starting_soon",
  "match_day",
  "upcoming_matches",
  "minimal",
] as const;
export type ScheduleMode = (typeof SCHEDULE_MODES)[number];

export interface CompetitionKey {
  leagueId: number;
  season: number;
}

const COMPETITION_PATTERN = /^\s*(\d{1,6})\s*:\s*(\d{4})\s*$/;

/** `39:2025,140:2025` → [{leagueId: 39, season: 2025}, …]; throws a message naming the bad entry. */
export function parseCompetitions(value: string | readonly string[]): CompetitionKey[] {
  const entries = (typeof value === "string" ? value.split(",") : [...value]).filter((e) => e.trim() !== "");
  const seen = new Set<string>();
  const result: CompetitionKey[] = [];
  for (const entry of entries) {
    const match = COMPETITION_PATTERN.exec(entry);
    if (!match) throw new Error(`"${entry.trim()}" is not leagueId:season (e.g. 39:2025)`);
    const leagueId = Number(match[1]);
    const season = Number(match[2]);
    if (leagueId <= 0) throw new Error(`"${entry.trim()}": league id must be positive`);
    if (season < 1900 || season > 2100)
      throw new Error(`"${entry.trim()}": season ${season} is not a plausible year`);
    const key = `${leagueId}:${season}`;
    if (!seen.has(key)) result.push({ leagueId, season });
    seen.add(key);
  }
  return result;
}

// Environment values are strings; a file may hold real numbers and booleans. Accept both.
const text = z.string().trim().min(1);
const optionalText = z.preprocess((v) => (v === "" ? undefined : v), text.optional());
const bool = (fallback: boolean) =>
  z.preprocess(
    (v) => (v === undefined || v === "" ? fallback : v),
    z.union([
      z.boolean(),
      z
        .enum(["true", "false", "1", "0", "yes", "no"])
        .transform((s) => s === "true" || s === "1" || s === "yes"),
    ]),
  );
const number = (fallback: number) =>
  z.preprocess(
    (v) => (v === undefined || v === "" ? fallback : typeof v === "string" ? Number(v.trim()) : v),
    z.number({ error: "must be a number" }).finite("must be a finite number"),
  );
const positive = (fallback: number) => number(fallback).pipe(z.number().positive("must be greater than 0"));
const nonNegativeInt = (fallback: number) =>
  number(fallback).pipe(z.number().int("must be a whole number").min(0, "must not be negative"));
const positiveInt = (fallback: number) =>
  number(fallback).pipe(z.number().int("must be a whole number").positive("must be greater than 0"));

export const configSchema = z
  .object({
    DATABASE_URL: optionalText,
    DATA_DIR: z.preprocess((v) => (v === "" || v === undefined ? "./.data" : v), text),
    FOOTBALL_API_URL: optionalText.pipe(z.url("must be an http(s) URL").optional()),
    FOOTBALL_API_KEY: optionalText,
    SCHEDULER_COMPETITIONS: z
      .union([z.string(), z.array(z.string())])
      .optional()
      .transform((v, ctx) => {
        if (v === undefined) return [];
        try {
          return parseCompetitions(v);
        } catch (error) {
          ctx.addIssue({ code: "custom", message: (error as Error).message });
          return z.NEVER;
        }
      }),
    SCHEDULER_DEMO: bool(false),
    SCHEDULER_DRY_RUN: bool(false),
    SCHEDULER_CONFIG: optionalText,
    PORT: number(8001).pipe(
      z.number().int("must be a whole number").min(0).max(65535, "must be a port (0-65535)"),
    ),
    HOST: z.preprocess((v) => (v === "" || v === undefined ? "0.0.0.0" : v), text),
    LEADER_ELECTION: z
      .enum(["postgres", "kubernetes", "none"], { error: "must be postgres, kubernetes or none" })
      .optional(),
    LEASE_NAME: z.preprocess(
      (v) => (v === "" || v === undefined ? "backend-scheduler" : v),
      text.regex(
        /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
        "must be a DNS-1123 name (lower case, digits, '-', '.')",
      ),
    ),
    LEASE_NAMESPACE: optionalText,
    LEASE_DURATION_SECONDS: positive(15),
    RENEW_DEADLINE_SECONDS: positive(10),
    RETRY_PERIOD_SECONDS: positive(2),
    POD_NAME: optionalText,
    LOG_LEVEL: z.preprocess(
      (v) => (v === "" || v === undefined ? "info" : v),
      z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"], {
        error: "must be trace, debug, info, warn, error, fatal or silent",
      }),
    ),
    LOG_PRETTY: bool(false),
    ADMIN_TOKEN: optionalText.pipe(z.string().min(16, "must be at least 16 characters").optional()),
    // Scoring (CONTRACT § 4: 3 exact / 1 outcome / 0, configurable).
    POINTS_EXACT: nonNegativeInt(3),
    POINTS_OUTCOME: nonNegativeInt(1),
    // How often the API is asked in each schedule mode.
    INTERVAL_LIVE_MATCHES_SECONDS: positive(60),
    INTERVAL_MATCHES_STARTING_SOON_SECONDS: positive(300),
    INTERVAL_MATCH_DAY_SECONDS: positive(900),
    INTERVAL_UPCOMING_MATCHES_SECONDS: positive(1800),
    INTERVAL_MINIMAL_SECONDS: positive(3600),
    FULL_SYNC_INTERVAL_SECONDS: positive(86_400),
    // The API call queue and the daily budget (API-Football's free plan: 100 a day, 10 a minute).
    API_CONCURRENCY: positiveInt(2),
    API_CALLS_PER_MINUTE: positiveInt(10),
    API_DAILY_BUDGET: positiveInt(100),
    API_DAILY_RESERVE: nonNegativeInt(10),
    API_TIMEOUT_SECONDS: positive(10),
    API_MAX_RETRIES: nonNegativeInt(3),
    // A clock that runs faster than real time, for the demo, tests and benchmarks.
    CLOCK_SPEED: positive(1),
    CLOCK_START: optionalText.pipe(z.iso.datetime({ message: "must be an ISO-8601 date-time" }).optional()),
    CLOCK_REAL_START: number(0).pipe(z.number().int().min(0, "must not be negative")),
    // Demo mode's bundled simulator.
    SIMULATOR_PORT: number(0).pipe(z.number().int().min(0).max(65535, "must be a port (0-65535)")),
  })
  .superRefine((c, ctx) => {
    // client-go's checks: LeaseDuration > RenewDeadline > 1.2 × RetryPeriod.
    if (!(c.LEASE_DURATION_SECONDS > c.RENEW_DEADLINE_SECONDS)) {
      ctx.addIssue({
        code: "custom",
        path: ["RENEW_DEADLINE_SECONDS"],
        message: `must be less than LEASE_DURATION_SECONDS (${c.LEASE_DURATION_SECONDS}), got ${c.RENEW_DEADLINE_SECONDS}`,
      });
    }
    if (!(c.RENEW_DEADLINE_SECONDS > 1.2 * c.RETRY_PERIOD_SECONDS)) {
      ctx.addIssue({
        code: "custom",
        path: ["RETRY_PERIOD_SECONDS"],
        message: `1.2 × RETRY_PERIOD_SECONDS (${c.RETRY_PERIOD_SECONDS}) must be less than RENEW_DEADLINE_SECONDS (${c.RENEW_DEADLINE_SECONDS})`,
      });
    }
    if (c.FOOTBALL_API_URL && !c.FOOTBALL_API_KEY) {
      ctx.addIssue({
        code: "custom",
        path: ["FOOTBALL_API_KEY"],
        message:
          "is required when FOOTBALL_API_URL is set (unset both for demo mode with the bundled simulator)",
      });
    }
    const demo = !c.FOOTBALL_API_URL && !c.FOOTBALL_API_KEY;
    if (demo && c.DATABASE_URL && !c.SCHEDULER_DEMO) {
      ctx.addIssue({
        code: "custom",
        path: ["SCHEDULER_DEMO"],
        message:
          "demo mode (no FOOTBALL_API_KEY) on DATABASE_URL needs SCHEDULER_DEMO=true, so simulated results never reach a real backend by accident",
      });
    }
    if (c.API_DAILY_RESERVE >= c.API_DAILY_BUDGET) {
      ctx.addIssue({
        code: "custom",
        path: ["API_DAILY_RESERVE"],
        message: `must be less than API_DAILY_BUDGET (${c.API_DAILY_BUDGET})`,
      });
    }
  });

export type RawConfig = z.infer<typeof configSchema>;

/** The effective configuration, shaped for the code that uses it. */
export interface Config {
  databaseUrl: string | undefined;
  dataDir: string;
  demo: boolean;
  dryRun: boolean;
  api: {
    url: string | undefined; // undefined in demo mode until the simulator has started
    key: string | undefined;
    concurrency: number;
    callsPerMinute: number;
    dailyBudget: number;
    dailyReserve: number;
    timeoutMs: number;
    maxRetries: number;
  };
  competitions: CompetitionKey[];
  configFile: string | undefined;
  http: { port: number; host: string };
  election: {
    mode: "postgres" | "kubernetes" | "none";
    leaseName: string;
    leaseNamespace: string | undefined;
    leaseDurationMs: number;
    renewDeadlineMs: number;
    retryPeriodMs: number;
    identity: string;
  };
  log: { level: RawConfig["LOG_LEVEL"]; pretty: boolean };
  adminToken: string | undefined;
  points: { exact: number; outcome: number };
  intervalsMs: Record<ScheduleMode, number>;
  fullSyncIntervalMs: number;
  clock: { speed: number; start: Date | undefined; realStart: number | undefined };
  simulatorPort: number;
}

const KNOWN_KEYS = Object.keys(configSchema.shape ?? {}) as string[];

function readConfigFile(file: string): Record<string, unknown> {
  let body: string;
  try {
    body = readFileSync(file, "utf8");
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new SchedulerError("CONFIG_INVALID", `SCHEDULER_CONFIG: cannot read ${file} (${reason})`);
  }
  let parsed: unknown;
  try {
    parsed = file.endsWith(".json") ? JSON.parse(body) : YAML.parse(body);
  } catch (error) {
    // First line only (YAML adds the offending source below it), and without the source
    // snippet newer V8 puts in JSON errors (`…, "{"FOOTBALL_API_KEY": "…"… is not valid JSON`),
    // which could print a secret from the file.
    const first = String((error as Error).message)
      .split("\n")[0]!
      .replace(/,\s*(\.\.\.)?".*is not valid JSON\s*$/, "");
    throw new SchedulerError(
      "CONFIG_INVALID",
      `SCHEDULER_CONFIG: ${file} is not valid ${file.endsWith(".json") ? "JSON" : "YAML"} (${first})`,
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new SchedulerError(
      "CONFIG_INVALID",
      `SCHEDULER_CONFIG: ${file} must hold a mapping of variable names to values`,
    );
  }
  for (const key of Object.keys(parsed)) {
    if (!KNOWN_KEYS.includes(key)) {
      throw new SchedulerError("CONFIG_INVALID", `SCHEDULER_CONFIG: ${file}: unknown key ${key}`);
    }
  }
  // Numbers and booleans from YAML become strings like the environment's, except lists.
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parsed)) {
    out[key] = typeof value === "number" || typeof value === "boolean" ? String(value) : value;
  }
  return out;
}

/**
 * Build the configuration from the environment and the optional file.
 * Throws SchedulerError("CONFIG_INVALID") whose message is the one line to print.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const fromEnv: Record<string, unknown> = {};
  for (const key of KNOWN_KEYS) {
    const value = env[key];
    if (value !== undefined) fromEnv[key] = value;
  }
  const file =
    typeof fromEnv.SCHEDULER_CONFIG === "string" && fromEnv.SCHEDULER_CONFIG.trim() !== ""
      ? fromEnv.SCHEDULER_CONFIG
      : undefined;
  const fromFile = file ? readConfigFile(file) : {};
  const merged = { ...fromFile, ...fromEnv };
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    throw new SchedulerError("CONFIG_INVALID", formatConfigError(result.error, file, fromEnv));
  }
  return shapeConfig(result.data, env);
}

function formatConfigError(
  error: z.ZodError,
  file: string | undefined,
  fromEnv: Record<string, unknown>,
): string {
  const issue = error.issues[0]!;
  const field = issue.path.map(String).join(".") || "configuration";
  const key = String(issue.path[0] ?? "");
  const where = file && key && !(key in fromEnv) ? ` (in ${file})` : "";
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more)` : "";
  return `${field}${where}: ${issue.message}${more}`;
}

function shapeConfig(c: RawConfig, env: NodeJS.ProcessEnv): Config {
  const demo = !c.FOOTBALL_API_URL && !c.FOOTBALL_API_KEY;
  const identity = c.POD_NAME ?? `${hostname()}-${randomBytes(3).toString("hex")}`;
  return {
    databaseUrl: c.DATABASE_URL,
    dataDir: path.resolve(c.DATA_DIR),
    demo,
    dryRun: c.SCHEDULER_DRY_RUN,
    api: {
      url: demo ? undefined : (c.FOOTBALL_API_URL ?? DEFAULT_API_URL),
      key: c.FOOTBALL_API_KEY,
      concurrency: c.API_CONCURRENCY,
      callsPerMinute: c.API_CALLS_PER_MINUTE,
      dailyBudget: c.API_DAILY_BUDGET,
      dailyReserve: c.API_DAILY_RESERVE,
      timeoutMs: c.API_TIMEOUT_SECONDS * 1000,
      maxRetries: c.API_MAX_RETRIES,
    },
    competitions: c.SCHEDULER_COMPETITIONS,
    configFile: c.SCHEDULER_CONFIG,
    http: { port: c.PORT, host: c.HOST },
    election: {
      mode: c.LEADER_ELECTION ?? (c.DATABASE_URL ? "postgres" : "none"),
      leaseName: c.LEASE_NAME,
      leaseNamespace: c.LEASE_NAMESPACE ?? env.POD_NAMESPACE,
      leaseDurationMs: c.LEASE_DURATION_SECONDS * 1000,
      renewDeadlineMs: c.RENEW_DEADLINE_SECONDS * 1000,
      retryPeriodMs: c.RETRY_PERIOD_SECONDS * 1000,
      identity,
    },
    log: { level: c.LOG_LEVEL, pretty: c.LOG_PRETTY },
    adminToken: c.ADMIN_TOKEN,
    points: { exact: c.POINTS_EXACT, outcome: c.POINTS_OUTCOME },
    intervalsMs: {
      live_matches: c.INTERVAL_LIVE_MATCHES_SECONDS * 1000,
      matches_starting_soon: c.INTERVAL_MATCHES_STARTING_SOON_SECONDS * 1000,
      match_day: c.INTERVAL_MATCH_DAY_SECONDS * 1000,
      upcoming_matches: c.INTERVAL_UPCOMING_MATCHES_SECONDS * 1000,
      minimal: c.INTERVAL_MINIMAL_SECONDS * 1000,
    },
    fullSyncIntervalMs: c.FULL_SYNC_INTERVAL_SECONDS * 1000,
    clock: {
      speed: c.CLOCK_SPEED,
      start: c.CLOCK_START ? new Date(c.CLOCK_START) : undefined,
      realStart: c.CLOCK_REAL_START || undefined,
    },
    simulatorPort: c.SIMULATOR_PORT,
  };
}

const SECRET = "[redacted]";

/** The configuration as it may be printed: secrets replaced, passwords cut out of URLs. */
export function redactedConfig(config: Config): Record<string, unknown> {
  return {
    ...config,
    databaseUrl: config.databaseUrl ? redactUrl(config.databaseUrl) : undefined,
    api: { ...config.api, key: config.api.key ? SECRET : undefined },
    adminToken: config.adminToken ? SECRET : undefined,
  };
}

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "[unparseable url]";
  }
}
