/**
 * Byzantine-robust aggregation rules over a round's plain updates (rounds without secure aggregation:
 * with SecAgg the coordinator only ever sees the masked sum, so none of these can run — the job config
 * refuses the combination, and norm bounding, `secagg.clipNorm`, stays the defence there).
 *
 *   median        coordinate-wise median. Yin, Chen, Ramchandran, Bartlett 2018, "Byzantine-Robust
 *                 Distributed Learning: Towards Optimal Statistical Rates" (ICML), Definition 1 (median):
 *                 the middle value of each coordinate; for an even count, the mean of the two middle ones.
 *   trimmed-mean  coordinate-wise β-trimmed mean. Yin et al. 2018, Definition 2: per coordinate, drop the
 *                 k = ⌊β n⌋ largest and k smallest values and average the n − 2k left (β ∈ [0, ½)).
 *   krum          Blanchard, El Mhamdi, Guerraoui, Stainer 2017, "Machine Learning with Adversaries:
 *                 Byzantine Tolerant Gradient Descent" (NeurIPS), §4: score(i) = Σ ‖Vᵢ − Vⱼ‖² over the
 *                 n − f − 2 updates closest to Vᵢ; the update with the lowest score is the aggregate.
 *                 Needs n ≥ 2f + 3. Multi-Krum (same paper, §5, "m-Krum"): the mean of the m updates with
 *                 the lowest scores (m = 1 is Krum).
 *   bulyan        El Mhamdi, Guerraoui, Rouault 2018, "The Hidden Vulnerability of Distributed Learning in
 *                 Byzantium" (ICML), §4, Algorithm 1: select θ = n − 2f updates by applying Krum again and
 *                 again to those not yet selected (scores recomputed on the shrinking set), then per
 *                 coordinate average the β = θ − 2f selected values closest to their median. Needs
 *                 n ≥ 4f + 3.
 *
 * All rules are unweighted (a client's example count is its own claim: weighting by it would hand an
 * attacker the aggregate), and all are deterministic: ties in Krum scores go to the earlier update (the
 * order updates arrived in), ties in distance to Bulyan's median go to the smaller value.
 *
 * Memory. None of these streams: each must hold the round's updates, n·d float32 (4·n·d bytes), plus
 * n float64 of scratch per coordinate (median, trimmed mean, Bulyan) and an n×n float64 distance matrix
 * (Krum, Bulyan: 8·n² bytes). Hence a bound on the cohort a robust job accepts (`maxCohort`, at most
 * MAX_ROBUST_COHORT); the mean (`name: 'mean'`) streams in O(d) as before. Time: median and trimmed
 * mean O(d·n log n); Krum and Bulyan O(n²·d) for the distances, Bulyan O(n³) more for its selection.
 *
 * Every number is finite by the time it gets here (clients' updates are range-checked at receipt,
 * |x| ≤ limits.maxUpdateValue ≤ 10¹²): squared distances are summed in float64, at most
 * d·(2·10¹²)² = 4·10²⁴·d, far below 10³⁰⁸, so no client can make a score infinite or NaN.
 */
import { z } from 'zod';
import { CohortError } from '../errors.ts';

/** The largest cohort a robust aggregator holds in memory (n·d float32 values and an n×n matrix). */
export const MAX_ROBUST_COHORT = 1000;

const maxCohort = z.number().int().min(1).max(MAX_ROBUST_COHORT).default(100);
const f = z.number().int().min(0).max(MAX_ROBUST_COHORT);

export const AggregatorConfigSchema = z.discriminatedUnion('name', [
  /** The (example-weighted, or under DP uniformly weighted) mean: FedAvg's streaming sum. */
  z.object({ name: z.literal('mean') }).strict(),
  z.object({ name: z.literal('median'), maxCohort }).strict(),
  z.object({ name: z.literal('trimmed-mean'), beta: z.number().min(0).lt(0.5), maxCohort }).strict(),
  z.object({ name: z.literal('krum'), f, m: z.number().int().min(1).max(MAX_ROBUST_COHORT).default(1), maxCohort }).strict(),
  z.object({ name: z.literal('bulyan'), f, maxCohort }).strict(),
  /** q-FedAvg (shared/fl/qfedavg.ts): fair, not robust; streams like the mean. q = 0 is the unweighted mean. */
  z.object({ name: z.literal('qfedavg'), q: z.number().min(0).max(10).default(1) }).strict(),
]);
export type AggregatorConfig = z.output<typeof AggregatorConfigSchema>;
export type AggregatorConfigInput = z.input<typeof AggregatorConfigSchema>;
export type RobustAggregatorConfig = Exclude<AggregatorConfig, { name: 'mean' | 'qfedavg' }>;

