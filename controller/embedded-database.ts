/**
 * The embedded default: PGlite (PostgreSQL compiled to WASM) kept under DATA_DIR and
 * served on a loopback port by pglite-socket, so the scheduler talks to it through the
 * same `postgres` driver as to a real server. PGlite is single-connection: the pool
 * must use one connection at a time.
 *
 * A lock file keeps a second process off the same DATA_DIR; a lock left by a process
 * that died is taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { SchedulerError } from "./errors.js";

export interface EmbeddedDatabase {
  url: string;
  close(): Promise<void>;
}

const LOCK_FILE = "scheduler.lock";

export async function startEmbeddedDatabase(dataDir: string): Promise<EmbeddedDatabase> {
  mkdirSync(dataDir, { recursive: true });
  const releaseLock = takeDataDirLock(dataDir);
  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  try {
    db = await PGlite.create({ dataDir: path.join(dataDir, "pgdata") });
    server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 1 });
    await server.start();
    const address = server.getServerConn();
    const port = Number(String(address).split(":").pop());
    if (!Number.isInteger(port) || port <= 0) throw new Error(`pglite-socket gave no port (${address})`);
    const started = { db, server };
    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      async close() {
        await started.server.stop().catch(() => {});
        await started.db.close().catch(() => {});
        releaseLock();
      },
    };
  } catch (error) {
    await server?.stop().catch(() => {});
    await db?.close().catch(() => {});
    releaseLock();
    throw new SchedulerError(
      "DB_UNAVAILABLE",
      `embedded database under ${dataDir} did not start: ${(error as Error).message}`,
      {
        cause: error,
        retryable: false,
      },
    );
  }
}

/** Create DATA_DIR/scheduler.lock holding our pid; refuse if a live process holds it. */
function takeDataDirLock(dataDir: string): () => void {
  const file = path.join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, "wx");
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        try {
          unlinkSync(file);
        } catch {
          // already gone
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = Number.parseInt(readFileSafe(file), 10);
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
        throw new SchedulerError(
          "DATA_DIR_LOCKED",
          `DATA_DIR ${dataDir} is in use by another scheduler process (pid ${holder}); stop it or use another DATA_DIR`,
        );
      }
      // Stale lock from a process that is gone: remove it and try once more.
      try {
        unlinkSync(file);
      } catch {
        // raced with another starter; the next attempt decides
      }
    }
  }
  throw new SchedulerError("DATA_DIR_LOCKED", `DATA_DIR ${dataDir}: could not take ${LOCK_FILE}`);
}

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
