/**
 * Rényi DP of the Gaussian mechanism and of the Poisson-subsampled Gaussian mechanism.
 *
 * Mironov 2017, "Rényi Differential Privacy" (CSF; arXiv:1702.07476), Table II (RDP of basic
 * mechanisms): the Gaussian mechanism with noise multiplier z (σ / L2 sensitivity) is
 * (α, α/(2z²))-RDP for every α ≥ 1.
 *
 * Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism"
 * (arXiv:1908.10530): with sampling probability q, under add-or-remove-one adjacency, the mechanism is
 * (α, log(A_α)/(α − 1))-RDP, where A_α = E_{x~μ0}[(1 − q + q·μ1(x)/μ0(x))^α], μ0 = N(0, z²), μ1 = N(1, z²).
 *
 * - Integer α (§3.3, first display): A_α = Σ_{k=0}^{α} C(α,k) (1−q)^{α−k} q^k exp((k² − k)/(2z²)).
 *   We sum A_α − 1 = Σ_{k=2}^{α} C(α,k) (1−q)^{α−k} q^k expm1((k² − k)/(2z²)) instead (the k = 0, 1
 *   terms and Σ_k C(α,k)(1−q)^{α−k}q^k = 1 cancel exactly), so every term is positive, the sum is taken
 *   in log space with no cancellation, and log A_α = log1p(A_α − 1) keeps full relative precision even
 *   for q = 1e-6 where A_α − 1 ≈ 1e-12.
 * - Fractional α (§3.3, "numerically stable computation for fractional α"): the integral is split at
 *   z0 = z² log(1/q − 1) + 1/2, where q·μ1 = (1−q)·μ0, and each half is expanded with the generalised
 *   binomial series, which converges there:
 *     A_α = Σ_{k≥0} C(α,k) (1−q)^{α−k} q^k     exp((k² − k)/(2z²))  · erfc((k − z0)/(√2 z)) / 2
 *         + Σ_{k≥0} C(α,k) q^{α−k} (1−q)^k     exp((j² − j)/(2z²))  · erfc((z0 − j)/(√2 z)) / 2,  j = α − k.
 *   For k > α + 1 the coefficients C(α,k) alternate in sign. Both halves converge absolutely
 *   (Σ_k |C(α,k)| < ∞ for α > 0), so the series may be integrated term by term and the signed sum IS A_α.
 *
 * Which series is the valid bound (the issue "76.52 vs 81.30" at z = 1.5, q = 0.05, 50 000 steps, δ = 1e-6):
 *   Under add-or-remove the RDP is max(log A_α, log B_α)/(α − 1) with B_α = E_{x~μ}[(μ0/μ)^α]
 *   (MTZ 2019, §3, who argue that A_α ≥ B_α, so that A_α alone gives the RDP). Not resting on how far
 *   their argument reaches for fractional α, testing/quadrature.ts integrates both directions from the
 *   densities: at every point tested, fractional orders included, B_α < A_α, and the signed series equals A_α to
 *   quadrature accuracy (z = 1.5, q = 0.05, α = 1.6: both 1.10514357505e-3 per step; B gives 1.0391e-3).
 *   So the signed series is the tight value (it is what TF-Privacy and Opacus sum) and the |terms| sum,
 *   which dp_accounting has used since 2024 ("Improve numerical stability of RDP computation"), is a
 *   valid but loose upper bound: 9.9% above A_α at α = 1.6 there, hence ε = 81.30 at order 1.8 instead of
 *   76.52 at order 1.6.
 *   The signed sum in float64 is not an upper bound, though: it computes A_α ≈ 1 + (A_α − 1) from terms of
 *   order 1, so when A_α − 1 approaches the rounding unit of A_α (small q) the result can fall below the
 *   true value — by 3e-13 relative at the issue's point, by 7e-4 at q = 1e-6, z = 1.5, α = 1.5, and to 0
 *   at q = 1e-8 (the |terms| sum has the same defect there). The default therefore returns an upper bound:
 *
 * - `fractionalSeries: 'exact'` (default): the signed sum plus an explicit allowance for its rounding
 *   (per term, proportional to the magnitude of the logs it is built from) and for the truncated tail,
 *   capped by two other valid bounds — Hölder's inequality between the neighbouring integer orders
 *   (log A_α is convex in α; the integer formula keeps full relative precision), and, over a curve, the
 *   monotonicity of D_α in α. Against quadrature it is never below the true value (1,287 points,
 *   q ∈ [1e-8, 0.99], z ∈ [0.1, 100], α ∈ [1.01, 63.5]) and within 1e-10 relative of it at the issue's
 *   point; at tiny q it is conservative (at most D_⌈α⌉).
 * - `'absolute'`: the sum of |terms| as dp_accounting computes it, kept only to reproduce its published
 *   numbers; it is not guarded against the small-q rounding above.
 *
 *   The series stops when both halves' terms are decreasing and below the running total by e^{-36}
 *   (e^{-30} in 'absolute' mode, as dp_accounting). If it has not converged after 100 000 terms (this
 *   happens for large q and small z at orders close to 1, where the tail decays only polynomially),
 *   'absolute' reports the order as +∞, which the ε conversion then ignores, and 'exact' falls back on
 *   the Hölder bound.
 *
 * Special cases, as dp_accounting: q = 0 → 0; z = 0 (q > 0) → +∞; α = +∞ → +∞; q = 1 → α/(2z²).
 * Order α = 1 (the KL divergence) is only finite here for q ∈ {0, 1}; for 0 < q < 1 it is reported as +∞
 * (no conversion uses orders ≤ 1.01).
 */
