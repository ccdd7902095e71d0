/**
 * Structured logs with pino. JSON by default; pretty only when LOG_PRETTY=true.
 * Secrets are removed twice: known fields are redacted by path, and as a last line of
 * defence every output line is scrubbed of the secret values themselves (an API key
 * echoed inside an error message from a proxy, say).
 */
import { type Logger, pino } from "pino";

export type { Logger };

const REDACT_PATHS = [
  "apiKey",
  "key",
  "token",
  "adminToken",
  "password",
  "authorization",
  "headers.authorization",
  "headers['x-apisports-key']",
  "req.headers.authorization",
  "config.api.key",
  "config.adminToken",
  "*.apiKey",
  "*.password",
];

export interface LoggerOptions {
  level: string;
  pretty?: boolean;
  /** Values that must never be printed (API key, admin token, database password). */
  secrets?: readonly (string | undefined)[];
  /** Where to write (defaults to stdout); tests pass a stream to capture output. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const secrets = (options.secrets ?? []).filter((s): s is string => typeof s === "string" && s.length >= 4);
  const scrub = (line: string) => secrets.reduce((out, secret) => out.split(secret).join("[redacted]"), line);
  const base = {
    level: options.level,
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    base: { service: "backend-scheduler" },
    timestamp: pino.stdTimeFunctions.isoTime,
    // pino reads hooks.logMethod unconditionally: pass hooks only when there is one.
    ...(secrets.length > 0 ? { hooks: { streamWrite: scrub } } : {}),
  };
  if (options.pretty) {
    return pino({ ...base, transport: { target: "pino-pretty", options: { colorize: true } } });
  }
  return pino(
    base,
    (options.destination ?? pino.destination({ dest: 1, sync: false })) as pino.DestinationStream,
  );
}
