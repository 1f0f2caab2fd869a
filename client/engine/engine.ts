/**
 * The client's protocol state machine, mirror of server/round:
 *
 *   connecting ──challenge/hello──▶ waiting-welcome ──welcome──▶ idle ──train──▶ training ──update|refuse──▶ idle
 *                                                        └──evaluate──▶ evaluating ──eval_result──▶ idle
 *   any ──disconnect──▶ connecting (the transport reconnects with backoff; we say hello again and are
 *   eligible for the next round; work begun on the lost connection is discarded)
 *   any ──job_end──▶ ended
 *
 * Hello answers the server's per-connection challenge with a signature by the client's Ed25519 key
 * (shared/identity/transcript.ts), with its certificate or a one-time enrolment token; a certificate
 * issued at enrolment comes back in `welcome` ('enrolled'). A hello refused as UNAUTHORIZED is final:
 * the engine stops ('unauthorized') instead of reconnecting into the same refusal.
 *
 * It never touches the network itself: it consumes messages from a `ClientTransport` and sends
 * through it. Training and evaluation are delegated to a `ClientTask`, so the engine is testable with
 * any model and data.
 */
import { Emitter as EventEmitter } from '../../shared/events.ts';
import { systemClock, type Clock } from '../../shared/clock.ts';
import { silentLogger, type Logger } from '../../shared/log.ts';
import { privatiseUpdate } from './privatise.ts';
import { SecureAggregation, type SecAggIdentity } from './secure-aggregation.ts';
import { fromBase64Url } from '../../shared/crypto/bytes.ts';
import { gatherTrainable, modelLayers, trainableSelection, weightsChecksum, type ModelSpec, type TrainableSelection } from '../../shared/model/index.ts';
import { ed25519KeyPair, type Ed25519KeyPair } from '../../shared/crypto/ed25519.ts';
import { RevocationView, signHello, type Certificate } from '../../shared/identity/index.ts';
import type { ClientHealthReport, Groups, HealthRequest } from '../../shared/evaluation/index.ts';
import {
  PROTOCOL_VERSION,
  type ClientTransport,
  type ClientTransportSink,
  type Challenge,
  type ErrorMessage,
  type Evaluate,
  type JobEnd,
  type ProtocolError,
  type RoundResult,
  type SecAggDown,
  type ServerMessage,
  type Train,
  type TrainingParams,
  type Welcome,
} from '../../shared/protocol/index.ts';

export interface FitResult {
  /** w_local − w_global. */
  delta: Float32Array;
  numExamples: number;
  metrics: Record<string, number>;
}

export interface EvaluationResult {
  numExamples: number;
  loss: number;
  accuracy: number;
  /** Additive statistics (shared/evaluation), when the evaluation asked for them (`health`). */
  health?: ClientHealthReport;
}

/** What the client does with its data: local training and evaluation. */
export interface ClientTask {
  readonly numExamples: number;
  fit(weights: Float32Array, model: ModelSpec, training: TrainingParams, round: number): Promise<FitResult>;
  evaluate(weights: Float32Array, model: ModelSpec, batchSize: number, health?: HealthRequest): Promise<EvaluationResult>;
}

/** Decides whether to take part in a round; returns a refusal reason or undefined to accept. */
export type RoundPolicy = (train: Train) => string | undefined;

export interface ClientEngineOptions {
  clientId: string;
  task: ClientTask;
  transport: ClientTransport;
  logger?: Logger;
  /** Reported at hello (which training backend this client runs). */
  backend?: string;
  /**
   * The device's identity: its long-term Ed25519 key, and its certificate from the federation CA or a
   * one-time enrolment token (exchanged at the first hello for a certificate). Without one the engine
   * makes a key for its lifetime: enough where the coordinator binds ids on first use (loopback,
   * simulations), not where it requires enrolment.
   */
  identity?: ClientIdentity;
  policy?: RoundPolicy;
  /** Time source (training durations in events and logs); tests pass a ManualClock. */
  clock?: Clock;
  /** Group attributes this client declares for fairness reports, e.g. { region: "eu" } (sent with health statistics). */
  groups?: Groups;
  /**
   * This client already joined `jobId` on the transport's open connection and was idle (a simulation's
   * virtual client woken for a round: it kept its connection and identity while parked, not an engine).
   * The engine starts idle in that job, without a new hello; `start()` must not be called.
   */
  joined?: { jobId: string };
}

