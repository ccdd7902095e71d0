/**
 * Configuration through the real program: `node --import tsx controller/main.ts --check-config`
 * with a controlled environment (minimalEnv, never process.env). A user's mistake exits
 * non-zero with exactly one line on stderr naming the variable or field, and no stack trace;
 * --check-config prints the effective configuration with every secret redacted.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { type Exit, minimalEnv, runScheduler, tempDir } from "./support/process.js";

const API_KEY = "k3y-0f-the-api-do-not-print";
const ADMIN_TOKEN = "admin-token-do-not-print-0123456789";
const DB_PASSWORD = "db-pa55word-do-not-print";
const SECRETS = [API_KEY, ADMIN_TOKEN, DB_PASSWORD];

let tmp: ReturnType<typeof tempDir>;
before(() => {
  tmp = tempDir("config");
});
after(() => {
  tmp.remove();
});

/** Write a file into this test file's temp dir; returns its path. */
function file(name: string, body: string): string {
  const target = path.join(tmp.dir, name);
  writeFileSync(target, body);
  return target;
}

async function checkConfig(env: Record<string, string>): Promise<Exit> {
  return await runScheduler({
    args: ["--check-config"],
    env: minimalEnv(env),
    cwd: tmp.dir,
    timeoutMs: 20_000,
  });
}

function assertOneLineError(exit: Exit, field: string, also?: RegExp): string {
  const detail = `stdout: ${exit.stdout}\nstderr: ${exit.stderr}`;
  assert.notEqual(exit.code, 0, `must exit non-zero\n${detail}`);
  assert.equal(exit.code, 2, `configuration errors exit 2\n${detail}`);
  const lines = exit.stderr.split("\n").filter((l) => l.trim() !== "");
  assert.equal(lines.length, 1, `exactly one line on stderr\n${detail}`);
  const line = lines[0]!;
  assert.ok(
    line.startsWith(`backend-scheduler: configuration error: ${field}`),
    `the line names ${field}: ${line}`,
  );
  assert.doesNotMatch(exit.stderr, /^\s+at /m, "no stack trace");
  assert.doesNotMatch(exit.stderr, /Error:|ZodError|node:internal/, "no exception dump");
  assert.equal(exit.stdout, "", "nothing printed on stdout");
  if (also) assert.match(line, also);
  for (const secret of SECRETS) assert.ok(!line.includes(secret), "a secret was printed");
  return line;
}

function printed(exit: Exit): Record<string, unknown> & {
  api: Record<string, unknown>;
  election: Record<string, unknown>;
  competitions: { leagueId: number; season: number }[];
  log: Record<string, unknown>;
} {
  assert.equal(exit.code, 0, `--check-config must succeed\nstdout: ${exit.stdout}\nstderr: ${exit.stderr}`);
  assert.equal(exit.stderr, "", "nothing on stderr");
  return JSON.parse(exit.stdout);
}

