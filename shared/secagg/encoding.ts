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
// The encoding lives in shared/secagg/encoding/ (one file per section); this index keeps the importers' path.
export { encodedDim, fwht, fwhtReference, rotate, rotationBlock, rotationSigns, unrotate } from './encoding/rotation.ts';
export {
  DEFAULT_BETA,
  MAX_ROUNDING_ATTEMPTS,
  conditionalRandomizedRound,
  decodeSum,
  encodeUpdate,
  perClientNoiseStddev,
  roundedNormBound,
  type EncodeOptions,
  type EncodeResult,
  type EncodingParams,
  type IntegerNoise,
} from './encoding/encode.ts';
export { checkModulus, modulusReport, type ModulusCheckInput, type ModulusReport } from './encoding/modulus.ts';
export { addPacked, packBits, packedBytes, unpackBits } from './encoding/packing.ts';
/** ‖x‖₂ lives in shared/dp/clip.ts (its summation order is the kernel's; see there). */
export { l2Norm } from '../dp/clip.ts';
