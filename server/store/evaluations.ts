/**
 * Evaluations repository: the `evaluations` table, at most one row per (job, round, kind); a later
 * evaluation of the same kind replaces the earlier one. Round 0 is the initial model. The rounds
 * repository joins these rows onto its round rows (federated preferred over server).
 */
import type Database from 'better-sqlite3';
import { EVALUATION_KINDS, type EvaluationRecord } from './types.ts';
import type { JobsRepository } from './jobs.ts';
import * as v from './validate.ts';

interface EvaluationSql {
  round: number;
  kind: EvaluationRecord['kind'];
  loss: number;
  accuracy: number;
  num_examples: number;
  clients: number;
  health: string | null;
}

function prepare(db: Database.Database) {
  return {
    upsert: db.prepare(
      `INSERT INTO evaluations (job_id, round, kind, loss, accuracy, num_examples, clients, health, recorded_at)
       VALUES (@jobId, @round, @kind, @loss, @accuracy, @numExamples, @clients, @health, @now)
       ON CONFLICT (job_id, round, kind) DO UPDATE SET
         loss = excluded.loss, accuracy = excluded.accuracy, num_examples = excluded.num_examples,
         clients = excluded.clients, health = excluded.health, recorded_at = excluded.recorded_at`,
    ),
    list: db.prepare<[string], EvaluationSql>(
      `SELECT round, kind, loss, accuracy, num_examples, clients, health FROM evaluations
        WHERE job_id = ? ORDER BY round, kind`,
    ),
  };
}

export class EvaluationsRepository {
  private readonly st: ReturnType<typeof prepare>;

  constructor(
    db: Database.Database,
    private readonly jobs: JobsRepository,
    private readonly now: () => number,
  ) {
    this.st = prepare(db);
  }

  /** Stores (or replaces) the evaluation of `round`'s model; round 0 is the initial model. */
  record(jobId: string, round: number, ev: EvaluationRecord): void {
    const params = {
      jobId: v.nonEmptyString('jobId', jobId),
      round: v.roundNumber('round', round, 0),
      kind: v.oneOf('kind', ev.kind, EVALUATION_KINDS),
      loss: v.finite('loss', ev.loss),
      accuracy: v.finite('accuracy', ev.accuracy),
      numExamples: v.count('numExamples', ev.numExamples),
      clients: v.count('clients', ev.clients),
      health: ev.health === undefined ? null : JSON.stringify(ev.health),
      now: this.now(),
    };
    this.jobs.withJob(params.jobId, () => this.st.upsert.run(params));
  }

  list(jobId: string): (EvaluationRecord & { round: number })[] {
    return this.st.list.all(v.nonEmptyString('jobId', jobId)).map((r) => ({
      round: r.round,
      kind: r.kind,
      loss: r.loss,
      accuracy: r.accuracy,
      numExamples: r.num_examples,
      clients: r.clients,
      ...(r.health === null ? {} : { health: JSON.parse(r.health) as EvaluationRecord['health'] }),
    }));
  }
}
