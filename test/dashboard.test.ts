/**
 * The Grafana dashboard (ops/dashboard.ts → ops/dashboard.json and the Helm chart's copy):
 * the checked-in JSON is what the generator produces now, and every metric its queries read
 * is one the scheduler exposes on /metrics.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { createMetrics } from "../controller/metrics.js";
import { buildDashboard, GENERATED, renderDashboard } from "../ops/dashboard.js";

const STALE = "is stale: run `npm run dashboard` and commit the result";

interface PanelJson {
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: { expr?: string; refId?: string }[];
  panels?: PanelJson[];
}

function allPanels(): PanelJson[] {
  const top = (buildDashboard().panels ?? []) as PanelJson[];
  return top.flatMap((p) => [p, ...(p.panels ?? [])]);
}

function allQueries(): { panel: string; expr: string }[] {
  const queries = allPanels().flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: p.title ?? p.type, expr: t.expr ?? "" })),
  );
  for (const variable of buildDashboard().templating?.list ?? []) {
    const q = variable.query;
    const expr = typeof q === "string" ? q : typeof q?.query === "string" ? q.query : undefined;
    if (variable.type === "query" && expr) queries.push({ panel: `variable ${variable.name}`, expr });
  }
  return queries;
}

/** Metric names in a PromQL expression: identifiers followed by a selector `{` (label values stripped). */
function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  return [...withoutStrings.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{/g)].map((match) => match[1]!);
}

test("ops/dashboard.json is a fresh generation of ops/dashboard.ts", () => {
  assert.equal(readFileSync(GENERATED.dashboard, "utf8"), renderDashboard(), `ops/dashboard.json ${STALE}`);
});

test("the Helm chart's copies are current", () => {
  assert.equal(
    readFileSync(GENERATED.chartDashboard, "utf8"),
    renderDashboard(),
    `charts/backend-scheduler/files/dashboard.json ${STALE}`,
  );
  assert.equal(
    readFileSync(GENERATED.chartAlerts, "utf8"),
    readFileSync(GENERATED.alerts, "utf8"),
    `charts/backend-scheduler/files/alerts.yml ${STALE}`,
  );
});

test("generation is deterministic", () => {
  assert.equal(renderDashboard(), renderDashboard());
});

test("every metric a dashboard query reads is exposed by the scheduler (histograms by _bucket/_sum/_count)", async () => {
  const { registry } = createMetrics();
  const exposed = new Map((await registry.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]));
  const scrapeGenerated = new Set(["up"]); // written by Prometheus itself, not by /metrics
  const queries = allQueries();
  assert.ok(queries.length >= 20, `expected the dashboard's queries, found ${queries.length}`);
  let checked = 0;
  for (const { panel, expr } of queries) {
    const names = metricNames(expr);
    assert.ok(names.length > 0, `${panel}: no metric found in ${expr}`);
    for (const name of names) {
      checked++;
      if (scrapeGenerated.has(name) || exposed.has(name)) continue;
      const base = name.replace(/_(bucket|sum|count)$/, "");
      assert.ok(
        base !== name && exposed.get(base) === "histogram",
        `panel "${panel}" reads ${name}, which controller/metrics.ts does not expose`,
      );
    }
  }
  assert.ok(checked >= queries.length);
});

test("the metric-name extraction sees through label values, functions and grouping", () => {
  assert.deepEqual(
    metricNames(
      'histogram_quantile(0.9, sum by (le) (rate(a_bucket{job=~"x{y}"}[5m]))) and on (job) (b{c="d"} == 1)',
    ),
    ["a_bucket", "b"],
  );
});

test("the dashboard shows what issue 6 asks for", () => {
  const used = new Set(allQueries().flatMap((q) => metricNames(q.expr)));
  for (const name of [
    "scheduler_is_leader",
    "scheduler_leader_transitions_total",
    "scheduler_schedule_mode",
    "scheduler_reconcile_total",
    "scheduler_reconcile_duration_seconds_bucket",
    "scheduler_last_reconcile_success_timestamp_seconds",
    "scheduler_api_requests_total",
    "scheduler_api_request_duration_seconds_bucket",
    "scheduler_api_quota_remaining",
    "scheduler_queue_depth",
    "scheduler_fixtures",
    "scheduler_fixture_updates_total",
    "scheduler_predictions_locked_total",
    "scheduler_predictions_scored_total",
    "scheduler_unknown_status_total",
    "scheduler_malformed_rows_total",
    "scheduler_fencing_rejections_total",
    "scheduler_live_fixture_oldest_update_timestamp_seconds",
  ]) {
    assert.ok(used.has(name), `no panel reads ${name}`);
  }
  const quotaWindows = allQueries()
    .map((q) => q.expr)
    .join("\n");
  assert.match(quotaWindows, /window="day"/);
  assert.match(quotaWindows, /window="minute"/);
  assert.match(quotaWindows, /histogram_quantile\(0\.99/);
});

test("every panel queries the datasource template variable; the variable is a Prometheus picker", () => {
  const dash = buildDashboard();
  const variable = dash.templating?.list?.find((v) => v.name === "datasource");
  assert.equal(variable?.type, "datasource");
  assert.equal(variable?.query, "prometheus");
  assert.equal(dash.uid, "backend-scheduler");
  const panels = allPanels().filter((p) => p.type !== "row");
  assert.ok(panels.length >= 15);
  for (const panel of panels) {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax
    assert.deepEqual(panel.datasource, { type: "prometheus", uid: "${datasource}" }, panel.title);
    assert.ok((panel.targets ?? []).length > 0, `${panel.title} has no query`);
  }
  const ids = (dash.panels ?? []).map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
});