import { CohortError } from '../errors.ts';
import { LOG_2, log1pExp, logErfc, logExpm1, logSumExp } from './special.ts';

export type FractionalSeries = 'exact' | 'absolute';

export interface RdpOptions {
  /**
   * How fractional orders sum the MTZ series; see the module comment. Default 'exact': an upper bound on
   * the true RDP that is tight to ~1e-10 (the signed series plus its error allowance), where 'absolute'
   * (dp_accounting's |terms| sum) overstates it by up to tens of percent and, like the bare signed sum,
   * can fall below it at tiny q.
   */
  readonly fractionalSeries?: FractionalSeries;
}

const MAX_SERIES_TERMS = 100_000;
const LOG_HALF = -LOG_2;

export function checkNoiseMultiplier(noiseMultiplier: number): void {
  if (!(noiseMultiplier >= 0) || !Number.isFinite(noiseMultiplier)) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `noise multiplier must be finite and ≥ 0, got ${noiseMultiplier}`, {
      noiseMultiplier,
    });
  }
}

export function checkSamplingProbability(q: number): void {
  if (!(q >= 0 && q <= 1)) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `sampling probability must be in [0, 1], got ${q}`, { q });
  }
}

export function checkOrders(orders: ArrayLike<number>): void {
  if (orders.length === 0) throw new CohortError('BAD_PRIVACY_PARAMETER', 'at least one RDP order is needed');
  for (let i = 0; i < orders.length; i++) {
    const a = orders[i];
    if (!(a >= 1)) {
      throw new CohortError('BAD_PRIVACY_PARAMETER', `RDP orders must be ≥ 1 (or +Infinity), got ${a}`, { order: a });
    }
  }
}

/** RDP of the Gaussian mechanism at one order: α / (2z²) (Mironov 2017, Table II). */
export function gaussianRdp(noiseMultiplier: number, order: number): number {
  if (noiseMultiplier === 0) return Infinity;
  return order / (2 * noiseMultiplier * noiseMultiplier);
}

/** RDP curve of the (unsampled) Gaussian mechanism at `orders`. */
export function rdpGaussian(noiseMultiplier: number, orders: ArrayLike<number>): Float64Array<ArrayBuffer> {
  checkNoiseMultiplier(noiseMultiplier);
  checkOrders(orders);
  const out = new Float64Array(orders.length);
  for (let i = 0; i < orders.length; i++) out[i] = gaussianRdp(noiseMultiplier, orders[i]);
  return out;
}

/**
 * log A_α for integer α ≥ 2 and 0 < q < 1, via the positive-term form of A_α − 1 (module comment).
 * Exported for tests.
 */
export function logAInteger(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const twoSigma2 = 2 * sigma * sigma;
  const terms = new Float64Array(alpha - 1);
  let logBinom = Math.log(alpha); // log C(α, 1)
  for (let k = 2; k <= alpha; k++) {
    logBinom += Math.log((alpha - k + 1) / k);
    terms[k - 2] = logBinom + k * logQ + (alpha - k) * log1mQ + logExpm1((k * k - k) / twoSigma2);
  }
  return log1pExp(logSumExp(terms));
}

/** The two-sided MTZ series for one (q, σ, α), summed both ways. Scaled by e^{-ref}. */
interface FractionalSums {
  /** The largest log-term seen; every sum below is scaled by e^{-ref}. */
  readonly ref: number;
  /** Σ sign·|term| (compensated): A_α itself, up to rounding and truncation. */
  readonly signed: number;
  /** Σ |term|: dp_accounting's bound. */
  readonly absolute: number;
  /** A bound on the floating-point error of `signed` (and of `absolute`), see ROUNDING_ALLOWANCE. */
  readonly error: number;
}

