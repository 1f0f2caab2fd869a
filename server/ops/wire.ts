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

export function wireJobOps(opts: { engine: RoundEngine; config: JobConfig; store: CohortStore; metrics: CohortMetrics; logger: Logger }): void {
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
  // Automatic promotion: a committed (and, if due, evaluated) version that passes every gate.
  engine.on('round', (s) => {
    if (!config.promote?.auto) return;
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
