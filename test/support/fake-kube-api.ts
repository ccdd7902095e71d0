/**
 * A fake Kubernetes API server for tests: real HTTP on 127.0.0.1 (port 0), real wire format,
 * for any namespaced resource, built-in or custom:
 *
 *   /apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}[/status]]
 *   /api/v1/namespaces/{ns}/{plural}[/{name}[/status]]          (core group)
 *   /apis/{group}/{version}/{plural}                              (list/watch across namespaces)
 *
 * - collection: GET (list, `metadata.resourceVersion`, `?watch=true` streams), POST (create;
 *   409 AlreadyExists; `metadata.generateName` honoured)
 * - item: GET, PUT (409 Conflict when `metadata.resourceVersion` is given and stale, 404 when
 *   absent), PATCH (`application/merge-patch+json`, `strategic-merge-patch+json` treated as
 *   merge, `json-patch+json`; a `metadata.resourceVersion` in a merge patch is a precondition),
 *   DELETE (returns the object as deleted)
 * - `/status`: GET, PUT, PATCH change only `.status`; writes to the main resource ignore
 *   `.status` (as for a CRD with the status subresource; harmless for leases, which have none).
 *   `metadata.generation` starts at 1 and grows when anything outside metadata and status changes.
 * - watch: `?watch=true&resourceVersion=N` replies 200 with chunked newline-delimited
 *   `{"type":"ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR","object":…}` events newer than N;
 *   without a resourceVersion (or "0") it first sends ADDED for every current object. A
 *   resourceVersion older than the last `expireWatches()` gets an ERROR event holding a
 *   `Status` with code 410 (reason Expired) and the stream ends (or HTTP 410, see
 *   `goneAs`); `timeoutSeconds` ends a stream; `labelSelector` (`k=v`, `k!=v`, `k`) and
 *   `fieldSelector` (`metadata.name=x`) filter lists and watches.
 * - errors are `Status` objects (`kind: Status`, `code`, `reason`, `message`, `details`).
 * - the bearer token is ignored; `/version` answers.
 *
 * Test helpers: `writeKubeconfig()`/`kubeconfigYaml()` point a client at it; `get`, `list`,
 * `create`, `upsert`, `remove`, `mutate` read and change objects directly (watch events go out
 * as for API writes); `failNext()` injects one-shot faults; `expireWatches()` forces 410;
 * `requests` records every request; `waitFor()` polls a condition.
 *
 *   const api = await startFakeKubeApi();
 *   const kubeconfigPath = await api.writeKubeconfig();         // KUBECONFIG=kubeconfigPath
 *   api.create(LEASES, "default", { metadata: { name: "backend-scheduler" }, spec: {} });
 *   api.failNext({ method: "PUT", path: /leases/, status: 409 });
 *   await api.close();
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import YAML from "yaml";

/** Identifies a kind of resource: group "" is the core group (`/api/v1`). */
export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  /** Used for `kind` of objects created without one and of lists (`${kind}List`). */
  kind?: string;
}

export const LEASES: ResourceType = {
  group: "coordination.k8s.io",
  version: "v1",
  plural: "leases",
  kind: "Lease",
};
export const COMPETITIONS: ResourceType = {
  group: "scheduler.prdiktit.io",
  version: "v1alpha1",
  plural: "competitions",
  kind: "Competition",
};

/** A Kubernetes object as JSON: free-form apart from `metadata`. */
export type KubeObject = {
  apiVersion?: string;
  kind?: string;
  // biome-ignore lint/suspicious/noExplicitAny: metadata fields are read and written freely in tests
  metadata: Record<string, any>;
  // biome-ignore lint/suspicious/noExplicitAny: spec and status are free-form JSON
  [key: string]: any;
};

