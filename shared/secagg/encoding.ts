/**
 * Integer encoding of model updates for secure aggregation with distributed DP, after Kairouz, Liu,
 * Steinke, "The Distributed Discrete Gaussian Mechanism for Federated Learning with Secure
 * Aggregation", ICML 2021 (KLS21), Algorithm 1 (client) and Algorithm 2 (server):
 *
 *   client: clip to L2 norm c → rotate (randomized Hadamard, below) → scale by 1/γ → randomized
 *           rounding, repeated until ‖x̃‖₂ ≤ Δ₂ (conditional rounding, KLS21 Alg. 1 and Thm. 1) →
 *           optional integer noise (the discrete Gaussian of distributed DP, injected by the caller) →
 *           reduce mod 2^b.
 *   server: the mod-2^b sum → centre into [−2^(b−1), 2^(b−1)) → scale by γ → inverse rotation.
 *
 * Rotation. KLS21 pad x to d' = 2^⌈log2 d⌉ and apply H D / √d' (H the Walsh–Hadamard matrix, D a random
 * ±1 diagonal). Padding would cost up to 2× in every later stage (rounding, masks, bytes on the wire;
 * 26% for the 1,663,370-parameter CNN), so we use two overlapping power-of-two blocks instead: with
 * B = 2^⌊log2 d⌋, R = R₂ ∘ R₁ where R₁ applies H_B D₁ / √B to coordinates [0, B) and R₂ applies
 * H_B D₂ / √B to [d − B, d) (one block when d = B). Both are orthonormal, so R is too (‖Rx‖ = ‖x‖,
 * R⁻¹ = R₁ᵀ R₂ᵀ), and every output coordinate is a Rademacher sum — over the signs of the last block
 * that touched it — of a segment of norm ≤ ‖x‖ with weights 1/√B, hence sub-Gaussian with variance
 * proxy ‖x‖²/B ≤ 2‖x‖²/d: the flattening KLS21's modular analysis needs, with B in place of d'.
 * The encoded vector has exactly d coordinates.
 *
 * Also: the modulus check (does b hold n clients' values without wrap-around, with a stated
 * probability?) and b-bit packing of the masked vector for transport (⌈d·b/8⌉ bytes).
 * Nothing here depends on the SecAgg protocol: the protocol masks and sums whatever Uint32Array of
 * values mod 2^b it is given.
 */
import { ConfigError } from '../errors.ts';
import { l2Norm } from '../dp/clip.ts';
import { cryptoWords, type UniformWords } from '../random.ts';
import { equalBytes, frameFields } from '../crypto/bytes.ts';
import { encodeKernel, FWHT_CACHE_BLOCK, type EncodeKernel } from './encode-kernel.ts';
import { hkdf } from '../crypto/hkdf.ts';
import { prgBytes } from '../crypto/prg.ts';
import { SLICE_WORDS, sliceAccumulator } from '../crypto/simd.ts';

/** KLS21's default conditional-rounding parameter β = e^(−1/2). */
export const DEFAULT_BETA = Math.exp(-0.5);
/** Conditional rounding gives up (and throws) after this many rejected roundings; each is rejected w.p. ≤ β. */
export const MAX_ROUNDING_ATTEMPTS = 100;

export interface EncodingParams {
  /** Model dimension d (before padding). */
  dim: number;
  /** L2 clipping norm c, in model units. */
  clipNorm: number;
  /** Quantisation granularity γ (> 0): one integer step = γ model units. */
  gamma: number;
  /** Modulus 2^bits, 1 ≤ bits ≤ 32. */
  bits: number;
  /** 32-byte per-round seed of the random rotation (the same for every client and the server). */
  rotationSeed: Uint8Array;
  /** Conditional rounding parameter β ∈ (0, 1); default e^(−1/2). 0 disables the conditioning. */
  beta?: number;
}

/**
 * Adds i.i.d. integer noise (e.g. discrete Gaussian samples, in integer units) to each entry in place.
 * Int32Array stores wrap mod 2^32, which is exact here: the values are reduced mod 2^b (b ≤ 32) next.
 */
