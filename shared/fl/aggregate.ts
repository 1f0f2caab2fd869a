/**
 * Streaming weighted aggregation of client updates.
 *
 * The coordinator folds each update into a running sum as it arrives and drops it, so memory is O(d)
 * whatever the cohort size (DESIGN.md §2, step 6). The sum is kept in float64: adding hundreds of
 * float32 vectors in float32 loses low-order bits, and the extra 4 bytes per coordinate are cheap.
 *
 * The weighted mean is the FedAvg estimator of McMahan et al. 2017, "Communication-Efficient Learning
 * of Deep Networks from Decentralized Data", Algorithm 1 (weights n_k / n).
 */
import { CohortError } from '../errors.ts';

export class WeightedSum {
  readonly dim: number;
  private readonly sum: Float64Array;
  private n = 0;
  private total = 0;

  constructor(dim: number) {
    if (!Number.isInteger(dim) || dim <= 0) {
      throw new CohortError('BAD_DIM', `WeightedSum: dimension must be a positive integer, got ${dim}`, { dim });
    }
    this.dim = dim;
    this.sum = new Float64Array(dim);
  }

  /**
   * Adds weight · vector to the running sum. The vector is not retained (callers may reuse the buffer).
   * Its values are not checked here: callers that accept untrusted updates check isAllFinite() first.
   */
  add(vector: Float32Array, weight: number): void {
    if (vector.length !== this.dim) {
      throw new CohortError('WRONG_LENGTH', `WeightedSum: expected length ${this.dim}, got ${vector.length}`, {
        expected: this.dim,
        actual: vector.length,
      });
    }
    if (!Number.isFinite(weight)) {
      throw new CohortError('NON_FINITE', `WeightedSum: weight must be finite, got ${weight}`, { weight });
    }
    if (weight < 0) throw new CohortError('BAD_WEIGHT', `WeightedSum: weight must be ≥ 0, got ${weight}`, { weight });
    const sum = this.sum;
    const d = this.dim;
    for (let i = 0; i < d; i++) sum[i] += weight * vector[i];
    this.n++;
    this.total += weight;
  }

  get count(): number {
    return this.n;
  }

  /** The running Σ wᵢ·vᵢ itself (float64, not a copy: read it, do not keep or modify it). */
  get rawSum(): Float64Array {
    return this.sum;
  }

  get totalWeight(): number {
    return this.total;
  }

  /** sum / totalWeight, rounded to float32. Throws EMPTY when nothing (or only zero weight) was added. */
  mean(): Float32Array<ArrayBuffer> {
    if (this.n === 0 || this.total === 0) {
      throw new CohortError('EMPTY', 'WeightedSum: mean of an empty sum', { count: this.n, totalWeight: this.total });
    }
    return this.scaled(1 / this.total);
  }

  /** sum · factor as float32 (e.g. a fixed-denominator estimator dividing by the expected weight). */
  scaled(factor: number): Float32Array<ArrayBuffer> {
    if (!Number.isFinite(factor)) {
      throw new CohortError('NON_FINITE', `WeightedSum: scale factor must be finite, got ${factor}`, { factor });
    }
    const out = new Float32Array(this.dim);
    const sum = this.sum;
    for (let i = 0; i < out.length; i++) out[i] = sum[i] * factor;
    return out;
  }

  reset(): void {
    this.sum.fill(0);
    this.n = 0;
    this.total = 0;
  }
}

export function isAllFinite(v: Float32Array): boolean {
  for (let i = 0; i < v.length; i++) {
    // NaN and ±Infinity are the only values for which x - x is not 0.
    if (v[i] - v[i] !== 0) return false;
  }
  return true;
}

/** The Euclidean norm has one home, shared/dp/clip.ts; re-exported for aggregation's callers. */
export { l2Norm } from '../dp/clip.ts';
