/**
 * The database driver survives a connection that dies inside a transaction. Unpatched,
 * postgres.js 3.4.x writes begin()'s ROLLBACK to the closed socket from a setImmediate and
 * the TypeError ends the whole process (porsager/postgres#1208); scripts/patch-postgres.mjs
 * (postinstall) guards it. If the guard is missing, this file's process crashes and the
 * runner reports it as failed.
 *
 * The patch also handles the losing branch of begin()'s race against the close, which
 * otherwise rejected with nobody listening.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import postgres from "postgres";
import { connect, type Sql } from "../controller/database.js";
import { createTestDatabase, type TestDatabase } from "./support/database.js";

let db: TestDatabase;
let killer: Sql;

before(async () => {
  db = await createTestDatabase("driver");
  killer = postgres(db.url, { max: 1, onnotice: () => {} });
});
after(async () => {
  await killer.end();
  await db.drop();
});

test("a backend terminated mid-transaction rejects the transaction; the pool and the process go on", async () => {
  const sql = connect({ url: db.url, max: 2 });
  try {
    let pid: number | null = null;
    const tx = sql.begin(async (t) => {
      const [row] = await t<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
      pid = row!.pid;
      await t`SELECT pg_sleep(5)`;
    });
    while (pid === null) await new Promise((r) => setTimeout(r, 10));
    await killer`SELECT pg_terminate_backend(${pid})`;
    await assert.rejects(tx, (error: { code?: string }) => {
      assert.ok(
        ["CONNECTION_CLOSED", "57P01", "CONNECTION_ENDED", "CONNECTION_DESTROYED"].includes(
          String(error.code),
        ),
        `unexpected error code ${error.code}`,
      );
      return true;
    });
    // Let the driver's scheduled writes run: unguarded, this is where the process dies.
    await new Promise((r) => setTimeout(r, 50));
    const [ok] = await sql<{ one: number }[]>`SELECT 1 AS one`;
    assert.equal(ok?.one, 1, "the pool reconnects and answers");
  } finally {
    await sql.end({ timeout: 2 });
  }
});