/** The rules that hold the round's updates (not the streaming mean or q-FedAvg). */
export function isRobust(cfg: AggregatorConfig): cfg is RobustAggregatorConfig {
  return cfg.name !== 'mean' && cfg.name !== 'qfedavg';
}

/** The fewest updates a rule accepts (Krum: n ≥ 2f + 3; Bulyan: n ≥ 4f + 3; Multi-Krum also n ≥ m). */
export function minUpdatesFor(cfg: RobustAggregatorConfig): number {
  switch (cfg.name) {
    case 'median':
    case 'trimmed-mean':
      return 1;
    case 'krum':
      return Math.max(2 * cfg.f + 3, cfg.m);
    case 'bulyan':
      return 4 * cfg.f + 3;
  }
}

/** Bytes a rule holds for n updates of dimension d (the updates, scratch, distances). */
export function robustMemoryBytes(cfg: RobustAggregatorConfig, n: number, d: number): number {
  const updates = 4 * n * d;
  const scratch = 8 * n;
  const distances = cfg.name === 'krum' || cfg.name === 'bulyan' ? 8 * n * n : 0;
  return updates + scratch + distances + 4 * d;
}

/** Applies a robust rule to the round's updates (each of length d; not modified). */
export function robustAggregate(updates: readonly Float32Array[], cfg: RobustAggregatorConfig): Float32Array {
  checkUpdates(updates, minUpdatesFor(cfg), cfg.name);
  switch (cfg.name) {
    case 'median':
      return coordinateMedian(updates);
    case 'trimmed-mean':
      return trimmedMean(updates, cfg.beta);
    case 'krum':
      return multiKrum(updates, cfg.f, cfg.m);
    case 'bulyan':
      return bulyan(updates, cfg.f);
  }
}

function checkUpdates(updates: readonly Float32Array[], min: number, rule: string): void {
  if (updates.length < min) {
    throw new CohortError('TOO_FEW_UPDATES', `${rule} needs at least ${min} updates, got ${updates.length}`, { rule, min, n: updates.length });
  }
  const d = updates[0].length;
  for (const u of updates) {
    if (u.length !== d) throw new CohortError('WRONG_LENGTH', `${rule}: updates of lengths ${d} and ${u.length}`, { expected: d, actual: u.length });
  }
}

/** Yin et al. 2018, Definition 1: per coordinate, the median (even n: mean of the two middle values). */
export function coordinateMedian(updates: readonly Float32Array[]): Float32Array {
  checkUpdates(updates, 1, 'median');
  const n = updates.length;
  const d = updates[0].length;
  const out = new Float32Array(d);
  const col = new Float64Array(n);
  const mid = n >> 1;
  for (let j = 0; j < d; j++) {
    for (let i = 0; i < n; i++) col[i] = updates[i][j];
    col.sort();
    out[j] = n % 2 === 1 ? col[mid] : (col[mid - 1] + col[mid]) / 2;
  }
  return out;
}

/** Yin et al. 2018, Definition 2: per coordinate, drop the ⌊βn⌋ largest and smallest, average the rest. */
export function trimmedMean(updates: readonly Float32Array[], beta: number): Float32Array {
  checkUpdates(updates, 1, 'trimmed-mean');
  if (!(beta >= 0 && beta < 0.5)) throw new CohortError('BAD_CONFIG', `trimmed-mean: beta must be in [0, 0.5), got ${beta}`);
  const n = updates.length;
  const d = updates[0].length;
  const k = Math.floor(beta * n); // n − 2k ≥ 1 because β < ½
  const out = new Float32Array(d);
  const col = new Float64Array(n);
  for (let j = 0; j < d; j++) {
    for (let i = 0; i < n; i++) col[i] = updates[i][j];
    col.sort();
    let s = 0;
    for (let i = k; i < n - k; i++) s += col[i];
    out[j] = s / (n - 2 * k);
  }
  return out;
}