describe("bad configuration: one line naming the field, exit 2, no stack trace", { concurrency: 3 }, () => {
  const cases: { name: string; env: () => Record<string, string>; field: string; also?: RegExp }[] = [
    {
      name: "bad league list",
      env: () => ({ SCHEDULER_COMPETITIONS: "39:2025,premier-league" }),
      field: "SCHEDULER_COMPETITIONS",
      also: /premier-league/,
    },
    {
      name: "league list with an implausible season",
      env: () => ({ SCHEDULER_COMPETITIONS: "39:1066" }),
      field: "SCHEDULER_COMPETITIONS",
    },
    {
      name: "renew deadline equal to the lease",
      env: () => ({ LEASE_DURATION_SECONDS: "10", RENEW_DEADLINE_SECONDS: "10" }),
      field: "RENEW_DEADLINE_SECONDS",
      also: /LEASE_DURATION_SECONDS/,
    },
    {
      name: "renew deadline above the lease",
      env: () => ({ RENEW_DEADLINE_SECONDS: "20" }),
      field: "RENEW_DEADLINE_SECONDS",
    },
    {
      name: "retry period too long for the renew deadline (renew must exceed 1.2 × retry)",
      env: () => ({ RENEW_DEADLINE_SECONDS: "6", RETRY_PERIOD_SECONDS: "5" }),
      field: "RETRY_PERIOD_SECONDS",
      also: /RENEW_DEADLINE_SECONDS/,
    },
    {
      name: "negative number",
      env: () => ({ RETRY_PERIOD_SECONDS: "-1" }),
      field: "RETRY_PERIOD_SECONDS",
    },
    {
      name: "negative whole number",
      env: () => ({ API_MAX_RETRIES: "-3" }),
      field: "API_MAX_RETRIES",
    },
    {
      name: "not a number",
      env: () => ({ LEASE_DURATION_SECONDS: "fifteen" }),
      field: "LEASE_DURATION_SECONDS",
    },
    {
      name: "port out of range",
      env: () => ({ PORT: "70000" }),
      field: "PORT",
    },
    {
      name: "unreadable file",
      env: () => ({ SCHEDULER_CONFIG: path.join(tmp.dir, "does-not-exist.yaml") }),
      field: "SCHEDULER_CONFIG",
      also: /ENOENT/,
    },
    {
      name: "a directory as the file",
      env: () => ({ SCHEDULER_CONFIG: tmp.dir }),
      field: "SCHEDULER_CONFIG",
    },
    {
      name: "invalid YAML (that also holds a secret)",
      env: () => ({ SCHEDULER_CONFIG: file("invalid.yaml", `FOOTBALL_API_KEY: ${API_KEY}\nPORT: [1, 2\n`) }),
      field: "SCHEDULER_CONFIG",
      also: /not valid YAML/,
    },
    {
      name: "invalid JSON (that also holds a secret)",
      env: () => ({ SCHEDULER_CONFIG: file("invalid.json", `{"FOOTBALL_API_KEY": "${API_KEY}" "PORT": 1}`) }),
      field: "SCHEDULER_CONFIG",
      also: /not valid JSON/,
    },
    {
      name: "a file that is a list, not a mapping",
      env: () => ({ SCHEDULER_CONFIG: file("list.yaml", "- PORT\n- 8001\n") }),
      field: "SCHEDULER_CONFIG",
    },
    {
      name: "unknown key in the file",
      env: () => ({ SCHEDULER_CONFIG: file("unknown-key.yaml", "PORT: 8001\nLEASE_DURATON_SECONDS: 20\n") }),
      field: "SCHEDULER_CONFIG",
      also: /LEASE_DURATON_SECONDS/,
    },
    {
      name: "a schema violation inside the file names the field and the file",
      env: () => ({ SCHEDULER_CONFIG: file("bad-value.yaml", "LEADER_ELECTION: etcd\n") }),
      field: "LEADER_ELECTION",
      also: /bad-value\.yaml/,
    },
    {
      name: "unknown LEADER_ELECTION",
      env: () => ({ LEADER_ELECTION: "zookeeper" }),
      field: "LEADER_ELECTION",
      also: /postgres, kubernetes or none/,
    },
    {
      name: "API URL without key",
      env: () => ({ FOOTBALL_API_URL: "https://v3.football.api-sports.io" }),
      field: "FOOTBALL_API_KEY",
      also: /FOOTBALL_API_URL/,
    },
    {
      name: "API URL that is not a URL",
      env: () => ({ FOOTBALL_API_URL: "not a url", FOOTBALL_API_KEY: API_KEY }),
      field: "FOOTBALL_API_URL",
    },
    {
      name: "demo mode on DATABASE_URL without SCHEDULER_DEMO",
      env: () => ({ DATABASE_URL: `postgres://app:${DB_PASSWORD}@db.example:5432/app` }),
      field: "SCHEDULER_DEMO",
      also: /DATABASE_URL/,
    },
    {
      name: "unknown LOG_LEVEL",
      env: () => ({ LOG_LEVEL: "verbose" }),
      field: "LOG_LEVEL",
    },
    {
      name: "admin token too short",
      env: () => ({ ADMIN_TOKEN: "short" }),
      field: "ADMIN_TOKEN",
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      assertOneLineError(await checkConfig(c.env()), c.field, c.also);
    });
  }

  test("an unknown command-line argument", async () => {
    const exit = await runScheduler({ args: ["--chek-config"], env: minimalEnv(), cwd: tmp.dir });
    assert.equal(exit.code, 2);
    const lines = exit.stderr.trim().split("\n");
    assert.equal(lines.length, 1, exit.stderr);
    assert.match(lines[0]!, /unknown argument --chek-config/);
  });
});

