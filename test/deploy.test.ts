/**
 * Dockerfile.scheduler, .dockerignore and railway.scheduler.json. No container engine runs
 * here (`docker` is only a client without a daemon), so the image is not built: these tests
 * check the files' essentials, and that what the Dockerfile copies exists and is not ignored.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";

const ROOT = path.resolve(import.meta.dirname, "..");
const read = (file: string) => readFileSync(path.join(ROOT, file), "utf8");

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

/** Dockerfile → instructions (continuation lines joined, comments dropped), with stage index. */
function parseDockerfile(text: string): { instructions: Instruction[]; args: Record<string, string> } {
  const logical: string[] = [];
  let current = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (current === "" && (line === "" || line.startsWith("#"))) continue;
    if (line.startsWith("#")) continue;
    if (line.endsWith("\\")) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(current + line);
    current = "";
  }
  const instructions: Instruction[] = [];
  const args: Record<string, string> = {};
  let stage = -1;
  for (const line of logical) {
    const [op = "", ...rest] = line.split(/\s+/);
    const upper = op.toUpperCase();
    if (upper === "FROM") stage += 1;
    if (upper === "ARG" && stage === -1) {
      const [name, value] = rest.join(" ").split("=");
      if (name && value) args[name] = value;
    }
    instructions.push({ op: upper, args: rest.join(" "), stage });
  }
  return { instructions, args };
}

describe("Dockerfile.scheduler", () => {
  const { instructions, args } = parseDockerfile(read("Dockerfile.scheduler"));
  const froms = instructions.filter((i) => i.op === "FROM");
  const lastStage = froms.length - 1;
  const runtime = instructions.filter((i) => i.stage === lastStage);
  const resolve = (s: string) => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => args[a ?? b] ?? "");

  test("multi-stage on a Node 24 LTS base", () => {
    assert.ok(froms.length >= 2, "at least a build and a runtime stage");
    for (const from of froms) {
      const image = resolve(from.args.split(/\s+/)[0]!);
      assert.match(image, /^node:24(\.|-|$)/, `base image ${image} is Node 24`);
    }
    assert.match(froms[0]!.args, /\bAS\s+build\b/i);
  });

  test("the build stage installs dev dependencies and builds", () => {
    const build = instructions.filter((i) => i.stage === 0 && i.op === "RUN").map((i) => i.args);
    assert.ok(
      build.some((r) => /npm ci\b/.test(r) && !/--omit=dev/.test(r)),
      "npm ci with dev dependencies",
    );
    assert.ok(
      build.some((r) => /npm run build/.test(r)),
      "npm run build",
    );
  });

  test("the runtime stage has production dependencies only and the built code", () => {
    const runs = runtime.filter((i) => i.op === "RUN").map((i) => i.args);
    assert.ok(
      runs.some((r) => /npm ci\b.*--omit=dev/.test(r) && /--ignore-scripts/.test(r)),
      "npm ci --omit=dev --ignore-scripts",
    );
    assert.ok(
      runtime.some((i) => i.op === "COPY" && /--from=build\s+\S*dist\s/.test(`${i.args} `)),
      "dist copied from the build stage",
    );
    const env = runtime
      .filter((i) => i.op === "ENV")
      .map((i) => i.args)
      .join(" ");
    assert.match(env, /NODE_ENV=production/);
  });

  test("runs as a non-root user, exposes 8001, starts node directly", () => {
    const users = runtime.filter((i) => i.op === "USER");
    assert.ok(users.length > 0, "a USER instruction");
    const user = users.at(-1)!.args.split(":")[0]!;
    assert.notEqual(user, "root");
    assert.notEqual(user, "0");
    assert.deepEqual(
      runtime.filter((i) => i.op === "EXPOSE").map((i) => i.args),
      ["8001"],
    );
    const cmd = runtime.filter((i) => i.op === "CMD").at(-1);
    assert.ok(cmd, "a CMD");
    assert.deepEqual(
      JSON.parse(cmd.args),
      ["node", "dist/main.js"],
      "exec form, no npm (SIGTERM reaches node)",
    );
    assert.ok(!runtime.some((i) => i.op === "ENTRYPOINT"), "no ENTRYPOINT wrapper");
  });

  test("dist/main.js is what the build produces and package.json starts", () => {
    const pkg = JSON.parse(read("package.json"));
    assert.equal(pkg.scripts.start, "node dist/main.js");
    const tsconfig = JSON.parse(read("tsconfig.json"));
    assert.equal(tsconfig.compilerOptions.outDir, "dist");
    assert.equal(
      tsconfig.compilerOptions.rootDir,
      "controller",
      "controller/main.ts compiles to dist/main.js",
    );
  });

  test("every COPY source from the context exists and is not excluded by .dockerignore", () => {
    const ignore = read(".dockerignore")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    const ignored = (file: string) =>
      ignore.some((pattern) => {
        const re = new RegExp(`^${pattern.replace(/\./g, "\\.").replace(/\*/g, "[^/]*")}(/|$)`);
        return !pattern.startsWith("!") && re.test(file);
      });
    const sources = instructions
      .filter((i) => i.op === "COPY" && !/--from=/.test(i.args))
      .flatMap((i) =>
        i.args
          .split(/\s+/)
          .filter((a) => !a.startsWith("--"))
          .slice(0, -1),
      );
    assert.ok(sources.length >= 3, "package files, tsconfig and sources are copied");
    for (const source of sources) {
      assert.ok(existsSync(path.join(ROOT, source)), `${source} exists`);
      assert.ok(!ignored(source), `${source} is not in .dockerignore`);
    }
    for (const excluded of ["node_modules", ".git", "dist", ".data", "test"]) {
      assert.ok(ignored(excluded), `${excluded} is in .dockerignore`);
    }
  });
});

