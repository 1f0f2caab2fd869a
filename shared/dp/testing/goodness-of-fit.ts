/**
 * Test support only (imported by *.test.ts, never by production code): goodness-of-fit statistics for
 * the noise samplers.
 *
 * - Kolmogorov–Smirnov: D_n = sup_x |F_n(x) − F(x)|; reject at level α = 0.001 when √n·D_n > 1.9495, the
 *   0.999 quantile of the Kolmogorov distribution (asymptotic; conservative for discrete distributions,
 *   where the KS test is known to reject less often than α).
 * - Pearson χ²: Σ (O − E)²/E over bins with E ≥ 5, p-value from the regularized upper incomplete gamma
 *   Q(k/2, χ²/2), computed by its series / continued fraction (Numerical Recipes §6.2).
 */

/** √n·D_n critical value at α = 0.001 (Kolmogorov distribution quantile 0.999). */
export const KS_CRITICAL_0_001 = 1.9495;

/** D_n for a continuous CDF, from samples (sorted in place). */
export function ksStatistic(samples: Float64Array, cdf: (x: number) => number): number {
  samples.sort();
  const n = samples.length;
  let d = 0;
  for (let i = 0; i < n; i++) {
    const f = cdf(samples[i]);
    d = Math.max(d, (i + 1) / n - f, f - i / n);
  }
  return d;
}

/** D_n for an integer-valued distribution given counts per value in [lo, hi] and the exact CDF. */
export function ksStatisticDiscrete(counts: Map<number, number>, n: number, cdf: (x: number) => number, lo: number, hi: number): number {
  let cum = 0;
  let d = 0;
  for (let x = lo; x <= hi; x++) {
    cum += counts.get(x) ?? 0;
    d = Math.max(d, Math.abs(cum / n - cdf(x)));
  }
  return d;
}

/** log Γ(s) for s a positive multiple of 1/2 (exact recurrences from Γ(1) = 1, Γ(1/2) = √π). */
function logGammaHalfInteger(s: number): number {
  let acc = Number.isInteger(s) ? 0 : 0.5 * Math.log(Math.PI);
  for (let t = Number.isInteger(s) ? 1 : 0.5; t < s; t += 1) acc += Math.log(t);
  return acc;
}

/** Q(s, x) = Γ(s, x)/Γ(s), the regularized upper incomplete gamma function, s a multiple of 1/2. */
function upperGammaQ(s: number, x: number): number {
  if (x <= 0) return 1;
  const logPrefix = s * Math.log(x) - x - logGammaHalfInteger(s);
  if (x < s + 1) {
    // P(s, x) = x^s e^{-x}/Γ(s) · Σ_n x^n / (s (s+1) … (s+n))
    let term = 1 / s;
    let sum = term;
    for (let n = 1; n < 10_000; n++) {
      term *= x / (s + n);
      sum += term;
      if (term < sum * 1e-16) break;
    }
    return 1 - Math.exp(logPrefix) * sum;
  }
  // Continued fraction for Q (modified Lentz).
  const tiny = 1e-300;
  let b = x + 1 - s;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10_000; i++) {
    const an = -i * (i - s);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(logPrefix) * h;
}

/** P[χ²_dof ≥ stat]. */
export function chiSquarePValue(stat: number, dof: number): number {
  return upperGammaQ(dof / 2, stat / 2);
}

export interface ChiSquareResult {
  readonly stat: number;
  readonly dof: number;
  readonly pValue: number;
}

/**
 * Pearson's test of integer samples (counts per value) against a pmf on Z. Values are binned one by one
 * over the central window where the expected count is ≥ 5; the two end bins absorb the tails
 * ((−∞, lo] and [hi, ∞)), so every sample lands in a bin.
 */
export function chiSquareDiscrete(counts: Map<number, number>, n: number, pmf: (x: number) => number, mode = 0): ChiSquareResult {
  let lo = mode;
  let hi = mode;
  while (n * pmf(lo - 1) >= 5) lo--;
  while (n * pmf(hi + 1) >= 5) hi++;
  const tailMass = (from: number, step: number): number => {
    let mass = 0;
    for (let x = from; ; x += step) {
      const p = pmf(x);
      mass += p;
      if (p < 1e-18 * mass) return mass;
    }
  };
  let stat = 0;
  for (let x = lo; x <= hi; x++) {
    let e = n * pmf(x);
    let o = counts.get(x) ?? 0;
    if (x === lo) e += n * tailMass(lo - 1, -1);
    if (x === hi) e += n * tailMass(hi + 1, +1);
    for (const [y, c] of counts) if ((x === lo && y < lo) || (x === hi && y > hi)) o += c;
    stat += ((o - e) * (o - e)) / e;
  }
  const dof = hi - lo;
  return { stat, dof, pValue: chiSquarePValue(stat, dof) };
}
