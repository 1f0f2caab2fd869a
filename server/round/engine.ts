/**
 * The round engine: an event-driven state machine that runs one federated job.
 *
 *   waiting ──(≥ minClients sampled)──▶ training ──(all replied | deadline)──▶ commit ──▶ evaluating? ──▶ waiting
 *       ▲                                   │ (survivors < minSurvivors)                                    │
 *       └──────────────── aborted: retry the same round after retryDelayMs ◀───────────────────────────────┘
 *   any ──(the store fails | pause())──▶ paused ──resume()──▶ waiting
 *
 * It consumes transport events (connect, message, disconnect) and timer events, and emits messages
 * through a `ServerTransport`: it never touches Socket.IO, so the same code runs over sockets and in
 * memory. The parts it coordinates each have their own module: who is connected (registry.ts), the
 * attempt in flight (training.ts), the durable model and its commit (commit.ts), the evaluation
 * (evaluation.ts), secure aggregation (secagg.ts) and the privacy plan (privacy.ts). The engine keeps
 * the state and the transitions, and guards them: no client input and no fault of ours can escape a
 * transition to crash the process; a failing store pauses the job (recovery.ts).
 */
import { EventEmitter } from 'node:events';
import { CohortError } from '../../shared/errors.ts';
import { silentLogger, type Logger } from '../../shared/log.ts';
import {
  boundText,
  errorMessage,
  ErrorCode,
  PROTOCOL_VERSION,
  DEFAULT_LIMITS,
  type ClientMessage,
  type EvalResult,
  type Hello,
  type ProtocolError,
  type SecAggUp,
  type ServerMessage,
  type ServerTransport,
  type ServerTransportSink,
  type Update,
  type WireLimits,
} from '../../shared/protocol/index.ts';
import { cryptoRng, sampleWithoutReplacement, type Rng } from '../../shared/random.ts';
import { SecAggError } from '../../shared/secagg/index.ts';
import type { CohortStore, JobStatus } from '../store/index.ts';
import type { JobSummary, RoundEngineEvents, RoundSummary } from './events.ts';
import { noFailpoints, type Failpoint } from '../failpoints.ts';
import { systemClock, type Clock } from './clock.ts';
import { JobModel } from './commit.ts';
import type { JobConfig } from './config.ts';
import { EvaluationRound } from './evaluation.ts';
import type { RoundPlan } from './privacy.ts';
import { checkUpdate, type ValueLimits } from './ranges.ts';
import { errorText, isStoreFailure } from './recovery.ts';
import { ClientRegistry, type ConnectedClient } from './registry.ts';
import { secaggForRound, type SecAggOutcome, type SecAggRound } from './secagg.ts';
import { TrainingRound, type Member } from './training.ts';

/** How long hellos' client rows may wait before they are written together, in one transaction. */
const CLIENT_FLUSH_MS = 100;

export { systemClock, type Clock } from './clock.ts';
export type { JobSummary, RoundEngineEvents, RoundSummary } from './events.ts';
export { isStoreFailure } from './recovery.ts';

export interface RoundEngineOptions {
  config: JobConfig;
  store: CohortStore;
  transport: ServerTransport;
  logger?: Logger;
  /** Cohort sampling randomness; defaults to the CSPRNG (DP accounting assumes true randomness). */
  rng?: Rng;
  clock?: Clock;
  /** Accept connections but start no round until `release()` (simulations connect all clients first). */
  held?: boolean;
  /** Fault-injection hook (server/failpoints.ts); a no-op unless a test asks for a crash. */
  failpoint?: Failpoint;
  /** A job found paused in the store resumes at start (the one-job server: starting it is the operator's resume). */
  resumePaused?: boolean;
}

type EngineState = 'idle' | 'waiting' | 'training' | 'evaluating' | 'paused' | 'finished';

export class RoundEngine extends EventEmitter<RoundEngineEvents> implements ServerTransportSink {
  readonly jobId: string;
  private readonly config: JobConfig;
  private readonly store: CohortStore;
  private readonly transport: ServerTransport;
  private readonly log: Logger;
  private readonly rng: Rng;
  private readonly clock: Clock;
  private readonly limits: WireLimits;
  private readonly valueLimits: ValueLimits;
  private readonly minSurvivors: number;
  private readonly failpoint: Failpoint;
  private readonly resumePaused: boolean;
  private readonly registry: ClientRegistry;
  /** Client rows waiting for the next batched write (see noteClient). */
  private readonly pendingClients = new Map<string, { numExamples?: number; lastSeen: number }>();
  private clientFlush: unknown;

