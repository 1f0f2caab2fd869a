/**
 * A fast discrete Gaussian sampler by table inversion, for the per-coordinate noise of distributed DP.
 *
 * The distribution is N_Z(0, σ²), P[Y = k] ∝ exp(−k²/(2σ²)) on the integers (Canonne, Kamath, Steinke
 * 2020, "The Discrete Gaussian for Differential Privacy"). `discrete-gaussian.ts` samples it exactly
 * (CKS 2020, Algorithm 3) at ~2–6 µs per sample; a client noising d ≈ 1.7M coordinates needs ~1000×
 * less. This module samples by inversion of a cumulative distribution table (the CDT method of
 * table-based lattice Gaussian samplers: Peikert 2010, "An Efficient and Parallel Gaussian Sampler for
 * Lattices"; Dwarakanath, Galbraith 2014, "Sampling from Discrete Gaussians for Lattice-Based
 * Cryptography on a Constrained Device"): one 32-bit uniform word and usually a single table load per
 * sample (~10 ns).
 *
 * Construction, in exact fixed-point integers (BigInt; no floating point touches a probability):
 * - σ² (a double) is taken as its exact rational value n/d (`rationalFromNumber`), x = 1/(2σ²) = d/(2n).
 * - q = exp(−x) to F = 192 fractional bits: x = m + f with m = ⌊x⌋, f ∈ [0, 1), exp(−f) and exp(−1) by
 *   their alternating Taylor series at F + 32 bits, exp(−x) = exp(−f)·exp(−1)^m; every truncation is
 *   counted into an explicit error bound e_q (a few units of 2^−F).
 * - p(k) = q^(k²) by p(k+1) = p(k)·r(k), r(k) = q^(2k+1), r(k+1) = r(k)·q², each product truncated
 *   to F bits. With e₂ = 2e_q + 1 the error of q̂², the errors (units of 2^−F) obey
 *   |r̂(k) − r(k)| ≤ e_q + k(e₂ + 1) and |p̂(k) − p(k)| ≤ k·e_q + (e₂ + 1)·k(k−1)/2 + k
 *   (all values lie in [0, 1], so a product's error is at most the sum of its factors' errors plus the
 *   truncation).
 * - The support is cut to [−K, K] with K the first index (from a float estimate on) whose tail passes an
 *   exact check: Σ_{k>K} q^(k²) ≤ q^((K+1)²)/(1 − q^(2K+2)) ≤ p(K+1)/(1 − r(K)) (k² ≥ (K+1)² +
 *   2(K+1)(k−K−1), a geometric series), so the mass outside [−K, K] is at most
 *   τ = 2·p(K+1)/((1 − r(K))·Z_K), with upper/lower error bars on every term; K is accepted when
 *   τ ≤ 2^−100.
 * - With S = Σ_{0≤k≤K} p̂(k) and Ẑ = 2S − 1, a_k = ⌊2^96·(S − S_k)/Ẑ⌋ (by a 96 + F + 128-bit reciprocal
 *   of Ẑ) is the 96-bit CDF at −k − 1, and the CDF at k ≥ 0 is 2^96 − a_k, so the table is exactly
 *   symmetric (the sampled noise has mean exactly 0). Entries are stored as hi/mid/lo Uint32Arrays;
 *   values whose table mass is 0 are trimmed from the ends.
 *
 * Sampling: U uniform in [0, 2^96), return the smallest k with U < F_k. Only U's high word is drawn at
 * first (words are filled in bulk, 16K per call). Most words are resolved by one load from a "direct"
 * table indexed by their top 16–20 bits, which holds the answer wherever no CDF entry starts inside that
 * cell (within ~3σ of 0); the others go through a guide table on the top 16 bits (Chen–Asau style: it
 * gives the range of candidate entries, usually one comparison, a binary search in the thin tails). The
 * middle and low words are drawn, from a separate refill stream, only when U's high word equals an
 * entry's (probability ~2^−31 per sample), so the comparison is always exact on 96 bits.
 *
 * Statistical distance. One table sample Ỹ and Y ~ N_Z(0, σ²) satisfy
 *   TV(Ỹ, Y) ≤ tvBound = τ + (2K+1)·max_k|p̂(k) − p(k)|·2^−F + (K+1)·(1 + 2^−106)·2^−96,
 * the tail, the arithmetic error (normalisation at most doubles an L1 error; Z_K ≥ 1), and the CDF
 * rounding (each table mass is within one 2^−96 step of p̂(k)/Ẑ, the centre within two). tvBound is
 * ≈ 2^−80 at σ = 5,000 and below 2^−75 whenever the table is allowed (≤ 2^21 entries, σ ≲ 88,000;
 * larger σ is refused: use the exact sampler). For N independent samples (clients × d coordinates of a
 * round) the joint noise is within N·tvBound of exact, and so is anything computed from it (the SecAgg
 * sum). A mechanism that is (ε, δ)-DP with exact noise is therefore (ε, δ + (1 + e^ε)·N·tvBound)-DP with
 * table noise (P̃(S) ≤ P(S) + η ≤ e^ε Q(S) + δ + η ≤ e^ε Q̃(S) + δ + (1 + e^ε)η); over T rounds the term
 * is (1 + e^ε)·Σ_rounds N·tvBound. This term is additive to δ; it is not added to the accountant's δ.
 *
 * Randomness: `cryptoWords` of shared/random.ts, the one door to the platform CSPRNG (node:crypto
 * `randomFillSync` in Node, else WebCrypto). A deterministic `UniformWords` can be injected for tests and
 * simulations (e.g. `wordsFromRng(seededRng(…))`), never for real noise.
 */
