/**
 * Leader election on a `coordination.k8s.io/v1` Lease (LEADER_ELECTION=kubernetes), with
 * client-go's LeaseLock algorithm and the loop shared with the PostgreSQL back end
 * (`createLeaseElector`).
 *
 * One attempt (client-go's `tryAcquireOrRenew`):
 *  - GET the Lease; absent → create it with this replica as holder (a 409 means someone
 *    else created it first);
 *  - whenever the record differs from the one last observed, remember it with the *local*
 *    time of observation. The lease counts as expired `leaseDurationSeconds` after that
 *    observation, never by comparing `renewTime` with the local clock, because the holder's
 *    clock and ours may differ;
 *  - held by another and not expired → standby; otherwise PUT the record back with this
 *    replica as holder (acquireTime and leaseTransitions kept when renewing, reset/+1 when
 *    taking over) carrying `metadata.resourceVersion`, so a concurrent writer gets 409
 *    Conflict and tries again next period;
 *  - release writes an empty holder with `leaseDurationSeconds: 1` (ReleaseOnCancel).
 *
 * Fencing lives in PostgreSQL for this back end too. Before `onStartedLeading`, a replica
 * that took the Lease records its term in `scheduler.lease` (holder = itself, epoch + 1),
 * unconditionally: the Lease has already decided. After each successful Lease renewal it
 * stamps `renewed_at = now()` on that row (asynchronously, guarded by holder and epoch),
 * and `fence(tx)` runs the same check as the PostgreSQL back end: holder, epoch, and not
 * expired by the database clock (`renewed_at` + the lease duration). So a leader's write
 * is refused once another replica has started a newer term, and also once this leader has
 * not renewed for a lease duration even if nobody took over yet. If the row shows a newer
 * term when this leader stamps it, it steps down at its next renewal.
 * On release the row's holder is emptied too and standbys are woken with NOTIFY (when a
 * database URL is known), so a hand-over does not wait for their next poll.
 */
import { readFileSync } from "node:fs";
import {
  CoordinationV1Api,
  KubeConfig,
  type V1Lease,
  type V1LeaseSpec,
  V1MicroTime,
} from "@kubernetes/client-node";
import type { Elector, ElectorOptions } from "./elector.js";
import {
  createLeaseElector,
  type LeaseElectorHooks,
  type LeaseLock,
  type LeaseObservation,
} from "./elector-postgres.js";
import { SchedulerError } from "./errors.js";
import { fenceLease, recordTakeover, releaseLease, touchFencingRecord } from "./lease-queries.js";

const IN_CLUSTER_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/** LEASE_NAMESPACE (or POD_NAMESPACE), else the service account's namespace, else the kubeconfig context's, else `default`. */
export function leaseNamespaceFor(explicit: string | undefined, kubeConfig: KubeConfig): string {
  if (explicit) return explicit;
  try {
    const ns = readFileSync(IN_CLUSTER_NAMESPACE, "utf8").trim();
    if (ns) return ns;
  } catch {
    // not in a cluster
  }
  return kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace ?? "default";
}

const statusOf = (error: unknown): number | undefined => {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "number" ? code : undefined;
};

const kubeError = (error: unknown, what: string) => {
  const status = statusOf(error);
  return new SchedulerError(
    status === 409 ? "KUBE_CONFLICT" : "KUBE_ERROR",
    `${what}: ${status ? `HTTP ${status}` : error instanceof Error ? error.message : String(error)}`,
    { cause: error, details: status ? { status } : undefined },
  );
};

const toDate = (value: unknown): Date | null => {
  if (value === undefined || value === null || value === "") return null;
  const date = value instanceof Date ? value : new Date(String(value));
  return Number.isNaN(date.getTime()) ? null : date;
};