  private state: EngineState = 'idle';
  private model!: JobModel;
  private attempt = 0;
  private waitTimer: unknown;
  private waitingSince = 0;
  private current?: TrainingRound;
  private evaluation?: EvaluationRound;
  private pendingSummary?: RoundSummary;
  private pauseReason?: string;
  private finishedSummary?: JobSummary;
  /** Distinct clients that were sent job_end. */
  private readonly toldOfEnd = new Set<string>();
  private held: boolean;

  constructor(opts: RoundEngineOptions) {
    super();
    this.config = opts.config;
    this.jobId = opts.config.id;
    this.store = opts.store;
    this.transport = opts.transport;
    this.log = (opts.logger ?? silentLogger).child({ job: this.jobId });
    this.rng = opts.rng ?? cryptoRng();
    this.clock = opts.clock ?? systemClock;
    const { maxExamplesPerClient, maxMetricValue, maxUpdateValue, ...wire } = opts.config.limits;
    this.limits = { ...DEFAULT_LIMITS, ...wire };
    this.valueLimits = { maxExamplesPerClient, maxMetricValue, maxUpdateValue };
    this.minSurvivors = opts.config.minSurvivors ?? opts.config.minClients;
    this.held = opts.held ?? false;
    this.failpoint = opts.failpoint ?? noFailpoints;
    this.resumePaused = opts.resumePaused ?? false;
    this.registry = new ClientRegistry({
      transport: this.transport,
      clock: this.clock,
      log: this.log,
      helloMs: this.config.timeouts.helloMs,
      valueLimits: this.valueLimits,
      timer: (what, ms, fn) => this.timer(what, ms, fn),
    });
  }

  /** Lets a held engine start rounds. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    this.clearWaitTimer();
    this.tryStartRound();
  }

  /** The current global model (a copy). */
  get globalWeights(): Float32Array {
    return this.model.weights.slice();
  }

  get globalChecksum(): string {
    return this.model.checksum;
  }

  get lastCommittedRound(): number {
    return this.model.committedRound;
  }

  get connectedClients(): number {
    return this.registry.size;
  }

  get status(): EngineState {
    return this.state;
  }

  /** Why the job is paused, while it is. */
  get pausedBecause(): string | undefined {
    return this.pauseReason;
  }

  /** Loads (or creates) the job and its latest checkpoint, then starts the transport. */
  async start(): Promise<void> {
    this.loadJob();
    await this.transport.start(this);
    if (this.state === 'finished') return;
    if (this.state === 'paused') {
      if (this.resumePaused) this.resume();
      return;
    }
    this.enterWaiting();
    this.tryStartRound();
  }

  /** Resolves when the job reaches a final state. */
  whenFinished(): Promise<JobSummary> {
    if (this.finishedSummary) return Promise.resolve(this.finishedSummary);
    return new Promise((resolve) => this.once('finished', resolve));
  }

  /**
   * Closes the transport and timers without changing the job's status (a process shutting down: the
   * job resumes from its last committed round when the coordinator starts again).
   */
  async shutdown(): Promise<void> {
    this.flushClients();
    this.clearTimers();
    this.current = undefined;
    this.evaluation = undefined;
    if (this.state !== 'finished') this.state = 'idle';
    await this.transport.close();
  }

  /** Stops the job for good (status `stopped` unless it already finished) and closes the transport. */
  async stop(reason = 'stopped by operator'): Promise<void> {
    if (this.state !== 'finished') this.finish('stopped', reason);
    await this.transport.close();
  }

  /**
   * Holds the job: the attempt in flight (if any) is abandoned — nothing of it was published and no ε
   * is spent — and no round starts until `resume()`. Clients stay connected. Used when the store fails
   * (a full disk must not turn into an endless retry loop).
   */
  pause(reason: string): void {
    if (this.state === 'finished' || this.state === 'paused') return;
    this.clearTimers();
    const round = this.current;
    if (round) {
      round.secagg?.close();
      this.current = undefined;
      this.notifyRoundResult(round, 'aborted');
    }
    const summary = this.pendingSummary;
    this.evaluation = undefined;
    this.pendingSummary = undefined;
    if (summary) this.emit('round', summary);
    this.state = 'paused';
    this.pauseReason = reason;
    this.log.warn({ reason, lastCommittedRound: this.lastCommittedRound }, 'job paused');
    this.persistPause(reason, true);
    this.emit('paused', { reason });
  }

