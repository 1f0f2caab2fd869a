/**
 * Shamir t-of-k secret sharing (Shamir, "How to Share a Secret", CACM 1979) over the prime field
 * F_p with p = 2^521 − 1 (a Mersenne prime, the P-521 field prime), in BigInt.
 * Used for the two secrets each client shares with its neighbours: its mask-agreement secret key
 * s_u^SK and its self-mask seed b_u (Bonawitz et al. CCS 2017, §4, Round 1 ShareKeys; Bell et al.
 * CCS 2020, §3: shares go to the k graph neighbours only).
 *
 * Secrets are byte strings of at most 64 bytes, read big-endian as integers < 2^512 < p.
 * Split (§2 of Shamir): f(x) = s + a_1 x + … + a_{t−1} x^{t−1}, a_i uniform in F_p; share i = (x_i, f(x_i))
 * with distinct nonzero x_i (we use the holder's cohort index + 1).
 * Combine: Lagrange interpolation at 0, f(0) = Σ_i y_i Π_{j≠i} x_j / (x_j − x_i), from the first t
 * distinct shares; every further share must lie on the same polynomial (else ShamirError), so a
 * corrupted share is detected whenever more than t shares are available.
 * Any t − 1 shares are consistent with every secret (for each candidate s there is exactly one
 * polynomial through (0, s) and the t − 1 points), so they reveal nothing; a test demonstrates it.
 */
import { randomBytes } from './bytes.ts';

export const SHAMIR_PRIME = (1n << 521n) - 1n;
/** Bytes of one encoded share value y ∈ F_p (big-endian). */
export const SHARE_VALUE_BYTES = 66;
export const MAX_SECRET_BYTES = 64;
/** Share abscissae are positive 32-bit integers. */
export const MAX_SHARE_X = 0xffffffff;

export interface ShamirShare {
  x: number;
  y: bigint;
}

export class ShamirError extends Error {
  override readonly name = 'ShamirError';
}

const P = SHAMIR_PRIME;
const mod = (a: bigint): bigint => {
  const r = a % P;
  return r < 0n ? r + P : r;
};

/** a^{-1} mod p by the extended Euclidean algorithm (a ≠ 0 mod p). */
function invert(a: bigint): bigint {
  let [r0, r1] = [mod(a), P];
  let [s0, s1] = [1n, 0n];
  if (r0 === 0n) throw new ShamirError('shamir: inverse of zero');
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return mod(s0);
}

export function bytesToBigInt(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = 0; i < bytes.length; i++) v = (v << 8n) | BigInt(bytes[i]);
  return v;
}

export function bigIntToBytes(v: bigint, length: number): Uint8Array {
  if (v < 0n || v >= 1n << BigInt(8 * length)) throw new ShamirError(`shamir: value does not fit in ${length} bytes`);
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Uniform element of F_p by rejection from 521 random bits. */
function randomFieldElement(random: (n: number) => Uint8Array): bigint {
  for (;;) {
    const bytes = random(SHARE_VALUE_BYTES);
    bytes[0] &= 0x01; // 66 bytes = 528 bits; keep 521
    const v = bytesToBigInt(bytes);
    if (v < P) return v;
  }
}

function checkX(x: number): void {
  if (!Number.isInteger(x) || x < 1 || x > MAX_SHARE_X) throw new ShamirError(`shamir: share abscissa ${x} not in [1, 2^32)`);
}

/** Splits `secret` into one share per abscissa in `xs`; any `threshold` of them reconstruct it. */
export function shamirSplit(
  secret: Uint8Array,
  xs: readonly number[],
  threshold: number,
  random: (n: number) => Uint8Array = randomBytes,
): ShamirShare[] {
  if (secret.length > MAX_SECRET_BYTES) throw new ShamirError(`shamir: secret longer than ${MAX_SECRET_BYTES} bytes`);
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > xs.length) {
    throw new ShamirError(`shamir: threshold ${threshold} not in [1, ${xs.length}]`);
  }
  const seen = new Set<number>();
  for (const x of xs) {
    checkX(x);
    if (seen.has(x)) throw new ShamirError(`shamir: duplicate abscissa ${x}`);
    seen.add(x);
  }
  const coeffs = [bytesToBigInt(secret)];
  for (let i = 1; i < threshold; i++) coeffs.push(randomFieldElement(random));
  return xs.map((x) => {
    // Horner evaluation of f at x.
    const bx = BigInt(x);
    let y = 0n;
    for (let i = coeffs.length - 1; i >= 0; i--) y = (y * bx + coeffs[i]) % P;
    return { x, y };
  });
}

