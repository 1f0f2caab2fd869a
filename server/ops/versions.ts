/**
 * What a model version is, from the store: its evaluation, its ε, the gates it passes (gates.ts), and
 * its model card — the record a person promoting it reads: data, training, privacy (ε/δ against each
 * audience and the trust assumption, from the ledger), secure aggregation, evaluation, gates.
 */
import type { JobConfig } from '../round/config.ts';
import type { CohortStore, LedgerRow, RoundRow } from '../store/index.ts';
import { checkGates, type GateResult, type VersionFacts } from './gates.ts';

export interface Version extends VersionFacts {
  round: number;
  row: RoundRow | undefined;
  ledger: LedgerRow | undefined;
}

export function version(store: CohortStore, jobId: string, round: number): Version {
  const row = store.listRounds(jobId).find((r) => r.round === round);
  const ledger = store.listLedger(jobId).find((r) => r.status === 'committed' && r.round === round);
  const health = store.listEvaluations(jobId).find((e) => e.round === round && e.kind === 'federated')?.health ?? null;
  return { round, row, ledger, evaluation: row?.evaluation ?? null, epsilon: ledger?.epsilon ?? null, health };
}

export function gatesOf(config: JobConfig, v: Version): { passed: boolean; results: GateResult[] } {
  return checkGates(config.promote, v, config.criteria);
}

/** The model-health part of a model card: calibration, temperature, fairness, drift, criteria. */
function healthCard(v: Version) {
  const h = v.health;
  if (!h) return null;
  const { stats: _stats, drift, ...rest } = h;
  return { ...rest, ...(drift ? { drift: { scores: drift.scores ?? null, accuracyDrop: drift.accuracyDrop ?? null, alert: drift.alert ?? null, reference: drift.reference } } : {}) };
}

export function modelCard(config: JobConfig, store: CohortStore, jobId: string, round: number) {
  const v = version(store, jobId, round);
  const checkpoint = store.checkpoint(jobId, round);
  const gates = gatesOf(config, v);
  const card = {
    job: jobId,
    version: round,
    sha256: checkpoint?.checksum ?? null,
    model: config.model,
    data: v.row ? { clients: v.row.survivors, cohort: v.row.cohortSize, examples: v.row.numExamples } : null,
    training: { rounds: round, ofRounds: config.rounds, sampling: config.sampling, training: config.training, optimizer: config.optimizer },
    privacy:
      config.dp.mode === 'off'
        ? { mode: 'off' }
        : {
            mode: config.dp.mode,
            noiseMultiplier: config.dp.noiseMultiplier,
            clipNorm: config.dp.clipNorm,
            delta: v.ledger?.delta ?? null,
            epsilonAgainstConsumers: v.ledger?.epsilonPublished ?? null,
            epsilonAgainstCoordinator: v.ledger?.epsilonCoordinator ?? null,
            budgetAgainst: v.ledger?.audience ?? null,
            trust: v.ledger?.trust ?? null,
          },
    secureAggregation: config.secagg.enabled ? { bits: config.secagg.bits, dropoutRate: config.secagg.dropoutRate, corruptRate: config.secagg.corruptRate } : null,
    evaluation: v.evaluation,
    health: healthCard(v),
    gates,
  };
  const e = (x: number | null | undefined, d = 4) => (x === null || x === undefined ? 'n/a' : x.toFixed(d));
  const markdown = [
    `# Model card: ${jobId}, version ${round}`,
    '',
    `- sha-256: \`${card.sha256 ?? 'pruned'}\``,
    `- model: ${JSON.stringify(config.model)}`,
    `- rounds: ${round} of ${config.rounds}; sampling ${JSON.stringify(config.sampling)}; optimizer ${config.optimizer.name}`,
    card.data ? `- last round: ${card.data.clients} of ${card.data.cohort} clients, ${card.data.examples} examples` : '- last round: n/a',
    config.dp.mode === 'off'
      ? '- differential privacy: off'
      : `- differential privacy: ${config.dp.mode}, z ${config.dp.noiseMultiplier}, C ${String(config.dp.clipNorm)}; ε ${e(v.ledger?.epsilonPublished)} against model consumers, ${e(v.ledger?.epsilonCoordinator)} against the coordinator, δ ${v.ledger?.delta ?? 'n/a'}`,
    ...(v.ledger ? [`- trust: ${v.ledger.trust}`] : []),
    `- secure aggregation: ${card.secureAggregation ? `on (${config.secagg.bits} bits)` : 'off'}`,
    `- evaluation: ${v.evaluation ? `accuracy ${e(v.evaluation.accuracy)}, loss ${e(v.evaluation.loss)} (${v.row?.evaluation?.kind ?? 'n/a'})` : 'none'}`,
    ...(v.health
      ? [
          `- calibration: ECE ${e(v.health.metrics.ece)}, Brier ${e(v.health.metrics.brier)}, NLL ${e(v.health.metrics.nll)}` +
            (v.health.temperature?.calibrated ? `; after temperature scaling (T = ${v.health.temperature.applied}): ECE ${e(v.health.temperature.calibrated.ece)}` : '') +
            (v.health.temperature ? `; best T this evaluation ${v.health.temperature.best}` : ''),
          ...(v.health.fairness ? [`- groups: accuracy gap ${e(v.health.fairness.accuracyGap)}, equalised-odds difference ${e(v.health.fairness.equalisedOddsDifference)}; ${v.health.fairness.groups.map((g) => (g.metrics ? `${g.group} ${e(g.metrics.accuracy)}` : `${g.group} suppressed (${g.suppressed})`)).join(', ')}`] : []),
          ...(v.health.clientAccuracy ? [`- accuracy across ${v.health.clientAccuracy.clients} clients: mean ${e(v.health.clientAccuracy.mean)}, worst decile ${e(v.health.clientAccuracy.worstDecile)}, variance ${e(v.health.clientAccuracy.variance, 6)}`] : []),
          ...(v.health.drift?.alert ? [`- drift alert: ${v.health.drift.alert}`] : []),
        ]
      : []),
    `- gates: ${gates.results.length === 0 ? 'none set' : gates.results.map((g) => `${g.gate} ${g.limit}: ${g.passed ? 'passed' : 'failed'} (${e(g.value)})`).join('; ')}`,
    '',
  ].join('\n');
  return { card, markdown };
}
