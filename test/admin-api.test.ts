/**
 * The management API router (controller/admin-api.ts), ROUTER-LEVEL: mounted by the real
 * createApp (controller/http-server.ts) in a real HTTP server on loopback, with an
 * AdminActions fake whose effects the tests observe. Every case in this file is router-level;
 * the end-to-end cases (real scheduler process, real database) are in
 * test/observability.test.ts.
 */
import assert from "node:assert/strict";
import http, { type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { after, before, beforeEach, describe, test } from "node:test";
import {
  ADMIN_BODY_LIMIT_BYTES,
  type AdminActions,
  createAdminRouter,
  type OverridePin,
} from "../controller/admin-api.js";
import { SchedulerError } from "../controller/errors.js";
import { closeServer, createApp, listen } from "../controller/http-server.js";
import { createLogger } from "../controller/logger.js";
import { createMetrics } from "../controller/metrics.js";
import { MATCH_STATUSES as CONTRACT_MATCH_STATUSES } from "./support/catalog.js";

const TOKEN = "s3cret-admin-token-0123456789abcdef";

/** Everything any response carried (status line aside) and every log line, for the leak check. */
const seen: string[] = [];
const logLines: string[] = [];

interface Fake extends AdminActions {
  isLeader: boolean;
  holder: string | null;
  calls: string[];
  competitions: Set<string>;
  fixtures: Map<number, unknown[]>;
  overrides: Map<number, OverridePin>;
  fail: Error | undefined;
}

function createFake(): Fake {
  const fake: Fake = {
    isLeader: true,
    holder: "replica-a",
    calls: [],
    competitions: new Set(["39:2025", "140:2025"]),
    fixtures: new Map([
      [1001, [{ at: "2025-08-16T14:00:00Z", field: "status", from: "NOT_STARTED", to: "FIRST_HALF" }]],
      [1002, []],
    ]),
    overrides: new Map(),
    fail: undefined,
    leader() {
      return { isLeader: fake.isLeader, identity: "replica-a", holder: fake.holder };
    },
    reconcileNow() {
      fake.calls.push("reconcile");
    },
    resync(leagueId, season) {
      fake.calls.push(`resync ${leagueId}:${season}`);
      return fake.competitions.has(`${leagueId}:${season}`);
    },
    async fixtureHistory(id) {
      fake.calls.push(`history ${id}`);
      if (fake.fail) throw fake.fail;
      return fake.fixtures.get(id) ?? null;
    },
    async setOverride(id, pin) {
      fake.calls.push(`override ${id}`);
      if (fake.fail) throw fake.fail;
      if (!fake.fixtures.has(id)) return false;
      fake.overrides.set(id, pin);
      return true;
    },
    async removeOverride(id) {
      fake.calls.push(`remove ${id}`);
      return fake.overrides.delete(id);
    },
  };
  return fake;
}

interface Server0 {
  server: Server;
  base: string;
  fake: Fake;
}

async function start(token: string | undefined): Promise<Server0> {
  const fake = createFake();
  // No `secrets` given to the logger on purpose: its scrubbing would hide a leak by the router.
  const logger = createLogger({
    level: "debug",
    destination: new Writable({
      write(chunk, _enc, done) {
        logLines.push(String(chunk));
        done();
      },
    }),
  });
  const app = createApp({
    health: () => ({ schedulerStatus: "running", stuck: undefined }),
    ready: async () => ({ ready: true }),
    status: async () => ({}),
    metrics: createMetrics(),
    logger,
    adminRouter: createAdminRouter({ token, actions: fake, logger }),
  });
  const server = await listen(app, 0, "127.0.0.1");
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, fake };
}

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
  text: string;
}

