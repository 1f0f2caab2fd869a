/**
 * The exact discrete Gaussian sampler.
 *
 * Canonne, Kamath, Steinke 2020, "The Discrete Gaussian for Differential Privacy" (NeurIPS; arXiv
 * 2004.00010), the sampling algorithms:
 * - Algorithm 1: Bernoulli(exp(−γ)) for rational γ ≥ 0, from Bernoulli(γ/k) trials only;
 * - Algorithm 2: the discrete Laplace Lap_Z(t/s), P[Y = y] ∝ exp(−|y|·s/t), for integers s, t ≥ 1;
 * - Algorithm 3: the discrete Gaussian N_Z(0, σ²), P[Y = y] ∝ exp(−y²/(2σ²)), for rational σ², by
 *   rejection from the discrete Laplace with t = ⌊σ⌋ + 1.
 * Every decision is an exact comparison of a uniform integer (from CSPRNG bits, `rational.ts`) with an
 * integer; there is no floating point anywhere in the sampling path, which is the point: floating-point
 * samplers leak through their rounding (Mironov 2012). σ² given as a JavaScript number is converted to
 * the exact rational value of that double (`rationalFromNumber`: 0.1 means the double nearest 1/10, with
 * denominator 2^55); pass a `Rational` to get 1/10 itself.
 *
 * Integers stay JavaScript numbers while every intermediate value provably fits in 2^53 (the common case:
 * σ² an integer or a small fraction: ~2 µs per sample) and switch to BigInt otherwise (e.g. σ² = 0.1 as
 * a double, denominator 2^55: ~6 µs per sample); both paths are exact.
 *
 * The float helpers at the end (`discreteGaussianPmf`, `discreteGaussianVariance`) are for tests and
 * for accounting; they are not used by the sampler.
 */
import { CohortError } from '../errors.ts';
import { cryptoRng } from '../random.ts';
import {
  type BitSource,
  type Rational,
  bernoulliRational,
  isqrt,
  toRational,
  uniformBelow,
  uniformBelowSmall,
} from './rational.ts';

const TWO_32 = 2 ** 32;
const SAFE = Number.MAX_SAFE_INTEGER;

// ---------------------------------------------------------------------------------------------------------
// Algorithm 1: Bernoulli(exp(−γ)).

/**
 * Bernoulli(exp(−num/den)) for 0 ≤ num ≤ den (γ ∈ [0, 1]), safe-integer arguments: K ← 1; while
 * Bernoulli(γ/K) succeeds, K ← K + 1; return [K odd]. (P[K odd] = Σ_j (−γ)^j / j! = e^{−γ}.)
 */
function bernoulliExpUnitNumber(rng: BitSource, num: number, den: number): boolean {
  for (let k = 1; ; k++) {
    const bound = den * k;
    const hit =
      bound <= TWO_32
        ? uniformBelowSmall(rng, bound) < num
        : bound <= SAFE
          ? uniformBelow(rng, BigInt(bound)) < BigInt(num)
          : uniformBelow(rng, BigInt(den) * BigInt(k)) < BigInt(num);
    if (!hit) return (k & 1) === 1;
  }
}

function bernoulliExpUnitBig(rng: BitSource, num: bigint, den: bigint): boolean {
  let k = 1n;
  while (bernoulliRational(rng, num, den * k)) k++;
  return (k & 1n) === 1n;
}

/** CKS 2020 Algorithm 1 with safe-integer γ = num/den ≥ 0. */
function bernoulliExpNumber(rng: BitSource, num: number, den: number): boolean {
  const frac = num % den; // exact for safe integers
  const whole = (num - frac) / den;
  for (let i = 0; i < whole; i++) if (!bernoulliExpUnitNumber(rng, 1, 1)) return false;
  return bernoulliExpUnitNumber(rng, frac, den);
}

function bernoulliExpBig(rng: BitSource, num: bigint, den: bigint): boolean {
  const whole = num / den;
  for (let i = 0n; i < whole; i++) if (!bernoulliExpUnitNumber(rng, 1, 1)) return false;
  return bernoulliExpUnitBig(rng, num - whole * den, den);
}

