import { describe, expect, it } from 'vitest';
import { CohortError } from '../errors.ts';
import { normalCdf } from '../privacy/special.ts';
import { seededRng } from '../random.ts';
import { addGaussianNoise, gaussianSample } from './gaussian.ts';
import { KS_CRITICAL_0_001, ksStatistic } from './testing/goodness-of-fit.ts';

const N = 100_000;

describe('gaussianSample', () => {
  const rng = seededRng('gaussian-ks');
  const samples = new Float64Array(N);
  for (let i = 0; i < N; i++) samples[i] = gaussianSample(rng);

  it('has mean 0 and variance 1 (within 4.5 standard errors)', () => {
    let mean = 0;
    for (const x of samples) mean += x;
    mean /= N;
    let variance = 0;
    for (const x of samples) variance += (x - mean) ** 2;
    variance /= N - 1;
    expect(Math.abs(mean)).toBeLessThan(4.5 / Math.sqrt(N));
    expect(Math.abs(variance - 1)).toBeLessThan(4.5 * Math.sqrt(2 / N));
  });

  it('passes Kolmogorov–Smirnov against Φ at α = 0.001', () => {
    const d = ksStatistic(samples.slice(), normalCdf);
    expect(Math.sqrt(N) * d).toBeLessThan(KS_CRITICAL_0_001);
  });

  it('KS has power: a 5% scale error is rejected', () => {
    const d = ksStatistic(samples.map((x) => 1.05 * x), normalCdf);
    expect(Math.sqrt(N) * d).toBeGreaterThan(KS_CRITICAL_0_001);
  });

  it('draws from the CSPRNG by default', () => {
    const a = gaussianSample();
    const b = gaussianSample();
    expect(Number.isFinite(a) && Number.isFinite(b) && a !== b).toBe(true);
  });
});

describe('addGaussianNoise', () => {
  it('adds N(0, σ²) per coordinate, including an odd last one', () => {
    const dim = 50_001;
    const v = new Float32Array(dim).fill(3);
    addGaussianNoise(v, 0.5, seededRng('add-noise'));
    let mean = 0;
    for (const x of v) mean += x;
    mean /= dim;
    let variance = 0;
    for (const x of v) variance += (x - 3) ** 2;
    variance /= dim;
    expect(Math.abs(mean - 3)).toBeLessThan((4.5 * 0.5) / Math.sqrt(dim));
    expect(Math.abs(variance / 0.25 - 1)).toBeLessThan(4.5 * Math.sqrt(2 / dim));
    expect(v[dim - 1]).not.toBe(3);
  });

  it('is reproducible with a seeded Rng and a no-op at σ = 0', () => {
    const a = addGaussianNoise(new Float64Array(9), 1, seededRng(7));
    const b = addGaussianNoise(new Float64Array(9), 1, seededRng(7));
    expect(a).toEqual(b);
    expect(Array.from(addGaussianNoise(new Float64Array([1, 2]), 0))).toEqual([1, 2]);
  });

  it('rejects a bad σ', () => {
    for (const s of [-1, NaN, Infinity]) expect(() => addGaussianNoise(new Float32Array(2), s)).toThrow(CohortError);
  });
});
