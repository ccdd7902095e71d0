/**
 * Competition custom resources (crds/competitions.scheduler.prdiktit.io.yaml): dynamic
 * configuration under Kubernetes. An informer from @kubernetes/client-node lists and watches
 * `competitions.scheduler.prdiktit.io/v1alpha1` in one namespace; the leader writes each
 * resource's status back through the status subresource.
 *
 *   const watcher = startCompetitionWatcher({
 *     namespace,                      // LEASE_NAMESPACE, else the pod's (else the kubeconfig's)
 *     logger,
 *     onChange(competitions) { … },   // the full, current list of valid resources
 *   });
 *   await watcher.ready;              // first successful list delivered through onChange
 *   await watcher.writeStatus("premier-league", {
 *     fixtures: 380, live: 2, lastSyncTime: new Date(), ready: true,
 *     reason: "Synced", message: "380 fixtures in sync",
 *   });
 *   await watcher.stop();
 *
 * - Level-based: `onChange` always gets every valid Competition (sorted by name), never a
 *   delta; it is called once after the first list (possibly with `[]`) and afterwards only
 *   when that list changes (a status write, which changes only the resourceVersion, does not
 *   call it). Calls are coalesced per tick and never overlap; an exception in it is logged.
 * - A resource whose spec is invalid (the CRD's schema normally prevents that) is left out and
 *   logged once per generation, in one line; it is never fatal.
 * - Credentials: `kubeConfig` if given, else `KubeConfig.loadFromDefault()` (KUBECONFIG, then
 *   ~/.kube/config, then the in-cluster service account).
 * - A failed list or watch (API down, RBAC, CRD not installed) is logged and retried with
 *   capped exponential backoff; 410 Gone is handled by the informer itself (it relists).
 * - `writeStatus` merge-patches `/status` (no resourceVersion, so no conflicts with itself):
 *   fixtures, live, lastSyncTime, observedGeneration (default: the generation last seen) and
 *   a `Ready` condition whose lastTransitionTime changes only when its status does. It
 *   resolves "written", "unchanged" (the status already says so) or "not-found" (the
 *   resource is gone); other failures reject with SchedulerError KUBE_ERROR (KUBE_CONFLICT on
 *   409), retryable as errors.ts decides.
 */
