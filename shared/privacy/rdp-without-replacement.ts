/**
 * RDP of the Gaussian mechanism on a cohort of fixed size m drawn uniformly without replacement from
 * n clients (q = m/n), under replace-one adjacency (n is public; one client's data is swapped for
 * another's). This is what fixed-size cohorts need; Poisson cohorts use `rdp.ts`.
 *
 * Wang, Balle, Kasiviswanathan 2019, "Subsampled Rényi Differential Privacy and Analytical Moments
 * Accountant" (AISTATS; arXiv:1808.00087), Theorem 27 — the bound of Theorem 9 strengthened for the
 * Gaussian base mechanism, whose RDP is ε(ℓ) = ℓ/(2z²). For integer α ≥ 2:
 *
 *   (α − 1)·ε'(α) ≤ log( 1 + q² C(α,2) min{ 4(e^{ε(2)} − 1), 2e^{ε(2)} }
 *                         + Σ_{j=3}^{α} q^j C(α,j) min{ 4·sqrt(B(2⌊j/2⌋)·B(2⌈j/2⌉)), 2e^{(j−1)ε(j)} } )
 *
 * where B(ℓ) = Δ^ℓ[e^{(x−1)ε(x)}](0) = Σ_{i=0}^{ℓ} (−1)^{ℓ−i} C(ℓ,i) e^{i(i−1)/(2z²)} is the ℓ-th forward
 * difference. We follow Google's dp_accounting (`_compute_rdp_sample_wor_gaussian_int`) term for term:
 * the exact bound for α ≤ 256, and for α > 256 only the second argument of each min (their "Stirling"
 * branch, a looser but valid bound that costs O(α)). Fractional α use Corollary 10 (the log-moment
 * (α − 1)ε'(α) is convex in α, so linear interpolation between ⌊α⌋ and ⌈α⌉ bounds it).
 *
 * Computing B(ℓ). Only even ℓ occur. B(ℓ) = E_{x~μ0}[(μ1(x)/μ0(x) − 1)^ℓ] > 0, but the alternating sum
 * above cancels catastrophically when z is large (z = 10, ℓ = 20 loses 17 digits; dp_accounting's
 * repeated log-space differencing has the same problem). We therefore use two exact formulas:
 * - the alternating sum in float64, accepted when Σ|terms| / |sum| < 1e4 (at most 4 digits lost);
 * - otherwise the series with positive terms B(ℓ) = ℓ!·Σ_n (a^n/n!)·c_n[ℓ], a = 1/(2z²), where c_n[m]
 *   are the coefficients of (x(x−1))^n in the falling-factorial basis x^(m) (Δ^ℓ x^(m) at 0 is ℓ!·[m = ℓ]).
 *   Multiplying by x^(2) = x(x−1) gives x^(2)·x^(m) = x^(m+2) + 2m·x^(m+1) + m(m−1)·x^(m), so
 *   c_n[m] = c_{n−1}[m−2] + 2(m−1)·c_{n−1}[m−1] + m(m−1)·c_{n−1}[m], all non-negative.
 *   It needs about 2aℓ² terms, which is small exactly when the alternating sum cancels.
 * If neither is accurate, B(ℓ) = +∞ and the min picks its other (valid) argument.
 *
 * Special cases as dp_accounting: q = 0 → 0; q = 1 → α/(2z²); α = +∞ → +∞; α = 1 → 0; z = 0 → +∞.
 */
import { CohortError } from '../errors.ts';
import { checkNoiseMultiplier, checkOrders, gaussianRdp } from './rdp.ts';
import { LOG_2, log1pExp, logExpm1, logSumExp } from './special.ts';

/** Orders above this use the O(α) bound, as dp_accounting (`max_alpha = 256`). */
export const WOR_EXACT_MAX_ORDER = 256;

const LOG_4 = 2 * LOG_2;
const MAX_CANCELLATION = 1e4;
const MAX_SERIES_STEPS = 200_000;

function logFactorials(n: number): Float64Array<ArrayBuffer> {
  const out = new Float64Array(n + 1);
  for (let i = 2; i <= n; i++) out[i] = out[i - 1] + Math.log(i);
  return out;
}