export interface Fault {
  /** Only requests with this method (GET, POST, PUT, PATCH, DELETE) match; any when omitted. */
  method?: string;
  /** Substring of, or pattern tested against, the request path with its query string. */
  path?: string | RegExp;
  /** Only watch requests (true) or only non-watch requests (false) match; any when omitted. */
  watch?: boolean;
  /** HTTP status to answer with a `Status` object; 0 destroys the socket instead. */
  status: number;
  reason?: string;
  message?: string;
  /** How many matching requests fail (default 1). */
  times?: number;
  /** Wait this long before answering (or destroying). */
  delayMs?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  authorization: string | undefined;
  body: unknown;
  /** HTTP status answered (0 when the socket was destroyed); watches record 200 or the error. */
  status: number;
}

export interface FakeKubeApi {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  /** Every request, oldest first. */
  readonly requests: RecordedRequest[];
  /** The latest resourceVersion handed out (a global counter, as etcd's). */
  readonly resourceVersion: number;
  /** Currently open watch streams. */
  readonly openWatches: number;
  /** A kubeconfig (YAML) whose current context points here with a dummy token. */
  kubeconfigYaml(options?: { namespace?: string }): string;
  /** Write that kubeconfig to a file (a fresh temp dir unless `file` is given); returns its path. */
  writeKubeconfig(file?: string, options?: { namespace?: string }): Promise<string>;
  get(type: ResourceType, namespace: string, name: string): KubeObject | undefined;
  list(type: ResourceType, namespace?: string): KubeObject[];
  /** Create as a POST would (fills metadata; throws if it exists). Emits ADDED. */
  create(type: ResourceType, namespace: string, object: Partial<KubeObject>): KubeObject;
  /** Create or replace unconditionally, status included. Emits ADDED or MODIFIED. */
  upsert(type: ResourceType, namespace: string, object: Partial<KubeObject>): KubeObject;
  /** Change an object in place with a function (status included). Emits MODIFIED. */
  mutate(
    type: ResourceType,
    namespace: string,
    name: string,
    change: (object: KubeObject) => void,
  ): KubeObject;
  /** Delete directly; returns whether it existed. Emits DELETED. */
  remove(type: ResourceType, namespace: string, name: string): boolean;
  /** The next matching request(s) fail. Faults are checked in the order added. */
  failNext(fault: Fault): void;
  /** Drop pending faults. */
  clearFaults(): void;
  /**
   * Compact history: every resourceVersion up to now becomes too old. Open watches get an
   * ERROR event with a 410 `Status` and end (`goneAs: "http"` just closes them, and later
   * watches from an old version then get HTTP 410 instead of the event).
   */
  expireWatches(options?: { goneAs?: "event" | "http" }): void;
  /** Send a BOOKMARK with the current resourceVersion to every open watch. */
  sendBookmarks(): void;
  /** End every open watch stream cleanly (clients re-watch from their last version). */
  closeWatches(): void;
  /** Poll `condition` every 10 ms until it is truthy (returns its value) or time out. */
  waitFor<T>(condition: () => T | undefined | null | false, timeoutMs?: number, label?: string): Promise<T>;
  close(): Promise<void>;
}

interface Collection {
  type: ResourceType;
  namespace: string;
  items: Map<string, KubeObject>;
}

interface HistoryEvent {
  rv: number;
  collectionKey: string;
  eventType: "ADDED" | "MODIFIED" | "DELETED";
  object: KubeObject;
}

interface Watcher {
  /** Collection keys matched: one namespace, or every namespace when `namespace` is undefined. */
  typeKey: string;
  namespace: string | undefined;
  labelSelector: string | undefined;
  fieldSelector: string | undefined;
  res: http.ServerResponse;
  timer: NodeJS.Timeout | undefined;
}

interface Route {
  type: ResourceType;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
}

const clone = <T>(value: T): T => structuredClone(value);
const typeKeyOf = (t: ResourceType) => `${t.group}/${t.version}/${t.plural}`;
const collectionKeyOf = (t: ResourceType, namespace: string) => `${typeKeyOf(t)}|${namespace}`;
const apiVersionOf = (t: ResourceType) => (t.group === "" ? t.version : `${t.group}/${t.version}`);
const qualified = (t: ResourceType) => (t.group === "" ? t.plural : `${t.plural}.${t.group}`);

