/**
 * The modulus check of the SecAgg encoding: does 2^b hold the sum of n clients' encoded values
 * without wrap-around, except with a stated probability (see ../encoding.ts)?
 */
import { ConfigError } from '../../errors.ts';
import { encodedDim, rotationBlock } from './rotation.ts';
import { checkParams } from './encode.ts';

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