/** log B(ℓ) by the alternating sum, or NaN if more than 4 digits cancel. */
function logForwardDifferenceDirect(a: number, ell: number, logFact: Float64Array): number {
  const logTerms = new Float64Array(ell + 1);
  let max = -Infinity;
  for (let i = 0; i <= ell; i++) {
    logTerms[i] = logFact[ell] - logFact[i] - logFact[ell - i] + a * i * (i - 1);
    if (logTerms[i] > max) max = logTerms[i];
  }
  let signed = 0;
  let abs = 0;
  for (let i = 0; i <= ell; i++) {
    const t = Math.exp(logTerms[i] - max);
    abs += t;
    signed += (ell - i) % 2 === 0 ? t : -t;
  }
  if (!(signed > 0) || abs > MAX_CANCELLATION * signed) return NaN;
  return max + Math.log(signed);
}

/**
 * log B(ℓ) for every even ℓ ≤ maxEll by the positive series (module comment), or null when it would
 * need more than MAX_SERIES_STEPS terms. Column m is stored multiplied by K^m with K = 1/√a, which keeps
 * the leading term a^{ℓ/2}/(ℓ/2)! of column ℓ at 1/(ℓ/2)! ≥ 1e-216 (no underflow for ℓ ≤ 256); a common
 * factor e^{-logScale} keeps the largest entry below 1e280.
 */
function logForwardDifferencesSeries(a: number, maxEll: number, logFact: Float64Array): Float64Array<ArrayBuffer> | null {
  const peak = 2 * a * maxEll * maxEll + maxEll;
  if (peak > MAX_SERIES_STEPS) return null;
  const k = 1 / Math.sqrt(a);
  const k2 = k * k;
  const w = new Float64Array(maxEll + 1); // K^m · a^n c_n[m] / n!, times e^{-logScale}
  const sums = new Float64Array(maxEll + 1); // Σ_n of the same, same scaling
  w[0] = 1;
  sums[0] = 1;
  let logScale = 0;
  for (let n = 1; n <= MAX_SERIES_STEPS; n++) {
    const f = a / n;
    let maxW = 0;
    for (let m = maxEll; m >= 0; m--) {
      const lower2 = m >= 2 ? w[m - 2] * k2 : 0;
      const lower1 = m >= 1 ? w[m - 1] * k : 0;
      const v = f * (lower2 + 2 * (m - 1) * lower1 + m * (m - 1) * w[m]);
      w[m] = v;
      sums[m] += v;
      if (v > maxW) maxW = v;
    }
    if (maxW > 1e280) {
      for (let m = 0; m <= maxEll; m++) {
        w[m] *= 1e-280;
        sums[m] *= 1e-280;
      }
      logScale += 280 * Math.LN10;
    }
    if (n > peak) {
      let done = true;
      for (let ell = 2; ell <= maxEll; ell += 2) {
        if (w[ell] > 1e-17 * sums[ell]) {
          done = false;
          break;
        }
      }
      if (done) break;
    }
  }
  const logK = Math.log(k);
  const out = new Float64Array(maxEll + 1);
  for (let ell = 0; ell <= maxEll; ell++) out[ell] = logFact[ell] + Math.log(sums[ell]) + logScale - ell * logK;
  return out;
}

/**
 * log B(ℓ) for even ℓ = 0, 2, …, maxEll (odd entries unused), for noise multiplier z. Exported for tests.
 */
export function logEvenForwardDifferences(noiseMultiplier: number, maxEll: number): Float64Array<ArrayBuffer> {
  const a = 1 / (2 * noiseMultiplier * noiseMultiplier);
  const logFact = logFactorials(maxEll);
  const out = new Float64Array(maxEll + 1).fill(NaN);
  let needSeries = false;
  for (let ell = 0; ell <= maxEll; ell += 2) {
    out[ell] = ell === 0 ? 0 : logForwardDifferenceDirect(a, ell, logFact);
    if (Number.isNaN(out[ell])) needSeries = true;
  }
  if (needSeries) {
    const series = logForwardDifferencesSeries(a, maxEll, logFact);
    for (let ell = 2; ell <= maxEll; ell += 2) {
      if (Number.isNaN(out[ell])) out[ell] = series === null ? Infinity : series[ell];
    }
  }
  return out;
}

