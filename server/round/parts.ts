/**
 * The round engine's parts, wired together: the guard (recovery.ts), the message intake, the connection
 * registry, the batched client rows, the round starter, and the training and evaluation phases. Each part
 * gets small callbacks — guarded timers, `send`, `reject`, a check of the engine's state — and the engine
 * gets the parts; no part ever holds the engine (engine.ts keeps the state and its transitions).
 */
import type { Logger } from '../../shared/log.ts';
import { PROTOCOL_VERSION, type ServerTransport, type ServerTransportSink, type WireLimits } from '../../shared/protocol/index.ts';
import type { Rng } from '../../shared/random.ts';
import type { CohortStore } from '../store/index.ts';
import type { Failpoint } from '../failpoints.ts';
import type { ClientAuthenticator } from '../identity/federation.ts';
import type { Clock } from './clock.ts';
import { ClientRows } from './client-rows.ts';
import { RoundStarter } from './cohort.ts';
import type { JobConfig } from './config.ts';
import type { DriftAlert } from './health.ts';
import type { RoundSummary } from './events.ts';
import { EvaluationPhase } from './evaluation.ts';
import { MessageIntake } from './intake.ts';
import type { ValueLimits } from './ranges.ts';
import { Guard } from './recovery.ts';
import { ClientRegistry, type ConnectedClient } from './registry.ts';
import { TrainingPhase, type TrainingRound } from './training.ts';

export interface EngineBasics {
  jobId: string;
  config: JobConfig;
  store: CohortStore;
  transport: ServerTransport;
  clock: Clock;
  log: Logger;
  rng: Rng;
  valueLimits: ValueLimits;
  failpoint: Failpoint;
  /** The job's survivor floor (minSurvivors, else minClients). */
  minSurvivors: number;
  /** The wire limits clients are told in `welcome`. */
  limits: WireLimits;
  /** Decides whether a signed hello may speak for its client id (server/identity). */
  authenticator: ClientAuthenticator;
  /** The server identity challenges announce. */
  serverIdentity: string;
}

/** What the parts may ask of the engine: its state, and its transitions. */
export interface EngineHooks {
  state(): string;
  dim(): number;
  /** A client said hello and was welcomed (its previous connection, if any, closed). */
  joined(connId: string, clientId: string): void;
  closed(round: TrainingRound, secaggAbort?: string): void;
  evaluated(summary: RoundSummary, pauseReason?: string): void;
  /** A drift alert at an evaluation (health.ts). */
  drift(alert: DriftAlert): void;
  pause(reason: string): void;
  abandon(what: string, err: unknown): void;
  fail(reason: string): void;
}

export interface EngineParts {
  /** What the transport calls: connections opened and closed, messages, protocol errors. */
  sink: ServerTransportSink;
  guard: Guard;
  intake: MessageIntake;
  registry: ClientRegistry;
  clientRows: ClientRows;
  starter: RoundStarter;
  training: TrainingPhase;
  evaluations: EvaluationPhase;
}

export function engineParts(b: EngineBasics, hooks: EngineHooks): EngineParts {
  const { jobId, config, store, transport, clock, log, rng, valueLimits, failpoint, minSurvivors, limits, authenticator, serverIdentity } = b;
  const guard: Guard = new Guard({
    clock,
    log,
    retryMs: Math.max(config.timeouts.retryDelayMs, 50),
    finished: () => hooks.state() === 'finished',
    roundInFlight: () => training.round?.round ?? evaluations.round,
    pause: hooks.pause,
    abandon: hooks.abandon,
    fail: hooks.fail,
  });
  // Timers run guarded; rejections go through the intake's reject().
  const timer = (what: string, ms: number, fn: () => void): unknown => guard.timer(what, ms, fn);
  const send = transport.send.bind(transport);
  const client = (connId: string): ConnectedClient | undefined => registry.client(connId);
  const isRegistered = (connId: string, clientId: string): boolean => client(connId)?.clientId === clientId;
  const intake = new MessageIntake({
    jobId,
    log,
    send,
    client,
    recover: (what, err) => guard.recover(what, err),
    handlers: {
      hello: (connId, msg) => {
        const { client: joined, admission, replaced } = registry.register(connId, msg, transport.peerAddress?.(connId));
        if (replaced !== undefined) {
          log.info({ client: msg.clientId }, 'client reconnected; closing its previous connection');
          gone(msg.clientId, replaced);
          transport.disconnect(replaced);
        }
        clientRows.note(msg.clientId, { numExamples: msg.numExamples, lastSeen: clock.now() });
        send(connId, {
          type: 'welcome',
          protocolVersion: PROTOCOL_VERSION,
          jobId,
          clientId: joined.clientId,
          ...(admission.certificate ? { certificate: admission.certificate, caPublicKey: admission.caPublicKey } : {}),
          limits,
        });
        log.info({ client: msg.clientId, clients: registry.size, backend: msg.backend, via: admission.via }, 'client joined');
        hooks.joined(connId, joined.clientId);
      },
      update: (c, msg) => training.update(c, msg),
      refuse: (c, msg) => training.refuse(c, msg.round, msg.reason),
      evalResult: (c, msg) => evaluations.result(c, msg),
      secaggUp: (c, msg) => training.secaggUp(c, msg),
    },
  });
  const reject = intake.reject.bind(intake);
  const parts = { jobId, config, store, clock, log, rng, valueLimits, failpoint, timer, send, reject };
  const registry = new ClientRegistry({ jobId, authenticator, serverIdentity, transport, clock, log, helloMs: config.timeouts.helloMs, valueLimits, timer });
  const clientRows = new ClientRows(parts);
  // Group reweighting (health.groupWeights): each client's groups as it last declared them with an evaluation.
  const declaredGroups = new Map<string, Record<string, string>>();
  const weights = config.health.groupWeights;
  const groupWeight = weights
    ? (clientId: string): number => Object.entries(declaredGroups.get(clientId) ?? {}).reduce((w, [a, v]) => w * (weights[`${a}=${v}`] ?? 1), 1)
    : undefined;
  const training: TrainingPhase = new TrainingPhase({ ...parts, dim: hooks.dim, training: () => hooks.state() === 'training', closed: hooks.closed, groupWeight });
  const evaluations: EvaluationPhase = new EvaluationPhase({
    ...parts,
    evaluating: () => hooks.state() === 'evaluating',
    done: hooks.evaluated,
    drift: hooks.drift,
    declared: (clientId, groups) => declaredGroups.set(clientId, groups),
  });
  /** A member's connection is gone: the phase in flight counts it out. */
  const gone = (clientId: string, connId: string): void => {
    training.gone(clientId, connId);
    evaluations.gone(clientId, connId);
  };
  const sink: ServerTransportSink = {
    onConnect: (connId) => {
      log.debug({ connId }, 'connection opened');
      registry.opened(connId);
    },
    onDisconnect: (connId, reason) => {
      const closed = registry.closed(connId);
      if (!closed) return;
      log.info({ client: closed.clientId, reason }, 'client disconnected');
      guard.run('disconnect', () => gone(closed.clientId, connId));
    },
    onProtocolError: (connId, error) => intake.protocolError(connId, error),
    onMessage: (connId, msg) => intake.message(connId, msg),
  };
  const starter = new RoundStarter({ ...parts, minSurvivors, isRegistered, ...(authenticator.revocationList ? { revocations: () => authenticator.revocationList!() } : {}) });
  return { sink, guard, intake, registry, clientRows, starter, training, evaluations };
}
