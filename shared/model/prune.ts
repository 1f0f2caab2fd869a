/**
 * Magnitude pruning (issue 19): Han et al. 2015, "Learning both Weights and Connections for Efficient
 * Neural Networks" (NeurIPS) — remove the connections of smallest |w| and retrain the rest — with the
 * gradual schedule of Zhu & Gupta 2017, "To prune, or not to prune" (eq. 1):
 *   s_t = s_f + (s_i − s_f)·(1 − (t − t_0)/(n·Δt))³, here with s_i = 0, t_0 = startRound, n·Δt = endRound − startRound.
 *
 * Each kernel (rank ≥ 2) of the given layers is pruned to the target sparsity on its own (layer-wise, as
 * Han et al.); biases are never pruned. The coordinator prunes the global model after each commit, a
 * post-processing of the released model (no privacy cost); rounds after `endRound` fine-tune the
 * survivors at the final sparsity (pruned weights are zeroed again after every round).
 */
import { layerOfWeight } from './transfer.ts';
import type { WeightManifest } from './weights.ts';

export interface PruneSchedule {
  /** Final fraction of each kernel's weights that are zero, in [0, 1). */
  sparsity: number;
  /** First round pruned (the ramp starts here). */
  startRound: number;
  /** The round the final sparsity is reached; later rounds fine-tune at it. */
  endRound: number;
}

/** Target sparsity after round t (Zhu & Gupta 2017 eq. 1, s_i = 0); 0 before startRound. */
export function sparsityAt(schedule: PruneSchedule, round: number): number {
  const { sparsity, startRound, endRound } = schedule;
  if (round < startRound) return 0;
  if (round >= endRound) return sparsity;
  const progress = (round - startRound + 1) / (endRound - startRound + 1);
  return sparsity * (1 - (1 - progress) ** 3);
}

/**
 * Zeroes, in place, the ⌊s·n⌋ smallest-magnitude weights of every kernel of `layers` (every layer when
 * undefined). Ties are broken by position, so exactly ⌊s·n⌋ are zero (or more, if more already were).
 * Returns the number of kernel weights that are zero afterwards and the kernels' size.
 */
export function pruneByMagnitude(flat: Float32Array, manifest: WeightManifest, sparsity: number, layers?: ReadonlySet<string>): { zeros: number; size: number } {
  if (!(sparsity >= 0 && sparsity < 1)) throw new RangeError(`pruneByMagnitude: sparsity must be in [0, 1), got ${sparsity}`);
  let offset = 0;
  let zeros = 0;
  let size = 0;
  for (const w of manifest) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    if (w.shape.length >= 2 && (!layers || layers.has(layerOfWeight(w.name)))) {
      const kernel = flat.subarray(offset, offset + n);
      const k = Math.floor(sparsity * n);
      if (k > 0) {
        const order = Uint32Array.from({ length: n }, (_, i) => i);
        order.sort((a, b) => Math.abs(kernel[a]) - Math.abs(kernel[b]) || a - b);
        for (let i = 0; i < k; i++) kernel[order[i]] = 0;
      }
      for (let i = 0; i < n; i++) if (kernel[i] === 0) zeros++;
      size += n;
    }
    offset += n;
  }
  return { zeros, size };
}

/** Fraction of zero weights among the kernels (rank ≥ 2) of a flat vector. */
export function kernelSparsity(flat: Float32Array, manifest: WeightManifest): number {
  let offset = 0;
  let zeros = 0;
  let size = 0;
  for (const w of manifest) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    if (w.shape.length >= 2) {
      for (let i = offset; i < offset + n; i++) if (flat[i] === 0) zeros++;
      size += n;
    }
    offset += n;
  }
  return size ? zeros / size : 0;
}
