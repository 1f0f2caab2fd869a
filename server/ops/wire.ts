/**
 * The operations plane around one job's round engine: its metrics, the audit rows of the job's own
 * state changes (actor `system`: paused, finished, budget exhausted) and automatic promotion of versions
 * that pass every gate. The one-job coordinator and the multi-job service both call it.
 */
import type { Logger } from '../../shared/log.ts';
import type { JobConfig } from '../round/config.ts';
import type { RoundEngine } from '../round/engine.ts';
import type { CohortStore } from '../store/index.ts';
import type { CohortMetrics } from './metrics.ts';
import { gatesOf, version } from './versions.ts';

export interface WireJobOpsOptions {
  engine: RoundEngine;
  config: JobConfig;
  store: CohortStore;
  metrics: CohortMetrics;
  logger: Logger;
  /** Submits a job (the multi-job service): how `onDrift: "retrain"` starts a retraining job. */
  submit?: (config: JobConfig) => Promise<unknown>;
}

/** The retraining job a drift alert submits: the same config, a new id, starting from the drifted version. */
export function retrainingConfig(config: JobConfig, round: number): JobConfig {
  const suffix = `-retrain-${round}`;
  return { ...config, id: `${config.id.slice(0, 64 - suffix.length)}${suffix}`, initFrom: { job: config.id, round } };
}

export function wireJobOps(opts: WireJobOpsOptions): void {
  const { engine, config, store, metrics, logger } = opts;
  metrics.attach(engine, config.id, { config });
  const system = (action: string, target: string, details: Record<string, unknown>): void => {
    try {
      store.appendAudit({ actor: 'system', action, target, outcome: 'ok', details });
    } catch (err) {
      logger.error({ err, action }, 'cannot append to the audit log');
    }
  };
  engine.on('paused', ({ reason }) => system('job.paused', config.id, { reason }));
  engine.on('finished', (s) =>
    system(s.status === 'budget_exhausted' ? 'job.budget_exhausted' : 'job.finished', config.id, { status: s.status, rounds: s.rounds, ...(s.reason ? { reason: s.reason } : {}) }),
  );
  /**
   * A drift alert (health.ts) holds automatic promotion for human review (`review`), or submits a
   * retraining job from the drifted version (`retrain`; where no service can submit one — the one-job
   * coordinator — it holds for review instead, and the audit row says so). A hold ends when an operator
   * tags a version production after the alert.
   */
  /** While held: the production tag at the alert (null: none); a newer tag by an operator releases it. */
  let heldAt: { tag: ReturnType<CohortStore['productionTag']> } | undefined;
  engine.on('drift', (alert) => {
    const details: Record<string, unknown> = { round: alert.round, reason: alert.reason, action: alert.action, scores: alert.drift.scores ?? null, accuracyDrop: alert.drift.accuracyDrop ?? null };
    const hold = (): void => {
      heldAt ??= { tag: store.productionTag(config.id) };
    };
    if (alert.action === 'retrain' && opts.submit) {
      const retrain = retrainingConfig(config, alert.round);
      system('model.drift', `${config.id}/${alert.round}`, { ...details, retrainingJob: retrain.id });
      opts.submit(retrain).then(
        () => system('job.submit', retrain.id, { reason: `drift in ${config.id} at version ${alert.round}`, initFrom: retrain.initFrom }),
        (err: unknown) => {
          logger.error({ err, job: retrain.id }, 'cannot submit the retraining job; holding for review');
          hold();
          system('model.drift.hold', `${config.id}/${alert.round}`, { reason: `retraining job not submitted: ${String((err as Error)?.message ?? err).slice(0, 300)}` });
        },
      );
      return;
    }
    hold();
    system('model.drift', `${config.id}/${alert.round}`, {
      ...details,
      held: true,
      ...(alert.action === 'retrain' ? { note: 'retrain needs the multi-job service (cohort serve); held for review instead' } : {}),
    });
  });
  const held = (): boolean => {
    if (heldAt === undefined) return false;
    const tag = store.productionTag(config.id);
    const before = heldAt.tag;
    const moved = tag !== undefined && (before === undefined || tag.taggedAt !== before.taggedAt || tag.round !== before.round);
    if (moved && tag.actor !== 'system') heldAt = undefined;
    return heldAt !== undefined;
  };
  // Automatic promotion: a committed (and, if due, evaluated) version that passes every gate.
  engine.on('round', (s) => {
    if (!config.promote?.auto) return;
    if (held()) {
      logger.info({ round: s.round }, 'automatic promotion held for review after a drift alert');
      return;
    }
    try {
      const gates = gatesOf(config, version(store, config.id, s.round));
      if (!gates.passed) return;
      store.setProductionTag({ jobId: config.id, round: s.round, actor: 'system', forced: false });
      system('version.promote', `${config.id}/${s.round}`, { auto: true, gates: gates.results });
    } catch (err) {
      logger.error({ err, round: s.round }, 'automatic promotion failed');
    }
  });
}
