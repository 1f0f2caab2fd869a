/**
 * The noise applied and the noise accounted come from one plan: in every mode, the σ that the
 * coordinator, a client or a SecAgg encoding adds is the σ the round's DP event (what the ledger
 * accounts) implies for the planned sensitivity — read back from the event itself, independently of
 * the plan's own fields — and what is actually added has that standard deviation.
 */
import { describe, expect, it } from 'vitest';
import { privatiseUpdate } from '../../client/engine/privatise.ts';
import type { DpEvent } from '../../shared/privacy/index.ts';
import { seededRng } from '../../shared/random.ts';
import { planSecAggRound } from '../../shared/secagg/plan.ts';
import { parseJobConfig, type JobConfigInput } from './config.ts';
import { PrivacyController, type RoundPlan } from './privacy.ts';

const MODEL = { zoo: 'logreg' as const, inputShape: [8], numClasses: 2 };

function controller(overrides: Partial<JobConfigInput>) {
  const cfg = parseJobConfig({ id: 'noise', model: MODEL, rounds: 5, minClients: 4, sampling: { mode: 'fixed', cohortSize: 4 }, ...overrides });
  return new PrivacyController(cfg, []);
}

function plan(c: PrivacyController, cohort = 4, population = 10, minSurvivors = 4): RoundPlan {
  const p = c.plan(cohort, population, minSurvivors);
  if ('exhausted' in p) throw new Error('unexpected budget stop');
  return p;
}

/**
 * z of the value query as the accountant sees it, in units of one client's sensitivity (replace-one
 * events carry z/2: sampling without replacement, and the unsampled events of local mode).
 */
function accountedValueZ(event: DpEvent, replaceOne = event.kind === 'sampledWithoutReplacement'): number {
  const sampled = event.kind === 'poissonSampled' || event.kind === 'sampledWithoutReplacement';
  const inner = sampled ? event.event : event;
  const first = inner.kind === 'composed' ? inner.events[0] : inner;
  if (first.kind !== 'gaussian') throw new Error(`unexpected event ${event.kind}`);
  return replaceOne ? 2 * first.noiseMultiplier : first.noiseMultiplier;
}

/** For a sum of n discrete Gaussians: √n·σ over one client's sensitivity (Δ₂, or 2Δ₂/2 under replace-one). */
function accountedDistributedZ(event: DpEvent, replaceOne: boolean): number {
  const inner = event.kind === 'poissonSampled' ? event.event : event;
  if (inner.kind !== 'distributedDiscreteGaussian') throw new Error(`unexpected event ${inner.kind}`);
  return (Math.sqrt(inner.clients) * inner.localStddev) / (replaceOne ? inner.l2Sensitivity / 2 : inner.l2Sensitivity);
}

const ENCODING = { gamma: 1e-3, dimension: 18 };

/** A distributed-DP plan (z = 1.1, C = 1, 20 of 100 clients, 16 survivors) bound to the encoding the SecAgg driver would choose. */
function distributedPlan(sampling: JobConfigInput['sampling'], minClients: number): RoundPlan {
  const c = controller({
    dp: { mode: 'distributed', noiseMultiplier: 1.1, clipNorm: 1, budget: { epsilon: 1e6, delta: 1e-5 } },
    secagg: { enabled: true, bits: 20 },
    sampling,
    minClients,
  });
  const p = plan(c, 20, 100, 16);
  // The driver encodes with the plan's z (SecAggRound → planSecAggRound), then binds what it chose.
  const sa = planSecAggRound({ clients: 20, jobMinSurvivors: 16, dim: 18, clipNorm: 1, bits: 20, wrapProbability: 1e-9, noiseMultiplier: p.noise.valueNoiseMultiplier, dropoutRate: 0.1, corruptRate: 0.05 });
  c.bindSecAgg(p, { gamma: sa.encoding.gamma, dimension: 18, sensitivity: sa.encoding.sensitivity, noiseStddev: sa.encoding.noiseStddev, minSurvivors: sa.minSurvivors });
  return p;
}

const std = (v: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s / v.length);
};

