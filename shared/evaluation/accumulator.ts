/**
 * A client's side of a health request: fed batch by batch with the model's class probabilities, the
 * true labels and the raw features, it builds the additive report (`ClientHealthReport`).
 *
 * Temperature scaling (Guo, Pleiss, Sun, Weinberger, ICML 2017, §4.2) divides the logits z by T before
 * the softmax. The model's output is already a softmax p = softmax(z), and ln p = z − logsumexp(z)
 * differs from z by a constant per example, which the softmax cancels: softmax(z / T) = p^(1/T) / Σ p^(1/T).
 * So a client computes the scaled probabilities from p alone, for the request's applied temperature and
 * for each candidate T whose NLL sum it reports (probabilities floored at MIN_PROBABILITY first).
 */
import { addToSketch, bandMeans, emptySketch, type DriftSketch } from './drift.ts';
import type { ClientHealthReport, HealthRequest } from './schema.ts';
import { addPredictions, emptyStats, FIXED_POINT, MIN_PROBABILITY, type EvalStats } from './stats.ts';

/** softmax(ln p / T) for each row of K probabilities, into `out`. */
export function temperatureScale(probs: ArrayLike<number>, K: number, T: number, out = new Float64Array(probs.length)): Float64Array {
  const inv = 1 / T;
  for (let base = 0; base < probs.length; base += K) {
    let max = -Infinity;
    for (let k = 0; k < K; k++) {
      const l = Math.log(Math.max(MIN_PROBABILITY, probs[base + k])) * inv;
      out[base + k] = l;
      if (l > max) max = l;
    }
    let sum = 0;
    for (let k = 0; k < K; k++) sum += out[base + k] = Math.exp(out[base + k] - max);
    for (let k = 0; k < K; k++) out[base + k] /= sum;
  }
  return out;
}

export class HealthAccumulator {
  readonly stats: EvalStats;
  /** The statistics at the request's applied temperature (the version's calibrated T), if it sets one. */
  readonly calibrated?: EvalStats;
  private readonly temperatureNll: number[];
  private readonly sketch?: DriftSketch;

  constructor(
    readonly numClasses: number,
    private readonly request: HealthRequest,
    /** Values per example (the feature shape's product), for the drift sketch's band means. */
    private readonly featureLength: number,
  ) {
    this.stats = emptyStats(numClasses);
    if (request.temperature !== undefined) this.calibrated = emptyStats(numClasses);
    this.temperatureNll = (request.temperatures ?? []).map(() => 0);
    if (request.drift) this.sketch = emptySketch(numClasses, { features: request.drift.bands, bins: request.drift.bins, lo: request.drift.lo, hi: request.drift.hi });
  }

  /** One batch: rows × K probabilities, the rows' labels, and their raw features (rows × featureLength). */
  add(probs: ArrayLike<number>, labels: ArrayLike<number>, features?: ArrayLike<number>): void {
    const K = this.numClasses;
    const room = (this.request.maxExamples ?? Infinity) - this.stats.count;
    if (room <= 0) return;
    if (labels.length > room) {
      // A DP evaluation's statistics count at most maxExamples examples (the sensitivity bound).
      const rows = room;
      return this.add(Array.prototype.slice.call(probs, 0, rows * K), Array.prototype.slice.call(labels, 0, rows), features && Array.prototype.slice.call(features, 0, rows * this.featureLength));
    }
    addPredictions(this.stats, probs, labels);
    if (this.calibrated) addPredictions(this.calibrated, temperatureScale(probs, K, this.request.temperature!), labels);
    (this.request.temperatures ?? []).forEach((t, i) => {
      const scaled = temperatureScale(probs, K, t);
      for (let r = 0; r < labels.length; r++) {
        this.temperatureNll[i] += Math.round(-Math.log(Math.max(MIN_PROBABILITY, scaled[r * K + labels[r]])) * FIXED_POINT);
      }
    });
    if (this.sketch && this.request.drift && features) {
      const b = this.request.drift;
      addToSketch(this.sketch, bandMeans(features, this.featureLength, b.bands), labels, { features: b.bands, bins: b.bins, lo: b.lo, hi: b.hi });
    }
  }

  report(): ClientHealthReport {
    return {
      stats: this.stats,
      ...(this.calibrated ? { calibrated: this.calibrated } : {}),
      ...(this.request.temperatures ? { temperatureNll: this.temperatureNll } : {}),
      ...(this.sketch ? { drift: this.sketch } : {}),
    };
  }
}
