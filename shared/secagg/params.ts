/**
 * Choosing the SecAgg+ graph degree k and Shamir threshold t for a cohort of n clients, a dropout
 * rate δ and a corrupt-client rate γ, in the spirit of Bell et al. CCS 2020 (§3, Theorems 3.x: the
 * protocol is secure if no honest client has t corrupt neighbours and the honest survivors stay
 * connected; correct if every client whose secrets are needed keeps t live neighbours). Bell et al.
 * analyse Erdős–Rényi graphs; we bound the same events directly for the graph we actually use (a
 * randomly permuted Harary graph, graph.ts), under their model: the corrupt set (|C| = ⌊γn⌋) and the
 * dropout set (|D| = ⌊δn⌋, counted over all phases) are fixed independently of the graph seed, so
 * relative to the graph each is a uniformly random subset of its size. The seed is derived from the
 * round's signed advertisements (keys.ts), so neither the coordinator nor a client fixes it in
 * advance; a malicious coordinator can still search the ≤ Σ_{j ≤ n−minSurvivors} C(n, j) subsets of
 * advertisements it may count (claiming the rest dropped), and drop clients adaptively once the
 * graph is known — neither is covered by these bounds (server.ts says so).
 *
 * Bounds (log2 of probabilities; all are upper bounds, unions over clients are plain union bounds):
 *
 *   Correctness failure  ≤ n · P[ H(n−1, |D|, k) ≥ k − t + 1 ]
 *     H(N, K, m) is hypergeometric: of m draws without replacement from N items, K of them marked,
 *     how many are marked. A client's secret (b_u or s_u^SK) is reconstructible iff at least t of its
 *     k share holders answer in Unmasking, i.e. at most k − t of its neighbours dropped.
 *
 *   Security failure     ≤ n · P[ H(n−1, |C|, k) ≥ t ]                     (a client with t corrupt
 *                                                                           neighbours: they can
 *                                                                           rebuild both its secrets)
 *                        + C(n, 2) · Π_{l<k} (r − l)/(n − l),  r = |C| + |D|   (disconnection)
 *     Disconnection: removing corrupt and dropped clients (r positions, uniformly placed) disconnects
 *     the Harary graph only if two disjoint runs of k/2 consecutive positions are all removed; for a
 *     fixed pair of runs that is the probability that k given positions are all among the r removed
 *     (exact hypergeometric product), and there are at most C(n, 2) pairs of run starts. The
 *     complete graph never disconnects.
 *
 * We also require a majority threshold t > k/2, so two disjoint halves of a neighbourhood can never
 * both reach t (the choice made by Bonawitz et al. §4 and SecAgg+ deployments).
 *
 * Search: the smallest even k (then the complete graph) for which some t meets both targets; among
 * those t, the one that maximises the smaller of the two margins (bits below the targets).
 */
import { ConfigError } from '../errors.ts';

export interface GraphParamsInput {
  /** Cohort size n. */
  clients: number;
  /** Largest fraction of the cohort that may drop out over the whole round, δ ∈ [0, 1). */
  dropoutRate: number;
  /** Fraction of clients assumed corrupt (colluding with the server), γ ∈ [0, 1). */
  corruptRate: number;
  /** Security target: failure probability ≤ 2^-securityBits (default 40). */
  securityBits?: number;
  /** Correctness target: failure probability ≤ 2^-correctnessBits (default 20). */
  correctnessBits?: number;
}

export interface GraphParams {
  clients: number;
  /** Degree k of the neighbour graph (n − 1 when complete). */
  neighbors: number;
  /** Shamir threshold t. */
  threshold: number;
  complete: boolean;
  /** |D| = ⌊δn⌋: the most dropouts the bounds allow for. */
  maxDropouts: number;
  /** |C| = ⌊γn⌋. */
  assumedCorrupt: number;
  /** log2 of the bound on the security failure probability (−Infinity when it is 0). */
  log2SecurityFailure: number;
  /** log2 of the bound on the correctness failure probability (−Infinity when it is 0). */
  log2CorrectnessFailure: number;
}

const LN2 = Math.LN2;

/** ln(m!) for m ≤ n, by summation (exact to double precision for the n we use). */
function logFactorials(n: number): Float64Array {
  const lf = new Float64Array(n + 1);
  for (let i = 2; i <= n; i++) lf[i] = lf[i - 1] + Math.log(i);
  return lf;
}

function logChoose(lf: Float64Array, a: number, b: number): number {
  if (b < 0 || b > a) return -Infinity;
  return lf[a] - lf[b] - lf[a - b];
}

function logSumExp(terms: number[]): number {
  const max = Math.max(...terms);
  if (max === -Infinity) return -Infinity;
  let s = 0;
  for (const t of terms) s += Math.exp(t - max);
  return max + Math.log(s);
}

/** ln P[H(N, K, m) = x] for all x = 0..m. */
function hypergeometricLogPmf(lf: Float64Array, N: number, K: number, m: number): number[] {
  const denom = logChoose(lf, N, m);
  const out: number[] = [];
  for (let x = 0; x <= m; x++) out.push(logChoose(lf, K, x) + logChoose(lf, N - K, m - x) - denom);
  return out;
}

