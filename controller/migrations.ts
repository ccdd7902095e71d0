/**
 * Forward-only, numbered migrations (graphile-worker style), kept as data so the build
 * needs no file copying. Each runs in its own transaction under an advisory lock
 * (see database.ts). Never edit a migration that has shipped: add the next number.
 *
 * 0001 creates the host tables and enum types of CONTRACT.md § 3 only when they are
 * absent (a real backend's tables and rows are left as they are) and the scheduler's
 * own tables in schema `scheduler`.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

// Frozen copies: a shipped migration never changes, even if the enum grows later.
const MATCH_STATUSES = [
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
const PREDICTION_STATUSES = ["EDITABLE", "SUBMITTED", "LOCKED", "PROCESSED"];

const enumList = (values: string[]) => values.map((v) => `'${v}'`).join(", ");

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "host tables (if absent) and scheduler schema",
    sql: `
DO $$
BEGIN
  IF to_regtype('matchstatus') IS NULL THEN
    CREATE TYPE matchstatus AS ENUM (${enumList(MATCH_STATUSES)});
  END IF;
  IF to_regtype('predictionstatus') IS NULL THEN
    CREATE TYPE predictionstatus AS ENUM (${enumList(PREDICTION_STATUSES)});
  END IF;
END
$$;

CREATE TABLE IF NOT EXISTS users (
  id serial PRIMARY KEY,
  username varchar UNIQUE NOT NULL,
  email varchar UNIQUE,
  hashed_password varchar NOT NULL,
  is_active boolean DEFAULT true,
  created_at timestamp
);

CREATE TABLE IF NOT EXISTS fixtures (
  fixture_id integer PRIMARY KEY,
  date timestamp NOT NULL,
  status matchstatus NOT NULL DEFAULT 'NOT_STARTED',
  round varchar,
  season varchar NOT NULL,
  home_team varchar NOT NULL,
  away_team varchar NOT NULL,
  home_team_logo varchar(512),
  away_team_logo varchar(512),
  home_score integer,
  away_score integer,
  league varchar NOT NULL,
  competition_id integer,
  venue varchar,
  venue_city varchar,
  match_timestamp timestamp,
  last_updated timestamp,
  league_id integer
);

CREATE TABLE IF NOT EXISTS user_predictions (
  id serial PRIMARY KEY,
  user_id integer NOT NULL REFERENCES users(id),
  fixture_id integer NOT NULL REFERENCES fixtures(fixture_id),
  week integer NOT NULL,
  season varchar NOT NULL,
  score1 integer NOT NULL DEFAULT 0,
  score2 integer NOT NULL DEFAULT 0,
  points integer NOT NULL DEFAULT 0,
  created timestamp NOT NULL DEFAULT now(),
  submission_time timestamp,
  last_modified timestamp,
  processed_at timestamp,
  prediction_status predictionstatus NOT NULL DEFAULT 'EDITABLE',
  bonus_type varchar(20),
  bonus_points integer NOT NULL DEFAULT 0,
  is_rivalry_week boolean NOT NULL DEFAULT false,
  UNIQUE (user_id, fixture_id)
);

-- The lease behind PostgreSQL leader election, and the fencing epoch for every back end.
CREATE TABLE scheduler.lease (
  name text PRIMARY KEY,
  holder text,
  acquired_at timestamptz,
  renewed_at timestamptz,
  duration_ms integer NOT NULL,
  transitions integer NOT NULL DEFAULT 0,
  epoch bigint NOT NULL DEFAULT 0
);

-- What the scheduler knows of each competition it keeps in sync.
CREATE TABLE scheduler.competitions (
  league_id integer NOT NULL,
  season integer NOT NULL,
  name text,
  last_full_sync_at timestamptz,
  last_error text,
  last_error_at timestamptz,
  PRIMARY KEY (league_id, season)
);

-- Per-fixture sync state: the API's raw status code and when it was last seen.
CREATE TABLE scheduler.fixture_sync (
  fixture_id integer PRIMARY KEY,
  league_id integer,
  season integer,
  api_status text,
  api_elapsed integer,
  last_seen_at timestamptz,
  unknown_status text
);

-- Pins set by an operator through the management API; the reconciler respects them.
CREATE TABLE scheduler.fixture_overrides (
  fixture_id integer PRIMARY KEY,
  status matchstatus NOT NULL,
  home_score integer,
  away_score integer,
  reason text,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per reconcile that wrote something (or tried to): the "loop" changes refer to.
CREATE TABLE scheduler.reconcile_runs (
  id bigserial PRIMARY KEY,
  started_at timestamptz NOT NULL,
  finished_at timestamptz,
  holder text,
  epoch bigint,
  result text,
  summary jsonb,
  error text
);

-- Audit: every change the scheduler made to a host-table row.
CREATE TABLE scheduler.fixture_changes (
  id bigserial PRIMARY KEY,
  run_id bigint NOT NULL,
  fixture_id integer NOT NULL,
  changed_at timestamptz NOT NULL DEFAULT now(),
  clock_time timestamp,
  kind text NOT NULL,
  changes jsonb NOT NULL
);
CREATE INDEX fixture_changes_fixture_idx ON scheduler.fixture_changes (fixture_id, id);

-- API calls made per UTC day, so the daily budget survives a restart.
CREATE TABLE scheduler.api_usage (
  day date PRIMARY KEY,
  calls integer NOT NULL DEFAULT 0
);
`,
  },
  {
    version: 2,
    name: "indexes the reconcile sweeps rely on",
    // Indexes add no rows and change none; they keep the lock and score sweeps from
    // scanning every prediction on each loop.
    sql: `
CREATE INDEX IF NOT EXISTS scheduler_fixtures_date_idx ON fixtures (date);
CREATE INDEX IF NOT EXISTS scheduler_predictions_open_idx ON user_predictions (fixture_id)
  WHERE prediction_status IN ('SUBMITTED', 'LOCKED');
CREATE INDEX IF NOT EXISTS scheduler_predictions_fixture_idx ON user_predictions (fixture_id);
`,
  },
  {
    version: 3,
    name: "partial index of fixtures under way",
    // The sweep asks for fixtures under way on every pass; a partial index keeps that
    // from scanning the whole table. Adds no rows and changes none.
    sql: `
CREATE INDEX IF NOT EXISTS scheduler_fixtures_under_way_idx ON fixtures (fixture_id)
  WHERE status IN ('FIRST_HALF', 'HALFTIME', 'SECOND_HALF', 'EXTRA_TIME', 'BREAK_TIME', 'PENALTY', 'LIVE',
                   'SUSPENDED', 'INTERRUPTED');
`,
  },
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
