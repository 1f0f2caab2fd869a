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

/**
 * v4: the ledger accounts every release, for each audience (issue 13).
 * - Rows for attempts too (`status` 'attempt', with the attempt number), written *before* the release
 *   can happen: in local mode the coordinator sees each client's noised update as soon as it is asked to
 *   train, in distributed mode the unmasked noised sum as soon as it asks for the unmasking shares, and
 *   either may happen in an attempt that then aborts (or in a crash). Rows are keyed by a per-job sequence
 *   number; a committed round still has exactly one 'committed' row (partial unique index). The foreign
 *   key to `rounds` goes (an attempt row has no round row); the commit transaction still writes a
 *   committed round's row with its round.
 * - Two events and two ε: `event` is the release to model consumers (NULL when nothing was published)
 *   and `coordinator_event` the release to the coordinator (NULL when the mode gives no guarantee against
 *   it, i.e. central); `epsilon_published` / `epsilon_coordinator` the cumulative ε of each, NULL where
 *   there is no guarantee; `epsilon` stays the one the budget applies to, named by `audience`.
 * - `short_draw_probability`: the chance that the round's Poisson draw would have been redrawn for falling
 *   short of minClients (shared/privacy/conditioning.ts); its sum over rounds enters δ.
 * Rows written before v4 are kept as recorded (their `event` was the published release); in local and
 * distributed mode they get the coordinator event their parameters imply (an unsampled Gaussian with
 * z/2: replace-one), so a restarted job accounts them against the coordinator too.
 */
const V4 = `
CREATE TABLE privacy_ledger_v4 (
  job_id                 TEXT    NOT NULL,
  seq                    INTEGER NOT NULL CHECK (seq >= 1),
  round                  INTEGER NOT NULL CHECK (round >= 1),
  status                 TEXT    NOT NULL CHECK (status IN ('committed','attempt')),
  attempt                INTEGER CHECK (attempt IS NULL OR attempt >= 1),
  mode                   TEXT    NOT NULL CHECK (mode IN ('central','local','distributed')),
  mechanism              TEXT    NOT NULL,
  sampling               TEXT    NOT NULL CHECK (sampling IN ('poisson','fixed')),
  sampling_rate          REAL    NOT NULL CHECK (sampling_rate > 0 AND sampling_rate <= 1),
  population             INTEGER NOT NULL CHECK (population >= 1),
  cohort_size            INTEGER NOT NULL CHECK (cohort_size >= 0),
  survivors              INTEGER NOT NULL CHECK (survivors >= 0),
  noise_multiplier       REAL    NOT NULL CHECK (noise_multiplier >= 0),
  clip_norm              REAL    NOT NULL CHECK (clip_norm > 0),
  event                  TEXT,
  coordinator_event      TEXT,
  short_draw_probability REAL    NOT NULL DEFAULT 0 CHECK (short_draw_probability >= 0 AND short_draw_probability <= 1),
  audience               TEXT    NOT NULL CHECK (audience IN ('coordinator','published')),
  epsilon                REAL    NOT NULL CHECK (epsilon >= 0),
  epsilon_published      REAL    CHECK (epsilon_published IS NULL OR epsilon_published >= 0),
  epsilon_coordinator    REAL    CHECK (epsilon_coordinator IS NULL OR epsilon_coordinator >= 0),
  delta                  REAL    NOT NULL CHECK (delta > 0 AND delta < 1),
  rdp_order              REAL,
  trust                  TEXT    NOT NULL,
  recorded_at            INTEGER NOT NULL,
  PRIMARY KEY (job_id, seq),
  CHECK (event IS NOT NULL OR coordinator_event IS NOT NULL),
  CHECK ((status = 'committed') = (attempt IS NULL))
) STRICT;
INSERT INTO privacy_ledger_v4
  SELECT job_id, ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY round), round, 'committed', NULL, mode, mechanism, sampling,
         sampling_rate, population, cohort_size, survivors, noise_multiplier, clip_norm, event,
         CASE WHEN mode = 'central' THEN NULL
              ELSE json_object('kind', 'gaussian', 'noiseMultiplier', noise_multiplier / 2.0) END,
         0, 'published', epsilon, epsilon, NULL, delta, rdp_order,
         trust || ' [recorded before schema v4: ε against model consumers only]', recorded_at
    FROM privacy_ledger;
DROP TABLE privacy_ledger;
ALTER TABLE privacy_ledger_v4 RENAME TO privacy_ledger;
CREATE UNIQUE INDEX privacy_ledger_committed ON privacy_ledger(job_id, round) WHERE status = 'committed';
`;

