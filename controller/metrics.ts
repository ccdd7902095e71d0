/**
 * Prometheus metrics. Names are a contract for dashboards and alerts (issue 6); label
 * values are bounded (no fixture ids). Counters with known label values are initialised
 * to zero so that rate() and absent() work from the first scrape, as controller-runtime does.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { SCHEDULE_MODES } from "./config.js";
import { MATCH_STATUSES } from "./plan.js";

export const API_ENDPOINTS = ["season", "ids", "live", "date", "status"] as const;
export const API_OUTCOMES = [
  "ok",
  "bad_key",
  "daily_quota",
  "rate_limited",
  "server_error",
  "timeout",
  "network",
  "api_error",
  "bad_response",
  "aborted",
  "budget_exhausted",
] as const;

/** Names promtool rejects (counter-like `_total` names on gauges). */
const REJECTED_DEFAULTS = new Set([
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
]);

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const name of REJECTED_DEFAULTS) registry.removeSingleMetric(name);

  const metrics = {
    registry,
    reconcileTotal: new Counter({
      name: "scheduler_reconcile_total",
      help: "Reconcile passes run, by result (success, error, fenced).",
      labelNames: ["result"] as const,
      registers: [registry],
    }),
    reconcileDuration: new Histogram({
      name: "scheduler_reconcile_duration_seconds",
      help: "Duration of one reconcile loop in seconds.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    lastReconcileSuccess: new Gauge({
      name: "scheduler_last_reconcile_success_timestamp_seconds",
      help: "Unix time of the last successful reconcile.",
      registers: [registry],
    }),
    apiRequests: new Counter({
      name: "scheduler_api_requests_total",
      help: "API-Football requests by endpoint and outcome.",
      labelNames: ["endpoint", "outcome"] as const,
      registers: [registry],
    }),
    apiRequestDuration: new Histogram({
      name: "scheduler_api_request_duration_seconds",
      help: "Duration of API-Football requests in seconds (retries included).",
      labelNames: ["endpoint"] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    apiQuotaRemaining: new Gauge({
      name: "scheduler_api_quota_remaining",
      help: "API-Football requests remaining as last reported, by window (day, minute).",
      labelNames: ["window"] as const,
      registers: [registry],
    }),
    apiQuotaLimit: new Gauge({
      name: "scheduler_api_quota_limit",
      help: "API-Football request limit as last reported, by window (day, minute); alerts compare remaining with it.",
      labelNames: ["window"] as const,
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: "scheduler_queue_depth",
      help: "API calls waiting in the queue.",
      registers: [registry],
    }),
    scheduleMode: new Gauge({
      name: "scheduler_schedule_mode",
      help: "The current schedule mode (1) among all modes (0).",
      labelNames: ["mode"] as const,
      registers: [registry],
    }),
    fixtures: new Gauge({
      name: "scheduler_fixtures",
      help: "Fixtures in the host table by status.",
      labelNames: ["status"] as const,
      registers: [registry],
    }),
    fixtureUpdates: new Counter({
      name: "scheduler_fixture_updates_total",
      help: "Fixture rows inserted or changed in the host table.",
      registers: [registry],
    }),
    predictionsLocked: new Counter({
      name: "scheduler_predictions_locked_total",
      help: "Predictions moved from SUBMITTED to LOCKED.",
      registers: [registry],
    }),
    predictionsScored: new Counter({
      name: "scheduler_predictions_scored_total",
      help: "Predictions scored (LOCKED to PROCESSED, or re-scored after a correction).",
      registers: [registry],
    }),
    unknownStatus: new Counter({
      name: "scheduler_unknown_status_total",
      help: "Fixture rows from the API with a status code the scheduler does not know (row left as it was).",
      labelNames: ["code"] as const,
      registers: [registry],
    }),
    malformedRows: new Counter({
      name: "scheduler_malformed_rows_total",
      help: "Fixture rows from the API that failed validation and were skipped.",
      registers: [registry],
    }),
    isLeader: new Gauge({
      name: "scheduler_is_leader",
      help: "1 when this replica holds the lease and reconciles.",
      registers: [registry],
    }),
    leaderTransitions: new Counter({
      name: "scheduler_leader_transitions_total",
      help: "Times this replica started or stopped leading.",
      registers: [registry],
    }),
    fencingRejections: new Counter({
      name: "scheduler_fencing_rejections_total",
      help: "Write transactions rolled back because this replica no longer held the current lease epoch.",
      registers: [registry],
    }),
    liveFixtureLastUpdate: new Gauge({
      name: "scheduler_live_fixture_oldest_update_timestamp_seconds",
      help: "Unix time of the least recently confirmed live fixture (0 when none is live).",
      registers: [registry],
    }),
    dryRunActions: new Counter({
      name: "scheduler_dry_run_actions_total",
      help: "Actions planned but not written because SCHEDULER_DRY_RUN is on.",
      registers: [registry],
    }),
  };

  for (const result of ["success", "error", "fenced"]) metrics.reconcileTotal.inc({ result }, 0);
  for (const endpoint of API_ENDPOINTS) {
    for (const outcome of API_OUTCOMES) metrics.apiRequests.inc({ endpoint, outcome }, 0);
  }
  for (const mode of SCHEDULE_MODES) metrics.scheduleMode.set({ mode }, 0);
  for (const status of MATCH_STATUSES) metrics.fixtures.set({ status }, 0);
  metrics.isLeader.set(0);
  metrics.queueDepth.set(0);
  metrics.liveFixtureLastUpdate.set(0);
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;

const OUTCOME_BY_CODE: Record<string, (typeof API_OUTCOMES)[number]> = {
  ok: "ok",
  API_BAD_KEY: "bad_key",
  API_DAILY_QUOTA: "daily_quota",
  API_RATE_LIMIT: "rate_limited",
  API_SERVER_ERROR: "server_error",
  API_TIMEOUT: "timeout",
  API_NETWORK: "network",
  API_ERROR: "api_error",
  API_HTTP_ERROR: "api_error",
  API_BAD_RESPONSE: "bad_response",
  ABORTED: "aborted",
  API_BUDGET_EXHAUSTED: "budget_exhausted",
};

/** Bounded label values for scheduler_api_requests_total. */
export function apiRequestLabels(endpoint: string, outcome: string): { endpoint: string; outcome: string } {
  const short = endpoint.replace(/^fixtures:/, "");
  return {
    endpoint: (API_ENDPOINTS as readonly string[]).includes(short) ? short : "other",
    outcome: OUTCOME_BY_CODE[outcome] ?? "api_error",
  };
}
