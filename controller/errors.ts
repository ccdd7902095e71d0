/**
 * One error type for the whole scheduler. Every failure carries a stable `code`
 * (used in logs, metrics and /status) and a retryable/terminal decision taken
 * from one table below, in the spirit of graphile-worker's lib.ts.
 */

export type ErrorCode =
  // configuration
  | "CONFIG_INVALID"
  // database
  | "DB_UNAVAILABLE"
  | "DB_QUERY_FAILED"
  | "DB_LOCKED"
  | "DB_AHEAD_OF_CODE"
  | "DATA_DIR_LOCKED"
  // leadership
  | "FENCED"
  | "NOT_LEADER"
  // API-Football
  | "API_BAD_KEY"
  | "API_DAILY_QUOTA"
  | "API_RATE_LIMIT"
  | "API_HTTP_ERROR"
  | "API_SERVER_ERROR"
  | "API_TIMEOUT"
  | "API_NETWORK"
  | "API_ERROR"
  | "API_BAD_RESPONSE"
  | "API_BUDGET_EXHAUSTED"
  | "ABORTED"
  // Kubernetes
  | "KUBE_CONFLICT"
  | "KUBE_ERROR"
  | "INTERNAL";

/** Codes worth trying again after a backoff; everything else is terminal for this attempt. */
const RETRYABLE: ReadonlySet<string> = new Set<string>([
  "DB_UNAVAILABLE",
  "DB_LOCKED",
  "API_RATE_LIMIT",
  "API_SERVER_ERROR",
  "API_TIMEOUT",
  "API_NETWORK",
  "KUBE_CONFLICT",
  // SQLSTATEs: serialization failure, deadlock, cannot connect now, admin shutdown,
  // lock timeout, query cancelled (statement_timeout), idle-in-transaction timeout
  "40001",
  "40P01",
  "57P01",
  "57P03",
  "55P03",
  "57014",
  "25P03",
  "08000",
  "08003",
  "08006",
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
]);

export class SchedulerError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  /** Extra context that is safe to log (never a secret). */
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown>; retryable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SchedulerError";
    this.code = code;
    this.details = options.details;
    this.retryable = options.retryable ?? isRetryableCode(code);
  }
}

export function isRetryableCode(code: string): boolean {
  return RETRYABLE.has(code);
}

/** Coerce anything thrown into a SchedulerError, keeping the original as `cause`. */
export function toSchedulerError(error: unknown, fallback: ErrorCode = "INTERNAL"): SchedulerError {
  if (error instanceof SchedulerError) return error;
  const raw = error as { code?: unknown; message?: unknown } | undefined;
  const rawCode = typeof raw?.code === "string" ? raw.code : undefined;
  const message = typeof raw?.message === "string" ? raw.message : String(error);
  if (rawCode && isRetryableCode(rawCode)) {
    const code: ErrorCode =
      rawCode.startsWith("E") || rawCode.startsWith("CONN") ? "DB_UNAVAILABLE" : "DB_LOCKED";
    return new SchedulerError(code, message, {
      cause: error,
      retryable: true,
      details: { sqlstate: rawCode },
    });
  }
  return new SchedulerError(fallback, message, { cause: error });
}

/** Capped exponential backoff with full jitter. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
