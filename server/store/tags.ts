/**
 * Version tags repository: the `version_tags` table (schema v5). Every move of a job's production tag is
 * a row, in order; the job's production version is its last row, so there is one per job by
 * construction and the one before it is what a rollback returns to.
 *
 * A round can be tagged only while its checkpoint exists (else VERSION_PRUNED); the check and the write
 * share one write lock with the round commit's pruning, which never prunes the tagged round's
 * checkpoint (rounds.ts), so a tagged version always has its model.
 */
import type Database from 'better-sqlite3';
import { CohortError } from '../../shared/errors.ts';
import { unknownJob } from './jobs.ts';
import type { VersionTag } from './types.ts';
import * as v from './validate.ts';

interface TagSql {
  job_id: string;
  round: number;
  tag: 'production';
  tagged_at: number;
  actor: string;
  forced: number;
}

/** The round holding job `@job`'s production tag (NULL if none): what checkpoint pruning keeps. */
export const PRODUCTION_ROUND_SQL = `(SELECT round FROM version_tags WHERE job_id = @job AND tag = 'production' ORDER BY seq DESC LIMIT 1)`;

function prepare(db: Database.Database) {
  return {
    jobExists: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM jobs WHERE id = ?'),
    roundExists: db.prepare<[string, number], { one: number }>('SELECT 1 AS one FROM rounds WHERE job_id = ? AND round = ?'),
    checkpointExists: db.prepare<[string, number], { one: number }>('SELECT 1 AS one FROM checkpoints WHERE job_id = ? AND round = ?'),
    insert: db.prepare<[string, number, number, string, number]>(
      `INSERT INTO version_tags (job_id, round, tag, tagged_at, actor, forced) VALUES (?, ?, 'production', ?, ?, ?)`,
    ),
    current: db.prepare<[string], TagSql>(
      `SELECT * FROM version_tags WHERE job_id = ? AND tag = 'production' ORDER BY seq DESC LIMIT 1`,
    ),
    history: db.prepare<[string], TagSql>(`SELECT * FROM version_tags WHERE job_id = ? AND tag = 'production' ORDER BY seq`),
  };
}

function toTag(r: TagSql): VersionTag {
  return { jobId: r.job_id, round: r.round, tag: r.tag, taggedAt: r.tagged_at, actor: r.actor, forced: r.forced === 1 };
}

export class TagsRepository {
  private readonly st: ReturnType<typeof prepare>;
  private readonly setTx: Database.Transaction<(jobId: string, round: number, actor: string, forced: boolean) => TagSql>;

  constructor(
    db: Database.Database,
    private readonly now: () => number,
  ) {
    this.st = prepare(db);
    this.setTx = db.transaction((jobId: string, round: number, actor: string, forced: boolean): TagSql => {
      if (!this.st.jobExists.get(jobId)) throw unknownJob(jobId);
      if (!this.st.roundExists.get(jobId, round)) {
        throw new CohortError('NOT_FOUND', `job ${jobId} has no committed round ${round}`, { jobId, round });
      }
      if (!this.st.checkpointExists.get(jobId, round)) {
        throw new CohortError('VERSION_PRUNED', `job ${jobId}: round ${round}'s checkpoint was pruned; it cannot be tagged`, { jobId, round });
      }
      const current = this.st.current.get(jobId);
      if (current && current.round === round) return current; // already the production version: no move
      this.st.insert.run(jobId, round, this.now(), actor, forced ? 1 : 0);
      return this.st.current.get(jobId)!;
    });
  }

  /**
   * Moves (or sets) the job's production tag to `round`. UNKNOWN_JOB, NOT_FOUND for a round never
   * committed, VERSION_PRUNED for one whose checkpoint is gone. Tagging the round that already holds the
   * tag writes nothing and returns the existing tag.
   */
  setProduction(input: { jobId: string; round: number; actor: string; forced: boolean }): VersionTag {
    if (typeof input !== 'object' || input === null) throw new CohortError('BAD_INPUT', 'tag: must be an object');
    const jobId = v.nonEmptyString('jobId', input.jobId);
    const round = v.roundNumber('round', input.round);
    const actor = v.nonEmptyString('actor', input.actor);
    if (typeof input.forced !== 'boolean') throw new CohortError('BAD_INPUT', 'forced: must be a boolean');
    return toTag(this.setTx.immediate(jobId, round, actor, input.forced));
  }

  production(jobId: string): VersionTag | undefined {
    const row = this.st.current.get(v.nonEmptyString('jobId', jobId));
    return row && toTag(row);
  }

  history(jobId: string): VersionTag[] {
    return this.st.history.all(v.nonEmptyString('jobId', jobId)).map(toTag);
  }
}