import {
  ApiException,
  CustomObjectsApi,
  type Informer,
  KubeConfig,
  type KubernetesObject,
  makeInformer,
  type ObjectCache,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import type { ScheduleMode } from "./config.js";
import { backoffDelay, SchedulerError } from "./errors.js";
import type { Logger } from "./logger.js";

export const COMPETITION_GROUP = "scheduler.prdiktit.io";
export const COMPETITION_VERSION = "v1alpha1";
export const COMPETITION_PLURAL = "competitions";
export const COMPETITION_KIND = "Competition";

/** Per-competition poll intervals, in seconds, as the CRD's `spec.intervals` names them. */
export interface CompetitionIntervals {
  liveMatchesSeconds?: number;
  matchesStartingSoonSeconds?: number;
  matchDaySeconds?: number;
  upcomingMatchesSeconds?: number;
  minimalSeconds?: number;
}

/** The CRD's interval fields and the schedule modes of config.ts they override. */
export const INTERVAL_FIELDS: Record<keyof CompetitionIntervals, ScheduleMode> = {
  liveMatchesSeconds: "live_matches",
  matchesStartingSoonSeconds: "matches_starting_soon",
  matchDaySeconds: "match_day",
  upcomingMatchesSeconds: "upcoming_matches",
  minimalSeconds: "minimal",
};

/** One valid Competition resource. */
export interface CompetitionResource {
  /** metadata.name: the key for writeStatus. */
  name: string;
  leagueId: number;
  season: number;
  /** spec.enabled, true when absent. A disabled competition is listed, not synced. */
  enabled: boolean;
  /** metadata.generation: pass it back as observedGeneration. */
  generation: number;
  /** spec.intervals as given (seconds); absent when the resource overrides nothing. */
  intervals?: CompetitionIntervals;
  /** The same overrides keyed like Config.intervalsMs, in milliseconds. */
  intervalsMs?: Partial<Record<ScheduleMode, number>>;
}

export interface CompetitionStatusUpdate {
  fixtures: number;
  live: number;
  /** End of the last successful sync; omitted or null leaves the field as it is. */
  lastSyncTime?: Date | string | null;
  /** Defaults to the generation this watcher last saw. */
  observedGeneration?: number;
  /** The Ready condition: True when the last sync succeeded. */
  ready: boolean;
  /** CamelCase reason, e.g. "Synced", "ApiError", "Disabled". */
  reason: string;
  message: string;
}

export type WriteStatusResult = "written" | "unchanged" | "not-found";

export interface CompetitionWatcherOptions {
  namespace?: string;
  logger: Logger;
  onChange: (competitions: CompetitionResource[]) => void;
  /** Defaults to KubeConfig.loadFromDefault(). */
  kubeConfig?: KubeConfig;
  /** First retry delay after a failed list or watch (default 1000 ms, doubling up to 30 s). */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
}

export interface CompetitionWatcher {
  readonly namespace: string;
  /** Resolves once the first list has been delivered to onChange (it keeps retrying until then). */
  readonly ready: Promise<void>;
  /** The valid competitions as last delivered. */
  current(): CompetitionResource[];
  writeStatus(name: string, update: CompetitionStatusUpdate): Promise<WriteStatusResult>;
  /** Stop watching; idempotent. onChange is not called afterwards. */
  stop(): Promise<void>;
}

interface CompetitionObject extends KubernetesObject {
  spec?: Record<string, unknown>;
  status?: {
    conditions?: { type?: string; status?: string; lastTransitionTime?: string; [k: string]: unknown }[];
    [k: string]: unknown;
  };
}

type ParseResult = { ok: true; competition: CompetitionResource } | { ok: false; reason: string };

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);

/** Validate one Competition object (as the API returns it); pure, exported for tests. */
export function parseCompetition(object: CompetitionObject): ParseResult {
  const name = object.metadata?.name;
  if (!name) return { ok: false, reason: "metadata.name is missing" };
  const spec = object.spec;
  if (!spec || typeof spec !== "object") return { ok: false, reason: "spec is missing" };
  const { leagueId, season, enabled, intervals } = spec;
  if (!isInt(leagueId) || leagueId <= 0 || leagueId > 999_999)
    return {
      ok: false,
      reason: `spec.leagueId must be a positive whole number, got ${JSON.stringify(leagueId)}`,
    };
  if (!isInt(season) || season < 1900 || season > 2100)
    return { ok: false, reason: `spec.season must be a year (1900-2100), got ${JSON.stringify(season)}` };
  if (enabled !== undefined && typeof enabled !== "boolean")
    return { ok: false, reason: `spec.enabled must be true or false, got ${JSON.stringify(enabled)}` };
  const competition: CompetitionResource = {
    name,
    leagueId,
    season,
    enabled: enabled !== false,
    generation: Number(object.metadata?.generation ?? 0),
  };
  if (intervals !== undefined && intervals !== null) {
    if (typeof intervals !== "object" || Array.isArray(intervals))
      return { ok: false, reason: "spec.intervals must be an object" };
    const given: CompetitionIntervals = {};
    const ms: Partial<Record<ScheduleMode, number>> = {};
    for (const [field, value] of Object.entries(intervals as Record<string, unknown>)) {
      const mode = INTERVAL_FIELDS[field as keyof CompetitionIntervals];
      if (!mode) return { ok: false, reason: `spec.intervals.${field} is not a known interval` };
      if (value === undefined || value === null) continue;
      if (typeof value !== "number" || !Number.isFinite(value) || value <= 0)
        return { ok: false, reason: `spec.intervals.${field} must be a positive number of seconds` };
      given[field as keyof CompetitionIntervals] = value;
      ms[mode] = Math.round(value * 1000);
    }
    if (Object.keys(given).length > 0) {
      competition.intervals = given;
      competition.intervalsMs = ms;
    }
  }
  return { ok: true, competition };
}