/**
 * v5: the operations plane's tables (issue 14).
 * - `api_tokens`: bearer tokens for the admin API, stored only as the SHA-256 (hex) of the token text;
 *   a revoked token keeps its row (revoked_at set) so the audit log's actor names stay explained.
 * - `audit_log`: append-only, hash-chained (server/store/audit.ts): each row's hash covers the previous
 *   row's hash and its own canonical content. Triggers refuse UPDATE and DELETE, so an edit takes
 *   deliberately dropping them; the chain then still shows where (verifyAudit).
 * - `version_tags`: every move of a job's production tag, in order; the job's current tag is its last
 *   row. It references the committed round (rounds are never deleted); the round's checkpoint is kept
 *   by pruning for as long as it holds the tag (rounds.ts).
 */
const V5 = `
CREATE TABLE api_tokens (
  id           TEXT    PRIMARY KEY,
  name         TEXT    NOT NULL UNIQUE,
  role         TEXT    NOT NULL CHECK (role IN ('viewer','operator','admin')),
  token_hash   TEXT    NOT NULL UNIQUE CHECK (length(token_hash) = 64),
  created_at   INTEGER NOT NULL,
  last_used_at INTEGER,
  revoked_at   INTEGER
) STRICT;

CREATE TABLE audit_log (
  seq       INTEGER PRIMARY KEY CHECK (seq >= 1),
  at        INTEGER NOT NULL,
  actor     TEXT    NOT NULL,
  action    TEXT    NOT NULL,
  target    TEXT,
  outcome   TEXT    NOT NULL CHECK (outcome IN ('ok','denied','failed')),
  details   TEXT,
  prev_hash TEXT    NOT NULL CHECK (length(prev_hash) = 64),
  hash      TEXT    NOT NULL CHECK (length(hash) = 64)
) STRICT;
CREATE INDEX audit_by_target ON audit_log(target);
CREATE INDEX audit_by_actor ON audit_log(actor);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE version_tags (
  seq       INTEGER PRIMARY KEY,
  job_id    TEXT    NOT NULL REFERENCES jobs(id),
  round     INTEGER NOT NULL CHECK (round >= 1),
  tag       TEXT    NOT NULL CHECK (tag = 'production'),
  tagged_at INTEGER NOT NULL,
  actor     TEXT    NOT NULL,
  forced    INTEGER NOT NULL CHECK (forced IN (0, 1)),
  FOREIGN KEY (job_id, round) REFERENCES rounds(job_id, round)
) STRICT;
CREATE INDEX version_tags_by_job ON version_tags(job_id, tag, seq);
`;

/**
 * v6: device identity (issue 15).
 * - `client_identities`: the Ed25519 public key each client id is bound to — on first use (loopback,
 *   zero set-up), by a certificate, or at enrolment. An id is never re-bound to another key without an
 *   operator's action (a certificate from the CA, an enrolment token); a revoked id stays revoked until
 *   one.
 * - `enrolment_tokens`: one-time tokens (`cet_` + 256 bits), stored only as SHA-256; used once, expire.
 * - `client_certificates`: every certificate this coordinator issued or accepted, by serial; a revoked
 *   serial is refused even inside its validity.
 */
const V6 = `
CREATE TABLE client_identities (
  client_id  TEXT    PRIMARY KEY,
  public_key TEXT    NOT NULL CHECK (length(public_key) = 43),
  bound_at   INTEGER NOT NULL,
  bound_by   TEXT    NOT NULL CHECK (bound_by IN ('first-use','certificate','enrolment')),
  revoked_at INTEGER,
  revoked_by TEXT
) STRICT;

CREATE TABLE enrolment_tokens (
  id          TEXT    PRIMARY KEY,
  token_hash  TEXT    NOT NULL UNIQUE CHECK (length(token_hash) = 64),
  client_id   TEXT    NOT NULL,
  jobs        TEXT    NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  created_by  TEXT    NOT NULL,
  used_at     INTEGER,
  serial      TEXT
) STRICT;
CREATE INDEX enrolment_tokens_by_client ON enrolment_tokens(client_id);

CREATE TABLE client_certificates (
  serial      TEXT    PRIMARY KEY,
  client_id   TEXT    NOT NULL,
  public_key  TEXT    NOT NULL,
  jobs        TEXT    NOT NULL,
  not_before  INTEGER NOT NULL,
  not_after   INTEGER NOT NULL,
  seen_at     INTEGER NOT NULL,
  revoked_at  INTEGER
) STRICT;
CREATE INDEX client_certificates_by_client ON client_certificates(client_id);
`;

