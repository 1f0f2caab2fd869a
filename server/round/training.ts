/**
 * One training-round attempt. `TrainingRound` is its state: the sampled cohort and what each member
 * has delivered, the streaming weighted sum of plain updates (O(d) memory whatever the cohort), the
 * metrics sums, and the round record and pseudo-gradient once it closes — pure state and arithmetic.
 * With a robust aggregator (shared/fl/robust.ts) the round instead holds its members' updates (n·d
 * float32, the cohort bounded by the config's `aggregator.maxCohort`) and applies the rule when it closes.
 * `TrainingPhase` runs the attempt in flight for the engine: its members' updates, refusals, SecAgg
 * messages and dropouts, its deadline and its SecAgg outcome, until it closes and is handed back
 * (`closed`) to be committed or aborted; the engine keeps the state (`training`) and the transitions.
 */
import { CohortError } from '../../shared/errors.ts';
import { clipL2InPlace } from '../../shared/dp/index.ts';
import { isRobust, QFedAvgSum, robustAggregate, WeightedSum, type AggregatorConfig, type RobustAggregatorConfig } from '../../shared/fl/index.ts';
import type { Logger } from '../../shared/log.ts';
import { ErrorCode, type SecAggUp, type Update } from '../../shared/protocol/index.ts';
import { SecAggError } from '../../shared/secagg/index.ts';
import type { ParticipationEntry, RoundRecord } from '../store/index.ts';
import type { Failpoint } from '../failpoints.ts';
import type { Clock } from './clock.ts';
import type { PrivacyController, RoundPlan } from './privacy.ts';
import { checkUpdate, type ValueLimits } from './ranges.ts';
import type { ConnectedClient } from './registry.ts';
import type { SecAggOutcome, SecAggRound } from './secagg.ts';

/** `rejected`: excluded for an out-of-range message; it counts as a dropout of the round. */
export type MemberStatus = 'pending' | 'completed' | 'dropped' | 'refused' | 'rejected';

export interface Member {
  connId: string;
  status: MemberStatus;
}

export class TrainingRound {
  readonly members = new Map<string, Member>();
  readonly sum: WeightedSum;
  /** Examples reported by survivors (metrics only: DP rounds weight clients uniformly). */
  examples = 0;
  lossSum = 0;
  accuracySum = 0;
  /** Σ of adaptive-clipping bits. */
  bitSum = 0;
  /** Secure aggregation of this round, if enabled; then `secaggSum` is the decoded sum. */
  secagg?: SecAggRound;
  secaggSum?: Float64Array;
  /** A robust aggregator's round: every accepted update, in arrival order. */
  readonly updates: Float32Array[] = [];
  timer: unknown;
  private pendingCount: number;

  constructor(
    readonly round: number,
    readonly attempt: number,
    readonly startedAt: number,
    cohort: readonly ConnectedClient[],
    dim: number,
    /** The round's DP plan (event, announced parameters), if the job uses DP. */
    readonly plan?: RoundPlan,
    /**
     * The job's aggregator and the clients' learning rate (q-FedAvg's L = 1/η). Robust rules and q-FedAvg
     * run only without SecAgg and central DP (config.ts); default: the streaming mean.
     */
    strategy?: { aggregator: AggregatorConfig; learningRate: number },
  ) {
    for (const c of cohort) this.members.set(c.clientId, { connId: c.connId, status: 'pending' });
    this.pendingCount = this.members.size;
    const aggregator = strategy?.aggregator;
    this.robust = aggregator && isRobust(aggregator) ? aggregator : undefined;
    this.qfedavg = aggregator?.name === 'qfedavg' ? new QFedAvgSum(dim, aggregator.q, 1 / strategy!.learningRate) : undefined;
    this.sum = new WeightedSum(this.robust || this.qfedavg ? 1 : dim);
  }

  /** A robust aggregation rule over the held updates, if the job uses one. */
  readonly robust?: RobustAggregatorConfig;
  /** q-FedAvg's streaming sums, if the job uses it. */
  readonly qfedavg?: QFedAvgSum;

  /** Every member has answered, refused, dropped or been excluded. */
  get settled(): boolean {
    return this.pendingCount === 0;
  }

