/**
 * The API-Football v3 client. One method per call the scheduler makes; every answer's
 * rate-limit headers go into `quota`; errors reported inside an HTTP 200 become
 * SchedulerErrors with stable codes; 429, 5xx, timeouts and network errors are retried with
 * capped exponential backoff and jitter. A bad key or an exhausted daily quota blocks further
 * calls (bad key until `reset()`/`setApiKey()`, quota until 00:00 UTC) so that a broken
 * account is not hammered. Rows are validated one by one: a malformed row is skipped and
 * counted, the rest is used. Status codes are passed through raw; mapping them is the
 * reconciler's job (it must see unknown codes).
 *
 * The key goes only into the `x-apisports-key` header: never into a URL, a log line, an error
 * message or a returned value.
 */
import { z } from "zod";
import { type Clock, systemClock } from "./clock.js";
import { backoffDelay, type ErrorCode, SchedulerError } from "./errors.js";
import type { Logger } from "./logger.js";

/** A fixture as the scheduler needs it, normalized from API-Football's row. */
export interface ApiFixture {
  fixtureId: number;
  date: Date;
  timestamp: number | null;
  statusShort: string;
  statusLong: string | null;
  elapsed: number | null;
  leagueId: number;
  leagueName: string;
  season: number;
  round: string | null;
  homeTeam: string;
  awayTeam: string;
  homeLogo: string | null;
  awayLogo: string | null;
  homeGoals: number | null;
  awayGoals: number | null;
  venueName: string | null;
  venueCity: string | null;
}

export interface QuotaSnapshot {
  /** Per day (`x-ratelimit-requests-*`); null until an answer said. */
  dayLimit: number | null;
  dayRemaining: number | null;
  /** Per minute (`X-RateLimit-*`). */
  minuteLimit: number | null;
  minuteRemaining: number | null;
  /** Clock time of the answer these numbers came from. */
  updatedAt: Date | null;
  /** No call is made before this time (bad key: far future; daily quota: next 00:00 UTC). */
  blockedUntil: Date | null;
  blockedReason: "API_BAD_KEY" | "API_DAILY_QUOTA" | null;
}

export interface FixturesResult {
  fixtures: ApiFixture[];
  /** Rows that failed validation and were skipped. */
  malformed: number;
  quota: QuotaSnapshot;
}

export interface ApiStatus {
  plan: string | null;
  active: boolean | null;
  subscriptionEnd: Date | null;
  requestsToday: number | null;
  dayLimit: number | null;
  quota: QuotaSnapshot;
}

export interface RequestEvent {
  /** `fixtures:season`, `fixtures:ids`, `fixtures:live`, `fixtures:date` or `status`. */
  endpoint: string;
  /** `ok` or the error code of this attempt. */
  outcome: "ok" | ErrorCode;
  durationMs: number;
}

