/**
 * DP-FedAvg's fixed-denominator estimator.
 *
 * McMahan, Ramage, Talwar, Zhang 2018, "Learning Differentially Private Recurrent Language Models"
 * (ICLR), Algorithm 1 and §2: with clipped updates Δ_k (‖Δ_k‖ ≤ C), client weights w_k ∈ [0, 1] and
 * W = Σ_k w_k over the whole population, the server's estimate of the mean update is
 *
 *     Δ̄ = (Σ_{k∈cohort} w_k Δ_k + N(0, σ² I)) / (q·W),      σ = z·S,  S = C · max_k w_k
 *
 * (`f̃_f`, the fixed-denominator estimator). Dividing by the *expected* cohort weight qW, a public
 * constant, instead of the realised Σ_{k∈cohort} w_k keeps the sensitivity of the whole estimate at
 * S/(qW): dividing by the realised total would let one client change the denominator too.
 *
 * Weighting. Cohort uses uniform weights w_k = 1 by default, as the paper's experiments do, so W is the
 * population size N and qW the expected cohort size. Weighting by example count n_k would make one
 * client's influence unbounded; the paper's remedy is the capped weight w_k = min(n_k/ŵ, 1)
 * (`cappedClientWeight`), which keeps w_k ≤ 1 and hence S = C. Any other weighting must report its
 * max weight so the noise covers it (`sumSensitivity`).
 */
import { CohortError } from '../errors.ts';
import { type Rng, cryptoRng } from '../random.ts';
import { checkClipNorm } from './clip.ts';
import { addGaussianNoise } from './gaussian.ts';

function checkPositive(name: string, value: number): void {
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `${name} must be finite and > 0, got ${value}`, { [name]: value });
  }
}

/** The capped example weight w_k = min(n_k/ŵ, 1) of McMahan et al. 2018, §2. */
export function cappedClientWeight(examples: number, weightCap: number): number {
  checkPositive('weightCap', weightCap);
  if (!(examples >= 0) || !Number.isFinite(examples)) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `examples must be finite and ≥ 0, got ${examples}`, { examples });
  }
  return Math.min(examples / weightCap, 1);
}

/**
 * The denominator qW: the expected total weight of a Poisson cohort with rate q over a population of
 * total weight W (W = N clients with uniform weights; for a fixed cohort of m clients use q = m/N).
 */
export function expectedCohortWeight(q: number, totalWeight: number): number {
  if (!(q > 0 && q <= 1)) throw new CohortError('BAD_PRIVACY_PARAMETER', `sampling probability must be in (0, 1], got ${q}`, { q });
  checkPositive('totalWeight', totalWeight);
  return q * totalWeight;
}

/** L2 sensitivity S = C · max w_k of the weighted sum under add-or-remove-one (w_k ≤ 1). */
export function sumSensitivity(clipNorm: number, maxWeight = 1): number {
  checkClipNorm(clipNorm);
  if (!(maxWeight > 0 && maxWeight <= 1)) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `client weights must be in (0, 1], got max ${maxWeight}`, { maxWeight });
  }
  return clipNorm * maxWeight;
}

/** Δ̄ = sum / (qW), rounded to float32. `sum` is not modified. */
export function fixedDenominatorEstimate(
  sum: Float32Array | Float64Array,
  expectedWeight: number,
  out: Float32Array = new Float32Array(sum.length),
): Float32Array {
  checkPositive('expectedWeight', expectedWeight);
  if (out.length !== sum.length) {
    throw new CohortError('WRONG_LENGTH', `output has length ${out.length}, sum has ${sum.length}`);
  }
  const inv = 1 / expectedWeight;
  for (let i = 0; i < sum.length; i++) out[i] = sum[i] * inv;
  return out;
}

export interface CentralNoisyMeanParams {
  /** Σ_k w_k Δ_k over the survivors (clipped updates). Not modified. */
  readonly sum: Float32Array | Float64Array;
  readonly clipNorm: number;
  readonly noiseMultiplier: number;
  /** qW, from `expectedCohortWeight`. */
  readonly expectedWeight: number;
  /** max_k w_k (default 1, uniform weights). */
  readonly maxWeight?: number;
  readonly rng?: Rng;
}

/**
 * Central mode: (sum + N(0, (z·S)² I)) / (qW), with fresh CSPRNG noise per coordinate (the noise is
 * added in float64 before the division).
 */
export function centralNoisyMean(params: CentralNoisyMeanParams): Float32Array {
  const { sum, noiseMultiplier, expectedWeight } = params;
  if (!(noiseMultiplier >= 0) || !Number.isFinite(noiseMultiplier)) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `noise multiplier must be finite and ≥ 0, got ${noiseMultiplier}`);
  }
  const sigma = noiseMultiplier * sumSensitivity(params.clipNorm, params.maxWeight ?? 1);
  const noisy = Float64Array.from(sum);
  addGaussianNoise(noisy, sigma, params.rng ?? cryptoRng());
  return fixedDenominatorEstimate(noisy, expectedWeight);
}
