/**
 * Success criteria (job config `criteria`): the thresholds a version must meet, checked at every
 * evaluation, reported per version and used by the registry's promotion gates. A criterion whose figure
 * was not measured (no groups reported, no DP) is not met: a threshold nobody checked is not a pass.
 */
import { z } from 'zod';

const unit = z.number().min(0).max(1);

export const CriteriaSchema = z
  .object({
    /** Federated accuracy at least this. */
    minAccuracy: unit.optional(),
    /** Top-label ECE (15 bins) at most this; the calibrated ECE counts when the version has a temperature. */
    maxEce: unit.optional(),
    /** max − min accuracy over reported groups at most this. */
    maxGroupGap: unit.optional(),
    /** Mean accuracy of the worst 10% of evaluating clients at least this. */
    minWorstDecileAccuracy: unit.optional(),
    /** ε spent (DP jobs) at most this. */
    maxEpsilon: z.number().positive().finite().optional(),
  })
  .strict()
  .refine((c) => Object.values(c).some((v) => v !== undefined), { message: 'name at least one criterion (or leave criteria out)' });
export type Criteria = z.output<typeof CriteriaSchema>;

export type CriterionName = keyof Criteria;

export interface CriterionResult {
  criterion: CriterionName;
  limit: number;
  value: number | null;
  passed: boolean;
}

export interface CriteriaFacts {
  accuracy: number | null;
  ece: number | null;
  groupGap: number | null;
  worstDecileAccuracy: number | null;
  epsilon: number | null;
}

export interface CriteriaReport {
  passed: boolean;
  results: CriterionResult[];
}

export function checkCriteria(criteria: Criteria, facts: CriteriaFacts): CriteriaReport {
  const results: CriterionResult[] = [];
  const check = (criterion: CriterionName, limit: number | undefined, value: number | null, min: boolean) => {
    if (limit === undefined) return;
    const passed = value !== null && Number.isFinite(value) && (min ? value >= limit : value <= limit);
    results.push({ criterion, limit, value, passed });
  };
  check('minAccuracy', criteria.minAccuracy, facts.accuracy, true);
  check('maxEce', criteria.maxEce, facts.ece, false);
  check('maxGroupGap', criteria.maxGroupGap, facts.groupGap, false);
  check('minWorstDecileAccuracy', criteria.minWorstDecileAccuracy, facts.worstDecileAccuracy, true);
  check('maxEpsilon', criteria.maxEpsilon, facts.epsilon, false);
  return { passed: results.every((r) => r.passed), results };
}