/** Bernoulli(exp(−γ)) for rational γ ≥ 0 (CKS 2020, Algorithm 1). Exported for tests. */
export function sampleBernoulliExp(gamma: Rational | number, rng: BitSource = cryptoRng()): boolean {
  const g = toRational(gamma);
  if (g.num <= BigInt(SAFE) && g.den <= BigInt(SAFE)) return bernoulliExpNumber(rng, Number(g.num), Number(g.den));
  return bernoulliExpBig(rng, g.num, g.den);
}

// ---------------------------------------------------------------------------------------------------------
// Algorithm 2: discrete Laplace.

/** CKS 2020 Algorithm 2 with s = 1 and safe-integer t (as Algorithm 3 uses it): P[Y = y] ∝ e^{−|y|/t}. */
function discreteLaplaceNumber(rng: BitSource, t: number): number {
  for (;;) {
    const u = t <= TWO_32 ? uniformBelowSmall(rng, t) : Number(uniformBelow(rng, BigInt(t)));
    if (!bernoulliExpUnitNumber(rng, u, t)) continue;
    let v = 0;
    while (bernoulliExpUnitNumber(rng, 1, 1)) v++;
    const y = u + t * v; // X = U + t·V; Y = ⌊X/s⌋ with s = 1
    const negative = (rng.nextUint32() & 1) === 1;
    if (negative && y === 0) continue;
    return negative ? -y : y;
  }
}

/**
 * Lap_Z(t/s): P[Y = y] ∝ exp(−|y|·s/t), integers s, t ≥ 1 (CKS 2020, Algorithm 2). Exported for tests.
 */
export function sampleDiscreteLaplace(s: bigint, t: bigint, rng: BitSource = cryptoRng()): bigint {
  if (s < 1n || t < 1n) throw new CohortError('BAD_NOISE', `discrete Laplace needs integers s, t ≥ 1, got s=${s}, t=${t}`);
  for (;;) {
    const u = uniformBelow(rng, t);
    if (!bernoulliExpUnitBig(rng, u, t)) continue;
    let v = 0n;
    while (bernoulliExpUnitNumber(rng, 1, 1)) v++;
    const y = (u + t * v) / s;
    const negative = (rng.nextUint32() & 1) === 1;
    if (negative && y === 0n) continue;
    return negative ? -y : y;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Algorithm 3: discrete Gaussian.

export interface DiscreteGaussianSampler {
  /** σ² as an exact rational. */
  readonly sigmaSquared: Rational;
  /** One sample of N_Z(0, σ²). */
  next(): bigint;
  /** One sample as a number (exact: |sample| < 2^53 with overwhelming probability; checked). */
  nextNumber(): number;
}

/**
 * A sampler for N_Z(0, σ²) (CKS 2020, Algorithm 3): t ← ⌊σ⌋ + 1; repeat Y ← Lap_Z(t),
 * C ← Bernoulli(exp(−(|Y| − σ²/t)²/(2σ²))) until C = 1; return Y. With σ² = n/d the rejection
 * exponent is the exact rational (|Y|·d·t − n)² / (2·n·d·t²). σ² = 0 gives the constant 0.
 */
export function createDiscreteGaussianSampler(
  sigmaSquared: Rational | number,
  rng: BitSource = cryptoRng(),
): DiscreteGaussianSampler {
  const s2 = toRational(sigmaSquared);
  const n = s2.num;
  const d = s2.den;
  if (n === 0n) {
    return { sigmaSquared: s2, next: () => 0n, nextNumber: () => 0 };
  }
  const t = isqrt(n / d) + 1n; // ⌊σ⌋ + 1, since ⌊√(n/d)⌋ = ⌊√⌊n/d⌋⌋
  const dt = d * t;
  const gammaDen = 2n * n * d * t * t;
  // Number path when n·…, d·t and the denominator are safe; the numerator is checked per sample.
  const numberPath = gammaDen <= BigInt(SAFE) && t <= BigInt(SAFE);
  const tN = Number(t);
  const nN = Number(n);
  const dtN = Number(dt);
  const gammaDenN = Number(gammaDen);

  const sampleNumber = (): number => {
    for (;;) {
      const y = discreteLaplaceNumber(rng, tN);
      const diff = Math.abs(y) * dtN - nN; // exact while |y|·d·t < 2^53
      const gammaNum = diff * diff;
      const accept =
        Math.abs(y) * dtN <= SAFE && gammaNum <= SAFE
          ? bernoulliExpNumber(rng, gammaNum, gammaDenN)
          : bernoulliExpBig(rng, (BigInt(Math.abs(y)) * dt - n) ** 2n, gammaDen);
      if (accept) return y;
    }
  };
  const sampleBig = (): bigint => {
    for (;;) {
      const y = sampleDiscreteLaplace(1n, t, rng);
      const abs = y < 0n ? -y : y;
      const diff = abs * dt - n;
      if (bernoulliExpBig(rng, diff * diff, gammaDen)) return y;
    }
  };
  return {
    sigmaSquared: s2,
    next: numberPath ? () => BigInt(sampleNumber()) : sampleBig,
    nextNumber: numberPath
      ? sampleNumber
      : () => {
          const y = sampleBig();
          if (y > BigInt(SAFE) || y < -BigInt(SAFE)) throw new CohortError('BAD_NOISE', 'discrete Gaussian sample exceeds 2^53');
          return Number(y);
        },
  };
}

/** One sample of N_Z(0, σ²) (CKS 2020, Algorithm 3). For many samples, create a sampler once. */
export function sampleDiscreteGaussian(sigmaSquared: Rational | number, rng: BitSource = cryptoRng()): bigint {
  return createDiscreteGaussianSampler(sigmaSquared, rng).next();
}

/**
 * v[i] += N_Z(0, σ²) for every i, in place, returning v. For an Int32Array, throws CohortError
 * NOISE_OVERFLOW if a noisy value would leave the int32 range; the offending coordinate is left as it
 * was, but the coordinates before it have already been noised (discard the vector).
 */
export function addDiscreteGaussianNoise<T extends Int32Array | Float64Array>(
  v: T,
  sigmaSquared: Rational | number,
  rng: BitSource = cryptoRng(),
): T {
  const sampler = createDiscreteGaussianSampler(sigmaSquared, rng);
  if (v instanceof Int32Array) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i] + sampler.nextNumber();
      if (x > 0x7fffffff || x < -0x80000000) {
        throw new CohortError('NOISE_OVERFLOW', `noisy value ${x} at index ${i} leaves the int32 range`, { index: i });
      }
      v[i] = x;
    }
  } else {
    for (let i = 0; i < v.length; i++) v[i] += sampler.nextNumber();
  }
  return v;
}

