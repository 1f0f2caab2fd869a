/**
 * The coordinator's durable state in one SQLite file, `<dataDir>/cohort.db`.
 *
 * Durability: WAL journal with synchronous=FULL, so every commit is fsynced before it returns; a round that
 * commitRound() returned for survives a SIGKILL or power loss. A round commit (round row, checkpoint,
 * job's current round, pruning) is one transaction: after a crash either all of it is there or none.
 *
 * All statements are prepared once in the constructor. Inputs are validated before any write.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { CohortError } from '../../shared/errors.ts';
import { isAllFinite } from '../../shared/fl/aggregate.ts';
import { blobToBytes, blobToFloat32, bytesToBlob, float32ToBlob } from './codec.ts';
import { migrate } from './migrations.ts';
import {
  EVALUATION_KINDS,
  JOB_STATUSES,
  PARTICIPATION_STATUSES,
  DP_MODES,
  type AbortedRoundInput,
  type Checkpoint,
  type ClientRow,
  type CommitRoundInput,
  type EvaluationRecord,
  type JobRow,
  type JobStatus,
  type LedgerEntry,
  type LedgerRow,
  type ParticipationEntry,
  type ParticipationStatus,
  type RoundAttemptRow,
  type RoundRow,
  type StoreOptions,
} from './types.ts';
import * as v from './validate.ts';

export const DB_FILE = 'cohort.db';

interface JobSql {
  id: string;
  config: string;
  config_hash: string;
  status: JobStatus;
  reason: string | null;
  current_round: number;
  created_at: number;
  updated_at: number;
}

interface RoundSql {
  round: number;
  started_at: number;
  ended_at: number;
  cohort_size: number;
  survivors: number;
  dropouts: number;
  num_examples: number;
  train_loss: number | null;
  train_accuracy: number | null;
  metrics: string | null;
  ev_kind: EvaluationRecord['kind'] | null;
  ev_loss: number | null;
  ev_accuracy: number | null;
  ev_num_examples: number | null;
  ev_clients: number | null;
}

interface AttemptSql {
  round: number;
  attempt: number;
  started_at: number;
  ended_at: number;
  cohort_size: number;
  survivors: number;
  reason: string;
}

interface CheckpointSql {
  round: number;
  weights: Buffer;
  optimizer_state: Buffer;
  checksum: string;
}

interface EvaluationSql {
  round: number;
  kind: EvaluationRecord['kind'];
  loss: number;
  accuracy: number;
  num_examples: number;
  clients: number;
}

interface ClientSql {
  id: string;
  first_seen: number;
  last_seen: number;
  num_examples: number | null;
  rounds_completed: number;
}

/** Evaluation columns joined onto a round: federated preferred over server. */
const ROUND_SELECT = `
  SELECT r.round, r.started_at, r.ended_at, r.cohort_size, r.survivors, r.dropouts, r.num_examples,
         r.train_loss, r.train_accuracy, r.metrics,
         e.kind AS ev_kind, e.loss AS ev_loss, e.accuracy AS ev_accuracy,
         e.num_examples AS ev_num_examples, e.clients AS ev_clients
    FROM rounds r
    LEFT JOIN evaluations e
      ON e.job_id = r.job_id AND e.round = r.round
     AND e.kind = (SELECT kind FROM evaluations x WHERE x.job_id = r.job_id AND x.round = r.round
                    ORDER BY CASE kind WHEN 'federated' THEN 0 ELSE 1 END LIMIT 1)
   WHERE r.job_id = ?
   ORDER BY r.round`;