function kindOf(t: ResourceType): string {
  if (t.kind) return t.kind;
  const singular = t.plural.endsWith("ies")
    ? `${t.plural.slice(0, -3)}y`
    : t.plural.endsWith("s")
      ? t.plural.slice(0, -1)
      : t.plural;
  return singular.charAt(0).toUpperCase() + singular.slice(1);
}

/** A Kubernetes `Status` object, as the API server sends for failures. */
export function statusObject(
  code: number,
  reason: string,
  message: string,
  details?: Record<string, unknown>,
): KubeObject {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: code < 400 ? "Success" : "Failure",
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

const REASONS: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  409: "Conflict",
  410: "Expired",
  415: "UnsupportedMediaType",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return clone(patch);
  const out: Record<string, unknown> =
    target !== null && typeof target === "object" && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

/** RFC 6902 JSON patch: add, remove, replace, test, copy, move. */
export function jsonPatch(target: unknown, operations: unknown): unknown {
  if (!Array.isArray(operations)) throw new HttpError(400, "BadRequest", "json patch must be an array");
  let doc = clone(target);
  const split = (pointer: string) =>
    pointer === ""
      ? []
      : pointer
          .slice(1)
          .split("/")
          .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  const parentOf = (pointer: string): [Record<string, unknown> | unknown[], string] => {
    const parts = split(pointer);
    const last = parts.pop();
    if (last === undefined) throw new HttpError(422, "Invalid", `cannot address the root in ${pointer}`);
    let node: unknown = doc;
    for (const part of parts) {
      node = (node as Record<string, unknown>)?.[part];
      if (node === undefined || node === null || typeof node !== "object")
        throw new HttpError(422, "Invalid", `path ${pointer} does not exist`);
    }
    return [node as Record<string, unknown>, last];
  };
  const read = (pointer: string): unknown => {
    let node: unknown = doc;
    for (const part of split(pointer)) node = (node as Record<string, unknown> | undefined)?.[part];
    return node;
  };
  const remove = (pointer: string) => {
    const [parent, key] = parentOf(pointer);
    if (Array.isArray(parent)) parent.splice(Number(key), 1);
    else if (key in parent) delete parent[key];
    else throw new HttpError(422, "Invalid", `path ${pointer} does not exist`);
  };
  const add = (pointer: string, value: unknown) => {
    if (pointer === "") {
      doc = clone(value);
      return;
    }
    const [parent, key] = parentOf(pointer);
    if (Array.isArray(parent)) {
      if (key === "-") parent.push(clone(value));
      else parent.splice(Number(key), 0, clone(value));
    } else parent[key] = clone(value);
  };
  for (const op of operations as { op: string; path: string; value?: unknown; from?: string }[]) {
    switch (op.op) {
      case "add":
        add(op.path, op.value);
        break;
      case "remove":
        remove(op.path);
        break;
      case "replace":
        if (read(op.path) === undefined)
          throw new HttpError(422, "Invalid", `path ${op.path} does not exist`);
        add(op.path === "" ? "" : op.path, op.value);
        if (op.path !== "") {
          const [parent, key] = parentOf(op.path);
          if (Array.isArray(parent)) parent.splice(Number(key) + 1, 1);
        }
        break;
      case "test":
        if (JSON.stringify(read(op.path)) !== JSON.stringify(op.value))
          throw new HttpError(422, "Invalid", `test operation failed at ${op.path}`);
        break;
      case "copy":
        add(op.path, read(op.from ?? ""));
        break;
      case "move": {
        const value = read(op.from ?? "");
        remove(op.from ?? "");
        add(op.path, value);
        break;
      }
      default:
        throw new HttpError(422, "Invalid", `unknown json patch op ${op.op}`);
    }
  }
  return doc;
}

function matchesLabels(object: KubeObject, selector: string | undefined): boolean {
  if (!selector) return true;
  const labels = (object.metadata.labels ?? {}) as Record<string, string>;
  return selector
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .every((term) => {
      let m = /^([^!=]+)!=(.*)$/.exec(term);
      if (m) return labels[m[1]!.trim()] !== m[2]!.trim();
      m = /^([^!=]+)==?(.*)$/.exec(term);
      if (m) return labels[m[1]!.trim()] === m[2]!.trim();
      if (term.startsWith("!")) return !(term.slice(1) in labels);
      return term in labels;
    });
}

function matchesFields(object: KubeObject, selector: string | undefined): boolean {
  if (!selector) return true;
  return selector.split(",").every((term) => {
    const m = /^([^!=]+)(!=|==?)(.*)$/.exec(term.trim());
    if (!m) return true;
    const [, field, op, want] = m;
    let value: unknown = object;
    for (const part of field!.split(".")) value = (value as Record<string, unknown> | undefined)?.[part];
    const equal = String(value ?? "") === want;
    return op === "!=" ? !equal : equal;
  });
}

function parseRoute(pathname: string): Route | undefined {
  const parts = pathname.split("/").filter(Boolean).map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === "api" && parts.length >= 3) {
    group = "";
    version = parts[1]!;
    rest = parts.slice(2);
  } else if (parts[0] === "apis" && parts.length >= 4) {
    group = parts[1]!;
    version = parts[2]!;
    rest = parts.slice(3);
  } else return undefined;
  if (rest[0] === "namespaces" && rest.length >= 3) {
    const [, namespace, plural, name, subresource] = rest;
    if (rest.length > 5) return undefined;
    return { type: { group, version, plural: plural! }, namespace, name, subresource };
  }
  if (rest.length === 1)
    return {
      type: { group, version, plural: rest[0]! },
      namespace: undefined,
      name: undefined,
      subresource: undefined,
    };
  return undefined;
}