  /** The caller's pending membership of this round, or a typed rejection. */
  pendingMember(client: ConnectedClient, roundNo: number, what: string): Member {
    const member = this.round === roundNo ? this.members.get(client.clientId) : undefined;
    if (!member || member.connId !== client.connId) {
      throw new CohortError(ErrorCode.NOT_IN_ROUND, `${what} for round ${roundNo}: you are not in a collecting round ${roundNo}`);
    }
    if (member.status !== 'pending') throw new CohortError(ErrorCode.DUPLICATE, `${what} for round ${roundNo} already received`);
    return member;
  }

  /** Moves a pending member to a final status; false if it was not pending. */
  settle(member: Member, status: Exclude<MemberStatus, 'pending'>): boolean {
    if (member.status !== 'pending') return false;
    member.status = status;
    this.pendingCount--;
    return true;
  }

  /** The member on `connId`, if it is still pending (a reconnected client is a new connection, not this one). */
  pendingOn(clientId: string, connId: string): Member | undefined {
    const m = this.members.get(clientId);
    return m && m.connId === connId && m.status === 'pending' ? m : undefined;
  }

  /** Checks a plain update against the round (length, SecAgg, adaptive clipping); throws a typed error. */
  checkShape(msg: Update, dim: number): void {
    if (msg.vector.length !== dim) {
      throw new CohortError(ErrorCode.WRONG_LENGTH, `update has ${msg.vector.length} values, the model has ${dim}`);
    }
    if (this.secagg) throw new CohortError(ErrorCode.BAD_SCHEMA, 'this round uses secure aggregation: send secagg messages, not a plain update');
    if (this.qfedavg && msg.metrics.initialLoss === undefined) {
      throw new CohortError(ErrorCode.BAD_SCHEMA, 'this round uses q-FedAvg: the update must carry metrics.initialLoss');
    }
    if (this.plan?.announce.adaptiveClipping && msg.clipBit === undefined) {
      throw new CohortError(ErrorCode.BAD_SCHEMA, 'this round uses adaptive clipping: the update must carry clipBit');
    }
  }

  /** Folds an accepted (range-checked) update into the running sums; the member completes. */
  fold(member: Member, msg: Update, groupWeight = 1): void {
    const plan = this.plan;
    if (plan && plan.announce.mode === 'central') {
      // Defence in depth: the sensitivity bound must not rest on the client having clipped.
      clipL2InPlace(msg.vector, plan.announce.clipNorm);
    }
    if (this.robust) {
      // Held whole (a copy: the message's buffer is not ours to keep); robust rules are unweighted.
      this.updates.push(msg.vector.slice());
    } else if (this.qfedavg) {
      this.qfedavg.add(msg.vector, msg.metrics.initialLoss!);
    } else {
      // DP-FedAvg weights clients uniformly (McMahan et al. 2018); plain FedAvg by examples, times the
      // client's group weight (health.groupWeights; refused with DP by the config).
      this.sum.add(msg.vector, plan ? 1 : msg.numExamples * groupWeight);
    }
    this.examples += msg.numExamples;
    this.bitSum += msg.clipBit ?? 0;
    this.lossSum += (msg.metrics.loss ?? 0) * msg.numExamples;
    this.accuracySum += (msg.metrics.accuracy ?? 0) * msg.numExamples;
    this.settle(member, 'completed');
  }

  /**
   * SecAgg: the member's masked input is in the decoded sum, so it is a survivor, whatever became of
   * its connection since (a disconnect during consistency or unmasking already settled it as dropped).
   */
  include(member: Member): void {
    if (member.status === 'pending') this.pendingCount--;
    member.status = 'completed';
  }

  /**
   * Secure aggregation finished. `ok`: the included members are survivors, the others dropouts, and
   * the decoded sum is the round's (unless no encoded updates could add up to it). `aborted`: the
   * pending members are dropouts. Returns why the attempt must abort, if it must.
   */
  secaggDone(outcome: SecAggOutcome): string | undefined {
    if (outcome.status === 'aborted') {
      this.dropPending();
      return outcome.reason;
    }
    const secagg = this.secagg!;
    const included = new Set(outcome.included);
    for (const [clientId, m] of this.members) {
      if (included.has(clientId)) this.include(m);
      else this.settle(m, 'dropped');
    }
    const sum = secagg.decode(outcome.sum);
    const implausible = secagg.implausibleSum(sum, outcome.included.length);
    if (implausible !== undefined) return implausible;
    this.secaggSum = sum;
    return undefined;
  }

