/**
 * Flat L2 clipping of a client update: Δ ← Δ · min(1, C/‖Δ‖₂).
 *
 * Abadi et al. 2016, "Deep Learning with Differential Privacy", Algorithm 1 (per-example) and McMahan et
 * al. 2018, "Learning Differentially Private Recurrent Language Models", Algorithm 1 (`FlatClip`,
 * per-client). Clipping bounds one client's contribution to the aggregate, which is the sensitivity the
 * noise is calibrated to, so the bound must hold exactly, not approximately:
 *
 * - the norm is accumulated in float64 (the sum of d float32 squares is exact to ~d·2^-53 relative);
 * - the scale carries a margin of 2^-21 below C/‖Δ‖, which covers the float32 rounding of each scaled
 *   coordinate (≤ 2^-24 relative each, hence on the norm) and the float64 error of the norm; the
 *   result is then measured again and shrunk further in the (never observed) case it still exceeds C.
 *   So after clipping, C·(1 − 2^-20) ≤ ‖Δ‖ ≤ C whenever clipping happened.
 */
import { CohortError } from '../errors.ts';

export interface ClipResult {
  /** ‖Δ‖₂ before clipping. */
  readonly norm: number;
  /** The factor Δ was multiplied by (1 when not clipped). */
  readonly scale: number;
  /** Whether ‖Δ‖₂ exceeded the clip norm. */
  readonly clipped: boolean;
}

const MARGIN = 1 - 2 ** -21;

/**
 * ‖x‖₂, accumulated in float64. NaN or +∞ if x holds a non-finite value. The one norm of the code base
 * (clipping, the SecAgg encoding, aggregation all call it).
 *
 * Summation order, fixed on purpose: two accumulators, over the even and over the odd indices, added at
 * the end (an odd last element goes to the even one). It is the order of the WebAssembly encoding
 * kernel's norm (shared/secagg/encode-kernel.ts, one f64x2 lane per parity), so the scalar and kernel
 * paths of encodeUpdate clip with bit-identical norms (the bit-identity tests of encoding.test.ts
 * depend on it). Do not change it without changing the kernel.
 */
export function l2Norm(x: ArrayLike<number>): number {
  let s0 = 0;
  let s1 = 0;
  const n = x.length - (x.length % 2);
  for (let i = 0; i < n; i += 2) {
    s0 += x[i] * x[i];
    s1 += x[i + 1] * x[i + 1];
  }
  if (n < x.length) s0 += x[n] * x[n];
  return Math.sqrt(s0 + s1);
}

export function checkClipNorm(clipNorm: number): void {
  if (!(clipNorm > 0) || !Number.isFinite(clipNorm)) {
    throw new CohortError('BAD_CLIP_NORM', `clip norm must be finite and > 0, got ${clipNorm}`, { clipNorm });
  }
}

/**
 * Scales v in place so that ‖v‖₂ ≤ clipNorm. Throws CohortError NON_FINITE if v holds NaN or ±∞ (an
 * update like that cannot be bounded and must be rejected, not clipped).
 */
export function clipL2InPlace(v: Float32Array | Float64Array, clipNorm: number): ClipResult {
  checkClipNorm(clipNorm);
  const norm = l2Norm(v);
  if (!Number.isFinite(norm)) {
    throw new CohortError('NON_FINITE', 'cannot clip an update with non-finite values', { norm });
  }
  if (norm <= clipNorm) return { norm, scale: 1, clipped: false };
  let scale = (clipNorm / norm) * MARGIN;
  for (let i = 0; i < v.length; i++) v[i] *= scale;
  // Guard: re-measure, and shrink again if rounding ever pushed the result over C.
  for (let after = l2Norm(v); after > clipNorm; after = l2Norm(v)) {
    const extra = (clipNorm / after) * MARGIN;
    for (let i = 0; i < v.length; i++) v[i] *= extra;
    scale *= extra;
  }
  return { norm, scale, clipped: true };
}
