/**
 * Secure aggregation inside a round: the engine-side driver of the SecAgg+ server state machine
 * (shared/secagg). The choice of the round's encoding (quantisation γ, per-client distributed-DP noise,
 * so that b bits hold the sum without wrap-around) is shared/secagg/plan.ts.
 *
 * Phases (Bonawitz et al. CCS 2017, on the SecAgg+ graph of Bell et al. CCS 2020): AdvertiseKeys →
 * ShareKeys → MaskedInputCollection (waits for local training: deadline trainMs) → ConsistencyCheck →
 * Unmasking (deadline phaseTimeoutMs each). A phase closes as soon as everyone still connected has
 * answered, or at its deadline; whoever did not answer is a dropout. The coordinator only ever sees
 * masked vectors, then the sum.
 */
import { z } from 'zod';
import type { Logger } from '../../shared/log.ts';
import type { RevocationList } from '../../shared/identity/index.ts';
import type { RoundSecAgg, SecAggDown } from '../../shared/protocol/index.ts';
import {
  decodeSum,
  fromBase64Url,
  SecAggServer,
  toBase64Url,
  randomBytes,
  type SecAggResult,
} from '../../shared/secagg/index.ts';
import { planSecAggRound } from '../../shared/secagg/plan.ts';
// The encoding plan moved to shared/secagg/plan.ts (one rule for the coordinator and the bench).
export { chooseEncoding, distributedGaussianTau, tolerantGraph, type EncodingPlan } from '../../shared/secagg/plan.ts';
import type { Clock } from './clock.ts';
import { l2Norm } from '../../shared/dp/clip.ts';
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

export type SecAggOutcome = { status: 'ok'; sum: Uint32Array; included: string[] } | { status: 'aborted'; reason: string };

export interface SecAggRoundOptions {
  jobId: string;
  round: number;
  /** Cohort members in sampling order: client id → connection (and the identity key its hello proved). */
  members: { clientId: string; connId: string; publicKey?: string }[];
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
  /**
   * Called once, before the unmasking requests go out: from the answers the coordinator can compute the
   * noised sum, so in distributed DP this is where the release to the coordinator happens and the
   * ledger must already hold it. If it throws, the attempt aborts and nothing is requested.
   */
  beforeUnmask?: () => void;
  /** The CA-signed revocation list to relay in ShareKeysRequest (clients that know the CA check it). */
  revocations?: RevocationList | undefined;
  failpoint?: Failpoint;
}

/** A round's SecAgg driver for a sampled cohort; `isRegistered(connId, clientId)` says a member is still on its sampled connection. */
export function secaggForRound(
  opts: Omit<SecAggRoundOptions, 'members' | 'isConnected'> & {
    cohort: readonly { clientId: string; connId: string; publicKey?: string }[];
    isRegistered: (connId: string, clientId: string) => boolean;
  },
): SecAggRound {
  const { cohort, isRegistered, ...rest } = opts;
  const connOf = new Map(cohort.map((c) => [c.clientId, c.connId]));
  return new SecAggRound({
    ...rest,
    members: cohort.map((c) => ({ clientId: c.clientId, connId: c.connId, ...(c.publicKey ? { publicKey: c.publicKey } : {}) })),
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
  /** Whether the unmasking requests were sent (from then on the coordinator may hold the noised sum). */
  unmaskRequested = false;
  private readonly connOf: Map<string, string>;

  constructor(private readonly opts: SecAggRoundOptions) {
    const n = opts.members.length;
    // The same plan the bench measures (shared/secagg/plan.ts): graph, then the survivors it needs
    // (at least the job's floor; the DP noise is split over this possibly raised minimum), then γ.
    const { graph, minSurvivors, encoding: choice } = planSecAggRound({
      clients: n,
      jobMinSurvivors: opts.minSurvivors,
      dim: opts.dim,
      clipNorm: opts.clipNorm,
      bits: opts.config.bits,
      wrapProbability: opts.config.wrapProbability,
      noiseMultiplier: opts.noiseMultiplier,
      dropoutRate: opts.config.dropoutRate,
      corruptRate: opts.config.corruptRate,
    });
    if (minSurvivors > opts.minSurvivors) {
      opts.log.info({ round: opts.round, cohort: n, minSurvivors, jobMinSurvivors: opts.minSurvivors }, 'secure aggregation needs more survivors than the job minimum this round');
    }
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
      // Round keys must be signed by the key each member proved at hello (server/identity): the
      // identity SecAgg binds to is the authenticated one, not whatever a member advertises.
      ...(opts.revocations ? { revocations: opts.revocations } : {}),
      ...(opts.members.every((m) => m.publicKey) ? { identityKeys: new Map(opts.members.map((m) => [m.clientId, fromBase64Url(m.publicKey!)])) } : {}),
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
    const norm = l2Norm(sum);
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
    if (phase === 'unmask' && !this.unmaskRequested) {
      this.unmaskRequested = true;
      this.opts.beforeUnmask?.();
    }
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