/**
 * Rounding-error allowance per unit of a term's log magnitude. Each term is e^{s − ref} with s a sum of
 * a few logs that are each computed to a few ulps (the log binomial is a running sum, one rounding per
 * k), so exp(s − ref) carries a relative error ≲ (number of roundings)·u·(Σ |parts of s|). We charge
 * 16·u per unit of (Σ |parts of s| + k + 1), plus 2u·Σ|term| for the compensated sum and the truncated
 * tail (below the last term per run of equal signs; past k = α + 1 the signs alternate). Measured against
 * quadrature (testing/quadrature.ts) over q ∈ [1e-8, 0.99], z ∈ [0.3, 100], α ∈ [1.01, 10.9], the actual
 * error of the signed sum stayed below 0.22 of this allowance. It is an engineering bound from the
 * accuracy of the ingredients, not a proof.
 */
const ROUNDING_ALLOWANCE = 16 * Number.EPSILON * 0.5;

function fractionalSums(q: number, sigma: number, alpha: number, stopGap: number): FractionalSums | undefined {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const sigma2 = sigma * sigma;
  const twoSigma2 = 2 * sigma2;
  const z0 = sigma2 * (log1mQ - logQ) + 0.5;
  const erfcScale = Math.SQRT2 * sigma;

  let logAbsBinom = 0; // log |C(α, k)|
  let sign = 1; // sign of C(α, k)
  // Running sums scaled by e^{-ref}; ref is the largest log-term seen so far.
  let ref = -Infinity;
  let signedSum = 0;
  let signedCompensation = 0; // Neumaier's compensated summation for the alternating tail
  let absSum = 0;
  let errSum = 0; // Σ |term|·(Σ |parts of its log| + k + 1), scaled like the others
  let prev0 = -Infinity;
  let prev1 = -Infinity;

  for (let k = 0; k < MAX_SERIES_TERMS; k++) {
    if (k > 0) {
      const ratio = (alpha - k + 1) / k;
      if (ratio < 0) sign = -sign;
      logAbsBinom += Math.log(Math.abs(ratio));
    }
    const j = alpha - k;
    const e0 = logErfc((k - z0) / erfcScale);
    const e1 = logErfc((z0 - j) / erfcScale);
    const g0 = (k * k - k) / twoSigma2;
    const g1 = (j * j - j) / twoSigma2;
    const s0 = logAbsBinom + k * logQ + j * log1mQ + g0 + LOG_HALF + e0;
    const s1 = logAbsBinom + j * logQ + k * log1mQ + g1 + LOG_HALF + e1;
    const top = s0 > s1 ? s0 : s1;
    if (top > ref) {
      const shrink = ref === -Infinity ? 0 : Math.exp(ref - top);
      signedSum *= shrink;
      signedCompensation *= shrink;
      absSum *= shrink;
      errSum *= shrink;
      ref = top;
    }
    const t0 = Math.exp(s0 - ref);
    const t1 = Math.exp(s1 - ref);
    const common = Math.abs(logAbsBinom) + k + 1 + LOG_2;
    errSum +=
      t0 * (common + Math.abs(k * logQ) + Math.abs(j * log1mQ) + Math.abs(g0) + Math.abs(e0)) +
      t1 * (common + Math.abs(j * logQ) + Math.abs(k * log1mQ) + Math.abs(g1) + Math.abs(e1));
    const term = t0 + t1;
    absSum += term;
    const add = sign * term;
    const t = signedSum + add;
    signedCompensation +=
      Math.abs(signedSum) >= Math.abs(add) ? signedSum - t + add : add - t + signedSum;
    signedSum = t;

    const total = stopGap === ABSOLUTE_STOP_GAP ? absSum : signedSum + signedCompensation;
    if (s0 < prev0 && s1 < prev1 && total > 0 && top < ref + Math.log(total) - stopGap) {
      const signed = signedSum + signedCompensation;
      // Rounding (per term, plus the compensated sum's own 2u·|S|) and the truncated tail.
      // The tail: terms of each sign run are below this one; past k = α + 1 the signs alternate.
      const sameSignRun = Math.max(1, Math.ceil(alpha + 1 - k) + 1);
      const error = ROUNDING_ALLOWANCE * errSum + 2 * Number.EPSILON * absSum + 2 * sameSignRun * Math.exp(top - ref);
      return { ref, signed, absolute: absSum, error };
    }
    prev0 = s0;
    prev1 = s1;
  }
  return undefined;
}

