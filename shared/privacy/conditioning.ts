/**
 * Poisson sampling conditioned on a minimum cohort, accounted with a proven bound.
 *
 * The coordinator draws a Poisson(q) cohort and, when it has fewer than `minimum` members, draws again.
 * The round that runs is then a Poisson sample *conditioned on* |S| ≥ m: each client is included with
 * probability larger than q and the draws are no longer independent coins, so the RDP analysis of the
 * Poisson-subsampled mechanism (which assumes independent coins at rate q) does not apply to it as is.
 *
 * The bound used here (a coupling argument, written out because no library states it for this case):
 * let U be the job run *without* redraws (every draw is used, whatever its size) and C the job as run
 * (short draws redrawn). Run both on one stream of coins; in round t they differ only if U's draw is short,
 * which happens with probability p_t = P(Bin(N_t, q) < m) over the coins (N_t the round's population).
 * So the total variation distance between C's and U's transcripts is at most P = Σ_t p_t, on any data set.
 * If U is (ε, δ_U)-DP then for neighbouring D, D' and any set A of transcripts
 *     C_D(A) ≤ U_D(A) + P ≤ e^ε U_D'(A) + δ_U + P ≤ e^ε (C_D'(A) + P) + δ_U + P,
 * i.e. C is (ε, δ_U + (1 + e^ε)·P)-DP. U is exactly what the RDP accountant analyses, so the ledger's
 * ε for δ is the smallest ε with δ_U(ε) + (1 + e^ε)·P ≤ δ (`epsilonWithShortDraws`).
 *
 * p_t depends on the population of the data set, which differs by one between neighbours; P(Bin(n, q) < m)
 * decreases in n, so p_t is evaluated at N_t − 1, which bounds it for both (`shortDrawProbability`).
 * For DP-FedAvg-sized populations the term vanishes (N = 1000, q = 0.1, m = 10: p ≈ 1e-30); for small
 * ones it is honest about how much the conditioning costs (N = 100, q = 0.1, m = 10: p ≈ 0.45 per round,
 * which no δ can absorb, so ε is infinite and a budgeted job refuses to run the round).
 */
import { CohortError } from '../errors.ts';
import { deltaFromRdp, epsilonFromRdp, type Conversion, type EpsilonResult } from './conversion.ts';
import { logSumExp } from './special.ts';

/** log P(Bin(n, q) < m), summed term by term in log space (exact up to rounding; m ≤ n + 1). */
export function logBinomialBelow(n: number, q: number, m: number): number {
  if (!Number.isInteger(n) || n < 0) throw new CohortError('BAD_PRIVACY_PARAMETER', `population must be an integer ≥ 0, got ${n}`);
  if (!(q >= 0 && q <= 1)) throw new CohortError('BAD_PRIVACY_PARAMETER', `sampling probability must be in [0, 1], got ${q}`);
  if (!Number.isInteger(m)) throw new CohortError('BAD_PRIVACY_PARAMETER', `minimum must be an integer, got ${m}`);
  if (m <= 0) return -Infinity;
  if (m > n) return 0;
  if (q === 0) return 0; // every draw is empty, hence short
  if (q === 1) return -Infinity; // every draw has n ≥ m members
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const terms = new Float64Array(m);
  let logBinom = 0; // log C(n, k)
  for (let k = 0; k < m; k++) {
    if (k > 0) logBinom += Math.log((n - k + 1) / k);
    terms[k] = logBinom + k * logQ + (n - k) * log1mQ;
  }
  return Math.min(0, logSumExp(terms));
}

/**
 * p_t of the module comment: the probability that a Poisson(q) draw from the round's population, less the
 * one client a neighbouring data set may lack, falls short of `minimum` and is redrawn.
 */
export function shortDrawProbability(population: number, q: number, minimum: number): number {
  return Math.exp(logBinomialBelow(Math.max(0, population - 1), q, minimum));
}

/**
 * ε at δ of a job whose rounds were redrawn while short, with total short-draw probability `mass` (Σ p_t):
 * the smallest ε with δ_U(ε) + (1 + e^ε)·mass ≤ δ, where δ_U(ε) is the RDP curve's δ at ε. Equals
 * `epsilonFromRdp` when mass is 0; +∞ (order NaN) when no ε satisfies it.
 */
export function epsilonWithShortDraws(
  orders: ArrayLike<number>,
  rdp: ArrayLike<number>,
  delta: number,
  mass: number,
  conversion: Conversion = 'improved',
): EpsilonResult {
  if (!(mass >= 0)) throw new CohortError('BAD_PRIVACY_PARAMETER', `short-draw probability mass must be ≥ 0, got ${mass}`);
  if (mass === 0) return epsilonFromRdp(orders, rdp, delta, conversion);
  if (2 * mass >= delta) return { epsilon: Infinity, order: NaN };
  const excess = (eps: number): number => deltaFromRdp(orders, rdp, eps, conversion).delta + (1 + Math.exp(eps)) * mass - delta;
  // (1 + e^ε)·mass < δ bounds the search; inside it δ_U falls and the mass term rises, so the feasible
  // set is an interval and its left end is found by scanning up, then bisecting.
  const top = Math.log(delta / mass - 1);
  // The unconditioned ε is a lower bound: start there.
  let lo = Math.min(epsilonFromRdp(orders, rdp, delta, conversion).epsilon, top);
  if (excess(lo) <= 0) return { epsilon: lo, order: deltaFromRdp(orders, rdp, lo, conversion).order };
  // A grid of 1,000 steps: a feasible interval narrower than one step is reported as +∞ (conservative).
  const from = lo;
  let hi = Number.NaN;
  const steps = 1000;
  for (let i = 1; i < steps; i++) {
    const eps = from + ((top - from) * i) / steps;
    if (excess(eps) <= 0) {
      hi = eps;
      break;
    }
    lo = eps;
  }
  if (Number.isNaN(hi)) return { epsilon: Infinity, order: NaN };
  for (let i = 0; i < 60 && hi - lo > 1e-12 * Math.max(1, hi); i++) {
    const mid = 0.5 * (lo + hi);
    if (excess(mid) <= 0) hi = mid;
    else lo = mid;
  }
  return { epsilon: hi, order: deltaFromRdp(orders, rdp, hi, conversion).order };
}
