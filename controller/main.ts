#!/usr/bin/env node
/**
 * Entry point: configuration, logger, process signals. Everything else is wired in
 * scheduler.ts. A user's mistake (bad configuration, a DATA_DIR in use) ends the process
 * with one line on stderr and a non-zero exit, never a stack trace.
 */
import { type Config, loadConfig, redactedConfig } from "./config.js";
import { SchedulerError } from "./errors.js";
import { createLogger } from "./logger.js";
import { VERSION } from "./version.js";

const SHUTDOWN_BOUND_MS = 10_000;

const USAGE = `backend-scheduler ${VERSION}
Keeps a football-prediction backend's PostgreSQL in step with API-Football.

Usage: backend-scheduler [--check-config] [--version] [--help]
  --check-config  validate the configuration, print it (secrets redacted) and exit
Configuration comes from environment variables (and SCHEDULER_CONFIG); see README.md.`;

async function main(argv: string[]): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (argv.includes("--version")) {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  const unknown = argv.filter((a) => !["--check-config"].includes(a));
  if (unknown.length > 0) fail(`unknown argument ${unknown[0]} (see --help)`, 2);

  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof SchedulerError) fail(`configuration error: ${error.message}`, 2);
    throw error;
  }
  if (argv.includes("--check-config")) {
    process.stdout.write(`${JSON.stringify(redactedConfig(config), null, 2)}\n`);
    return;
  }

  const logger = createLogger({
    level: config.log.level,
    pretty: config.log.pretty,
    secrets: [config.api.key, config.adminToken, passwordOf(config.databaseUrl)],
  });
  // Loaded only now, so --check-config and a configuration error need nothing but config.ts
  // (fast, and independent of the rest of the program).
  const { SchedulerProcess } = await import("./scheduler.js");
  const scheduler = new SchedulerProcess(config, logger);
  // A leader stuck past the watchdog bound (e.g. a database connection black-holed with no
  // error) is restarted by its supervisor rather than left hanging.
  scheduler.onStuck = (reason) => {
    logger.fatal({ reason }, "scheduler stuck: restarting");
    if (signalled) return;
    signalled = true;
    setTimeout(() => process.exit(1), 5000).unref();
    scheduler
      .stop("stuck")
      .catch(() => {})
      .finally(() => process.exit(1));
  };

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    // Exit within the bound whatever happens; a clean stop exits 0.
    setTimeout(() => {
      logger.error("shutdown took too long; exiting");
      process.exit(1);
    }, SHUTDOWN_BOUND_MS).unref();
    scheduler
      .stop(signal)
      .then(() => {
        logger.flush?.();
        setImmediate(() => process.exit(0));
      })
      .catch((error) => {
        logger.error({ err: (error as Error).message }, "shutdown failed");
        process.exit(1);
      });
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  // An exception nobody caught leaves the process in an unknown state: say so in one log
  // line, release the lease if possible (a standby takes over), and exit non-zero so the
  // supervisor (Kubernetes, Railway's ON_FAILURE policy) restarts it. Never a silent hang.
  process.on("uncaughtException", (error) => {
    logger.fatal({ err: error.message, stack: error.stack }, "uncaught exception: restarting");
    setTimeout(() => process.exit(1), 3000).unref();
    if (!signalled) {
      signalled = true;
      scheduler
        .stop("uncaught exception")
        .catch(() => {})
        .finally(() => process.exit(1));
    }
  });
  // Nothing must crash the loop silently: log what escaped and keep serving.
  process.on("unhandledRejection", (reason) => {
    logger.error({ err: reason instanceof Error ? reason.message : String(reason) }, "unhandled rejection");
  });

  try {
    await scheduler.start();
  } catch (error) {
    const message =
      error instanceof SchedulerError ? `${error.code}: ${error.message}` : (error as Error).message;
    logger.fatal({ err: message }, "start-up failed");
    await scheduler.stop("start-up failed").catch(() => {});
    logger.flush?.();
    fail(message, 1);
  }
}

function passwordOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    return undefined;
  }
}

function fail(message: string, code: number): never {
  process.stderr.write(`backend-scheduler: ${message}\n`);
  process.exit(code);
}

await main(process.argv.slice(2));