/** ln P[H ≥ x] for x = 0..m+1 (suffix log-sums). */
function upperTails(logPmf: number[]): number[] {
  const tails = new Array<number>(logPmf.length + 1).fill(-Infinity);
  for (let x = logPmf.length - 1; x >= 0; x--) tails[x] = logSumExp([tails[x + 1], logPmf[x]]);
  return tails;
}

const log2 = (lnValue: number): number => lnValue / LN2;

/** |D| for a dropout rate: the largest number of dropouts the round tolerates. */
export function toleratedDropouts(clients: number, dropoutRate: number): number {
  return Math.floor(clients * dropoutRate + 1e-9);
}

export interface FailureBounds {
  log2Security: number;
  log2Correctness: number;
  /** The two security terms separately. */
  log2CorruptNeighbourhood: number;
  log2Disconnection: number;
}

/** The bounds above for given n, k, t, |D|, |C|. k ≥ n − 1 means the complete graph (k = n − 1). */
export function failureBounds(n: number, k: number, t: number, dropouts: number, corrupt: number, lf = logFactorials(n)): FailureBounds {
  const complete = k >= n - 1;
  const deg = complete ? n - 1 : k;
  const lnN = Math.log(n);
  const dropTail = upperTails(hypergeometricLogPmf(lf, n - 1, Math.min(dropouts, n - 1), deg));
  const corruptTail = upperTails(hypergeometricLogPmf(lf, n - 1, Math.min(corrupt, n - 1), deg));
  const lnCorrect = lnN + dropTail[Math.min(deg - t + 1, deg + 1)];
  const lnCorruptNbhd = lnN + corruptTail[Math.min(t, deg + 1)];
  let lnDisconnect = -Infinity;
  const r = Math.min(n, dropouts + corrupt);
  if (!complete && r >= deg) {
    let lnAllRemoved = 0;
    for (let l = 0; l < deg; l++) lnAllRemoved += Math.log((r - l) / (n - l));
    lnDisconnect = Math.log((n * (n - 1)) / 2) + lnAllRemoved;
  }
  const clamp = (v: number): number => Math.min(0, v);
  return {
    log2Security: clamp(log2(logSumExp([lnCorruptNbhd, lnDisconnect]))),
    log2Correctness: clamp(log2(lnCorrect)),
    log2CorruptNeighbourhood: clamp(log2(lnCorruptNbhd)),
    log2Disconnection: clamp(log2(lnDisconnect)),
  };
}

function checkRate(name: string, v: number): void {
  if (!(v >= 0 && v < 1)) throw new ConfigError(`secagg: ${name} must be in [0, 1), got ${v}`);
}

/** Finds (k, t) as described in the module comment, or throws ConfigError saying what to change. */
export function findGraphParams(input: GraphParamsInput): GraphParams {
  const { clients: n, dropoutRate, corruptRate } = input;
  const secBits = input.securityBits ?? 40;
  const corBits = input.correctnessBits ?? 20;
  if (!Number.isInteger(n) || n < 2) throw new ConfigError(`secagg: need at least 2 clients, got ${n}`);
  checkRate('dropoutRate', dropoutRate);
  checkRate('corruptRate', corruptRate);
  const D = toleratedDropouts(n, dropoutRate);
  const C = Math.floor(n * corruptRate + 1e-9);
  const lf = logFactorials(n);

  const degrees: number[] = [];
  for (let k = 2; k < n - 1; k += 2) degrees.push(k);
  degrees.push(n - 1); // complete graph

  let best: { k: number; bounds: FailureBounds } | undefined;
  for (const k of degrees) {
    let chosen: { t: number; margin: number; bounds: FailureBounds } | undefined;
    for (let t = Math.floor(k / 2) + 1; t <= k; t++) {
      const b = failureBounds(n, k, t, D, C, lf);
      const margin = Math.min(-b.log2Security - secBits, -b.log2Correctness - corBits);
      if (!best || margin > -best.bounds.log2Security - secBits) best = { k, bounds: b };
      if (margin >= 0 && (!chosen || margin > chosen.margin)) chosen = { t, margin, bounds: b };
    }
    if (chosen) {
      const complete = k >= n - 1;
      return {
        clients: n,
        neighbors: complete ? n - 1 : k,
        threshold: chosen.t,
        complete,
        maxDropouts: D,
        assumedCorrupt: C,
        log2SecurityFailure: chosen.bounds.log2Security,
        log2CorrectnessFailure: chosen.bounds.log2Correctness,
      };
    }
  }
  const complete = failureBounds(n, n - 1, Math.floor((n - 1) / 2) + 1, D, C, lf);
  throw new ConfigError(
    `secagg: no neighbour degree and threshold give security failure ≤ 2^-${secBits} and correctness failure ≤ 2^-${corBits} ` +
      `for ${n} clients with up to ${D} dropouts (dropoutRate ${dropoutRate}) and ${C} corrupt (corruptRate ${corruptRate}); ` +
      `even the complete graph reaches only 2^${complete.log2Security.toFixed(1)} / 2^${complete.log2Correctness.toFixed(1)}. ` +
      `Lower dropoutRate or corruptRate, or enlarge the cohort.`,
    { clients: n, dropoutRate, corruptRate, maxDropouts: D, assumedCorrupt: C },
  );
}
