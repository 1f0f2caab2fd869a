import { describe, expect, it } from 'vitest';
import { CohortError } from '../errors.ts';
import { composedEvent, gaussianEvent } from '../privacy/events.ts';
import { effectiveNoiseMultiplier } from '../privacy/accountant.ts';
import { seededRng } from '../random.ts';
import {
  clippingBit,
  defaultCountNoiseStddev,
  geometricClipUpdate,
  nextClipNorm,
  noisyUnclippedFraction,
  valueNoiseMultiplier,
} from './adaptive-clipping.ts';

describe('noise split (Andrew et al. 2021, Theorem 1)', () => {
  it('z_Δ = (z^-2 − (2σ_b)^-2)^-1/2 on hand-computed cases', () => {
    // z = 1, σ_b = 5: (1 − 1/100)^{-1/2} = 1/√0.99 = 1.005037815259212
    expect(valueNoiseMultiplier(1, 5)).toBeCloseTo(1.005037815259212, 15);
    // z = 0.5, σ_b = 1: (4 − 1/4)^{-1/2} = 1/√3.75 = 0.5163977794943223
    expect(valueNoiseMultiplier(0.5, 1)).toBeCloseTo(0.5163977794943223, 15);
    // cohort of 100, default σ_b = 5, z = 1.1: (1/1.21 − 1/100)^{-1/2}
    expect(valueNoiseMultiplier(1.1, defaultCountNoiseStddev(100))).toBeCloseTo(1 / Math.sqrt(1 / 1.21 - 0.01), 14);
    expect(valueNoiseMultiplier(0, 5)).toBe(0);
  });

  it('the value and count queries together cost exactly the total z', () => {
    for (const [z, sigmaB] of [[1, 5], [0.7, 0.5], [2.3, 3]] as const) {
      const zValue = valueNoiseMultiplier(z, sigmaB);
      const combined = effectiveNoiseMultiplier(composedEvent([gaussianEvent(zValue), gaussianEvent(2 * sigmaB)]));
      expect(Math.abs(combined - z) / z).toBeLessThan(1e-14);
      expect(zValue).toBeGreaterThan(z);
    }
  });

  it('refuses when the count noise alone exceeds the budget (2σ_b ≤ z)', () => {
    for (const [z, sigmaB] of [[1, 0.5], [1, 0.4], [3, 1]] as const) {
      let error: unknown;
      try {
        valueNoiseMultiplier(z, sigmaB);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(CohortError);
      expect((error as CohortError).code).toBe('NOISE_SPLIT_IMPOSSIBLE');
      expect((error as Error).message).toMatch(/need 2σ_b > z/);
    }
  });
});

describe('geometric clip update (Andrew et al. 2021, Algorithm 1)', () => {
  it('C ← C·exp(−η(b̄ − γ)) on hand-computed steps', () => {
    // 90% unclipped, target median: shrink. 0.1·e^{−0.2·0.4} = 0.09231163463866358
    expect(geometricClipUpdate(0.1, 0.9, 0.5, 0.2)).toBeCloseTo(0.09231163463866358, 16);
    // 20% unclipped: grow. 2·e^{0.2·0.3} = 2.1236730930907193
    expect(geometricClipUpdate(2, 0.2, 0.5, 0.2)).toBeCloseTo(2.1236730930907193, 15);
    expect(geometricClipUpdate(3, 0.5, 0.5, 0.2)).toBe(3);
  });

  it('the centred bits and b̄ without noise: 7 of 10 unclipped gives b̄ = 0.7', () => {
    const norms = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
    const bits = norms.map((n) => clippingBit(n, 0.7));
    expect(bits.filter((b) => b === 0.5).length).toBe(7);
    const bitSum = bits.reduce((a, b) => a + b, 0); // 7·0.5 − 3·0.5 = 2
    expect(bitSum).toBe(2);
    expect(noisyUnclippedFraction(bitSum, 10, 0)).toBeCloseTo(0.7, 15);
    const step = nextClipNorm({ clipNorm: 0.7, bitSum, expectedCohortSize: 10, targetQuantile: 0.5, learningRate: 0.2, countNoiseStddev: 0 });
    expect(step.unclippedFraction).toBeCloseTo(0.7, 15);
    expect(step.clipNorm).toBeCloseTo(0.7 * Math.exp(-0.2 * 0.2), 15);
  });

  it('tracks the target quantile from a bad start (norms ~ U(0, 10), median 5, C0 = 0.1)', () => {
    const rng = seededRng('adaptive');
    const m = 200;
    let clipNorm = 0.1;
    for (let round = 0; round < 300; round++) {
      let bitSum = 0;
      for (let i = 0; i < m; i++) bitSum += clippingBit(10 * rng.next(), clipNorm);
      clipNorm = nextClipNorm({
        clipNorm,
        bitSum,
        expectedCohortSize: m,
        targetQuantile: 0.5,
        learningRate: 0.2,
        countNoiseStddev: defaultCountNoiseStddev(m),
        rng,
      }).clipNorm;
    }
    expect(clipNorm).toBeGreaterThan(4);
    expect(clipNorm).toBeLessThan(6);
  });

  it('σ_b defaults to m/20 and bad parameters are refused', () => {
    expect(defaultCountNoiseStddev(100)).toBe(5);
    expect(() => defaultCountNoiseStddev(0)).toThrow(CohortError);
    expect(() => geometricClipUpdate(1, 0.5, 1, 0.2)).toThrow(CohortError);
    expect(() => geometricClipUpdate(1, 0.5, 0.5, 0)).toThrow(CohortError);
    expect(() => geometricClipUpdate(0, 0.5, 0.5, 0.2)).toThrow(CohortError);
  });
});