function withoutStatusAndMeta(object: KubeObject): string {
  const { metadata: _m, status: _s, ...rest } = object;
  return JSON.stringify(rest);
}

/** Start the fake API server on 127.0.0.1 with an ephemeral port. */
export async function startFakeKubeApi(): Promise<FakeKubeApi> {
  const collections = new Map<string, Collection>();
  const knownTypes = new Map<string, ResourceType>();
  const history: HistoryEvent[] = [];
  const watchers = new Set<Watcher>();
  const faults: (Fault & { remaining: number })[] = [];
  const requests: RecordedRequest[] = [];
  let rv = 1; // never "0", which a watch reads as "from the current state"
  let compactedRv = 0;
  let goneAsHttp = false;

  for (const t of [LEASES, COMPETITIONS]) knownTypes.set(typeKeyOf(t), t);

  const typeFor = (t: ResourceType): ResourceType => {
    const known = knownTypes.get(typeKeyOf(t));
    if (known) return known;
    knownTypes.set(typeKeyOf(t), t);
    return t;
  };

  const collection = (t: ResourceType, namespace: string): Collection => {
    const key = collectionKeyOf(t, namespace);
    let c = collections.get(key);
    if (!c) {
      c = { type: typeFor(t), namespace, items: new Map() };
      collections.set(key, c);
    }
    return c;
  };

  const decorate = (t: ResourceType, object: KubeObject): KubeObject => ({
    ...object,
    apiVersion: apiVersionOf(t),
    kind: object.kind ?? kindOf(t),
  });

  const emit = (c: Collection, eventType: HistoryEvent["eventType"], object: KubeObject) => {
    const event: HistoryEvent = {
      rv: Number(object.metadata.resourceVersion),
      collectionKey: collectionKeyOf(c.type, c.namespace),
      eventType,
      object: clone(object),
    };
    history.push(event);
    for (const w of watchers) {
      if (watcherMatches(w, c, event.object)) writeEvent(w, eventType, event.object);
    }
  };

  const watcherMatches = (w: Watcher, c: Collection, object: KubeObject) =>
    w.typeKey === typeKeyOf(c.type) &&
    (w.namespace === undefined || w.namespace === c.namespace) &&
    matchesLabels(object, w.labelSelector) &&
    matchesFields(object, w.fieldSelector);

  const writeEvent = (w: Watcher, type: string, object: KubeObject) => {
    if (!w.res.writableEnded) w.res.write(`${JSON.stringify({ type, object })}\n`);
  };

  const endWatch = (w: Watcher) => {
    if (w.timer) clearTimeout(w.timer);
    watchers.delete(w);
    if (!w.res.writableEnded) w.res.end();
  };

  const doCreate = (t: ResourceType, namespace: string, input: Partial<KubeObject>, keepStatus: boolean) => {
    const c = collection(t, namespace);
    const object = clone(input) as KubeObject;
    object.metadata = { ...(object.metadata ?? {}) };
    if (!object.metadata.name && object.metadata.generateName) {
      object.metadata.name = `${object.metadata.generateName}${randomUUID().slice(0, 5)}`;
    }
    const name = object.metadata.name as string | undefined;
    if (!name)
      throw new HttpError(422, "Invalid", "metadata.name: Required value: name or generateName is required");
    if (c.items.has(name)) {
      throw new HttpError(409, "AlreadyExists", `${qualified(c.type)} "${name}" already exists`, {
        name,
        group: c.type.group,
        kind: c.type.plural,
      });
    }
    if (!keepStatus) delete object.status;
    rv += 1;
    object.metadata = {
      ...object.metadata,
      name,
      namespace,
      uid: randomUUID(),
      resourceVersion: String(rv),
      generation: 1,
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    };
    const stored = decorate(c.type, object);
    c.items.set(name, stored);
    emit(c, "ADDED", stored);
    return clone(stored);
  };

  /** Replace an existing object; `scope` says which part a client may change. */
  const doUpdate = (
    t: ResourceType,
    namespace: string,
    name: string,
    input: KubeObject,
    scope: "main" | "status" | "all",
  ) => {
    const c = collection(t, namespace);
    const current = c.items.get(name);
    if (!current) throw notFound(c.type, name);
    const wanted = input.metadata?.resourceVersion;
    if (
      scope !== "all" &&
      wanted !== undefined &&
      wanted !== "" &&
      wanted !== current.metadata.resourceVersion
    ) {
      throw new HttpError(
        409,
        "Conflict",
        `Operation cannot be fulfilled on ${qualified(c.type)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        { name, group: c.type.group, kind: c.type.plural },
      );
    }
    if (input.metadata?.name !== undefined && input.metadata.name !== name) {
      throw new HttpError(
        400,
        "BadRequest",
        `the name of the object (${input.metadata.name}) does not match the name on the URL (${name})`,
      );
    }
    let next: KubeObject;
    if (scope === "status") {
      next = clone(current);
      if (input.status === undefined) delete next.status;
      else next.status = clone(input.status);
    } else {
      next = clone(input);
      next.metadata = { ...(input.metadata ?? {}) };
      if (scope === "main") {
        if (current.status === undefined) delete next.status;
        else next.status = clone(current.status);
      }
    }
    const keep = ["uid", "creationTimestamp", "namespace", "name", "generation"] as const;
    for (const k of keep) next.metadata[k] = current.metadata[k];
    if (withoutStatusAndMeta(next) !== withoutStatusAndMeta(current)) {
      next.metadata.generation = Number(current.metadata.generation ?? 1) + 1;
    }
    const stored = decorate(c.type, next);
    if (
      JSON.stringify({ ...stored, metadata: { ...stored.metadata, resourceVersion: "" } }) ===
      JSON.stringify({ ...current, metadata: { ...current.metadata, resourceVersion: "" } })
    ) {
      return clone(current); // no-op writes do not bump resourceVersion (as the API server does)
    }
    rv += 1;
    stored.metadata.resourceVersion = String(rv);
    c.items.set(name, stored);
    emit(c, "MODIFIED", stored);
    return clone(stored);
  };

  const doDelete = (t: ResourceType, namespace: string, name: string) => {
    const c = collection(t, namespace);
    const current = c.items.get(name);
    if (!current) throw notFound(c.type, name);
    c.items.delete(name);
    rv += 1;
    const deleted = clone(current);
    deleted.metadata.resourceVersion = String(rv);
    emit(c, "DELETED", deleted);
    return deleted;
  };

  const notFound = (t: ResourceType, name: string) =>
    new HttpError(404, "NotFound", `${qualified(t)} "${name}" not found`, {
      name,
      group: t.group,
      kind: t.plural,
    });

  const listItems = (t: ResourceType, namespace: string | undefined, query: Record<string, string>) => {
    const out: KubeObject[] = [];
    for (const c of collections.values()) {
      if (typeKeyOf(c.type) !== typeKeyOf(t)) continue;
      if (namespace !== undefined && c.namespace !== namespace) continue;
      for (const item of c.items.values()) {
        if (matchesLabels(item, query.labelSelector) && matchesFields(item, query.fieldSelector))
          out.push(clone(item));
      }
    }
    return out.sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion));
  };

  const startWatch = (
    route: Route,
    query: Record<string, string>,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    record: RecordedRequest,
  ) => {
    const t = typeFor(route.type);
    const fromRaw = query.resourceVersion;
    const from = fromRaw === undefined || fromRaw === "" || fromRaw === "0" ? undefined : Number(fromRaw);
    if (from !== undefined && (!Number.isFinite(from) || from < compactedRv)) {
      const message = `too old resource version: ${fromRaw} (${compactedRv})`;
      if (goneAsHttp) {
        record.status = 410;
        sendJson(res, 410, statusObject(410, "Expired", message));
        return;
      }
      record.status = 200;
      res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
      res.end(`${JSON.stringify({ type: "ERROR", object: statusObject(410, "Expired", message) })}\n`);
      return;
    }
    record.status = 200;
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders();
    const w: Watcher = {
      typeKey: typeKeyOf(t),
      namespace: route.namespace,
      labelSelector: query.labelSelector,
      fieldSelector: query.fieldSelector,
      res,
      timer: undefined,
    };
    watchers.add(w);
    if (from === undefined) {
      for (const item of listItems(t, route.namespace, query)) writeEvent(w, "ADDED", item);
    } else {
      for (const e of history) {
        if (e.rv <= from) continue;
        const [typeKey, ns] = e.collectionKey.split("|");
        if (typeKey !== w.typeKey || (w.namespace !== undefined && ns !== w.namespace)) continue;
        if (matchesLabels(e.object, w.labelSelector) && matchesFields(e.object, w.fieldSelector))
          writeEvent(w, e.eventType, e.object);
      }
    }
    const timeout = Number(query.timeoutSeconds);
    if (Number.isFinite(timeout) && timeout > 0) w.timer = setTimeout(() => endWatch(w), timeout * 1000);
    const drop = () => {
      if (w.timer) clearTimeout(w.timer);
      watchers.delete(w);
    };
    req.on("close", drop);
    res.on("close", drop);
  };

  const sendJson = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  };

  const readBody = async (req: http.IncomingMessage): Promise<unknown> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    if (text.trim() === "") return undefined;
    try {
      return JSON.parse(text);
    } catch {
      try {
        return YAML.parse(text);
      } catch {
        throw new HttpError(400, "BadRequest", "request body is not JSON");
      }
    }
  };

  const takeFault = (method: string, fullPath: string, isWatch: boolean) => {
    const index = faults.findIndex(
      (f) =>
        (f.method === undefined || f.method.toUpperCase() === method) &&
        (f.watch === undefined || f.watch === isWatch) &&
        (f.path === undefined ||
          (typeof f.path === "string" ? fullPath.includes(f.path) : f.path.test(fullPath))),
    );
    if (index < 0) return undefined;
    const fault = faults[index]!;
    fault.remaining -= 1;
    if (fault.remaining <= 0) faults.splice(index, 1);
    return fault;
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const method = (req.method ?? "GET").toUpperCase();
    const query = Object.fromEntries(url.searchParams.entries());
    const isWatch = query.watch === "true" || query.watch === "1";
    const record: RecordedRequest = {
      method,
      path: url.pathname,
      query,
      contentType: req.headers["content-type"],
      authorization: req.headers.authorization,
      body: undefined,
      status: 0,
    };
    requests.push(record);
    try {
      record.body = await readBody(req);
      const fault = takeFault(method, `${url.pathname}${url.search}`, isWatch);
      if (fault) {
        if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
        record.status = fault.status;
        if (fault.status === 0) {
          req.socket.destroy();
          return;
        }
        const reason = fault.reason ?? REASONS[fault.status] ?? "Unknown";
        sendJson(
          res,
          fault.status,
          statusObject(fault.status, reason, fault.message ?? `injected fault: ${reason}`),
        );
        return;
      }
      if (url.pathname === "/version") {
        record.status = 200;
        sendJson(res, 200, { major: "1", minor: "32", gitVersion: "v1.32.0-fake", platform: "linux/amd64" });
        return;
      }
      const route = parseRoute(url.pathname);
      if (!route)
        throw new HttpError(
          404,
          "NotFound",
          `the server could not find the requested resource (${url.pathname})`,
        );
      const t = typeFor(route.type);
      const body = record.body as KubeObject | undefined;
      let status = 200;
      let result: unknown;
      if (route.name === undefined) {
        if (method === "GET" && isWatch) {
          startWatch(route, query, req, res, record);
          return;
        }
        if (method === "GET") {
          result = {
            apiVersion: apiVersionOf(t),
            kind: `${kindOf(t)}List`,
            metadata: { resourceVersion: String(rv) },
            items: listItems(t, route.namespace, query),
          };
        } else if (method === "POST" && route.namespace !== undefined) {
          if (!body || typeof body !== "object") throw new HttpError(400, "BadRequest", "missing body");
          if (body.metadata?.namespace && body.metadata.namespace !== route.namespace)
            throw new HttpError(
              400,
              "BadRequest",
              "the namespace of the object does not match the namespace on the URL",
            );
          result = doCreate(t, route.namespace, body, false);
          status = 201;
        } else throw new HttpError(405, "MethodNotAllowed", `${method} is not allowed on a collection`);
      } else {
        if (route.namespace === undefined) throw new HttpError(404, "NotFound", "not found");
        if (route.subresource !== undefined && route.subresource !== "status")
          throw new HttpError(404, "NotFound", `subresource ${route.subresource} not found`);
        const scope = route.subresource === "status" ? "status" : "main";
        const current = collection(t, route.namespace).items.get(route.name);
        if (method === "GET") {
          if (!current) throw notFound(t, route.name);
          result = clone(current);
        } else if (method === "PUT") {
          if (!body || typeof body !== "object") throw new HttpError(400, "BadRequest", "missing body");
          result = doUpdate(t, route.namespace, route.name, body, scope);
        } else if (method === "PATCH") {
          if (!current) throw notFound(t, route.name);
          const type = (record.contentType ?? "").split(";")[0]!.trim();
          let patched: KubeObject;
          if (type === "application/merge-patch+json" || type === "application/strategic-merge-patch+json") {
            patched = mergePatch(current, body) as KubeObject;
            const precondition = (body as KubeObject | undefined)?.metadata?.resourceVersion;
            patched.metadata = {
              ...patched.metadata,
              resourceVersion: precondition ?? current.metadata.resourceVersion,
            };
          } else if (type === "application/json-patch+json") {
            patched = jsonPatch(current, body) as KubeObject;
          } else {
            throw new HttpError(
              415,
              "UnsupportedMediaType",
              `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got ${type || "none"})`,
            );
          }
          result = doUpdate(t, route.namespace, route.name, patched, scope);
        } else if (method === "DELETE") {
          if (scope === "status")
            throw new HttpError(405, "MethodNotAllowed", "DELETE is not allowed on status");
          result = doDelete(t, route.namespace, route.name);
        } else throw new HttpError(405, "MethodNotAllowed", `${method} is not allowed`);
      }
      record.status = status;
      sendJson(res, status, result);
    } catch (error) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const e =
        error instanceof HttpError
          ? error
          : new HttpError(500, "InternalError", String((error as Error)?.message ?? error));
      record.status = e.code;
      sendJson(res, e.code, statusObject(e.code, e.reason, e.message, e.details));
    }
  };

  const server = http.createServer((req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const url = `http://127.0.0.1:${port}`;

  const kubeconfigYaml = (options: { namespace?: string } = {}) =>
    YAML.stringify({
      apiVersion: "v1",
      kind: "Config",
      // client-node refuses plain http unless TLS verification is (nominally) skipped.
      clusters: [{ name: "fake", cluster: { server: url, "insecure-skip-tls-verify": true } }],
      users: [{ name: "fake", user: { token: "fake-token" } }],
      contexts: [
        {
          name: "fake",
          context: { cluster: "fake", user: "fake", namespace: options.namespace ?? "default" },
        },
      ],
      "current-context": "fake",
    });

  return {
    url,
    port,
    requests,
    get resourceVersion() {
      return rv;
    },
    get openWatches() {
      return watchers.size;
    },
    kubeconfigYaml,
    async writeKubeconfig(file, options) {
      const target = file ?? path.join(await mkdtemp(path.join(tmpdir(), "fake-kube-")), "kubeconfig");
      await writeFile(target, kubeconfigYaml(options), "utf8");
      return target;
    },
    get(t, namespace, name) {
      const item = collections.get(collectionKeyOf(t, namespace))?.items.get(name);
      return item ? clone(item) : undefined;
    },
    list(t, namespace) {
      return listItems(t, namespace, {});
    },
    create(t, namespace, object) {
      return doCreate(t, namespace, object, true);
    },
    upsert(t, namespace, object) {
      const name = object.metadata?.name as string;
      if (!collection(t, namespace).items.has(name)) return doCreate(t, namespace, object, true);
      return doUpdate(t, namespace, name, object as KubeObject, "all");
    },
    mutate(t, namespace, name, change) {
      const current = collection(t, namespace).items.get(name);
      if (!current) throw new Error(`${qualified(t)} ${namespace}/${name} not found`);
      const next = clone(current);
      change(next);
      return doUpdate(t, namespace, name, next, "all");
    },
    remove(t, namespace, name) {
      if (!collection(t, namespace).items.has(name)) return false;
      doDelete(t, namespace, name);
      return true;
    },
    failNext(fault) {
      faults.push({ ...fault, remaining: fault.times ?? 1 });
    },
    clearFaults() {
      faults.length = 0;
    },
    expireWatches(options = {}) {
      goneAsHttp = options.goneAs === "http";
      history.length = 0;
      // Every version handed out so far becomes too old: a client must relist, and the
      // list's version (the new counter) is the oldest one a watch may start from.
      rv += 1;
      compactedRv = rv;
      for (const w of [...watchers]) {
        if (!goneAsHttp) {
          writeEvent(
            w,
            "ERROR",
            statusObject(410, "Expired", "The resourceVersion for the provided watch is too old."),
          );
        }
        endWatch(w);
      }
    },
    sendBookmarks() {
      for (const w of watchers) {
        const t = knownTypes.get(w.typeKey)!;
        writeEvent(w, "BOOKMARK", {
          kind: kindOf(t),
          apiVersion: apiVersionOf(t),
          metadata: { resourceVersion: String(rv) },
        });
      }
    },
    closeWatches() {
      for (const w of [...watchers]) endWatch(w);
    },
    async waitFor(condition, timeoutMs = 5000, label = "condition") {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const value = condition();
        if (value) return value as never;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      for (const w of [...watchers]) endWatch(w);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
