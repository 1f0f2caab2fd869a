/**
 * Prometheus metrics of the coordinator (issue 14, item 3), with prom-client on a registry of our own
 * (never prom-client's global one, so two coordinators in one process — tests, the coming multi-job
 * service — do not share series). Default process metrics plus `cohort_`-prefixed series labelled by
 * `job`:
 *
 *   cohort_rounds_committed_total, cohort_rounds_aborted_total{reason}   (reason: ABORT_REASONS)
 *   cohort_messages_rejected_total{code}, cohort_bytes_received_total, cohort_bytes_sent_total
 *   cohort_clients_connected (polled on scrape), cohort_round_sampled / _survived / _dropped
 *   cohort_epsilon_spent{audience}, cohort_epsilon_budget{audience}, cohort_job_finished{status}
 *   cohort_round_duration_seconds (histogram)
 *   cohort_eval_accuracy, cohort_eval_ece, cohort_drift_psi (last federated evaluation's health),
 *   cohort_drift_alerts_total{action}
 *
 * Rounds, aborts, ε and the job's end come from the engine's events (`attach`). Rejections and bytes are
 * not engine events: they are counted at the transport seam (`meteredTransport`, a ServerTransport
 * decorator), or by a transport calling `countRejected` / `countBytesReceived` / `countBytesSent`.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { budgetAudience } from '../../shared/dp/index.ts';
import type { ClientMessage, ServerMessage, ServerTransport, ServerTransportSink } from '../../shared/protocol/index.ts';
import type { JobConfig } from '../round/config.ts';
import type { RoundEngine } from '../round/engine.ts';
import type { JobSummary, RoundSummary } from '../round/events.ts';
import type { DriftAlert } from '../round/health.ts';
import { wireBytes } from '../transport/memory.ts';

/** The buckets an abort reason is counted in. */
export const ABORT_REASONS = ['survivors', 'secagg', 'internal', 'store', 'other'] as const;
export type AbortReason = (typeof ABORT_REASONS)[number];

/**
 * The engine's abort text (server/round/engine.ts: abortRound, roundFailed) → its bucket. The texts are
 * free-form: a new kind of abort falls in 'other' until it is added here.
 */
export function abortReasonBucket(reason: string): AbortReason {
  if (/^secure aggregation aborted/.test(reason)) return 'secagg';
  if (/survivors < minSurvivors/.test(reason)) return 'survivors';
  if (/^store failure/.test(reason)) return 'store';
  if (/^internal error/.test(reason)) return 'internal';
  return 'other';
}

/** Round durations, seconds: from a fast simulated round to a cross-device round with long deadlines. */
export const ROUND_DURATION_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

export interface AttachOptions {
  /** The job's config, for its ε budget and the budget's audience (the engine does not expose them). */
  config?: JobConfig;
}

export interface MeteredTransportOptions {
  /**
   * 'estimate' (default): count each message's size as the in-memory transport meters it (JSON header
   * plus binary part, server/transport/memory.ts `wireBytes`), not the socket's framing. 'none': the
   * transport reports its own bytes through countBytesReceived / countBytesSent.
   */
  bytes?: 'estimate' | 'none';
}

export class CohortMetrics {
  readonly registry = new Registry();
  readonly contentType: string;