import { CohortError } from '../errors.ts';
import { cryptoWords, type UniformWords } from '../random.ts';
import { addDiscreteGaussianNoise } from './discrete-gaussian.ts';
import { type BitSource, type Rational, toRational } from './rational.ts';

/** Bits of the CDF entries (three 32-bit words). */
export const TABLE_CDF_BITS = 96;
/** The support is cut where the discarded two-sided tail mass is ≤ 2^−TABLE_TAIL_BITS. */
export const TABLE_TAIL_BITS = 100;
/** Largest table (2K + 1 values) the sampler builds; beyond it, use the exact sampler. */
export const TABLE_MAX_ENTRIES = 2 ** 21;

/** Fractional bits of the fixed-point probabilities. */
const F = 192n;
const ONE = 1n << F;
/** Extra bits for exp(−x). */
const GUARD = 32n;
/** Extra bits of the reciprocal of the normaliser. */
const RECIP_EXTRA = 128n;
const CDF_BITS = 96n;
/** Bits of the guide table index (top bits of U's high word). */
const GUIDE_BITS = 16;
const GUIDE_SHIFT = 32 - GUIDE_BITS;
/** Above this x = 1/(2σ²), q = e^{−x} < 2^−115 and the table is the single value 0. */
const X_TRIVIAL = 80;
/** Float bounds are rounded up by this factor (their few float operations err by far less). */
const ROUND_UP = 1 + 2 ** -40;
/** Words per randomness refill (64 KiB). */
const CHUNK_WORDS = 16384;
const TIE_WORDS = 64;
/** Guide cells with at most this many entries are scanned linearly, larger ones bisected. */
const LINEAR_SCAN = 8;
/** `direct` marker of a guide cell whose value is not known from the cell alone. */
const DIRECT_NONE = -32768;

// ---------------------------------------------------------------------------------------------------------
// Randomness.

