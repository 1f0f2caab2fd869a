/**
 * One federated evaluation after a committed round: the evaluators asked, their example-weighted
 * loss and accuracy sums, and the record once everyone answered (or the deadline passed). Results
 * outside the job's value limits are excluded, never summed (an overflowing sum would lose the record).
 */
import { CohortError } from '../../shared/errors.ts';
import { ErrorCode, type EvalResult } from '../../shared/protocol/index.ts';
import type { EvaluationRecord } from '../store/index.ts';
import { checkEvalResult, type ValueLimits } from './ranges.ts';
import type { ConnectedClient } from './registry.ts';

export class EvaluationRound {
  private readonly members = new Map<string, { connId: string; done: boolean }>();
  private pending: number;
  private lossSum = 0;
  private accuracySum = 0;
  private numExamples = 0;
  private responders = 0;
  timer: unknown;

  constructor(
    readonly round: number,
    evaluators: readonly ConnectedClient[],
  ) {
    for (const c of evaluators) this.members.set(c.clientId, { connId: c.connId, done: false });
    this.pending = this.members.size;
  }

  get settled(): boolean {
    return this.pending === 0;
  }

  /**
   * Takes one evaluator's result. Throws NOT_IN_ROUND / DUPLICATE (nothing changes) for a result
   * that was not asked for; returns an OUT_OF_RANGE error (the evaluator is done, its result
   * excluded) or undefined when the result was summed.
   */
  accept(client: ConnectedClient, msg: EvalResult, limits: ValueLimits): CohortError | undefined {
    const member = this.round === msg.round ? this.members.get(client.clientId) : undefined;
    if (!member || member.connId !== client.connId) {
      throw new CohortError(ErrorCode.NOT_IN_ROUND, `evaluation of round ${msg.round}: you were not asked`);
    }
    if (member.done) throw new CohortError(ErrorCode.DUPLICATE, `evaluation of round ${msg.round} already received`);
    this.finish(member);
    try {
      checkEvalResult(msg, limits);
    } catch (err) {
      return err as CohortError;
    }
    if (msg.numExamples > 0) {
      this.responders++;
      this.numExamples += msg.numExamples;
      this.lossSum += msg.loss * msg.numExamples;
      this.accuracySum += msg.accuracy * msg.numExamples;
    }
    return undefined;
  }

  /** An evaluator's connection closed before it answered. */
  gone(clientId: string, connId: string): void {
    const member = this.members.get(clientId);
    if (member && member.connId === connId) this.finish(member);
  }

  /** The evaluation's record, or undefined if no evaluator reported an example. */
  record(): EvaluationRecord | undefined {
    if (this.numExamples === 0) return undefined;
    return {
      kind: 'federated',
      loss: this.lossSum / this.numExamples,
      accuracy: this.accuracySum / this.numExamples,
      numExamples: this.numExamples,
      clients: this.responders,
    };
  }

  private finish(member: { done: boolean }): void {
    if (member.done) return;
    member.done = true;
    this.pending--;
  }
}
