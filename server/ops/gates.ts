/**
 * Promotion gates: the success criteria a model version must meet before it is tagged `production`
 * (the job config's `promote` section). A gate whose metric the version does not have (no evaluation,
 * no DP) fails: a criterion nobody measured is not met.
 */
import type { JobConfig } from '../round/config.ts';

export interface GateResult {
  gate: 'minAccuracy' | 'maxLoss' | 'maxEpsilon';
  limit: number;
  value: number | null;
  passed: boolean;
}

export interface VersionFacts {
  /** The version's evaluation (federated, else server-side), if any. */
  evaluation: { loss: number; accuracy: number } | null;
  /** ε at that version against the budget's audience, if the job is DP. */
  epsilon: number | null;
}

export function checkGates(promote: JobConfig['promote'], facts: VersionFacts): { passed: boolean; results: GateResult[] } {
  const results: GateResult[] = [];
  const gate = (name: GateResult['gate'], limit: number | undefined, value: number | null, ok: (v: number) => boolean) => {
    if (limit === undefined) return;
    results.push({ gate: name, limit, value, passed: value !== null && Number.isFinite(value) && ok(value) });
  };
  gate('minAccuracy', promote.minAccuracy, facts.evaluation?.accuracy ?? null, (v) => v >= promote.minAccuracy!);
  gate('maxLoss', promote.maxLoss, facts.evaluation?.loss ?? null, (v) => v <= promote.maxLoss!);
  gate('maxEpsilon', promote.maxEpsilon, facts.epsilon, (v) => v <= promote.maxEpsilon!);
  return { passed: results.every((r) => r.passed), results };
}
