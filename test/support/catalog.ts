/**
 * What the migrations are expected to create (CONTRACT.md § 3), and a snapshot of a
 * database's catalog (schemas, columns, constraints, indexes, sequences, enum types) to
 * compare before and after, on the real PostgreSQL and on the embedded PGlite alike.
 */
import type { Sql } from "../../controller/database.js";

export const MATCH_STATUSES = [
  "NOT_STARTED",
  "FIRST_HALF",
  "HALFTIME",
  "SECOND_HALF",
  "EXTRA_TIME",
  "PENALTY",
  "FINISHED",
  "FINISHED_AET",
  "FINISHED_PEN",
  "BREAK_TIME",
  "SUSPENDED",
  "INTERRUPTED",
  "POSTPONED",
  "CANCELLED",
  "ABANDONED",
  "TECHNICAL_LOSS",
  "WALKOVER",
  "LIVE",
];
export const PREDICTION_STATUSES = ["EDITABLE", "SUBMITTED", "LOCKED", "PROCESSED"];

/** The contract's host-table columns, in order: `name type [NOT NULL] [DEFAULT …]`. */
export const HOST_COLUMNS: Record<string, string[]> = {
  users: [
    "id integer NOT NULL DEFAULT nextval",
    "username character varying NOT NULL",
    "email character varying",
    "hashed_password character varying NOT NULL",
    "is_active boolean DEFAULT true",
    "created_at timestamp without time zone",
  ],
  fixtures: [
    "fixture_id integer NOT NULL",
    "date timestamp without time zone NOT NULL",
    "status matchstatus NOT NULL DEFAULT 'NOT_STARTED'::matchstatus",
    "round character varying",
    "season character varying NOT NULL",
    "home_team character varying NOT NULL",
    "away_team character varying NOT NULL",
    "home_team_logo character varying(512)",
    "away_team_logo character varying(512)",
    "home_score integer",
    "away_score integer",
    "league character varying NOT NULL",
    "competition_id integer",
    "venue character varying",
    "venue_city character varying",
    "match_timestamp timestamp without time zone",
    "last_updated timestamp without time zone",
    "league_id integer",
  ],
  user_predictions: [
    "id integer NOT NULL DEFAULT nextval",
    "user_id integer NOT NULL",
    "fixture_id integer NOT NULL",
    "week integer NOT NULL",
    "season character varying NOT NULL",
    "score1 integer NOT NULL DEFAULT 0",
    "score2 integer NOT NULL DEFAULT 0",
    "points integer NOT NULL DEFAULT 0",
    "created timestamp without time zone NOT NULL DEFAULT now()",
    "submission_time timestamp without time zone",
    "last_modified timestamp without time zone",
    "processed_at timestamp without time zone",
    "prediction_status predictionstatus NOT NULL DEFAULT 'EDITABLE'::predictionstatus",
    "bonus_type character varying(20)",
    "bonus_points integer NOT NULL DEFAULT 0",
    "is_rivalry_week boolean NOT NULL DEFAULT false",
  ],
};

/** The contract's keys and references, as pg_get_constraintdef prints them. */
export const HOST_CONSTRAINTS: Record<string, string[]> = {
  users: ["PRIMARY KEY (id)", "UNIQUE (email)", "UNIQUE (username)"],
  fixtures: ["PRIMARY KEY (fixture_id)"],
  user_predictions: [
    "FOREIGN KEY (fixture_id) REFERENCES fixtures(fixture_id)",
    "FOREIGN KEY (user_id) REFERENCES users(id)",
    "PRIMARY KEY (id)",
    "UNIQUE (user_id, fixture_id)",
  ],
};

/** The scheduler's own tables (schema `scheduler`). */
export const SCHEDULER_TABLES = [
  "api_usage",
  "competitions",
  "fixture_changes",
  "fixture_overrides",
  "fixture_sync",
  "lease",
  "migrations",
  "reconcile_runs",
];

/** Columns of one table, described as in HOST_COLUMNS (sequence names cut off after `nextval`). */
export async function describeColumns(sql: Sql, table: string, schema = "public"): Promise<string[]> {
  const rows = await sql<{ d: string }[]>`
    SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
      || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
      || coalesce(' DEFAULT ' || regexp_replace(pg_get_expr(d.adbin, d.adrelid), '^nextval.*', 'nextval'), '') AS d
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname = ${schema} AND c.relname = ${table} AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum`;
  return rows.map((r) => r.d);
}

export async function describeConstraints(sql: Sql, table: string, schema = "public"): Promise<string[]> {
  const rows = await sql<{ d: string }[]>`
    SELECT pg_get_constraintdef(k.oid) AS d
    FROM pg_constraint k
    JOIN pg_class c ON c.oid = k.conrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ${schema} AND c.relname = ${table} AND k.contype <> 'n'
    ORDER BY 1`;
  return rows.map((r) => r.d);
}

export async function enumLabels(sql: Sql, type: string): Promise<string[]> {
  const rows = await sql<{ label: string }[]>`
    SELECT e.enumlabel AS label FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
    WHERE t.typname = ${type} ORDER BY e.enumsortorder`;
  return rows.map((r) => r.label);
}

export async function tablesIn(sql: Sql, schema: string): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`
    SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ${schema} AND c.relkind IN ('r', 'p') ORDER BY 1`;
  return rows.map((r) => r.name);
}

/**
 * Everything user-visible in the catalog outside PostgreSQL's own schemas, one sorted line
 * per object: schemas, relations, columns, constraints, indexes, sequences, types and enum
 * labels. Two equal snapshots mean nothing was created, dropped or altered in between.
 */
export async function catalogSnapshot(sql: Sql): Promise<string[]> {
  const rows = await sql<{ line: string }[]>`
    WITH ns AS (
      SELECT oid, nspname FROM pg_namespace
      WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'
    )
    SELECT 'schema ' || nspname AS line FROM ns
    UNION ALL
    SELECT 'relation ' || ns.nspname || '.' || c.relname || ' kind=' || c.relkind::text
      || ' owner-cols=' || c.relnatts
    FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
    UNION ALL
    SELECT 'column ' || ns.nspname || '.' || c.relname || '.' || a.attnum || ' ' || a.attname || ' '
      || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
      || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN ns ON ns.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')
    UNION ALL
    SELECT 'constraint ' || ns.nspname || '.' || k.conname || ' ' || pg_get_constraintdef(k.oid)
    FROM pg_constraint k JOIN ns ON ns.oid = k.connamespace
    WHERE k.contype <> 'n' -- PostgreSQL 18 (PGlite) lists NOT NULL here too; columns show it
    UNION ALL
    SELECT 'index ' || ns.nspname || '.' || i.relname || ' ' || pg_get_indexdef(i.oid)
    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN ns ON ns.oid = i.relnamespace
    UNION ALL
    SELECT 'type ' || ns.nspname || '.' || t.typname || ' ' || t.typtype::text
    FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
    WHERE t.typtype IN ('e', 'd', 'c') AND NOT EXISTS (
      SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
    UNION ALL
    SELECT 'enum ' || t.typname || ' ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
    FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid JOIN ns ON ns.oid = t.typnamespace
    GROUP BY t.typname
    UNION ALL
    SELECT 'function ' || ns.nspname || '.' || p.proname FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
    ORDER BY 1`;
  return rows.map((r) => r.line);
}