/** Validated, de-duplicated shares (identical repeats dropped; conflicting repeats are an error). */
function distinctShares(shares: readonly ShamirShare[]): ShamirShare[] {
  const byX = new Map<number, bigint>();
  const out: ShamirShare[] = [];
  for (const s of shares) {
    checkX(s.x);
    if (typeof s.y !== 'bigint' || s.y < 0n || s.y >= P) throw new ShamirError(`shamir: share value for x=${s.x} not in F_p`);
    const prev = byX.get(s.x);
    if (prev === undefined) {
      byX.set(s.x, s.y);
      out.push(s);
    } else if (prev !== s.y) {
      throw new ShamirError(`shamir: two different shares for x=${s.x}`);
    }
  }
  return out;
}

/**
 * Lagrange interpolation through fixed abscissae xs: the weights w_i(at) = N_i(at) / D_i with
 * N_i(at) = Π_{j≠i} (at − x_j) and D_i = Π_{j≠i} (x_i − x_j). The D_i do not depend on `at`, so their
 * inverses are computed once, with one field inversion for all of them (Montgomery's batch-inversion
 * trick: invert the product, then peel off each factor); each evaluation then costs O(t)
 * multiplications (N_i from prefix and suffix products), no inversion.
 */
class Interpolator {
  private readonly invD: bigint[];

  constructor(private readonly xs: readonly bigint[]) {
    const t = xs.length;
    const d = xs.map((xi, i) => {
      let p = 1n;
      for (let j = 0; j < t; j++) if (j !== i) p = (p * mod(xi - xs[j])) % P;
      return p;
    });
    // Batch inversion: prefix[i] = d_0 … d_{i−1}; inv = (d_0 … d_{t−1})^{-1}.
    const prefix: bigint[] = [1n];
    for (let i = 0; i < t; i++) prefix.push((prefix[i] * d[i]) % P);
    let inv = invert(prefix[t]);
    this.invD = new Array<bigint>(t);
    for (let i = t - 1; i >= 0; i--) {
      this.invD[i] = (inv * prefix[i]) % P;
      inv = (inv * d[i]) % P;
    }
  }

  weights(at: bigint): bigint[] {
    const { xs } = this;
    const t = xs.length;
    const diff = xs.map((x) => mod(at - x));
    const suffix = new Array<bigint>(t + 1);
    suffix[t] = 1n;
    for (let i = t - 1; i >= 0; i--) suffix[i] = (suffix[i + 1] * diff[i]) % P;
    const out = new Array<bigint>(t);
    let prefix = 1n;
    for (let i = 0; i < t; i++) {
      out[i] = (((prefix * suffix[i + 1]) % P) * this.invD[i]) % P;
      prefix = (prefix * diff[i]) % P;
    }
    return out;
  }

  evaluate(ys: readonly bigint[], at: bigint): bigint {
    const w = this.weights(at);
    let y = 0n;
    for (let i = 0; i < ys.length; i++) y = (y + ys[i] * w[i]) % P;
    return y;
  }
}

/**
 * Reconstructs a `secretBytes`-byte secret from at least `threshold` shares. Throws ShamirError when
 * there are too few distinct shares, when two shares for one x differ, when any share beyond the
 * first t does not lie on the interpolated polynomial, or when the result does not fit the secret size.
 */
export function shamirCombine(shares: readonly ShamirShare[], threshold: number, secretBytes = 32): Uint8Array {
  const distinct = distinctShares(shares);
  if (!Number.isInteger(threshold) || threshold < 1) throw new ShamirError(`shamir: bad threshold ${threshold}`);
  if (distinct.length < threshold) {
    throw new ShamirError(`shamir: ${distinct.length} distinct shares, need ${threshold}`);
  }
  const basis = distinct.slice(0, threshold);
  const poly = new Interpolator(basis.map((s) => BigInt(s.x)));
  const ys = basis.map((s) => s.y);
  const secret = poly.evaluate(ys, 0n);
  for (const extra of distinct.slice(threshold)) {
    if (poly.evaluate(ys, BigInt(extra.x)) !== extra.y) throw new ShamirError(`shamir: share for x=${extra.x} is inconsistent with the others`);
  }
  if (secret >= 1n << BigInt(8 * secretBytes)) throw new ShamirError('shamir: reconstructed value is not a valid secret (inconsistent shares)');
  return bigIntToBytes(secret, secretBytes);
}

/** Interpolates the unique degree < t polynomial through `points` and evaluates it at `at` (tests, analysis). */
export function interpolateAt(points: readonly ShamirShare[], at: number): bigint {
  return new Interpolator(points.map((p) => BigInt(p.x))).evaluate(
    points.map((p) => p.y),
    BigInt(at),
  );
}

export function encodeShareValue(y: bigint): Uint8Array {
  if (y < 0n || y >= P) throw new ShamirError('shamir: share value not in F_p');
  return bigIntToBytes(y, SHARE_VALUE_BYTES);
}

export function decodeShareValue(bytes: Uint8Array): bigint {
  if (bytes.length !== SHARE_VALUE_BYTES) throw new ShamirError(`shamir: share value must be ${SHARE_VALUE_BYTES} bytes`);
  const y = bytesToBigInt(bytes);
  if (y >= P) throw new ShamirError('shamir: share value not in F_p');
  return y;
}