export interface FootballApiOptions {
  baseUrl: string;
  apiKey: string;
  /** Per attempt, real milliseconds. */
  timeoutMs: number;
  /** Retries after the first attempt for retryable failures. */
  maxRetries: number;
  logger: Logger;
  fetch?: typeof fetch;
  /** Waits between retries; defaults to the clock's sleep. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
  /** Called once per HTTP attempt (for metrics). */
  onRequest?: (event: RequestEvent) => void;
  /** Decides when the daily quota resets (00:00 UTC); defaults to the system clock. */
  clock?: Clock;
  /** Backoff base and cap (clock milliseconds). */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

/** API-Football answers at most this many ids per `/fixtures?ids=` call. */
export const MAX_IDS_PER_CALL = 20;

/** Split ids into batches of at most `size` (callers batch `fixturesByIds`). */
export function chunkIds(ids: readonly number[], size = MAX_IDS_PER_CALL): number[][] {
  const chunks: number[][] = [];
  for (let i = 0; i < ids.length; i += size) chunks.push(ids.slice(i, i + size));
  return chunks;
}

// ---- Wire shapes ----

const optionalText = z
  .string()
  .nullish()
  .transform((v) => v ?? null);
const optionalInt = z
  .number()
  .int()
  .nullish()
  .transform((v) => v ?? null);
const score = z.number().int().min(0).nullable();
const team = z.object({ name: z.string().min(1), logo: optionalText });

/** One row of `/fixtures`, the fields we use (API-Football sends many more). */
const fixtureRow = z.object({
  fixture: z.object({
    id: z.number().int().positive(),
    date: z.string().refine((s) => !Number.isNaN(Date.parse(s)), "not a date"),
    timestamp: optionalInt,
    venue: z.object({ name: optionalText, city: optionalText }).nullish(),
    status: z.object({ long: optionalText, short: z.string().min(1), elapsed: optionalInt }),
  }),
  league: z.object({
    id: z.number().int().positive(),
    name: z.string(),
    season: z.number().int(),
    round: optionalText,
  }),
  teams: z.object({ home: team, away: team }),
  goals: z.object({ home: score, away: score }),
});

const envelopeShape = z
  .object({
    get: z.string().optional(),
    errors: z.union([z.array(z.unknown()), z.record(z.string(), z.unknown())]).optional(),
    results: z.number().optional(),
    response: z.unknown().optional(),
  })
  .refine((e) => e.errors !== undefined || e.response !== undefined, "neither errors nor response");

const statusShape = z.object({
  subscription: z.object({ plan: optionalText, end: optionalText, active: z.boolean().nullish() }).nullish(),
  requests: z.object({ current: optionalInt, limit_day: optionalInt }).nullish(),
});

const FAR_FUTURE = new Date(8.64e15);

function nextUtcMidnight(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
}

function headerInt(headers: Headers, name: string): number | null {
  const raw = headers.get(name);
  if (raw === null || raw.trim() === "") return null;
  const value = Number(raw);
  return Number.isFinite(value) ? value : null;
}

/** Retry-After as milliseconds (seconds or an HTTP date), bounded. */
function retryAfterMs(headers: Headers, now: number, maxMs: number): number | undefined {
  const raw = headers.get("retry-after");
  if (!raw) return undefined;
  const seconds = Number(raw);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(raw) - now;
  return Number.isFinite(ms) ? Math.min(Math.max(0, ms), maxMs) : undefined;
}

/** `{"token": "…"}` or `[{"time": "…", "bug": "…"}]` → [key, message] pairs. */
function errorEntries(errors: unknown): [string, string][] {
  if (Array.isArray(errors)) {
    return errors.flatMap((e, i) =>
      e && typeof e === "object"
        ? Object.entries(e as Record<string, unknown>).map(([k, v]) => [k, String(v)] as [string, string])
        : [[String(i), String(e)] as [string, string]],
    );
  }
  if (errors && typeof errors === "object") {
    return Object.entries(errors as Record<string, unknown>).map(([k, v]) => [k, String(v)]);
  }
  return [];
}

/** The one table from API-Football's error keys to our codes. */
function classifyApiError(entries: [string, string][]): ErrorCode {
  const has = (test: (key: string, message: string) => boolean) => entries.some(([k, m]) => test(k, m));
  if (has((k, m) => k === "token" || /application key|api key/i.test(m))) return "API_BAD_KEY";
  if (has((k) => k === "requests")) return "API_DAILY_QUOTA";
  if (has((k) => k === "rateLimit")) return "API_RATE_LIMIT";
  return "API_ERROR";
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

export class FootballApiClient {
  private readonly baseUrl: string;
  private apiKey: string;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly logger: Logger;
  private readonly fetch: typeof fetch;
  private readonly clock: Clock;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly random: () => number;
  private readonly onRequest: ((event: RequestEvent) => void) | undefined;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private state: QuotaSnapshot = {
    dayLimit: null,
    dayRemaining: null,
    minuteLimit: null,
    minuteRemaining: null,
    updatedAt: null,
    blockedUntil: null,
    blockedReason: null,
  };

  constructor(options: FootballApiOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.apiKey = options.apiKey;
    this.timeoutMs = options.timeoutMs;
    this.maxRetries = options.maxRetries;
    this.logger = options.logger;
    this.fetch = options.fetch ?? globalThis.fetch;
    this.clock = options.clock ?? systemClock;
    this.sleep = options.sleep ?? ((ms, signal) => this.clock.sleep(ms, signal));
    this.random = options.random ?? Math.random;
    this.onRequest = options.onRequest;
    this.retryBaseMs = options.retryBaseMs ?? 1000;
    this.retryMaxMs = options.retryMaxMs ?? 60_000;
  }

  /** A copy of the quota as the last answers reported it. */
  get quota(): QuotaSnapshot {
    return { ...this.state };
  }

  /** Lift a bad-key or quota block (an operator fixed the account). */
  reset(): void {
    this.state = { ...this.state, blockedUntil: null, blockedReason: null };
  }

  /** Use a new key; lifts a bad-key block. */
  setApiKey(apiKey: string): void {
    this.apiKey = apiKey;
    if (this.state.blockedReason === "API_BAD_KEY") this.reset();
  }

  /** Every fixture of a league's season (`season` is the year it starts). */
  fixturesBySeason(leagueId: number, season: number, signal?: AbortSignal): Promise<FixturesResult> {
    return this.fixtures("fixtures:season", { league: positive(leagueId), season: positive(season) }, signal);
  }

  /** Fixtures by id, at most MAX_IDS_PER_CALL (batch with `chunkIds`). */
  async fixturesByIds(ids: readonly number[], signal?: AbortSignal): Promise<FixturesResult> {
    if (ids.length > MAX_IDS_PER_CALL) {
      throw new RangeError(`fixturesByIds: at most ${MAX_IDS_PER_CALL} ids a call, got ${ids.length}`);
    }
    if (ids.length === 0) return { fixtures: [], malformed: 0, quota: this.quota };
    return this.fixtures("fixtures:ids", { ids: ids.map(positive).join("-") }, signal);
  }

  /** Matches under way, in every league or in the given ones. */
  liveFixtures(leagueIds?: readonly number[], signal?: AbortSignal): Promise<FixturesResult> {
    const live = leagueIds && leagueIds.length > 0 ? leagueIds.map(positive).join("-") : "all";
    return this.fixtures("fixtures:live", { live }, signal);
  }

  /** Every fixture on a UTC day, `YYYY-MM-DD`. */
  fixturesByDate(date: string, signal?: AbortSignal): Promise<FixturesResult> {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new RangeError(`fixturesByDate: not YYYY-MM-DD: ${date}`);
    return this.fixtures("fixtures:date", { date }, signal);
  }

  /** The account and its request counter; does not count against the daily quota. */
  async status(signal?: AbortSignal): Promise<ApiStatus> {
    // Free of quota, so it may be asked even when the daily quota is spent (not with a bad key).
    const response = await this.request("status", "/status", {}, signal, true);
    const parsed = statusShape.safeParse(Array.isArray(response) ? {} : response);
    const body = parsed.success ? parsed.data : {};
    const current = body.requests?.current ?? null;
    const limit = body.requests?.limit_day ?? null;
    if (current !== null && limit !== null) {
      this.state = {
        ...this.state,
        dayLimit: limit,
        dayRemaining: Math.max(0, limit - current),
        updatedAt: this.clock.now(),
      };
    }
    const end = body.subscription?.end ? new Date(body.subscription.end) : null;
    return {
      plan: body.subscription?.plan ?? null,
      active: body.subscription?.active ?? null,
      subscriptionEnd: end && !Number.isNaN(end.getTime()) ? end : null,
      requestsToday: current,
      dayLimit: limit,
      quota: this.quota,
    };
  }

  private async fixtures(
    endpoint: string,
    params: Record<string, string | number>,
    signal: AbortSignal | undefined,
  ): Promise<FixturesResult> {
    const path = `/fixtures?${new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]))}`;
    const response = await this.request(endpoint, path, params, signal);
    const rows = Array.isArray(response) ? response : [];
    const fixtures: ApiFixture[] = [];
    let malformed = 0;
    for (const row of rows) {
      const parsed = fixtureRow.safeParse(row);
      if (parsed.success) {
        fixtures.push(normalize(parsed.data));
        continue;
      }
      malformed++;
      const rawId = (row as { fixture?: { id?: unknown } } | null)?.fixture?.id;
      const issue = parsed.error.issues[0];
      this.logger.warn(
        {
          endpoint,
          fixtureId: typeof rawId === "number" || typeof rawId === "string" ? rawId : null,
          issue: issue ? `${issue.path.join(".")}: ${issue.message}` : "invalid",
        },
        "skipped a malformed fixture row",
      );
    }
    return { fixtures, malformed, quota: this.quota };
  }

  /** One call with retries; resolves to the envelope's `response`. */
  private async request(
    endpoint: string,
    path: string,
    params: Record<string, string | number>,
    signal: AbortSignal | undefined,
    free = false,
  ): Promise<unknown> {
    const label = `[GET] ${path}`;
    for (let attempt = 0; ; attempt++) {
      this.checkBlocked(label, free);
      if (signal?.aborted) throw aborted(label, signal);
      const started = performance.now();
      try {
        const response = await this.attempt(label, path, signal);
        this.onRequest?.({ endpoint, outcome: "ok", durationMs: performance.now() - started });
        this.logger.debug({ endpoint, params, attempt }, "API call");
        return response;
      } catch (error) {
        const failure =
          error instanceof SchedulerError ? error : new SchedulerError("INTERNAL", `${label}: ${error}`);
        this.onRequest?.({ endpoint, outcome: failure.code, durationMs: performance.now() - started });
        if (!failure.retryable || attempt >= this.maxRetries || signal?.aborted) {
          this.logger.warn(
            { endpoint, code: failure.code, attempt, err: failure.message },
            "API call failed",
          );
          throw failure;
        }
        const hinted = failure.details?.retryAfterMs;
        const base = failure.details?.apiError === "rateLimit" ? this.retryBaseMs * 10 : this.retryBaseMs;
        const delay =
          typeof hinted === "number" ? hinted : backoffDelay(attempt, base, this.retryMaxMs, this.random);
        this.logger.warn(
          { endpoint, code: failure.code, attempt, delayMs: delay, err: failure.message },
          "API call failed, retrying",
        );
        try {
          await this.sleep(delay, signal);
        } catch {
          throw aborted(label, signal);
        }
      }
    }
  }

  private checkBlocked(label: string, free: boolean) {
    const { blockedUntil, blockedReason } = this.state;
    if (!blockedUntil || !blockedReason || (free && blockedReason === "API_DAILY_QUOTA")) return;
    if (blockedUntil.getTime() <= this.clock.now().getTime()) {
      this.reset();
      return;
    }
    const until = blockedReason === "API_BAD_KEY" ? "the key is replaced" : blockedUntil.toISOString();
    throw new SchedulerError(
      blockedReason,
      `${label}: not called, blocked until ${until} (${blockedReason})`,
      {
        details: { blockedUntil: blockedUntil.toISOString() },
      },
    );
  }

  private async attempt(label: string, path: string, signal: AbortSignal | undefined): Promise<unknown> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let res: Response;
    let text: string;
    try {
      res = await this.fetch(`${this.baseUrl}${path}`, {
        method: "GET",
        headers: { "x-apisports-key": this.apiKey, accept: "application/json" },
        signal: combined,
      });
      text = await res.text();
    } catch (error) {
      if (signal?.aborted) throw aborted(label, signal);
      if (timeout.aborted) {
        throw new SchedulerError("API_TIMEOUT", `${label}: no answer within ${this.timeoutMs} ms`);
      }
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const reason = this.scrub(cause?.code ?? cause?.message ?? (error as Error).message);
      throw new SchedulerError("API_NETWORK", `${label}: ${reason}`, { details: { reason } });
    }
    this.readHeaders(res.headers);
    const statusLine = `${res.status} ${res.statusText || STATUS_TEXT[res.status] || ""}`.trim();
    if (res.status === 429) {
      const wait = retryAfterMs(res.headers, Date.now(), this.retryMaxMs);
      throw new SchedulerError("API_RATE_LIMIT", `${label}: ${statusLine}`, {
        details: { status: 429, ...(wait === undefined ? {} : { retryAfterMs: wait }) },
      });
    }
    if (res.status >= 500) {
      throw new SchedulerError("API_SERVER_ERROR", `${label}: ${statusLine}`, {
        details: { status: res.status },
      });
    }
    if (res.status === 401 || res.status === 403) {
      this.block("API_BAD_KEY");
      throw new SchedulerError("API_BAD_KEY", `${label}: ${statusLine}`, { details: { status: res.status } });
    }
    if (!res.ok) {
      throw new SchedulerError("API_HTTP_ERROR", `${label}: ${statusLine}`, {
        details: { status: res.status },
      });
    }
    let body: z.infer<typeof envelopeShape>;
    try {
      body = envelopeShape.parse(JSON.parse(text));
    } catch {
      throw new SchedulerError(
        "API_BAD_RESPONSE",
        `${label}: ${statusLine} but not an API-Football envelope`,
      );
    }
    const entries = errorEntries(body.errors);
    if (entries.length > 0) {
      const code = classifyApiError(entries);
      const message = this.scrub(entries.map(([k, m]) => `${k}: ${m}`).join("; "));
      if (code === "API_BAD_KEY") this.block("API_BAD_KEY");
      if (code === "API_DAILY_QUOTA") {
        this.state = { ...this.state, dayRemaining: 0 };
        this.block("API_DAILY_QUOTA");
      }
      throw new SchedulerError(code, `${label}: ${message}`, {
        details: { apiError: entries[0]![0], status: res.status },
      });
    }
    return body.response;
  }

  private block(reason: "API_BAD_KEY" | "API_DAILY_QUOTA") {
    const blockedUntil = reason === "API_BAD_KEY" ? FAR_FUTURE : nextUtcMidnight(this.clock.now());
    this.state = { ...this.state, blockedUntil, blockedReason: reason };
    this.logger.error(
      { code: reason, blockedUntil: reason === "API_BAD_KEY" ? null : blockedUntil.toISOString() },
      reason === "API_BAD_KEY"
        ? "API-Football rejected the key; no more calls until it is replaced"
        : "API-Football daily quota reached; no more calls until 00:00 UTC",
    );
  }

  private readHeaders(headers: Headers) {
    const dayLimit = headerInt(headers, "x-ratelimit-requests-limit");
    const dayRemaining = headerInt(headers, "x-ratelimit-requests-remaining");
    const minuteLimit = headerInt(headers, "x-ratelimit-limit");
    const minuteRemaining = headerInt(headers, "x-ratelimit-remaining");
    if ([dayLimit, dayRemaining, minuteLimit, minuteRemaining].every((v) => v === null)) return;
    this.state = {
      ...this.state,
      dayLimit: dayLimit ?? this.state.dayLimit,
      dayRemaining: dayRemaining ?? this.state.dayRemaining,
      minuteLimit: minuteLimit ?? this.state.minuteLimit,
      minuteRemaining: minuteRemaining ?? this.state.minuteRemaining,
      updatedAt: this.clock.now(),
    };
  }

  /** Last line of defence: an API or proxy echoing the key never passes it on. */
  private scrub(text: string): string {
    return this.apiKey.length >= 4 ? text.split(this.apiKey).join("[redacted]") : text;
  }
}

function positive(n: number): number {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`not a positive integer: ${n}`);
  return n;
}

function aborted(label: string, signal: AbortSignal | undefined): SchedulerError {
  return new SchedulerError("ABORTED", `${label}: aborted`, { cause: signal?.reason });
}

function normalize(row: z.infer<typeof fixtureRow>): ApiFixture {
  const { fixture, league, teams, goals } = row;
  return {
    fixtureId: fixture.id,
    date: new Date(fixture.date),
    timestamp: fixture.timestamp,
    statusShort: fixture.status.short,
    statusLong: fixture.status.long,
    elapsed: fixture.status.elapsed,
    leagueId: league.id,
    leagueName: league.name,
    season: league.season,
    round: league.round,
    homeTeam: teams.home.name,
    awayTeam: teams.away.name,
    homeLogo: teams.home.logo,
    awayLogo: teams.away.logo,
    homeGoals: goals.home,
    awayGoals: goals.away,
    venueName: fixture.venue?.name ?? null,
    venueCity: fixture.venue?.city ?? null,
  };
}
