/**
 * Schema migrations, tracked by SQLite's `user_version`. MIGRATIONS[i] takes the schema from version i to
 * i + 1; each runs in its own transaction together with the version bump, so a crash mid-migration leaves
 * the previous version intact. To change the schema, append a migration: never edit a released one.
 */
import type Database from 'better-sqlite3';
import { CohortError } from '../../shared/errors.ts';

const V1 = `
CREATE TABLE jobs (
  id            TEXT    PRIMARY KEY,
  config        TEXT    NOT NULL,
  config_hash   TEXT    NOT NULL,
  status        TEXT    NOT NULL CHECK (status IN ('created','running','completed','failed','stopped','budget_exhausted')),
  reason        TEXT,
  current_round INTEGER NOT NULL DEFAULT 0 CHECK (current_round >= 0),
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
) STRICT;

-- One row per committed round.
CREATE TABLE rounds (
  job_id         TEXT    NOT NULL REFERENCES jobs(id),
  round          INTEGER NOT NULL CHECK (round >= 1),
  status         TEXT    NOT NULL DEFAULT 'committed' CHECK (status = 'committed'),
  started_at     INTEGER NOT NULL,
  ended_at       INTEGER NOT NULL,
  cohort_size    INTEGER NOT NULL,
  survivors      INTEGER NOT NULL,
  dropouts       INTEGER NOT NULL,
  num_examples   INTEGER NOT NULL,
  train_loss     REAL,
  train_accuracy REAL,
  metrics        TEXT,
  committed_at   INTEGER NOT NULL,
  PRIMARY KEY (job_id, round)
) STRICT;

-- Attempts that did not commit (too few survivors, timeout). The round number is retried later.
CREATE TABLE round_attempts (
  job_id      TEXT    NOT NULL REFERENCES jobs(id),
  round       INTEGER NOT NULL CHECK (round >= 1),
  attempt     INTEGER NOT NULL CHECK (attempt >= 1),
  started_at  INTEGER NOT NULL,
  ended_at    INTEGER NOT NULL,
  cohort_size INTEGER NOT NULL,
  survivors   INTEGER NOT NULL,
  reason      TEXT    NOT NULL,
  PRIMARY KEY (job_id, round, attempt)
) STRICT;

-- weights: little-endian float32; optimizer_state: ServerOptimizer.exportState() bytes.
CREATE TABLE checkpoints (
  job_id          TEXT    NOT NULL,
  round           INTEGER NOT NULL,
  weights         BLOB    NOT NULL,
  optimizer_state BLOB    NOT NULL,
  checksum        TEXT    NOT NULL,
  created_at      INTEGER NOT NULL,
  PRIMARY KEY (job_id, round),
  FOREIGN KEY (job_id, round) REFERENCES rounds(job_id, round)
) STRICT;

CREATE TABLE evaluations (
  job_id       TEXT    NOT NULL REFERENCES jobs(id),
  round        INTEGER NOT NULL CHECK (round >= 0),
  kind         TEXT    NOT NULL CHECK (kind IN ('federated','server')),
  loss         REAL    NOT NULL,
  accuracy     REAL    NOT NULL,
  num_examples INTEGER NOT NULL,
  clients      INTEGER NOT NULL,
  recorded_at  INTEGER NOT NULL,
  PRIMARY KEY (job_id, round, kind)
) STRICT;

CREATE TABLE clients (
  id           TEXT    PRIMARY KEY,
  first_seen   INTEGER NOT NULL,
  last_seen    INTEGER NOT NULL,
  num_examples INTEGER
) STRICT;

-- Append-only: a client may appear in an aborted attempt and again in the retry of the same round.
CREATE TABLE participation (
  id          INTEGER PRIMARY KEY,
  job_id      TEXT    NOT NULL REFERENCES jobs(id),
  round       INTEGER NOT NULL CHECK (round >= 1),
  client_id   TEXT    NOT NULL REFERENCES clients(id),
  status      TEXT    NOT NULL CHECK (status IN ('completed','dropped','refused','rejected')),
  recorded_at INTEGER NOT NULL
) STRICT;
CREATE INDEX participation_by_client ON participation(client_id, status);
CREATE INDEX participation_by_round ON participation(job_id, round);
`;

