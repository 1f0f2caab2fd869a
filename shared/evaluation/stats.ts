/**
 * Evaluation as additive statistics. A client never reports an opinion ("my accuracy is 0.91"): it
 * reports sums over its held-out examples — the confusion matrix, the top-label confidence histogram of
 * 15 equal-width bins, and the Brier and negative log-likelihood sums — and every metric is computed
 * from the sums of those sums (`metricsOf`). So the metrics of a cohort are exactly the metrics of its
 * pooled data, whatever the split, and the statistics can travel through SecAgg (an integer vector whose
 * sum is all the coordinator learns, see secagg-words.ts) or take DP noise like any other sum.
 *
 * Real-valued per-example quantities (top-label confidence, Brier term, NLL) are quantised to integers
 * in units of 2^-16 before summing (`FIXED_POINT`), so every sum is an integer, exact in float64 and
 * independent of summation order: "summed statistics give exactly the pooled metrics" holds bit for bit,
 * not to a tolerance.
 *
 * - ECE: expected calibration error, top-label, M = 15 equal-width bins B_m = ((m−1)/M, m/M]:
 *   ECE = Σ_m |B_m|/n · |acc(B_m) − conf(B_m)| (Naeini, Cooper, Hauskrecht, AAAI 2015; Guo, Pleiss,
 *   Sun, Weinberger, ICML 2017, §2 eq. 3). The per-bin accuracy and confidence are the reliability diagram.
 * - Brier score: (1/n) Σ_i Σ_k (p_ik − y_ik)² (Brier 1950), the multi-class form, in [0, 2].
 * - NLL: (1/n) Σ_i −ln p_i,y_i, with p clamped below at `MIN_PROBABILITY` so one confident mistake
 *   cannot make a sum infinite (each term ≤ −ln 1e-7 ≈ 16.1).
 */

/** Equal-width confidence bins of the top-label ECE (Guo et al. 2017 use M = 15). */
export const CALIBRATION_BINS = 15;
/** Fixed-point scale of the real-valued sums: one unit is 2^-16. */
export const FIXED_POINT = 2 ** 16;
/** Probabilities below this are taken as this in the NLL (bounds each term by −ln 1e-7 ≈ 16.12). */
export const MIN_PROBABILITY = 1e-7;
/** The largest class count whose confusion matrix a client may report (100² counts). */
export const MAX_EVAL_CLASSES = 100;

/** One client's (or a cohort's) evaluation statistics: non-negative integers, all of them sums. */
export interface EvalStats {
  numClasses: number;
  /** Examples counted. */
  count: number;
  /** numClasses × numClasses, row-major: confusion[t · K + p] = examples of true class t predicted p. */
  confusion: number[];
  /** Examples whose top-label confidence falls in each bin. */
  binCount: number[];
  /** Of those, correctly predicted. */
  binCorrect: number[];
  /** Σ top-label confidence in each bin, in fixed-point units (2^-16). */
  binConfidence: number[];
  /** Σ Brier terms, fixed-point. */
  brier: number;
  /** Σ −ln p_true (clamped), fixed-point. */
  nll: number;
}

export interface ClassMetrics {
  /** Examples of this class (row sum). */
  support: number;
  /** null when the class was never predicted (0/0). */
  precision: number | null;
  /** null when the class has no examples. */
  recall: number | null;
  f1: number | null;
}

export interface ReliabilityBin {
  /** The bin's interval (lo, hi]. */
  lo: number;
  hi: number;
  count: number;
  /** Mean top-label confidence and accuracy of the bin; null when empty. */
  confidence: number | null;
  accuracy: number | null;
}

export interface EvalMetrics {
  count: number;
  accuracy: number;
  /** Top-label expected calibration error, 15 bins. */
  ece: number;
  brier: number;
  nll: number;
  perClass: ClassMetrics[];
  /** Macro-averaged F1 over classes whose F1 is defined. */
  macroF1: number | null;
  reliability: ReliabilityBin[];
}

export function emptyStats(numClasses: number): EvalStats {
  if (!Number.isInteger(numClasses) || numClasses < 1 || numClasses > MAX_EVAL_CLASSES) {
    throw new RangeError(`evaluation statistics: numClasses must be an integer in [1, ${MAX_EVAL_CLASSES}], got ${numClasses}`);
  }
  return {
    numClasses,
    count: 0,
    confusion: new Array<number>(numClasses * numClasses).fill(0),
    binCount: new Array<number>(CALIBRATION_BINS).fill(0),
    binCorrect: new Array<number>(CALIBRATION_BINS).fill(0),
    binConfidence: new Array<number>(CALIBRATION_BINS).fill(0),
    brier: 0,
    nll: 0,
  };
}

