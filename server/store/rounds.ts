/**
 * Rounds repository: committed `rounds`, their `checkpoints`, and the `round_attempts` that did not
 * commit. The round commit lives here.
 *
 * Durability: a round commit (round row, checkpoint, privacy-ledger row, job's current round, pruning of
 * old checkpoints) is one BEGIN IMMEDIATE transaction, fsynced before commit() returns (WAL with
 * synchronous=FULL, set by the facade): after a crash either all of it is there or none. The ledger row
 * is written in that same transaction, so a model whose privacy cost is not recorded is never published.
 * The ROUND_ORDER check runs under the same write lock as the writes. Pruning keeps the newest
 * `keepCheckpoints` checkpoints and, beyond them, the checkpoint of the round holding the job's production
 * tag (tags.ts): a tagged version is never pruned, only untagged ones.
 */
import type Database from 'better-sqlite3';
import { CohortError } from '../../shared/errors.ts';
import { isAllFinite } from '../../shared/fl/aggregate.ts';
import { blobToBytes, blobToFloat32, bytesToBlob, float32ToBlob } from './codec.ts';
import type { JobsRepository } from './jobs.ts';
import { ledgerParams, type LedgerParams, type LedgerRepository } from './ledger.ts';
import { PRODUCTION_ROUND_SQL } from './tags.ts';
import type {
  AbortedRoundInput,
  AttemptReleaseInput,
  Checkpoint,
  CommitRoundInput,
  EvaluationRecord,
  RoundAttemptRow,
  RoundRow,
  StoreOptions,
} from './types.ts';
import * as v from './validate.ts';

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

function prepare(db: Database.Database) {
  return {
    insertRound: db.prepare(
      `INSERT INTO rounds (job_id, round, started_at, ended_at, cohort_size, survivors, dropouts, num_examples,
                           train_loss, train_accuracy, metrics, committed_at)
       VALUES (@jobId, @round, @startedAt, @endedAt, @cohortSize, @survivors, @dropouts, @numExamples,
               @trainLoss, @trainAccuracy, @metrics, @now)`,
    ),
    listRounds: db.prepare<[string], RoundSql>(ROUND_SELECT),
    insertCheckpoint: db.prepare<[string, number, Buffer, Buffer, string, number]>(
      `INSERT INTO checkpoints (job_id, round, weights, optimizer_state, checksum, created_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    // Keeps the newest `keep` checkpoints and the one of the round holding the production tag (tags.ts).
    pruneCheckpoints: db.prepare<[{ job: string; keep: number }]>(
      `DELETE FROM checkpoints WHERE job_id = @job
          AND round NOT IN (SELECT round FROM checkpoints WHERE job_id = @job ORDER BY round DESC LIMIT @keep)
          AND round IS NOT ${PRODUCTION_ROUND_SQL}`,
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
  };
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
  ledger?: LedgerParams;
  keep?: number;
}

export interface RoundsDeps {
  jobs: JobsRepository;
  ledger: LedgerRepository;
  now: () => number;
  /** How many of the newest checkpoints to keep per job, unless a commit names its job's own. */
  keepCheckpoints: number;
  failpoint?: StoreOptions['failpoint'];
}

export class RoundsRepository {
  private readonly st: ReturnType<typeof prepare>;
  private readonly jobs: JobsRepository;
  private readonly now: () => number;
  private readonly commitTx: Database.Transaction<(p: CommitParams) => void>;
  private readonly abortTx: Database.Transaction<(p: AttemptParams) => void>;
  private readonly releaseTx: Database.Transaction<(jobId: string, round: number, entry: LedgerParams) => number>;

  constructor(db: Database.Database, deps: RoundsDeps) {
    this.st = prepare(db);
    this.jobs = deps.jobs;
    this.now = deps.now;
    const { ledger, keepCheckpoints, failpoint } = deps;
    // Transactions are built once, like the statements. Writers use BEGIN IMMEDIATE (.immediate below)
    // so the ROUND_ORDER check and the writes happen under one write lock.
    this.commitTx = db.transaction((p: CommitParams) => {
      this.jobs.expectNextRound(p.row.jobId, p.row.round);
      const now = this.now();
      this.st.insertRound.run({ ...p.row, now });
      this.st.insertCheckpoint.run(p.row.jobId, p.row.round, p.weights, p.state, p.checksum, now);
      if (p.ledger) ledger.append(p.row.jobId, p.row.round, p.ledger, now);
      this.jobs.advance(p.row.jobId, p.row.round, now);
      this.st.pruneCheckpoints.run({ job: p.row.jobId, keep: p.keep ?? keepCheckpoints });
      failpoint?.('commit:in-transaction', p.row.round);
    });
    this.abortTx = db.transaction((p: AttemptParams) => {
      this.jobs.expectNextRound(p.jobId, p.round);
      const attempt = (this.st.nextAttempt.get(p.jobId, p.round) as { next: number }).next;
      this.st.insertAttempt.run({ ...p, attempt });
    });
    this.releaseTx = db.transaction((jobId: string, round: number, entry: LedgerParams): number => {
      this.jobs.expectNextRound(jobId, round);
      // The attempt in flight: the one after the aborted ones (recordAborted gives it the same number).
      const attempt = (this.st.nextAttempt.get(jobId, round) as { next: number }).next;
      ledger.append(jobId, round, entry, this.now(), attempt);
      return attempt;
    });
  }

  /**
   * Commits round `round` of a job: the round row, its checkpoint, its ledger row (DP jobs), the job's
   * current round, and pruning of old checkpoints, in one fsynced transaction. Every input is checked
   * before the transaction begins. Throws ROUND_ORDER unless round = currentRound + 1.
   */
  commit(input: CommitRoundInput): void {
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
    const keep = input.keepCheckpoints === undefined ? undefined : v.roundNumber('keepCheckpoints', input.keepCheckpoints);
    this.commitTx.immediate({ row, weights, state, checksum, ledger, ...(keep === undefined ? {} : { keep }) });
  }

  /** Records an attempt at round `round` that did not commit; current_round does not move. */
  recordAborted(input: AbortedRoundInput): void {
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

  /**
   * Writes the ledger row of a release the attempt in flight is about to make to the coordinator, before
   * it makes it (fsynced, like a commit); returns the attempt's number. Throws ROUND_ORDER unless `round`
   * is the job's next round.
   */
  recordAttemptRelease(input: AttemptReleaseInput): number {
    const jobId = v.nonEmptyString('jobId', input.jobId);
    const round = v.roundNumber('round', input.round);
    return this.releaseTx.immediate(jobId, round, ledgerParams(input.ledger));
  }

  listAttempts(jobId: string): RoundAttemptRow[] {
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

  /** Committed rounds, ascending. */
  list(jobId: string): RoundRow[] {
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