export type IntegerNoise = (values: Int32Array) => void;

export interface EncodeOptions {
  noise?: IntegerNoise;
  random?: UniformWords;
}

export interface EncodeResult {
  /** Values mod 2^bits, length dim. */
  encoded: Uint32Array;
  /** L2 norm of the update before clipping. */
  norm: number;
  clipped: boolean;
  /** How many roundings conditional rounding drew (1 = accepted at once). */
  roundingAttempts: number;
}

/** Length of the encoded vector for a d-dimensional update: d (no padding, see the rotation above). */
export function encodedDim(dim: number): number {
  checkDim(dim);
  return dim;
}

/** B = 2^⌊log2 d⌋, the rotation block size. */
export function rotationBlock(dim: number): number {
  checkDim(dim);
  return 2 ** Math.floor(Math.log2(dim));
}

function checkDim(dim: number): void {
  if (!Number.isInteger(dim) || dim < 1 || dim > 2 ** 30) throw new RangeError(`encoding: bad dimension ${dim}`);
}

/**
 * In-place Walsh–Hadamard transform, reference version (Sylvester ordering, unnormalised): x ← H x
 * with H the ±1 Hadamard matrix of order x.length (a power of two), one radix-2 pass per level.
 * H is symmetric and H·H = n·I.
 */