describe("accepted configuration (--check-config prints the effective configuration)", {
  concurrency: 3,
}, () => {
  test("no configuration at all: demo mode and the contract's defaults", async () => {
    const config = printed(await checkConfig({}));
    assert.equal(config.demo, true);
    assert.equal(config.databaseUrl, undefined, "no DATABASE_URL: the embedded database");
    assert.equal(config.dataDir, path.join(tmp.dir, ".data"), "DATA_DIR defaults to ./.data");
    assert.deepEqual(config.http, { port: 8001, host: "0.0.0.0" });
    assert.equal(config.election.mode, "none");
    assert.equal(config.election.leaseName, "backend-scheduler");
    assert.equal(config.election.leaseDurationMs, 15_000);
    assert.equal(config.election.renewDeadlineMs, 10_000);
    assert.equal(config.election.retryPeriodMs, 2_000);
    assert.equal(config.log.level, "info");
    assert.deepEqual(config.competitions, []);
  });

  test("decimals are accepted (LEASE_DURATION_SECONDS=7.5)", async () => {
    const config = printed(
      await checkConfig({
        LEASE_DURATION_SECONDS: "7.5",
        RENEW_DEADLINE_SECONDS: "5.25",
        RETRY_PERIOD_SECONDS: "1.5",
      }),
    );
    assert.equal(config.election.leaseDurationMs, 7500);
    assert.equal(config.election.renewDeadlineMs, 5250);
    assert.equal(config.election.retryPeriodMs, 1500);
  });

  test("the environment wins over the file; the file fills in the rest", async () => {
    const yaml = file(
      "layered.yaml",
      [
        "SCHEDULER_COMPETITIONS:",
        "  - '39:2025'",
        "  - '140:2025'",
        "LOG_LEVEL: debug",
        "LEASE_DURATION_SECONDS: 30",
        "RENEW_DEADLINE_SECONDS: 20",
        "POD_NAME: from-the-file",
        "",
      ].join("\n"),
    );
    const config = printed(
      await checkConfig({
        SCHEDULER_CONFIG: yaml,
        SCHEDULER_COMPETITIONS: "78:2024",
        POD_NAME: "from-the-environment",
      }),
    );
    assert.deepEqual(config.competitions, [{ leagueId: 78, season: 2024 }], "environment wins");
    assert.equal(config.election.identity, "from-the-environment", "environment wins");
    assert.equal(config.log.level, "debug", "from the file");
    assert.equal(config.election.leaseDurationMs, 30_000, "a YAML number from the file");
    assert.equal(config.election.renewDeadlineMs, 20_000);
    assert.equal(config.configFile, yaml);
  });

  test("a JSON file works like a YAML one", async () => {
    const json = file(
      "config.json",
      JSON.stringify({ SCHEDULER_COMPETITIONS: "39:2025, 140:2025", PORT: 9100, SCHEDULER_DRY_RUN: true }),
    );
    const config = printed(await checkConfig({ SCHEDULER_CONFIG: json }));
    assert.deepEqual(config.competitions, [
      { leagueId: 39, season: 2025 },
      { leagueId: 140, season: 2025 },
    ]);
    assert.deepEqual(config.http, { port: 9100, host: "0.0.0.0" });
    assert.equal(config.dryRun, true);
  });

  test("an environment value can repair a bad file value", async () => {
    const yaml = file("repaired.yaml", "LEADER_ELECTION: etcd\n");
    const config = printed(await checkConfig({ SCHEDULER_CONFIG: yaml, LEADER_ELECTION: "none" }));
    assert.equal(config.election.mode, "none");
  });

  test("live mode on a real database: LEADER_ELECTION defaults to postgres", async () => {
    const config = printed(
      await checkConfig({
        DATABASE_URL: "postgres://app@db.example:5432/app",
        FOOTBALL_API_KEY: API_KEY,
      }),
    );
    assert.equal(config.demo, false);
    assert.equal(config.election.mode, "postgres");
    assert.equal(config.api.url, "https://v3.football.api-sports.io", "the default API URL");
  });

  test("demo mode on DATABASE_URL with SCHEDULER_DEMO=true", async () => {
    const config = printed(
      await checkConfig({ DATABASE_URL: "postgres://app@db.example:5432/app", SCHEDULER_DEMO: "true" }),
    );
    assert.equal(config.demo, true);
  });

  test("two runs get different identities (host name plus a random suffix)", async () => {
    const [a, b] = await Promise.all([checkConfig({}), checkConfig({})]);
    const idA = printed(a).election.identity;
    const idB = printed(b).election.identity;
    assert.equal(typeof idA, "string");
    assert.notEqual(idA, idB);
  });

  test("secrets are redacted: API key, admin token, database password (environment and file)", async () => {
    const fromEnv = await checkConfig({
      FOOTBALL_API_URL: "https://api.example.test",
      FOOTBALL_API_KEY: API_KEY,
      ADMIN_TOKEN,
      DATABASE_URL: `postgres://app:${DB_PASSWORD}@db.example:5432/app`,
    });
    const yaml = file(
      "secrets.yaml",
      [
        `FOOTBALL_API_KEY: ${API_KEY}`,
        `ADMIN_TOKEN: ${ADMIN_TOKEN}`,
        `DATABASE_URL: postgres://app:${DB_PASSWORD}@db.example:5432/app`,
        "",
      ].join("\n"),
    );
    const fromFile = await checkConfig({ SCHEDULER_CONFIG: yaml });
    for (const exit of [fromEnv, fromFile]) {
      for (const secret of SECRETS) {
        assert.ok(!exit.stdout.includes(secret), `stdout shows a secret:\n${exit.stdout}`);
        assert.ok(!exit.stderr.includes(secret), `stderr shows a secret:\n${exit.stderr}`);
      }
      const config = printed(exit);
      assert.equal(config.api.key, "[redacted]");
      assert.equal(config.adminToken, "[redacted]");
      assert.match(String(config.databaseUrl), /^postgres:\/\/app:[^@]*@db\.example:5432\/app$/);
      assert.equal(config.demo, false);
    }
  });
});