  /** Pending members become dropouts (a deadline passed); returns how many. */
  dropPending(): number {
    let n = 0;
    for (const m of this.members.values()) if (this.settle(m, 'dropped')) n++;
    return n;
  }

  get survivors(): number {
    let n = 0;
    for (const m of this.members.values()) if (m.status === 'completed') n++;
    return n;
  }

  participation(): ParticipationEntry[] {
    return [...this.members].map(([clientId, m]) => ({ clientId, status: m.status === 'pending' ? 'dropped' : m.status }));
  }

  /** The round's record (metrics only where clients report them unprivatised). */
  record(endedAt: number): RoundRecord {
    let dropouts = 0;
    for (const m of this.members.values()) if (m.status === 'dropped' || m.status === 'rejected' || m.status === 'pending') dropouts++;
    // Local/distributed DP and SecAgg clients send no per-client metrics (they are not privatised).
    const reportsMetrics = this.examples > 0 && !(this.plan && this.plan.announce.mode !== 'central');
    return {
      startedAt: this.startedAt,
      endedAt,
      cohortSize: this.members.size,
      survivors: this.survivors,
      dropouts,
      numExamples: this.examples,
      trainLoss: reportsMetrics ? this.lossSum / this.examples : null,
      trainAccuracy: reportsMetrics ? this.accuracySum / this.examples : null,
    };
  }

  /**
   * The round's pseudo-gradient. Plain: the example-weighted mean. DP: the noisy fixed-denominator
   * mean of uniformly weighted clipped updates. SecAgg: the decoded sum (the coordinator never saw
   * anything else), divided by the fixed denominator (DP) or by the number of included clients.
   * Robust: the rule over the held updates (under local DP, post-processing of noised updates).
   */
  pseudoGradient(privacy: PrivacyController): Float32Array {
    const plan = this.plan;
    if (this.robust) return robustAggregate(this.updates, this.robust);
    if (this.qfedavg) return this.qfedavg.step();
    if (this.secaggSum) {
      if (plan) return privacy.noisyMean(this.secaggSum, plan);
      const survivors = this.survivors;
      return Float32Array.from(this.secaggSum, (x) => x / survivors);
    }
    return plan ? privacy.noisyMean(this.sum.rawSum, plan) : this.sum.mean();
  }
}

/** What the training phase needs of the engine. */
export interface TrainingPhaseContext {
  clock: Clock;
  log: Logger;
  valueLimits: ValueLimits;
  failpoint: Failpoint;
  /** Schedules a guarded timer (the engine's). */
  timer: (what: string, ms: number, fn: () => void) => unknown;
  reject: (connId: string, code: string, message: string, msg: Update) => void;
  /** The model's dimension (an update must have this length). */
  dim: () => number;
  /** The engine is in its `training` state (the phase acts only then). */
  training: () => boolean;
  /** The attempt closed (everyone answered, the deadline passed, or SecAgg finished): commit or abort it. */
  closed: (round: TrainingRound, secaggAbort?: string) => void;
  /** FedAvg weight factor of a client's update from its declared groups (1 without reweighting). */
  groupWeight?: (clientId: string) => number;
}

export class TrainingPhase {
  private current?: TrainingRound;

  constructor(private readonly ctx: TrainingPhaseContext) {}

  /** The attempt in flight, if any. */
  get round(): TrainingRound | undefined {
    return this.current;
  }

  /** The attempt is in flight (its `train` messages go out next); it closes at `deadlineMs` at the latest. */
  begin(round: TrainingRound, deadlineMs: number): void {
    round.timer = this.ctx.timer('training deadline', deadlineMs, () => this.onDeadline(round.round));
    this.current = round;
  }

  /** Drops the attempt in flight (its deadline cleared; its SecAgg is the caller's to close) and returns it. */
  take(): TrainingRound | undefined {
    const round = this.current;
    if (round?.timer !== undefined) this.ctx.clock.clearTimeout(round.timer);
    this.current = undefined;
    return round;
  }