/**
 * The log-moment (α − 1)·ε'(α) of WBK Theorem 27 for integer α ≥ 1 (0 at α = 1), 0 < q < 1, z > 0.
 * `logB` must hold log B(ℓ) for even ℓ ≤ min(α, 256) + 1.
 */
function logMomentInteger(q: number, sigma: number, alpha: number, logB: Float64Array | null): number {
  if (alpha === 1) return 0;
  const twoSigma2 = 2 * sigma * sigma;
  const eps2 = 2 / twoSigma2; // ε(2)
  const cgf = (x: number): number => (x * (x + 1)) / twoSigma2; // x·ε(x + 1)
  const logQ = Math.log(q);
  const exact = alpha <= WOR_EXACT_MAX_ORDER;
  const terms = new Float64Array(alpha - 1);
  let logBinom = Math.log(alpha); // log C(α, 1)
  for (let i = 2; i <= alpha; i++) {
    logBinom += Math.log((alpha - i + 1) / i);
    let s: number;
    if (i === 2) {
      s = Math.min(LOG_4 + logExpm1(eps2), eps2 + LOG_2);
    } else {
      s = LOG_2 + cgf(i - 1);
      if (exact && logB !== null) {
        const lo = logB[2 * Math.floor(i / 2)];
        const hi = logB[2 * Math.ceil(i / 2)];
        s = Math.min(s, LOG_4 + 0.5 * (lo + hi));
      }
    }
    terms[i - 2] = s + i * logQ + logBinom;
  }
  return log1pExp(logSumExp(terms));
}

/**
 * RDP curve of one step of the Gaussian mechanism with noise multiplier z on a cohort of `sampleSize`
 * clients drawn without replacement from `sourceSize` (replace-one adjacency; see module comment).
 */
export function rdpSampledWithoutReplacementGaussian(
  sampleSize: number,
  sourceSize: number,
  noiseMultiplier: number,
  orders: ArrayLike<number>,
): Float64Array<ArrayBuffer> {
  if (!Number.isInteger(sampleSize) || !Number.isInteger(sourceSize) || sampleSize < 0 || sourceSize < 1) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `cohort size and population must be integers, got ${sampleSize} of ${sourceSize}`, {
      sampleSize,
      sourceSize,
    });
  }
  if (sampleSize > sourceSize) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `cohort size ${sampleSize} exceeds the population ${sourceSize}`, {
      sampleSize,
      sourceSize,
    });
  }
  checkNoiseMultiplier(noiseMultiplier);
  checkOrders(orders);
  const q = sampleSize / sourceSize;
  const out = new Float64Array(orders.length);
  if (q === 0) return out;
  if (q === 1 || noiseMultiplier === 0) {
    for (let i = 0; i < orders.length; i++) out[i] = gaussianRdp(noiseMultiplier, orders[i]);
    return out;
  }
  let maxExact = 0;
  for (let i = 0; i < orders.length; i++) {
    const a = orders[i];
    if (a !== Infinity) maxExact = Math.max(maxExact, Math.min(Math.ceil(a), WOR_EXACT_MAX_ORDER));
  }
  const maxEll = 2 * Math.ceil(maxExact / 2);
  const logB = maxEll >= 4 ? logEvenForwardDifferences(noiseMultiplier, maxEll) : null;
  const memo = new Map<number, number>();
  const moment = (alpha: number): number => {
    let v = memo.get(alpha);
    if (v === undefined) {
      v = logMomentInteger(q, noiseMultiplier, alpha, logB);
      memo.set(alpha, v);
    }
    return v;
  };
  for (let i = 0; i < orders.length; i++) {
    const alpha = orders[i];
    if (alpha === Infinity) {
      out[i] = Infinity;
    } else if (alpha === 1) {
      out[i] = 0;
    } else if (Number.isInteger(alpha)) {
      out[i] = moment(alpha) / (alpha - 1);
    } else {
      // WBK 2019, Corollary 10: interpolate the convex log-moment between the neighbouring integers.
      const lo = Math.floor(alpha);
      const t = alpha - lo;
      out[i] = ((1 - t) * moment(lo) + t * moment(lo + 1)) / (alpha - 1);
    }
  }
  return out;
}
