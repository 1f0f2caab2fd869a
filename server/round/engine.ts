/**
 * The round engine: an event-driven state machine that runs one federated job.
 *
 *   waiting ──(≥ minClients sampled)──▶ training ──(all replied | deadline)──▶ commit ──▶ evaluating? ──▶ waiting
 *       ▲                                   │ (survivors < minSurvivors)                                    │
 *       └──────────────── aborted: retry the same round after retryDelayMs ◀───────────────────────────────┘
 *   any ──(the store fails | pause())──▶ paused ──resume()──▶ waiting
 *
 * It consumes transport events (connect, message, disconnect, through `sink`) and timer events, and emits
 * messages through a `ServerTransport`: it never touches Socket.IO, so the same code runs over sockets
 * and in memory. Its parts are wired in parts.ts. The engine owns the state above and every transition between its states: the lifecycle
 * (start, pause, resume, stop, finish), when a round starts (tryStartRound, beginRound with its privacy
 * plan), how an attempt ends (settleRound commits it, abortRound/roundFailed abort it or pause the job)
 * and what follows. Each part it coordinates has its own module and gets small callbacks, never the
 * engine: client messages in and typed rejections out (intake.ts), who is connected and who was told
 * the job ended (registry.ts), the batched client rows (client-rows.ts), sampling, configuring and
 * telling the cohort (cohort.ts), the attempt in flight (training.ts: TrainingPhase), the durable
 * model and its commit (commit.ts), the evaluation phase (evaluation.ts: EvaluationPhase), secure
 * aggregation (secagg.ts) and the privacy plan (privacy.ts). Every timer and transition runs in
 * recovery.ts's guard: no client input and no fault of ours can escape one to crash the process; an
 * internal error abandons what is in flight (`abandon`), and a failing store pauses the job.
 */
import { EventEmitter } from 'node:events';
import { silentLogger, type Logger } from '../../shared/log.ts';
import {
  DEFAULT_LIMITS,
  type ServerTransport,
  type ServerTransportSink,
  type WireLimits,
} from '../../shared/protocol/index.ts';
import { cryptoRng, type Rng } from '../../shared/random.ts';
import type { CohortStore, JobStatus } from '../store/index.ts';
import type { JobSummary, RoundEngineEvents, RoundSummary } from './events.ts';
import { noFailpoints, type Failpoint } from '../failpoints.ts';
import { systemClock, type Clock } from './clock.ts';
import type { ClientRows } from './client-rows.ts';
import type { RoundStarter } from './cohort.ts';
import { JobModel } from './commit.ts';
import type { JobConfig } from './config.ts';
import type { EvaluationPhase } from './evaluation.ts';
import { engineParts } from './parts.ts';
import type { PrivacyController, RoundPlan } from './privacy.ts';
import type { ValueLimits } from './ranges.ts';
import { errorText, isStoreFailure, type Guard } from './recovery.ts';
import type { ClientRegistry, ConnectedClient } from './registry.ts';
import type { SecAggOutcome, SecAggRound } from './secagg.ts';
import { type TrainingPhase, TrainingRound } from './training.ts';
import { Federation, type ClientAuthenticator } from '../identity/federation.ts';

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
  /**
   * Who may speak for which client id (server/identity). Default: the federation in first-use mode on
   * this store (an unknown id is bound to the first key it presents; zero set-up on loopback and in
   * simulations).
   */
  clients?: ClientAuthenticator;
  /** The server identity hellos are signed for: the TLS certificate fingerprint, else `plaintext`. */
  serverIdentity?: string;
}

type EngineState = 'idle' | 'waiting' | 'training' | 'evaluating' | 'paused' | 'finished';

export class RoundEngine extends EventEmitter<RoundEngineEvents> {
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
  private readonly guard: Guard;
  private readonly registry: ClientRegistry;
  /** What the transport calls (parts.ts): connections, messages, protocol errors. */
  readonly sink: ServerTransportSink;
  private readonly clientRows: ClientRows;
  private readonly starter: RoundStarter;
  private readonly training: TrainingPhase;
  private readonly evaluations: EvaluationPhase;
  private readonly clients: ClientAuthenticator;

