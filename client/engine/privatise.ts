/**
 * The client's privatise step, between training and sending (DESIGN §2.4): clip the update to the
 * announced L2 norm C; in `local` mode also add the full Gaussian noise σ = z·C here, so nothing
 * un-noised leaves the device; report the adaptive-clipping bit if the round asks for it.
 */
import { addGaussianNoise, clipL2InPlace, localNoiseStddev } from '../../shared/dp/index.ts';
import type { RoundPrivacy } from '../../shared/protocol/index.ts';
import type { Rng } from '../../shared/random.ts';

export interface PrivatisedUpdate {
  /** The update after clipping (and local noise); the input array, modified in place. */
  delta: Float32Array;
  /** ‖Δ‖ before clipping. */
  norm: number;
  /** Andrew et al. 2021: 1[‖Δ‖ ≤ C] − 1/2, when the round uses adaptive clipping. */
  clipBit?: 0.5 | -0.5;
}

export function privatiseUpdate(delta: Float32Array, privacy: RoundPrivacy, rng?: Rng): PrivatisedUpdate {
  const { norm } = clipL2InPlace(delta, privacy.clipNorm);
  // σ from the same helper the coordinator's plan uses for what it accounts (shared/dp/modes.ts).
  if (privacy.mode === 'local') addGaussianNoise(delta, localNoiseStddev(privacy.noiseMultiplier, privacy.clipNorm), rng);
  const clipBit = privacy.adaptiveClipping ? (norm <= privacy.clipNorm ? 0.5 : -0.5) : undefined;
  return { delta, norm, ...(clipBit === undefined ? {} : { clipBit }) };
}