  /** Continues a paused job from its last committed round; false if it was not paused. */
  resume(): boolean {
    if (this.state !== 'paused') return false;
    this.store.setJobStatus(this.jobId, 'running');
    this.clearTimers();
    this.log.info({ reason: this.pauseReason, lastCommittedRound: this.lastCommittedRound }, 'job resumed');
    this.pauseReason = undefined;
    this.attempt = 0;
    this.enterWaiting();
    this.tryStartRound();
    return true;
  }

  // ---- transport events -----------------------------------------------------------------------

  onConnect(connId: string): void {
    this.log.debug({ connId }, 'connection opened');
    this.registry.opened(connId);
  }

  onDisconnect(connId: string, reason: string): void {
    const client = this.registry.closed(connId);
    if (!client) return;
    this.log.info({ client: client.clientId, reason }, 'client disconnected');
    this.transition('disconnect', () => this.markGone(client.clientId, connId));
  }

  onProtocolError(connId: string, error: ProtocolError): void {
    const client = this.registry.client(connId);
    this.log.warn({ client: client?.clientId, connId, code: error.code, reason: error.message }, 'message rejected');
  }

  onMessage(connId: string, msg: ClientMessage): void {
    try {
      this.dispatch(connId, msg);
    } catch (err) {
      if (err instanceof CohortError && !isStoreFailure(err)) {
        this.reject(connId, err.code, err.message, msg);
      } else {
        // Not the sender's fault: say so, and put the engine back in a consistent state.
        this.reject(connId, ErrorCode.INTERNAL, 'internal error; the message was not applied', msg);
        this.recover(`${msg.type} from ${connId}`, err);
      }
    }
  }

  private dispatch(connId: string, msg: ClientMessage): void {
    if (msg.type === 'hello') return this.onHello(connId, msg);
    const client = this.registry.client(connId);
    if (!client) throw new CohortError(ErrorCode.NOT_REGISTERED, `say hello before ${msg.type}`);
    if (msg.jobId !== this.jobId) {
      throw new CohortError(ErrorCode.UNKNOWN_JOB, `job ${msg.jobId} is not running here (this is ${this.jobId})`);
    }
    switch (msg.type) {
      case 'update':
        return this.onUpdate(client, msg);
      case 'refuse':
        return this.onRefuse(client, msg.round, msg.reason);
      case 'eval_result':
        return this.onEvalResult(client, msg);
      case 'secagg_up':
        return this.onSecAggUp(client, msg);
    }
  }

  private onHello(connId: string, msg: Hello): void {
    const { client, replaced } = this.registry.register(connId, msg);
    if (replaced !== undefined) {
      this.log.info({ client: msg.clientId }, 'client reconnected; closing its previous connection');
      this.markGone(msg.clientId, replaced);
      this.transport.disconnect(replaced);
    }
    this.noteClient(msg.clientId, { numExamples: msg.numExamples, lastSeen: this.clock.now() });
    this.transport.send(connId, { type: 'welcome', protocolVersion: PROTOCOL_VERSION, jobId: this.jobId, clientId: client.clientId, limits: this.limits });
    this.log.info({ client: msg.clientId, clients: this.registry.size, backend: msg.backend }, 'client joined');
    if (this.state === 'finished' && this.finishedSummary) {
      this.announceEnd(connId, client.clientId, this.finishedSummary);
    } else if (this.state === 'waiting') {
      // A new client may complete the cohort: check now rather than at the next poll.
      if (this.attempt === 0) this.clearWaitTimer();
      this.tryStartRound();
    }
  }

  /** The caller's pending membership of the collecting round, or a typed rejection. */
  private memberOf(client: ConnectedClient, roundNo: number, what: string): { round: TrainingRound; member: Member } {
    const round = this.current;
    if (!round || this.state !== 'training') {
      throw new CohortError(ErrorCode.NOT_IN_ROUND, `${what} for round ${roundNo}: you are not in a collecting round ${roundNo}`);
    }
    return { round, member: round.pendingMember(client, roundNo, what) };
  }

  private onUpdate(client: ConnectedClient, msg: Update): void {
    const { round, member } = this.memberOf(client, msg.round, 'update');
    round.checkShape(msg, this.model.dim);
    try {
      checkUpdate(msg, this.valueLimits);
    } catch (err) {
      // Refuse it, drop the member from the round, go on.
      round.settle(member, 'rejected');
      this.reject(client.connId, (err as CohortError).code, (err as CohortError).message, msg);
      this.log.warn({ client: client.clientId, round: msg.round }, 'update out of range; the client is excluded from the round');
      return this.closeRoundIfSettled();
    }
    round.fold(member, msg);
    this.log.debug({ client: client.clientId, round: msg.round, examples: msg.numExamples }, 'update folded in');
    this.failpoint('collect', msg.round);
    this.closeRoundIfSettled();
  }

