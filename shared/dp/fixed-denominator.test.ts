import { describe, expect, it } from 'vitest';
import { CohortError } from '../errors.ts';
import { seededRng } from '../random.ts';
import {
  cappedClientWeight,
  centralNoisyMean,
  expectedCohortWeight,
  fixedDenominatorEstimate,
  sumSensitivity,
} from './fixed-denominator.ts';

describe('fixed-denominator estimator (McMahan et al. 2018)', () => {
  it('divides the sum by the expected cohort weight qW, not by the realised count', () => {
    // 1000 clients, q = 0.01: qW = 10 whether 7 or 13 clients survived.
    const qW = expectedCohortWeight(0.01, 1000);
    expect(qW).toBe(10);
    const sum = new Float64Array([7, -3.5, 0]);
    expect(Array.from(fixedDenominatorEstimate(sum, qW))).toEqual([Math.fround(0.7), Math.fround(-0.35), 0]);
    expect(Array.from(sum)).toEqual([7, -3.5, 0]); // input untouched
  });

  it('capped weights w = min(n/ŵ, 1) keep the sensitivity at C', () => {
    expect(cappedClientWeight(50, 100)).toBe(0.5);
    expect(cappedClientWeight(500, 100)).toBe(1);
    expect(cappedClientWeight(0, 100)).toBe(0);
    expect(sumSensitivity(2)).toBe(2);
    expect(sumSensitivity(2, 0.25)).toBe(0.5);
    expect(() => sumSensitivity(2, 3)).toThrow(CohortError); // weights above 1 break the bound
  });

  it('central mode adds N(0, (zC)²) to the sum before dividing by qW', () => {
    const dim = 40_000;
    const sum = new Float64Array(dim).fill(20);
    const z = 1.2;
    const clipNorm = 0.5;
    const qW = 10;
    const mean = centralNoisyMean({ sum, clipNorm, noiseMultiplier: z, expectedWeight: qW, rng: seededRng('central') });
    const sd = (z * clipNorm) / qW; // 0.06
    let m = 0;
    for (const x of mean) m += x;
    m /= dim;
    let v = 0;
    for (const x of mean) v += (x - 2) ** 2;
    v /= dim;
    expect(Math.abs(m - 2)).toBeLessThan((4.5 * sd) / Math.sqrt(dim));
    expect(Math.abs(v / (sd * sd) - 1)).toBeLessThan(4.5 * Math.sqrt(2 / dim));
    expect(sum[0]).toBe(20);
  });

  it('rejects nonsense denominators', () => {
    expect(() => expectedCohortWeight(0, 100)).toThrow(CohortError);
    expect(() => expectedCohortWeight(0.1, 0)).toThrow(CohortError);
    expect(() => fixedDenominatorEstimate(new Float64Array(2), 0)).toThrow(CohortError);
    expect(() => fixedDenominatorEstimate(new Float64Array(2), 1, new Float32Array(3))).toThrow(CohortError);
  });
});
