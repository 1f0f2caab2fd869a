/**
 * Drift from summed histograms: a window's label histogram and fixed-bin feature histograms (counts,
 * so they add across clients and through SecAgg) compared with the reference window's.
 *
 * - PSI, population stability index: Σ_i (c_i − r_i) · ln(c_i / r_i) over bin proportions (Siddiqi,
 *   "Credit Risk Scorecards", 2006; Yurdakul 2018 for its distribution). Empty bins are smoothed to
 *   `EPSILON` so the index stays finite. Rule of thumb: < 0.1 stable, 0.1–0.25 moderate, > 0.25 shift.
 * - Jensen–Shannon divergence (Lin, IEEE Trans. Inf. Theory 1991), base 2, so it lies in [0, 1]:
 *   JS = ½ KL(r ‖ m) + ½ KL(c ‖ m), m = ½ (r + c).
 * - Features: fixed bins over a declared [lo, hi] (values outside fall in the end bins), per feature;
 *   for images, per band of rows (the mean intensity of each horizontal band of the image, `bandMeans`):
 *   a low-dimensional projection that rotation or a change of device visibly moves.
 */

export const EPSILON = 1e-4;

function proportions(h: readonly number[]): number[] {
  const total = h.reduce((a, b) => a + b, 0);
  if (!(total > 0)) throw new RangeError('drift: an empty histogram has no distribution');
  return h.map((x) => x / total);
}

function check(ref: readonly number[], cur: readonly number[]): void {
  if (ref.length !== cur.length || ref.length === 0) throw new RangeError(`drift: histograms of ${ref.length} and ${cur.length} bins`);
}

export function psi(reference: readonly number[], current: readonly number[], epsilon = EPSILON): number {
  check(reference, current);
  const r = proportions(reference).map((p) => Math.max(p, epsilon));
  const c = proportions(current).map((p) => Math.max(p, epsilon));
  let sum = 0;
  for (let i = 0; i < r.length; i++) sum += (c[i] - r[i]) * Math.log(c[i] / r[i]);
  return sum;
}

export function jsDivergence(reference: readonly number[], current: readonly number[]): number {
  check(reference, current);
  const r = proportions(reference);
  const c = proportions(current);
  const kl = (p: number[], m: number[]) => p.reduce((a, pi, i) => (pi > 0 ? a + pi * Math.log2(pi / m[i]) : a), 0);
  const m = r.map((ri, i) => (ri + c[i]) / 2);
  return Math.max(0, 0.5 * kl(r, m) + 0.5 * kl(c, m));
}

/** A window's summary: label counts and, per feature, fixed-bin counts. All additive. */
export interface DriftSketch {
  labels: number[];
  features: number[][];
}

export interface FeatureBinning {
  /** Features per example (after projection). */
  features: number;
  bins: number;
  lo: number;
  hi: number;
}

export function emptySketch(numClasses: number, binning: FeatureBinning): DriftSketch {
  return { labels: new Array<number>(numClasses).fill(0), features: Array.from({ length: binning.features }, () => new Array<number>(binning.bins).fill(0)) };
}

/** The bin of x in `bins` equal bins over [lo, hi]; outside values go to the end bins; NaN to the first. */
export function featureBin(x: number, b: FeatureBinning): number {
  if (!(x > b.lo)) return 0;
  if (x >= b.hi) return b.bins - 1;
  return Math.min(b.bins - 1, Math.floor(((x - b.lo) / (b.hi - b.lo)) * b.bins));
}

/** Adds examples (rows × binning.features values, already projected) and their labels to a sketch, in place. */
export function addToSketch(sketch: DriftSketch, rows: ArrayLike<number>, labels: ArrayLike<number>, b: FeatureBinning): DriftSketch {
  for (let r = 0; r < labels.length; r++) {
    const y = labels[r];
    if (Number.isInteger(y) && y >= 0 && y < sketch.labels.length) sketch.labels[y]++;
    for (let f = 0; f < b.features; f++) sketch.features[f][featureBin(rows[r * b.features + f], b)]++;
  }
  return sketch;
}

export function addSketches(a: DriftSketch, b: DriftSketch): DriftSketch {
  if (a.labels.length !== b.labels.length || a.features.length !== b.features.length) throw new RangeError('drift: sketches of different shapes');
  return { labels: a.labels.map((x, i) => x + b.labels[i]), features: a.features.map((h, f) => h.map((x, i) => x + b.features[f][i])) };
}

/** Mean of each of `bands` contiguous slices of each row of `dim` values (horizontal bands of an image). */
export function bandMeans(features: ArrayLike<number>, dim: number, bands: number): Float64Array {
  const rows = Math.floor(features.length / dim);
  const out = new Float64Array(rows * bands);
  for (let r = 0; r < rows; r++) {
    for (let band = 0; band < bands; band++) {
      const from = Math.floor((band * dim) / bands);
      const to = Math.floor(((band + 1) * dim) / bands);
      let s = 0;
      for (let i = from; i < to; i++) s += features[r * dim + i];
      out[r * bands + band] = to > from ? s / (to - from) : 0;
    }
  }
  return out;
}

export interface DriftScores {
  labelPsi: number;
  labelJs: number;
  featurePsi: number[];
  featureJs: number[];
  /** The largest PSI over labels and features, and what it was measured on. */
  maxPsi: number;
  maxPsiOn: string;
}

export function driftScores(reference: DriftSketch, current: DriftSketch): DriftScores {
  const labelPsi = psi(reference.labels, current.labels);
  const labelJs = jsDivergence(reference.labels, current.labels);
  const featurePsi = reference.features.map((h, f) => psi(h, current.features[f]));
  const featureJs = reference.features.map((h, f) => jsDivergence(h, current.features[f]));
  let maxPsi = labelPsi;
  let maxPsiOn = 'labels';
  featurePsi.forEach((p, f) => {
    if (p > maxPsi) {
      maxPsi = p;
      maxPsiOn = `feature ${f}`;
    }
  });
  return { labelPsi, labelJs, featurePsi, featureJs, maxPsi, maxPsiOn };
}
