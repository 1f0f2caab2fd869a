/**
 * Privacy ledger repository: the `privacy_ledger` table, one row per release of a DP job — each committed
 * round, and each attempt's release to the coordinator, written ahead of it — with what it spent against
 * each audience, the cumulative ε, and the trust assumption in words.
 *
 * It has no write path of its own: `append` is called only from inside the round commit transaction and
 * the attempt-release transaction (rounds.ts). A model whose privacy cost is not recorded is never
 * published (same transaction), and a release to the coordinator is on disk before it is made.
 */
import type Database from 'better-sqlite3';
import { CohortError } from '../../shared/errors.ts';
import { DP_MODES, type LedgerEntry, type LedgerRow } from './types.ts';
import * as v from './validate.ts';

interface LedgerSql {
  seq: number;
  round: number;
  status: LedgerRow['status'];
  attempt: number | null;
  mode: LedgerEntry['mode'];
  mechanism: string;
  sampling: LedgerEntry['sampling'];
  sampling_rate: number;
  population: number;
  cohort_size: number;
  survivors: number;
  noise_multiplier: number;
  clip_norm: number;
  event: string | null;
  coordinator_event: string | null;
  short_draw_probability: number;
  audience: LedgerEntry['audience'];
  epsilon: number;
  epsilon_published: number | null;
  epsilon_coordinator: number | null;
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
      `INSERT INTO privacy_ledger (job_id, seq, round, status, attempt, mode, mechanism, sampling, sampling_rate, population,
                                   cohort_size, survivors, noise_multiplier, clip_norm, event, coordinator_event,
                                   short_draw_probability, audience, epsilon, epsilon_published, epsilon_coordinator,
                                   delta, rdp_order, trust, recorded_at)
       VALUES (@jobId, (SELECT COALESCE(MAX(seq), 0) + 1 FROM privacy_ledger WHERE job_id = @jobId), @round, @status,
               @attempt, @mode, @mechanism, @sampling, @samplingRate, @population, @cohortSize, @survivors,
               @noiseMultiplier, @clipNorm, @event, @coordinatorEvent, @shortDrawProbability, @audience, @epsilon,
               @epsilonPublished, @epsilonCoordinator, @delta, @rdpOrder, @trust, @now)`,
    ),
    list: db.prepare<[string], LedgerSql>('SELECT * FROM privacy_ledger WHERE job_id = ? ORDER BY seq'),
    head: db.prepare<[string], { seq: number | null }>('SELECT MAX(seq) AS seq FROM privacy_ledger WHERE job_id = ?'),
  };
}

export class LedgerRepository {
  private readonly st: ReturnType<typeof prepare>;

  constructor(db: Database.Database) {
    this.st = prepare(db);
  }

  /** Inside the round commit or attempt-release transaction only (see the module comment); `attempt` for the latter. */
  append(jobId: string, round: number, entry: LedgerParams, now: number, attempt?: number): void {
    this.st.insert.run({ jobId, round, ...entry, now, status: attempt === undefined ? 'committed' : 'attempt', attempt: attempt ?? null });
  }

  /** Inside the evaluation-record transaction only (store.recordEvaluation): a DP job's noised evaluation statistics. */
  appendEvaluation(jobId: string, round: number, entry: LedgerParams, now: number): void {
    this.st.insert.run({ jobId, round, ...entry, now, status: 'evaluation', attempt: null });
  }

  /** The privacy ledger of a job, one row per release (committed rounds and attempts' releases to the coordinator), in order. */
  list(jobId: string): LedgerRow[] {
    return this.st.list.all(v.nonEmptyString('jobId', jobId)).map(toLedgerRow);
  }

  /** The sequence number of the job's newest row (0 for none): rows are append-only, so it names the whole ledger. */
  head(jobId: string): number {
    return this.st.head.get(v.nonEmptyString('jobId', jobId))?.seq ?? 0;
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
  const nonNegative = (field: string, x: unknown) => {
    const n = v.finite(field, x);
    if (n < 0) throw new CohortError('BAD_INPUT', `${field}: must be ≥ 0`);
    return n;
  };
  const optionalEpsilon = (field: string, x: unknown) => (x === null ? null : nonNegative(field, x));
  const epsilon = nonNegative('ledger.epsilon', e.epsilon);
  const shortDraw = nonNegative('ledger.shortDrawProbability', e.shortDrawProbability);
  if (shortDraw > 1) throw new CohortError('BAD_INPUT', 'ledger.shortDrawProbability: must be ≤ 1');
  if (e.event === null && e.coordinatorEvent === null) {
    throw new CohortError('BAD_INPUT', 'ledger: a row must record at least one release (event or coordinatorEvent)');
  }
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
    event: e.event === null ? null : v.json('ledger.event', e.event),
    coordinatorEvent: e.coordinatorEvent === null ? null : v.json('ledger.coordinatorEvent', e.coordinatorEvent),
    shortDrawProbability: shortDraw,
    audience: v.oneOf('ledger.audience', e.audience, ['coordinator', 'published'] as const),
    epsilon,
    epsilonPublished: optionalEpsilon('ledger.epsilonPublished', e.epsilonPublished),
    epsilonCoordinator: optionalEpsilon('ledger.epsilonCoordinator', e.epsilonCoordinator),
    delta: unitInterval('ledger.delta', e.delta, false),
    rdpOrder: e.rdpOrder === null ? null : v.finite('ledger.rdpOrder', e.rdpOrder),
    trust: v.nonEmptyString('ledger.trust', e.trust),
  };
}

function toLedgerRow(r: LedgerSql): LedgerRow {
  return {
    seq: r.seq,
    round: r.round,
    status: r.status,
    attempt: r.attempt,
    mode: r.mode,
    mechanism: r.mechanism,
    sampling: r.sampling,
    samplingRate: r.sampling_rate,
    population: r.population,
    cohortSize: r.cohort_size,
    survivors: r.survivors,
    noiseMultiplier: r.noise_multiplier,
    clipNorm: r.clip_norm,
    event: r.event === null ? null : (JSON.parse(r.event) as unknown),
    coordinatorEvent: r.coordinator_event === null ? null : (JSON.parse(r.coordinator_event) as unknown),
    shortDrawProbability: r.short_draw_probability,
    audience: r.audience,
    epsilon: r.epsilon,
    epsilonPublished: r.epsilon_published,
    epsilonCoordinator: r.epsilon_coordinator,
    delta: r.delta,
    rdpOrder: r.rdp_order,
    trust: r.trust,
    recordedAt: r.recorded_at,
  };
}
