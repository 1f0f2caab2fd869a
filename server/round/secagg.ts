/**
 * Secure aggregation inside a round: the engine-side driver of the SecAgg+ server state machine
 * (shared/secagg), and the choice of the round's encoding (quantisation γ, per-client distributed-DP
 * noise) so that b bits hold the sum without wrap-around.
 *
 * Phases (Bonawitz et al. CCS 2017, on the SecAgg+ graph of Bell et al. CCS 2020): AdvertiseKeys →
 * ShareKeys → MaskedInputCollection (waits for local training: deadline trainMs) → ConsistencyCheck →
 * Unmasking (deadline phaseTimeoutMs each). A phase closes as soon as everyone still connected has
 * answered, or at its deadline; whoever did not answer is a dropout. The coordinator only ever sees
 * masked vectors, then the sum.
 */
import { z } from 'zod';
import { ConfigError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/log.ts';
import type { RoundSecAgg, SecAggDown } from '../../shared/protocol/index.ts';
import {
  decodeSum,
  fromBase64Url,
  findGraphParams,
  modulusReport,
  roundedNormBound,
  SecAggServer,
  toBase64Url,
  randomBytes,
  type SecAggResult,
} from '../../shared/secagg/index.ts';
import type { Clock } from './clock.ts';
import { noFailpoints, type Failpoint, type FailpointName } from '../failpoints.ts';

export const SecAggConfigSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** Modulus 2^bits of the masked integers (≤ 16 keeps masks cheap; see shared/secagg). */
    bits: z.number().int().min(8).max(32).default(16),
    /** Expected fraction of the cohort that drops out (sizes the neighbour graph's threshold). */
    dropoutRate: z.number().min(0).max(0.5).default(0.1),
    /** Fraction of clients assumed to collude with the server (security of the graph). */
    corruptRate: z.number().min(0).max(0.3).default(0.05),
    /** L2 clip norm of the encoding when the job has no DP (with DP, dp.clipNorm is used). */
    clipNorm: z.number().positive().optional(),
    /** Acceptable probability that any coordinate of the sum wraps around. */
    wrapProbability: z.number().gt(0).lt(1e-3).default(1e-9),
    /** Deadline of each key/unmask phase (the masked-input phase uses timeouts.trainMs). */
    phaseTimeoutMs: z.number().int().min(100).default(30_000),
  })
  .strict();
export type SecAggConfig = z.output<typeof SecAggConfigSchema>;