describe('one noise plan for what is applied and what is accounted', () => {
  it.each([
    ['fixed cohort', { sampling: { mode: 'fixed', cohortSize: 4 } }],
    ['Poisson', { sampling: { mode: 'poisson', rate: 0.4 } }],
    ['fixed cohort, adaptive clipping', { dp: { mode: 'central', noiseMultiplier: 1.5, clipNorm: 'adaptive', adaptiveClipping: { countNoiseStddev: 2 }, budget: { epsilon: 1e6, delta: 1e-5 } } }],
  ] as const)('central (%s): the coordinator adds z_value·sensitivity, the z in the event', (_, extra) => {
    const c = controller({ dp: { mode: 'central', noiseMultiplier: 1.5, clipNorm: 0.8, budget: { epsilon: 1e6, delta: 1e-5 } }, ...extra } as Partial<JobConfigInput>);
    // A population of 1,000: a Poisson draw at 0.4 is never short of minClients 4 (conditioning.ts).
    const p = plan(c, 4, 1000);
    const z = accountedValueZ(p.event);
    if (c.adaptive) expect(z).toBeGreaterThan(1.5); // the value query needs more noise: the count takes part of the budget (Andrew et al. 2021)
    expect(p.noise.valueNoiseMultiplier).toBeCloseTo(z, 12);
    expect(p.noise.centralStddev).toBeCloseTo(z * p.noise.sensitivity, 12);
    // What noisyMean adds to a zero sum, times the fixed denominator, is that σ.
    const added = c.noisyMean(new Float64Array(50_000), p, seededRng(5));
    expect(std(added) * p.expectedWeight).toBeCloseTo(p.noise.centralStddev!, 1);
    // SecAgg's rounding raises the sensitivity; the σ follows it.
    c.bindSecAgg(p, { ...ENCODING, sensitivity: 1.2 * p.noise.sensitivity, noiseStddev: 0, minSurvivors: 4 });
    expect(p.noise.centralStddev).toBeCloseTo(z * p.noise.sensitivity, 12);
    expect(std(c.noisyMean(new Float64Array(50_000), p, seededRng(6))) * p.expectedWeight).toBeCloseTo(p.noise.centralStddev!, 1);
  });

  it('local: each client adds z·C, the z in the (replace-one) event, and nothing more is added centrally', () => {
    const c = controller({ dp: { mode: 'local', noiseMultiplier: 2, clipNorm: 0.5, budget: { epsilon: 1e6, delta: 1e-5 } } });
    const p = plan(c);
    expect(p.event).toEqual({ kind: 'gaussian', noiseMultiplier: 1 });
    expect(p.noise.clientStddev).toBeCloseTo(accountedValueZ(p.event, true) * 0.5, 12);
    expect(p.coordinatorEvent).toEqual(p.event);
    expect(p.noise.centralStddev).toBeUndefined();
    const { delta } = privatiseUpdate(new Float32Array(50_000), p.announce, seededRng(7));
    expect(std(delta)).toBeCloseTo(p.noise.clientStddev!, 2);
    const sum = new Float64Array(50_000);
    expect(c.noisyMean(sum, p, seededRng(8)).every((x) => x === 0)).toBe(true);
  });

  it('distributed: the per-client share over minSurvivors carries the accounted z·sensitivity', () => {
    const p = distributedPlan({ mode: 'fixed', cohortSize: 20 }, 20);
    // Both events are now the discrete-Gaussian sum of the encoding (fixed cohort: no amplification claimed).
    expect(p.coordinatorEvent!.kind).toBe('distributedDiscreteGaussian');
    expect(p.event).toEqual(p.coordinatorEvent);
    const z = accountedDistributedZ(p.coordinatorEvent!, true);
    expect(z).toBeCloseTo(1.1, 9);
    expect(p.noise.sensitivity).toBeGreaterThanOrEqual(1);
    expect(p.noise.clientStddev! * Math.sqrt(p.announce.minSurvivors)).toBeCloseTo(z * p.noise.sensitivity, 9);
    expect(p.noise.centralStddev).toBeUndefined();
  });

  it('distributed, Poisson: consumers get the subsampled sum at sensitivity Δ₂, the coordinator the unsampled one at 2Δ₂', () => {
    const p = distributedPlan({ mode: 'poisson', rate: 0.2 }, 10);
    expect(p.event.kind).toBe('poissonSampled');
    expect(accountedDistributedZ(p.event, false)).toBeCloseTo(1.1, 9);
    expect(accountedDistributedZ(p.coordinatorEvent!, true)).toBeCloseTo(1.1, 9);
    // What the clients add: σ_i·√minSurvivors = z·Δ₂γ, in model units.
    expect(p.noise.clientStddev! * Math.sqrt(p.announce.minSurvivors)).toBeCloseTo(1.1 * p.noise.sensitivity, 9);
  });
});