  private onSecAggUp(client: ConnectedClient, msg: SecAggUp): void {
    const { round } = this.memberOf(client, msg.round, 'secagg message'); // throws unless a pending member
    if (!round.secagg) throw new CohortError(ErrorCode.NOT_IN_ROUND, `round ${msg.round} does not use secure aggregation`);
    try {
      round.secagg.receive(client.clientId, msg.body, msg.payload);
    } catch (err) {
      if (err instanceof SecAggError) throw new CohortError(err.code, err.message);
      throw err;
    }
  }

  private onRefuse(client: ConnectedClient, roundNo: number, reason: string): void {
    const { round, member } = this.memberOf(client, roundNo, 'refusal');
    round.settle(member, 'refused');
    this.log.warn({ client: client.clientId, round: roundNo, reason }, 'client refused the round');
    if (round.secagg) round.secagg.memberGone();
    else this.closeRoundIfSettled();
  }

  private onEvalResult(client: ConnectedClient, msg: EvalResult): void {
    const ev = this.evaluation;
    if (!ev || this.state !== 'evaluating') {
      throw new CohortError(ErrorCode.NOT_IN_ROUND, `evaluation of round ${msg.round}: you were not asked`);
    }
    const outOfRange = ev.accept(client, msg, this.valueLimits);
    if (outOfRange) {
      this.reject(client.connId, outOfRange.code, outOfRange.message, msg);
      this.log.warn({ client: client.clientId, round: msg.round }, 'evaluation result out of range; excluded');
    }
    this.failpoint('evaluate:result', msg.round);
    if (ev.settled) this.closeEvaluation();
  }

  private markGone(clientId: string, connId: string): void {
    const round = this.current;
    const member = round?.pendingOn(clientId, connId);
    if (round && member) {
      round.settle(member, 'dropped');
      this.log.info({ client: clientId, round: round.round }, 'cohort member dropped out');
      if (round.secagg) round.secagg.memberGone();
      else this.closeRoundIfSettled();
    }
    const ev = this.evaluation;
    if (ev && this.state === 'evaluating') {
      ev.gone(clientId, connId);
      if (ev.settled) this.closeEvaluation();
    }
  }

  private reject(connId: string, code: string, message: string, msg?: { type: string; round?: number }): void {
    const client = this.registry.client(connId);
    const text = boundText(message);
    this.log.warn({ client: client?.clientId, connId, code, reason: text }, 'message rejected');
    this.transport.send(connId, errorMessage(code, text, msg));
  }

  // ---- job lifecycle --------------------------------------------------------------------------

  private loadJob(): void {
    this.model = JobModel.load(this.config, this.store, this.log);
    const job = this.model.job;
    if (job.status === 'paused') {
      this.state = 'paused';
      this.pauseReason = job.reason ?? 'paused';
      this.log.warn({ reason: this.pauseReason }, 'job is paused; resume() continues it');
      return;
    }
    if (job.status !== 'created' && job.status !== 'running' && job.status !== 'queued') {
      this.state = 'finished';
      this.finishedSummary = { jobId: this.jobId, status: job.status, rounds: this.lastCommittedRound, checksum: this.globalChecksum, reason: job.reason ?? undefined };
      this.log.info({ status: job.status }, 'job already finished; serving its final state');
      return;
    }
    if (job.status !== 'running') this.store.setJobStatus(this.jobId, 'running');
  }

  private finish(status: JobStatus, reason?: string): void {
    if (this.state === 'finished') return;
    this.clearTimers();
    this.state = 'finished';
    this.current = undefined;
    this.evaluation = undefined;
    try {
      this.store.setJobStatus(this.jobId, status, reason);
    } catch (err) {
      this.log.error({ err, status }, 'cannot record the final job status in the store');
    }
    const summary: JobSummary = { jobId: this.jobId, status, rounds: this.lastCommittedRound, checksum: this.globalChecksum, reason };
    this.finishedSummary = summary;
    this.log.info({ status, rounds: this.lastCommittedRound, reason }, 'job finished');
    for (const c of this.registry.all()) this.announceEnd(c.connId, c.clientId, summary);
    this.emit('finished', summary);
  }

