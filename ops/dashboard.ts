/**
 * The Grafana dashboard for backend-scheduler, built with Grafana's typed builders
 * (@grafana/grafana-foundation-sdk). Never edit the JSON by hand: change this file and run
 *
 *   npm run dashboard
 *
 * which writes ops/dashboard.json and the Helm chart's copies
 * (charts/backend-scheduler/files/dashboard.json, and files/alerts.yml from ops/alerts.yml).
 * test/dashboard.test.ts fails when the checked-in files are stale, and checks that every
 * metric a query reads is one the scheduler exposes.
 */
import { copyFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as common from "@grafana/grafana-foundation-sdk/common";
import * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import * as prometheus from "@grafana/grafana-foundation-sdk/prometheus";
import * as stat from "@grafana/grafana-foundation-sdk/stat";
import * as statetimeline from "@grafana/grafana-foundation-sdk/statetimeline";
import * as timeseries from "@grafana/grafana-foundation-sdk/timeseries";

export const DASHBOARD_UID = "backend-scheduler";

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template literal
const DATASOURCE: common.DataSourceRef = { type: "prometheus", uid: "${datasource}" };

/** The series selector every query uses: the scheduler's targets in the chosen namespace(s). */
const SELECTOR = 'job=~".*backend-scheduler.*", namespace=~"$namespace"';

/** `name{job=…, namespace=…[, extra]}`: every metric in a query goes through here. */
function m(name: string, extra?: string): string {
  return `${name}{${SELECTOR}${extra ? `, ${extra}` : ""}}`;
}

/** Keep only the series of the replica that leads (standbys keep stale values). */
function onLeader(expr: string): string {
  return `(${expr}) and on (job, instance) (${m("scheduler_is_leader")} == 1)`;
}

function query(expr: string, legend: string, refId = "A"): prometheus.DataqueryBuilder {
  return new prometheus.DataqueryBuilder()
    .datasource(DATASOURCE)
    .expr(expr)
    .legendFormat(legend)
    .refId(refId);
}

function quantiles(histogram: string, by: string[], legendPrefix: string): prometheus.DataqueryBuilder[] {
  const keys = ["le", ...by].join(", ");
  return [0.5, 0.9, 0.99].map((q, i) =>
    query(
      `histogram_quantile(${q}, sum by (${keys}) (rate(${m(`${histogram}_bucket`)}[$__rate_interval])))`,
      `p${Math.round(q * 100)}${legendPrefix}`,
      String.fromCharCode(65 + i),
    ),
  );
}

function graph(
  title: string,
  description: string,
  targets: prometheus.DataqueryBuilder[],
  options: { unit?: string; stacked?: boolean; width?: number; bars?: boolean; min?: number } = {},
): timeseries.PanelBuilder {
  const panel = new timeseries.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .targets(targets)
    .gridPos({ h: 8, w: options.width ?? 8, x: 0, y: 0 })
    .unit(options.unit ?? "short")
    .lineWidth(1)
    .fillOpacity(options.stacked ? 40 : 10)
    .legend(
      new common.VizLegendOptionsBuilder()
        .displayMode(common.LegendDisplayMode.List)
        .placement(common.LegendPlacement.Bottom)
        .showLegend(true),
    );
  if (options.min !== undefined) panel.min(options.min);
  if (options.stacked) panel.stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal));
  if (options.bars) panel.drawStyle(common.GraphDrawStyle.Bars);
  return panel;
}

function single(
  title: string,
  description: string,
  target: prometheus.DataqueryBuilder,
  options: {
    unit?: string;
    steps?: dashboard.Threshold[];
    mappings?: dashboard.ValueMapping[];
    noValue?: string;
    width?: number;
  } = {},
): stat.PanelBuilder {
  const panel = new stat.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .withTarget(target)
    .gridPos({ h: 4, w: options.width ?? 4, x: 0, y: 0 })
    .unit(options.unit ?? "short")
    .colorMode(common.BigValueColorMode.Background)
    .graphMode(common.BigValueGraphMode.None)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(["lastNotNull"]).values(false))
    .thresholds(
      new dashboard.ThresholdsConfigBuilder()
        .mode(dashboard.ThresholdsMode.Absolute)
        .steps(options.steps ?? [{ value: null, color: "green" }]),
    );
  if (options.mappings) panel.mappings(options.mappings);
  if (options.noValue) panel.noValue(options.noValue);
  return panel;
}