/**
 * The bin of a top-label confidence c ∈ (0, 1]: the m (0-based) with m/M < c ≤ (m+1)/M. Binned from c
 * itself, not from its quantised value, so an example on an edge lands where a float64 reference puts it.
 */
export function binOf(c: number): number {
  const m = Math.ceil(c * CALIBRATION_BINS) - 1;
  return Math.min(CALIBRATION_BINS - 1, Math.max(0, m));
}

/**
 * Adds a batch of predictions to `stats` (in place): `probs` is rows × K class probabilities (softmax
 * outputs), `labels` the true classes. The predicted class is the first arg max.
 */
export function addPredictions(stats: EvalStats, probs: ArrayLike<number>, labels: ArrayLike<number>): EvalStats {
  const K = stats.numClasses;
  const rows = labels.length;
  if (probs.length !== rows * K) throw new RangeError(`addPredictions: ${probs.length} probabilities for ${rows} rows of ${K} classes`);
  for (let r = 0; r < rows; r++) {
    const y = labels[r];
    if (!Number.isInteger(y) || y < 0 || y >= K) throw new RangeError(`addPredictions: label ${y} outside [0, ${K})`);
    const base = r * K;
    let top = 0;
    let pTop = -Infinity;
    let brier = 0;
    for (let k = 0; k < K; k++) {
      const p = clampProbability(probs[base + k]);
      if (p > pTop) {
        pTop = p;
        top = k;
      }
      const d = p - (k === y ? 1 : 0);
      brier += d * d;
    }
    const q = Math.max(1, Math.round(pTop * FIXED_POINT));
    const bin = binOf(pTop);
    stats.count++;
    stats.confusion[y * K + top]++;
    stats.binCount[bin]++;
    stats.binConfidence[bin] += q;
    if (top === y) stats.binCorrect[bin]++;
    stats.brier += Math.round(brier * FIXED_POINT);
    stats.nll += Math.round(-Math.log(Math.max(MIN_PROBABILITY, clampProbability(probs[base + y]))) * FIXED_POINT);
  }
  return stats;
}

function clampProbability(p: number): number {
  return Number.isFinite(p) ? Math.min(1, Math.max(0, p)) : 0;
}

/** a + b into `into` (default: a fresh copy of a). Both must have the same class count. */
export function addStats(a: EvalStats, b: EvalStats, into: EvalStats = cloneStats(a)): EvalStats {
  if (a.numClasses !== b.numClasses) throw new RangeError(`addStats: ${a.numClasses} classes and ${b.numClasses} classes`);
  if (into !== a) copyInto(into, a);
  into.count += b.count;
  for (let i = 0; i < b.confusion.length; i++) into.confusion[i] += b.confusion[i];
  for (let m = 0; m < CALIBRATION_BINS; m++) {
    into.binCount[m] += b.binCount[m];
    into.binCorrect[m] += b.binCorrect[m];
    into.binConfidence[m] += b.binConfidence[m];
  }
  into.brier += b.brier;
  into.nll += b.nll;
  return into;
}

export function cloneStats(s: EvalStats): EvalStats {
  return { ...s, confusion: [...s.confusion], binCount: [...s.binCount], binCorrect: [...s.binCorrect], binConfidence: [...s.binConfidence] };
}

function copyInto(into: EvalStats, a: EvalStats): void {
  into.numClasses = a.numClasses;
  into.count = a.count;
  into.confusion = [...a.confusion];
  into.binCount = [...a.binCount];
  into.binCorrect = [...a.binCorrect];
  into.binConfidence = [...a.binConfidence];
  into.brier = a.brier;
  into.nll = a.nll;
}

