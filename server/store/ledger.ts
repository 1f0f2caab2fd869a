/**
 * Privacy ledger repository: the `privacy_ledger` table, one row per committed round of a DP job (what
 * the round spent, the cumulative ε, and the trust assumption in words).
 *
 * It has no write path of its own: `append` is called only from inside the round commit transaction
 * (rounds.ts), with the round row and its checkpoint. A model whose privacy cost is not recorded is never
 * published: same transaction.
 */
import type Database from 'better-sqlite3';
import { CohortError } from '../../shared/errors.ts';
import { DP_MODES, type LedgerEntry, type LedgerRow } from './types.ts';
import * as v from './validate.ts';

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

/** A validated ledger entry, ready to bind (the event serialised as JSON). */
export type LedgerParams = ReturnType<typeof ledgerParams>;

function prepare(db: Database.Database) {
  return {
    insert: db.prepare(
      `INSERT INTO privacy_ledger (job_id, round, mode, mechanism, sampling, sampling_rate, population, cohort_size,
                                   survivors, noise_multiplier, clip_norm, event, epsilon, delta, rdp_order, trust,
                                   recorded_at)
       VALUES (@jobId, @round, @mode, @mechanism, @sampling, @samplingRate, @population, @cohortSize, @survivors,
               @noiseMultiplier, @clipNorm, @event, @epsilon, @delta, @rdpOrder, @trust, @now)`,
    ),
    list: db.prepare<[string], LedgerSql>('SELECT * FROM privacy_ledger WHERE job_id = ? ORDER BY round'),
  };
}

export class LedgerRepository {
  private readonly st: ReturnType<typeof prepare>;

  constructor(db: Database.Database) {
    this.st = prepare(db);
  }

  /** Inside the round commit transaction only (see the module comment). */
  append(jobId: string, round: number, entry: LedgerParams, now: number): void {
    this.st.insert.run({ jobId, round, ...entry, now });
  }

  /** The privacy ledger of a job, one row per committed DP round, ascending. */
  list(jobId: string): LedgerRow[] {
    return this.st.list.all(v.nonEmptyString('jobId', jobId)).map(toLedgerRow);
  }
}

/** Checks a ledger entry before anything is written; a bad field is BAD_INPUT. */
export function ledgerParams(e: LedgerEntry) {
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