  private state: EngineState = 'idle';
  private model!: JobModel;
  private attempt = 0;
  private waitTimer: unknown;
  private waitingSince = 0;
  private pauseReason?: string;
  private finishedSummary?: JobSummary;
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
    const { clock, log, transport, store, jobId, config, rng, valueLimits, failpoint, minSurvivors } = this;
    const parts = engineParts(
      {
        jobId,
        config,
        store,
        transport,
        clock,
        log,
        rng,
        valueLimits,
        failpoint,
        minSurvivors,
        limits: this.limits,
        authenticator: (this.clients = opts.clients ?? new Federation({ store, mode: 'first-use', logger: log })),
        serverIdentity: opts.serverIdentity ?? 'plaintext',
      },
      {
        state: () => this.state,
        dim: () => this.model.dim,
        joined: (connId, clientId) => this.onJoined(connId, clientId),
        closed: (round, secaggAbort) => this.closeRound(round, secaggAbort),
        evaluated: (summary, pauseReason) => this.afterRound(summary, pauseReason),
        drift: (alert) => this.emit('drift', alert),
        pause: (reason) => this.pause(reason),
        abandon: (what, err) => this.abandon(what, err),
        fail: (reason) => this.finish('failed', reason),
      },
    );
    ({ sink: this.sink, guard: this.guard, registry: this.registry, clientRows: this.clientRows } = parts);
    ({ starter: this.starter, training: this.training, evaluations: this.evaluations } = parts);
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

  /**
   * A revoked client (server/identity): its connection is closed now; a round it was in counts it as a
   * dropout (the round completes if enough survive), and its hellos are refused from now on.
   */
  disconnectClient(clientId: string): boolean {
    const connId = this.registry.connOf(clientId);
    if (connId === undefined) return false;
    this.log.info({ client: clientId }, 'client revoked; closing its connection');
    this.transport.disconnect(connId);
    return true;
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
    await this.transport.start(this.sink);
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
    this.clientRows.flush();
    if (this.clients instanceof Federation) this.clients.flush();
    this.clearWaitTimer();
    this.training.take();
    this.evaluations.cancel();
    if (this.state !== 'finished') this.state = 'idle';
    await this.transport.close();
  }

  /** Stops the job for good (status `stopped` unless it already finished); closes the transport unless `keepTransport`. */
  async stop(reason = 'stopped by operator', opts: { keepTransport?: boolean } = {}): Promise<void> {
    if (this.state !== 'finished') this.finish('stopped', reason);
    if (!opts.keepTransport) await this.transport.close();
  }

  /** The job's privacy controller (ε spent against each audience, the next round's projection). Throws before start(). */
  get privacy(): PrivacyController {
    return this.model.privacy;
  }

  /** True once start() has loaded the job (its model, ledger and privacy controller). */
  get loaded(): boolean {
    return this.model !== undefined;
  }

  /**
   * Holds the job: the attempt in flight (if any) is abandoned — nothing of it was published and no ε
   * is spent — and no round starts until `resume()`. Clients stay connected. Used when the store fails
   * (a full disk must not turn into an endless retry loop).
   */
  pause(reason: string): void {
    if (this.state === 'finished' || this.state === 'paused') return;
    this.clearWaitTimer();
    const round = this.training.take();
    if (round) {
      round.secagg?.close();
      this.notifyRoundResult(round, 'aborted');
    }
    const summary = this.evaluations.cancel();
    if (summary) this.emit('round', summary);
    this.state = 'paused';
    this.pauseReason = reason;
    this.log.warn({ reason, lastCommittedRound: this.lastCommittedRound }, 'job paused');
    // Recorded as soon as the store takes it: while it refuses (busy, full), again until it does or the job resumes.
    const write = (): void => this.store.setJobStatus(this.jobId, 'paused', reason);
    this.guard.persist('record the pause', write, () => this.state === 'paused' && this.pauseReason === reason, (t) => (this.waitTimer = t));
    this.emit('paused', { reason });
  }

  /** Continues a paused job from its last committed round; false if it was not paused. */
  resume(): boolean {
    if (this.state !== 'paused') return false;
    this.store.setJobStatus(this.jobId, 'running');
    this.clearWaitTimer();
    this.log.info({ reason: this.pauseReason, lastCommittedRound: this.lastCommittedRound }, 'job resumed');
    this.pauseReason = undefined;
    this.attempt = 0;
    this.enterWaiting();
    this.tryStartRound();
    return true;
  }

  // ---- clients --------------------------------------------------------------------------------

  /** A client joined (parts.ts welcomed it): tell it the job ended, or see whether a round can start. */
  private onJoined(connId: string, clientId: string): void {
    if (this.state === 'finished' && this.finishedSummary) {
      this.announceEnd(connId, clientId, this.finishedSummary);
    } else if (this.state === 'waiting') {
      // A new client may complete the cohort: check now rather than at the next poll.
      if (this.attempt === 0) this.clearWaitTimer();
      this.tryStartRound();
    }
  }