function prepareAll(db: Database.Database) {
  return {
    insertJob: db.prepare<[string, string, string, number, number]>(
      `INSERT INTO jobs (id, config, config_hash, status, reason, current_round, created_at, updated_at)
       VALUES (?, ?, ?, 'created', NULL, 0, ?, ?)`,
    ),
    getJob: db.prepare<[string], JobSql>('SELECT * FROM jobs WHERE id = ?'),
    listJobs: db.prepare<[], JobSql>('SELECT * FROM jobs ORDER BY created_at, id'),
    setJobStatus: db.prepare<[JobStatus, string | null, number, string]>(
      'UPDATE jobs SET status = ?, reason = ?, updated_at = ? WHERE id = ?',
    ),
    currentRound: db.prepare<[string], { current_round: number }>('SELECT current_round FROM jobs WHERE id = ?'),
    insertRound: db.prepare(
      `INSERT INTO rounds (job_id, round, started_at, ended_at, cohort_size, survivors, dropouts, num_examples,
                           train_loss, train_accuracy, metrics, committed_at)
       VALUES (@jobId, @round, @startedAt, @endedAt, @cohortSize, @survivors, @dropouts, @numExamples,
               @trainLoss, @trainAccuracy, @metrics, @now)`,
    ),
    insertCheckpoint: db.prepare<[string, number, Buffer, Buffer, string, number]>(
      `INSERT INTO checkpoints (job_id, round, weights, optimizer_state, checksum, created_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    insertLedger: db.prepare(
      `INSERT INTO privacy_ledger (job_id, round, mode, mechanism, sampling, sampling_rate, population, cohort_size,
                                   survivors, noise_multiplier, clip_norm, event, epsilon, delta, rdp_order, trust,
                                   recorded_at)
       VALUES (@jobId, @round, @mode, @mechanism, @sampling, @samplingRate, @population, @cohortSize, @survivors,
               @noiseMultiplier, @clipNorm, @event, @epsilon, @delta, @rdpOrder, @trust, @now)`,
    ),
    listLedger: db.prepare<[string], LedgerSql>('SELECT * FROM privacy_ledger WHERE job_id = ? ORDER BY round'),
    advanceJob: db.prepare<[number, number, string]>('UPDATE jobs SET current_round = ?, updated_at = ? WHERE id = ?'),
    pruneCheckpoints: db.prepare<[string, string, number]>(
      `DELETE FROM checkpoints WHERE job_id = ? AND round NOT IN
         (SELECT round FROM checkpoints WHERE job_id = ? ORDER BY round DESC LIMIT ?)`,
    ),
    nextAttempt: db.prepare<[string, number], { next: number }>(
      'SELECT COALESCE(MAX(attempt), 0) + 1 AS next FROM round_attempts WHERE job_id = ? AND round = ?',
    ),
    insertAttempt: db.prepare(
      `INSERT INTO round_attempts (job_id, round, attempt, started_at, ended_at, cohort_size, survivors, reason)
       VALUES (@jobId, @round, @attempt, @startedAt, @endedAt, @cohortSize, @survivors, @reason)`,
    ),
    listAttempts: db.prepare<[string], AttemptSql>(
      `SELECT round, attempt, started_at, ended_at, cohort_size, survivors, reason
         FROM round_attempts WHERE job_id = ? ORDER BY round, attempt`,
    ),
    latestCheckpoint: db.prepare<[string], CheckpointSql>(
      `SELECT round, weights, optimizer_state, checksum FROM checkpoints
        WHERE job_id = ? ORDER BY round DESC LIMIT 1`,
    ),
    checkpoint: db.prepare<[string, number], CheckpointSql>(
      'SELECT round, weights, optimizer_state, checksum FROM checkpoints WHERE job_id = ? AND round = ?',
    ),
    checkpointRounds: db.prepare<[string], { round: number }>(
      'SELECT round FROM checkpoints WHERE job_id = ? ORDER BY round',
    ),
    listRounds: db.prepare<[string], RoundSql>(ROUND_SELECT),
    upsertEvaluation: db.prepare(
      `INSERT INTO evaluations (job_id, round, kind, loss, accuracy, num_examples, clients, recorded_at)
       VALUES (@jobId, @round, @kind, @loss, @accuracy, @numExamples, @clients, @now)
       ON CONFLICT (job_id, round, kind) DO UPDATE SET
         loss = excluded.loss, accuracy = excluded.accuracy, num_examples = excluded.num_examples,
         clients = excluded.clients, recorded_at = excluded.recorded_at`,
    ),
    listEvaluations: db.prepare<[string], EvaluationSql>(
      `SELECT round, kind, loss, accuracy, num_examples, clients FROM evaluations
        WHERE job_id = ? ORDER BY round, kind`,
    ),
    upsertClient: db.prepare<[string, number, number, number | null]>(
      `INSERT INTO clients (id, first_seen, last_seen, num_examples) VALUES (?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET
         first_seen = MIN(first_seen, excluded.first_seen),
         last_seen = MAX(last_seen, excluded.last_seen),
         num_examples = COALESCE(excluded.num_examples, num_examples)`,
    ),
    ensureClient: db.prepare<[string, number, number]>(
      'INSERT INTO clients (id, first_seen, last_seen) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING',
    ),
    insertParticipation: db.prepare<[string, number, string, ParticipationStatus, number]>(
      'INSERT INTO participation (job_id, round, client_id, status, recorded_at) VALUES (?, ?, ?, ?, ?)',
    ),
    listClients: db.prepare<[], ClientSql>(
      `SELECT c.id, c.first_seen, c.last_seen, c.num_examples,
              (SELECT COUNT(*) FROM (SELECT DISTINCT p.job_id, p.round FROM participation p
                                      WHERE p.client_id = c.id AND p.status = 'completed')) AS rounds_completed
         FROM clients c ORDER BY c.id`,
    ),
  };
}

type Statements = ReturnType<typeof prepareAll>;

function isSqliteError(e: unknown, codePrefix: string): boolean {
  return e instanceof Database.SqliteError && e.code.startsWith(codePrefix);
}

function toJob(row: JobSql): JobRow {
  return {
    id: row.id,
    config: JSON.parse(row.config) as unknown,
    configHash: row.config_hash,
    status: row.status,
    reason: row.reason,
    currentRound: row.current_round,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toRound(row: RoundSql): RoundRow {
  const out: RoundRow = {
    round: row.round,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    cohortSize: row.cohort_size,
    survivors: row.survivors,
    dropouts: row.dropouts,
    numExamples: row.num_examples,
    trainLoss: row.train_loss,
    trainAccuracy: row.train_accuracy,
    evaluation:
      row.ev_kind === null
        ? null
        : {
            kind: row.ev_kind,
            loss: row.ev_loss as number,
            accuracy: row.ev_accuracy as number,
            numExamples: row.ev_num_examples as number,
            clients: row.ev_clients as number,
          },
  };
  if (row.metrics !== null) out.metrics = JSON.parse(row.metrics) as Record<string, number>;
  return out;
}

function toCheckpoint(row: CheckpointSql): Checkpoint {
  return {
    round: row.round,
    weights: blobToFloat32(row.weights),
    optimizerState: blobToBytes(row.optimizer_state),
    checksum: row.checksum,
  };
}

export class CohortStore {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly st: Statements;
  private readonly keep: number;
  private readonly now: () => number;
  private readonly commitTx: Database.Transaction<(p: CommitParams) => void>;
  private readonly abortTx: Database.Transaction<(p: AttemptParams) => void>;
  private readonly participationTx: Database.Transaction<
    (jobId: string, round: number, entries: readonly ParticipationEntry[]) => void
  >;

  private constructor(file: string, db: Database.Database, opts: StoreOptions) {
    this.path = file;
    this.db = db;
    this.st = prepareAll(db);
    this.keep = opts.keepCheckpoints ?? 3;
    this.now = opts.now ?? Date.now;
    // Transactions are built once, like the statements. Writers use BEGIN IMMEDIATE (.immediate below)
    // so the ROUND_ORDER check and the writes happen under one write lock.
    this.commitTx = db.transaction((p: CommitParams) => {
      this.expectNextRound(p.row.jobId, p.row.round);
      const now = this.now();
      this.st.insertRound.run({ ...p.row, now });
      this.st.insertCheckpoint.run(p.row.jobId, p.row.round, p.weights, p.state, p.checksum, now);
      if (p.ledger) this.st.insertLedger.run({ jobId: p.row.jobId, round: p.row.round, ...p.ledger, now });
      this.st.advanceJob.run(p.row.round, now, p.row.jobId);
      this.st.pruneCheckpoints.run(p.row.jobId, p.row.jobId, this.keep);
      opts.failpoint?.('commit:in-transaction', p.row.round);
    });
    this.abortTx = db.transaction((p: AttemptParams) => {
      this.expectNextRound(p.jobId, p.round);
      const attempt = (this.st.nextAttempt.get(p.jobId, p.round) as { next: number }).next;
      this.st.insertAttempt.run({ ...p, attempt });
    });
    this.participationTx = db.transaction((jobId: string, round: number, entries: readonly ParticipationEntry[]) => {
      const now = this.now();
      for (const e of entries) {
        this.st.ensureClient.run(e.clientId, now, now);
        this.st.insertParticipation.run(jobId, round, e.clientId, e.status, now);
      }
    });
  }

  /** Opens (creating directories and file if missing) and migrates `<dataDir>/cohort.db`. */
  static open(dataDir: string, opts: StoreOptions = {}): CohortStore {
    v.nonEmptyString('dataDir', dataDir);
    if (opts.keepCheckpoints !== undefined) v.roundNumber('keepCheckpoints', opts.keepCheckpoints);
    fs.mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, DB_FILE);
    const db = new Database(file);
    try {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') {
        throw new CohortError('STORE_UNSUPPORTED', `${file}: cannot use WAL journal mode (got ${String(mode)})`);
      }
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma(`busy_timeout = ${v.count('busyTimeoutMs', opts.busyTimeoutMs ?? 5000)}`);
      migrate(db);
      return new CohortStore(file, db, opts);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // ---- jobs ------------------------------------------------------------------------------------------

  createJob(input: { id: string; config: unknown; configHash: string }): JobRow {
    const id = v.nonEmptyString('id', input.id);
    const config = v.json('config', input.config);
    const hash = v.nonEmptyString('configHash', input.configHash);
    const now = this.now();
    try {
      this.st.insertJob.run(id, config, hash, now, now);
    } catch (e) {
      if (isSqliteError(e, 'SQLITE_CONSTRAINT')) throw new CohortError('JOB_EXISTS', `job ${id} already exists`, { id });
      throw e;
    }
    return this.requireJob(id);
  }

  getJob(id: string): JobRow | undefined {
    const row = this.st.getJob.get(v.nonEmptyString('id', id));
    return row && toJob(row);
  }

  listJobs(): JobRow[] {
    return this.st.listJobs.all().map(toJob);
  }

  setJobStatus(id: string, status: JobStatus, reason?: string): void {
    v.nonEmptyString('id', id);
    v.oneOf('status', status, JOB_STATUSES);
    if (reason !== undefined && typeof reason !== 'string') v.nonEmptyString('reason', reason);
    const { changes } = this.st.setJobStatus.run(status, reason ?? null, this.now(), id);
    if (changes === 0) throw unknownJob(id);
  }

  // ---- rounds ----------------------------------------------------------------------------------------

  /**
   * Commits round `round` of a job: the round row, its checkpoint, the job's current round, and pruning of
   * old checkpoints, in one fsynced transaction. Throws ROUND_ORDER unless round = currentRound + 1.
   */
  commitRound(input: CommitRoundInput): void {
    const jobId = v.nonEmptyString('jobId', input.jobId);
    const round = v.roundNumber('round', input.round);
    const checksum = v.nonEmptyString('checksum', input.checksum);
    if (!(input.weights instanceof Float32Array) || input.weights.length === 0) {
      throw new CohortError('BAD_INPUT', 'weights: must be a non-empty Float32Array');
    }
    if (!isAllFinite(input.weights)) throw new CohortError('NON_FINITE', 'weights: contain NaN or infinite values');
    if (!(input.optimizerState instanceof Uint8Array)) {
      throw new CohortError('BAD_INPUT', 'optimizerState: must be a Uint8Array');
    }
    const row = { jobId, round, ...roundRecordParams(input.record) };
    const weights = float32ToBlob(input.weights);
    const state = bytesToBlob(input.optimizerState);
    const ledger = input.ledger === undefined ? undefined : ledgerParams(input.ledger);
    this.commitTx.immediate({ row, weights, state, checksum, ledger });
  }

  /** Records an attempt at round `round` that did not commit; current_round does not move. */
  recordRoundAborted(input: AbortedRoundInput): void {
    const jobId = v.nonEmptyString('jobId', input.jobId);
    const round = v.roundNumber('round', input.round);
    this.abortTx.immediate({
      jobId,
      round,
      startedAt: v.timestamp('startedAt', input.startedAt),
      endedAt: v.timestamp('endedAt', input.endedAt),
      cohortSize: v.count('cohortSize', input.cohortSize),
      survivors: v.count('survivors', input.survivors),
      reason: v.nonEmptyString('reason', input.reason),
    });
  }

  listRoundAttempts(jobId: string): RoundAttemptRow[] {
    return this.st.listAttempts.all(v.nonEmptyString('jobId', jobId)).map((r) => ({
      round: r.round,
      attempt: r.attempt,
      startedAt: r.started_at,
      endedAt: r.ended_at,
      cohortSize: r.cohort_size,
      survivors: r.survivors,
      reason: r.reason,
    }));
  }

  /** The privacy ledger of a job, one row per committed DP round, ascending. */
  listLedger(jobId: string): LedgerRow[] {
    return this.st.listLedger.all(v.nonEmptyString('jobId', jobId)).map(toLedgerRow);
  }

  /** Committed rounds, ascending. */
  listRounds(jobId: string): RoundRow[] {
    return this.st.listRounds.all(v.nonEmptyString('jobId', jobId)).map(toRound);
  }

  latestCheckpoint(jobId: string): Checkpoint | undefined {
    const row = this.st.latestCheckpoint.get(v.nonEmptyString('jobId', jobId));
    return row && toCheckpoint(row);
  }

  checkpoint(jobId: string, round: number): Checkpoint | undefined {
    const row = this.st.checkpoint.get(v.nonEmptyString('jobId', jobId), v.roundNumber('round', round));
    return row && toCheckpoint(row);
  }

  /** Rounds that still have a checkpoint (after pruning), ascending. */
  checkpointRounds(jobId: string): number[] {
    return this.st.checkpointRounds.all(v.nonEmptyString('jobId', jobId)).map((r) => r.round);
  }

  // ---- evaluation ------------------------------------------------------------------------------------

  /** Stores (or replaces) the evaluation of `round`'s model; round 0 is the initial model. */
  recordEvaluation(jobId: string, round: number, ev: EvaluationRecord): void {
    const params = {
      jobId: v.nonEmptyString('jobId', jobId),
      round: v.roundNumber('round', round, 0),
      kind: v.oneOf('kind', ev.kind, EVALUATION_KINDS),
      loss: v.finite('loss', ev.loss),
      accuracy: v.finite('accuracy', ev.accuracy),
      numExamples: v.count('numExamples', ev.numExamples),
      clients: v.count('clients', ev.clients),
      now: this.now(),
    };
    this.withJob(params.jobId, () => this.st.upsertEvaluation.run(params));
  }

  listEvaluations(jobId: string): (EvaluationRecord & { round: number })[] {
    return this.st.listEvaluations.all(v.nonEmptyString('jobId', jobId)).map((r) => ({
      round: r.round,
      kind: r.kind,
      loss: r.loss,
      accuracy: r.accuracy,
      numExamples: r.num_examples,
      clients: r.clients,
    }));
  }

  // ---- clients ---------------------------------------------------------------------------------------

  upsertClient(clientId: string, info: { numExamples?: number; lastSeen: number }): void {
    const id = v.nonEmptyString('clientId', clientId);
    const lastSeen = v.timestamp('lastSeen', info.lastSeen);
    const numExamples = info.numExamples === undefined ? null : v.count('numExamples', info.numExamples);
    this.st.upsertClient.run(id, lastSeen, lastSeen, numExamples);
  }

  /**
   * Appends participation records of one round attempt, in one transaction (one fsync however large
   * the cohort); unknown clients are registered first (seen now).
   */
  recordParticipation(jobId: string, round: number, entries: readonly ParticipationEntry[]): void {
    v.nonEmptyString('jobId', jobId);
    v.roundNumber('round', round);
    for (const e of entries) {
      v.nonEmptyString('clientId', e.clientId);
      v.oneOf('status', e.status, PARTICIPATION_STATUSES);
    }
    this.withJob(jobId, () => this.participationTx(jobId, round, entries));
  }

  listClients(): ClientRow[] {
    return this.st.listClients.all().map((r) => ({
      id: r.id,
      firstSeen: r.first_seen,
      lastSeen: r.last_seen,
      numExamples: r.num_examples,
      roundsCompleted: r.rounds_completed,
    }));
  }

  // ---- internals -------------------------------------------------------------------------------------

  private requireJob(id: string): JobRow {
    const job = this.getJob(id);
    if (!job) throw unknownJob(id);
    return job;
  }

  /** Inside a transaction: the job exists and `round` is the one after its last committed round. */
  private expectNextRound(jobId: string, round: number): void {
    const row = this.st.currentRound.get(jobId);
    if (!row) throw unknownJob(jobId);
    if (round !== row.current_round + 1) {
      throw new CohortError('ROUND_ORDER', `job ${jobId}: round ${round} is not next (last committed ${row.current_round})`, {
        jobId,
        round,
        currentRound: row.current_round,
      });
    }
  }

  /** Runs a write whose foreign key on jobs(id) may fail; maps that failure to UNKNOWN_JOB. */
  private withJob(jobId: string, write: () => unknown): void {
    try {
      write();
    } catch (e) {
      if (isSqliteError(e, 'SQLITE_CONSTRAINT_FOREIGNKEY') && !this.getJob(jobId)) throw unknownJob(jobId);
      throw e;
    }
  }
}

function unknownJob(id: string): CohortError {
  return new CohortError('UNKNOWN_JOB', `no job ${id}`, { jobId: id });
}

interface AttemptParams {
  jobId: string;
  round: number;
  startedAt: number;
  endedAt: number;
  cohortSize: number;
  survivors: number;
  reason: string;
}

interface CommitParams {
  row: { jobId: string; round: number } & ReturnType<typeof roundRecordParams>;
  weights: Buffer;
  state: Buffer;
  checksum: string;
  ledger?: ReturnType<typeof ledgerParams>;
}

interface LedgerSql {
  round: number;
  mode: LedgerEntry['mode'];
  mechanism: string;
  sampling: LedgerEntry['sampling'];
  sampling_rate: number;
  population: number;
  cohort_size: number;
  survivors: number;
  noise_multiplier: number;
  clip_norm: number;
  event: string;
  epsilon: number;
  delta: number;
  rdp_order: number | null;
  trust: string;
  recorded_at: number;
}

function ledgerParams(e: LedgerEntry) {
  if (typeof e !== 'object' || e === null) throw new CohortError('BAD_INPUT', 'ledger: must be an object');
  const positive = (field: string, x: unknown) => {
    const n = v.finite(field, x);
    if (n <= 0) throw new CohortError('BAD_INPUT', `${field}: must be > 0`);
    return n;
  };
  const epsilon = v.finite('ledger.epsilon', e.epsilon);
  if (epsilon < 0) throw new CohortError('BAD_INPUT', 'ledger.epsilon: must be ≥ 0');
  const noiseMultiplier = v.finite('ledger.noiseMultiplier', e.noiseMultiplier);
  if (noiseMultiplier < 0) throw new CohortError('BAD_INPUT', 'ledger.noiseMultiplier: must be ≥ 0');
  const unitInterval = (field: string, x: unknown, closed: boolean) => {
    const n = positive(field, x);
    if (closed ? n > 1 : n >= 1) throw new CohortError('BAD_INPUT', `${field}: must be ${closed ? '≤' : '<'} 1`);
    return n;
  };
  return {
    mode: v.oneOf('ledger.mode', e.mode, DP_MODES),
    mechanism: v.nonEmptyString('ledger.mechanism', e.mechanism),
    sampling: v.oneOf('ledger.sampling', e.sampling, ['poisson', 'fixed'] as const),
    samplingRate: unitInterval('ledger.samplingRate', e.samplingRate, true),
    population: v.count('ledger.population', e.population),
    cohortSize: v.count('ledger.cohortSize', e.cohortSize),
    survivors: v.count('ledger.survivors', e.survivors),
    noiseMultiplier,
    clipNorm: positive('ledger.clipNorm', e.clipNorm),
    event: v.json('ledger.event', e.event),
    epsilon,
    delta: unitInterval('ledger.delta', e.delta, false),
    rdpOrder: e.rdpOrder === null ? null : v.finite('ledger.rdpOrder', e.rdpOrder),
    trust: v.nonEmptyString('ledger.trust', e.trust),
  };
}

function toLedgerRow(r: LedgerSql): LedgerRow {
  return {
    round: r.round,
    mode: r.mode,
    mechanism: r.mechanism,
    sampling: r.sampling,
    samplingRate: r.sampling_rate,
    population: r.population,
    cohortSize: r.cohort_size,
    survivors: r.survivors,
    noiseMultiplier: r.noise_multiplier,
    clipNorm: r.clip_norm,
    event: JSON.parse(r.event) as unknown,
    epsilon: r.epsilon,
    delta: r.delta,
    rdpOrder: r.rdp_order,
    trust: r.trust,
    recordedAt: r.recorded_at,
  };
}

function roundRecordParams(r: CommitRoundInput['record']) {
  if (typeof r !== 'object' || r === null) throw new CohortError('BAD_INPUT', 'record: must be an object');
  return {
    startedAt: v.timestamp('record.startedAt', r.startedAt),
    endedAt: v.timestamp('record.endedAt', r.endedAt),
    cohortSize: v.count('record.cohortSize', r.cohortSize),
    survivors: v.count('record.survivors', r.survivors),
    dropouts: v.count('record.dropouts', r.dropouts),
    numExamples: v.count('record.numExamples', r.numExamples),
    trainLoss: v.finiteOrNull('record.trainLoss', r.trainLoss),
    trainAccuracy: v.finiteOrNull('record.trainAccuracy', r.trainAccuracy),
    metrics: v.metricsJson('record.metrics', r.metrics),
  };
}
