/**
 * The Prometheus alerting rules (ops/alerts.yml): promtool accepts them, promtool's unit tests
 * (ops/alerts.test.yml) pass and cover every alert firing and not firing, every alert is
 * documented, every metric it reads exists, and the Helm chart's copy is current.
 * Needs promtool (Debian's prometheus package; scripts/ensure-prometheus.sh installs it):
 * without it these tests fail rather than skip.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import YAML from "yaml";
import { createMetrics } from "../controller/metrics.js";

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const RULES = path.join(root, "ops/alerts.yml");
const RULE_TESTS = path.join(root, "ops/alerts.test.yml");
const CHART_COPY = path.join(root, "charts/backend-scheduler/files/alerts.yml");

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleTest {
  name?: string;
  alert_rule_test?: { eval_time: string; alertname: string; exp_alerts?: unknown[] }[];
}

const rules: Rule[] = (
  YAML.parse(readFileSync(RULES, "utf8")) as { groups: { rules: Rule[] }[] }
).groups.flatMap((g) => g.rules);

async function promtool(args: string[], input?: string): Promise<{ code: number; output: string }> {
  return await new Promise((resolve, reject) => {
    const child = spawn("promtool", args, { cwd: root, stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
    });
    child.stderr.on("data", (chunk) => {
      output += chunk;
    });
    child.on("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "ENOENT"
          ? new Error(
              "promtool is not installed: run scripts/ensure-prometheus.sh (Debian's prometheus package)",
            )
          : error,
      ),
    );
    child.on("close", (code) => resolve({ code: code ?? -1, output }));
    child.stdin.end(input ?? "");
  });
}

test("promtool is installed (scripts/ensure-prometheus.sh)", async () => {
  const { stdout, stderr } = await run("promtool", ["--version"]).catch(() => {
    throw new Error("promtool is not installed: run scripts/ensure-prometheus.sh");
  });
  assert.match(stdout + stderr, /promtool, version \d+\.\d+/);
});

test("promtool check rules accepts ops/alerts.yml", async () => {
  const { code, output } = await promtool(["check", "rules", RULES]);
  assert.equal(code, 0, output);
  assert.match(output, new RegExp(`SUCCESS: ${rules.length} rules found`));
});

test("promtool test rules: ops/alerts.test.yml passes", async () => {
  const { code, output } = await promtool(["test", "rules", RULE_TESTS]);
  assert.equal(code, 0, output);
  assert.match(output, /SUCCESS/);
});

test("the rule unit tests cover every alert both firing and not firing", () => {
  const tests = (YAML.parse(readFileSync(RULE_TESTS, "utf8")) as { tests: RuleTest[] }).tests;
  const firing = new Set<string>();
  const quiet = new Set<string>();
  for (const t of tests) {
    for (const check of t.alert_rule_test ?? []) {
      ((check.exp_alerts ?? []).length > 0 ? firing : quiet).add(check.alertname);
    }
  }
  const names = rules.map((r) => r.alert);
  assert.ok(names.length >= 8, "the issue asks for at least eight kinds of alert");
  for (const name of names) {
    assert.ok(firing.has(name), `${name} has no unit test where it fires`);
    assert.ok(quiet.has(name), `${name} has no unit test where it stays quiet`);
  }
  for (const name of [...firing, ...quiet])
    assert.ok(names.includes(name), `unit test names unknown alert ${name}`);
});

test("the issue's alerts are all there", () => {
  const exprOf = (name: string) => rules.find((r) => r.alert === name)?.expr ?? "";
  assert.match(exprOf("SchedulerDown"), /\bup\{/);
  assert.match(exprOf("SchedulerNoLeader"), /max by \(namespace\) \(scheduler_is_leader/);
  assert.match(exprOf("SchedulerNoLeader"), /absent\(scheduler_is_leader/);
  assert.match(exprOf("SchedulerMultipleLeaders"), /sum by \(namespace\) \(scheduler_is_leader.*\) > 1/);
  assert.match(exprOf("SchedulerReconcileFailing"), /result="error"/);
  assert.match(
    exprOf("SchedulerReconcileStale"),
    /time\(\) - scheduler_last_reconcile_success_timestamp_seconds/,
  );
  assert.match(exprOf("SchedulerApiQuotaLow"), /scheduler_api_quota_remaining\{[^}]*window="day"/);
  assert.match(exprOf("SchedulerLiveFixtureStale"), /scheduler_live_fixture_oldest_update_timestamp_seconds/);
  assert.match(
    exprOf("SchedulerUnknownStatusCodes"),
    /increase\(scheduler_unknown_status_total\{[^}]*\}\[15m\]\) > 0/,
  );
});

test("every alert has a severity, a summary, a description and a runbook in the README's Operations section", () => {
  for (const rule of rules) {
    assert.match(rule.alert, /^Scheduler[A-Z][A-Za-z]+$/, `alert name ${rule.alert}`);
    assert.ok(["critical", "warning"].includes(rule.labels?.severity ?? ""), `${rule.alert}: severity`);
    assert.ok((rule.annotations?.summary ?? "").length > 10, `${rule.alert}: summary`);
    assert.ok((rule.annotations?.description ?? "").length > 40, `${rule.alert}: description`);
    assert.equal(
      rule.annotations?.runbook_url,
      `README.md#${rule.alert.toLowerCase()}`,
      `${rule.alert}: runbook_url`,
    );
  }
  assert.equal(new Set(rules.map((r) => r.alert)).size, rules.length, "alert names are unique");
});

test("every metric the alerts read is exposed by the scheduler", async () => {
  const metrics = createMetrics();
  const exposed = new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
  for (const rule of rules) {
    for (const name of rule.expr.match(/\bscheduler_[a-z_]+/g) ?? []) {
      assert.ok(
        exposed.has(name),
        `${rule.alert} reads ${name}, which controller/metrics.ts does not define`,
      );
    }
  }
});

test("the Helm chart's copy charts/backend-scheduler/files/alerts.yml is current (npm run dashboard)", () => {
  assert.equal(
    readFileSync(CHART_COPY, "utf8"),
    readFileSync(RULES, "utf8"),
    "charts/backend-scheduler/files/alerts.yml differs from ops/alerts.yml: run `npm run dashboard`",
  );
});

test("promtool check metrics accepts the registry's exposition", async () => {
  const metrics = createMetrics();
  metrics.apiQuotaRemaining.set({ window: "day" }, 90);
  metrics.unknownStatus.inc({ code: "XYZ" });
  metrics.reconcileDuration.observe(0.2);
  const { code, output } = await promtool(["check", "metrics"], await metrics.registry.metrics());
  assert.equal(code, 0, output);
  assert.equal(output.trim(), "", `promtool check metrics complained:\n${output}`);
});