/**
 * v7: model health (issue 18).
 * - `evaluations.health`: the evaluation's health report as JSON (metrics from the evaluators' summed
 *   statistics, calibration, fairness, drift, criteria); NULL for evaluations without statistics and for
 *   every row written before v7, which read as they always did.
 * - `privacy_ledger.status` may be 'evaluation': a DP job's noised evaluation statistics, released with
 *   the evaluation record in one transaction. SQLite cannot alter a CHECK, so the table is rebuilt (as in
 *   v4; rows copied unchanged, column for column).
 */
const V7 = `
ALTER TABLE evaluations ADD COLUMN health TEXT CHECK (health IS NULL OR json_valid(health));

CREATE TABLE privacy_ledger_v7 (
  job_id                 TEXT    NOT NULL,
  seq                    INTEGER NOT NULL CHECK (seq >= 1),
  round                  INTEGER NOT NULL CHECK (round >= 1),
  status                 TEXT    NOT NULL CHECK (status IN ('committed','attempt','evaluation')),
  attempt                INTEGER CHECK (attempt IS NULL OR attempt >= 1),
  mode                   TEXT    NOT NULL CHECK (mode IN ('central','local','distributed')),
  mechanism              TEXT    NOT NULL,
  sampling               TEXT    NOT NULL CHECK (sampling IN ('poisson','fixed')),
  sampling_rate          REAL    NOT NULL CHECK (sampling_rate > 0 AND sampling_rate <= 1),
  population             INTEGER NOT NULL CHECK (population >= 1),
  cohort_size            INTEGER NOT NULL CHECK (cohort_size >= 0),
  survivors              INTEGER NOT NULL CHECK (survivors >= 0),
  noise_multiplier       REAL    NOT NULL CHECK (noise_multiplier >= 0),
  clip_norm              REAL    NOT NULL CHECK (clip_norm > 0),
  event                  TEXT,
  coordinator_event      TEXT,
  short_draw_probability REAL    NOT NULL DEFAULT 0 CHECK (short_draw_probability >= 0 AND short_draw_probability <= 1),
  audience               TEXT    NOT NULL CHECK (audience IN ('coordinator','published')),
  epsilon                REAL    NOT NULL CHECK (epsilon >= 0),
  epsilon_published      REAL    CHECK (epsilon_published IS NULL OR epsilon_published >= 0),
  epsilon_coordinator    REAL    CHECK (epsilon_coordinator IS NULL OR epsilon_coordinator >= 0),
  delta                  REAL    NOT NULL CHECK (delta > 0 AND delta < 1),
  rdp_order              REAL,
  trust                  TEXT    NOT NULL,
  recorded_at            INTEGER NOT NULL,
  PRIMARY KEY (job_id, seq),
  CHECK (event IS NOT NULL OR coordinator_event IS NOT NULL),
  CHECK ((status = 'attempt') = (attempt IS NOT NULL))
) STRICT;
INSERT INTO privacy_ledger_v7 SELECT * FROM privacy_ledger;
DROP TABLE privacy_ledger;
ALTER TABLE privacy_ledger_v7 RENAME TO privacy_ledger;
CREATE UNIQUE INDEX privacy_ledger_committed ON privacy_ledger(job_id, round) WHERE status = 'committed';
`;

/** Ordered schema steps; append new ones at the end. */
export const MIGRATIONS: readonly ((db: Database.Database) => void)[] = [
  (db) => db.exec(V1),
  (db) => db.exec(V2),
  (db) => db.exec(V3),
  (db) => db.exec(V4),
  (db) => db.exec(V5),
  (db) => db.exec(V6),
  (db) => db.exec(V7),
];

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