export function createKubernetesElector(
  options: ElectorOptions & { kubeConfig?: KubeConfig },
  hooks: LeaseElectorHooks = {},
): Elector {
  const { identity, leaseName: name, leaseDurationMs, sql } = options;
  const kubeConfig =
    options.kubeConfig ??
    (() => {
      const kc = new KubeConfig();
      kc.loadFromDefault(); // KUBECONFIG, ~/.kube/config, else in-cluster
      return kc;
    })();
  const namespace = leaseNamespaceFor(options.leaseNamespace, kubeConfig);
  const api = kubeConfig.makeApiClient(CoordinationV1Api);
  const leaseSeconds = Math.max(1, Math.ceil(leaseDurationMs / 1000));
  const log = options.logger.child({
    component: "elector",
    backend: "kubernetes",
    identity,
    lease: name,
    namespace,
  });

  // client-go's observedRecord / observedTime.
  let observedKey: string | undefined;
  let observedTime = 0;
  const observe = (lease: V1Lease, now: number) => {
    const key = JSON.stringify(lease.spec ?? {});
    if (key !== observedKey) {
      observedKey = key;
      observedTime = now;
    }
  };

  // The fencing row's renewal stamp, one at a time; a term found superseded ends ours.
  let stamping = false;
  let supersededEpoch: number | null = null;
  const stamp = (epoch: number, transitions: number) => {
    if (stamping) return;
    stamping = true;
    touchFencingRecord(sql, { name, identity, epoch, durationMs: leaseDurationMs, transitions })
      .then((current) => {
        if (!current) supersededEpoch = epoch;
      })
      .catch((error) => log.debug({ err: String(error) }, "fencing row not stamped"))
      .finally(() => {
        stamping = false;
      });
  };

  const observation = (spec: V1LeaseSpec, acquired: boolean, epoch: number | null): LeaseObservation => ({
    acquired,
    epoch,
    holder: spec.holderIdentity ? spec.holderIdentity : null,
    transitions: spec.leaseTransitions ?? 0,
    since: toDate(spec.acquireTime),
    renewedAt: toDate(spec.renewTime),
  });

  /** This replica holds the Lease: start its term in PostgreSQL before it may lead. */
  const takeOver = async (spec: V1LeaseSpec): Promise<LeaseObservation> => {
    const transitions = spec.leaseTransitions ?? 0;
    const term = await recordTakeover(sql, { name, identity, durationMs: leaseDurationMs, transitions });
    supersededEpoch = null;
    log.info({ epoch: term.epoch, transitions }, "Lease taken; term recorded");
    return { ...observation(spec, true, term.epoch), since: term.acquiredAt };
  };

  const lock: LeaseLock = {
    backend: "kubernetes",

    async tryAcquireOrRenew(epoch) {
      const now = Date.now();
      let lease: V1Lease | undefined;
      try {
        lease = await api.readNamespacedLease({ name, namespace });
      } catch (error) {
        if (statusOf(error) !== 404) throw kubeError(error, `GET lease ${namespace}/${name}`);
      }

      const fresh: V1LeaseSpec = {
        holderIdentity: identity,
        leaseDurationSeconds: leaseSeconds,
        acquireTime: new V1MicroTime(now),
        renewTime: new V1MicroTime(now),
        leaseTransitions: 0,
      };
      if (!lease) {
        try {
          lease = await api.createNamespacedLease({
            namespace,
            body: {
              apiVersion: "coordination.k8s.io/v1",
              kind: "Lease",
              metadata: { name, namespace },
              spec: fresh,
            },
          });
        } catch (error) {
          if (statusOf(error) === 409) {
            return { ...observation({}, false, null), freeInMs: 0 }; // created by someone else just now
          }
          throw kubeError(error, `POST lease ${namespace}/${name}`);
        }
        observe(lease, now);
        return takeOver(lease.spec ?? fresh);
      }

      const old = lease.spec ?? {};
      observe(lease, now);
      const holder = old.holderIdentity ?? "";
      const durationMs = (old.leaseDurationSeconds ?? leaseSeconds) * 1000;
      if (holder !== "" && holder !== identity && observedTime + durationMs > now) {
        return { ...observation(old, false, null), freeInMs: observedTime + durationMs - now };
      }

      const renewing = holder === identity;
      const spec: V1LeaseSpec = {
        holderIdentity: identity,
        leaseDurationSeconds: leaseSeconds,
        acquireTime: renewing && old.acquireTime ? old.acquireTime : fresh.acquireTime,
        renewTime: fresh.renewTime,
        leaseTransitions: renewing ? (old.leaseTransitions ?? 0) : (old.leaseTransitions ?? 0) + 1,
      };
      let updated: V1Lease;
      try {
        // metadata (with resourceVersion) as read: a concurrent write makes this a 409.
        updated = await api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec } });
      } catch (error) {
        // 409: the Lease changed since our GET. A failed attempt like any other (client-go
        // returns false): tried again next period, and a leader keeps leading until its deadline.
        throw kubeError(error, `PUT lease ${namespace}/${name}`);
      }
      observe(updated, now);
      const written = updated.spec ?? spec;

      if (renewing && epoch !== null) {
        if (supersededEpoch === epoch) {
          log.warn({ epoch }, "the fencing row shows a newer term: stepping down");
          return { ...observation(written, false, null), holder: null };
        }
        stamp(epoch, written.leaseTransitions ?? 0);
        return observation(written, true, epoch);
      }
      return takeOver(written);
    },

    async release() {
      try {
        const lease = await api.readNamespacedLease({ name, namespace });
        const spec = lease.spec ?? {};
        if (spec.holderIdentity === identity) {
          const now = new V1MicroTime();
          await api.replaceNamespacedLease({
            name,
            namespace,
            body: {
              ...lease,
              spec: {
                holderIdentity: "",
                leaseDurationSeconds: 1,
                acquireTime: now,
                renewTime: now,
                leaseTransitions: spec.leaseTransitions ?? 0,
              },
            },
          });
          observedKey = undefined;
          log.info("Lease released");
        }
      } catch (error) {
        if (statusOf(error) !== 404) throw kubeError(error, `release lease ${namespace}/${name}`);
      }
      // Then end the term in PostgreSQL and wake the standbys.
      await releaseLease(sql, { name, identity, epoch: null });
    },

    fence: (tx, epoch) => fenceLease(tx, { name, identity, epoch }),

    async close() {},
  };
  return createLeaseElector(lock, options, hooks);
}
