/**
 * Clients repository: the `clients` registry (first/last seen, last reported example count) and the
 * `participation` log (one row per client per round attempt). A round's participation is appended in
 * one transaction, so one fsync however large the cohort.
 */
import type Database from 'better-sqlite3';
import { PARTICIPATION_STATUSES, type ClientRow, type JobClientRow, type ParticipationEntry, type ParticipationStatus, type RoundParticipation } from './types.ts';
import type { JobsRepository } from './jobs.ts';
import * as v from './validate.ts';

interface ClientSql {
  id: string;
  first_seen: number;
  last_seen: number;
  num_examples: number | null;
  rounds_completed: number;
}

function prepare(db: Database.Database) {
  return {
    upsert: db.prepare<[string, number, number, number | null]>(
      `INSERT INTO clients (id, first_seen, last_seen, num_examples) VALUES (?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET
         first_seen = MIN(first_seen, excluded.first_seen),
         last_seen = MAX(last_seen, excluded.last_seen),
         num_examples = COALESCE(excluded.num_examples, num_examples)`,
    ),
    ensure: db.prepare<[string, number, number]>(
      'INSERT INTO clients (id, first_seen, last_seen) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING',
    ),
    insertParticipation: db.prepare<[string, number, string, ParticipationStatus, number]>(
      'INSERT INTO participation (job_id, round, client_id, status, recorded_at) VALUES (?, ?, ?, ?, ?)',
    ),
    list: db.prepare<[], ClientSql>(
      `SELECT c.id, c.first_seen, c.last_seen, c.num_examples,
              (SELECT COUNT(*) FROM (SELECT DISTINCT p.job_id, p.round FROM participation p
                                      WHERE p.client_id = c.id AND p.status = 'completed')) AS rounds_completed
         FROM clients c ORDER BY c.id`,
    ),
    // An attempt's rows are written in one transaction with one recorded_at: the round's newest rows
    // are its last attempt.
    roundParticipation: db.prepare<[{ job: string }], { round: number; completed: number; dropped: number; refused: number; rejected: number }>(
      `SELECT p.round,
              SUM(p.status = 'completed') AS completed, SUM(p.status = 'dropped') AS dropped,
              SUM(p.status = 'refused') AS refused, SUM(p.status = 'rejected') AS rejected
         FROM participation p
         JOIN (SELECT round, MAX(recorded_at) AS at FROM participation WHERE job_id = @job GROUP BY round) last
           ON last.round = p.round AND last.at = p.recorded_at
        WHERE p.job_id = @job
        GROUP BY p.round ORDER BY p.round`,
    ),
    jobClients: db.prepare<[string], ClientSql & { dropped: number; refused: number; rejected: number; last_round: number }>(
      `SELECT c.id, c.first_seen, c.last_seen, c.num_examples,
              COUNT(DISTINCT CASE WHEN p.status = 'completed' THEN p.round END) AS rounds_completed,
              SUM(p.status = 'dropped') AS dropped, SUM(p.status = 'refused') AS refused,
              SUM(p.status = 'rejected') AS rejected, MAX(p.round) AS last_round
         FROM participation p JOIN clients c ON c.id = p.client_id
        WHERE p.job_id = ?
        GROUP BY c.id ORDER BY c.id`,
    ),
  };
}

interface UpsertRow {
  id: string;
  lastSeen: number;
  numExamples: number | null;
}

export class ClientsRepository {
  private readonly st: ReturnType<typeof prepare>;
  private readonly upsertTx: Database.Transaction<(rows: readonly UpsertRow[]) => void>;
  private readonly participationTx: Database.Transaction<
    (jobId: string, round: number, entries: readonly ParticipationEntry[]) => void
  >;

  constructor(
    db: Database.Database,
    private readonly jobs: JobsRepository,
    private readonly now: () => number,
  ) {
    this.st = prepare(db);
    this.upsertTx = db.transaction((rows: readonly UpsertRow[]) => {
      for (const r of rows) this.st.upsert.run(r.id, r.lastSeen, r.lastSeen, r.numExamples);
    });
    this.participationTx = db.transaction((jobId: string, round: number, entries: readonly ParticipationEntry[]) => {
      const now = this.now();
      for (const e of entries) {
        this.st.ensure.run(e.clientId, now, now);
        this.st.insertParticipation.run(jobId, round, e.clientId, e.status, now);
      }
    });
  }

  upsert(clientId: string, info: { numExamples?: number; lastSeen: number }): void {
    this.upsertMany([{ clientId, ...info }]);
  }

  /**
   * Many clients' first/last seen in one transaction: one fsync for the batch instead of one per client
   * (~1.3-2.8 ms each on the 2-core VM, so 10,000 hellos held the event loop for 19-28 s; load bench).
   */
  upsertMany(entries: readonly { clientId: string; numExamples?: number; lastSeen: number }[]): void {
    const rows = entries.map((e) => ({
      id: v.nonEmptyString('clientId', e.clientId),
      lastSeen: v.timestamp('lastSeen', e.lastSeen),
      numExamples: e.numExamples === undefined ? null : v.count('numExamples', e.numExamples),
    }));
    this.upsertTx(rows);
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
    this.jobs.withJob(jobId, () => this.participationTx(jobId, round, entries));
  }

  /** Per round of the job, its last attempt's participation counted by status. */
  roundParticipation(jobId: string): RoundParticipation[] {
    return this.st.roundParticipation.all({ job: v.nonEmptyString('jobId', jobId) });
  }

  /** Every client that took part in an attempt of the job, with its counts there. */
  jobClients(jobId: string): JobClientRow[] {
    return this.st.jobClients.all(v.nonEmptyString('jobId', jobId)).map((r) => ({
      id: r.id,
      firstSeen: r.first_seen,
      lastSeen: r.last_seen,
      numExamples: r.num_examples,
      roundsCompleted: r.rounds_completed,
      dropped: r.dropped,
      refused: r.refused,
      rejected: r.rejected,
      lastRound: r.last_round,
    }));
  }

  list(): ClientRow[] {
    return this.st.list.all().map((r) => ({
      id: r.id,
      firstSeen: r.first_seen,
      lastSeen: r.last_seen,
      numExamples: r.num_examples,
      roundsCompleted: r.rounds_completed,
    }));
  }
}
