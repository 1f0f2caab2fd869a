/**
 * One training-round attempt: the sampled cohort and what each member has delivered, the streaming
 * weighted sum of plain updates (O(d) memory whatever the cohort), the metrics sums, and the round
 * record and pseudo-gradient once it closes. Pure state and arithmetic: the engine owns the timers,
 * the transport and the store.
 */
import { CohortError } from '../../shared/errors.ts';
import { clipL2InPlace } from '../../shared/dp/index.ts';
import { WeightedSum } from '../../shared/fl/index.ts';
import { ErrorCode, type Update } from '../../shared/protocol/index.ts';
import type { ParticipationEntry, RoundRecord } from '../store/index.ts';
import type { PrivacyController, RoundPlan } from './privacy.ts';
import type { ConnectedClient } from './registry.ts';
import type { SecAggRound } from './secagg.ts';

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
  ) {
    for (const c of cohort) this.members.set(c.clientId, { connId: c.connId, status: 'pending' });
    this.pendingCount = this.members.size;
    this.sum = new WeightedSum(dim);
  }

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
    if (this.plan?.announce.adaptiveClipping && msg.clipBit === undefined) {
      throw new CohortError(ErrorCode.BAD_SCHEMA, 'this round uses adaptive clipping: the update must carry clipBit');
    }
  }

  /** Folds an accepted (range-checked) update into the running sums; the member completes. */
  fold(member: Member, msg: Update): void {
    const plan = this.plan;
    if (plan && plan.announce.mode === 'central') {
      // Defence in depth: the sensitivity bound must not rest on the client having clipped.
      clipL2InPlace(msg.vector, plan.announce.clipNorm);
    }
    // DP-FedAvg weights clients uniformly (McMahan et al. 2018); plain FedAvg by examples.
    this.sum.add(msg.vector, plan ? 1 : msg.numExamples);
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
   */
  pseudoGradient(privacy: PrivacyController): Float32Array {
    const plan = this.plan;
    if (this.secaggSum) {
      if (plan) return privacy.noisyMean(this.secaggSum, plan);
      const survivors = this.survivors;
      return Float32Array.from(this.secaggSum, (x) => x / survivors);
    }
    return plan ? privacy.noisyMean(this.sum.rawSum, plan) : this.sum.mean();
  }
}
