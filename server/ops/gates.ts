/**
 * Promotion gates: the success criteria a model version must meet before it is tagged `production`
 * (the job config's `promote` section). A gate whose metric the version does not have (no evaluation,
 * no DP) fails: a criterion nobody measured is not met.
 */
import { checkCriteria, type CriterionName, type HealthReport } from '../../shared/evaluation/index.ts';
import type { JobConfig } from '../round/config.ts';

export interface GateResult {
  /** A `promote` gate, or one of the job's success criteria (`criteria.*`, shared/evaluation/criteria.ts). */
  gate: 'minAccuracy' | 'maxLoss' | 'maxEpsilon' | `criteria.${CriterionName}`;
  limit: number;
  value: number | null;
  passed: boolean;
}

export interface VersionFacts {
  /** The version's evaluation (federated, else server-side), if any. */
  evaluation: { loss: number; accuracy: number } | null;
  /** ε at that version against the budget's audience, if the job is DP. */
  epsilon: number | null;
  /** The version's model health (its federated evaluation's statistics), if measured. */
  health?: HealthReport | null;
}

/**
 * The promotion gates of `promote` and, when the job sets `criteria`, every success criterion: checked
 * again here from the version's stored health and ε (not trusted from the evaluation's own verdict), so
 * a version nobody measured fails them.
 */
export function checkGates(promote: JobConfig['promote'], facts: VersionFacts, criteria?: JobConfig['criteria']): { passed: boolean; results: GateResult[] } {
  const results: GateResult[] = [];
  const gate = (name: GateResult['gate'], limit: number | undefined, value: number | null, ok: (v: number) => boolean) => {
    if (limit === undefined) return;
    results.push({ gate: name, limit, value, passed: value !== null && Number.isFinite(value) && ok(value) });
  };
  gate('minAccuracy', promote.minAccuracy, facts.evaluation?.accuracy ?? null, (v) => v >= promote.minAccuracy!);
  gate('maxLoss', promote.maxLoss, facts.evaluation?.loss ?? null, (v) => v <= promote.maxLoss!);
  gate('maxEpsilon', promote.maxEpsilon, facts.epsilon, (v) => v <= promote.maxEpsilon!);
  if (criteria) {
    const h = facts.health ?? null;
    const checked = checkCriteria(criteria, {
      accuracy: h?.metrics.accuracy ?? facts.evaluation?.accuracy ?? null,
      ece: h ? (h.temperature?.calibrated?.ece ?? h.metrics.ece) : null,
      groupGap: h?.fairness?.accuracyGap ?? null,
      worstDecileAccuracy: h?.clientAccuracy?.worstDecile ?? null,
      epsilon: facts.epsilon,
    });
    for (const r of checked.results) results.push({ gate: `criteria.${r.criterion}`, limit: r.limit, value: r.value, passed: r.passed });
  }
  return { passed: results.every((r) => r.passed), results };
}