export interface EncodingChoice extends RoundSecAgg {
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
}): Omit<EncodingChoice, 'rotationSeed'> {
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

export type SecAggOutcome = { status: 'ok'; sum: Uint32Array; included: string[] } | { status: 'aborted'; reason: string };

export interface SecAggRoundOptions {
  jobId: string;
  round: number;
  /** Cohort members in sampling order: client id → connection. */
  members: { clientId: string; connId: string }[];
  config: SecAggConfig;
  dim: number;
  clipNorm: number;
  /** At least this many survivors (the DP noise split assumes it). */
  minSurvivors: number;
  noiseMultiplier: number;
  trainMs: number;
  clock: Clock;
  log: Logger;
  send: (connId: string, msg: SecAggDown) => void;
  isConnected: (clientId: string) => boolean;
  onDone: (outcome: SecAggOutcome) => void;
  failpoint?: Failpoint;
}

/** A round's SecAgg driver for a sampled cohort; `isRegistered(connId, clientId)` says a member is still on its sampled connection. */
export function secaggForRound(
  opts: Omit<SecAggRoundOptions, 'members' | 'isConnected'> & {
    cohort: readonly { clientId: string; connId: string }[];
    isRegistered: (connId: string, clientId: string) => boolean;
  },
): SecAggRound {
  const { cohort, isRegistered, ...rest } = opts;
  const connOf = new Map(cohort.map((c) => [c.clientId, c.connId]));
  return new SecAggRound({
    ...rest,
    members: cohort.map((c) => ({ clientId: c.clientId, connId: c.connId })),
    // Still on the connection it was sampled on (a reconnected client is a new participant, not this one).
    isConnected: (clientId) => {
      const connId = connOf.get(clientId);
      return connId !== undefined && isRegistered(connId, clientId);
    },
  });
}

export class SecAggRound {
  readonly announce: RoundSecAgg;
  readonly sensitivity: number;
  readonly server: SecAggServer;
  private timer: unknown;
  private done = false;
  private readonly connOf: Map<string, string>;

  constructor(private readonly opts: SecAggRoundOptions) {
    const n = opts.members.length;
    const graph = tolerantGraph(n, opts.minSurvivors, opts.config.dropoutRate, opts.config.corruptRate);
    // The round needs the survivors the graph needs, at least the job's floor; the DP noise below is
    // split over this (possibly raised) minimum.
    const minSurvivors = Math.min(n, Math.max(opts.minSurvivors, n - graph.maxDropouts));
    if (minSurvivors > opts.minSurvivors) {
      opts.log.info({ round: opts.round, cohort: n, minSurvivors, jobMinSurvivors: opts.minSurvivors }, 'secure aggregation needs more survivors than the job minimum this round');
    }
    const choice = chooseEncoding({
      clients: n,
      minSurvivors,
      dim: opts.dim,
      clipNorm: opts.clipNorm,
      bits: opts.config.bits,
      wrapProbability: opts.config.wrapProbability,
      noiseMultiplier: opts.noiseMultiplier,
    });
    this.sensitivity = choice.sensitivity;
    this.announce = {
      bits: choice.bits,
      gamma: choice.gamma,
      clipNorm: choice.clipNorm,
      noiseStddev: choice.noiseStddev,
      minSurvivors,
      rotationSeed: toBase64Url(randomBytes(32)),
    };
    this.connOf = new Map(opts.members.map((m) => [m.clientId, m.connId]));
    this.server = new SecAggServer({
      jobId: opts.jobId,
      round: opts.round,
      cohort: opts.members.map((m) => m.clientId),
      params: { neighbors: graph.neighbors, threshold: graph.threshold, bits: opts.config.bits, dim: opts.dim },
      minSurvivors,
    });
    opts.log.info(
      { round: opts.round, cohort: n, neighbors: graph.neighbors, threshold: graph.threshold, minSurvivors, gamma: choice.gamma, bits: choice.bits },
      'secure aggregation configured',
    );
  }

  /** The decoded sum of the survivors' updates, in model units (float64). */
  decode(sum: Uint32Array): Float64Array {
    const a = this.announce;
    return decodeSum(sum, { dim: this.opts.dim, clipNorm: a.clipNorm, gamma: a.gamma, bits: a.bits, rotationSeed: fromBase64Url(a.rotationSeed) });
  }

  /**
   * Why a decoded sum of `included` clients cannot be the sum of their encoded updates, or undefined
   * if it can. Each encoded update has L2 norm ≤ Δ₂γ (the sensitivity) and the rotation is orthogonal,
   * so the sum has norm ≤ n·Δ₂γ plus its noise: the sum of n per-client discrete Gaussians of σ per
   * coordinate has norm ≤ σ√n·(√d + 10) except with probability e^{-50} (Gaussian norm concentration,
   * Laurent–Massart 2000). A sum beyond that wrapped around or was unmasked with a wrong share or
   * mask — e.g. a client that sent bad shares — and decodes to garbage: it must never reach the model.
   */
  implausibleSum(sum: Float64Array, included: number): string | undefined {
    let sq = 0;
    for (let i = 0; i < sum.length; i++) sq += sum[i] * sum[i];
    const norm = Math.sqrt(sq);
    const noise = this.announce.noiseStddev * Math.sqrt(included) * (Math.sqrt(sum.length) + 10);
    const bound = included * this.sensitivity + noise;
    if (norm <= bound) return undefined;
    return `the decoded sum has L2 norm ${norm.toPrecision(4)}, more than ${included} encoded updates can add up to (${bound.toPrecision(4)}): a wrong share or mask, or a wrap-around`;
  }

  /** Sends the AdvertiseKeys requests (after the train messages, which carry the encoding). */
  start(): void {
    this.dispatch(this.server.start());
  }

  /** A client's SecAgg message; throws SecAggError (nothing changes) if the state machine rejects it. */
  receive(clientId: string, body: Record<string, unknown>, payload?: Uint8Array): void {
    this.server.receive(clientId, payload ? { ...body, payload } : body);
    this.safely('advance after a message', () => this.advanceIfReady());
  }

  /** A member disconnected (or was excluded): its phase may now be complete. */
  memberGone(): void {
    this.safely('advance after a dropout', () => this.advanceIfReady());
  }

  close(): void {
    if (this.timer !== undefined) this.opts.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.done = true;
  }

  private advanceIfReady(): void {
    if (this.done) return;
    const waitingOnConnected = this.server.pending().some((id) => this.opts.isConnected(id));
    if (this.server.phaseComplete() || !waitingOnConnected) this.advance();
  }

  private advance(): void {
    if (this.done) return;
    this.dispatch(this.server.advance());
  }

  private dispatch(outgoing: Map<string, Record<string, unknown>>): void {
    if (this.timer !== undefined) this.opts.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const phase = this.server.phase;
    if (phase === 'done' || phase === 'aborted') return this.finish(this.server.result());
    for (const [clientId, body] of outgoing) {
      const connId = this.connOf.get(clientId);
      if (connId !== undefined) {
        this.opts.send(connId, { type: 'secagg_down', jobId: this.opts.jobId, round: this.opts.round, body: body as Record<string, unknown> });
      }
    }
    (this.opts.failpoint ?? noFailpoints)(`secagg:${phase}` as FailpointName, this.opts.round);
    const deadline = phase === 'collect' ? this.opts.trainMs : this.opts.config.phaseTimeoutMs;
    this.timer = this.opts.clock.setTimeout(
      () =>
        this.safely('phase deadline', () => {
          this.timer = undefined;
          this.opts.log.info({ round: this.opts.round, phase, late: this.server.pending().length }, 'secagg phase deadline');
          this.advance();
        }),
      deadline,
    );
    // Everyone may already be gone.
    queueMicrotask(() => this.safely('advance', () => this.advanceIfReady()));
  }

  /**
   * Runs a step of the phase machine; an unexpected error there (a bug, not a client's bad message,
   * which receive() rejects before anything changes) aborts this attempt instead of escaping to a
   * timer or microtask, where it would crash the process.
   */
  private safely(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (this.done) return;
      this.opts.log.error({ err, round: this.opts.round, phase: this.server.phase, what }, 'secure aggregation failed; aborting the attempt');
      this.server.abort(`internal error (${what}): ${err instanceof Error ? err.message.slice(0, 200) : String(err)}`);
      this.finish(this.server.result());
    }
  }

  private finish(result: SecAggResult): void {
    if (this.done) return;
    this.close();
    if (result.status === 'ok') this.opts.onDone({ status: 'ok', sum: result.sum, included: result.included });
    else this.opts.onDone({ status: 'aborted', reason: result.status === 'aborted' ? result.reason : 'secagg did not finish' });
  }
}