async function call(
  srv: Server0,
  method: string,
  path: string,
  options: { token?: string | null; auth?: string; json?: unknown; raw?: string; type?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (options.auth !== undefined) headers.authorization = options.auth;
  else if (options.token !== null) headers.authorization = `Bearer ${options.token ?? TOKEN}`;
  let body: string | undefined;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers["content-type"] = "application/json";
  }
  if (options.raw !== undefined) body = options.raw;
  if (options.type !== undefined) headers["content-type"] = options.type;
  const res = await fetch(`${srv.base}${path}`, { method, headers, body });
  const text = await res.text();
  seen.push(text, JSON.stringify([...res.headers]));
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {}
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** A request whose path is sent exactly as written (fetch would resolve "..") */
async function rawRequest(
  srv: Server0,
  method: string,
  path: string,
): Promise<{ status: number; text: string }> {
  const url = new URL(srv.base);
  return await new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method, path, headers: { authorization: `Bearer ${TOKEN}` } },
      (res) => {
        let text = "";
        res.on("data", (c) => {
          text += c;
        });
        res.on("end", () => {
          seen.push(text);
          resolve({ status: res.statusCode ?? 0, text });
        });
      },
    );
    req.on("error", reject);
    req.end();
  });
}

const VALID_PIN = {
  status: "FINISHED",
  home_score: 2,
  away_score: 1,
  reason: "API reported 1-1; TV shows 2-1",
};

// ------------------------------------------------------------------------------------------
describe("router-level: without ADMIN_TOKEN the management API does not exist", () => {
  let srv: Server0;
  before(async () => {
    srv = await start(undefined);
  });
  after(async () => {
    await closeServer(srv.server);
  });

  test("every path answers 404, with or without a bearer token, and nothing happens", async () => {
    const cases: [string, string][] = [
      ["POST", "/api/v1/reconcile"],
      ["POST", "/api/v1/competitions/39:2025/resync"],
      ["GET", "/api/v1/fixtures/1001/history"],
      ["PUT", "/api/v1/fixtures/1001/override"],
      ["DELETE", "/api/v1/fixtures/1001/override"],
    ];
    for (const [method, path] of cases) {
      for (const token of [null, TOKEN, "anything"]) {
        const res = await call(srv, method, path, { token, json: method === "PUT" ? VALID_PIN : undefined });
        assert.equal(res.status, 404, `${method} ${path}`);
        assert.deepEqual(res.body, { error: "not_found" });
      }
    }
    assert.deepEqual(srv.fake.calls, []);
  });
});

