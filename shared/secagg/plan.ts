/**
 * The SecAgg encoding plan of a round: the neighbour graph that tolerates the round's dropouts, the
 * survivors the round then needs, and the quantisation γ (with, for distributed DP, the per-client
 * discrete-Gaussian noise) so that b bits hold the sum without wrap-around. One home for the rule: the
 * coordinator's SecAgg driver (server/round/secagg.ts) and the SecAgg benchmark (bench/secagg.ts) both
 * call it, so the bench measures the encoding the coordinator produces.
 *
 * References: Bell et al. CCS 2020 (SecAgg+ graph parameters, params.ts); Kairouz, Liu, Steinke ICML
 * 2021 (KLS21: conditional rounding, modulus, Thm 1 for the sum of discrete Gaussians).
 */
import { ConfigError } from '../errors.ts';
import { modulusReport, roundedNormBound } from './encoding.ts';
import { findGraphParams, type GraphParams } from './params.ts';

/** A round's encoding: what the coordinator announces (less the rotation seed) and the sensitivity it accounts. */
export interface EncodingPlan {
  /** Modulus 2^bits of the masked integers. */
  bits: number;
  /** Quantisation step (model units per integer step). */
  gamma: number;
  /** L2 clip norm C of the encoding. */
  clipNorm: number;
  /** Per-client noise standard deviation in model units (distributed DP), 0 without. */
  noiseStddev: number;
  /** Survivors the noise split assumes (the round aborts with fewer). */
  minSurvivors: number;
  /** Δ₂·γ: the L2 sensitivity of one client's encoded update, in model units (KLS21 Thm 1). */
  sensitivity: number;
}

/**
 * Picks γ (and, for distributed DP, the per-client noise) so that `bits` hold the sum of `clients`
 * updates except with probability `wrapProbability`, as fine as the bits allow. The noise is sized on
 * the rounded sensitivity Δ₂γ ≥ C so that the accounted noise multiplier is the job's z.
 */
export function chooseEncoding(opts: {
  clients: number;
  minSurvivors: number;
  dim: number;
  clipNorm: number;
  bits: number;
  wrapProbability: number;
  noiseMultiplier: number;
}): EncodingPlan {
  const { clients, minSurvivors, dim, clipNorm, bits, wrapProbability, noiseMultiplier } = opts;
  const noiseFor = (gamma: number) =>
    noiseMultiplier === 0 ? 0 : (noiseMultiplier * roundedNormBound(clipNorm, gamma, dim) * gamma) / Math.sqrt(minSurvivors);
  const report = (gamma: number, noiseStddev = noiseFor(gamma)) =>
    modulusReport({ clients, dim, clipNorm, gamma, bits, noiseStddev, failureProb: wrapProbability });
  // Start from the noise the unrounded update would need (zC/√m), then walk γ up to the fixed point
  // where the rounded sensitivity's noise still fits.
  const ideal = noiseMultiplier === 0 ? 0 : (noiseMultiplier * clipNorm) / Math.sqrt(minSurvivors);
  let gamma = report(clipNorm, ideal).minGamma;
  if (!Number.isFinite(gamma)) {
    throw new ConfigError(`secagg: ${bits} bits cannot hold a sum of ${clients} clients; raise secagg.bits (to ≥ ${Math.ceil(Math.log2(clients + 1)) + 4})`);
  }
  for (let i = 0; i < 200; i++) {
    const r = report(gamma);
    if (r.bound <= r.capacity) break;
    gamma *= 1.02;
  }
  const sensitivity = roundedNormBound(clipNorm, gamma, dim) * gamma;
  if (sensitivity > 1.5 * clipNorm) {
    throw new ConfigError(
      `secagg: ${bits} bits force a quantisation step γ=${gamma.toPrecision(3)} so coarse that rounding inflates the ` +
        `sensitivity to ${(sensitivity / clipNorm).toFixed(2)}×C; raise secagg.bits or reduce the cohort`,
    );
  }
  const noiseStddev = noiseFor(gamma);
  if (noiseStddev > 0) {
    // KLS21 Thm 1: the sum of n discrete Gaussians N_Z(0, σ²) is (up to τ) the discrete Gaussian of
    // variance nσ²; we account it as the continuous Gaussian of that variance, which is sound only
    // while the gap is negligible: refuse unless σ ≥ 1/2 and τ·d ≤ 1e-12 (n = the whole cohort, the
    // largest possible sum).
    const sigma = noiseStddev / gamma;
    const tau = distributedGaussianTau(sigma, clients);
    if (!(sigma >= 0.5) || tau * dim > 1e-12) {
      throw new ConfigError(
        `secagg: the per-client discrete Gaussian (σ = ${sigma.toPrecision(3)} quantisation steps) is too narrow for the ` +
          `distributed-DP accounting (KLS21 τ·d = ${(tau * dim).toExponential(2)} > 1e-12); raise secagg.bits for a finer quantisation`,
      );
    }
  }
  return { bits, gamma, clipNorm, noiseStddev, minSurvivors, sensitivity };
}