  /** How many distinct clients have been told that the job ended. */
  get clientsToldOfEnd(): number {
    return this.toldOfEnd.size;
  }

  private announceEnd(connId: string, clientId: string, summary: JobSummary): void {
    this.transport.send(connId, this.jobEndMessage(summary));
    const before = this.toldOfEnd.size;
    this.toldOfEnd.add(clientId);
    if (this.toldOfEnd.size > before) this.emit('endAnnounced', this.toldOfEnd.size);
  }

  private jobEndMessage(summary: JobSummary): ServerMessage {
    return { type: 'job_end', jobId: this.jobId, status: summary.status, rounds: summary.rounds };
  }

  private enterWaiting(): void {
    this.state = 'waiting';
    this.waitingSince = this.clock.now();
  }

  private clearWaitTimer(): void {
    if (this.waitTimer !== undefined) this.clock.clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
  }

  private clearTimers(): void {
    for (const t of [this.current?.timer, this.evaluation?.timer]) if (t !== undefined) this.clock.clearTimeout(t);
    this.clearWaitTimer();
  }

  /** Tries again after `ms` (a cohort came up short, an attempt was aborted). */
  private retryIn(ms: number): void {
    this.waitTimer = this.timer('retry', ms, () => {
      this.waitTimer = undefined;
      this.tryStartRound();
    });
  }

  // ---- select & configure ---------------------------------------------------------------------

  private tryStartRound(): void {
    if (this.state !== 'waiting' || this.waitTimer !== undefined || this.held) return;
    if (this.lastCommittedRound >= this.config.rounds) return this.finish('completed');
    const eligible = this.registry.all();
    const cohort = eligible.length >= this.config.minClients ? this.sample(eligible) : [];
    if (cohort.length < this.config.minClients) {
      const waited = this.clock.now() - this.waitingSince;
      const limit = this.config.timeouts.waitForClientsMs;
      if (limit > 0 && waited >= limit) {
        return this.finish('failed', `fewer than ${this.config.minClients} clients for ${limit} ms`);
      }
      this.log.debug({ eligible: eligible.length, sampled: cohort.length, needed: this.config.minClients }, 'waiting for clients');
      // Re-check on the next connect, and periodically (Poisson sampling may come up short).
      return this.retryIn(Math.max(this.config.timeouts.retryDelayMs, 50));
    }
    this.beginRound(cohort, eligible.length);
  }

  private sample(eligible: ConnectedClient[]): ConnectedClient[] {
    const sampling = this.config.sampling;
    if (sampling.mode === 'fixed') return sampleWithoutReplacement(eligible, sampling.cohortSize, this.rng);
    // Poisson sampling: each client joins independently with probability q.
    return eligible.filter(() => this.rng.next() < sampling.rate);
  }

  private beginRound(cohort: ConnectedClient[], population: number): void {
    const roundNo = this.lastCommittedRound + 1;
    const privacy = this.model.privacy;
    let plan: RoundPlan | undefined;
    if (privacy.enabled) {
      const planned = privacy.plan(cohort.length, population, this.minSurvivors);
      if ('exhausted' in planned) {
        this.log.warn({ round: roundNo, epsilon: privacy.epsilonSpent, reason: planned.exhausted }, 'privacy budget exhausted');
        return this.finish('budget_exhausted', planned.exhausted);
      }
      plan = planned;
    }
    this.attempt++;
    const round = new TrainingRound(roundNo, this.attempt, this.clock.now(), cohort, this.model.dim, plan);
    const { model, training, timeouts, secagg } = this.config;
    if (secagg.enabled) {
      try {
        round.secagg = this.createSecAgg(roundNo, cohort, plan);
      } catch (err) {
        this.log.error({ err, round: roundNo }, 'cannot configure secure aggregation for this cohort');
        return this.finish('failed', `secure aggregation: ${errorText(err)}`);
      }
      if (plan) privacy.bindSecAgg(plan, { sensitivity: round.secagg.sensitivity, noiseStddev: round.secagg.announce.noiseStddev, minSurvivors: round.secagg.announce.minSurvivors });
    }
    // With SecAgg the round deadline is a safety net: SecAgg runs its own phase deadlines.
    const deadline = timeouts.trainMs + (secagg.enabled ? 5 * secagg.phaseTimeoutMs : 0);
    round.timer = this.timer('training deadline', deadline, () => this.onTrainDeadline(roundNo));
    this.current = round;
    this.state = 'training';
    this.log.info({ round: roundNo, attempt: this.attempt, cohort: cohort.length, connected: this.registry.size }, 'round started');
    this.failpoint('select', roundNo);
    for (const c of cohort) {
      this.transport.send(c.connId, {
        type: 'train',
        jobId: this.jobId,
        round: roundNo,
        modelChecksum: this.globalChecksum,
        model,
        training,
        timeoutMs: timeouts.trainMs,
        ...(plan ? { privacy: plan.announce } : {}),
        ...(round.secagg ? { secagg: round.secagg.announce } : {}),
        vector: this.model.weights,
      });
    }
    this.failpoint('train', roundNo);
    round.secagg?.start();
  }