function row(title: string): dashboard.RowBuilder {
  return new dashboard.RowBuilder(title).collapsed(false);
}

const LEADER_MAPPING: dashboard.ValueMapping = {
  type: dashboard.MappingType.ValueToText,
  options: {
    "0": { text: "standby", color: "blue", index: 0 },
    "1": { text: "leader", color: "green", index: 1 },
  },
};

const MODE_MAPPING: dashboard.ValueMapping = {
  type: dashboard.MappingType.ValueToText,
  options: {
    "0": { text: "-", color: "transparent", index: 0 },
    "1": { text: "active", color: "green", index: 1 },
  },
};

export function buildDashboard(): dashboard.Dashboard {
  const builder = new dashboard.DashboardBuilder("backend-scheduler")
    .uid(DASHBOARD_UID)
    .description(
      "API-Football fixtures reconciled into the prediction backend: leadership, schedule mode, reconcile loop, API quota, fixtures, predictions and errors.",
    )
    .tags(["backend-scheduler", "football"])
    .editable()
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .refresh("30s")
    .time({ from: "now-6h", to: "now" })
    .timezone("utc")
    .withVariable(
      new dashboard.DatasourceVariableBuilder("datasource").label("Data source").type("prometheus"),
    )
    .withVariable(
      new dashboard.QueryVariableBuilder("namespace")
        .label("Namespace")
        .datasource(DATASOURCE)
        .query({
          query: 'label_values(scheduler_is_leader{job=~".*backend-scheduler.*"}, namespace)',
          refId: "ns",
        })
        .definition('label_values(scheduler_is_leader{job=~".*backend-scheduler.*"}, namespace)')
        .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
        .sort(dashboard.VariableSort.AlphabeticalAsc)
        .includeAll(true)
        .allValue(".*")
        .multi(true),
    );

  // ---- Leadership and schedule mode
  builder
    .withRow(row("Leadership and schedule mode"))
    .withPanel(
      single("Replicas up", "Scrape targets of the scheduler that answer.", query(`sum(${m("up")})`, "up"), {
        steps: [
          { value: null, color: "red" },
          { value: 1, color: "green" },
        ],
      }),
    )
    .withPanel(
      single(
        "Leaders",
        "Replicas reporting scheduler_is_leader = 1. Exactly one is healthy; 0 or 2+ pages (alerts SchedulerNoLeader, SchedulerMultipleLeaders).",
        query(`sum(${m("scheduler_is_leader")})`, "leaders"),
        {
          steps: [
            { value: null, color: "red" },
            { value: 1, color: "green" },
            { value: 2, color: "red" },
          ],
        },
      ),
    )
    .withPanel(
      new statetimeline.PanelBuilder()
        .title("Leader per replica")
        .description("scheduler_is_leader per replica: who held the lease when.")
        .datasource(DATASOURCE)
        .withTarget(query(`max by (instance) (${m("scheduler_is_leader")})`, "{{instance}}"))
        .gridPos({ h: 4, w: 10, x: 0, y: 0 })
        .mappings([LEADER_MAPPING])
        .showValue(common.VisibilityMode.Never)
        .mergeValues(true),
    )
    .withPanel(
      graph(
        "Leader transitions",
        "Times each replica started or stopped leading (scheduler_leader_transitions_total). A steady climb means the lease flaps.",
        [
          query(
            `sum by (instance) (increase(${m("scheduler_leader_transitions_total")}[$__rate_interval]))`,
            "{{instance}}",
          ),
        ],
        { width: 6, bars: true, min: 0 },
      ).gridPos({ h: 4, w: 6, x: 0, y: 0 }),
    )
    .withPanel(
      new statetimeline.PanelBuilder()
        .title("Schedule mode (leader)")
        .description(
          "scheduler_schedule_mode on the leader: live_matches, matches_starting_soon, match_day, upcoming_matches or minimal. It sets how often the API is asked.",
        )
        .datasource(DATASOURCE)
        .withTarget(query(`max by (mode) (${onLeader(m("scheduler_schedule_mode"))})`, "{{mode}}"))
        .gridPos({ h: 6, w: 24, x: 0, y: 0 })
        .mappings([MODE_MAPPING])
        .showValue(common.VisibilityMode.Never)
        .mergeValues(true),
    );

  // ---- Reconcile loop
  builder
    .withRow(row("Reconcile loop"))
    .withPanel(
      graph(
        "Reconciles by result",
        "Reconcile passes per second by result (success, error, fenced): scheduler_reconcile_total.",
        [query(`sum by (result) (rate(${m("scheduler_reconcile_total")}[$__rate_interval]))`, "{{result}}")],
        { unit: "ops", stacked: true, min: 0 },
      ),
    )
    .withPanel(
      graph(
        "Reconcile latency",
        "Quantiles of scheduler_reconcile_duration_seconds (one reconcile loop, API calls and database writes included).",
        quantiles("scheduler_reconcile_duration_seconds", [], ""),
        { unit: "s", min: 0 },
      ),
    )
    .withPanel(
      single(
        "Since last successful reconcile",
        "time() - scheduler_last_reconcile_success_timestamp_seconds on the leader. The slowest mode (minimal) reconciles hourly; past 2 h SchedulerReconcileStale fires.",
        query(`time() - max(${onLeader(m("scheduler_last_reconcile_success_timestamp_seconds"))})`, "age"),
        {
          unit: "s",
          width: 8,
          steps: [
            { value: null, color: "green" },
            { value: 3600, color: "orange" },
            { value: 7200, color: "red" },
          ],
          noValue: "no leader",
        },
      ).gridPos({ h: 8, w: 8, x: 0, y: 0 }),
    );

  // ---- API-Football
  builder
    .withRow(row("API-Football"))
    .withPanel(
      graph(
        "API calls by endpoint and outcome",
        "scheduler_api_requests_total per second, by endpoint and outcome (series that stay at zero are hidden).",
        [
          query(
            `sum by (endpoint, outcome) (rate(${m("scheduler_api_requests_total")}[$__rate_interval])) > 0`,
            "{{endpoint}} {{outcome}}",
          ),
        ],
        { unit: "reqps", stacked: true, min: 0 },
      ),
    )
    .withPanel(
      graph(
        "API latency",
        "Quantiles of scheduler_api_request_duration_seconds by endpoint (retries included).",
        quantiles("scheduler_api_request_duration_seconds", ["endpoint"], " {{endpoint}}"),
        { unit: "s", min: 0 },
      ),
    )
    .withPanel(
      graph(
        "API quota",
        "Requests remaining as API-Football last reported them, and the plan's limits, per window (day resets at 00:00 UTC).",
        [
          query(
            `max by (window) (${onLeader(m("scheduler_api_quota_remaining"))})`,
            "remaining ({{window}})",
          ),
          query(`max by (window) (${onLeader(m("scheduler_api_quota_limit"))})`, "limit ({{window}})", "B"),
        ],
        { min: 0 },
      ),
    )
    .withPanel(
      single(
        "Quota left today",
        'scheduler_api_quota_remaining{window="day"} on the leader (SchedulerApiQuotaLow under 10 %).',
        query(`max(${onLeader(m("scheduler_api_quota_remaining", 'window="day"'))})`, "day"),
        {
          width: 6,
          steps: [
            { value: null, color: "red" },
            { value: 10, color: "orange" },
            { value: 30, color: "green" },
          ],
          noValue: "not reported yet",
        },
      ),
    )
    .withPanel(
      single(
        "Quota left this minute",
        'scheduler_api_quota_remaining{window="minute"} on the leader.',
        query(`max(${onLeader(m("scheduler_api_quota_remaining", 'window="minute"'))})`, "minute"),
        {
          width: 6,
          steps: [
            { value: null, color: "orange" },
            { value: 2, color: "green" },
          ],
          noValue: "not reported yet",
        },
      ),
    )
    .withPanel(
      graph(
        "Queue depth",
        "API calls waiting in the scheduler's queue (scheduler_queue_depth).",
        [query(`max by (instance) (${m("scheduler_queue_depth")})`, "{{instance}}")],
        { width: 12, min: 0 },
      ).gridPos({ h: 4, w: 12, x: 0, y: 0 }),
    );

  // ---- Fixtures and predictions
  builder
    .withRow(row("Fixtures and predictions"))
    .withPanel(
      graph(
        "Fixtures by status",
        "Fixtures in the host table by status (scheduler_fixtures on the leader).",
        [query(`max by (status) (${onLeader(m("scheduler_fixtures"))}) > 0`, "{{status}}")],
        { stacked: true, min: 0 },
      ),
    )
    .withPanel(
      graph(
        "Fixture updates and predictions",
        "Fixture rows written, predictions locked at kick-off and predictions scored, per second.",
        [
          query(
            `sum(rate(${m("scheduler_fixture_updates_total")}[$__rate_interval]))`,
            "fixture rows updated",
          ),
          query(
            `sum(rate(${m("scheduler_predictions_locked_total")}[$__rate_interval]))`,
            "predictions locked",
            "B",
          ),
          query(
            `sum(rate(${m("scheduler_predictions_scored_total")}[$__rate_interval]))`,
            "predictions scored",
            "C",
          ),
        ],
        { unit: "ops", min: 0 },
      ),
    )
    .withPanel(
      single(
        "Oldest live fixture",
        "How long ago the least recently confirmed live fixture was confirmed by the API (SchedulerLiveFixtureStale past 5 min).",
        query(
          `time() - max(${onLeader(`${m("scheduler_live_fixture_oldest_update_timestamp_seconds")} > 0`)})`,
          "age",
        ),
        {
          unit: "s",
          width: 8,
          steps: [
            { value: null, color: "green" },
            { value: 180, color: "orange" },
            { value: 300, color: "red" },
          ],
          noValue: "no live fixture",
        },
      ).gridPos({ h: 8, w: 8, x: 0, y: 0 }),
    );

  // ---- Errors
  builder
    .withRow(row("Errors"))
    .withPanel(
      graph(
        "Unknown status codes",
        "Fixture rows with a status code the scheduler does not know, by code; those rows are left as they were (SchedulerUnknownStatusCodes).",
        [
          query(
            `sum by (code) (increase(${m("scheduler_unknown_status_total")}[$__rate_interval]))`,
            "{{code}}",
          ),
        ],
        { bars: true, min: 0 },
      ),
    )
    .withPanel(
      graph(
        "Malformed rows skipped",
        "Fixture rows from the API that failed validation and were skipped (scheduler_malformed_rows_total).",
        [query(`sum(increase(${m("scheduler_malformed_rows_total")}[$__rate_interval]))`, "malformed rows")],
        { bars: true, min: 0 },
      ),
    )
    .withPanel(
      graph(
        "Fencing rejections and API errors",
        "Writes rolled back because the replica had lost the lease (scheduler_fencing_rejections_total), and API calls that did not end ok.",
        [
          query(
            `sum by (instance) (increase(${m("scheduler_fencing_rejections_total")}[$__rate_interval]))`,
            "fenced {{instance}}",
          ),
          query(
            `sum by (outcome) (increase(${m("scheduler_api_requests_total", 'outcome!="ok"')}[$__rate_interval])) > 0`,
            "API {{outcome}}",
            "B",
          ),
        ],
        { bars: true, min: 0 },
      ),
    );

  // Stable panel ids (links like ?viewPanel=N keep working across regenerations).
  const built = builder.build();
  built.panels?.forEach((panel, index) => {
    panel.id = index + 1;
  });
  return built;
}

/** The dashboard as checked in: stable key order from the builders, two-space indent, final newline. */
export function renderDashboard(): string {
  return `${JSON.stringify(buildDashboard(), null, 2)}\n`;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const GENERATED = {
  dashboard: path.join(root, "ops/dashboard.json"),
  chartDashboard: path.join(root, "charts/backend-scheduler/files/dashboard.json"),
  alerts: path.join(root, "ops/alerts.yml"),
  chartAlerts: path.join(root, "charts/backend-scheduler/files/alerts.yml"),
};

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const json = renderDashboard();
  writeFileSync(GENERATED.dashboard, json);
  writeFileSync(GENERATED.chartDashboard, json);
  copyFileSync(GENERATED.alerts, GENERATED.chartAlerts);
  for (const file of Object.values(GENERATED).slice(0, 2).concat(GENERATED.chartAlerts)) {
    console.log(`wrote ${path.relative(root, file)}`);
  }
}
