#!/usr/bin/env node
/**
 * Two small fixes to postgres.js 3.4.x for a connection that dies inside a transaction.
 *
 * 1. Guard nextWrite against a closed socket (porsager/postgres#1208, #1154; fix proposed
 *    upstream in #1168/#1176, not released as of 3.4.10).
 *
 * A small write is flushed from a setImmediate; when the connection closes first (the
 * database restarts, a proxy cuts it, the backend is terminated mid-transaction and
 * begin() writes its ROLLBACK), socket is null and the TypeError escapes every caller and
 * ends the process. By then closed() has already rejected the queries concerned, so the
 * pending bytes are moot: drop them, as the upstream fix does.
 * 2. Handle the losing branch of begin()'s race (see below).
 *
 * Runs as postinstall (and explicitly in Dockerfile.scheduler, which installs with
 * --ignore-scripts). Idempotent; fails loudly if the driver's code is not what it expects.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

// The package's exports hide package.json; resolve its entry and walk up to the root.
const entry = fileURLToPath(import.meta.resolve("postgres"));
const root = entry.slice(0, entry.lastIndexOf(`${path.sep}src${path.sep}`));
const MARK = "/* backend-scheduler: patched */";
const PATCHES = [
  {
    files: ["src/connection.js", "cjs/src/connection.js"],
    original: `  function nextWrite(fn) {
    const x = socket.write(chunk, fn)`,
    patched: `  function nextWrite(fn) {
    ${MARK}
    if (socket === null) {
      nextWriteTimer !== null && clearImmediate(nextWriteTimer)
      chunk = nextWriteTimer = null
      fn && fn(new Error('connection closed'))
      return false
    }
    const x = socket.write(chunk, fn)`,
  },
  {
    // begin() races the transaction body against the connection's close; when the close
    // wins, the body's own rejection (after its ROLLBACK) had no listener and surfaced as
    // an unhandled rejection. The race's outcome is unchanged.
    files: ["src/index.js", "cjs/src/index.js"],
    original: `      return await Promise.race([
        scope(connection, fn),`,
    patched: `      ${MARK}
      const scoped = scope(connection, fn)
      scoped.catch(() => {})
      return await Promise.race([
        scoped,`,
  },
];

let patched = 0;
for (const patch of PATCHES) {
  for (const file of patch.files) {
    const full = path.join(root, file);
    const text = readFileSync(full, "utf8");
    if (text.includes(patch.patched)) continue;
    if (!text.includes(patch.original)) {
      console.error(`patch-postgres: ${full} does not hold the expected code; check the driver version`);
      process.exit(1);
    }
    writeFileSync(full, text.replace(patch.original, patch.patched));
    patched++;
  }
}
if (patched > 0) console.log(`patch-postgres: patched ${patched} file(s)`);