const EXACT_STOP_GAP = 36;
const ABSOLUTE_STOP_GAP = 30;

/**
 * Hölder's inequality bound on log A_α from the neighbouring integer orders: α ↦ log A_α =
 * log E_{μ0}[(μ/μ0)^α] is convex (a cumulant generating function), so with n = ⌊α⌋ and θ = α − n,
 *   log A_α ≤ (1 − θ)·log A_n + θ·log A_{n+1},   log A_1 = 0.
 * The integer orders are summed with positive terms only (logAInteger), to full relative precision even
 * when A − 1 is far below the rounding unit of A itself.
 */
function logAFractionalHolder(q: number, sigma: number, alpha: number): number {
  const n = Math.floor(alpha);
  const theta = alpha - n;
  const lower = n < 2 ? 0 : logAInteger(q, sigma, n);
  const upper = logAInteger(q, sigma, n + 1);
  return (1 - theta) * lower + theta * upper;
}

/**
 * log A_α for fractional α > 1 and 0 < q < 1 by the two-sided series of Mironov, Talwar, Zhang 2019,
 * §3.3. Returns +∞ if the series does not converge within the term budget. Exported for tests.
 *
 * 'exact' returns an upper bound on A_α, never its rounded value: the signed sum plus a bound on its
 * floating-point and truncation error, and no more than the Hölder interpolation of the integer orders
 * (both valid upper bounds; the module comment says why both are needed).
 */
export function logAFractional(q: number, sigma: number, alpha: number, series: FractionalSeries = 'exact'): number {
  if (series === 'absolute') {
    const sums = fractionalSums(q, sigma, alpha, ABSOLUTE_STOP_GAP);
    return sums === undefined ? Infinity : sums.ref + Math.log(sums.absolute);
  }
  const holder = logAFractionalHolder(q, sigma, alpha);
  const sums = fractionalSums(q, sigma, alpha, EXACT_STOP_GAP);
  if (sums === undefined) return holder;
  // Cancellation guard: the absolute-value sum is also an upper bound (plus its own rounding).
  const upper = Math.min(sums.signed + sums.error, sums.absolute + sums.error);
  return Math.min(sums.ref + Math.log(upper), holder);
}

/** RDP of one Poisson-subsampled Gaussian step at one order (see module comment for special cases). */
export function poissonSubsampledGaussianRdp(
  q: number,
  noiseMultiplier: number,
  order: number,
  options: RdpOptions = {},
): number {
  if (q === 0) return 0;
  if (noiseMultiplier === 0 || order === Infinity) return Infinity;
  if (q === 1) return gaussianRdp(noiseMultiplier, order);
  if (order === 1) return Infinity;
  const logA = Number.isInteger(order)
    ? logAInteger(q, noiseMultiplier, order)
    : // Default 'exact': the valid and tight bound (module comment, "Which series is the valid bound").
      logAFractional(q, noiseMultiplier, order, options.fractionalSeries ?? 'exact');
  // A_α ≥ 1, so RDP ≥ 0; a tiny negative value can only be rounding.
  return Math.max(0, logA / (order - 1));
}

/** RDP curve of one Poisson-subsampled Gaussian step (multiply by the step count for composition). */
export function rdpPoissonSubsampledGaussian(
  q: number,
  noiseMultiplier: number,
  orders: ArrayLike<number>,
  options: RdpOptions = {},
): Float64Array<ArrayBuffer> {
  checkSamplingProbability(q);
  checkNoiseMultiplier(noiseMultiplier);
  checkOrders(orders);
  const out = new Float64Array(orders.length);
  for (let i = 0; i < orders.length; i++) {
    out[i] = poissonSubsampledGaussianRdp(q, noiseMultiplier, orders[i], options);
  }
  if ((options.fractionalSeries ?? 'exact') === 'exact') {
    // D_α is non-decreasing in α (van Erven & Harremoës 2014, Theorem 3), so an upper bound at a larger
    // order bounds every smaller one too: take the running minimum from the largest order down. This only
    // lowers fractional orders whose error allowance (logAFractional) exceeds the next order's bound.
    const byOrder = Array.from(out.keys()).sort((i, j) => orders[j] - orders[i]);
    let floor = Infinity;
    for (const i of byOrder) {
      if (out[i] > floor) out[i] = floor;
      else floor = out[i];
    }
  }
  return out;
}
