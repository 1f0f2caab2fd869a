/**
 * Adaptive clipping: the clip norm follows a target quantile of the update norms.
 *
 * Andrew, Thakkar, McMahan, Ramaswamy 2021, "Differentially Private Learning with Adaptive Clipping"
 * (NeurIPS), Algorithm 1 and §2–3, with the centred bit of its TensorFlow Federated implementation:
 *
 * - each client reports b_i = 1[‖Δ_i‖ ≤ C] − 1/2 ∈ {−1/2, +1/2} alongside its clipped update;
 * - the server sums them through the same aggregation, adds N(0, σ_b²), and estimates the fraction of
 *   unclipped updates as b̄ = (Σ b_i + N(0, σ_b²)) / m + 1/2, m the expected cohort size;
 * - geometric update: C ← C · exp(−η (b̄ − γ)), γ the target quantile, η the learning rate (§3: the
 *   geometric rule converges quickly from a bad initial C, e.g. 0.1 when norms are ~10).
 *
 * Privacy (Theorem 1). Centring makes the bit query's add-or-remove sensitivity 1/2, so with count
 * noise σ_b it is a Gaussian mechanism with noise multiplier 2σ_b. Run together with the value query
 * (multiplier z_Δ) on the same sample it costs as one Gaussian with z = (z_Δ^{-2} + (2σ_b)^{-2})^{-1/2}.
 * To spend exactly the budget of noise multiplier z, the value query must therefore use
 *   z_Δ = (z^{-2} − (2σ_b)^{-2})^{-1/2},
 * which exists only if 2σ_b > z (`valueNoiseMultiplier`). The paper's default σ_b = m/20 makes the
 * inflation tiny for realistic cohorts.
 */
import { CohortError } from '../errors.ts';
import { type Rng, cryptoRng } from '../random.ts';
import { gaussianSample } from './gaussian.ts';

export interface AdaptiveClippingParams {
  /** C_0. Andrew et al. use 0.1 and let the geometric update find the scale. */
  readonly initialClipNorm: number;
  /** γ ∈ (0, 1): the fraction of updates that should end up unclipped (0.5 = median). */
  readonly targetQuantile: number;
  /** η > 0. */
  readonly learningRate: number;
  /** σ_b; when absent, `defaultCountNoiseStddev(expected cohort size)` = m/20. */
  readonly countNoiseStddev?: number;
}

export const ADAPTIVE_CLIPPING_DEFAULTS = Object.freeze({
  initialClipNorm: 0.1,
  targetQuantile: 0.5,
  learningRate: 0.2,
});

/** σ_b = m/20, the count noise Andrew et al. 2021 recommend (and TFF / Flower use as the default). */
export function defaultCountNoiseStddev(expectedCohortSize: number): number {
  if (!(expectedCohortSize > 0) || !Number.isFinite(expectedCohortSize)) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `expected cohort size must be finite and > 0, got ${expectedCohortSize}`);
  }
  return expectedCohortSize / 20;
}

/** The centred clipping bit b_i = 1[norm ≤ C] − 1/2. */
export function clippingBit(norm: number, clipNorm: number): number {
  return norm <= clipNorm ? 0.5 : -0.5;
}

/**
 * z_Δ = (z^{-2} − (2σ_b)^{-2})^{-1/2} (Andrew et al. 2021, Theorem 1). z = 0 (no privacy) gives 0.
 * Throws CohortError NOISE_SPLIT_IMPOSSIBLE when 2σ_b ≤ z: the count query alone would already spend
 * the whole budget.
 */
export function valueNoiseMultiplier(noiseMultiplier: number, countNoiseStddev: number): number {
  if (!(noiseMultiplier >= 0) || !Number.isFinite(noiseMultiplier)) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `noise multiplier must be finite and ≥ 0, got ${noiseMultiplier}`);
  }
  if (!(countNoiseStddev >= 0) || !Number.isFinite(countNoiseStddev)) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `count noise stddev must be finite and ≥ 0, got ${countNoiseStddev}`);
  }
  if (noiseMultiplier === 0) return 0;
  const countMultiplier = 2 * countNoiseStddev;
  if (countMultiplier <= noiseMultiplier) {
    throw new CohortError(
      'NOISE_SPLIT_IMPOSSIBLE',
      `adaptive clipping: count noise σ_b = ${countNoiseStddev} is too small for noise multiplier ${noiseMultiplier}; ` +
        `the clipping-bit query alone would exceed the privacy budget (need 2σ_b > z, i.e. σ_b > ${noiseMultiplier / 2})`,
      { noiseMultiplier, countNoiseStddev },
    );
  }
  const inv = 1 / (noiseMultiplier * noiseMultiplier) - 1 / (countMultiplier * countMultiplier);
  return 1 / Math.sqrt(inv);
}

/** b̄ = (Σ b_i + N(0, σ_b²)) / m + 1/2, the noisy fraction of unclipped updates. */
export function noisyUnclippedFraction(
  bitSum: number,
  expectedCohortSize: number,
  countNoiseStddev: number,
  rng: Rng = cryptoRng(),
): number {
  if (!(expectedCohortSize > 0)) throw new CohortError('BAD_PRIVACY_PARAMETER', `expected cohort size must be > 0, got ${expectedCohortSize}`);
  if (!(countNoiseStddev >= 0)) throw new CohortError('BAD_PRIVACY_PARAMETER', `count noise stddev must be ≥ 0, got ${countNoiseStddev}`);
  const noise = countNoiseStddev === 0 ? 0 : countNoiseStddev * gaussianSample(rng);
  return (bitSum + noise) / expectedCohortSize + 0.5;
}

/** C ← C · exp(−η (b̄ − γ)) (Andrew et al. 2021, Algorithm 1, geometric update). */
export function geometricClipUpdate(
  clipNorm: number,
  unclippedFraction: number,
  targetQuantile: number,
  learningRate: number,
): number {
  if (!(clipNorm > 0) || !Number.isFinite(clipNorm)) throw new CohortError('BAD_CLIP_NORM', `clip norm must be > 0, got ${clipNorm}`);
  if (!(targetQuantile > 0 && targetQuantile < 1)) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `target quantile must be in (0, 1), got ${targetQuantile}`);
  }
  if (!(learningRate > 0) || !Number.isFinite(learningRate)) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `learning rate must be > 0, got ${learningRate}`);
  }
  if (!Number.isFinite(unclippedFraction)) throw new CohortError('BAD_PRIVACY_PARAMETER', `fraction must be finite, got ${unclippedFraction}`);
  return clipNorm * Math.exp(-learningRate * (unclippedFraction - targetQuantile));
}

export interface ClipNormStep {
  readonly clipNorm: number;
  /** b̄, for metrics. */
  readonly unclippedFraction: number;
}

/** One server step: noisy b̄ from the aggregated bits, then the geometric update. */
export function nextClipNorm(params: {
  readonly clipNorm: number;
  /** Σ b_i over the survivors (centred bits). */
  readonly bitSum: number;
  readonly expectedCohortSize: number;
  readonly targetQuantile: number;
  readonly learningRate: number;
  readonly countNoiseStddev: number;
  readonly rng?: Rng;
}): ClipNormStep {
  const fraction = noisyUnclippedFraction(params.bitSum, params.expectedCohortSize, params.countNoiseStddev, params.rng);
  return {
    clipNorm: geometricClipUpdate(params.clipNorm, fraction, params.targetQuantile, params.learningRate),
    unclippedFraction: fraction,
  };
}