/** Every metric, from summed statistics only. Undefined for an empty evaluation (count 0). */
export function metricsOf(s: EvalStats): EvalMetrics | undefined {
  if (s.count <= 0) return undefined;
  const K = s.numClasses;
  const n = s.count;
  let correct = 0;
  const perClass: ClassMetrics[] = [];
  for (let k = 0; k < K; k++) {
    const tp = s.confusion[k * K + k];
    correct += tp;
    let support = 0;
    let predicted = 0;
    for (let j = 0; j < K; j++) {
      support += s.confusion[k * K + j];
      predicted += s.confusion[j * K + k];
    }
    const precision = predicted > 0 ? tp / predicted : null;
    const recall = support > 0 ? tp / support : null;
    const f1 = precision === null || recall === null ? null : precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    perClass.push({ support, precision, recall, f1 });
  }
  const f1s = perClass.map((c) => c.f1).filter((f): f is number => f !== null);
  let ece = 0;
  const reliability: ReliabilityBin[] = [];
  for (let m = 0; m < CALIBRATION_BINS; m++) {
    const count = s.binCount[m];
    const conf = s.binConfidence[m] / FIXED_POINT;
    // |B_m|/n · |acc − conf| = |correct_m − Σconf_m| / n (Guo et al. 2017 eq. 3)
    ece += Math.abs(s.binCorrect[m] - conf);
    reliability.push({
      lo: m / CALIBRATION_BINS,
      hi: (m + 1) / CALIBRATION_BINS,
      count,
      confidence: count > 0 ? conf / count : null,
      accuracy: count > 0 ? s.binCorrect[m] / count : null,
    });
  }
  return {
    count: n,
    accuracy: correct / n,
    ece: ece / n,
    brier: s.brier / FIXED_POINT / n,
    nll: s.nll / FIXED_POINT / n,
    perClass,
    macroF1: f1s.length ? f1s.reduce((a, b) => a + b, 0) / f1s.length : null,
    reliability,
  };
}

/** Examples per true class: the label histogram (the confusion matrix's row sums). */
export function labelHistogram(s: EvalStats): number[] {
  const K = s.numClasses;
  const out = new Array<number>(K).fill(0);
  for (let t = 0; t < K; t++) for (let p = 0; p < K; p++) out[t] += s.confusion[t * K + p];
  return out;
}

/** Per-example bounds of the fixed-point sums (used by the schema and the range checks). */
export const PER_EXAMPLE_MAX = {
  confidence: FIXED_POINT,
  brier: 2 * FIXED_POINT,
  nll: Math.ceil(-Math.log(MIN_PROBABILITY) * FIXED_POINT),
} as const;

/**
 * Why `s` cannot be one client's honest statistics for `count` examples, or undefined. Checks the
 * internal consistency every honest report has: counts sum to `count`, each bin's correct ≤ count, each
 * bin's confidence sum within the bin's interval times its count (±1 unit of rounding per example),
 * Brier and NLL sums within their per-example bounds. (Consistent lies remain possible: statistics are
 * bounded, not verified — a client can always evaluate on other data.)
 */
export function inconsistency(s: EvalStats): string | undefined {
  const n = s.count;
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  if (sum(s.confusion) !== n) return `confusion matrix sums to ${sum(s.confusion)}, not count ${n}`;
  if (sum(s.binCount) !== n) return `calibration bins count ${sum(s.binCount)} examples, not count ${n}`;
  let correct = 0;
  for (let k = 0; k < s.numClasses; k++) correct += s.confusion[k * s.numClasses + k];
  if (sum(s.binCorrect) !== correct) return `calibration bins count ${sum(s.binCorrect)} correct, the confusion matrix ${correct}`;
  for (let m = 0; m < CALIBRATION_BINS; m++) {
    const c = s.binCount[m];
    if (s.binCorrect[m] > c) return `calibration bin ${m} has ${s.binCorrect[m]} correct of ${c}`;
    const lo = Math.floor((m * FIXED_POINT) / CALIBRATION_BINS) * c;
    const hi = Math.ceil(((m + 1) * FIXED_POINT) / CALIBRATION_BINS) * c;
    if (s.binConfidence[m] < lo || s.binConfidence[m] > hi) return `calibration bin ${m}: confidence sum ${s.binConfidence[m]} outside [${lo}, ${hi}] for ${c} examples`;
  }
  if (s.brier > PER_EXAMPLE_MAX.brier * n) return `Brier sum ${s.brier} above 2 per example`;
  if (s.nll > PER_EXAMPLE_MAX.nll * n) return `NLL sum ${s.nll} above −ln ${MIN_PROBABILITY} per example`;
  return undefined;
}