export interface ClientIdentity {
  key: Ed25519KeyPair;
  certificate?: Certificate;
  enrolToken?: string;
  /**
   * The federation CA's public key (base64url), pinned at enrolment or configured: SecAgg neighbours must
   * then show certificates from it (client/engine/secure-aggregation.ts).
   */
  caPublicKey?: string;
  /**
   * With a CA key: require, in every SecAgg round, the CA's revocation list signed less than this long
   * ago (a coordinator cannot then withhold revocations longer). Without it, a relayed list is still
   * checked and never rolled back, but a round without one is accepted (shared/identity/revocation.ts).
   */
  maxRevocationAgeMs?: number;
}

type ClientState = 'connecting' | 'waiting-welcome' | 'idle' | 'training' | 'evaluating' | 'ended';

export interface ClientEngineEvents {
  welcome: [Welcome];
  /** A certificate issued at enrolment, and the CA key that signed it: the caller should keep both. */
  enrolled: [{ certificate: Certificate; caPublicKey: string }];
  /** The server refused this identity (the engine has stopped). */
  unauthorized: [ErrorMessage];
  trained: [{ round: number; numExamples: number; metrics: Record<string, number>; ms: number }];
  refused: [{ round: number; reason: string }];
  evaluated: [{ round: number } & EvaluationResult];
  /**
   * This client aborted a round's secure aggregation because the coordinator's messages failed a check
   * (e.g. SECAGG_UNKNOWN_IDENTITY: a neighbour without a valid certificate; SECAGG_BAD_ROSTER: a steered
   * neighbour graph). It stops answering that round; the coordinator sees a dropout.
   */
  secaggAborted: [{ round: number; code: string; message: string }];
  roundResult: [RoundResult];
  serverError: [ErrorMessage];
  jobEnd: [JobEnd];
  disconnected: [string];
}

export class ClientEngine extends EventEmitter<ClientEngineEvents> implements ClientTransportSink {
  readonly clientId: string;
  private state: ClientState = 'connecting';
  private jobId?: string;
  /** Bumped on every (re)connection; work finishing on an older one is discarded. */
  private epoch = 0;
  private readonly log: Logger;
  private jobEnd?: JobEnd;
  /** The current round's secure aggregation, if the round uses it. */
  private secagg?: SecureAggregation;
  /** The CA-signed revocations this client has accepted (with a CA key), kept across rounds. */
  private revocations?: RevocationView;

  private readonly clock: Clock;
  private readonly identity: ClientIdentity;

  constructor(private readonly opts: ClientEngineOptions) {
    super();
    this.clientId = opts.clientId;
    this.identity = opts.identity ? { ...opts.identity } : { key: ed25519KeyPair() };
    this.log = (opts.logger ?? silentLogger).child({ client: opts.clientId });
    this.clock = opts.clock ?? systemClock;
    if (opts.joined) {
      this.jobId = opts.joined.jobId;
      this.state = 'idle';
    }
  }

  /** Idle, with no round's secure aggregation pending: nothing would be lost if this engine were set aside. */
  get quiescent(): boolean {
    return this.state === 'idle' && this.secagg === undefined;
  }

  /** The job this client joined (after welcome). */
  get joinedJob(): string | undefined {
    return this.jobId;
  }

  get status(): ClientState {
    return this.state;
  }

  start(): void {
    this.opts.transport.start(this);
  }

  stop(): void {
    this.opts.transport.close();
  }

  /** Resolves when the server announces the end of the job. */
  whenJobEnds(): Promise<JobEnd> {
    if (this.jobEnd) return Promise.resolve(this.jobEnd);
    return new Promise((resolve) => this.once('jobEnd', resolve));
  }

  /** The device's public identity key. */
  get publicKey(): Uint8Array {
    return this.identity.key.publicKey;
  }

  onConnect(): void {
    this.epoch++;
    if (this.state === 'ended') return;
    // Hello waits for the connection's challenge.
    this.state = 'connecting';
  }

  private answerChallenge(msg: Challenge): void {
    if (this.state !== 'connecting') return;
    this.state = 'waiting-welcome';
    // Sign the server as this client sees it (its TLS certificate), else as it announced itself.
    const server = this.opts.transport.serverIdentity ?? msg.server;
    const { certificate, enrolToken } = this.identity;
    const signed = signHello(this.identity.key, { nonce: msg.nonce, server, jobId: msg.jobId, protocolVersion: PROTOCOL_VERSION, clientId: this.clientId });
    this.opts.transport.send({
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      clientId: this.clientId,
      numExamples: this.opts.task.numExamples,
      ...(this.opts.backend ? { backend: this.opts.backend } : {}),
      ...signed,
      server,
      ...(certificate ? { certificate } : enrolToken ? { enrolToken } : {}),
    });
  }

  onDisconnect(reason: string): void {
    this.epoch++;
    this.secagg = undefined;
    if (this.state !== 'ended') this.state = 'connecting';
    this.log.info({ reason }, 'disconnected; will rejoin when the connection is back');
    this.emit('disconnected', reason);
  }