  // ---- job lifecycle --------------------------------------------------------------------------

  private loadJob(): void {
    this.model = JobModel.load(this.config, this.store, this.log);
    // Model health spans evaluations (temperature, drift reference window): rebuilt from the stored reports.
    const reports = this.store.listEvaluations(this.jobId).flatMap((e) => (e.kind === 'federated' && e.health ? [e.health] : []));
    this.evaluations.health.restore(reports);
    const found = this.model.resumeAs();
    if (found.status === 'paused') {
      [this.state, this.pauseReason] = ['paused', found.reason];
      this.log.warn({ reason: this.pauseReason }, 'job is paused; resume() continues it');
    } else if (found.status !== 'running') {
      this.state = 'finished';
      this.finishedSummary = { jobId: this.jobId, status: found.status, rounds: this.lastCommittedRound, checksum: this.globalChecksum, reason: found.reason };
      this.log.info({ status: found.status }, 'job already finished; serving its final state');
    }
  }

  private finish(status: JobStatus, reason?: string): void {
    if (this.state === 'finished') return;
    this.clearWaitTimer();
    this.state = 'finished';
    this.training.take();
    this.evaluations.cancel();
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
    return this.registry.toldOfEnd;
  }

  private announceEnd(connId: string, clientId: string, summary: JobSummary): void {
    const told = this.registry.announceEnd(connId, clientId, { type: 'job_end', jobId: this.jobId, status: summary.status, rounds: summary.rounds });
    if (told) this.emit('endAnnounced', this.registry.toldOfEnd);
  }

  private enterWaiting(): void {
    this.state = 'waiting';
    this.waitingSince = this.clock.now();
  }

  private clearWaitTimer(): void {
    if (this.waitTimer !== undefined) this.clock.clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
  }

  /** Tries again after `ms` (a cohort came up short, an attempt was aborted). */
  private retryIn(ms: number): void {
    this.waitTimer = this.guard.timer('retry', ms, () => {
      this.waitTimer = undefined;
      this.tryStartRound();
    });
  }

  // ---- select & configure ---------------------------------------------------------------------

  private tryStartRound(): void {
    if (this.state !== 'waiting' || this.waitTimer !== undefined || this.held) return;
    if (this.lastCommittedRound >= this.config.rounds) return this.finish('completed');
    const eligible = this.registry.all();
    const { cohort, wait } = this.starter.draw(eligible, this.model.privacy, this.lastCommittedRound);
    if (wait !== undefined) {
      const waited = this.clock.now() - this.waitingSince;
      const limit = this.config.timeouts.waitForClientsMs;
      if (limit > 0 && waited >= limit) {
        return this.finish('failed', `${wait} for ${limit} ms`);
      }
      this.log.debug({ eligible: eligible.length, sampled: cohort.length, needed: this.config.minClients, reason: wait }, 'waiting for clients');
      // Re-check on the next connect, and periodically (Poisson sampling may come up short).
      return this.retryIn(Math.max(this.config.timeouts.retryDelayMs, 50));
    }
    this.beginRound(cohort, eligible.length);
  }

