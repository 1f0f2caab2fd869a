/**
 * Exact non-negative rationals (BigInt numerator/denominator) and exact uniform integers from random
 * bits: the arithmetic the discrete Gaussian sampler of Canonne, Kamath, Steinke 2020 runs on, so that
 * no floating-point rounding ever enters a sampling decision.
 */
import { CohortError } from '../errors.ts';

/** num/den with den > 0, num ≥ 0, in lowest terms. */
export interface Rational {
  readonly num: bigint;
  readonly den: bigint;
}

/** Anything that yields uniform 32-bit words. `Rng` from shared/random.ts is one (cryptoRng, seededRng). */
export interface BitSource {
  nextUint32(): number;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** The rational num/den (integers, den ≠ 0, value ≥ 0), reduced to lowest terms. */
export function rational(num: bigint | number, den: bigint | number = 1n): Rational {
  if (typeof num === 'number' && !Number.isSafeInteger(num)) {
    throw new CohortError('BAD_RATIONAL', `numerator must be a safe integer, got ${num}`);
  }
  if (typeof den === 'number' && !Number.isSafeInteger(den)) {
    throw new CohortError('BAD_RATIONAL', `denominator must be a safe integer, got ${den}`);
  }
  let n = BigInt(num);
  let d = BigInt(den);
  if (d === 0n) throw new CohortError('BAD_RATIONAL', 'denominator must not be 0');
  if (d < 0n) {
    n = -n;
    d = -d;
  }
  if (n < 0n) throw new CohortError('BAD_RATIONAL', `rational must be ≥ 0, got ${n}/${d}`);
  const g = gcd(n, d);
  return g > 1n ? { num: n / g, den: d / g } : { num: n, den: d };
}

/**
 * The exact value of a finite non-negative double as a rational: every double is M·2^E with integer M,
 * E, so the result has a power-of-two denominator (e.g. 0.1 becomes 3602879701896397/2^55, the double
 * nearest 1/10, not 1/10 itself). No approximation is made.
 */
export function rationalFromNumber(x: number): Rational {
  if (!Number.isFinite(x) || x < 0) throw new CohortError('BAD_RATIONAL', `expected a finite number ≥ 0, got ${x}`);
  if (x === 0) return { num: 0n, den: 1n };
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biasedExponent = (hi >>> 20) & 0x7ff;
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exponent: number;
  if (biasedExponent === 0) {
    exponent = -1074; // subnormal: mantissa · 2^-1074
  } else {
    mantissa |= 1n << 52n;
    exponent = biasedExponent - 1075;
  }
  while ((mantissa & 1n) === 0n && exponent < 0) {
    mantissa >>= 1n;
    exponent++;
  }
  return exponent >= 0 ? { num: mantissa << BigInt(exponent), den: 1n } : { num: mantissa, den: 1n << BigInt(-exponent) };
}

export function toRational(x: Rational | number): Rational {
  return typeof x === 'number' ? rationalFromNumber(x) : rational(x.num, x.den);
}

/** ⌊√n⌋ for n ≥ 0 (Newton's method on integers). */
export function isqrt(n: bigint): bigint {
  if (n < 0n) throw new CohortError('BAD_RATIONAL', 'isqrt of a negative number');
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n)))) + 1n; // start above the root
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) break;
    x = y;
  }
  while (x * x > n) x--;
  while ((x + 1n) * (x + 1n) <= n) x++;
  return x;
}

const TWO_32 = 2 ** 32;
const MAX_U32_BOUND = 0x1_0000_0000n;

/** Uniform integer in [0, n), n ≤ 2^32, by rejection (no modulo bias). */
export function uniformBelowSmall(rng: BitSource, n: number): number {
  const limit = TWO_32 - (TWO_32 % n);
  for (;;) {
    const x = rng.nextUint32();
    if (x < limit) return x % n;
  }
}

/** Uniform integer in [0, n) for n ≥ 1, exactly, from 32-bit words (rejection sampling on ⌈log₂ n⌉ bits). */
export function uniformBelow(rng: BitSource, n: bigint): bigint {
  if (n <= 0n) throw new CohortError('BAD_RATIONAL', `uniform bound must be ≥ 1, got ${n}`);
  if (n <= MAX_U32_BOUND) return BigInt(uniformBelowSmall(rng, Number(n)));
  const bits = (n - 1n).toString(2).length;
  const words = Math.ceil(bits / 32);
  const mask = (1n << BigInt(bits)) - 1n;
  for (;;) {
    let x = 0n;
    for (let i = 0; i < words; i++) x = (x << 32n) | BigInt(rng.nextUint32());
    x &= mask;
    if (x < n) return x;
  }
}

/** Bernoulli(num/den) for 0 ≤ num ≤ den: true with probability exactly num/den. */
export function bernoulliRational(rng: BitSource, num: bigint, den: bigint): boolean {
  return uniformBelow(rng, den) < num;
}