  onProtocolError(error: ProtocolError): void {
    this.log.warn({ code: error.code, reason: error.message }, 'server message rejected');
  }

  onMessage(msg: ServerMessage): void {
    switch (msg.type) {
      case 'challenge':
        this.answerChallenge(msg);
        return;
      case 'welcome':
        this.jobId = msg.jobId;
        this.state = 'idle';
        if (msg.certificate && msg.caPublicKey) {
          // Enrolled: from now on this certificate speaks for us (the token is spent).
          this.identity.certificate = msg.certificate;
          this.identity.caPublicKey ??= msg.caPublicKey;
          delete this.identity.enrolToken;
          this.emit('enrolled', { certificate: msg.certificate, caPublicKey: msg.caPublicKey });
        }
        this.log.info({ job: msg.jobId }, 'joined job');
        this.emit('welcome', msg);
        return;
      case 'train':
        void this.train(msg);
        return;
      case 'evaluate':
        void this.evaluate(msg);
        return;
      case 'round_result':
        if (this.secagg?.round === msg.round) this.secagg = undefined;
        this.emit('roundResult', msg);
        return;
      case 'secagg_down':
        this.onSecAgg(msg);
        return;
      case 'error':
        this.log.warn({ code: msg.code, reason: msg.message, ref: msg.ref }, 'server rejected a message');
        this.emit('serverError', msg);
        if (msg.code === 'UNAUTHORIZED' && this.state === 'waiting-welcome') {
          // Reconnecting would meet the same refusal: stop, and let the caller say why.
          this.state = 'ended';
          this.opts.transport.close();
          this.emit('unauthorized', msg);
        }
        return;
      case 'job_end':
        this.state = 'ended';
        this.jobEnd = msg;
        this.log.info({ status: msg.status, rounds: msg.rounds }, 'job ended');
        this.emit('jobEnd', msg);
        return;
    }
  }

  private secaggIdentity(): SecAggIdentity {
    const { key, certificate, caPublicKey, maxRevocationAgeMs } = this.identity;
    const now = () => Date.now(); // certificates and revocation lists are valid in wall-clock time
    if (caPublicKey && !this.revocations) {
      // One view for the engine's lifetime: the newest list seen is never given up for an older one.
      this.revocations = new RevocationView({ caPublicKey: fromBase64Url(caPublicKey), now, ...(maxRevocationAgeMs !== undefined ? { maxAgeMs: maxRevocationAgeMs } : {}) });
    }
    return { key, ...(certificate ? { certificate } : {}), ...(caPublicKey ? { caPublicKey: fromBase64Url(caPublicKey) } : {}), ...(this.revocations ? { revocations: this.revocations } : {}), now };
  }

  private onSecAgg(msg: SecAggDown): void {
    const secagg = this.secagg;
    if (!secagg || secagg.round !== msg.round || msg.jobId !== this.jobId) {
      this.log.warn({ round: msg.round }, 'secagg message for a round this client is not aggregating; ignored');
      return;
    }
    const wasAborted = secagg.aborted;
    this.sendSecAgg(secagg.handle(msg.body));
    const aborted = secagg.aborted;
    if (aborted && !wasAborted) {
      this.log.error({ round: secagg.round, code: aborted.code, reason: aborted.message }, 'secure aggregation aborted: the coordinator relayed something this client refuses');
      this.emit('secaggAborted', { round: secagg.round, ...aborted });
    }
  }

  private sendSecAgg(messages: ReturnType<SecureAggregation['handle']>): void {
    for (const m of messages) this.opts.transport.send(m);
  }

  private refuse(msg: Train, reason: string): void {
    this.log.warn({ round: msg.round, reason }, 'refusing round');
    this.opts.transport.send({ type: 'refuse', jobId: msg.jobId, round: msg.round, reason });
    this.emit('refused', { round: msg.round, reason });
  }

