/**
 * A DP job's evaluation statistics (health.dp, central mode): the noise the coordinator adds and the
 * event the ledger accounts come from one plan (the invariant noise-plan.test.ts checks for training),
 * the budget covers evaluations, and the ledger rows rebuild the same ε after a restart.
 */
import { describe, expect, it } from 'vitest';
import { addPredictions, emptyStats, statsSensitivity, weightedStats } from '../../shared/evaluation/index.ts';
import { seededRng } from '../../shared/random.ts';
import { parseJobConfig, type JobConfigInput } from './config.ts';
import { noisedWeightedStats } from './evaluation.ts';
import { PrivacyController, type EvaluationNoisePlan } from './privacy.ts';
import type { LedgerRow } from '../store/index.ts';

const MODEL = { zoo: 'logreg' as const, inputShape: [8], numClasses: 2 };
const DP = { mode: 'central' as const, noiseMultiplier: 1.1, clipNorm: 1, budget: { epsilon: 50, delta: 1e-5 } };

function config(overrides: Partial<JobConfigInput> = {}) {
  return parseJobConfig({
    id: 'dp-eval',
    model: MODEL,
    rounds: 5,
    minClients: 4,
    sampling: { mode: 'fixed', cohortSize: 4 },
    dp: DP,
    evaluation: { every: 1 },
    health: { dp: { noiseMultiplier: 2, maxExamples: 100 } },
    ...overrides,
  });
}

function plan(c: PrivacyController): EvaluationNoisePlan {
  const p = c.evaluationPlan(2, 100, 4, 10);
  if ('exhausted' in p) throw new Error(p.exhausted);
  return p;
}

describe('noised evaluation statistics', () => {
  it('σ added = z·Δ, Δ = maxExamples·√7, and the event carries z (z/2 under replace-one)', () => {
    const fixed = plan(new PrivacyController(config(), []));
    expect(fixed.sensitivity).toBe(statsSensitivity(100));
    expect(fixed.sensitivity).toBeCloseTo(100 * Math.sqrt(7), 12);
    expect(fixed.stddev).toBe(2 * fixed.sensitivity);
    expect(fixed.event).toEqual({ kind: 'gaussian', noiseMultiplier: 1 }); // fixed cohorts: replace-one, 2Δ
    const poisson = plan(new PrivacyController(config({ sampling: { mode: 'poisson', rate: 0.5 } }), []));
    expect(poisson.event).toEqual({ kind: 'gaussian', noiseMultiplier: 2 });
    expect(poisson.stddev / poisson.sensitivity).toBe(poisson.event.kind === 'gaussian' ? poisson.event.noiseMultiplier : NaN);
  });

  it('what is added has that standard deviation', () => {
    const p = plan(new PrivacyController(config(), []));
    const K = 100;
    const probs = Array.from({ length: 50 * K }, (_, i) => ((i * 7919) % K) / ((K * (K - 1)) / 2));
    const stats = addPredictions(emptyStats(K), probs, Array.from({ length: 50 }, (_, i) => i % K));
    const clean = weightedStats(stats);
    const noised = noisedWeightedStats(stats, p, seededRng(7));
    let ss = 0;
    for (let i = 0; i < clean.length; i++) ss += (noised[i] - clean[i]) ** 2;
    const sd = Math.sqrt(ss / clean.length);
    expect(clean.length).toBeGreaterThan(10_000);
    expect(Math.abs(sd / p.stddev - 1)).toBeLessThan(0.03);
  });

  it('the ledger row accounts the plan, ε grows by it, and a restarted controller sees the same ε', () => {
    const c = new PrivacyController(config(), []);
    const before = c.epsilonSpent;
    const p = plan(c);
    const entry = c.evaluationEntry(p, 4);
    expect(entry).toMatchObject({ mode: 'central', noiseMultiplier: 2, clipNorm: p.sensitivity, event: p.event, coordinatorEvent: null, cohortSize: 4, survivors: 4 });
    expect(entry.trust).toMatch(/not published/);
    c.evaluationReleased(p);
    expect(c.epsilonSpent).toBeGreaterThan(before);
    expect(c.epsilonSpent).toBeCloseTo(entry.epsilon, 12);
    const row: LedgerRow = { ...entry, seq: 1, round: 1, status: 'evaluation', attempt: null, recordedAt: 0 };
    expect(new PrivacyController(config(), [row]).epsilonSpent).toBeCloseTo(entry.epsilon, 12);
  });

  it('an evaluation past the budget is refused before anything is asked', () => {
    const c = new PrivacyController(config({ dp: { ...DP, budget: { epsilon: 0.5, delta: 1e-5 } }, health: { dp: { noiseMultiplier: 0.3, maxExamples: 100 } } }), []);
    const p = c.evaluationPlan(0.3, 100, 4, 10);
    expect('exhausted' in p && p.exhausted).toMatch(/past the budget ε=0.5/);
  });

  it('the config: central only, no un-noised extras, and the old refusal names the new way', () => {
    expect(() => config({ dp: { ...DP, mode: 'local' } })).toThrow(/central/);
    expect(() => config({ health: { dp: { noiseMultiplier: 1 }, temperatureScaling: true } })).toThrow(/not noised/);
    expect(() => config({ health: {} })).toThrow(/health.dp/);
  });
});