  private readonly committed: Counter<'job'>;
  private readonly aborted: Counter<'job' | 'reason'>;
  private readonly rejected: Counter<'job' | 'code'>;
  private readonly bytesReceived: Counter<'job'>;
  private readonly bytesSent: Counter<'job'>;
  private readonly connected: Gauge<'job'>;
  private readonly sampled: Gauge<'job'>;
  private readonly survived: Gauge<'job'>;
  private readonly dropped: Gauge<'job'>;
  private readonly epsilonSpent: Gauge<'job' | 'audience'>;
  private readonly epsilonBudget: Gauge<'job' | 'audience'>;
  private readonly finished: Gauge<'job' | 'status'>;
  private readonly duration: Histogram<'job'>;
  private readonly evalAccuracy: Gauge<'job'>;
  private readonly evalEce: Gauge<'job'>;
  private readonly driftPsi: Gauge<'job'>;
  private readonly driftAlerts: Counter<'job' | 'action'>;
  /** Engines polled on scrape, by job. */
  private readonly engines = new Map<string, RoundEngine>();

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.contentType = this.registry.contentType;
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    const counter = <L extends string>(name: string, help: string, labelNames: L[]) => new Counter<L>({ name, help, labelNames, registers });
    const gauge = <L extends string>(name: string, help: string, labelNames: L[], collect?: () => void) =>
      new Gauge<L>({ name, help, labelNames, registers, ...(collect ? { collect } : {}) });
    this.committed = counter('cohort_rounds_committed_total', 'Rounds committed (model published, ledger row written).', ['job']);
    this.aborted = counter('cohort_rounds_aborted_total', `Round attempts that ended without a commit, by cause (${ABORT_REASONS.join(', ')}).`, ['job', 'reason']);
    this.rejected = counter('cohort_messages_rejected_total', 'Client messages refused with a typed error, by error code.', ['job', 'code']);
    this.bytesReceived = counter('cohort_bytes_received_total', 'Bytes of client messages received (see CohortMetrics for how they are counted).', ['job']);
    this.bytesSent = counter('cohort_bytes_sent_total', 'Bytes of messages sent to clients (see CohortMetrics for how they are counted).', ['job']);
    const engines = this.engines;
    this.connected = gauge('cohort_clients_connected', 'Clients connected and registered with the job (polled on scrape).', ['job'], function (this: Gauge<'job'>) {
      for (const [job, engine] of engines) this.set({ job }, engine.connectedClients);
    });
    this.sampled = gauge('cohort_round_sampled', 'Cohort size of the last committed round.', ['job']);
    this.survived = gauge('cohort_round_survived', 'Survivors of the last committed round.', ['job']);
    this.dropped = gauge('cohort_round_dropped', 'Dropouts of the last committed round.', ['job']);
    // Polled on scrape from the engine's privacy controller: a restarted coordinator reports the ε its
    // ledger holds from the first scrape on, not only after its first commit.
    this.epsilonSpent = gauge('cohort_epsilon_spent', "Cumulative ε at the job's δ after the last committed round, by audience (coordinator, published).", ['job', 'audience'], function (this: Gauge<'job' | 'audience'>) {
      for (const [job, engine] of engines) {
        if (!engine.loaded || !engine.privacy.enabled) continue;
        const e = engine.privacy.epsilons;
        if (typeof e.coordinator === 'number') this.set({ job, audience: 'coordinator' }, e.coordinator);
        if (typeof e.published === 'number') this.set({ job, audience: 'published' }, e.published);
      }
    });
    this.epsilonBudget = gauge('cohort_epsilon_budget', "The job's ε budget; audience: the ε it applies to.", ['job', 'audience']);
    this.finished = gauge('cohort_job_finished', 'Set to 1 when the job reaches a final state, labelled with it.', ['job', 'status']);
    this.evalAccuracy = gauge('cohort_eval_accuracy', "Accuracy of the last federated evaluation (from the evaluators' summed statistics when present).", ['job']);
    this.evalEce = gauge('cohort_eval_ece', 'Top-label expected calibration error (15 bins) of the last federated evaluation with statistics.', ['job']);
    this.driftPsi = gauge('cohort_drift_psi', 'Largest population stability index (labels or a feature) of the last evaluation against the reference window.', ['job']);
    this.driftAlerts = counter('cohort_drift_alerts_total', 'Drift alerts raised, by the configured action (review, retrain).', ['job', 'action']);
    this.duration = new Histogram({
      name: 'cohort_round_duration_seconds',
      help: "Committed rounds' duration (the engine clock, first train sent to commit).",
      labelNames: ['job'],
      buckets: ROUND_DURATION_BUCKETS,
      registers,
    });
  }

  /** The Prometheus text exposition of every series. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Follows one engine: its rounds, aborts and end, and its connected clients on each scrape.
   * Returns a function that stops following it (its series stay).
   */
  attach(engine: RoundEngine, jobId: string = engine.jobId, opts: AttachOptions = {}): () => void {
    const job = jobId;
    this.committed.inc({ job }, 0);
    for (const reason of ABORT_REASONS) this.aborted.inc({ job, reason }, 0);
    this.bytesReceived.inc({ job }, 0);
    this.bytesSent.inc({ job }, 0);
    const budget = opts.config?.dp.budget;
    if (opts.config && budget) {
      this.epsilonBudget.set({ job, audience: budgetAudience(opts.config.dp) }, budget.epsilon);
    }
    this.engines.set(job, engine);
    const onRound = (s: RoundSummary): void => this.roundCommitted(job, s);
    const onAborted = (a: { reason: string }): void => this.aborted.inc({ job, reason: abortReasonBucket(a.reason) });
    const onFinished = (s: JobSummary): void => this.finished.set({ job, status: s.status }, 1);
    const onDrift = (a: DriftAlert): void => this.driftAlerts.inc({ job, action: a.action });
    engine.on('round', onRound);
    engine.on('aborted', onAborted);
    engine.on('finished', onFinished);
    engine.on('drift', onDrift);
    return () => {
      engine.off('drift', onDrift);
      engine.off('round', onRound);
      engine.off('aborted', onAborted);
      engine.off('finished', onFinished);
      if (this.engines.get(job) === engine) this.engines.delete(job);
    };
  }

  private roundCommitted(job: string, s: RoundSummary): void {
    const { record } = s;
    this.committed.inc({ job });
    this.sampled.set({ job }, record.cohortSize);
    this.survived.set({ job }, record.survivors);
    this.dropped.set({ job }, record.dropouts);
    this.duration.observe({ job }, Math.max(0, record.endedAt - record.startedAt) / 1000);
    const ev = s.evaluation;
    if (ev) this.evalAccuracy.set({ job }, ev.health?.metrics.accuracy ?? ev.accuracy);
    if (ev?.health) this.evalEce.set({ job }, ev.health.metrics.ece);
    if (ev?.health?.drift?.scores) this.driftPsi.set({ job }, ev.health.drift.scores.maxPsi);
  }

  /** A message refused with a typed error `code` (the metered transport calls it for every error reply). */
  countRejected(jobId: string, code: string): void {
    this.rejected.inc({ job: jobId, code: code.slice(0, 64) });
  }

  /** For a transport that knows its wire bytes (see MeteredTransportOptions.bytes). */
  countBytesReceived(jobId: string, bytes: number): void {
    if (bytes > 0) this.bytesReceived.inc({ job: jobId }, bytes);
  }

  countBytesSent(jobId: string, bytes: number): void {
    if (bytes > 0) this.bytesSent.inc({ job: jobId }, bytes);
  }

  /**
   * Wraps the engine's transport: counts every error reply the engine sends (a rejection, by code),
   * every frame the transport refused at its boundary (`onProtocolError`, by code), and — unless
   * `bytes: 'none'` — message bytes in and out. Hand the result to the RoundEngine.
   */
  meteredTransport(inner: ServerTransport, jobId: string, opts: MeteredTransportOptions = {}): ServerTransport {
    const estimate = (opts.bytes ?? 'estimate') === 'estimate';
    return {
      kind: inner.kind,
      start: (sink: ServerTransportSink) =>
        inner.start({
          onConnect: (connId) => sink.onConnect(connId),
          onDisconnect: (connId, reason) => sink.onDisconnect(connId, reason),
          onMessage: (connId, msg: ClientMessage) => {
            if (estimate) this.countBytesReceived(jobId, wireBytes(msg));
            sink.onMessage(connId, msg);
          },
          onProtocolError: (connId, error) => {
            this.countRejected(jobId, error.code);
            sink.onProtocolError?.(connId, error);
          },
        }),
      send: (connId: string, msg: ServerMessage) => {
        if (msg.type === 'error') this.countRejected(jobId, msg.code);
        if (estimate) this.countBytesSent(jobId, wireBytes(msg));
        inner.send(connId, msg);
      },
      disconnect: (connId: string) => inner.disconnect(connId),
      close: () => inner.close(),
      peerAddress: (connId: string) => inner.peerAddress?.(connId),
    };
  }
}
