/**
 * The round engine: an event-driven state machine that runs one federated job.
 *
 *   waiting ──(≥ minClients sampled)──▶ training ──(all replied | deadline)──▶ commit ──▶ evaluating? ──▶ waiting
 *       ▲                                   │ (survivors < minSurvivors)                                    │
 *       └──────────────── aborted: retry the same round after retryDelayMs ◀───────────────────────────────┘
 *
 * It consumes transport events (connect, message, disconnect) and timer events, and emits messages
 * through a `ServerTransport`: it never touches Socket.IO, so the same code runs over sockets and in
 * memory. Aggregation streams: each update is folded into a running weighted sum as it arrives and
 * then dropped (O(d) memory however large the cohort). A round's new model is published (sent to
 * anyone) only after its checkpoint is committed to the store.
 */
import { EventEmitter } from 'node:events';
import { CohortError } from '../../shared/errors.ts';
import { clipL2InPlace } from '../../shared/dp/index.ts';
import { createServerOptimizer, WeightedSum, type ServerOptimizer } from '../../shared/fl/index.ts';
import { silentLogger, type Logger } from '../../shared/log.ts';
import { initialWeights, weightsChecksum } from '../../shared/model/index.ts';
import {
  boundText,
  errorMessage,
  ErrorCode,
  PROTOCOL_VERSION,
  type ClientMessage,
  type EvalResult,
  type Hello,
  type ProtocolError,
  type ServerMessage,
  type ServerTransport,
  type ServerTransportSink,
  type Update,
  type WireLimits,
  DEFAULT_LIMITS,
} from '../../shared/protocol/index.ts';
import { cryptoRng, sampleWithoutReplacement, type Rng } from '../../shared/random.ts';
import { isAllFinite } from '../../shared/fl/aggregate.ts';
import type { CohortStore, EvaluationRecord, JobStatus, RoundRecord } from '../store/index.ts';
import { configHash, type JobConfig } from './config.ts';
import { PrivacyController, type RoundPlan } from './privacy.ts';
import { SecAggRound, type SecAggOutcome } from './secagg.ts';
import { decodeSum, fromBase64Url, SecAggError } from '../../shared/secagg/index.ts';
import type { SecAggUp } from '../../shared/protocol/index.ts';
import { noFailpoints, type Failpoint } from '../failpoints.ts';
import { systemClock, type Clock } from './clock.ts';
import { checkEvalResult, checkHello, checkUpdate, type ValueLimits } from './ranges.ts';

export { systemClock, type Clock } from './clock.ts';

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
/** `rejected`: excluded for an out-of-range message; it counts as a dropout of the round. */
type MemberStatus = 'pending' | 'completed' | 'dropped' | 'refused' | 'rejected';

interface ConnectedClient {
  connId: string;
  clientId: string;
  numExamples?: number;
}

interface TrainingRound {
  round: number;
  attempt: number;
  startedAt: number;
  members: Map<string, { connId: string; status: MemberStatus }>;
  sum: WeightedSum;
  lossSum: number;
  accuracySum: number;
  /** Examples reported by survivors (metrics only: DP rounds weight clients uniformly). */
  examples: number;
  /** Σ of adaptive-clipping bits. */
  bitSum: number;
  /** The round's DP plan (event, announced parameters), if the job uses DP. */
  plan?: RoundPlan;
  /** Secure aggregation of this round, if enabled; then `secaggSum` is the decoded sum. */
  secagg?: SecAggRound;
  secaggSum?: Float64Array;
  timer: unknown;
}

interface EvaluationRound {
  round: number;
  members: Map<string, { connId: string; done: boolean }>;
  lossSum: number;
  accuracySum: number;
  numExamples: number;
  responders: number;
  timer: unknown;
}

export interface RoundSummary {
  round: number;
  record: RoundRecord;
  checksum: string;
  evaluation?: EvaluationRecord;
  /** Cumulative ε at the job's δ after this round (DP jobs). */
  epsilon?: number;
}

export interface JobSummary {
  jobId: string;
  status: JobStatus;
  rounds: number;
  checksum: string;
  reason?: string;
}