/** Squared Euclidean distances between every pair of updates (float64, symmetric, zero diagonal). */
export function pairwiseSquaredDistances(updates: readonly Float32Array[]): Float64Array {
  const n = updates.length;
  const d = updates[0].length;
  const dist = new Float64Array(n * n);
  for (let a = 0; a < n; a++) {
    const ua = updates[a];
    for (let b = a + 1; b < n; b++) {
      const ub = updates[b];
      let s = 0;
      for (let j = 0; j < d; j++) {
        const t = ua[j] - ub[j];
        s += t * t;
      }
      dist[a * n + b] = s;
      dist[b * n + a] = s;
    }
  }
  return dist;
}

/**
 * Krum scores of the updates in `set` (indices into the distance matrix of n updates): for each, the sum
 * of its squared distances to its `neighbours` closest others in the set (Blanchard et al. 2017, §4).
 */
export function krumScores(dist: Float64Array, n: number, set: readonly number[], neighbours: number): Float64Array {
  const scores = new Float64Array(set.length);
  const row = new Float64Array(set.length - 1);
  set.forEach((a, ia) => {
    let k = 0;
    for (const b of set) if (b !== a) row[k++] = dist[a * n + b];
    row.sort();
    let s = 0;
    for (let i = 0; i < neighbours; i++) s += row[i];
    scores[ia] = s;
  });
  return scores;
}

/** Positions of `set` in order of increasing score; equal scores keep their order in `set`. */
function byScore(scores: Float64Array): number[] {
  return Array.from(scores, (_, i) => i).sort((a, b) => scores[a] - scores[b] || a - b);
}

/** Krum (m = 1) and Multi-Krum (m > 1), Blanchard et al. 2017: the mean of the m lowest-scoring updates. */
export function multiKrum(updates: readonly Float32Array[], f: number, m = 1): Float32Array {
  const n = updates.length;
  checkUpdates(updates, Math.max(2 * f + 3, m), m === 1 ? 'krum' : 'multi-krum');
  const dist = pairwiseSquaredDistances(updates);
  const all = Array.from({ length: n }, (_, i) => i);
  const order = byScore(krumScores(dist, n, all, n - f - 2));
  return meanOf(updates, order.slice(0, m));
}

/**
 * Bulyan (El Mhamdi et al. 2018, Algorithm 1) over Krum: θ = n − 2f updates chosen by repeated Krum
 * (each time on the updates not yet chosen, with n' − f − 2 neighbours, at least 1 while n' ≥ 2), then per
 * coordinate the mean of the β = θ − 2f chosen values closest to the chosen values' median.
 */
export function bulyan(updates: readonly Float32Array[], f: number): Float32Array {
  const n = updates.length;
  checkUpdates(updates, 4 * f + 3, 'bulyan');
  const dist = pairwiseSquaredDistances(updates);
  const theta = n - 2 * f;
  const remaining = Array.from({ length: n }, (_, i) => i);
  const chosen: number[] = [];
  while (chosen.length < theta) {
    const neighbours = Math.min(remaining.length - 1, Math.max(1, remaining.length - f - 2));
    const best = remaining.length === 1 ? 0 : byScore(krumScores(dist, n, remaining, neighbours))[0];
    chosen.push(remaining[best]);
    remaining.splice(best, 1);
  }
  const beta = theta - 2 * f;
  const d = updates[0].length;
  const out = new Float32Array(d);
  const col = new Float64Array(theta);
  const mid = theta >> 1;
  for (let j = 0; j < d; j++) {
    for (let i = 0; i < theta; i++) col[i] = updates[chosen[i]][j];
    col.sort();
    const median = theta % 2 === 1 ? col[mid] : (col[mid - 1] + col[mid]) / 2;
    // The β values closest to the median form a window of the sorted column: grow it from the middle,
    // taking the closer neighbour each time (the smaller value on a tie).
    let lo = theta % 2 === 1 ? mid : mid - 1;
    let hi = lo; // window [lo, hi]
    let s = col[lo];
    for (let taken = 1; taken < beta; taken++) {
      const left = lo > 0 ? median - col[lo - 1] : Infinity;
      const right = hi < theta - 1 ? col[hi + 1] - median : Infinity;
      if (left <= right) s += col[--lo];
      else s += col[++hi];
    }
    out[j] = s / beta;
  }
  return out;
}

function meanOf(updates: readonly Float32Array[], picked: readonly number[]): Float32Array {
  const d = updates[0].length;
  const acc = new Float64Array(d);
  for (const i of picked) {
    const u = updates[i];
    for (let j = 0; j < d; j++) acc[j] += u[j];
  }
  const out = new Float32Array(d);
  for (let j = 0; j < d; j++) out[j] = acc[j] / picked.length;
  return out;
}