  private beginRound(cohort: ConnectedClient[], population: number): void {
    const roundNo = this.lastCommittedRound + 1;
    const exhausted = (reason: string): void => {
      this.log.warn({ round: roundNo, epsilon: this.model.privacy.epsilonSpent, reason }, 'privacy budget exhausted');
      this.finish('budget_exhausted', reason);
    };
    const plan = this.model.planAttempt(cohort.length, population, this.minSurvivors);
    if (plan && 'exhausted' in plan) return exhausted(plan.exhausted);
    this.attempt++;
    const strategy = { aggregator: this.config.aggregator, learningRate: this.config.training.learningRate };
    const round = new TrainingRound(roundNo, this.attempt, this.clock.now(), cohort, this.model.dim, plan, strategy);
    const { timeouts, secagg } = this.config;
    if (secagg.enabled) {
      try {
        round.secagg = this.createSecAgg(round, cohort, plan);
      } catch (err) {
        this.log.error({ err, round: roundNo }, 'cannot configure secure aggregation for this cohort');
        return this.finish('failed', `secure aggregation: ${errorText(err)}`);
      }
      const over = this.model.bindSecAgg(plan, round.secagg);
      if (over) return exhausted(over.exhausted);
    }
    // Local DP: asking clients to train is the release (each answers with its noised update), so it is
    // in the ledger before anyone is asked. A failing store pauses the job with nothing sent.
    if (plan && this.model.privacy.releasesAhead === 'train') {
      try {
        this.model.writeAhead(round, plan);
      } catch (err) {
        if (!isStoreFailure(err)) throw err;
        this.log.error({ err, round: roundNo }, "the store failed recording the attempt's release; pausing the job");
        return this.pause(`the store failed recording round ${roundNo}'s release: ${errorText(err)}`);
      }
    }
    // With SecAgg the round deadline is a safety net: SecAgg runs its own phase deadlines.
    this.training.begin(round, timeouts.trainMs + (secagg.enabled ? 5 * secagg.phaseTimeoutMs : 0));
    this.state = 'training';
    this.log.info({ round: roundNo, attempt: this.attempt, cohort: cohort.length, connected: this.registry.size }, 'round started');
    this.failpoint('select', roundNo);
    this.starter.announce(round, cohort, this.model);
    this.failpoint('train', roundNo);
    round.secagg?.start();
    // An empty Poisson draw (central DP): nobody to wait for, the round is a noise-only release.
    if (cohort.length === 0) this.training.closeIfSettled();
  }

  private createSecAgg(round: TrainingRound, cohort: ConnectedClient[], plan: RoundPlan | undefined): SecAggRound {
    const roundNo = round.round;
    const onDone = (outcome: SecAggOutcome): void => this.guard.run('secure aggregation done', () => this.training.secaggDone(roundNo, outcome));
    // Distributed DP: with the unmasking shares the coordinator can compute the noised sum, so the release
    // is in the ledger before they are asked for (if this throws, SecAgg aborts the attempt unrevealed).
    const beforeUnmask = plan && this.model.privacy.releasesAhead === 'unmask' ? () => this.model.writeAhead(round, plan) : undefined;
    return this.starter.secagg(roundNo, cohort, this.model.dim, plan, onDone, beforeUnmask);
  }

  // ---- collect, commit, abort -------------------------------------------------------------------

  /** The attempt closed (training.ts): commit it, or abort it if it cannot be. */
  private closeRound(round: TrainingRound, secaggAbort?: string): void {
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
    if (record.survivors < this.minSurvivors && !this.model.privacy.unconditioned) {
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
      ...(round.plan ? this.model.epsilons() : {}),
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
    this.starter.tellResult(round, outcome);
  }

  // ---- evaluate -------------------------------------------------------------------------------

  private beginEvaluation(summary: RoundSummary): void {
    const idle = this.registry.all();
    const evaluators = this.evaluations.choose(idle);
    if (evaluators.length === 0) return this.afterRound(summary);
    // A DP job's noised statistics are planned (and checked against the budget) before anything is asked.
    const privacy = this.model.privacy;
    const noise = this.config.health.dp && privacy.enabled ? privacy.evaluationPlan(this.config.health.dp.noiseMultiplier, this.config.health.dp.maxExamples, evaluators.length, idle.length) : undefined;
    if (noise && 'exhausted' in noise) {
      this.log.warn({ round: summary.round, reason: noise.exhausted }, 'federated evaluation skipped: its noised statistics would exceed the privacy budget');
      return this.afterRound(summary);
    }
    this.state = 'evaluating';
    this.evaluations.begin(summary, evaluators, this.model, noise && { plan: noise, privacy });
  }

  private afterRound(summary: RoundSummary, pauseReason?: string): void {
    this.enterWaiting();
    this.emit('round', summary);
    if (pauseReason !== undefined) return this.pause(pauseReason);
    if (this.state === 'waiting') this.tryStartRound();
  }

  // ---- faults on our side -----------------------------------------------------------------------

  /**
   * After an internal error (recovery.ts's guard): the attempt in flight, of which nothing was
   * published, is aborted and retried; an evaluation in flight is dropped (its round is committed);
   * while waiting, the next try is scheduled if none is.
   */
  private abandon(what: string, err: unknown): void {
    const round = this.training.take();
    if (round) {
      round.secagg?.close();
      return this.abortRound(round, 0, this.clock.now(), `internal error (${what}): ${errorText(err)}`);
    }
    const summary = this.evaluations.cancel();
    if (summary) return this.afterRound(summary);
    if (this.state === 'waiting' && this.waitTimer === undefined) this.retryIn(Math.max(this.config.timeouts.retryDelayMs, 50));
  }
}
