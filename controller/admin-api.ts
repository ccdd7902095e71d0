/**
 * The management API (issue 6), mounted at /api/v1 by http-server.ts:
 *
 *   POST   /reconcile                          run a reconcile now                  202
 *   POST   /competitions/{league}:{season}/resync  full resync of one competition   202
 *   GET    /fixtures/{id}/history              the recorded changes of one fixture  200
 *   PUT    /fixtures/{id}/override             pin status and score (JSON body)     202
 *   DELETE /fixtures/{id}/override             remove the pin                       202
 *
 * Checks run in this order: 404 (no ADMIN_TOKEN: the paths do not exist) → 401 (bearer token
 * missing or wrong; constant-time compare) → 415/413 (body not JSON / over 16 kB) → 400 (bad
 * input, one clear line) → 409 on a standby (`{"error":"not_leader","leader":holder}`; a
 * standby forwards nothing) → the action. Reading a fixture's history is not an action: any
 * replica answers it. The token is never logged nor echoed.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import express, { type Request, type RequestHandler, type Response } from "express";
import { parseCompetitions } from "./config.js";
import { SchedulerError } from "./errors.js";
import type { Logger } from "./logger.js";
import { MATCH_STATUSES } from "./plan.js";

export interface OverridePin {
  status: string;
  homeScore: number | null;
  awayScore: number | null;
  reason?: string;
}

export interface AdminActions {
  leader(): { isLeader: boolean; identity: string; holder: string | null };
  /** Run a reconcile as soon as possible (202). */
  reconcileNow(): void;
  /** false → 404 unknown competition; true → 202. */
  resync(leagueId: number, season: number): boolean;
  /** null → 404 no such fixture. */
  fixtureHistory(fixtureId: number): Promise<unknown[] | null>;
  /** false → 404 no such fixture; true → 202. */
  setOverride(fixtureId: number, pin: OverridePin): Promise<boolean>;
  /** false → 404 no pin; true → 202. */
  removeOverride(fixtureId: number): Promise<boolean>;
}

export interface AdminRouterOptions {
  token: string | undefined;
  actions: AdminActions;
  logger: Logger;
}

export const ADMIN_BODY_LIMIT_BYTES = 16 * 1024;
/** PostgreSQL's integer, the type of fixtures.fixture_id. */
const MAX_FIXTURE_ID = 2_147_483_647;
const MAX_SCORE = 999;
const MAX_REASON_LENGTH = 500;
const FINISHED_STATUSES = new Set(["FINISHED", "FINISHED_AET", "FINISHED_PEN"]);
const OVERRIDE_FIELDS = new Set(["status", "home_score", "away_score", "reason"]);

/** A 4xx answer decided by a check; thrown inside handlers, answered by `fail`. */
class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
  ) {
    super(String(body.message ?? body.error));
  }
}

const badRequest = (message: string) => new HttpProblem(400, { error: "bad_request", message });