export function fwhtReference(x: Float64Array): void {
  const n = x.length;
  if ((n & (n - 1)) !== 0) throw new RangeError('fwht: length must be a power of two');
  for (let h = 1; h < n; h *= 2) {
    for (let i = 0; i < n; i += 2 * h) {
      for (let j = i; j < i + h; j++) {
        const a = x[j];
        const b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
}


/**
 * Levels h0, 2·h0, … (< hEnd) of the transform over x[lo, hi), two levels per pass: a radix-4
 * butterfly on (j, j+h, j+2h, j+3h) performs exactly the radix-2 butterflies of levels h and 2h, in
 * the same order, with half the loads and stores.
 */
function fwhtLevels(x: Float64Array, lo: number, hi: number, h0: number, hEnd: number): void {
  let h = h0;
  for (; h * 4 <= hEnd; h *= 4) {
    for (let i = lo; i < hi; i += 4 * h) {
      for (let j = i; j < i + h; j++) {
        const a = x[j];
        const b = x[j + h];
        const c = x[j + 2 * h];
        const d = x[j + 3 * h];
        const s0 = a + b;
        const d0 = a - b;
        const s1 = c + d;
        const d1 = c - d;
        x[j] = s0 + s1;
        x[j + h] = d0 + d1;
        x[j + 2 * h] = s0 - s1;
        x[j + 3 * h] = d0 - d1;
      }
    }
  }
  for (; h < hEnd; h *= 2) {
    for (let i = lo; i < hi; i += 2 * h) {
      for (let j = i; j < i + h; j++) {
        const a = x[j];
        const b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
}

/**
 * The same transform as fwhtReference, restructured for speed: radix-4 passes (fwhtLevels), and the
 * levels with span < 4096 done block by block while the block is in cache. Every output is computed
 * by the same additions in the same order as in the reference, so the result is bit-identical (a
 * test checks it); ~2.5× faster on 2^20 points.
 */
export function fwht(x: Float64Array): void {
  const n = x.length;
  if ((n & (n - 1)) !== 0) throw new RangeError('fwht: length must be a power of two');
  const block = Math.min(n, FWHT_CACHE_BLOCK);
  for (let base = 0; base < n; base += block) {
    if (block >= 4) {
      // Levels 1 and 2 as one 4-point transform on consecutive elements.
      for (let j = base; j < base + block; j += 4) {
        const a = x[j];
        const b = x[j + 1];
        const c = x[j + 2];
        const d = x[j + 3];
        const s0 = a + b;
        const d0 = a - b;
        const s1 = c + d;
        const d1 = c - d;
        x[j] = s0 + s1;
        x[j + 1] = d0 + d1;
        x[j + 2] = s0 - s1;
        x[j + 3] = d0 - d1;
      }
      fwhtLevels(x, base, base + block, 4, block);
    } else {
      fwhtLevels(x, base, base + block, 1, block);
    }
  }
  fwhtLevels(x, 0, n, block, n);
}

/**
 * The sign bits of D₁ and D₂ (B each; D₂ unused when d = B): bit i of ChaCha20(HKDF(seed, info =
 * "rotation" ‖ d)) (least significant bit first) is sign i of D₁ for i < B, of D₂ for B ≤ i < 2B;
 * a set bit means −1.
 */
export function rotationSigns(seed: Uint8Array, dim: number): { block: number; bits: Uint8Array } {
  if (seed.length !== 32) throw new RangeError('encoding: rotation seed must be 32 bytes');
  const block = rotationBlock(dim);
  const key = hkdf(seed, new Uint8Array(0), frameFields('cohort/secagg/v1/rotation', dim), 32);
  return { block, bits: prgBytes(key, Math.ceil((2 * block) / 8)) };
}

/** seg[i] ← ±seg[i] · scale, the sign being bit (first + i) of `bits`. */
function applySigns(seg: Float64Array, bits: Uint8Array, first: number, scale: number): void {
  for (let i = 0; i < seg.length; i++) {
    const k = first + i;
    seg[i] *= (bits[k >> 3] >> (k & 7)) & 1 ? -scale : scale;
  }
}

/** x[off, off+B) ← H D x[off, off+B) / √B, D = signs from bit `first` on. */
function forwardBlock(x: Float64Array, off: number, block: number, bits: Uint8Array, first: number): void {
  const seg = x.subarray(off, off + block);
  applySigns(seg, bits, first, 1 / Math.sqrt(block));
  fwht(seg);
}

/** x[off, off+B) ← D H x[off, off+B) / √B (the inverse of forwardBlock). */
function inverseBlock(x: Float64Array, off: number, block: number, bits: Uint8Array, first: number): void {
  const seg = x.subarray(off, off + block);
  fwht(seg);
  applySigns(seg, bits, first, 1 / Math.sqrt(block));
}

/** y = s · R x: the two-block randomized Hadamard rotation (module comment), times `scale`. */
export function rotate(x: ArrayLike<number>, seed: Uint8Array, scale = 1): Float64Array {
  const d = x.length;
  const { block, bits } = rotationSigns(seed, d);
  const y = new Float64Array(d);
  // The copy, the overall scale and D₁'s signs with its 1/√B in one pass.
  const s = scale / Math.sqrt(block);
  for (let i = 0; i < block; i++) y[i] = x[i] * ((bits[i >> 3] >> (i & 7)) & 1 ? -s : s);
  for (let i = block; i < d; i++) y[i] = x[i] * scale;
  fwht(y.subarray(0, block));
  if (block < d) forwardBlock(y, d - block, block, bits, block);
  return y;
}

/** x = R⁻¹ y (KLS21 Alg. 2's inverse rotation); y is left unchanged. */
export function unrotate(y: Float64Array, seed: Uint8Array): Float64Array {
  return unrotateInPlace(y.slice(), seed);
}

function unrotateInPlace(x: Float64Array, seed: Uint8Array): Float64Array {
  const d = x.length;
  const { block, bits } = rotationSigns(seed, d);
  if (block < d) inverseBlock(x, d - block, block, bits, block);
  inverseBlock(x, 0, block, bits, 0);
  return x;
}

/** ‖x‖₂ lives in shared/dp/clip.ts (its summation order is the kernel's; see there). */
export { l2Norm } from '../dp/clip.ts';

/**
 * Δ₂ of KLS21 Thm. 1 in integer units: the L2 bound the conditionally rounded vector satisfies, and
 * the sensitivity DP accounting must use (d = the number of rounded coordinates, here the dimension):
 *   Δ₂² = min{ (c/γ + √d)²,  (c/γ)² + d/4 + √(2 ln(1/β)) · (c/γ + √d/2) }   (the second only if β > 0).
 */
export function roundedNormBound(clipNorm: number, gamma: number, dim: number, beta: number = DEFAULT_BETA): number {
  const c = clipNorm / gamma;
  const d = encodedDim(dim);
  const loose = (c + Math.sqrt(d)) ** 2;
  if (!(beta > 0)) return Math.sqrt(loose);
  const tight = c * c + d / 4 + Math.sqrt(2 * Math.log(1 / beta)) * (c + Math.sqrt(d) / 2);
  return Math.sqrt(Math.min(loose, tight));
}

/**
 * Randomized rounding conditional on the norm (KLS21 Alg. 1): each coordinate v becomes ⌊v⌋ + 1 with
 * probability v − ⌊v⌋ (so the rounding is unbiased), else ⌊v⌋; the whole draw is repeated until
 * ‖x̃‖₂ ≤ bound. Returns the integer vector (as doubles) and the number of draws.
 */
export function conditionalRandomizedRound(
  x: Float64Array,
  bound: number,
  random: UniformWords = cryptoWords,
): { rounded: Float64Array; attempts: number } {
  const rounded = new Float64Array(x.length);
  const u = new Uint32Array(x.length);
  const bound2 = bound * bound;
  for (let attempt = 1; attempt <= MAX_ROUNDING_ATTEMPTS; attempt++) {
    random(u);
    let norm2 = 0;
    for (let i = 0; i < x.length; i++) {
      const f = Math.floor(x[i]);
      // Round up iff u < (v − ⌊v⌋)·2^32: probability v − ⌊v⌋ to within 2^−32.
      const r = u[i] < (x[i] - f) * 4294967296 ? f + 1 : f;
      rounded[i] = r;
      norm2 += r * r;
    }
    if (norm2 <= bound2) return { rounded, attempts: attempt };
  }
  throw new Error(`encoding: conditional rounding failed ${MAX_ROUNDING_ATTEMPTS} times (bound ${bound}); check clipNorm/gamma`);
}

function checkParams(p: EncodingParams): void {
  if (!Number.isInteger(p.bits) || p.bits < 1 || p.bits > 32) throw new ConfigError(`encoding: bits must be an integer in [1, 32], got ${p.bits}`);
  if (!(p.gamma > 0) || !Number.isFinite(p.gamma)) throw new ConfigError(`encoding: gamma must be positive, got ${p.gamma}`);
  if (!(p.clipNorm > 0) || !Number.isFinite(p.clipNorm)) throw new ConfigError(`encoding: clipNorm must be positive, got ${p.clipNorm}`);
  if (p.beta !== undefined && !(p.beta >= 0 && p.beta < 1)) throw new ConfigError(`encoding: beta must be in [0, 1), got ${p.beta}`);
  checkDim(p.dim);
}

/** Client side, KLS21 Alg. 1: update (length dim) → values mod 2^bits (length dim). */
export function encodeUpdate(update: ArrayLike<number>, params: EncodingParams, opts: EncodeOptions = {}): EncodeResult {
  checkParams(params);
  if (update.length !== params.dim) throw new RangeError(`encoding: update has ${update.length} values, expected ${params.dim}`);
  const beta = params.beta ?? DEFAULT_BETA;
  const bound = roundedNormBound(params.clipNorm, params.gamma, params.dim, beta);
  // Accepted roundings satisfy |x̃_i| ≤ ‖x̃‖ ≤ bound, so they fit in 32-bit integers iff bound does.
  if (!(bound < 2 ** 31 - 1)) throw new ConfigError(`encoding: clipNorm/gamma = ${(params.clipNorm / params.gamma).toExponential(3)} gives integers beyond 32 bits; use a larger gamma`);
  const random = opts.random ?? cryptoWords;
  const kernel = update instanceof Float32Array && params.dim >= 4 ? encodeKernel() : undefined;
  const job = kernel ? new KernelEncoding(kernel, update as Float32Array, params) : undefined;
  const norm = job ? job.norm : l2Norm(update);
  if (!Number.isFinite(norm)) throw new RangeError('encoding: update is not finite');
  // Clip (KLS21 Alg. 1 line 1): x ← min(1, c/‖x‖) x — folded, with 1/γ, into the rotation's scale (it is linear).
  const clipped = norm > params.clipNorm;
  const scale = (clipped ? params.clipNorm / norm : 1) / params.gamma;
  if (job) {
    const attempts = job.rotateAndRound(scale, bound, random);
    opts.noise?.(job.rounded);
    return { encoded: job.output(), norm, clipped, roundingAttempts: attempts };
  }
  const x = rotate(update, params.rotationSeed, scale);
  const result = conditionalRandomizedRound(x, bound, random);
  const rounded = Int32Array.from(result.rounded);
  opts.noise?.(rounded);
  const encoded = new Uint32Array(rounded.length);
  if (params.bits === 32) encoded.set(rounded); // ToUint32: r mod 2^32
  else {
    const mask = (2 ** params.bits - 1) | 0;
    for (let i = 0; i < rounded.length; i++) encoded[i] = rounded[i] & mask; // two's complement: r mod 2^b
  }
  return { encoded, norm, clipped, roundingAttempts: result.attempts };
}

/**
 * The WebAssembly path (encode-kernel.ts): the same operations as l2Norm, rotate and
 * conditionalRandomizedRound, in the kernel's memory, which one encoding uses at a time.
 */
class KernelEncoding {
  readonly norm: number;
  private readonly L: ReturnType<EncodeKernel['layout']>;
  private readonly block: number;

  constructor(
    private readonly k: EncodeKernel,
    update: Float32Array,
    private readonly params: EncodingParams,
  ) {
    const d = params.dim;
    const { block, bits } = cachedRotationSigns(params.rotationSeed, d);
    this.block = block;
    this.L = k.layout(d, bits.length);
    const mem = k.buffer;
    const input = new Float32Array(mem, this.L.r, this.L.padded);
    input.set(update);
    input.fill(0, d);
    new Uint8Array(mem, this.L.s, bits.length).set(bits);
    new Float64Array(mem, this.L.x + 8 * d, this.L.padded - d).fill(0);
    this.norm = Math.sqrt(k.exports.sumSquares(this.L.r, this.L.padded));
  }

  /** Rotates (D₁ with 1/√B and the scale, the tail scaled, H; then D₂ and H on the last block) and rounds. */
  rotateAndRound(scale: number, bound: number, random: UniformWords): number {
    const { k, L, block } = this;
    const d = this.params.dim;
    const f = k.exports;
    k.widenSigned(L.x, L.r, block, L.s, 0, scale / Math.sqrt(block));
    if (block < d) f.widen(L.x + 8 * block, L.r + 4 * block, d - block, scale);
    k.fwht(L.x, block);
    if (block < d) {
      k.applySigns(L.x + 8 * (d - block), block, L.s, block, 1 / Math.sqrt(block));
      k.fwht(L.x + 8 * (d - block), block);
    }
    const u = new Uint32Array(k.buffer, L.u, L.padded);
    const bound2 = bound * bound;
    for (let attempt = 1; attempt <= MAX_ROUNDING_ATTEMPTS; attempt++) {
      random(u);
      // Padding: x = 0 rounds to 0 whatever u is, so the norm and the first d outputs are unaffected.
      if (f.round(L.x, L.u, L.r, L.padded) <= bound2) return attempt;
    }
    throw new Error(`encoding: conditional rounding failed ${MAX_ROUNDING_ATTEMPTS} times (bound ${bound}); check clipNorm/gamma`);
  }

  /** The rounded integers (a view of kernel memory), for the noise. */
  get rounded(): Int32Array {
    return new Int32Array(this.k.buffer, this.L.r, this.params.dim);
  }

  /** The rounded (and noised) integers mod 2^bits, copied out. */
  output(): Uint32Array {
    const { bits, dim } = this.params;
    if (bits < 32) this.k.exports.maskWords(this.L.r, this.L.padded, (2 ** bits - 1) | 0);
    return new Uint32Array(this.k.buffer, this.L.r, dim).slice();
  }
}

let lastSigns: { seed: Uint8Array; dim: number; signs: { block: number; bits: Uint8Array } } | undefined;

/** rotationSigns, remembering the last (seed, d): every client and the server of a round use the same. */
function cachedRotationSigns(seed: Uint8Array, dim: number): { block: number; bits: Uint8Array } {
  if (lastSigns && lastSigns.dim === dim && equalBytes(lastSigns.seed, seed)) return lastSigns.signs;
  const signs = rotationSigns(seed, dim);
  lastSigns = { seed: seed.slice(), dim, signs };
  return signs;
}

/**
 * Server side, KLS21 Alg. 2: the unmasked sum mod 2^bits (length dim) → the decoded sum of the
 * clients' (clipped, rounded, noised) updates in model units, length dim.
 */
export function decodeSum(sum: Uint32Array, params: EncodingParams): Float64Array {
  checkParams(params);
  const n = params.dim;
  if (sum.length !== n) throw new RangeError(`encoding: sum has ${sum.length} values, expected ${n}`);
  // Centre into [−2^(b−1), 2^(b−1)) by sign-extending the low b bits (shift left, arithmetic shift
  // right), then rescale by γ.
  const shift = 32 - params.bits;
  const k = n >= 4 ? encodeKernel() : undefined;
  if (!k) {
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) y[i] = ((sum[i] << shift) >> shift) * params.gamma;
    return unrotateInPlace(y, params.rotationSeed);
  }
  // The same operations as unrotateInPlace, in the kernel's memory.
  const { block, bits } = cachedRotationSigns(params.rotationSeed, n);
  const L = k.layout(n, bits.length);
  const mem = k.buffer;
  new Uint8Array(mem, L.s, bits.length).set(bits);
  const y = new Float64Array(mem, L.x, n);
  for (let i = 0; i < n; i++) y[i] = ((sum[i] << shift) >> shift) * params.gamma;
  const s = 1 / Math.sqrt(block);
  if (block < n) {
    k.fwht(L.x + 8 * (n - block), block);
    k.applySigns(L.x + 8 * (n - block), block, L.s, block, s);
  }
  k.fwht(L.x, block);
  k.applySigns(L.x, block, L.s, 0, s);
  return y.slice();
}

/** Per-client noise so that the sum over `minSurvivors` clients has standard deviation `targetStddev`. */
export function perClientNoiseStddev(targetStddev: number, minSurvivors: number): number {
  if (!(minSurvivors >= 1)) throw new RangeError('encoding: minSurvivors must be ≥ 1');
  return targetStddev / Math.sqrt(minSurvivors);
}

// ---- modulus check ----------------------------------------------------------------------------

export interface ModulusCheckInput {
  /** Most clients whose values are summed (the cohort size n). */
  clients: number;
  dim: number;
  clipNorm: number;
  gamma: number;
  bits: number;
  /** Per-client noise standard deviation in model units (0 without distributed DP). */
  noiseStddev: number;
  /** Acceptable probability that any coordinate of the sum wraps around (e.g. 1e-9). */
  failureProb: number;
}

export interface ModulusReport {
  /** High-probability bound τ on |coordinate| of the centred integer sum. */
  bound: number;
  /** Largest magnitude b bits represent after centring: 2^(b−1) − 1. */
  capacity: number;
  /** Smallest bits that pass with this gamma. */
  minBits: number;
  /** Smallest gamma that passes with these bits (Infinity if none). */
  minGamma: number;
}

/**
 * Whether `bits` hold the sum of `clients` encoded updates without wrap-around, except with
 * probability ≤ failureProb; throws ConfigError saying what to change if not.
 *
 * Bound (per coordinate j of the integer sum s = Σ_i (x̃_i + η_i), in integer units; B the rotation
 * block, d the dimension):
 *   s_j = (R Σ_i x_i)_j / γ + Σ_i r_ij + Σ_i η_ij
 *   - rotation term: a Rademacher sum with weights of total square ≤ ‖Σ x_i‖²/(γ² B) ≤ (n c/γ)²/B,
 *     hence sub-Gaussian with that variance proxy (Hoeffding; see the rotation above);
 *   - rounding: |r_ij| < 1, so |Σ_i r_ij| < n deterministically (this also covers conditional
 *     rounding, whose conditioning changes the distribution of r but not its range);
 *   - noise: a discrete Gaussian N_Z(0, s²) is sub-Gaussian with proxy s² (Canonne, Kamath, Steinke
 *     2020), s = noiseStddev/γ per client, proxy n s² for the sum.
 *   P[|s_j| ≥ n + √(2 v² ln(2d/p))] ≤ p/d with v² = (n c/γ)²/B + n s²; a union bound over the d
 *   coordinates gives τ = n + √(2 v² ln(2d/p)), and we require τ ≤ 2^(b−1) − 1.
 */
export function checkModulus(input: ModulusCheckInput): ModulusReport {
  const report = modulusReport(input);
  const { clients: n, bits, gamma, failureProb: p } = input;
  const { bound, capacity, minBits, minGamma } = report;
  if (bound > capacity) {
    const options = [minBits <= 32 ? `bits ≥ ${minBits}` : undefined, Number.isFinite(minGamma) ? `gamma ≥ ${minGamma.toPrecision(3)} (coarser quantisation)` : undefined]
      .filter(Boolean)
      .join(', or ');
    throw new ConfigError(
      `secagg: ${bits} bits cannot hold the sum of ${n} clients without wrap-around (failure probability ${p}): ` +
        `coordinates of the integer sum reach ±${bound.toFixed(0)} but ${bits} bits hold ±${capacity}. ` +
        `Use ${options || 'fewer clients per aggregate'}${options ? ', or lower clipNorm or the noise' : ''}.`,
      { ...report, clients: n, bits, gamma },
    );
  }
  return report;
}

/** The numbers behind checkModulus (validates the inputs, never refuses on capacity). */
export function modulusReport(input: ModulusCheckInput): ModulusReport {
  const { clients: n, dim, clipNorm: c, gamma, bits, noiseStddev, failureProb: p } = input;
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`secagg: clients must be a positive integer, got ${n}`);
  if (!(p > 0 && p < 1)) throw new ConfigError(`secagg: failureProb must be in (0, 1), got ${p}`);
  if (!(noiseStddev >= 0)) throw new ConfigError(`secagg: noiseStddev must be ≥ 0, got ${noiseStddev}`);
  checkParams({ dim, clipNorm: c, gamma, bits, rotationSeed: new Uint8Array(32) });
  const d = encodedDim(dim);
  const block = rotationBlock(dim);
  const spread = Math.sqrt(2 * Math.log((2 * d) / p) * ((n * c) ** 2 / block + n * noiseStddev ** 2)); // = γ·√(2 v² ln(2d/p))
  const bound = n + spread / gamma;
  const capacity = 2 ** (bits - 1) - 1;
  const minBits = Math.max(1, Math.ceil(Math.log2(bound + 1)) + 1);
  const minGamma = capacity > n ? spread / (capacity - n) : Infinity;
  return { bound, capacity, minBits, minGamma };
}

// ---- b-bit packing ----------------------------------------------------------------------------

/** Bytes of `count` values packed at `bits` bits each. */
export function packedBytes(count: number, bits: number): number {
  return Math.ceil((count * bits) / 8);
}

function checkBits(bits: number): void {
  if (!Number.isInteger(bits) || bits < 1 || bits > 32) throw new RangeError(`packing: bits must be in [1, 32], got ${bits}`);
}

/**
 * Packs values mod 2^bits into ⌈count·bits/8⌉ bytes: value i occupies bits [i·b, (i+1)·b) of the
 * little-endian bit string (least significant bit first). Higher bits of the inputs are ignored.
 */
export function packBits(values: Uint32Array, bits: number): Uint8Array<ArrayBuffer> {
  checkBits(bits);
  const nBytes = packedBytes(values.length, bits);
  const words = new Uint32Array(Math.ceil(nBytes / 4) + 1);
  // TypedArray set converts with ToUint16 / ToUint8, i.e. keeps the low 16 / 8 bits, in native code.
  if (bits === 32) words.set(values);
  else if (bits === 16) new Uint16Array(words.buffer, 0, values.length).set(values);
  else if (bits === 8) new Uint8Array(words.buffer, 0, values.length).set(values);
  else {
    const mask = (2 ** bits - 1) >>> 0;
    let pos = 0;
    for (let i = 0; i < values.length; i++, pos += bits) {
      const v = values[i] & mask;
      const w = pos >>> 5;
      const s = pos & 31;
      words[w] |= v << s;
      if (s + bits > 32) words[w + 1] |= v >>> (32 - s);
    }
  }
  return new Uint8Array(words.buffer, 0, nBytes);
}

/** 32-bit-aligned words over `bytes`, zero-padded (copies only if needed). */
function alignedWords(bytes: Uint8Array): Uint32Array {
  if (bytes.byteOffset % 4 === 0 && bytes.byteLength % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const words = new Uint32Array(Math.ceil(bytes.length / 4));
  new Uint8Array(words.buffer).set(bytes);
  return words;
}

function checkPacked(packed: Uint8Array, count: number, bits: number): void {
  checkBits(bits);
  if (packed.length !== packedBytes(count, bits)) {
    throw new RangeError(`packing: ${packed.length} bytes, expected ${packedBytes(count, bits)} for ${count} values of ${bits} bits`);
  }
}

/** acc[i] ← acc[i] + value_i (mod 2^32) for the `acc.length` values packed in `packed` (no allocation of d values). */
export function addPacked(acc: Uint32Array, packed: Uint8Array, bits: number): void {
  const count = acc.length;
  checkPacked(packed, count, bits);
  const simd = bits === 32 || bits === 16 ? sliceAccumulator() : undefined;
  if (simd) {
    // WebAssembly SIMD (crypto/simd.ts), slice by slice; reads `packed` directly, no alignment needed.
    const w = bits / 8;
    const acc32 = new Int32Array(acc.buffer, acc.byteOffset, acc.length);
    for (let start = 0; start < count; start += SLICE_WORDS) {
      const n = Math.min(SLICE_WORDS, count - start);
      simd.load(acc32, start, n);
      simd.add(packed.subarray(start * w, (start + n) * w), w as 2 | 4, 1);
      simd.store(acc32, start, n);
    }
    return;
  }
  const words = alignedWords(packed);
  if (bits === 32) {
    for (let i = 0; i < count; i++) acc[i] += words[i];
  } else if (bits === 16) {
    const h = new Uint16Array(words.buffer, words.byteOffset, count);
    for (let i = 0; i < count; i++) acc[i] += h[i];
  } else if (bits === 8) {
    const b = new Uint8Array(words.buffer, words.byteOffset, count);
    for (let i = 0; i < count; i++) acc[i] += b[i];
  } else {
    const mask = (2 ** bits - 1) >>> 0;
    let pos = 0;
    for (let i = 0; i < count; i++, pos += bits) {
      const w = pos >>> 5;
      const s = pos & 31;
      let v = words[w] >>> s;
      if (s + bits > 32) v |= words[w + 1] << (32 - s);
      acc[i] += v & mask;
    }
  }
}

/** Inverse of packBits. */
export function unpackBits(packed: Uint8Array, bits: number, count: number): Uint32Array {
  const out = new Uint32Array(count);
  addPacked(out, packed, bits);
  return out;
}