  private createSecAgg(roundNo: number, cohort: ConnectedClient[], plan: RoundPlan | undefined): SecAggRound {
    const dp = this.config.dp;
    return secaggForRound({
      jobId: this.jobId,
      round: roundNo,
      cohort,
      config: this.config.secagg,
      dim: this.model.dim,
      clipNorm: dp.mode !== 'off' ? (dp.clipNorm as number) : this.config.secagg.clipNorm!,
      minSurvivors: this.minSurvivors,
      // Only distributed DP puts noise into the encoding; central noise is added to the decoded sum.
      noiseMultiplier: plan && dp.mode === 'distributed' ? plan.noise.valueNoiseMultiplier : 0,
      trainMs: this.config.timeouts.trainMs,
      clock: this.clock,
      log: this.log,
      send: (connId, msg) => this.transport.send(connId, msg),
      isRegistered: (connId, clientId) => this.registry.client(connId)?.clientId === clientId,
      onDone: (outcome) => this.transition('secure aggregation done', () => this.onSecAggDone(roundNo, outcome)),
      failpoint: this.failpoint,
    });
  }

  private onSecAggDone(roundNo: number, outcome: SecAggOutcome): void {
    const round = this.current;
    if (!round || round.round !== roundNo || !round.secagg || this.state !== 'training') return;
    if (outcome.status === 'ok') {
      const included = new Set(outcome.included);
      for (const [clientId, m] of round.members) {
        if (included.has(clientId)) round.include(m);
        else round.settle(m, 'dropped');
      }
      const sum = round.secagg.decode(outcome.sum);
      const implausible = round.secagg.implausibleSum(sum, outcome.included.length);
      if (implausible !== undefined) {
        this.log.warn({ round: roundNo, reason: implausible }, 'secure aggregation produced an impossible sum; the attempt is aborted');
        return this.closeRound(implausible);
      }
      round.secaggSum = sum;
    } else {
      round.dropPending();
      this.log.warn({ round: roundNo, reason: outcome.reason }, 'secure aggregation aborted');
    }
    this.closeRound(outcome.status === 'aborted' ? outcome.reason : undefined);
  }

  // ---- collect, commit, abort -------------------------------------------------------------------

  private onTrainDeadline(roundNo: number): void {
    const round = this.current;
    if (!round || round.round !== roundNo || this.state !== 'training') return;
    round.timer = undefined;
    round.secagg?.close();
    const late = round.dropPending();
    this.log.info({ round: roundNo, late }, 'training deadline reached');
    this.closeRound();
  }

  private closeRoundIfSettled(): void {
    if (this.current?.settled && this.state === 'training') this.closeRound();
  }

  private closeRound(secaggAbort?: string): void {
    const round = this.current!;
    if (round.timer !== undefined) this.clock.clearTimeout(round.timer);
    round.secagg?.close();
    this.current = undefined;
    try {
      this.settleRound(round, secaggAbort);
    } catch (err) {
      this.roundFailed(round, err);
    }
  }

  /** Commits the closed round or aborts the attempt. Throws only for faults on our side (store, bugs). */
  private settleRound(round: TrainingRound, secaggAbort: string | undefined): void {
    const endedAt = this.clock.now();
    this.store.recordParticipation(this.jobId, round.round, round.participation());
    if (secaggAbort !== undefined || (round.secagg && !round.secaggSum)) {
      return this.abortRound(round, 0, endedAt, `secure aggregation aborted: ${secaggAbort ?? 'deadline'}`);
    }
    const record = round.record(endedAt);
    if (record.survivors < this.minSurvivors) {
      return this.abortRound(round, record.survivors, endedAt, `${record.survivors} survivors < minSurvivors ${this.minSurvivors}`);
    }
    if (!this.model.commit(round, record, this.failpoint)) {
      // Client inputs are range-checked, so this is the server optimizer diverging: never publish it.
      return this.abortRound(round, record.survivors, endedAt, 'the aggregated model is not finite (server optimizer diverged?)');
    }
    this.attempt = 0;
    this.notifyRoundResult(round, 'committed');
    const summary: RoundSummary = {
      round: round.round,
      record,
      checksum: this.globalChecksum,
      ...(round.plan ? { epsilon: this.model.privacy.epsilonSpent } : {}),
    };
    const every = this.config.evaluation.every;
    if (every > 0 && (round.round % every === 0 || round.round === this.config.rounds)) this.beginEvaluation(summary);
    else this.afterRound(summary);
  }