  /** A member's plain update: folded in, or (out of range) refused and the member excluded; throws a typed error otherwise. */
  update(client: ConnectedClient, msg: Update): void {
    const { round, member } = this.memberOf(client, msg.round, 'update');
    round.checkShape(msg, this.ctx.dim());
    try {
      checkUpdate(msg, this.ctx.valueLimits);
    } catch (err) {
      // Refuse it, drop the member from the round, go on.
      round.settle(member, 'rejected');
      this.ctx.reject(client.connId, (err as CohortError).code, (err as CohortError).message, msg);
      this.ctx.log.warn({ client: client.clientId, round: msg.round }, 'update out of range; the client is excluded from the round');
      return this.closeIfSettled();
    }
    round.fold(member, msg, this.ctx.groupWeight?.(client.clientId) ?? 1);
    this.ctx.log.debug({ client: client.clientId, round: msg.round, examples: msg.numExamples }, 'update folded in');
    this.ctx.failpoint('collect', msg.round);
    this.closeIfSettled();
  }

  /** A member's SecAgg message, for the round's SecAgg driver; throws a typed error if refused. */
  secaggUp(client: ConnectedClient, msg: SecAggUp): void {
    const { round } = this.memberOf(client, msg.round, 'secagg message'); // throws unless a pending member
    if (!round.secagg) throw new CohortError(ErrorCode.NOT_IN_ROUND, `round ${msg.round} does not use secure aggregation`);
    try {
      round.secagg.receive(client.clientId, msg.body, msg.payload);
    } catch (err) {
      if (err instanceof SecAggError) throw new CohortError(err.code, err.message);
      throw err;
    }
  }

  refuse(client: ConnectedClient, roundNo: number, reason: string): void {
    const { round, member } = this.memberOf(client, roundNo, 'refusal');
    round.settle(member, 'refused');
    this.ctx.log.warn({ client: client.clientId, round: roundNo, reason }, 'client refused the round');
    this.memberLeft(round);
  }

  /** A client's connection closed (or was replaced): if it was a pending member, it dropped out. */
  gone(clientId: string, connId: string): void {
    const round = this.current;
    const member = round?.pendingOn(clientId, connId);
    if (!round || !member) return;
    round.settle(member, 'dropped');
    this.ctx.log.info({ client: clientId, round: round.round }, 'cohort member dropped out');
    this.memberLeft(round);
  }

  /** The round's SecAgg finished (see TrainingRound.secaggDone). */
  secaggDone(roundNo: number, outcome: SecAggOutcome): void {
    const round = this.current;
    if (!round || round.round !== roundNo || !round.secagg || !this.ctx.training()) return;
    const abort = round.secaggDone(outcome);
    if (outcome.status === 'aborted') this.ctx.log.warn({ round: roundNo, reason: abort }, 'secure aggregation aborted');
    else if (abort !== undefined) this.ctx.log.warn({ round: roundNo, reason: abort }, 'secure aggregation produced an impossible sum; the attempt is aborted');
    this.close(abort);
  }

  /** The caller's pending membership of the collecting round, or a typed rejection. */
  private memberOf(client: ConnectedClient, roundNo: number, what: string): { round: TrainingRound; member: Member } {
    const round = this.current;
    if (!round || !this.ctx.training()) {
      throw new CohortError(ErrorCode.NOT_IN_ROUND, `${what} for round ${roundNo}: you are not in a collecting round ${roundNo}`);
    }
    return { round, member: round.pendingMember(client, roundNo, what) };
  }

  /** A member settled without an update: with SecAgg its phase may now be complete; without, the round may be. */
  private memberLeft(round: TrainingRound): void {
    if (round.secagg) round.secagg.memberGone();
    else this.closeIfSettled();
  }

  private onDeadline(roundNo: number): void {
    const round = this.current;
    if (!round || round.round !== roundNo || !this.ctx.training()) return;
    round.timer = undefined;
    round.secagg?.close();
    const late = round.dropPending();
    this.ctx.log.info({ round: roundNo, late }, 'training deadline reached');
    this.close();
  }

  /** Closes the attempt once every member has answered (at once for an empty cohort). */
  closeIfSettled(): void {
    if (this.current?.settled && this.ctx.training()) this.close();
  }

  private close(secaggAbort?: string): void {
    const round = this.take()!;
    round.secagg?.close();
    this.ctx.closed(round, secaggAbort);
  }
}