function kubeError(error: unknown, what: string): SchedulerError {
  const status = error instanceof ApiException ? error.code : undefined;
  const body = error instanceof ApiException ? (error.body as unknown) : undefined;
  let detail = (error as Error)?.message ?? String(error);
  if (typeof body === "string") {
    try {
      detail = (JSON.parse(body) as { message?: string }).message ?? detail;
    } catch {
      // keep the exception's own message
    }
  } else if (body && typeof body === "object" && "message" in body) {
    detail = String((body as { message: unknown }).message);
  }
  const code = status === 409 ? "KUBE_CONFLICT" : "KUBE_ERROR";
  const retryable = status === 409 || status === 429 || status === undefined || status >= 500;
  return new SchedulerError(code, `${what}: ${status ? `HTTP ${status}: ` : ""}${detail}`, {
    cause: error,
    retryable,
    details: status ? { status } : undefined,
  });
}

function defaultNamespace(kc: KubeConfig): string {
  const context = kc.getContextObject(kc.getCurrentContext());
  return context?.namespace?.trim() || "default";
}

/** Start listing and watching Competition resources. Returns at once; see `ready`. */
export function startCompetitionWatcher(options: CompetitionWatcherOptions): CompetitionWatcher {
  const kc =
    options.kubeConfig ??
    (() => {
      const loaded = new KubeConfig();
      loaded.loadFromDefault();
      return loaded;
    })();
  const namespace = options.namespace?.trim() || defaultNamespace(kc);
  const log = options.logger.child({ component: "competition-resources", namespace });
  const api = kc.makeApiClient(CustomObjectsApi);
  const collectionPath = `/apis/${COMPETITION_GROUP}/${COMPETITION_VERSION}/namespaces/${encodeURIComponent(namespace)}/${COMPETITION_PLURAL}`;
  const informer: Informer<CompetitionObject> & ObjectCache<CompetitionObject> =
    makeInformer<CompetitionObject>(kc, collectionPath, () =>
      api.listNamespacedCustomObject({
        group: COMPETITION_GROUP,
        version: COMPETITION_VERSION,
        namespace,
        plural: COMPETITION_PLURAL,
      }),
    );

  let stopped = false;
  let delivered: CompetitionResource[] | undefined;
  let deliveredJson = "";
  let scheduled = false;
  let failures = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let attemptFailed = false;
  const invalidLogged = new Map<string, string>(); // name → "generation:reason" last logged
  let resolveReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    resolveReady = resolve;
  });

  const snapshot = (): CompetitionResource[] => {
    const valid: CompetitionResource[] = [];
    const seen = new Set<string>();
    for (const object of informer.list(namespace)) {
      const name = object.metadata?.name ?? "";
      seen.add(name);
      const parsed = parseCompetition(object);
      if (parsed.ok) {
        invalidLogged.delete(name);
        valid.push(parsed.competition);
        continue;
      }
      const key = `${object.metadata?.generation ?? "?"}:${parsed.reason}`;
      if (invalidLogged.get(name) !== key) {
        invalidLogged.set(name, key);
        log.warn(
          { competition: name, reason: parsed.reason },
          `Competition ${name} skipped: ${parsed.reason}`,
        );
      }
    }
    for (const name of invalidLogged.keys()) if (!seen.has(name)) invalidLogged.delete(name);
    return valid.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  };

  const deliver = (force: boolean) => {
    if (stopped) return;
    const list = snapshot();
    const json = JSON.stringify(list);
    if (!force && json === deliveredJson) return;
    const first = delivered === undefined;
    delivered = list;
    deliveredJson = json;
    log.info(
      {
        competitions: list.map((c) => `${c.name}=${c.leagueId}:${c.season}${c.enabled ? "" : "(disabled)"}`),
      },
      `Competition resources: ${list.length} valid`,
    );
    try {
      options.onChange(list.map((c) => structuredClone(c)));
    } catch (error) {
      log.error({ err: error }, "Competition onChange handler failed");
    }
    if (first) resolveReady();
  };

  const scheduleDelivery = () => {
    // Informer events arrive one object at a time (a relist fires one per item): coalesce.
    if (scheduled || stopped || delivered === undefined) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      deliver(false);
    });
  };

  const run = async () => {
    if (stopped) return;
    attemptFailed = false;
    await informer.start();
    if (stopped || attemptFailed) return;
    failures = 0;
    if (delivered === undefined) deliver(true);
    else scheduleDelivery(); // after a restart: the relist may have changed things
  };

  const retry = () => {
    if (stopped || retryTimer) return;
    const delay = backoffDelay(failures, options.retryDelayMs ?? 1000, options.maxRetryDelayMs ?? 30_000);
    failures += 1;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void run().catch(onError);
    }, delay);
    retryTimer.unref?.();
  };

  const onError = (error: unknown) => {
    attemptFailed = true;
    if (stopped) return;
    const e = kubeError(error, `list/watch ${COMPETITION_PLURAL}.${COMPETITION_GROUP} in ${namespace}`);
    log.warn({ code: e.code, status: e.details?.status }, `${e.message}; retrying`);
    retry();
  };

  informer.on("add", scheduleDelivery);
  informer.on("update", scheduleDelivery);
  informer.on("delete", scheduleDelivery);
  informer.on("error", onError);
  void run().catch(onError);

  const writeStatus = async (name: string, update: CompetitionStatusUpdate): Promise<WriteStatusResult> => {
    const cached = informer.get(name, namespace);
    const previous = cached?.status?.conditions?.find((c) => c.type === "Ready");
    const conditionStatus = update.ready ? "True" : "False";
    const observedGeneration = update.observedGeneration ?? Number(cached?.metadata?.generation ?? 0);
    const lastSyncTime =
      update.lastSyncTime === undefined || update.lastSyncTime === null
        ? undefined
        : new Date(update.lastSyncTime).toISOString().replace(/\.\d{3}Z$/, "Z");
    const condition = {
      type: "Ready",
      status: conditionStatus,
      observedGeneration,
      lastTransitionTime:
        previous?.status === conditionStatus && previous.lastTransitionTime
          ? previous.lastTransitionTime
          : new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
      reason: update.reason || (update.ready ? "Synced" : "NotSynced"),
      message: update.message,
    };
    const others = (cached?.status?.conditions ?? []).filter((c) => c.type !== "Ready");
    const status: Record<string, unknown> = {
      fixtures: update.fixtures,
      live: update.live,
      ...(lastSyncTime ? { lastSyncTime } : {}),
      observedGeneration,
      conditions: [...others, condition],
    };
    if (cached?.status) {
      const current = cached.status as Record<string, unknown>;
      const same = Object.entries(status).every(([k, v]) => JSON.stringify(current[k]) === JSON.stringify(v));
      if (same) return "unchanged";
    }
    try {
      await api.patchNamespacedCustomObjectStatus(
        {
          group: COMPETITION_GROUP,
          version: COMPETITION_VERSION,
          namespace,
          plural: COMPETITION_PLURAL,
          name,
          body: { status },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
      return "written";
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return "not-found";
      throw kubeError(error, `write status of Competition ${namespace}/${name}`);
    }
  };

  return {
    namespace,
    ready,
    current: () => (delivered ?? []).map((c) => structuredClone(c)),
    writeStatus,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = undefined;
      await informer.stop();
    },
  };
}