// ------------------------------------------------------------------------------------------
describe("router-level: with ADMIN_TOKEN", () => {
  let srv: Server0;
  before(async () => {
    srv = await start(TOKEN);
  });
  after(async () => {
    await closeServer(srv.server);
  });
  beforeEach(() => {
    const fresh = createFake();
    Object.assign(srv.fake, {
      isLeader: true,
      holder: "replica-a",
      calls: [],
      overrides: fresh.overrides,
      fixtures: fresh.fixtures,
      fail: undefined,
    });
  });

  test("401 without a bearer token, with a wrong one, another scheme, a prefix or a longer token", async () => {
    for (const auth of [
      undefined,
      "",
      "Bearer",
      "Bearer ",
      `Basic ${Buffer.from(`admin:${TOKEN}`).toString("base64")}`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.toUpperCase()}`,
      "Bearer wrong",
      `Bearer ${TOKEN} ${TOKEN}`,
      `${TOKEN}`,
    ]) {
      const res =
        auth === undefined
          ? await call(srv, "POST", "/api/v1/reconcile", { token: null })
          : await call(srv, "POST", "/api/v1/reconcile", { auth });
      assert.equal(res.status, 401, `Authorization: ${auth}`);
      assert.equal(res.body.error, "unauthorized");
      assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer realm="backend-scheduler"/);
    }
    assert.deepEqual(srv.fake.calls, []);
  });

  test("the scheme is case-insensitive: bearer works like Bearer", async () => {
    const res = await call(srv, "POST", "/api/v1/reconcile", { auth: `bearer ${TOKEN}` });
    assert.equal(res.status, 202);
  });

  test("check order: 401 before 415, 413 and 400; 400 before 409", async () => {
    srv.fake.isLeader = false;
    // wrong token + bad input / wrong media type / huge body → 401
    assert.equal(
      (await call(srv, "PUT", "/api/v1/fixtures/abc/override", { token: "nope", json: {} })).status,
      401,
    );
    assert.equal(
      (
        await call(srv, "PUT", "/api/v1/fixtures/1001/override", {
          token: "nope",
          raw: "x",
          type: "text/plain",
        })
      ).status,
      401,
    );
    assert.equal(
      (
        await call(srv, "PUT", "/api/v1/fixtures/1001/override", {
          token: "nope",
          raw: "x".repeat(100_000),
          type: "application/json",
        })
      ).status,
      401,
    );
    // right token, bad input, standby → 400
    const bad = await call(srv, "PUT", "/api/v1/fixtures/1001/override", { json: { status: "FT" } });
    assert.equal(bad.status, 400);
    assert.equal((await call(srv, "POST", "/api/v1/competitions/39-2025/resync")).status, 400);
    // right token, good input, standby → 409
    assert.equal((await call(srv, "PUT", "/api/v1/fixtures/1001/override", { json: VALID_PIN })).status, 409);
    assert.deepEqual(srv.fake.calls, []);
  });

  test("POST /reconcile answers 202 and asks for a reconcile", async () => {
    const res = await call(srv, "POST", "/api/v1/reconcile");
    assert.equal(res.status, 202);
    assert.deepEqual(res.body, { status: "accepted", action: "reconcile" });
    assert.deepEqual(srv.fake.calls, ["reconcile"]);
    // An (empty) JSON body is fine too.
    assert.equal((await call(srv, "POST", "/api/v1/reconcile", { json: {} })).status, 202);
  });

  test("POST /competitions/{league}:{season}/resync: 202 for a known one (also with %3A), 404 unknown", async () => {
    const res = await call(srv, "POST", "/api/v1/competitions/39:2025/resync");
    assert.equal(res.status, 202);
    assert.deepEqual(res.body, { status: "accepted", action: "resync", league: 39, season: 2025 });
    assert.equal((await call(srv, "POST", "/api/v1/competitions/140%3A2025/resync")).status, 202);
    const unknown = await call(srv, "POST", "/api/v1/competitions/78:2025/resync");
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error, "unknown_competition");
    assert.deepEqual(srv.fake.calls, ["resync 39:2025", "resync 140:2025", "resync 78:2025"]);
  });

  test("resync: malformed competitions are 400 with a message, and nothing is called", async () => {
    for (const competition of [
      "39-2025",
      "39",
      "39:",
      ":2025",
      "abc:2025",
      "39:20255",
      "39:1800",
      "0:2025",
      "-39:2025",
      "39:2025:1",
      "39:2025,140:2025",
      "9999999:2025",
      "39%3A2025%2F..",
      "%00",
    ]) {
      const res = await call(srv, "POST", `/api/v1/competitions/${competition}/resync`);
      assert.equal(res.status, 400, competition);
      assert.match(
        String(res.body.message),
        /^competition must be leagueId:season \(e\.g\. 39:2025\), got "/,
      );
      assert.doesNotMatch(String(res.body.message), /\n/);
    }
    assert.deepEqual(srv.fake.calls, []);
  });

  test("GET /fixtures/{id}/history: 200 with the changes, 404 unknown; a standby answers it too", async () => {
    const res = await call(srv, "GET", "/api/v1/fixtures/1001/history");
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {
      fixture_id: 1001,
      changes: [{ at: "2025-08-16T14:00:00Z", field: "status", from: "NOT_STARTED", to: "FIRST_HALF" }],
    });
    assert.equal((await call(srv, "GET", "/api/v1/fixtures/1002/history")).status, 200);
    const missing = await call(srv, "GET", "/api/v1/fixtures/4242/history");
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error, "no_such_fixture");
    srv.fake.isLeader = false;
    assert.equal((await call(srv, "GET", "/api/v1/fixtures/1001/history")).status, 200);
  });

  test("PUT /fixtures/{id}/override: 202 and the pin is stored exactly; 404 for an unknown fixture", async () => {
    const res = await call(srv, "PUT", "/api/v1/fixtures/1001/override", { json: VALID_PIN });
    assert.equal(res.status, 202);
    assert.deepEqual(res.body, {
      status: "accepted",
      action: "override",
      fixture_id: 1001,
      override: { status: "FINISHED", home_score: 2, away_score: 1, reason: VALID_PIN.reason },
    });
    assert.deepEqual(srv.fake.overrides.get(1001), {
      status: "FINISHED",
      homeScore: 2,
      awayScore: 1,
      reason: VALID_PIN.reason,
    });
    // Scores may be null for a status without a result; content type with a charset is JSON.
    const postponed = await call(srv, "PUT", "/api/v1/fixtures/1002/override", {
      raw: JSON.stringify({ status: "POSTPONED", home_score: null, away_score: null }),
      type: "application/json; charset=utf-8",
    });
    assert.equal(postponed.status, 202);
    assert.deepEqual(srv.fake.overrides.get(1002), { status: "POSTPONED", homeScore: null, awayScore: null });
    const missing = await call(srv, "PUT", "/api/v1/fixtures/4242/override", { json: VALID_PIN });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error, "no_such_fixture");
  });

  test("PUT override: every status of the contract's matchstatus enum is accepted", async () => {
    // The contract's list, independent of the product's own (test/support/catalog.ts).
    for (const status of CONTRACT_MATCH_STATUSES) {
      const res = await call(srv, "PUT", "/api/v1/fixtures/1001/override", {
        json: { status, home_score: 0, away_score: 0 },
      });
      assert.equal(res.status, 202, status);
    }
  });

  test("PUT override: bad bodies are 400 with one clear line, and nothing is stored", async () => {
    const cases: [unknown, RegExp][] = [
      [{}, /^status must be one of NOT_STARTED, /],
      [{ status: "FT", home_score: 1, away_score: 0 }, /^status must be one of/],
      [{ status: "finished", home_score: 1, away_score: 0 }, /^status must be one of/],
      [{ status: 3 }, /^status must be one of/],
      [{ status: "FINISHED" }, /^status FINISHED needs home_score and away_score$/],
      [{ status: "FINISHED_PEN", home_score: null, away_score: null }, /needs home_score and away_score/],
      [{ status: "FINISHED", home_score: 1 }, /both numbers or both null/],
      [
        { status: "FINISHED", home_score: -1, away_score: 0 },
        /^home_score must be null or a whole number from 0 to 999$/,
      ],
      [{ status: "FINISHED", home_score: 1.5, away_score: 0 }, /^home_score must be/],
      [{ status: "FINISHED", home_score: "2", away_score: 0 }, /^home_score must be/],
      [{ status: "FINISHED", home_score: 2, away_score: 1e9 }, /^away_score must be/],
      [{ status: "FINISHED", home_score: 2, away_score: true }, /^away_score must be/],
      [{ status: "FINISHED", home_score: 2, away_score: 1, reason: 42 }, /^reason must be a string/],
      [
        { status: "FINISHED", home_score: 2, away_score: 1, reason: "x".repeat(501) },
        /^reason must be a string/,
      ],
      [{ status: "FINISHED", home_score: 2, away_score: 1, homeScore: 2 }, /^unknown field "homeScore"/],
      [[VALID_PIN], /^the body must be a JSON object/],
    ];
    for (const [json, message] of cases) {
      const res = await call(srv, "PUT", "/api/v1/fixtures/1001/override", { json });
      assert.equal(res.status, 400, JSON.stringify(json));
      assert.equal(res.body.error, "bad_request");
      assert.match(String(res.body.message), message, JSON.stringify(json));
      assert.doesNotMatch(String(res.body.message), /\n/);
    }
    for (const raw of [
      '"FINISHED"',
      "null",
      "42",
      "{",
      "{'status': 'FINISHED'}",
      '{"status":"FINISHED",}',
      "1e309",
    ]) {
      const res = await call(srv, "PUT", "/api/v1/fixtures/1001/override", { raw, type: "application/json" });
      assert.equal(res.status, 400, raw);
      assert.match(
        String(res.body.message),
        /^(the body is not valid JSON|the body must be a JSON object)/,
        raw,
      );
    }
    const empty = await call(srv, "PUT", "/api/v1/fixtures/1001/override", { type: "application/json" });
    assert.equal(empty.status, 400);
    assert.equal(empty.body.message, "a JSON body is required");
    assert.equal(srv.fake.overrides.size, 0);
    assert.deepEqual(srv.fake.calls, []);
  });

  test("prototype-pollution keys are refused and pollute nothing", async () => {
    for (const raw of [
      '{"status":"FINISHED","home_score":1,"away_score":0,"__proto__":{"polluted":true}}',
      '{"status":"FINISHED","home_score":1,"away_score":0,"constructor":{"prototype":{"polluted":true}}}',
      '{"__proto__":{"status":"FINISHED","home_score":1,"away_score":0}}',
    ]) {
      const res = await call(srv, "PUT", "/api/v1/fixtures/1001/override", { raw, type: "application/json" });
      assert.equal(res.status, 400, raw);
      assert.match(String(res.body.message), /^(unknown field "(__proto__|constructor)"|status must be)/);
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.hasOwn(Object.prototype, "polluted"), false);
    assert.equal(srv.fake.overrides.size, 0);
  });

  test("415 for a body that is not JSON; 413 past 16 kB (after authentication)", async () => {
    for (const type of [
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/xml",
    ]) {
      const res = await call(srv, "PUT", "/api/v1/fixtures/1001/override", { raw: "status=FINISHED", type });
      assert.equal(res.status, 415, type);
      assert.equal(res.body.error, "unsupported_media_type");
    }
    // A body without any content type is not JSON either.
    const untyped = await call(srv, "POST", "/api/v1/reconcile", { raw: "{}" });
    assert.equal(untyped.status, 415);
    const tooBig = await call(srv, "PUT", "/api/v1/fixtures/1001/override", {
      json: { ...VALID_PIN, reason: "x".repeat(ADMIN_BODY_LIMIT_BYTES) },
    });
    assert.equal(tooBig.status, 413);
    assert.equal(tooBig.body.error, "payload_too_large");
    const bigReconcile = await call(srv, "POST", "/api/v1/reconcile", { json: { pad: "y".repeat(20_000) } });
    assert.equal(bigReconcile.status, 413);
    assert.deepEqual(srv.fake.calls, []);
  });

  test("fixture ids: huge, negative, non-decimal and traversal ids are 400; nothing is called", async () => {
    for (const id of [
      "0",
      "-1",
      "01",
      "1.0",
      "1e3",
      "0x10",
      "%201",
      "2147483648",
      "99999999999999999999999999",
      "NaN",
      "Infinity",
      "..%2F..%2Fetc%2Fpasswd",
      "1001%00",
      "1001;drop table fixtures",
    ]) {
      for (const [method, suffix] of [
        ["GET", "history"],
        ["PUT", "override"],
        ["DELETE", "override"],
      ] as const) {
        const res = await call(srv, method, `/api/v1/fixtures/${id}/${suffix}`, {
          json: method === "PUT" ? VALID_PIN : undefined,
        });
        assert.equal(res.status, 400, `${method} ${id}`);
        assert.match(
          String(res.body.message),
          /^fixture id must be a positive integer up to 2147483647, got "/,
        );
      }
    }
    // The largest PostgreSQL integer is a valid id (here: not a known fixture).
    assert.equal((await call(srv, "GET", "/api/v1/fixtures/2147483647/history")).status, 404);
    assert.deepEqual(srv.fake.calls, ["history 2147483647"]);
  });

  test("literal path traversal reaches no action", async () => {
    for (const path of [
      "/api/v1/fixtures/../reconcile",
      "/api/v1/fixtures/1001/../../reconcile",
      "/api/v1/competitions/../../reconcile/resync",
      "/api/v1/fixtures/1001/history/../../../../metrics",
      "/api/v1/fixtures/%2e%2e/override",
      "/api/v1/fixtures/%2e%2e%2f%2e%2e%2freconcile/history",
    ]) {
      const res = await rawRequest(srv, "POST", path);
      assert.ok([400, 404, 405].includes(res.status), `${path} → ${res.status}`);
    }
    assert.deepEqual(srv.fake.calls, []);
  });

  test("409 on a standby for every action, with the leader's identity; nothing is forwarded or done", async () => {
    srv.fake.isLeader = false;
    srv.fake.holder = "replica-b";
    const cases: [string, string, unknown][] = [
      ["POST", "/api/v1/reconcile", undefined],
      ["POST", "/api/v1/competitions/39:2025/resync", undefined],
      ["PUT", "/api/v1/fixtures/1001/override", VALID_PIN],
      ["DELETE", "/api/v1/fixtures/1001/override", undefined],
    ];
    for (const [method, path, json] of cases) {
      const res = await call(srv, method, path, { json });
      assert.equal(res.status, 409, `${method} ${path}`);
      assert.equal(res.body.error, "not_leader");
      assert.equal(res.body.leader, "replica-b");
    }
    srv.fake.holder = null;
    const none = await call(srv, "POST", "/api/v1/reconcile");
    assert.equal(none.status, 409);
    assert.equal(none.body.leader, null);
    assert.deepEqual(srv.fake.calls, []);
    assert.equal(srv.fake.overrides.size, 0);
  });

  test("DELETE /fixtures/{id}/override: 202 removes the pin, 404 when there is none", async () => {
    srv.fake.overrides.set(1001, { status: "FINISHED", homeScore: 1, awayScore: 0 });
    const res = await call(srv, "DELETE", "/api/v1/fixtures/1001/override");
    assert.equal(res.status, 202);
    assert.deepEqual(res.body, { status: "accepted", action: "remove_override", fixture_id: 1001 });
    assert.equal(srv.fake.overrides.has(1001), false);
    const again = await call(srv, "DELETE", "/api/v1/fixtures/1001/override");
    assert.equal(again.status, 404);
    assert.equal(again.body.error, "no_override");
  });

  test("a write fenced after the leader check is 409; a retryable failure 503; anything else 500 without detail", async () => {
    srv.fake.fail = new SchedulerError("FENCED", "lease epoch 7 is no longer current");
    srv.fake.holder = "replica-b";
    const fenced = await call(srv, "PUT", "/api/v1/fixtures/1001/override", { json: VALID_PIN });
    assert.equal(fenced.status, 409);
    assert.deepEqual(
      { error: fenced.body.error, leader: fenced.body.leader },
      { error: "not_leader", leader: "replica-b" },
    );
    srv.fake.fail = new SchedulerError("DB_UNAVAILABLE", "connection refused");
    const down = await call(srv, "GET", "/api/v1/fixtures/1001/history");
    assert.equal(down.status, 503);
    srv.fake.fail = new Error("boom: connection to postgres://admin:hunter2@db failed");
    const boom = await call(srv, "GET", "/api/v1/fixtures/1001/history");
    assert.equal(boom.status, 500);
    assert.deepEqual(boom.body, { error: "internal_error" });
    assert.doesNotMatch(boom.text, /hunter2|boom/);
  });

  test("known paths with another method are 405 with Allow; unknown paths 404", async () => {
    const wrong = await call(srv, "GET", "/api/v1/reconcile");
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "POST");
    assert.equal((await call(srv, "POST", "/api/v1/fixtures/1001/history")).status, 405);
    assert.equal((await call(srv, "GET", "/api/v1/fixtures/1001/override")).status, 405);
    assert.equal((await call(srv, "GET", "/api/v1/reconcile", { token: "wrong" })).status, 401);
    assert.equal((await call(srv, "POST", "/api/v1/nothing-here")).status, 404);
    assert.deepEqual(srv.fake.calls, []);
  });

  test("actions are logged (without the token)", () => {
    const actions = logLines.filter((l) => l.includes('"component":"admin-api"'));
    assert.ok(actions.some((l) => l.includes("admin API: reconcile requested")));
    assert.ok(actions.some((l) => l.includes("admin API: fixture pinned") && l.includes('"fixtureId":1001')));
    assert.ok(actions.some((l) => l.includes("admin API: wrong bearer token")));
  });
});

test("router-level: the admin token appears in no response (body or header) and no log line", () => {
  assert.ok(seen.length > 100, `expected the responses of the tests above, got ${seen.length}`);
  assert.ok(logLines.length > 5, `expected log lines, got ${logLines.length}`);
  for (const text of seen)
    assert.ok(!text.includes(TOKEN), `a response carried the token: ${text.slice(0, 200)}`);
  for (const line of logLines)
    assert.ok(!line.includes(TOKEN), `a log line carried the token: ${line.slice(0, 300)}`);
});
