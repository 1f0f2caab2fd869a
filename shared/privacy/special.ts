/**
 * Float64 special functions the RDP accountant needs: log-space arithmetic and log erfc.
 *
 * Everything here is written for accuracy at the extremes the accountant visits (tiny sampling rates,
 * orders up to 1024, noise multipliers from 0.1 to 1000): sums are taken in log space, differences use
 * expm1/log1p, and erfc is evaluated without cancellation in its tail.
 */

export const LOG_2 = Math.LN2;
const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/** log(e^a + e^b), exact at ±∞. */
export function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const hi = a > b ? a : b;
  const lo = a > b ? b : a;
  if (hi === Infinity) return Infinity;
  return hi + Math.log1p(Math.exp(lo - hi));
}

/** log(1 − e^{−x}) for x ≥ 0 (Mächler 2012, "Accurately Computing log(1 − exp(−|a|))"). */
export function log1mExp(x: number): number {
  if (x < 0) return NaN;
  return x <= LOG_2 ? Math.log(-Math.expm1(-x)) : Math.log1p(-Math.exp(-x));
}

/** log(e^x − 1) for x ≥ 0; −∞ at 0 and accurate for tiny and huge x. */
export function logExpm1(x: number): number {
  if (x < 0) return NaN;
  return x > 36 ? x + Math.log1p(-Math.exp(-x)) : Math.log(Math.expm1(x));
}

/** log(1 + e^x), accurate for every x. */
export function log1pExp(x: number): number {
  return x > 36 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/**
 * log Σ e^{xs[i]} over the first `n` entries, with the largest term factored out (the sum of the scaled
 * terms is ≥ 1, so it neither underflows nor loses the large term).
 */
export function logSumExp(xs: ArrayLike<number>, n: number = xs.length): number {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (xs[i] > max) max = xs[i];
  if (max === -Infinity || max === Infinity) return max;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(xs[i] - max);
  return max + Math.log(sum);
}

/**
 * erf(x) for 0 ≤ x < 3 from the series with positive terms
 *   erf(x) = (2/√π) e^{−x²} Σ_{n≥0} 2^n x^{2n+1} / (1·3·5···(2n+1))
 * (Abramowitz & Stegun 7.1.6), so no term cancels another.
 */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 500; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term <= sum * 1e-17) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

/**
 * e^{x²}·erfc(x)·√π for x ≥ 2 from the continued fraction
 *   √π e^{x²} erfc(x) = 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ···)))))
 * (A&S 7.1.14), evaluated by the modified Lentz method (Press et al., Numerical Recipes §5.2).
 */
function erfcScaledContinuedFraction(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 5000; n++) {
    const a = n / 2;
    d = x + a * d;
    if (d === 0) d = tiny;
    c = x + a / c;
    if (c === 0) c = tiny;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 2e-16) break;
  }
  return 1 / f;
}

const SERIES_LIMIT = 1.5;

/** Complementary error function, with small relative error over the whole real line. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < SERIES_LIMIT) return 1 - erfSeries(x);
  if (x > 27.3) return 0; // erfc(27.3) < 2^-1074
  return (Math.exp(-x * x) * erfcScaledContinuedFraction(x)) / Math.sqrt(Math.PI);
}

/** log erfc(x), finite for every finite x (no underflow in the tail: −x² is kept in log space). */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return -Infinity;
  if (x < SERIES_LIMIT) return Math.log(erfc(x));
  return -x * x + Math.log(erfcScaledContinuedFraction(x)) - LOG_SQRT_PI;
}

/** Standard normal CDF Φ(x) = erfc(−x/√2)/2. */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}