/**
 * v2: the privacy ledger. Append-only, one row per committed round of a DP job, written in the same
 * transaction as the round and its checkpoint (a model whose privacy cost is not recorded is never
 * published). `event` is the round's DP event as JSON (shared/privacy events); `epsilon` is the
 * cumulative ε at `delta` after this round, from the accountant over all events so far.
 */
const V2 = `
CREATE TABLE privacy_ledger (
  job_id           TEXT    NOT NULL,
  round            INTEGER NOT NULL CHECK (round >= 1),
  mode             TEXT    NOT NULL CHECK (mode IN ('central','local','distributed')),
  mechanism        TEXT    NOT NULL,
  sampling         TEXT    NOT NULL CHECK (sampling IN ('poisson','fixed')),
  sampling_rate    REAL    NOT NULL CHECK (sampling_rate > 0 AND sampling_rate <= 1),
  population       INTEGER NOT NULL CHECK (population >= 1),
  cohort_size      INTEGER NOT NULL CHECK (cohort_size >= 0),
  survivors        INTEGER NOT NULL CHECK (survivors >= 0),
  noise_multiplier REAL    NOT NULL CHECK (noise_multiplier >= 0),
  clip_norm        REAL    NOT NULL CHECK (clip_norm > 0),
  event            TEXT    NOT NULL,
  epsilon          REAL    NOT NULL CHECK (epsilon >= 0),
  delta            REAL    NOT NULL CHECK (delta > 0 AND delta < 1),
  rdp_order        REAL,
  trust            TEXT    NOT NULL,
  recorded_at      INTEGER NOT NULL,
  PRIMARY KEY (job_id, round),
  FOREIGN KEY (job_id, round) REFERENCES rounds(job_id, round)
) STRICT;
`;

/**
 * v3: job statuses `queued` and `paused` (a job held after its store failed, or by an operator).
 * SQLite cannot alter a CHECK constraint, so the jobs table is rebuilt (create, copy, drop, rename:
 * the procedure of https://sqlite.org/lang_altertable.html §7, with foreign keys off — see migrate()).
 */
const V3 = `
CREATE TABLE jobs_v3 (
  id            TEXT    PRIMARY KEY,
  config        TEXT    NOT NULL,
  config_hash   TEXT    NOT NULL,
  status        TEXT    NOT NULL CHECK (status IN ('created','queued','running','paused','completed','failed','stopped','budget_exhausted')),
  reason        TEXT,
  current_round INTEGER NOT NULL DEFAULT 0 CHECK (current_round >= 0),
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
) STRICT;
INSERT INTO jobs_v3 SELECT id, config, config_hash, status, reason, current_round, created_at, updated_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v3 RENAME TO jobs;
`;

/** Ordered schema steps; append new ones (next: audit log) at the end. */
export const MIGRATIONS: readonly ((db: Database.Database) => void)[] = [(db) => db.exec(V1), (db) => db.exec(V2), (db) => db.exec(V3)];

export const SCHEMA_VERSION = MIGRATIONS.length;

function userVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Brings the database up to SCHEMA_VERSION; a no-op on an up-to-date file. The version is re-read inside
 * each write transaction, so two processes opening a fresh file at once do not both run a step.
 */
export function migrate(db: Database.Database): void {
  // Table rebuilds need foreign keys off (the pragma is a no-op inside a transaction, so it is set
  // here); each step proves with foreign_key_check that it left every reference intact.
  const foreignKeys = db.pragma('foreign_keys', { simple: true }) as number;
  db.pragma('foreign_keys = OFF');
  try {
    while (migrationStep(db).immediate()) {
      // one migration per transaction
    }
  } finally {
    db.pragma(`foreign_keys = ${foreignKeys ? 'ON' : 'OFF'}`);
  }
}

function migrationStep(db: Database.Database) {
  return db.transaction((): boolean => {
    const current = userVersion(db);
    if (current > SCHEMA_VERSION) {
      throw new CohortError('DB_TOO_NEW', `database schema v${current} is newer than this build (v${SCHEMA_VERSION})`, {
        current,
        supported: SCHEMA_VERSION,
      });
    }
    if (current === SCHEMA_VERSION) return false;
    MIGRATIONS[current](db);
    const broken = db.pragma('foreign_key_check') as unknown[];
    if (broken.length > 0) {
      throw new CohortError('MIGRATION_FAILED', `migration to v${current + 1} would break ${broken.length} foreign-key references`);
    }
    db.pragma(`user_version = ${current + 1}`);
    return true;
  });
}
