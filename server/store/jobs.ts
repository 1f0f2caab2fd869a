/**
 * Jobs repository: the `jobs` table. A job's row carries its config (as JSON), its status and the last
 * committed round; that round pointer is checked and advanced only inside the round commit (rounds.ts),
 * under the same write lock as the round row, so it never runs ahead of or behind the checkpoints.
 *
 * Also the one place that turns a missing job into UNKNOWN_JOB, for the other repositories' writes.
 */
import Database from 'better-sqlite3';
import { CohortError } from '../../shared/errors.ts';
import { JOB_STATUSES, type JobRow, type JobStatus } from './types.ts';
import * as v from './validate.ts';

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

function prepare(db: Database.Database) {
  return {
    insert: db.prepare<[string, string, string, number, number]>(
      `INSERT INTO jobs (id, config, config_hash, status, reason, current_round, created_at, updated_at)
       VALUES (?, ?, ?, 'created', NULL, 0, ?, ?)`,
    ),
    get: db.prepare<[string], JobSql>('SELECT * FROM jobs WHERE id = ?'),
    list: db.prepare<[], JobSql>('SELECT * FROM jobs ORDER BY created_at, id'),
    setStatus: db.prepare<[JobStatus, string | null, number, string]>(
      'UPDATE jobs SET status = ?, reason = ?, updated_at = ? WHERE id = ?',
    ),
    currentRound: db.prepare<[string], { current_round: number }>('SELECT current_round FROM jobs WHERE id = ?'),
    advance: db.prepare<[number, number, string]>('UPDATE jobs SET current_round = ?, updated_at = ? WHERE id = ?'),
  };
}

export function isSqliteError(e: unknown, codePrefix: string): boolean {
  return e instanceof Database.SqliteError && e.code.startsWith(codePrefix);
}

export function unknownJob(id: string): CohortError {
  return new CohortError('UNKNOWN_JOB', `no job ${id}`, { jobId: id });
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

export class JobsRepository {
  private readonly st: ReturnType<typeof prepare>;

  constructor(
    db: Database.Database,
    private readonly now: () => number,
  ) {
    this.st = prepare(db);
  }

  create(input: { id: string; config: unknown; configHash: string }): JobRow {
    const id = v.nonEmptyString('id', input.id);
    const config = v.json('config', input.config);
    const hash = v.nonEmptyString('configHash', input.configHash);
    const now = this.now();
    try {
      this.st.insert.run(id, config, hash, now, now);
    } catch (e) {
      if (isSqliteError(e, 'SQLITE_CONSTRAINT')) throw new CohortError('JOB_EXISTS', `job ${id} already exists`, { id });
      throw e;
    }
    return this.require(id);
  }

  get(id: string): JobRow | undefined {
    const row = this.st.get.get(v.nonEmptyString('id', id));
    return row && toJob(row);
  }

  list(): JobRow[] {
    return this.st.list.all().map(toJob);
  }

  setStatus(id: string, status: JobStatus, reason?: string): void {
    v.nonEmptyString('id', id);
    v.oneOf('status', status, JOB_STATUSES);
    if (reason !== undefined && typeof reason !== 'string') v.nonEmptyString('reason', reason);
    const { changes } = this.st.setStatus.run(status, reason ?? null, this.now(), id);
    if (changes === 0) throw unknownJob(id);
  }

  /** Inside a transaction: the job exists and `round` is the one after its last committed round. */
  expectNextRound(jobId: string, round: number): void {
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

  /** Inside the round commit only: `round` becomes the job's last committed round. */
  advance(jobId: string, round: number, now: number): void {
    this.st.advance.run(round, now, jobId);
  }

  /** Runs a write whose foreign key on jobs(id) may fail; maps that failure to UNKNOWN_JOB. */
  withJob(jobId: string, write: () => unknown): void {
    try {
      write();
    } catch (e) {
      if (isSqliteError(e, 'SQLITE_CONSTRAINT_FOREIGNKEY') && !this.get(jobId)) throw unknownJob(jobId);
      throw e;
    }
  }

  private require(id: string): JobRow {
    const job = this.get(id);
    if (!job) throw unknownJob(id);
    return job;
  }
}