/**
 * The SecAgg+ graph of a round of n: it should tolerate every dropout the job accepts (n − the job's
 * minSurvivors) and at least the configured expected rate. A large cohort (Poisson sampling) with a
 * fixed minimum can ask for more than any (k, t) gives at the required failure bounds (about half the
 * cohort dropping); the tolerance is then lowered step by step towards the configured rate, and the
 * round requires correspondingly more survivors. Throws (ConfigError from the finder) only if even the
 * configured rate is impossible.
 */
export function tolerantGraph(n: number, jobMinSurvivors: number, dropoutRate: number, corruptRate: number): ReturnType<typeof findGraphParams> {
  const accepted = Math.max(0, n - jobMinSurvivors) / n;
  let rate = Math.min(0.5, Math.max(dropoutRate, accepted));
  for (;;) {
    try {
      return findGraphParams({ clients: n, dropoutRate: rate, corruptRate });
    } catch (err) {
      if (rate <= dropoutRate) throw err;
      rate = Math.max(dropoutRate, rate - 0.025);
    }
  }
}

/**
 * τ of Kairouz, Liu, Steinke 2021, Thm 1: τ = 10 · Σ_{k=1}^{n−1} exp(−2π²σ² · k/(k+1)) for n clients
 * each adding N_Z(0, σ²) (σ in quantisation steps). The sum's privacy differs from that of one
 * discrete Gaussian of variance nσ² by terms of order τ·d in the concentrated-DP parameter.
 */
export function distributedGaussianTau(sigma: number, clients: number): number {
  let tau = 0;
  for (let k = 1; k < clients; k++) tau += 10 * Math.exp((-2 * Math.PI ** 2 * sigma ** 2 * k) / (k + 1));
  return tau;
}

/** Everything a SecAgg round is configured with, derived from the job and the cohort. */
export interface SecAggRoundPlan {
  /** SecAgg+ graph: neighbours k, threshold t, and the dropouts it tolerates. */
  graph: GraphParams;
  /** Survivors the round needs: the graph's, at least the job's floor (the DP noise is split over it). */
  minSurvivors: number;
  encoding: EncodingPlan;
}

/**
 * The whole plan for a cohort of `clients`: `tolerantGraph`, then the survivors the graph needs (at
 * least the job's `jobMinSurvivors`, at most the cohort), then `chooseEncoding` over that minimum.
 * This is the sequence the coordinator's SecAggRound runs (server/round/secagg.ts; a test there checks
 * that both agree).
 */
export function planSecAggRound(opts: {
  clients: number;
  jobMinSurvivors: number;
  dim: number;
  clipNorm: number;
  bits: number;
  wrapProbability: number;
  noiseMultiplier: number;
  dropoutRate: number;
  corruptRate: number;
}): SecAggRoundPlan {
  const n = opts.clients;
  const graph = tolerantGraph(n, opts.jobMinSurvivors, opts.dropoutRate, opts.corruptRate);
  const minSurvivors = Math.min(n, Math.max(opts.jobMinSurvivors, n - graph.maxDropouts));
  const encoding = chooseEncoding({
    clients: n,
    minSurvivors,
    dim: opts.dim,
    clipNorm: opts.clipNorm,
    bits: opts.bits,
    wrapProbability: opts.wrapProbability,
    noiseMultiplier: opts.noiseMultiplier,
  });
  return { graph, minSurvivors, encoding };
}