  /**
   * A fault on our side while settling a round: nothing was published. A failing store pauses the job
   * (retrying would loop on a full disk); anything else aborts this attempt, to be retried.
   */
  private roundFailed(round: TrainingRound, err: unknown): void {
    if (isStoreFailure(err)) {
      this.log.error({ err, round: round.round, attempt: round.attempt }, 'the store failed while settling the round; pausing the job');
      this.notifyRoundResult(round, 'aborted');
      this.emit('aborted', { round: round.round, attempt: round.attempt, reason: `store failure: ${errorText(err)}` });
      return this.pause(`the store failed while settling round ${round.round}: ${errorText(err)}`);
    }
    this.log.error({ err, round: round.round, attempt: round.attempt }, 'internal error while settling the round; the attempt is aborted');
    this.abortRound(round, 0, this.clock.now(), `internal error: ${errorText(err)}`);
  }

  private abortRound(round: TrainingRound, survivors: number, endedAt: number, reason: string): void {
    try {
      this.store.recordRoundAborted({ jobId: this.jobId, round: round.round, startedAt: round.startedAt, endedAt, cohortSize: round.members.size, survivors, reason });
    } catch (err) {
      if (isStoreFailure(err)) return this.roundFailed(round, err);
      this.log.error({ err, round: round.round, reason }, 'cannot record the aborted attempt');
    }
    this.log.warn({ round: round.round, attempt: round.attempt, reason }, 'round aborted; nothing was published');
    this.notifyRoundResult(round, 'aborted');
    this.emit('aborted', { round: round.round, attempt: round.attempt, reason });
    if (this.attempt >= this.config.maxAttemptsPerRound) {
      return this.finish('failed', `round ${round.round} aborted ${this.attempt} times (last: ${reason})`);
    }
    this.enterWaiting();
    this.retryIn(this.config.timeouts.retryDelayMs);
  }

  private notifyRoundResult(round: TrainingRound, outcome: 'committed' | 'aborted'): void {
    for (const [clientId, m] of round.members) {
      if (this.registry.client(m.connId)?.clientId !== clientId) continue;
      this.transport.send(m.connId, {
        type: 'round_result',
        jobId: this.jobId,
        round: round.round,
        outcome,
        included: outcome === 'committed' && m.status === 'completed',
      });
    }
  }

  // ---- evaluate -------------------------------------------------------------------------------

  private beginEvaluation(summary: RoundSummary): void {
    const idle = this.registry.all();
    const count = Math.max(1, Math.round(idle.length * this.config.evaluation.fraction));
    const chosen = sampleWithoutReplacement(idle, count, this.rng);
    if (chosen.length === 0) return this.afterRound(summary);
    this.pendingSummary = summary;
    const ev = new EvaluationRound(summary.round, chosen);
    ev.timer = this.timer('evaluation deadline', this.config.timeouts.evaluateMs, () => this.closeEvaluation());
    this.evaluation = ev;
    this.state = 'evaluating';
    for (const c of chosen) {
      this.transport.send(c.connId, {
        type: 'evaluate',
        jobId: this.jobId,
        round: summary.round,
        modelChecksum: this.globalChecksum,
        model: this.config.model,
        batchSize: this.config.evaluation.batchSize,
        timeoutMs: this.config.timeouts.evaluateMs,
        vector: this.model.weights,
      });
    }
    this.failpoint('evaluate', summary.round);
  }

  private closeEvaluation(): void {
    const ev = this.evaluation;
    const summary = this.pendingSummary;
    if (!ev || !summary || this.state !== 'evaluating') return;
    this.clock.clearTimeout(ev.timer);
    this.evaluation = undefined;
    this.pendingSummary = undefined;
    const record = ev.record();
    if (!record) {
      this.log.warn({ round: ev.round }, 'federated evaluation got no results');
      return this.afterRound(summary);
    }
    summary.evaluation = record;
    this.log.info({ round: ev.round, ...record }, 'federated evaluation');
    try {
      this.store.recordEvaluation(this.jobId, ev.round, record);
    } catch (err) {
      // The round itself is committed; only its evaluation row is lost.
      this.log.error({ err, round: ev.round }, 'cannot record the federated evaluation');
      if (isStoreFailure(err)) return this.afterRound(summary, `the store failed while recording the evaluation of round ${ev.round}: ${errorText(err)}`);
    }
    this.afterRound(summary);
  }

