/**
 * Client encoding and server decoding (KLS21 Alg. 1 and 2, see ../encoding.ts): parameters, the
 * rounded-norm bound Δ₂, conditional randomized rounding, encodeUpdate (scalar and WebAssembly paths,
 * bit-identical) and decodeSum.
 */
import { CohortError, ConfigError } from '../../errors.ts';
import { l2Norm } from '../../dp/clip.ts';
import { cryptoWords, type UniformWords } from '../../random.ts';
import { equalBytes } from '../../crypto/bytes.ts';
import { encodeKernel, type EncodeKernel } from '../encode-kernel.ts';
import { checkDim, encodedDim, rotate, rotationSigns, unrotateInPlace } from './rotation.ts';

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
  throw new CohortError('ROUNDING_FAILED', `encoding: conditional rounding failed ${MAX_ROUNDING_ATTEMPTS} times (bound ${bound}); check clipNorm/gamma`);
}

export function checkParams(p: EncodingParams): void {
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
    throw new CohortError('ROUNDING_FAILED', `encoding: conditional rounding failed ${MAX_ROUNDING_ATTEMPTS} times (bound ${bound}); check clipNorm/gamma`);
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
