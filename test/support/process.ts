/**
 * Run the scheduler as a real child process, the way an operator does: from source
 * (`node --import tsx controller/main.ts`) or built (`node dist/main.js`). Collects
 * stdout/stderr, waits for a log line or an HTTP answer, sends signals, awaits the exit.
 *
 * The child's environment starts from `minimalEnv()` (PATH, HOME, TMPDIR, locale), never
 * from process.env, so a developer's own DATABASE_URL or FOOTBALL_API_KEY cannot leak in.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

/** The few variables a process needs to run at all; nothing of the scheduler's own. */
export function minimalEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of ["PATH", "HOME", "TMPDIR", "LANG", "TZ", "SYSTEMROOT"]) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

/** A port nobody listens on right now: bind port 0 on loopback, read it, let it go. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A fresh temporary directory and a function that removes it. */
export function tempDir(label: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `scheduler-${label}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `npm run build` in the repository, once per test process (later calls share the promise). */
let building: Promise<void> | undefined;
export function buildOnce(timeoutMs = 180_000): Promise<void> {
  building ??= new Promise<void>((resolve, reject) => {
    execFile(
      "npm",
      ["run", "build", "--silent"],
      { cwd: REPO_ROOT, timeout: timeoutMs, env: process.env, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`npm run build failed: ${error.message}\n${stdout}\n${stderr}`));
        else resolve();
      },
    );
  });
  return building;
}

export interface StartOptions {
  /** Arguments after the program, e.g. ["--check-config"]. */
  args?: string[];
  /** The child's whole environment (see minimalEnv; default: minimalEnv()). */
  env?: Record<string, string>;
  /** Working directory (default: the repository; a relative DATA_DIR resolves against it). */
  cwd?: string;
  /** Run dist/main.js (after buildOnce) instead of the TypeScript source. */
  built?: boolean;
  /** Another Node entry point instead of the scheduler (relative to the repository). */
  script?: string;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Milliseconds from spawn to exit. */
  durationMs: number;
}

export interface HttpAnswer {
  status: number;
  text: string;
  json: unknown;
}

export class ChildScheduler {
  readonly child: ChildProcess;
  readonly startedAt = Date.now();
  stdout = "";
  stderr = "";
  /** Resolves once, when the process has exited and its output streams are closed. */
  readonly exited: Promise<Exit>;
  private exitInfo: Exit | undefined;
  private readonly listeners = new Set<() => void>();
  /** Base URL of the HTTP server, when the caller chose the port (see `http`). */
  baseUrl: string | undefined;

  constructor(options: StartOptions = {}) {
    const script = options.script ?? (options.built ? "dist/main.js" : "controller/main.ts");
    const nodeArgs = options.built || script.endsWith(".js") ? [] : ["--import", TSX_LOADER];
    this.child = spawn(
      process.execPath,
      [...nodeArgs, path.resolve(REPO_ROOT, script), ...(options.args ?? [])],
      {
        cwd: options.cwd ?? REPO_ROOT,
        env: options.env ?? minimalEnv(),
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    this.child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      this.stdout += chunk;
      this.notify();
    });
    this.child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr += chunk;
      this.notify();
    });
    this.exited = new Promise<Exit>((resolve) => {
      // "close" comes after "exit" and after both streams ended, so the output is complete.
      this.child.on("close", (code, signal) => {
        this.exitInfo = {
          code,
          signal,
          stdout: this.stdout,
          stderr: this.stderr,
          durationMs: Date.now() - this.startedAt,
        };
        this.notify();
        resolve(this.exitInfo);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get hasExited(): boolean {
    return this.exitInfo !== undefined;
  }

  /** stdout lines that parse as JSON (pino's log records). */
  logs(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of this.stdout.split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a partial line still being written
      }
    }
    return out;
  }

  /** Wait until stdout or stderr matches (a regexp or a predicate over both); fails on exit or timeout. */
  async waitForOutput(
    match: RegExp | ((stdout: string, stderr: string) => boolean),
    timeoutMs = 20_000,
  ): Promise<void> {
    const test =
      typeof match === "function" ? match : (o: string, e: string) => match.test(o) || match.test(e);
    await this.waitUntil(() => test(this.stdout, this.stderr), `output ${String(match)}`, timeoutMs);
  }

  /** Wait for a pino record whose msg matches. */
  async waitForLog(msg: string | RegExp, timeoutMs = 20_000): Promise<Record<string, unknown>> {
    const matches = (r: Record<string, unknown>) =>
      typeof msg === "string" ? r.msg === msg : msg.test(String(r.msg ?? ""));
    await this.waitUntil(() => this.logs().some(matches), `log ${String(msg)}`, timeoutMs);
    return this.logs().find(matches)!;
  }

  /** GET a path of the child's HTTP server (needs baseUrl: the caller chose PORT). */
  async get(urlPath: string, timeoutMs = 3000): Promise<HttpAnswer> {
    if (!this.baseUrl) throw new Error("ChildScheduler.get: set baseUrl (start it with a known PORT)");
    const response = await fetch(`${this.baseUrl}${urlPath}`, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, text, json };
  }

  /** Poll a path until the answer satisfies `accept` (default: status 200); returns that answer. */
  async waitForHttp(
    urlPath: string,
    accept: (answer: HttpAnswer) => boolean = (a) => a.status === 200,
    timeoutMs = 20_000,
  ): Promise<HttpAnswer> {
    const deadline = Date.now() + timeoutMs;
    let last: HttpAnswer | string = "no answer yet";
    for (;;) {
      if (this.exitInfo) throw new Error(`process exited while waiting for ${urlPath}: ${this.describe()}`);
      try {
        const answer = await this.get(urlPath, Math.max(500, Math.min(3000, deadline - Date.now())));
        if (accept(answer)) return answer;
        last = answer;
      } catch (error) {
        last = (error as Error).message;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${urlPath}; last: ${typeof last === "string" ? last : `${last.status} ${last.text}`}\n${this.describe()}`,
        );
      }
      await sleep(100);
    }
  }

  /** Send a signal; returns the exit, bounded by timeoutMs (the child is killed if it overruns). */
  async signalAndWait(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 15_000): Promise<Exit> {
    if (!this.exitInfo) this.child.kill(signal);
    return await this.waitForExit(timeoutMs);
  }

  /** Await the exit; kills the child with SIGKILL and throws when it takes longer than timeoutMs. */
  async waitForExit(timeoutMs = 15_000): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const result = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (result === "timeout") {
      this.kill();
      await this.exited;
      throw new Error(`process did not exit within ${timeoutMs} ms\n${this.describe()}`);
    }
    return result;
  }

  /** Cleanup for `after`/`finally`: SIGKILL if still running, then await the exit. */
  async kill(): Promise<void> {
    if (!this.exitInfo) this.child.kill("SIGKILL");
    await this.exited;
  }

  /** The tail of both streams, for assertion messages. */
  describe(): string {
    const tail = (s: string) => s.split("\n").slice(-25).join("\n");
    const exit = this.exitInfo ? `exit code ${this.exitInfo.code} signal ${this.exitInfo.signal}` : "running";
    return `[${exit}]\n--- stdout (tail) ---\n${tail(this.stdout)}\n--- stderr (tail) ---\n${tail(this.stderr)}`;
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  private waitUntil(condition: () => boolean, label: string, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (condition()) return finish();
        if (this.exitInfo)
          return finish(new Error(`process exited while waiting for ${label}\n${this.describe()}`));
      };
      const timer = setTimeout(
        () => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${label}\n${this.describe()}`)),
        timeoutMs,
      );
      const finish = (error?: Error) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        if (error) reject(error);
        else resolve();
      };
      this.listeners.add(check);
      check();
    });
  }
}

/** Start the scheduler (or `script`) as a child process. */
export function startScheduler(options: StartOptions = {}): ChildScheduler {
  return new ChildScheduler(options);
}

/**
 * Start the scheduler on a free port (PORT chosen here; HOST as `env` says, default all) with
 * `baseUrl` set, ready for `waitForHttp`.
 */
export async function startSchedulerHttp(options: StartOptions = {}): Promise<ChildScheduler> {
  const port = await freePort();
  const env = { ...(options.env ?? minimalEnv()), PORT: String(port) };
  const child = new ChildScheduler({ ...options, env });
  child.baseUrl = `http://127.0.0.1:${port}`;
  return child;
}

/** Run to completion (e.g. --check-config) and return the exit; killed after timeoutMs. */
export async function runScheduler(options: StartOptions & { timeoutMs?: number } = {}): Promise<Exit> {
  return await new ChildScheduler(options).waitForExit(options.timeoutMs ?? 30_000);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