describe("railway.scheduler.json", () => {
  const config = JSON.parse(read("railway.scheduler.json"));

  test("Railway config as code: Dockerfile builder, /health check, bounded restarts, one replica", () => {
    assert.equal(config.$schema, "https://railway.com/railway.schema.json");
    assert.equal(config.build.builder, "DOCKERFILE");
    assert.equal(config.build.dockerfilePath, "Dockerfile.scheduler");
    assert.ok(existsSync(path.join(ROOT, config.build.dockerfilePath)), "the Dockerfile exists");
    assert.equal(config.deploy.healthcheckPath, "/health");
    assert.ok(
      Number.isInteger(config.deploy.healthcheckTimeout) && config.deploy.healthcheckTimeout > 0,
      "a health check timeout",
    );
    assert.equal(config.deploy.restartPolicyType, "ON_FAILURE");
    assert.ok(
      Number.isInteger(config.deploy.restartPolicyMaxRetries) && config.deploy.restartPolicyMaxRetries > 0,
      "a bounded retry count",
    );
    assert.equal(config.deploy.numReplicas, 1);
  });

  test("only keys Railway's schema knows", () => {
    const build = ["builder", "dockerfilePath", "watchPatterns", "buildCommand", "nixpacksConfigPath"];
    const deploy = [
      "numReplicas",
      "healthcheckPath",
      "healthcheckTimeout",
      "restartPolicyType",
      "restartPolicyMaxRetries",
      "overlapSeconds",
      "drainingSeconds",
      "startCommand",
      "sleepApplication",
      "cronSchedule",
    ];
    assert.deepEqual(
      Object.keys(config).filter((k) => !["$schema", "build", "deploy"].includes(k)),
      [],
    );
    assert.deepEqual(
      Object.keys(config.build).filter((k) => !build.includes(k)),
      [],
    );
    assert.deepEqual(
      Object.keys(config.deploy).filter((k) => !deploy.includes(k)),
      [],
    );
    assert.equal(config.deploy.startCommand, undefined, "the Dockerfile's CMD starts node directly");
  });
});