/** A `BitSource` reading a `UniformWords` in buffered pieces (the inverse of random.ts's `wordsFromRng`). */
export function bitSourceFromWords(words: UniformWords): BitSource {
  const buf = new Uint32Array(256);
  let pos = buf.length;
  return {
    nextUint32: () => {
      if (pos === buf.length) {
        words(buf);
        pos = 0;
      }
      return buf[pos++];
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// exp(−x) in fixed point.

/**
 * ⌊2^w·exp(−num/den)⌋ up to an error, for 0 ≤ num/den ≤ 1, by the alternating Taylor series. Returns the
 * value and a bound on |value − 2^w·exp(−num/den)| in units of 2^−w: each term ⌊t_{j−1}·f/j⌋ is within
 * 2 units of t_j (e_j ≤ e_{j−1}/j + 1), and once a computed term is 0 the true remainder of the
 * alternating, decreasing series is at most 2 units.
 */
function expNegUnit(num: bigint, den: bigint, w: bigint): { value: bigint; error: bigint } {
  const one = 1n << w;
  let sum = one;
  let term = one;
  let terms = 0n;
  for (let j = 1n; ; j++) {
    term = (term * num) / (den * j);
    if (term === 0n) break;
    sum += j & 1n ? -term : term;
    terms++;
  }
  return { value: sum, error: 2n * terms + 2n };
}

/**
 * q̂ ≈ 2^F·exp(−x) for 0 ≤ x = num/den < X_TRIVIAL, with |q̂ − 2^F·exp(−x)| ≤ error (units of 2^−F).
 * Products of values in [0, 1] add their factors' errors plus one unit of truncation.
 */
function expNegFixed(num: bigint, den: bigint): { q: bigint; error: bigint } {
  const w = F + GUARD;
  const m = num / den;
  const f = expNegUnit(num - m * den, den, w);
  let value = f.value;
  let error = f.error;
  if (m > 0n) {
    const e1 = expNegUnit(1n, 1n, w);
    for (let i = 0n; i < m; i++) {
      value = (value * e1.value) >> w;
      error += e1.error + 1n;
    }
  }
  // Drop the guard bits: ⌊value/2^GUARD⌋ errs by the scaled error plus one unit.
  return { q: value >> GUARD, error: ((error + (1n << GUARD) - 1n) >> GUARD) + 1n };
}

// ---------------------------------------------------------------------------------------------------------
// The table.

export interface TableDiscreteGaussian {
  /** σ² as given (a double), and its exact rational value, which the table is built for. */
  readonly sigmaSquared: number;
  readonly sigmaSquaredExact: Rational;
  /** Samples lie in [−support, support]. */
  readonly support: number;
  /** Number of values in the table's range, 2·support + 1 (far out in the tails some have mass 0). */
  readonly entries: number;
  /**
   * Upper bound on the total-variation distance between one sample and N_Z(0, σ²): the sum of the
   * three parts below (rounded up).
   */
  readonly tvBound: number;
  /** Mass of N_Z(0, σ²) outside the cut support [−K, K] (K ≥ support), ≤ 2^−100. */
  readonly tailBound: number;
  /** Contribution of the fixed-point arithmetic error of q^(k²). */
  readonly arithmeticBound: number;
  /** Contribution of rounding the CDF to 96 bits: (K + 1)·(1 + 2^−106)·2^−96. */
  readonly roundingBound: number;
  /** Total-variation bound of `samples` independent samples (e.g. clients × d of a round): samples·tvBound. */
  totalVariationBound(samples: number): number;
  /** Table probability of k, as a float (exactly (F_k − F_{k−1})/2^96 up to float rounding). */
  probability(k: number): number;
  /** Table probability of k times 2^96, exactly. */
  mass(k: number): bigint;
  /**
   * Writes one sample per entry of `out` (or adds it, `add` = true) and returns `out`. Int32Array:
   * throws CohortError NOISE_OVERFLOW if a value would leave the int32 range (the vector is then
   * partly noised: discard it). `words` defaults to `cryptoWords`.
   */
  sampleInto<T extends Int32Array | Float64Array>(out: T, add?: boolean, words?: UniformWords): T;
  /** One sample. */
  sample(words?: UniformWords): number;
}

function checkSigmaSquaredNumber(sigmaSquared: number): void {
  if (!(sigmaSquared > 0) || !Number.isFinite(sigmaSquared)) {
    throw new CohortError('BAD_NOISE', `table discrete Gaussian: σ² must be finite and > 0, got ${sigmaSquared}`, { sigmaSquared });
  }
}

/**
 * A float estimate of the smallest K whose normalised tail bound 2e^{−(K+1)²x}/((1 − e^{−2(K+1)x})·Z)
 * is ≤ 2^−100, Z ≈ max(1, σ√(2π)). The exact check during construction decides; this only says where to
 * start checking and whether the table would be too large.
 */
function estimateSupport(x: number): number {
  const logZ = Math.log(Math.max(1, Math.sqrt(Math.PI / x)));
  const target = -TABLE_TAIL_BITS * Math.LN2;
  const logTail = (k: number): number => Math.LN2 - (k + 1) * (k + 1) * x - Math.log(-Math.expm1(-2 * (k + 1) * x)) - logZ;
  // logTail decreases in k: bisect for the first k at or below the target.
  let lo = 0;
  let hi = Math.max(1, Math.ceil(Math.sqrt((TABLE_TAIL_BITS * Math.LN2) / x)));
  while (logTail(hi) > target) hi *= 2;
  if (logTail(lo) <= target) return 0;
  while (hi - lo > 1) {
    const m = Math.floor((lo + hi) / 2);
    if (logTail(m) > target) lo = m;
    else hi = m;
  }
  return hi;
}

function sigmaSquaredFloat(s2: Rational): number {
  return Number(s2.num) / Number(s2.den);
}

/**
 * Whether the table sampler takes σ² (finite, > 0, and a table of ≤ TABLE_MAX_ENTRIES values, i.e.
 * σ ≲ 88,000). Callers fall back to the exact sampler otherwise.
 */
export function tableDiscreteGaussianSupports(sigmaSquared: number | Rational): boolean {
  const value = typeof sigmaSquared === 'number' ? sigmaSquared : sigmaSquaredFloat(toRational(sigmaSquared));
  if (!(value > 0) || !Number.isFinite(value)) return false;
  const x = 1 / (2 * value);
  if (!(x < X_TRIVIAL)) return true;
  return 2 * estimateSupport(x * (1 - 2 ** -40)) + 1 <= TABLE_MAX_ENTRIES;
}

interface Built {
  support: number;
  /** K of the tail check (≥ support). */
  cut: number;
  /** CDF entries j = 0..2·support − 1 (value k = j − support); F_{support} = 2^96 is implicit. */
  hi: Uint32Array;
  mid: Uint32Array;
  lo: Uint32Array;
  tailBound: number;
  arithmeticBound: number;
  roundingBound: number;
}

/** Error bounds (units of 2^−F) of r̂(k) and p̂(k), as BigInt. */
function errR(k: bigint, eq: bigint, e2: bigint): bigint {
  return eq + k * (e2 + 1n);
}
function errP(k: bigint, eq: bigint, e2: bigint): bigint {
  return k * eq + ((e2 + 1n) * k * (k - 1n)) / 2n + k;
}

function build(s2: Rational, sigmaSquared: number): Built {
  // x = 1/(2σ²) = den/(2·num), exactly.
  const xNum = s2.den;
  const xDen = 2n * s2.num;
  if (xNum >= BigInt(X_TRIVIAL) * xDen) {
    // q < e^{−80}: the mass off 0 is 2Σ_{k≥1} q^{k²}/Z ≤ 2q/(1 − q) < 2^−114.
    const empty = new Uint32Array(0);
    return { support: 0, cut: 0, hi: empty, mid: empty, lo: empty, tailBound: 2 ** -114, arithmeticBound: 0, roundingBound: 0 };
  }
  const xFloat = 1 / (2 * sigmaSquared);
  const estimate = estimateSupport(xFloat);
  if (2 * estimate + 1 > TABLE_MAX_ENTRIES) {
    throw new CohortError(
      'NOISE_TABLE_TOO_LARGE',
      `table discrete Gaussian: σ² = ${sigmaSquared} needs ~${2 * estimate + 1} table entries, more than ${TABLE_MAX_ENTRIES}; use the exact sampler`,
      { sigmaSquared, entries: 2 * estimate + 1 },
    );
  }
  const maxK = (TABLE_MAX_ENTRIES - 1) / 2;
  const { q, error: eq } = expNegFixed(xNum, xDen);
  const q2 = (q * q) >> F;
  const e2 = 2n * eq + 1n;

  // p̂(0..K) and the running sum; the tail check from a little below the estimate on.
  const p: bigint[] = [ONE];
  let r = q; // r̂(k)
  let sum = ONE; // S_k = Σ_{i≤k} p̂(i)
  let k = 0;
  const checkFrom = Math.max(0, estimate - 3);
  const tailLimit = 1n << BigInt(TABLE_TAIL_BITS);
  let tailBound = 0;
  for (;;) {
    const next = (p[k] * r) >> F; // p̂(k+1)
    if (k >= checkFrom) {
      const kb = BigInt(k);
      // Upper bounds on p(k+1), r(k); a lower bound on Z_K = 2S_K − 1 (errors of 2K+1 terms).
      const pUp = next + errP(kb + 1n, eq, e2);
      const rUp = r + errR(kb, eq, e2);
      const zLow = 2n * sum - ONE - (2n * kb + 1n) * errP(kb, eq, e2);
      if (rUp < ONE && zLow > 0n) {
        // τ = 2·pUp/((1 − rUp)·zLow) in real terms (ONE scales cancel as pUp·ONE/((ONE − rUp)·zLow)).
        const numer = 2n * pUp * ONE;
        const denom = (ONE - rUp) * zLow;
        if (numer * tailLimit <= denom) {
          tailBound = (Number(numer) / Number(denom)) * ROUND_UP;
          if (!(tailBound > 0)) tailBound = 2 ** -1000; // underflow of a positive bound far below 2^−100
          break;
        }
      }
    }
    if (k >= maxK) {
      throw new CohortError('NOISE_TABLE_TOO_LARGE', `table discrete Gaussian: σ² = ${sigmaSquared} needs more than ${TABLE_MAX_ENTRIES} entries`, {
        sigmaSquared,
      });
    }
    p.push(next);
    sum += next;
    r = (r * q2) >> F;
    k++;
  }
  const cut = k;

  // a_i = ⌊2^96·(S − S_i)/Ẑ⌋ for i = 0..K, via R = ⌊2^(96+E)/Ẑ⌋: a_i ∈ (A_i − 1 − 2^−106, A_i].
  const z = 2n * sum - ONE;
  const e = F + RECIP_EXTRA;
  const recip = (1n << (CDF_BITS + e)) / z;
  const aHi = new Uint32Array(cut + 1);
  const aMid = new Uint32Array(cut + 1);
  const aLo = new Uint32Array(cut + 1);
  const view = new DataView(new ArrayBuffer(8));
  let rest = sum; // S − S_{i−1}
  let support = 0;
  for (let i = 0; i <= cut; i++) {
    rest -= p[i];
    const a = (rest * recip) >> e;
    if (a === 0n) break; // a_j = 0 for all j ≥ i: values beyond i have table mass 0
    view.setBigUint64(0, a);
    aHi[i] = Number(a >> 64n);
    aMid[i] = view.getUint32(0);
    aLo[i] = view.getUint32(4);
    support = i + 1;
  }
  // CDF at k = −support..support−1: F_{−i−1} = a_i, F_i = 2^96 − a_i (two's complement over 96 bits).
  const n = 2 * support;
  const hi = new Uint32Array(n);
  const mid = new Uint32Array(n);
  const lo = new Uint32Array(n);
  for (let i = 0; i < support; i++) {
    const neg = support - 1 - i;
    hi[neg] = aHi[i];
    mid[neg] = aMid[i];
    lo[neg] = aLo[i];
    const pos = support + i;
    const l = (~aLo[i] + 1) >>> 0;
    const cLo = l === 0 ? 1 : 0;
    const m = (~aMid[i] + cLo) >>> 0;
    const cMid = cLo === 1 && m === 0 ? 1 : 0;
    lo[pos] = l;
    mid[pos] = m;
    hi[pos] = (~aHi[i] + cMid) >>> 0;
  }

  const K = cut;
  const maxErrP = Number(errP(BigInt(K), eq, e2));
  const arithmeticBound = (2 * K + 1) * maxErrP * 2 ** -Number(F) * ROUND_UP;
  const roundingBound = (K + 1) * (1 + 2 ** -106) * 2 ** -96 * ROUND_UP;
  return { support, cut, hi, mid, lo, tailBound, arithmeticBound, roundingBound };
}

/**
 * The guide table over the top 16 bits g of U's high word: guide[g] = the first entry whose high word
 * is ≥ g·2^16 (n if none), g = 0..2^16, so the answer for U lies in [guide[g], guide[g+1]]. `cell`
 * holds, for each g, two words side by side (one cache line): guide[g]·4 plus the cell's class, and for
 * class 1 the high word of its one entry. Classes: 0 = no entry starts in the cell (the answer is
 * guide[g], no comparison), 1 = one entry (one comparison against the word beside it), 2 = a few
 * (linear scan), 3 = many (binary search; the thin tails).
 */
function buildGuide(hi: Uint32Array): { guide: Int32Array; cell: Uint32Array } {
  const size = 1 << GUIDE_BITS;
  const n = hi.length;
  const guide = new Int32Array(size + 1);
  const count = new Int32Array(size);
  // Entry j (cell hi[j] >>> GUIDE_SHIFT) is the first at or above every cell after its predecessor's.
  let previous = -1;
  for (let j = 0; j <= n; j++) {
    const g = j < n ? hi[j] >>> GUIDE_SHIFT : size;
    if (g < size) count[g]++;
    if (g > previous) guide.fill(j, previous + 1, g + 1);
    previous = Math.max(previous, g);
  }
  const cell = new Uint32Array(2 * size);
  for (let g = 0; g < size; g++) {
    const c = count[g];
    cell[2 * g] = guide[g] * 4 + (c === 0 ? 0 : c === 1 ? 1 : c <= LINEAR_SCAN ? 2 : 3);
    if (c === 1) cell[2 * g + 1] = hi[guide[g]];
  }
  return { guide, cell };
}

/**
 * The fast path's lookup: over the top `bits` bits of U's high word, the sampled value itself wherever
 * no entry starts inside that cell (then every U in the cell maps to the same value), else DIRECT_NONE.
 * Those cells lie within a few σ of 0, where one value's mass exceeds a cell's 2^−bits, so Int16 holds
 * the value. 16 bits (128 KiB, stays in cache) up to σ ≈ 1,800, then more bits as σ grows (2 bits per
 * 4× in σ, up to 20: 2 MiB), keeping the share of words that miss the lookup at a few percent.
 */
function directBits(sigmaSquared: number): number {
  return Math.min(20, Math.max(16, 16 + Math.round(Math.log2(Math.sqrt(sigmaSquared) / 1250))));
}

function buildDirect(hi: Uint32Array, support: number, bits: number): Int16Array {
  const size = 2 ** bits;
  const shift = 32 - bits;
  const n = hi.length;
  const direct = new Int16Array(size).fill(DIRECT_NONE);
  // The cells strictly between the cells of entries j − 1 and j hold no entry, and map to value j.
  let previous = -1;
  for (let j = 0; j <= n; j++) {
    const g = j < n ? hi[j] >>> shift : size;
    const y = j - support;
    if (g > previous + 1 && y > DIRECT_NONE && y < 32768) direct.fill(y, previous + 1, g);
    previous = Math.max(previous, g);
  }
  return direct;
}

/** Whether `Table.warmUp` has run in this process. */
let warmedUp = false;

function overflow(value: number, index: number): never {
  throw new CohortError('NOISE_OVERFLOW', `noisy value ${value} at index ${index} leaves the int32 range`, { index });
}

class Table implements TableDiscreteGaussian {
  readonly support: number;
  readonly entries: number;
  readonly tvBound: number;
  readonly tailBound: number;
  readonly arithmeticBound: number;
  readonly roundingBound: number;
  private readonly hi: Uint32Array;
  private readonly mid: Uint32Array;
  private readonly lo: Uint32Array;
  private readonly guide: Int32Array;
  private readonly cell: Uint32Array;
  private readonly direct: Int16Array;
  private readonly directShift: number;
  private readonly chunk = new Uint32Array(CHUNK_WORDS);
  /** Chunk positions that pass 1 of the hot loop leaves to the guide. */
  private readonly pending = new Int32Array(CHUNK_WORDS);
  private readonly tie = new Uint32Array(TIE_WORDS);
  private tiePos = TIE_WORDS;
  private tieSource: UniformWords = cryptoWords;

  constructor(
    readonly sigmaSquared: number,
    readonly sigmaSquaredExact: Rational,
    built: Built,
  ) {
    this.support = built.support;
    this.entries = 2 * built.support + 1;
    this.hi = built.hi;
    this.mid = built.mid;
    this.lo = built.lo;
    const { guide, cell } = buildGuide(built.hi);
    this.guide = guide;
    this.cell = cell;
    const bits = directBits(sigmaSquared);
    this.direct = buildDirect(built.hi, built.support, bits);
    this.directShift = 32 - bits;
    if (!warmedUp) {
      this.warmUp(); // type feedback lives with the (shared) methods: once per process is enough
      warmedUp = true;
    }
    this.tailBound = built.tailBound;
    this.arithmeticBound = built.arithmeticBound;
    this.roundingBound = built.roundingBound;
    this.tvBound = (built.tailBound + built.arithmeticBound + built.roundingBound) * ROUND_UP;
  }

  totalVariationBound(samples: number): number {
    if (!(samples >= 0) || !Number.isFinite(samples)) throw new RangeError(`sample count must be finite and ≥ 0, got ${samples}`);
    return Math.min(1, samples * this.tvBound * ROUND_UP);
  }

  /** F_k·2^96 as a BigInt, for k in [−support − 1, support]. */
  private cdf(k: number): bigint {
    const j = k + this.support;
    if (j < 0) return 0n;
    if (j >= this.hi.length) return 1n << CDF_BITS;
    return (BigInt(this.hi[j]) << 64n) | (BigInt(this.mid[j]) << 32n) | BigInt(this.lo[j]);
  }

  mass(k: number): bigint {
    if (!Number.isInteger(k) || Math.abs(k) > this.support) return 0n;
    return this.cdf(k) - this.cdf(k - 1);
  }

  probability(k: number): number {
    return Number(this.mass(k)) * 2 ** -96;
  }

  /** The next word of the tie stream (U's middle and low words). */
  private tieWord(): number {
    if (this.tiePos === TIE_WORDS) {
      this.tieSource(this.tie);
      this.tiePos = 0;
    }
    return this.tie[this.tiePos++];
  }

  /**
   * The smallest j ≥ start with U < F_j, given hi[start] = u (U's high word) and F_i ≤ U for i < start:
   * U's middle and low words are drawn now, and the scan continues while the high words tie.
   */
  private resolveTie(start: number, u: number): number {
    const um = this.tieWord();
    const ul = this.tieWord();
    const { hi, mid, lo } = this;
    let j = start;
    while (j < hi.length && hi[j] === u) {
      if (um < mid[j] || (um === mid[j] && ul < lo[j])) return j;
      j++;
    }
    return j;
  }

  /** Table index (value + support) of the sample whose high word is u. */
  private index(u: number): number {
    const hi = this.hi;
    const g = u >>> GUIDE_SHIFT;
    const c = this.cell[2 * g];
    let j = c >>> 2;
    switch (c & 3) {
      case 0:
        return j; // hi[j] ≥ (g+1)·2^16 > u
      case 1:
        if (hi[j] < u) return j + 1; // hi[j+1] ≥ (g+1)·2^16 > u
        break;
      case 2: {
        const end = this.guide[g + 1];
        while (j < end && hi[j] < u) j++;
        break;
      }
      default: {
        // The first entry in [j, end) with high word ≥ u (end: hi[end] > u, or end = n).
        let end = this.guide[g + 1];
        while (j < end) {
          const h = (j + end) >>> 1;
          if (hi[h] < u) j = h + 1;
          else end = h;
        }
      }
    }
    return j < hi.length && hi[j] === u ? this.resolveTie(j, u) : j;
  }

  sampleInto<T extends Int32Array | Float64Array>(out: T, add = false, words: UniformWords = cryptoWords): T {
    if (!add) out.fill(0);
    this.tieSource = words;
    this.tiePos = TIE_WORDS; // tie words are never reused across calls (or sources)
    const n = out.length;
    try {
      for (let base = 0; base < n; base += CHUNK_WORDS) {
        const m = Math.min(CHUNK_WORDS, n - base);
        words(m === CHUNK_WORDS ? this.chunk : this.chunk.subarray(0, m));
        if (out instanceof Float64Array) this.chunkFloat64(out, base, m);
        else this.chunkInt32(out, base, m);
      }
    } finally {
      this.tieSource = cryptoWords;
    }
    return out;
  }

  /** The sample for high word u outside the `direct` cells: a class-1 comparison inline, else `index`. */
  private slowValue(u: number): number {
    const at = (u >>> GUIDE_SHIFT) << 1;
    const c = this.cell[at];
    const h = this.cell[at + 1];
    if ((c & 3) === 1 && h !== u) return (c >>> 2) + (h < u ? 1 : 0) - this.support;
    return this.index(u) - this.support;
  }

  // The hot path, per chunk: pass 1 looks every word up in `direct` (one load, no comparison) and
  // queues the few it cannot resolve; pass 2 resolves those through the guide. Pass 1 makes no calls, so
  // the JIT optimizes it once and the rare branches of pass 2 cannot deoptimize it. Written out per
  // array type to stay monomorphic.

  /** out[base + i] += the sample of chunk[i], i < m. */
  private chunkFloat64(out: Float64Array, base: number, m: number): void {
    const { direct, directShift, chunk, pending } = this;
    let queued = 0;
    for (let i = 0; i < m; i++) {
      const y = direct[chunk[i] >>> directShift];
      if (y === DIRECT_NONE) pending[queued++] = i;
      else out[base + i] += y;
    }
    for (let t = 0; t < queued; t++) {
      const i = pending[t];
      out[base + i] += this.slowValue(chunk[i]);
    }
  }

  private chunkInt32(out: Int32Array, base: number, m: number): void {
    const { direct, directShift, chunk, pending } = this;
    let queued = 0;
    for (let i = 0; i < m; i++) {
      const y = direct[chunk[i] >>> directShift];
      if (y === DIRECT_NONE) pending[queued++] = i;
      else {
        const v = out[base + i] + y;
        if (v > 0x7fffffff || v < -0x80000000) overflow(v, base + i);
        out[base + i] = v;
      }
    }
    for (let t = 0; t < queued; t++) {
      const i = pending[t];
      const v = out[base + i] + this.slowValue(chunk[i]);
      if (v > 0x7fffffff || v < -0x80000000) overflow(v, base + i);
      out[base + i] = v;
    }
  }

  /**
   * Runs both chunk loops a few times over words that reach every branch (direct cells, each guide
   * class, a tie), into scratch arrays, so that the JIT has type feedback for all of them when it first
   * optimizes a chunk loop, and has usually optimized it before the first real call. Without it, code
   * optimized during the first chunk's pass 1 lacks feedback for pass 2 and V8 deoptimizes it again and
   * again (measured: the first 1.66M-entry call several times slower than the next).
   */
  private warmUp(): void {
    const m = 4096;
    const chunk = this.chunk;
    for (let i = 0; i < m; i++) chunk[i] = (i * 2 ** 20 + ((i * 40503) & 0xfffff)) >>> 0;
    const hi = this.hi;
    for (let t = 0; t < 16 && hi.length > 0; t++) chunk[t * 97] = hi[Math.floor((t * (hi.length - 1)) / 15)];
    // The tie words come from the production source, so the call's type feedback is the one it will see.
    this.tieSource = cryptoWords;
    this.tiePos = TIE_WORDS;
    try {
      for (let r = 0; r < 8; r++) {
        this.chunkFloat64(new Float64Array(m), 0, m);
        this.chunkInt32(new Int32Array(m), 0, m);
      }
    } finally {
      this.tieSource = cryptoWords;
      this.tiePos = TIE_WORDS;
    }
  }

  sample(words: UniformWords = cryptoWords): number {
    this.tieSource = words;
    this.tiePos = TIE_WORDS;
    try {
      const one = new Uint32Array(1);
      words(one);
      return this.index(one[0]) - this.support;
    } finally {
      this.tieSource = cryptoWords;
    }
  }
}

const CACHE_SIZE = 4;
const cache = new Map<string, Table>();

/**
 * The table sampler of N_Z(0, σ²) (module comment), from a cache of the last few σ² (a round's
 * clients all use the same σ). Throws CohortError BAD_NOISE for σ² ≤ 0 or non-finite, and
 * NOISE_TABLE_TOO_LARGE when the table would exceed TABLE_MAX_ENTRIES values (σ ≳ 88,000): use the
 * exact sampler (`createDiscreteGaussianSampler`) there.
 */
export function createTableDiscreteGaussian(sigmaSquared: number | Rational): TableDiscreteGaussian {
  if (typeof sigmaSquared === 'number') checkSigmaSquaredNumber(sigmaSquared);
  const s2 = toRational(sigmaSquared);
  if (s2.num === 0n) throw new CohortError('BAD_NOISE', 'table discrete Gaussian: σ² must be > 0', { sigmaSquared: 0 });
  const key = `${s2.num}/${s2.den}`;
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const asNumber = typeof sigmaSquared === 'number' ? sigmaSquared : sigmaSquaredFloat(s2);
  if (!(asNumber > 0) || !Number.isFinite(asNumber)) {
    throw new CohortError('BAD_NOISE', `table discrete Gaussian: σ² must be finite and > 0 as a double, got ${asNumber}`);
  }
  const table = new Table(asNumber, s2, build(s2, asNumber));
  cache.set(key, table);
  if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value!);
  return table;
}

/** The table sampler, or undefined where σ² needs a larger table (the exact sampler's range). */
function tableOrUndefined(sigmaSquared: number): TableDiscreteGaussian | undefined {
  if (!tableDiscreteGaussianSupports(sigmaSquared)) return undefined;
  try {
    return createTableDiscreteGaussian(sigmaSquared);
  } catch (err) {
    // At the very edge of the range the exact tail check may need a few entries more than estimated.
    if (err instanceof CohortError && err.code === 'NOISE_TABLE_TOO_LARGE') return undefined;
    throw err;
  }
}

/**
 * v[i] += N_Z(0, σ²) for every i, in place, returning v: the table sampler when σ² is within its range
 * (per-sample TV distance ≤ its `tvBound`, module comment), else the exact CKS 2020 sampler. `words`
 * (default: the platform CSPRNG) feeds either. For Int32Array, throws CohortError NOISE_OVERFLOW on
 * int32 overflow (discard the vector). σ² = 0 adds nothing.
 */
export function addDiscreteGaussianNoiseFast<T extends Int32Array | Float64Array>(v: T, sigmaSquared: number, words?: UniformWords): T {
  if (sigmaSquared === 0) return v;
  checkSigmaSquaredNumber(sigmaSquared);
  const table = tableOrUndefined(sigmaSquared);
  if (table) return table.sampleInto(v, true, words);
  return words ? addDiscreteGaussianNoise(v, sigmaSquared, bitSourceFromWords(words)) : addDiscreteGaussianNoise(v, sigmaSquared);
}

/**
 * TV bound of `samples` discrete Gaussian samples drawn by `addDiscreteGaussianNoiseFast` at σ²
 * (samples·tvBound on the table path, 0 on the exact path). For a round, samples = clients × d; the
 * round is then (ε, δ + (1 + e^ε)·bound)-DP where it would be (ε, δ)-DP with exact noise
 * (`deltaFromTotalVariation`).
 */
export function discreteGaussianNoiseTvBound(sigmaSquared: number, samples: number): number {
  if (sigmaSquared === 0) return 0;
  checkSigmaSquaredNumber(sigmaSquared);
  return tableOrUndefined(sigmaSquared)?.totalVariationBound(samples) ?? 0;
}

/**
 * The additive δ term of replacing exact noise by noise within total-variation distance `tv` (of the
 * whole release): (1 + e^ε)·tv.
 */
export function deltaFromTotalVariation(tv: number, epsilon: number): number {
  if (!(tv >= 0) || !(epsilon >= 0)) throw new RangeError(`need tv ≥ 0 and ε ≥ 0, got tv=${tv}, ε=${epsilon}`);
  return Math.min(1, (1 + Math.exp(epsilon)) * tv * ROUND_UP);
}