export function createAdminRouter(options: AdminRouterOptions): express.Router {
  const router = express.Router({ caseSensitive: true, strict: false });
  const logger = options.logger.child({ component: "admin-api" });
  const { actions } = options;
  // Without a token the management API does not exist: every path falls through to the 404.
  if (!options.token) return router;
  const expected = digest(options.token);

  const authenticate: RequestHandler = (req, res, next) => {
    const header = req.headers.authorization;
    const match = typeof header === "string" ? /^Bearer +(\S+) *$/i.exec(header) : null;
    if (!match) {
      res.set("WWW-Authenticate", 'Bearer realm="backend-scheduler"');
      res.status(401).json({
        error: "unauthorized",
        message: "an Authorization: Bearer <ADMIN_TOKEN> header is required",
      });
      return;
    }
    // Equal-length digests, so neither the comparison's time nor a length check leaks the token.
    if (!timingSafeEqual(digest(match[1]!), expected)) {
      logger.warn({ method: req.method, path: req.path, ip: req.ip }, "admin API: wrong bearer token");
      res.set("WWW-Authenticate", 'Bearer realm="backend-scheduler", error="invalid_token"');
      res.status(401).json({ error: "unauthorized", message: "wrong bearer token" });
      return;
    }
    next();
  };

  const parseJson = express.json({ limit: ADMIN_BODY_LIMIT_BYTES, strict: true, type: "application/json" });
  /** A body, when there is one, must be JSON within the limit; `required` routes need an object. */
  const body =
    (required: boolean): RequestHandler =>
    (req, res, next) => {
      if (!hasBody(req)) {
        if (required) return fail(res, badRequest("a JSON body is required"));
        req.body = undefined;
        return next();
      }
      if (!req.is("application/json")) {
        return fail(
          res,
          new HttpProblem(415, {
            error: "unsupported_media_type",
            message: "send Content-Type: application/json",
          }),
        );
      }
      parseJson(req, res, (error?: unknown) => {
        if (error) {
          const type = (error as { type?: string }).type;
          if (type === "entity.too.large") {
            return fail(
              res,
              new HttpProblem(413, {
                error: "payload_too_large",
                message: `the body must be at most ${ADMIN_BODY_LIMIT_BYTES} bytes`,
              }),
            );
          }
          if (type === "encoding.unsupported" || type === "charset.unsupported") {
            return fail(
              res,
              new HttpProblem(415, { error: "unsupported_media_type", message: "send UTF-8 JSON" }),
            );
          }
          return fail(res, badRequest("the body is not valid JSON"));
        }
        next();
      });
    };

  /** 409 on a standby, with the leader's identity: a standby acts on nothing and forwards nothing. */
  const requireLeader = () => {
    const state = actions.leader();
    if (!state.isLeader) throw notLeader(state.holder);
  };
  const notLeader = (holder: string | null) =>
    new HttpProblem(409, {
      error: "not_leader",
      leader: holder,
      message: holder
        ? `this replica is a standby; the leader is ${holder}`
        : "this replica is a standby; no leader right now",
    });

  const handle =
    (fn: (req: Request, res: Response) => Promise<void> | void): RequestHandler =>
    async (req, res) => {
      try {
        await fn(req, res);
      } catch (error) {
        if (error instanceof HttpProblem) return fail(res, error);
        if (error instanceof SchedulerError && (error.code === "FENCED" || error.code === "NOT_LEADER")) {
          // Leadership was lost between the check and the write: the write rolled back.
          return fail(res, notLeader(safeLeader(actions)));
        }
        if (error instanceof SchedulerError && error.retryable) {
          logger.warn({ err: error, path: req.path }, "admin API: action failed, try again");
          return fail(
            res,
            new HttpProblem(503, { error: "unavailable", message: `try again (${error.code})` }),
          );
        }
        logger.error({ err: error, path: req.path }, "admin API: action failed");
        res.status(500).json({ error: "internal_error" });
      }
    };

  const accepted = (res: Response, body: Record<string, unknown>) => {
    res.status(202).json({ status: "accepted", ...body });
  };

  // ---------------------------------------------------------------- routes

  router.post(
    "/reconcile",
    authenticate,
    body(false),
    handle((_req, res) => {
      requireLeader();
      actions.reconcileNow();
      logger.info({ action: "reconcile" }, "admin API: reconcile requested");
      accepted(res, { action: "reconcile" });
    }),
  );

  // One parameter, "{league}:{season}", parsed here: clearer messages than a path pattern
  // (":" is a parameter marker in express 5's path syntax), and %3A works too.
  router.post(
    "/competitions/:competition/resync",
    authenticate,
    body(false),
    handle((req, res) => {
      const { leagueId, season } = parseCompetition(String(req.params.competition));
      requireLeader();
      if (!actions.resync(leagueId, season)) {
        throw new HttpProblem(404, {
          error: "unknown_competition",
          message: `competition ${leagueId}:${season} is not kept in sync here`,
        });
      }
      logger.info({ action: "resync", leagueId, season }, "admin API: resync requested");
      accepted(res, { action: "resync", league: leagueId, season });
    }),
  );

  router.get(
    "/fixtures/:id/history",
    authenticate,
    handle(async (req, res) => {
      const fixtureId = parseFixtureId(String(req.params.id));
      const history = await actions.fixtureHistory(fixtureId);
      if (history === null) throw noSuchFixture(fixtureId);
      res.status(200).json({ fixture_id: fixtureId, changes: history });
    }),
  );

  router.put(
    "/fixtures/:id/override",
    authenticate,
    body(true),
    handle(async (req, res) => {
      const fixtureId = parseFixtureId(String(req.params.id));
      const pin = parseOverride(req.body);
      requireLeader();
      if (!(await actions.setOverride(fixtureId, pin))) throw noSuchFixture(fixtureId);
      logger.info(
        {
          action: "override",
          fixtureId,
          status: pin.status,
          homeScore: pin.homeScore,
          awayScore: pin.awayScore,
        },
        "admin API: fixture pinned",
      );
      accepted(res, {
        action: "override",
        fixture_id: fixtureId,
        override: {
          status: pin.status,
          home_score: pin.homeScore,
          away_score: pin.awayScore,
          reason: pin.reason ?? null,
        },
      });
    }),
  );

  router.delete(
    "/fixtures/:id/override",
    authenticate,
    body(false),
    handle(async (req, res) => {
      const fixtureId = parseFixtureId(String(req.params.id));
      requireLeader();
      if (!(await actions.removeOverride(fixtureId))) {
        throw new HttpProblem(404, { error: "no_override", message: `fixture ${fixtureId} has no override` });
      }
      logger.info({ action: "remove_override", fixtureId }, "admin API: fixture pin removed");
      accepted(res, { action: "remove_override", fixture_id: fixtureId });
    }),
  );

  // Known paths with another method: 405 with Allow (after authentication, like everything here).
  const allow: [string, string][] = [
    ["/reconcile", "POST"],
    ["/competitions/:competition/resync", "POST"],
    ["/fixtures/:id/history", "GET, HEAD"],
    ["/fixtures/:id/override", "PUT, DELETE"],
  ];
  for (const [path, methods] of allow) {
    router.all(path, authenticate, (_req, res) => {
      res.set("Allow", methods);
      res.status(405).json({ error: "method_not_allowed", message: `use ${methods}` });
    });
  }
  return router;
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

function hasBody(req: Request): boolean {
  if (req.headers["transfer-encoding"] !== undefined) return true;
  const length = Number(req.headers["content-length"] ?? 0);
  return Number.isFinite(length) && length > 0;
}

function fail(res: Response, problem: HttpProblem): void {
  res.status(problem.status).json(problem.body);
}

function safeLeader(actions: AdminActions): string | null {
  try {
    return actions.leader().holder;
  } catch {
    return null;
  }
}

function noSuchFixture(fixtureId: number): HttpProblem {
  return new HttpProblem(404, {
    error: "no_such_fixture",
    message: `fixture ${fixtureId} is not in the fixtures table`,
  });
}

/** A fixture id: a positive PostgreSQL integer, digits only (no sign, exponent, spaces or paths). */
export function parseFixtureId(raw: string): number {
  const value = /^[1-9][0-9]{0,9}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value > MAX_FIXTURE_ID) {
    throw badRequest(`fixture id must be a positive integer up to ${MAX_FIXTURE_ID}, got "${clip(raw)}"`);
  }
  return value;
}

