/**
 * Federated evaluation after a committed round. `EvaluationRound` is one evaluation's state: the
 * evaluators asked, their example-weighted loss and accuracy sums, and the record once everyone
 * answered (or the deadline passed). Results outside the job's value limits are excluded, never summed
 * (an overflowing sum would lose the record). `EvaluationPhase` runs it for the engine: samples the
 * evaluators, sends them the model, takes their results, records the evaluation and hands the round's
 * summary back (`done`); the engine keeps the state (`evaluating`) and what comes after.
 */
import { CohortError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/log.ts';
import { isZooSpec, resolveZooSpec } from '../../shared/model/index.ts';
import { ErrorCode, type EvalResult, type ServerMessage } from '../../shared/protocol/index.ts';
import { sampleWithoutReplacement, type Rng } from '../../shared/random.ts';
import type { CohortStore, EvaluationRecord } from '../store/index.ts';
import type { Failpoint } from '../failpoints.ts';
import type { Clock } from './clock.ts';
import type { JobConfig } from './config.ts';
import type { RoundSummary } from './events.ts';
import { checkEvalHealth, checkEvalResult, type ValueLimits } from './ranges.ts';
import { HealthMonitor, HealthTally, type DriftAlert } from './health.ts';
import { metricsOf, statsFromWeighted, weightedStats, type EvalStats, type HealthReport, type HealthRequest } from '../../shared/evaluation/index.ts';
import { addGaussianNoise } from '../../shared/dp/index.ts';
import type { EvaluationNoisePlan, PrivacyController } from './privacy.ts';
import { errorText, isStoreFailure } from './recovery.ts';
import type { ConnectedClient } from './registry.ts';

export class EvaluationRound {
  private readonly members = new Map<string, { connId: string; done: boolean }>();
  private pending: number;
  private lossSum = 0;
  private accuracySum = 0;
  private numExamples = 0;
  private responders = 0;
  /** The statistics asked for (shared/evaluation), if any. */
  readonly health?: HealthTally;
  timer: unknown;

  constructor(
    readonly round: number,
    evaluators: readonly ConnectedClient[],
    request?: HealthRequest,
    /** The model's class count, when the spec says (statistics of another count are refused). */
    private readonly numClasses?: number,
  ) {
    for (const c of evaluators) this.members.set(c.clientId, { connId: c.connId, done: false });
    this.pending = this.members.size;
    if (request) this.health = new HealthTally(request);
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
      checkEvalHealth(msg, this.health?.request, this.numClasses);
      this.health?.add(msg);
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

/** What the evaluation phase needs of the engine. */
export interface EvaluationPhaseContext {
  jobId: string;
  config: Pick<JobConfig, 'model' | 'evaluation' | 'timeouts' | 'health' | 'criteria'>;
  store: Pick<CohortStore, 'recordEvaluation'>;
  clock: Clock;
  log: Logger;
  rng: Rng;
  valueLimits: ValueLimits;
  failpoint: Failpoint;
  /** Schedules a guarded timer (the engine's). */
  timer: (what: string, ms: number, fn: () => void) => unknown;
  send: (connId: string, msg: ServerMessage) => void;
  reject: (connId: string, code: string, message: string, msg: EvalResult) => void;
  /** The engine is in its `evaluating` state (the phase acts only then). */
  evaluating: () => boolean;
  /** The evaluation is over: its record (if any) is in `summary`; `pauseReason` if the store failed recording it. */
  done: (summary: RoundSummary, pauseReason?: string) => void;
  /** A client declared its groups with an accepted evaluation result (for group reweighting). */
  declared?: (clientId: string, groups: Record<string, string>) => void;
  /** A drift alert was raised at this evaluation (after its record is stored). */
  drift: (alert: DriftAlert) => void;
}

export class EvaluationPhase {
  private current?: EvaluationRound;
  private summary?: RoundSummary;
  private noise?: { plan: EvaluationNoisePlan; privacy: PrivacyController };
  /** Model health across evaluations: temperature search, drift reference, criteria. */
  readonly health: HealthMonitor;

  constructor(private readonly ctx: EvaluationPhaseContext) {
    this.health = new HealthMonitor(ctx.config);
  }

  /** The round being evaluated, if any. */
  get round(): number | undefined {
    return this.current?.round;
  }

  /** The evaluators of the next evaluation, sampled from the idle connected clients (none: skip it). */
  choose(idle: ConnectedClient[]): ConnectedClient[] {
    const count = Math.max(1, Math.round(idle.length * this.ctx.config.evaluation.fraction));
    return sampleWithoutReplacement(idle, count, this.ctx.rng);
  }

  /**
   * Sends the evaluators the committed model; `summary` is handed back to `done` when the evaluation
   * closes. With `noise` (a DP job's health.dp) the statistics are capped per client, noised by the plan
   * and accounted in the ledger with the record.
   */
  begin(summary: RoundSummary, evaluators: ConnectedClient[], model: { weights: Float32Array; checksum: string }, noise?: { plan: EvaluationNoisePlan; privacy: PrivacyController }): void {
    const { config, jobId } = this.ctx;
    this.summary = summary;
    this.noise = noise;
    const asked = this.health.request();
    const request = asked && noise ? { ...asked, maxExamples: noise.plan.maxExamples } : asked;
    const ev = new EvaluationRound(summary.round, evaluators, request, modelClasses(config.model));
    ev.timer = this.ctx.timer('evaluation deadline', config.timeouts.evaluateMs, () => this.close());
    this.current = ev;
    for (const c of evaluators) {
      this.ctx.send(c.connId, {
        type: 'evaluate',
        jobId,
        round: summary.round,
        modelChecksum: model.checksum,
        model: config.model,
        batchSize: config.evaluation.batchSize,
        timeoutMs: config.timeouts.evaluateMs,
        vector: model.weights,
        ...(request ? { health: request } : {}),
      });
    }
    this.ctx.failpoint('evaluate', summary.round);
  }

  /** An evaluator's result; throws a typed error (nothing changes) for one that was not asked for. */
  result(client: ConnectedClient, msg: EvalResult): void {
    const ev = this.current;
    if (!ev || !this.ctx.evaluating()) {
      throw new CohortError(ErrorCode.NOT_IN_ROUND, `evaluation of round ${msg.round}: you were not asked`);
    }
    const outOfRange = ev.accept(client, msg, this.ctx.valueLimits);
    if (!outOfRange && msg.groups) this.ctx.declared?.(client.clientId, msg.groups);
    if (outOfRange) {
      this.ctx.reject(client.connId, outOfRange.code, outOfRange.message, msg);
      this.ctx.log.warn({ client: client.clientId, round: msg.round }, 'evaluation result out of range; excluded');
    }
    this.ctx.failpoint('evaluate:result', msg.round);
    if (ev.settled) this.close();
  }

  /** A client's connection closed: if it was an evaluator, it will not answer. */
  gone(clientId: string, connId: string): void {
    const ev = this.current;
    if (!ev || !this.ctx.evaluating()) return;
    ev.gone(clientId, connId);
    if (ev.settled) this.close();
  }

  /** Drops the evaluation in flight (no record); returns its round's summary, if one was in flight. */
  cancel(): RoundSummary | undefined {
    const ev = this.current;
    const summary = this.summary;
    if (ev) this.ctx.clock.clearTimeout(ev.timer);
    this.current = undefined;
    this.noise = undefined;
    this.summary = undefined;
    return ev && summary;
  }

  /**
   * A DP job's evaluation closes: the noised statistics and their ledger row are written in one
   * transaction, and only then is the record published (the summary, the API); un-noised figures never
   * leave the coordinator. No statistics: no record (the plain loss and accuracy are not noised).
   */
  private closePrivate(ev: EvaluationRound, summary: RoundSummary, noise: { plan: EvaluationNoisePlan; privacy: PrivacyController }): void {
    const { log, store, jobId } = this.ctx;
    this.cancel();
    const record = privateRecord(ev, noise.plan, this.ctx.rng);
    if (!record) {
      log.warn({ round: ev.round }, 'DP federated evaluation got no statistics; nothing recorded or accounted');
      return this.ctx.done(summary);
    }
    const entry = noise.privacy.evaluationEntry(noise.plan, record.clients);
    // Success criteria on the noised figures, with the ε this release brings the job to.
    this.health.conclude(ev.round, record.health!, entry.epsilon);
    try {
      store.recordEvaluation(jobId, ev.round, record, entry);
    } catch (err) {
      log.error({ err, round: ev.round }, 'cannot record the DP federated evaluation (nothing published)');
      if (isStoreFailure(err)) return this.ctx.done(summary, `the store failed while recording the evaluation of round ${ev.round}: ${errorText(err)}`);
      return this.ctx.done(summary);
    }
    noise.privacy.evaluationReleased(noise.plan);
    summary.evaluation = record;
    log.info({ round: ev.round, accuracy: record.accuracy, ece: record.health!.metrics.ece, epsilon: noise.privacy.epsilonSpent }, 'federated evaluation (noised statistics, accounted)');
    this.ctx.done(summary);
  }

  /** Everyone answered or the deadline passed: records the evaluation and hands the summary back. */
  private close(): void {
    const ev = this.current;
    const summary = this.summary;
    if (!ev || !summary || !this.ctx.evaluating()) return;
    const { log, store, jobId } = this.ctx;
    const noise = this.noise;
    if (noise) return this.closePrivate(ev, summary, noise);
    this.cancel();
    if (this.ctx.config.health.dp) {
      // Defence in depth: a DP job's evaluation is published only noised and accounted (closePrivate).
      log.error({ round: ev.round }, 'DP federated evaluation without a noise plan; nothing recorded');
      return this.ctx.done(summary);
    }
    const record = ev.record();
    if (!record) {
      log.warn({ round: ev.round }, 'federated evaluation got no results');
      return this.ctx.done(summary);
    }
    const health = ev.health?.report(this.ctx.config.health.minGroupCount);
    const alert = health ? this.health.conclude(ev.round, health, summary.epsilon ?? null) : undefined;
    if (health) record.health = health;
    summary.evaluation = record;
    const { health: _h, ...headline } = record;
    log.info(
      { round: ev.round, ...headline, ...(health ? { ece: health.metrics.ece, brier: health.metrics.brier, nll: health.metrics.nll, criteria: health.criteria?.passed } : {}) },
      'federated evaluation',
    );
    try {
      store.recordEvaluation(jobId, ev.round, record);
    } catch (err) {
      // The round itself is committed; only its evaluation row is lost.
      log.error({ err, round: ev.round }, 'cannot record the federated evaluation');
      if (isStoreFailure(err)) return this.ctx.done(summary, `the store failed while recording the evaluation of round ${ev.round}: ${errorText(err)}`);
    }
    if (alert) {
      log.warn({ round: ev.round, reason: alert.reason, action: alert.action }, 'drift alert');
      this.ctx.drift(alert);
    }
    this.ctx.done(summary);
  }
}

/** The one noise draw of a DP evaluation: σ = plan.stddev on every coordinate of the weighted sum (the plan's event accounts it). */
export function noisedWeightedStats(stats: EvalStats, plan: EvaluationNoisePlan, rng: Rng): Float64Array {
  return addGaussianNoise(weightedStats(stats), plan.stddev, rng);
}

/** The published figures of a DP evaluation: only what the noised statistics say. */
function privateRecord(ev: EvaluationRound, plan: EvaluationNoisePlan, rng: Rng): EvaluationRecord | undefined {
  const tally = ev.health?.report(Number.MAX_SAFE_INTEGER);
  if (!tally) return undefined;
  const stats = statsFromWeighted(noisedWeightedStats(tally.stats, plan, rng), tally.stats.numClasses);
  const metrics = metricsOf(stats);
  if (!metrics) return undefined;
  const health: HealthReport = {
    stats,
    metrics,
    clients: tally.clients,
    privacy: {
      noiseMultiplier: plan.noiseMultiplier,
      sensitivity: plan.sensitivity,
      stddev: plan.stddev,
      maxExamples: plan.maxExamples,
      withheld: 'per-group metrics, accuracy across clients, drift sketches and temperature NLLs are not noised: not published in a DP job',
    },
  };
  return { kind: 'federated', loss: metrics.nll, accuracy: metrics.accuracy, numExamples: stats.count, clients: tally.clients, health };
}

/** The class count a model spec states (zoo specs), else undefined (the first report's count is used). */
function modelClasses(spec: JobConfig['model']): number | undefined {
  return isZooSpec(spec) ? resolveZooSpec(spec).numClasses : undefined;
}