  private async train(msg: Train): Promise<void> {
    if (this.state !== 'idle') return this.refuse(msg, `busy (${this.state})`);
    if (weightsChecksum(msg.vector) !== msg.modelChecksum) {
      return this.refuse(msg, 'global model checksum mismatch: the weights were corrupted in transit');
    }
    const refusal = this.opts.policy?.(msg);
    if (refusal) return this.refuse(msg, refusal);
    const epoch = this.epoch;
    this.state = 'training';
    // Secure aggregation starts now (key exchange runs while we train), keyed to this connection.
    this.secagg = msg.secagg ? new SecureAggregation(this.clientId, msg, this.log, this.secaggIdentity()) : undefined;
    const started = this.clock.now();
    let result: FitResult;
    try {
      result = await this.opts.task.fit(msg.vector, msg.model, msg.training, msg.round);
    } catch (err) {
      if (epoch === this.epoch) this.state = 'idle';
      this.log.error({ err, round: msg.round }, 'local training failed');
      if (epoch === this.epoch) this.refuse(msg, `local training failed: ${(err as Error).message}`.slice(0, 1000));
      return;
    }
    if (epoch !== this.epoch || (this.state as ClientState) === 'ended') {
      this.log.info({ round: msg.round }, 'connection changed during training; update discarded');
      return;
    }
    this.state = 'idle';
    if (msg.training.frozen) {
      // A frozen base: only the trainable layers' weights leave the device (shared/model/transfer.ts).
      const sel = this.selectionFor(msg.model, msg.training.frozen);
      if (typeof sel === 'string') return this.refuse(msg, sel);
      if (result.delta.length !== sel.total) return this.refuse(msg, `local training returned ${result.delta.length} values, the model has ${sel.total}`);
      result = { ...result, delta: gatherTrainable(result.delta, sel) };
    }
    if (!isFinite32(result.delta)) return this.refuse(msg, 'local training diverged (non-finite update)');
    if (result.numExamples < 1) return this.refuse(msg, 'no local training examples');
    if (this.secagg && this.secagg.round === msg.round) {
      // Clip, rotate, round, noise (distributed DP), mask: only masked integers leave the device.
      this.sendSecAgg(this.secagg.setUpdate(result.delta));
      this.emit('trained', { round: msg.round, numExamples: result.numExamples, metrics: {}, ms: this.clock.now() - started });
      return;
    }
    // Privatise before anything leaves the device: clip to C (and, in local mode, add the noise).
    const privatised = msg.privacy ? privatiseUpdate(result.delta, msg.privacy) : undefined;
    const ms = this.clock.now() - started;
    this.opts.transport.send({
      type: 'update',
      jobId: msg.jobId,
      round: msg.round,
      numExamples: result.numExamples,
      // Per-client training metrics are not privatised: only a trusted (central-DP) server gets them.
      metrics: msg.privacy && msg.privacy.mode !== 'central' ? {} : result.metrics,
      ...(privatised?.clipBit === undefined ? {} : { clipBit: privatised.clipBit }),
      vector: result.delta,
    });
    this.log.info({ round: msg.round, examples: result.numExamples, ms, ...result.metrics }, 'update sent');
    this.emit('trained', { round: msg.round, numExamples: result.numExamples, metrics: result.metrics, ms });
  }

  private selection?: { key: string; value: TrainableSelection | string };

  /** The trainable slice a round's frozen layers leave (cached per model and list), or why it is refused. */
  private selectionFor(model: ModelSpec, frozen: string[]): TrainableSelection | string {
    const key = JSON.stringify([model, frozen]);
    if (this.selection?.key !== key) {
      const { layers, manifest } = modelLayers(model);
      const unknown = frozen.filter((l) => !layers.includes(l));
      const value = unknown.length ? `frozen layers not in the model: ${unknown.join(', ')}`.slice(0, 1000) : trainableSelection(manifest, frozen);
      this.selection = { key, value };
    }
    return this.selection.value;
  }

  private async evaluate(msg: Evaluate): Promise<void> {
    if (this.state !== 'idle') return;
    if (weightsChecksum(msg.vector) !== msg.modelChecksum) {
      this.log.warn({ round: msg.round }, 'evaluation model checksum mismatch; ignoring');
      return;
    }
    const epoch = this.epoch;
    this.state = 'evaluating';
    let result: EvaluationResult;
    try {
      result = await this.opts.task.evaluate(msg.vector, msg.model, msg.batchSize, msg.health);
    } catch (err) {
      this.log.error({ err, round: msg.round }, 'evaluation failed');
      result = { numExamples: 0, loss: 0, accuracy: 0 };
    }
    if (epoch !== this.epoch || (this.state as ClientState) === 'ended') return;
    this.state = 'idle';
    // Statistics and groups go only to a coordinator that asked for them (an older one would refuse the fields).
    const { health, ...plain } = result;
    const extra = msg.health && health ? { health, ...(this.opts.groups ? { groups: this.opts.groups } : {}) } : {};
    this.opts.transport.send({ type: 'eval_result', jobId: msg.jobId, round: msg.round, ...plain, ...extra });
    this.emit('evaluated', { round: msg.round, ...result });
  }
}

function isFinite32(v: Float32Array): boolean {
  for (let i = 0; i < v.length; i++) if (v[i] - v[i] !== 0) return false;
  return true;
}