/** "{league}:{season}", as SCHEDULER_COMPETITIONS spells a competition (e.g. 39:2025). */
export function parseCompetition(raw: string): { leagueId: number; season: number } {
  try {
    const parsed = raw.includes(",") ? [] : parseCompetitions(raw);
    if (parsed.length !== 1) throw new Error("not one competition");
    return parsed[0]!;
  } catch {
    throw badRequest(`competition must be leagueId:season (e.g. 39:2025), got "${clip(raw)}"`);
  }
}

/** The PUT body: {"status", "home_score", "away_score", "reason"?}; nothing else accepted. */
export function parseOverride(body: unknown): OverridePin {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw badRequest("the body must be a JSON object with status, home_score and away_score");
  }
  for (const key of Object.keys(body)) {
    if (!OVERRIDE_FIELDS.has(key))
      throw badRequest(`unknown field "${clip(key)}" (allowed: status, home_score, away_score, reason)`);
  }
  const fields = body as Record<string, unknown>;
  const status = fields.status;
  if (typeof status !== "string" || !(MATCH_STATUSES as readonly string[]).includes(status)) {
    throw badRequest(`status must be one of ${MATCH_STATUSES.join(", ")}`);
  }
  const score = (name: "home_score" | "away_score"): number | null => {
    const value = fields[name];
    if (value === undefined || value === null) return null;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_SCORE) {
      throw badRequest(`${name} must be null or a whole number from 0 to ${MAX_SCORE}`);
    }
    return value;
  };
  const homeScore = score("home_score");
  const awayScore = score("away_score");
  if ((homeScore === null) !== (awayScore === null)) {
    throw badRequest("home_score and away_score are both numbers or both null");
  }
  if (FINISHED_STATUSES.has(status) && homeScore === null) {
    throw badRequest(`status ${status} needs home_score and away_score`);
  }
  const reason = fields.reason;
  if (
    reason !== undefined &&
    reason !== null &&
    (typeof reason !== "string" || reason.length > MAX_REASON_LENGTH)
  ) {
    throw badRequest(`reason must be a string of at most ${MAX_REASON_LENGTH} characters`);
  }
  return typeof reason === "string"
    ? { status, homeScore, awayScore, reason }
    : { status, homeScore, awayScore };
}

function clip(value: string): string {
  const printable = value.replace(/[^\x20-\x7e]/g, "?");
  return printable.length > 40 ? `${printable.slice(0, 40)}…` : printable;
}