export interface RoundEngineEvents {
  /** A round committed (and, if due, was evaluated). */
  round: [RoundSummary];
  /** A round attempt ended without a commit. */
  aborted: [{ round: number; attempt: number; reason: string }];
  /** The job was paused (the store failed, or an operator asked); `resume()` continues it. */
  paused: [{ reason: string }];
  /** The job reached a final state. */
  finished: [JobSummary];
}

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

  private state: EngineState = 'idle';
  private weights: Float32Array = new Float32Array(0);
  private checksum = '';
  private optimizer!: ServerOptimizer;
  private privacy!: PrivacyController;
  private committedRound = 0;
  private attempt = 0;
  private waitTimer: unknown;
  private waitingSince = 0;
  private current?: TrainingRound;
  private evaluation?: EvaluationRound;
  private pendingSummary?: RoundSummary;
  private readonly clients = new Map<string, ConnectedClient>();
  private readonly connByClient = new Map<string, string>();
  /** Handshake deadlines of connections that have not said hello yet. */
  private readonly helloTimers = new Map<string, unknown>();
  private pauseReason?: string;
  private finishedSummary?: JobSummary;
  private held: boolean;
  private readonly failpoint: Failpoint;
  private readonly resumePaused: boolean;

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
  }

  /** Lets a held engine start rounds. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    if (this.waitTimer !== undefined) {
      this.clock.clearTimeout(this.waitTimer);
      this.waitTimer = undefined;
    }
    this.tryStartRound();
  }

  /** The current global model (a copy). */
  get globalWeights(): Float32Array {
    return this.weights.slice();
  }

  get globalChecksum(): string {
    return this.checksum;
  }

  get lastCommittedRound(): number {
    return this.committedRound;
  }

  get connectedClients(): number {
    return this.clients.size;
  }

  get status(): EngineState {
    return this.state;
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
    this.state = 'waiting';
    this.waitingSince = this.clock.now();
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

  // ---- transport events -----------------------------------------------------------------------

  onConnect(connId: string): void {
    this.log.debug({ connId }, 'connection opened');
    // A connection that never completes hello holds a socket and counts against the transport's cap on
    // unregistered connections: close it after the handshake deadline.
    this.helloTimers.set(
      connId,
      this.timer('hello deadline', this.config.timeouts.helloMs, () => {
        this.helloTimers.delete(connId);
        if (this.clients.has(connId)) return;
        this.log.info({ connId, ms: this.config.timeouts.helloMs }, 'no hello before the handshake deadline; closing the connection');
        this.transport.send(connId, errorMessage(ErrorCode.NOT_REGISTERED, `no hello within ${this.config.timeouts.helloMs} ms; closing`));
        this.transport.disconnect(connId);
      }),
    );
  }

  onDisconnect(connId: string, reason: string): void {
    this.clearHelloTimer(connId);
    const client = this.clients.get(connId);
    if (!client) return;
    this.clients.delete(connId);
    if (this.connByClient.get(client.clientId) === connId) this.connByClient.delete(client.clientId);
    this.log.info({ client: client.clientId, reason }, 'client disconnected');
    this.markGone(client.clientId, connId);
  }

  onProtocolError(connId: string, error: ProtocolError): void {
    const client = this.clients.get(connId);
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
    const client = this.clients.get(connId);
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
    if (msg.protocolVersion !== PROTOCOL_VERSION) {
      this.reject(connId, ErrorCode.VERSION_MISMATCH, `server speaks protocol ${PROTOCOL_VERSION}, client ${msg.protocolVersion}`, msg);
      // Give the error time to reach the peer before closing.
      this.timer('version mismatch close', 100, () => this.transport.disconnect(connId));
      return;
    }
    if (this.clients.has(connId)) {
      throw new CohortError(ErrorCode.DUPLICATE, 'hello already received on this connection');
    }
    checkHello(msg, this.valueLimits);
    // The same client reconnecting before its old socket timed out: the new connection wins.
    const previous = this.connByClient.get(msg.clientId);
    if (previous !== undefined) {
      this.log.info({ client: msg.clientId }, 'client reconnected; closing its previous connection');
      this.clients.delete(previous);
      this.markGone(msg.clientId, previous);
      this.transport.disconnect(previous);
    }
    this.clearHelloTimer(connId);
    this.clients.set(connId, { connId, clientId: msg.clientId, numExamples: msg.numExamples });
    this.connByClient.set(msg.clientId, connId);
    try {
      this.store.upsertClient(msg.clientId, { numExamples: msg.numExamples, lastSeen: this.clock.now() });
    } catch (err) {
      // Bookkeeping only: the client may still take part (a failing store pauses the job at its next commit).
      this.log.error({ err, client: msg.clientId }, 'cannot record the client in the store');
    }
    this.transport.send(connId, {
      type: 'welcome',
      protocolVersion: PROTOCOL_VERSION,
      jobId: this.jobId,
      clientId: msg.clientId,
      limits: this.limits,
    });
    this.log.info({ client: msg.clientId, clients: this.clients.size, backend: msg.backend }, 'client joined');
    if (this.state === 'finished' && this.finishedSummary) {
      this.transport.send(connId, this.jobEndMessage(this.finishedSummary));
    } else if (this.state === 'waiting') {
      // A new client may complete the cohort: check now rather than at the next poll.
      if (this.waitTimer !== undefined && this.attempt === 0) {
        this.clock.clearTimeout(this.waitTimer);
        this.waitTimer = undefined;
      }
      this.tryStartRound();
    }
  }

  private clearHelloTimer(connId: string): void {
    const t = this.helloTimers.get(connId);
    if (t === undefined) return;
    this.clock.clearTimeout(t);
    this.helloTimers.delete(connId);
  }

  private onUpdate(client: ConnectedClient, msg: Update): void {
    const round = this.current;
    const member = this.memberOf(round, client, msg.round, 'update');
    if (msg.vector.length !== this.weights.length) {
      throw new CohortError(
        ErrorCode.WRONG_LENGTH,
        `update has ${msg.vector.length} values, the model has ${this.weights.length}`,
      );
    }
    const plan = round!.plan;
    if (round!.secagg) throw new CohortError(ErrorCode.BAD_SCHEMA, 'this round uses secure aggregation: send secagg messages, not a plain update');
    if (plan?.announce.adaptiveClipping && msg.clipBit === undefined) {
      throw new CohortError(ErrorCode.BAD_SCHEMA, 'this round uses adaptive clipping: the update must carry clipBit');
    }
    try {
      checkUpdate(msg, this.valueLimits);
    } catch (err) {
      return this.exclude(client, member, err as CohortError, msg);
    }
    if (plan && plan.announce.mode === 'central') {
      // Defence in depth: the sensitivity bound must not rest on the client having clipped.
      clipL2InPlace(msg.vector, plan.announce.clipNorm);
    }
    // DP-FedAvg weights clients uniformly (McMahan et al. 2018); plain FedAvg by examples.
    round!.sum.add(msg.vector, plan ? 1 : msg.numExamples);
    round!.examples += msg.numExamples;
    round!.bitSum += msg.clipBit ?? 0;
    round!.lossSum += (msg.metrics.loss ?? 0) * msg.numExamples;
    round!.accuracySum += (msg.metrics.accuracy ?? 0) * msg.numExamples;
    member.status = 'completed';
    this.log.debug({ client: client.clientId, round: msg.round, examples: msg.numExamples }, 'update folded in');
    this.failpoint('collect', msg.round);
    this.closeRoundIfSettled();
  }

  private onSecAggUp(client: ConnectedClient, msg: SecAggUp): void {
    const round = this.current;
    this.memberOf(round, client, msg.round, 'secagg message'); // throws unless a pending member
    if (!round!.secagg) throw new CohortError(ErrorCode.NOT_IN_ROUND, `round ${msg.round} does not use secure aggregation`);
    try {
      round!.secagg.receive(client.clientId, msg.body, msg.payload);
    } catch (err) {
      if (err instanceof SecAggError) throw new CohortError(err.code, err.message);
      throw err;
    }
  }

  /** A member sent an out-of-range message: refuse it, drop the member from the round, go on. */
  private exclude(client: ConnectedClient, member: { status: MemberStatus }, err: CohortError, msg: Update): void {
    member.status = 'rejected';
    this.reject(client.connId, err.code, err.message, msg);
    this.log.warn({ client: client.clientId, round: msg.round, reason: err.message }, 'update out of range; the client is excluded from the round');
    if (this.current!.secagg) this.current!.secagg.memberGone();
    else this.closeRoundIfSettled();
  }

  private onRefuse(client: ConnectedClient, roundNo: number, reason: string): void {
    const member = this.memberOf(this.current, client, roundNo, 'refusal');
    member.status = 'refused';
    this.log.warn({ client: client.clientId, round: roundNo, reason }, 'client refused the round');
    if (this.current!.secagg) this.current!.secagg.memberGone();
    else this.closeRoundIfSettled();
  }

  /** The caller's pending membership of the collecting round, or a typed rejection. */
  private memberOf(round: TrainingRound | undefined, client: ConnectedClient, roundNo: number, what: string) {
    const member = round && round.round === roundNo ? round.members.get(client.clientId) : undefined;
    if (!round || this.state !== 'training' || !member || member.connId !== client.connId) {
      throw new CohortError(ErrorCode.NOT_IN_ROUND, `${what} for round ${roundNo}: you are not in a collecting round ${roundNo}`);
    }
    if (member.status !== 'pending') {
      throw new CohortError(ErrorCode.DUPLICATE, `${what} for round ${roundNo} already received`);
    }
    return member;
  }

  private onEvalResult(client: ConnectedClient, msg: EvalResult): void {
    const ev = this.evaluation;
    const member = ev && ev.round === msg.round ? ev.members.get(client.clientId) : undefined;
    if (!ev || this.state !== 'evaluating' || !member || member.connId !== client.connId) {
      throw new CohortError(ErrorCode.NOT_IN_ROUND, `evaluation of round ${msg.round}: you were not asked`);
    }
    if (member.done) throw new CohortError(ErrorCode.DUPLICATE, `evaluation of round ${msg.round} already received`);
    member.done = true;
    let outOfRange: CohortError | undefined;
    try {
      checkEvalResult(msg, this.valueLimits);
    } catch (err) {
      outOfRange = err as CohortError;
      this.reject(client.connId, outOfRange.code, outOfRange.message, msg);
      this.log.warn({ client: client.clientId, round: msg.round, reason: outOfRange.message }, 'evaluation result out of range; excluded');
    }
    if (!outOfRange && msg.numExamples > 0) {
      ev.responders++;
      ev.numExamples += msg.numExamples;
      ev.lossSum += msg.loss * msg.numExamples;
      ev.accuracySum += msg.accuracy * msg.numExamples;
    }
    this.failpoint('evaluate:result', msg.round);
    if ([...ev.members.values()].every((m) => m.done)) this.closeEvaluation();
  }

  private markGone(clientId: string, connId: string): void {
    const member = this.current?.members.get(clientId);
    if (member && member.connId === connId && member.status === 'pending') {
      member.status = 'dropped';
      this.log.info({ client: clientId, round: this.current!.round }, 'cohort member dropped out');
      if (this.current!.secagg) this.current!.secagg.memberGone();
      else this.closeRoundIfSettled();
    }
    const evMember = this.evaluation?.members.get(clientId);
    if (evMember && evMember.connId === connId && !evMember.done) {
      evMember.done = true;
      if ([...this.evaluation!.members.values()].every((m) => m.done)) this.closeEvaluation();
    }
  }

  private reject(connId: string, code: string, message: string, msg?: { type: string; round?: number }): void {
    const client = this.clients.get(connId);
    const text = boundText(message);
    this.log.warn({ client: client?.clientId, connId, code, reason: text }, 'message rejected');
    this.transport.send(connId, errorMessage(code, text, msg));
  }

  // ---- job lifecycle --------------------------------------------------------------------------

  private loadJob(): void {
    const hash = configHash(this.config);
    let job = this.store.getJob(this.jobId);
    if (job && job.configHash !== hash) {
      throw new CohortError(
        'CONFIG_CHANGED',
        `job ${this.jobId} exists in ${this.store.path} with a different config; use a new job id or the original config`,
      );
    }
    if (!job) job = this.store.createJob({ id: this.jobId, config: this.config, configHash: hash });
    const checkpoint = this.store.latestCheckpoint(this.jobId);
    if (checkpoint) {
      this.weights = checkpoint.weights;
      this.committedRound = checkpoint.round;
      this.optimizer = createServerOptimizer(this.config.optimizer, this.weights.length);
      this.optimizer.importState(checkpoint.optimizerState);
      this.checksum = weightsChecksum(this.weights);
      if (this.checksum !== checkpoint.checksum) {
        throw new CohortError('CORRUPT_CHECKPOINT', `checkpoint of round ${checkpoint.round} does not match its checksum`);
      }
      this.log.info({ round: checkpoint.round, checksum: this.checksum }, 'resumed from checkpoint');
    } else {
      this.weights = initialWeights(this.config.model, this.config.seed).weights;
      this.optimizer = createServerOptimizer(this.config.optimizer, this.weights.length);
      this.checksum = weightsChecksum(this.weights);
      this.log.info({ params: this.weights.length, checksum: this.checksum }, 'initialised global model');
    }
    const rounds = this.store.listRounds(this.jobId);
    const lastClipNormNext = rounds.at(-1)?.metrics?.clipNormNext;
    this.privacy = new PrivacyController(this.config, this.store.listLedger(this.jobId), lastClipNormNext);
    if (this.privacy.enabled) {
      this.log.info({ epsilon: this.privacy.epsilonSpent, delta: this.privacy.delta, mode: this.config.dp.mode }, 'privacy ledger loaded');
    }
    if (job.status === 'paused') {
      this.state = 'paused';
      this.pauseReason = job.reason ?? 'paused';
      this.log.warn({ reason: this.pauseReason }, 'job is paused; resume() continues it');
      return;
    }
    if (job.status !== 'created' && job.status !== 'running' && job.status !== 'queued') {
      this.state = 'finished';
      this.finishedSummary = { jobId: this.jobId, status: job.status, rounds: this.committedRound, checksum: this.checksum, reason: job.reason ?? undefined };
      this.log.info({ status: job.status }, 'job already finished; serving its final state');
      return;
    }
    if (job.status === 'created' || job.status === 'queued') this.store.setJobStatus(this.jobId, 'running');
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
    const summary: JobSummary = { jobId: this.jobId, status, rounds: this.committedRound, checksum: this.checksum, reason };
    this.finishedSummary = summary;
    this.log.info({ status, rounds: this.committedRound, reason }, 'job finished');
    for (const connId of this.clients.keys()) this.transport.send(connId, this.jobEndMessage(summary));
    this.emit('finished', summary);
  }

  private jobEndMessage(summary: JobSummary): ServerMessage {
    return { type: 'job_end', jobId: this.jobId, status: summary.status, rounds: summary.rounds };
  }

  private clearTimers(): void {
    for (const t of [this.waitTimer, this.current?.timer, this.evaluation?.timer]) {
      if (t !== undefined) this.clock.clearTimeout(t);
    }
    this.waitTimer = undefined;
  }

  // ---- select & configure ---------------------------------------------------------------------

  private tryStartRound(): void {
    if (this.state !== 'waiting' || this.waitTimer !== undefined || this.held) return;
    if (this.committedRound >= this.config.rounds) return this.finish('completed');
    const eligible = [...this.clients.values()];
    const cohort = eligible.length >= this.config.minClients ? this.sample(eligible) : [];
    if (cohort.length < this.config.minClients) {
      const waited = this.clock.now() - this.waitingSince;
      const limit = this.config.timeouts.waitForClientsMs;
      if (limit > 0 && waited >= limit) {
        return this.finish('failed', `fewer than ${this.config.minClients} clients for ${limit} ms`);
      }
      this.log.debug({ eligible: eligible.length, sampled: cohort.length, needed: this.config.minClients }, 'waiting for clients');
      // Re-check on the next connect, and periodically (Poisson sampling may come up short).
      this.waitTimer = this.timer('wait for clients', Math.max(this.config.timeouts.retryDelayMs, 50), () => {
        this.waitTimer = undefined;
        this.tryStartRound();
      });
      return;
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
    const roundNo = this.committedRound + 1;
    let plan: RoundPlan | undefined;
    if (this.privacy.enabled) {
      const planned = this.privacy.plan(cohort.length, population, this.minSurvivors);
      if ('exhausted' in planned) {
        this.log.warn({ round: roundNo, epsilon: this.privacy.epsilonSpent, reason: planned.exhausted }, 'privacy budget exhausted');
        return this.finish('budget_exhausted', planned.exhausted);
      }
      plan = planned;
    }
    this.attempt++;
    const members = new Map<string, { connId: string; status: MemberStatus }>();
    for (const c of cohort) members.set(c.clientId, { connId: c.connId, status: 'pending' });
    this.current = {
      round: roundNo,
      attempt: this.attempt,
      startedAt: this.clock.now(),
      members,
      sum: new WeightedSum(this.weights.length),
      lossSum: 0,
      accuracySum: 0,
      examples: 0,
      bitSum: 0,
      plan,
      timer: this.timer('training deadline', this.config.timeouts.trainMs, () => this.onTrainDeadline(roundNo)),
    };
    this.state = 'training';
    this.log.info({ round: roundNo, attempt: this.attempt, cohort: cohort.length, connected: this.clients.size }, 'round started');
    const { model, training, timeouts } = this.config;
    const current = this.current;
    if (this.config.secagg.enabled) {
      try {
        current.secagg = this.createSecAgg(roundNo, cohort, plan);
      } catch (err) {
        this.log.error({ err, round: roundNo }, 'cannot configure secure aggregation for this cohort');
        this.current = undefined;
        this.clock.clearTimeout(current.timer);
        return this.finish('failed', `secure aggregation: ${(err as Error).message}`);
      }
      // The round-level deadline becomes a safety net: SecAgg runs its own phase deadlines.
      this.clock.clearTimeout(current.timer);
      current.timer = this.timer('secure aggregation deadline', timeouts.trainMs + 5 * this.config.secagg.phaseTimeoutMs, () =>
        this.onTrainDeadline(roundNo),
      );
      if (plan) plan.announce.minSurvivors = current.secagg.announce.minSurvivors;
    }
    this.failpoint('select', roundNo);
    for (const c of cohort) {
      this.transport.send(c.connId, {
        type: 'train',
        jobId: this.jobId,
        round: roundNo,
        modelChecksum: this.checksum,
        model,
        training,
        timeoutMs: timeouts.trainMs,
        ...(plan ? { privacy: plan.announce } : {}),
        ...(current.secagg ? { secagg: current.secagg.announce } : {}),
        vector: this.weights,
      });
    }
    this.failpoint('train', roundNo);
    current.secagg?.start();
  }

  private createSecAgg(roundNo: number, cohort: ConnectedClient[], plan: RoundPlan | undefined): SecAggRound {
    const dp = this.config.dp;
    const clipNorm = dp.mode !== 'off' ? (dp.clipNorm as number) : this.config.secagg.clipNorm!;
    return new SecAggRound({
      jobId: this.jobId,
      round: roundNo,
      members: cohort.map((c) => ({ clientId: c.clientId, connId: c.connId })),
      config: this.config.secagg,
      dim: this.weights.length,
      clipNorm,
      minSurvivors: this.minSurvivors,
      // Only distributed DP puts noise into the encoding; central noise is added to the decoded sum.
      noiseMultiplier: plan && dp.mode === 'distributed' ? dp.noiseMultiplier : 0,
      trainMs: this.config.timeouts.trainMs,
      clock: this.clock,
      log: this.log,
      send: (connId, msg) => this.transport.send(connId, msg),
      // Still on the connection it was sampled on (a reconnected client is a new participant, not this one).
      isConnected: (clientId) => {
        const connId = cohort.find((c) => c.clientId === clientId)?.connId;
        return connId !== undefined && this.clients.has(connId);
      },
      onDone: (outcome) => this.onSecAggDone(roundNo, outcome),
      failpoint: this.failpoint,
    });
  }

  private onSecAggDone(roundNo: number, outcome: SecAggOutcome): void {
    const round = this.current;
    if (!round || round.round !== roundNo || !round.secagg || this.state !== 'training') return;
    if (outcome.status === 'ok') {
      const included = new Set(outcome.included);
      for (const [clientId, m] of round.members) {
        if (included.has(clientId)) m.status = 'completed';
        else if (m.status === 'pending') m.status = 'dropped';
      }
      const a = round.secagg.announce;
      round.secaggSum = decodeSum(outcome.sum, {
        dim: this.weights.length,
        clipNorm: a.clipNorm,
        gamma: a.gamma,
        bits: a.bits,
        rotationSeed: fromBase64Url(a.rotationSeed),
      });
    } else {
      for (const m of round.members.values()) if (m.status === 'pending') m.status = 'dropped';
      this.log.warn({ round: roundNo, reason: outcome.reason }, 'secure aggregation aborted');
    }
    this.closeRound(outcome.status === 'aborted' ? outcome.reason : undefined);
  }

  // ---- collect & aggregate --------------------------------------------------------------------

  private onTrainDeadline(roundNo: number): void {
    const round = this.current;
    if (!round || round.round !== roundNo || this.state !== 'training') return;
    round.timer = undefined;
    round.secagg?.close();
    const late = [...round.members.values()].filter((m) => m.status === 'pending');
    for (const m of late) m.status = 'dropped';
    this.log.info({ round: roundNo, late: late.length }, 'training deadline reached');
    this.closeRound();
  }

  private closeRoundIfSettled(): void {
    const round = this.current;
    if (!round || this.state !== 'training') return;
    for (const m of round.members.values()) if (m.status === 'pending') return;
    this.closeRound();
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
    const statuses = [...round.members.values()].map((m) => m.status);
    const survivors = statuses.filter((s) => s === 'completed').length;
    const endedAt = this.clock.now();
    this.recordParticipation(round);
    if (secaggAbort !== undefined || (round.secagg && !round.secaggSum)) {
      return this.abortRound(round, 0, endedAt, `secure aggregation aborted: ${secaggAbort ?? 'deadline'}`);
    }
    if (survivors < this.minSurvivors) {
      return this.abortRound(round, survivors, endedAt, `${survivors} survivors < minSurvivors ${this.minSurvivors}`);
    }
    // Local/distributed DP and SecAgg clients send no per-client metrics (they are not privatised).
    const reportsMetrics = round.examples > 0 && !(round.plan && round.plan.announce.mode !== 'central');
    const record: RoundRecord = {
      startedAt: round.startedAt,
      endedAt,
      cohortSize: round.members.size,
      survivors,
      dropouts: statuses.filter((s) => s === 'dropped' || s === 'rejected').length,
      numExamples: round.examples,
      trainLoss: reportsMetrics ? round.lossSum / round.examples : null,
      trainAccuracy: reportsMetrics ? round.accuracySum / round.examples : null,
    };
    if (!this.commit(round, record)) return;
    this.attempt = 0;
    this.notifyRoundResult(round, 'committed');
    const summary: RoundSummary = {
      round: round.round,
      record,
      checksum: this.checksum,
      ...(round.plan ? { epsilon: this.privacy.epsilonSpent } : {}),
    };
    const every = this.config.evaluation.every;
    if (every > 0 && (round.round % every === 0 || round.round === this.config.rounds)) {
      this.beginEvaluation(summary);
    } else {
      this.afterRound(summary);
    }
  }

  /**
   * A fault on our side while settling a round: nothing was published. A failing store pauses the job
   * (retrying would loop on a full disk); anything else aborts this attempt, to be retried.
   */
  private roundFailed(round: TrainingRound, err: unknown): void {
    const endedAt = this.clock.now();
    if (isStoreFailure(err)) {
      this.log.error({ err, round: round.round, attempt: round.attempt }, 'the store failed while settling the round; pausing the job');
      this.notifyRoundResult(round, 'aborted');
      this.emit('aborted', { round: round.round, attempt: round.attempt, reason: `store failure: ${errorText(err)}` });
      return this.pause(`the store failed while settling round ${round.round}: ${errorText(err)}`);
    }
    this.log.error({ err, round: round.round, attempt: round.attempt }, 'internal error while settling the round; the attempt is aborted');
    this.abortRound(round, 0, endedAt, `internal error: ${errorText(err)}`);
  }

  /**
   * Applies the server optimizer and commits round + checkpoint atomically; false if the attempt was
   * aborted instead (a non-finite aggregate). Store failures propagate (the optimizer state restored).
   */
  private commit(round: TrainingRound, record: RoundRecord): boolean {
    const stateBefore = this.optimizer.exportState();
    const next = this.weights.slice();
    const plan = round.plan;
    // FedAvg: the example-weighted mean of the deltas is the pseudo-gradient (McMahan et al. 2017);
    // DP-FedAvg: the noisy fixed-denominator mean (McMahan et al. 2018).
    const pseudoGradient = this.aggregate(round, record.survivors);
    this.optimizer.step(next, pseudoGradient);
    if (!isAllFinite(next)) {
      // Client inputs are range-checked, so this is the server optimizer diverging: never publish it.
      this.optimizer.importState(stateBefore);
      this.abortRound(round, record.survivors, record.endedAt, 'the aggregated model is not finite (server optimizer diverged?)');
      return false;
    }
    const checksum = weightsChecksum(next);
    const clipNormNext = plan ? this.privacy.nextClipNorm(plan, round.bitSum) : undefined;
    if (plan) {
      record.metrics = { clipNorm: plan.announce.clipNorm, ...(clipNormNext === undefined ? {} : { clipNormNext }) };
    }
    this.failpoint('commit:before', round.round);
    try {
      this.store.commitRound({
        jobId: this.jobId,
        round: round.round,
        weights: next,
        optimizerState: this.optimizer.exportState(),
        checksum,
        record,
        // A model whose privacy cost is not recorded is never published: same transaction.
        ...(plan ? { ledger: this.privacy.ledgerEntry(plan, record.survivors) } : {}),
      });
    } catch (err) {
      this.optimizer.importState(stateBefore);
      throw err;
    }
    this.weights = next;
    this.checksum = checksum;
    this.committedRound = round.round;
    if (plan) this.privacy.committed(plan, clipNormNext);
    this.failpoint('commit:after', round.round);
    this.log.info(
      {
        round: round.round,
        survivors: record.survivors,
        cohort: record.cohortSize,
        examples: record.numExamples,
        loss: record.trainLoss,
        checksum,
        ...(plan ? { epsilon: this.privacy.epsilonSpent, delta: this.privacy.delta, clipNorm: plan.announce.clipNorm } : {}),
      },
      'round committed',
    );
    return true;
  }

  /**
   * The round's pseudo-gradient. Plain: the example-weighted mean. DP: the noisy fixed-denominator
   * mean of uniformly weighted clipped updates. SecAgg: the decoded sum (the coordinator never saw
   * anything else), divided by the fixed denominator (DP) or by the number of included clients.
   */
  private aggregate(round: TrainingRound, survivors: number): Float32Array {
    const plan = round.plan;
    if (round.secaggSum) {
      if (plan) return this.privacy.noisyMean(round.secaggSum, plan, undefined, round.secagg!.sensitivity);
      return Float32Array.from(round.secaggSum, (x) => x / survivors);
    }
    return plan ? this.privacy.noisyMean(round.sum.rawSum, plan) : round.sum.mean();
  }

  private abortRound(round: TrainingRound, survivors: number, endedAt: number, reason: string): void {
    try {
      this.store.recordRoundAborted({
        jobId: this.jobId,
        round: round.round,
        startedAt: round.startedAt,
        endedAt,
        cohortSize: round.members.size,
        survivors,
        reason,
      });
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
    this.state = 'waiting';
    this.waitingSince = this.clock.now();
    this.waitTimer = this.timer('retry delay', this.config.timeouts.retryDelayMs, () => {
      this.waitTimer = undefined;
      this.tryStartRound();
    });
  }

  private recordParticipation(round: TrainingRound): void {
    const entries = [...round.members].map(([clientId, m]) => ({
      clientId,
      status: m.status === 'pending' ? ('dropped' as const) : m.status,
    }));
    this.store.recordParticipation(this.jobId, round.round, entries);
  }

  private notifyRoundResult(round: TrainingRound, outcome: 'committed' | 'aborted'): void {
    for (const [clientId, m] of round.members) {
      if (this.clients.get(m.connId)?.clientId !== clientId) continue;
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
    const idle = [...this.clients.values()];
    const count = Math.max(1, Math.round(idle.length * this.config.evaluation.fraction));
    const chosen = sampleWithoutReplacement(idle, count, this.rng);
    if (chosen.length === 0) return this.afterRound(summary);
    const members = new Map<string, { connId: string; done: boolean }>();
    for (const c of chosen) members.set(c.clientId, { connId: c.connId, done: false });
    this.pendingSummary = summary;
    this.evaluation = {
      round: summary.round,
      members,
      lossSum: 0,
      accuracySum: 0,
      numExamples: 0,
      responders: 0,
      timer: this.timer('evaluation deadline', this.config.timeouts.evaluateMs, () => this.closeEvaluation()),
    };
    this.state = 'evaluating';
    for (const c of chosen) {
      this.transport.send(c.connId, {
        type: 'evaluate',
        jobId: this.jobId,
        round: summary.round,
        modelChecksum: this.checksum,
        model: this.config.model,
        batchSize: this.config.evaluation.batchSize,
        timeoutMs: this.config.timeouts.evaluateMs,
        vector: this.weights,
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
    if (ev.numExamples > 0) {
      const record: EvaluationRecord = {
        kind: 'federated',
        loss: ev.lossSum / ev.numExamples,
        accuracy: ev.accuracySum / ev.numExamples,
        numExamples: ev.numExamples,
        clients: ev.responders,
      };
      summary.evaluation = record;
      this.log.info({ round: ev.round, ...record }, 'federated evaluation');
      try {
        this.store.recordEvaluation(this.jobId, ev.round, record);
      } catch (err) {
        // The round itself is committed; only its evaluation row is lost.
        this.log.error({ err, round: ev.round }, 'cannot record the federated evaluation');
        if (isStoreFailure(err)) {
          this.afterRound(summary, `the store failed while recording the evaluation of round ${ev.round}: ${errorText(err)}`);
          return;
        }
      }
    } else {
      this.log.warn({ round: ev.round }, 'federated evaluation got no results');
    }
    this.afterRound(summary);
  }

  private afterRound(summary: RoundSummary, pauseReason?: string): void {
    this.state = 'waiting';
    this.waitingSince = this.clock.now();
    this.emit('round', summary);
    if (pauseReason !== undefined) return this.pause(pauseReason);
    if (this.state === 'waiting') this.tryStartRound();
  }

  // ---- faults on our side -----------------------------------------------------------------------

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
    if (this.state === 'finished') {
      this.log.error({ err, what }, 'error after the job finished');
      return;
    }
    if (isStoreFailure(err)) {
      this.log.error({ err, what }, 'the store failed; pausing the job');
      return this.pause(`the store failed (${what}): ${errorText(err)}`);
    }
    this.log.error({ err, what, round: this.current?.round ?? this.evaluation?.round }, 'internal error; recovering');
    try {
      if (this.current) {
        const round = this.current;
        if (round.timer !== undefined) this.clock.clearTimeout(round.timer);
        round.secagg?.close();
        this.current = undefined;
        return this.abortRound(round, 0, this.clock.now(), `internal error (${what}): ${errorText(err)}`);
      }
      if (this.evaluation && this.pendingSummary) {
        const summary = this.pendingSummary;
        this.clock.clearTimeout(this.evaluation.timer);
        this.evaluation = undefined;
        this.pendingSummary = undefined;
        return this.afterRound(summary);
      }
      if (this.state === 'waiting' && this.waitTimer === undefined) {
        this.waitTimer = this.timer('retry delay', Math.max(this.config.timeouts.retryDelayMs, 50), () => {
          this.waitTimer = undefined;
          this.tryStartRound();
        });
      }
    } catch (again) {
      this.log.error({ err: again, what }, 'recovery failed; the job fails');
      this.finish('failed', `internal error (${what}): ${errorText(err)}`);
    }
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
    if (this.evaluation && this.pendingSummary) {
      this.evaluation = undefined;
      const summary = this.pendingSummary;
      this.pendingSummary = undefined;
      this.emit('round', summary);
    }
    this.state = 'paused';
    this.pauseReason = reason;
    this.log.warn({ reason, lastCommittedRound: this.committedRound }, 'job paused');
    this.persistPause(reason, true);
    this.emit('paused', { reason });
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

  /** Continues a paused job from its last committed round; false if it was not paused. */
  resume(): boolean {
    if (this.state !== 'paused') return false;
    this.store.setJobStatus(this.jobId, 'running');
    this.clearTimers();
    this.log.info({ reason: this.pauseReason, lastCommittedRound: this.committedRound }, 'job resumed');
    this.pauseReason = undefined;
    this.attempt = 0;
    this.state = 'waiting';
    this.waitingSince = this.clock.now();
    this.tryStartRound();
    return true;
  }

  /** Why the job is paused, while it is. */
  get pausedBecause(): string | undefined {
    return this.pauseReason;
  }
}

/** An error of the SQLite store itself (full disk, busy, I/O, read-only, corrupt) — not of our inputs. */
export function isStoreFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') && !code.startsWith('SQLITE_CONSTRAINT');
}

function errorText(err: unknown): string {
  return boundText(err instanceof Error ? err.message : String(err), 300);
}
