/**
 * Continuous Gaussian noise from a CSPRNG.
 *
 * Marsaglia & Bray 1964, "A Convenient Method for Generating Normal Variables" (the polar method): draw
 * (u, v) uniform in the square (−1, 1)², keep it if s = u² + v² ∈ (0, 1), and return the pair
 * u·√(−2 ln s / s), v·√(−2 ln s / s) of independent N(0, 1) values. Uniforms are 53-bit (Rng.next()), so
 * 2·next() − 1 is exact.
 *
 * The default source is `cryptoRng()` (WebCrypto). Tests inject `seededRng` for reproducibility; never
 * do that in a deployment. Caveat (Mironov 2012, "On Significance of the Least Significant Bits for
 * Differential Privacy"): floating-point Gaussian samples leak through their low-order bits when the
 * noisy value itself is released. In Cohort the noisy *aggregate* is released after further float
 * arithmetic, which blurs that channel but does not formally close it; `distributed` mode and anyone who
 * needs a proof use the discrete Gaussian (`discrete-gaussian.ts`) instead.
 */
import { CohortError } from '../errors.ts';
import { type Rng, cryptoRng } from '../random.ts';

/** Writes two independent N(0, 1) samples into out[0], out[1]. */
export function gaussianPair(rng: Rng, out: Float64Array): void {
  for (;;) {
    const u = 2 * rng.next() - 1;
    const v = 2 * rng.next() - 1;
    const s = u * u + v * v;
    if (s >= 1 || s === 0) continue;
    const f = Math.sqrt((-2 * Math.log(s)) / s);
    out[0] = u * f;
    out[1] = v * f;
    return;
  }
}

const pair = new Float64Array(2);

/** One N(0, 1) sample (the polar method's second value is discarded). */
export function gaussianSample(rng: Rng = cryptoRng()): number {
  gaussianPair(rng, pair);
  return pair[0];
}

export function checkNoiseStddev(sigma: number): void {
  if (!(sigma >= 0) || !Number.isFinite(sigma)) {
    throw new CohortError('BAD_NOISE', `noise standard deviation must be finite and ≥ 0, got ${sigma}`, { sigma });
  }
}

/** v[i] += σ·N(0, 1) for every i, in place, with fresh noise per coordinate. Returns v. */
export function addGaussianNoise<T extends Float32Array | Float64Array>(v: T, sigma: number, rng: Rng = cryptoRng()): T {
  checkNoiseStddev(sigma);
  if (sigma === 0) return v;
  const buf = new Float64Array(2);
  const n = v.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    gaussianPair(rng, buf);
    v[i] += sigma * buf[0];
    v[i + 1] += sigma * buf[1];
  }
  if (i < n) {
    gaussianPair(rng, buf);
    v[i] += sigma * buf[0];
  }
  return v;
}