  private afterRound(summary: RoundSummary, pauseReason?: string): void {
    this.enterWaiting();
    this.emit('round', summary);
    if (pauseReason !== undefined) return this.pause(pauseReason);
    if (this.state === 'waiting') this.tryStartRound();
  }

  // ---- faults on our side -----------------------------------------------------------------------

  /**
   * Client bookkeeping (first/last seen, example count) is written in batches: a storm of hellos costs
   * one transaction per CLIENT_FLUSH_MS, not one fsync per hello.
   */
  private noteClient(clientId: string, info: { numExamples?: number; lastSeen: number }): void {
    const prev = this.pendingClients.get(clientId);
    this.pendingClients.set(clientId, { numExamples: info.numExamples ?? prev?.numExamples, lastSeen: info.lastSeen });
    if (this.clientFlush === undefined) this.clientFlush = this.timer('client bookkeeping', CLIENT_FLUSH_MS, () => this.flushClients());
  }

  private flushClients(): void {
    if (this.clientFlush !== undefined) this.clock.clearTimeout(this.clientFlush);
    this.clientFlush = undefined;
    if (this.pendingClients.size === 0) return;
    const entries = [...this.pendingClients].map(([clientId, info]) => ({ clientId, ...info }));
    this.pendingClients.clear();
    try {
      this.store.upsertClients(entries);
    } catch (err) {
      // Bookkeeping only: the clients may still take part (a failing store pauses the job at its next commit).
      this.log.error({ err, clients: entries.length }, 'cannot record clients in the store');
    }
  }

  /** A timer whose callback runs as a guarded transition (an error there never escapes to the event loop). */
  private timer(what: string, ms: number, fn: () => void): unknown {
    return this.clock.setTimeout(() => this.transition(what, fn), ms);
  }

  private transition(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.recover(what, err);
    }
  }

  /**
   * Puts the engine back in a consistent state after an unexpected error in `what`: a failing store
   * pauses the job; otherwise the attempt in flight (nothing of it was published) is aborted and
   * retried, or the job fails if even that throws. Logged at error level: these are our faults.
   */
  private recover(what: string, err: unknown): void {
    if (this.state === 'finished') return void this.log.error({ err, what }, 'error after the job finished');
    if (isStoreFailure(err)) {
      this.log.error({ err, what }, 'the store failed; pausing the job');
      return this.pause(`the store failed (${what}): ${errorText(err)}`);
    }
    this.log.error({ err, what, round: this.current?.round ?? this.evaluation?.round }, 'internal error; recovering');
    try {
      const round = this.current;
      if (round) {
        if (round.timer !== undefined) this.clock.clearTimeout(round.timer);
        round.secagg?.close();
        this.current = undefined;
        return this.abortRound(round, 0, this.clock.now(), `internal error (${what}): ${errorText(err)}`);
      }
      const summary = this.pendingSummary;
      if (this.evaluation && summary) {
        this.clock.clearTimeout(this.evaluation.timer);
        this.evaluation = undefined;
        this.pendingSummary = undefined;
        return this.afterRound(summary);
      }
      if (this.state === 'waiting' && this.waitTimer === undefined) this.retryIn(Math.max(this.config.timeouts.retryDelayMs, 50));
    } catch (again) {
      this.log.error({ err: again, what }, 'recovery failed; the job fails');
      this.finish('failed', `internal error (${what}): ${errorText(err)}`);
    }
  }

  /** Records the pause; while the store refuses (busy, full), tries again until it takes or the job resumes. */
  private persistPause(reason: string, first: boolean): void {
    if (this.state !== 'paused' || this.pauseReason !== reason) return;
    try {
      this.store.setJobStatus(this.jobId, 'paused', reason);
    } catch (err) {
      if (first) this.log.error({ err }, 'cannot record the pause in the store yet; retrying');
      this.waitTimer = this.timer('record pause', Math.max(this.config.timeouts.retryDelayMs, 50), () => {
        this.waitTimer = undefined;
        this.persistPause(reason, false);
      });
    }
  }
}
