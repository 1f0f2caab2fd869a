/**
 * Evaluation statistics under differential privacy (central mode: the coordinator, trusted as in
 * central DP training, adds the noise before anything is published). The Gaussian mechanism (Dwork &
 * Roth 2014, Thm A.1; accounted by RDP, Mironov 2017) on a *weighted* statistics vector: each field is
 * divided by its largest per-example contribution (count, confusion, bin counts and correct: 1; bin
 * confidence: 2^16; Brier: 2·2^16; NLL: −ln 1e-7 · 2^16), so one example moves at most 7 coordinates by
 * at most 1 each, and a client with at most m examples moves each of the 7 field groups by at most m in
 * L1, hence the whole vector by at most Δ = m·√7 in L2 (add-or-remove one client; twice that under
 * replace-one, which the event's multiplier accounts). The released statistics are the noised vector,
 * unweighted; metrics are computed from them after clamping to [0, …] (post-processing, free).
 */
import { CALIBRATION_BINS, FIXED_POINT, PER_EXAMPLE_MAX, type EvalStats } from './stats.ts';

/** Field groups one example touches (count, confusion, bin count, bin correct, bin confidence, Brier, NLL). */
export const STATS_FIELD_GROUPS = 7;

/** L2 sensitivity of the weighted vector for clients of at most `maxExamples` examples (add or remove one client). */
export function statsSensitivity(maxExamples: number): number {
  return maxExamples * Math.sqrt(STATS_FIELD_GROUPS);
}

function weights(K: number): Float64Array {
  const w: number[] = [1, ...new Array<number>(K * K).fill(1), ...new Array<number>(2 * CALIBRATION_BINS).fill(1)];
  w.push(...new Array<number>(CALIBRATION_BINS).fill(1 / PER_EXAMPLE_MAX.confidence), 1 / PER_EXAMPLE_MAX.brier, 1 / PER_EXAMPLE_MAX.nll);
  return Float64Array.from(w);
}

/** The weighted vector of `s` (what the noise is added to). */
export function weightedStats(s: EvalStats): Float64Array {
  const raw = [s.count, ...s.confusion, ...s.binCount, ...s.binCorrect, ...s.binConfidence, s.brier, s.nll];
  const w = weights(s.numClasses);
  return Float64Array.from(raw, (x, i) => x * w[i]);
}

/**
 * Statistics back from a (noised) weighted vector: unweighted, rounded, clamped at 0; bin correct
 * clamped to its bin count and bin confidence to the bin's range, so `metricsOf` stays meaningful.
 */
export function statsFromWeighted(v: Float64Array, K: number): EvalStats {
  const w = weights(K);
  const x = Array.from(v, (y, i) => Math.max(0, Math.round(y / w[i])));
  let at = 0;
  const take = (n: number) => x.slice(at, (at += n));
  const count = take(1)[0];
  const confusion = take(K * K);
  const binCount = take(CALIBRATION_BINS);
  const binCorrect = take(CALIBRATION_BINS).map((c, m) => Math.min(c, binCount[m]));
  const binConfidence = take(CALIBRATION_BINS).map((c, m) =>
    Math.min(Math.max(c, Math.floor((m * FIXED_POINT) / CALIBRATION_BINS) * binCount[m]), Math.ceil(((m + 1) * FIXED_POINT) / CALIBRATION_BINS) * binCount[m]),
  );
  const [brier, nll] = take(2);
  void count; // the noised count is released too, but the metrics use one total (so accuracy and the rates agree):
  const total = confusion.reduce((a, b) => a + b, 0);
  return { numClasses: K, count: total, confusion, binCount, binCorrect, binConfidence, brier, nll };
}
