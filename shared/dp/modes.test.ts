import { describe, expect, it } from 'vitest';
import { CohortError } from '../errors.ts';
import { RdpAccountant, effectiveNoiseMultiplier } from '../privacy/accountant.ts';
import { DpEventSchema, gaussianEvent, poissonSampledEvent } from '../privacy/events.ts';
import { valueNoiseMultiplier } from './adaptive-clipping.ts';
import {
  DP_MODES,
  DP_MODE_SPECS,
  DpConfigSchema,
  centralNoiseStddev,
  distributedNoiseStddev,
  localNoiseStddev,
  budgetAudience,
  roundDpEvent,
  roundDpPlan,
} from './modes.ts';

function messages(input: unknown): string[] {
  const r = DpConfigSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('noise placement', () => {
  it('central and local add σ = zC; distributed splits it over m_min survivors', () => {
    expect(centralNoiseStddev(1.1, 2)).toBeCloseTo(2.2, 15);
    expect(localNoiseStddev(1.1, 2)).toBeCloseTo(2.2, 15);
    expect(distributedNoiseStddev(1, 2, 16)).toBe(0.5);
    // m_min shares of variance σ²/m_min add back up to σ².
    const share = distributedNoiseStddev(1.3, 0.7, 37);
    expect(Math.abs(37 * share * share - (1.3 * 0.7) ** 2)).toBeLessThan(1e-15);
    expect(() => distributedNoiseStddev(1, 1, 0)).toThrow(CohortError);
    expect(() => centralNoiseStddev(-1, 1)).toThrow(CohortError);
  });

  it('mode specs are data, one per mode', () => {
    expect(Object.keys(DP_MODE_SPECS).sort()).toEqual([...DP_MODES].sort());
    expect(DP_MODE_SPECS.distributed.requiresSecureAggregation).toBe(true);
    expect(DP_MODE_SPECS.local.protectsAgainstServer).toBe(true);
    expect(DP_MODE_SPECS.central.noiseAddedBy).toBe('server');
  });
});

describe('DpConfigSchema', () => {
  it('accepts a fixed clip norm and fills adaptive-clipping defaults when asked', () => {
    expect(DpConfigSchema.parse({ mode: 'central', noiseMultiplier: 1, clipNorm: 1 })).toEqual({
      mode: 'central',
      noiseMultiplier: 1,
      clipNorm: 1,
      adaptiveClipping: undefined,
    });
    const adaptive = DpConfigSchema.parse({ mode: 'central', noiseMultiplier: 1, clipNorm: 'adaptive', budget: { epsilon: 3, delta: 1e-6 } });
    expect(adaptive.adaptiveClipping).toEqual({ initialClipNorm: 0.1, targetQuantile: 0.5, learningRate: 0.2 });
    expect(adaptive.budget).toEqual({ epsilon: 3, delta: 1e-6 });
    expect(DpConfigSchema.parse({ mode: 'off' })).toEqual({ mode: 'off', noiseMultiplier: 0, adaptiveClipping: undefined });
  });

  it('rejects bad configs with messages that name the field', () => {
    const cases: Array<[unknown, string]> = [
      [{ mode: 'centrl', noiseMultiplier: 1, clipNorm: 1 }, "mode: dp.mode must be one of 'off', 'central', 'local', 'distributed'"],
      [{ mode: 'central', noiseMultiplier: -1, clipNorm: 1 }, 'noiseMultiplier: dp.noiseMultiplier must be ≥ 0'],
      [{ mode: 'central', noiseMultiplier: 1, clipNorm: 0 }, 'clipNorm: dp.clipNorm must be > 0'],
      [{ mode: 'central', noiseMultiplier: 1, clipNorm: 'auto' }, "clipNorm: dp.clipNorm must be a number > 0 or 'adaptive'"],
      [{ mode: 'central', noiseMultiplier: 1 }, "clipNorm: dp.clipNorm is required when dp.mode is 'central'"],
      [{ mode: 'central', clipNorm: 1 }, "noiseMultiplier: dp.noiseMultiplier must be > 0 when dp.mode is 'central'"],
      [{ mode: 'off', budget: { epsilon: 1, delta: 1e-5 } }, "budget: dp.budget needs a DP mode"],
      [{ mode: 'central', noiseMultiplier: 1, clipNorm: 1, adaptiveClipping: {} }, "adaptiveClipping: dp.adaptiveClipping is only allowed when dp.clipNorm is 'adaptive'"],
      [{ mode: 'local', noiseMultiplier: 1, clipNorm: 'adaptive' }, "clipNorm: adaptive clipping is not supported in 'local' mode"],
      [{ mode: 'central', noiseMultiplier: 1, clipNorm: 'adaptive', adaptiveClipping: { countNoiseStddev: 0.4 } }, 'need countNoiseStddev > noiseMultiplier / 2 = 0.5'],
      [{ mode: 'central', noiseMultiplier: 1, clipNorm: 'adaptive', adaptiveClipping: { targetQuantile: 1 } }, 'adaptiveClipping.targetQuantile: dp.adaptiveClipping.targetQuantile must be in (0, 1)'],
      [{ mode: 'central', noiseMultiplier: 1, clipNorm: 1, budget: { epsilon: 1, delta: 1 } }, 'budget.delta: dp.budget.delta must be in (0, 1)'],
      [{ mode: 'central', noiseMultiplier: 1, clipNorm: 1, sigma: 2 }, 'Unrecognized key'],
    ];
    for (const [input, expected] of cases) {
      const got = messages(input);
      expect(got.some((m) => m.includes(expected)), `${JSON.stringify(input)} → ${JSON.stringify(got)}`).toBe(true);
    }
  });
});

describe('roundDpEvent', () => {
  it('central/distributed Poisson rounds: a Poisson-sampled Gaussian with the job z', () => {
    for (const mode of ['central', 'distributed'] as const) {
      expect(roundDpEvent({ mode, noiseMultiplier: 1.1, sampling: { kind: 'poisson', q: 0.01 } })).toEqual(
        poissonSampledEvent(0.01, gaussianEvent(1.1)),
      );
    }
    expect(roundDpEvent({ mode: 'off', noiseMultiplier: 0, sampling: { kind: 'poisson', q: 0.01 } })).toBeNull();
  });

  it('adaptive clipping: value and count queries compose back to the job z', () => {
    const e = roundDpEvent({ mode: 'central', noiseMultiplier: 1, sampling: { kind: 'poisson', q: 0.02 }, countNoiseStddev: 5 });
    expect(e?.kind).toBe('poissonSampled');
    if (e?.kind !== 'poissonSampled') return;
    expect(effectiveNoiseMultiplier(e.event)).toBeCloseTo(1, 14);
    expect(DpEventSchema.parse(JSON.parse(JSON.stringify(e)))).toEqual(e);
    // Same ε as the plain round with the same total z.
    const plain = new RdpAccountant().compose(poissonSampledEvent(0.02, gaussianEvent(1)), 100).getEpsilon(1e-5);
    const split = new RdpAccountant().compose(e, 100).getEpsilon(1e-5);
    expect(split.epsilon).toBeCloseTo(plain.epsilon, 10);
    expect(valueNoiseMultiplier(1, 5)).toBeGreaterThan(1);
  });

  it('fixed cohorts: sampled without replacement, multipliers halved for replace-one sensitivity 2C', () => {
    const e = roundDpEvent({ mode: 'central', noiseMultiplier: 1.2, sampling: { kind: 'fixed', sampleSize: 50, populationSize: 1000 } });
    expect(e).toEqual({ kind: 'sampledWithoutReplacement', sampleSize: 50, sourceSize: 1000, event: { kind: 'gaussian', noiseMultiplier: 0.6 } });
    const acc = new RdpAccountant(undefined, { neighboringRelation: 'replaceOne' });
    expect(Number.isFinite(acc.compose(e!, 10).getEpsilon(1e-5).epsilon)).toBe(true);
  });

  it('local rounds are unsampled Gaussians under replace-one: sensitivity 2C, so the event carries z/2', () => {
    expect(roundDpEvent({ mode: 'local', noiseMultiplier: 4, sampling: { kind: 'poisson', q: 0.01 } })).toEqual(gaussianEvent(2));
    expect(() => roundDpEvent({ mode: 'local', noiseMultiplier: 4, sampling: { kind: 'poisson', q: 0.01 }, countNoiseStddev: 5 })).toThrow(CohortError);
    const plan = roundDpPlan({ mode: 'local', noiseMultiplier: 4, sampling: { kind: 'poisson', q: 0.01 } })!;
    expect(plan.coordinatorEvent).toEqual(plan.event);
    expect(plan.valueNoiseMultiplier).toBe(4); // what each client adds: σ = z·C, unchanged
  });

  it('local-mode ε is the replace-one figure of the issue (z=1, 1 round: 10.73; z=5, 100 rounds: 25.93)', () => {
    const eps = (z: number, rounds: number) => {
      const e = roundDpEvent({ mode: 'local', noiseMultiplier: z, sampling: { kind: 'poisson', q: 0.5 } })!;
      return new RdpAccountant().compose(e, rounds).getEpsilon(1e-5).epsilon;
    };
    // Before: gaussian(z) under add-or-remove read 4.73 and 10.73.
    expect(eps(1, 1)).toBeCloseTo(10.73, 2);
    expect(eps(5, 100)).toBeCloseTo(25.93, 2);
  });

  it('distributed rounds carry a second event against the coordinator: unsampled, replace-one', () => {
    const plan = roundDpPlan({ mode: 'distributed', noiseMultiplier: 1, sampling: { kind: 'poisson', q: 0.1 } })!;
    expect(plan.event).toEqual(poissonSampledEvent(0.1, gaussianEvent(1)));
    expect(plan.coordinatorEvent).toEqual(gaussianEvent(0.5));
    expect(roundDpPlan({ mode: 'central', noiseMultiplier: 1, sampling: { kind: 'poisson', q: 0.1 } })!.coordinatorEvent).toBeNull();
  });

  it('budget audiences: coordinator by default where the mode protects against it; refused in central mode', () => {
    const budget = { epsilon: 8, delta: 1e-5 };
    expect(budgetAudience(DpConfigSchema.parse({ mode: 'local', noiseMultiplier: 1, clipNorm: 1, budget }))).toBe('coordinator');
    expect(budgetAudience(DpConfigSchema.parse({ mode: 'distributed', noiseMultiplier: 1, clipNorm: 1, budget }))).toBe('coordinator');
    expect(budgetAudience(DpConfigSchema.parse({ mode: 'distributed', noiseMultiplier: 1, clipNorm: 1, budget: { ...budget, against: 'published' } }))).toBe('published');
    expect(budgetAudience(DpConfigSchema.parse({ mode: 'central', noiseMultiplier: 1, clipNorm: 1, budget }))).toBe('published');
    expect(messages({ mode: 'central', noiseMultiplier: 1, clipNorm: 1, budget: { ...budget, against: 'coordinator' } })[0]).toMatch(/cannot be met in 'central' mode/);
    expect(messages({ mode: 'distributed', noiseMultiplier: 1, clipNorm: 'adaptive' })[0]).toMatch(/clipping bit would reach the coordinator un-noised/);
  });
});
