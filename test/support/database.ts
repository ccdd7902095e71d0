/**
 * Each test file gets its own database on the real PostgreSQL at 127.0.0.1:5432
 * (user postgres, trust auth), created fresh and dropped at the end.
 */
import postgres from "postgres";
import { connect, migrate, type Sql } from "../../controller/database.js";

export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export interface TestDatabase {
  name: string;
  url: string;
  sql: Sql;
  drop(): Promise<void>;
}

/** A fresh, empty database named after the test file (plus a random suffix). */
export async function createTestDatabase(
  label: string,
  options: { migrate?: boolean } = {},
): Promise<TestDatabase> {
  const name = `sched_${label.replace(/[^a-z0-9]+/gi, "_").toLowerCase()}_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = ADMIN_URL.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
  const sql = connect({ url, max: 4 });
  if (options.migrate) await migrate(sql);
  return {
    name,
    url,
    sql,
    async drop() {
      await sql.end({ timeout: 5 });
      const admin2 = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
      try {
        await admin2.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await admin2.end();
      }
    },
  };
}