// ---------------------------------------------------------------------------------------------------------
// Float helpers (tests, accounting).

/** Terms beyond |y| > ~38.6·σ are below e^{-745} (zero in float64). */
function support(sigmaSquared: number): number {
  return Math.ceil(38.6 * Math.sqrt(sigmaSquared)) + 1;
}

function checkSigmaSquared(sigmaSquared: number): void {
  if (!(sigmaSquared > 0) || !Number.isFinite(sigmaSquared)) {
    throw new CohortError('BAD_NOISE', `σ² must be finite and > 0, got ${sigmaSquared}`, { sigmaSquared });
  }
}

/** Σ_{y∈Z} exp(−y²/(2σ²)), summed smallest terms first. */
export function discreteGaussianNormalizer(sigmaSquared: number): number {
  checkSigmaSquared(sigmaSquared);
  let sum = 0;
  for (let y = support(sigmaSquared); y >= 1; y--) sum += Math.exp((-y * y) / (2 * sigmaSquared));
  return 1 + 2 * sum;
}

/** P[Y = x] for Y ~ N_Z(0, σ²). */
export function discreteGaussianPmf(x: number, sigmaSquared: number): number {
  return Math.exp((-x * x) / (2 * sigmaSquared)) / discreteGaussianNormalizer(sigmaSquared);
}

/** Var[Y] = E[Y²] for Y ~ N_Z(0, σ²) (slightly below σ², as CKS 2020 show). */
export function discreteGaussianVariance(sigmaSquared: number): number {
  checkSigmaSquared(sigmaSquared);
  let second = 0;
  for (let y = support(sigmaSquared); y >= 1; y--) second += y * y * Math.exp((-y * y) / (2 * sigmaSquared));
  return (2 * second) / discreteGaussianNormalizer(sigmaSquared);
}
