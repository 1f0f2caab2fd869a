import { describe, expect, it } from 'vitest';
import { CohortError } from '../errors.ts';
import { seededRng } from '../random.ts';
import {
  addDiscreteGaussianNoise,
  createDiscreteGaussianSampler,
  discreteGaussianNormalizer,
  discreteGaussianPmf,
  discreteGaussianVariance,
  sampleBernoulliExp,
  sampleDiscreteGaussian,
  sampleDiscreteLaplace,
} from './discrete-gaussian.ts';
import { isqrt, rational, rationalFromNumber, uniformBelow } from './rational.ts';
import { KS_CRITICAL_0_001, chiSquareDiscrete, chiSquarePValue, ksStatisticDiscrete } from './testing/goodness-of-fit.ts';

const ALPHA = 0.001;

function tally(values: Iterable<number>): Map<number, number> {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}

describe('exact rationals and uniform integers', () => {
  it('converts doubles exactly', () => {
    expect(rationalFromNumber(0.1)).toEqual({ num: 3602879701896397n, den: 2n ** 55n });
    expect(rationalFromNumber(100)).toEqual({ num: 100n, den: 1n });
    expect(rationalFromNumber(0.75)).toEqual({ num: 3n, den: 4n });
    expect(rationalFromNumber(2 ** 80)).toEqual({ num: 2n ** 80n, den: 1n });
    expect(rationalFromNumber(5e-324)).toEqual({ num: 1n, den: 2n ** 1074n });
    const rng = seededRng('rational');
    for (let i = 0; i < 1000; i++) {
      const x = rng.next() * 10 ** Math.floor(rng.next() * 20 - 10);
      const r = rationalFromNumber(x);
      expect(Number(r.num) / Number(r.den) === x || r.den > 2n ** 1000n).toBe(true);
    }
    expect(rational(6, 4)).toEqual({ num: 3n, den: 2n });
    expect(() => rational(1, 0)).toThrow(CohortError);
    expect(() => rationalFromNumber(-1)).toThrow(CohortError);
  });

  it('isqrt is the integer square root', () => {
    for (const n of [0n, 1n, 2n, 3n, 4n, 99n, 100n, 101n, 2n ** 106n - 1n, 2n ** 106n, 10n ** 40n + 7n]) {
      const r = isqrt(n);
      expect(r * r <= n && (r + 1n) * (r + 1n) > n).toBe(true);
    }
  });

  it('uniformBelow is uniform for small and multi-word bounds', () => {
    const rng = seededRng('uniform');
    const n = 60_000;
    const counts = new Array<number>(6).fill(0);
    for (let i = 0; i < n; i++) counts[Number(uniformBelow(rng, 6n))]++;
    const stat = counts.reduce((acc, o) => acc + (o - n / 6) ** 2 / (n / 6), 0);
    expect(chiSquarePValue(stat, 5)).toBeGreaterThan(ALPHA);
    // A bound just above 2^64: the top bit decides below/above 2^64.
    const big = 2n ** 64n + 2n ** 62n;
    let high = 0;
    for (let i = 0; i < 20_000; i++) if (uniformBelow(rng, big) >= 2n ** 64n) high++;
    expect(Math.abs(high / 20_000 - 0.2)).toBeLessThan(4.5 * Math.sqrt(0.16 / 20_000));
  });

  it('the χ² p-value helper matches published χ² quantiles', () => {
    // 0.999 quantiles of χ²(10) and χ²(80) (scipy.stats.chi2.ppf; standard tables give 29.588, 124.839).
    expect(chiSquarePValue(29.58829844507442, 10)).toBeCloseTo(0.001, 12);
    expect(chiSquarePValue(124.83922401576478, 80)).toBeCloseTo(0.001, 12);
  });
});

describe('CKS 2020 Algorithm 1: Bernoulli(exp(−γ))', () => {
  it('has probability exp(−γ) for rational γ below and above 1 (|z| < 4 at 50k trials)', () => {
    const rng = seededRng('bernoulli-exp');
    const n = 50_000;
    for (const [num, den] of [[0, 1], [1, 3], [1, 1], [5, 2], [7, 3], [10, 1]] as const) {
      const gamma = rational(num, den);
      let hits = 0;
      for (let i = 0; i < n; i++) if (sampleBernoulliExp(gamma, rng)) hits++;
      const p = Math.exp(-num / den);
      if (p === 1) {
        expect(hits).toBe(n);
        continue;
      }
      const z = (hits / n - p) / Math.sqrt((p * (1 - p)) / n);
      expect(Math.abs(z), `γ=${num}/${den}`).toBeLessThan(4);
    }
  });

  it('takes γ with a huge denominator (BigInt path)', () => {
    const rng = seededRng('bernoulli-big');
    const gamma = rational(2n ** 70n, 3n * 2n ** 70n + 1n); // ≈ 1/3
    let hits = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) if (sampleBernoulliExp(gamma, rng)) hits++;
    const p = Math.exp(-1 / 3);
    expect(Math.abs((hits / n - p) / Math.sqrt((p * (1 - p)) / n))).toBeLessThan(4);
  });
});

describe('CKS 2020 Algorithm 2: discrete Laplace', () => {
  it('matches P[Y = y] = (1 − e^{−s/t})/(1 + e^{−s/t})·e^{−|y|s/t} (χ², α = 0.001)', () => {
    const rng = seededRng('discrete-laplace');
    const n = 40_000;
    for (const [s, t] of [[1n, 3n], [2n, 5n], [3n, 1n]] as const) {
      const b = Number(s) / Number(t);
      const pmf = (y: number): number => (Math.tanh(b / 2) * Math.exp(-Math.abs(y) * b));
      const counts = new Map<number, number>();
      for (let i = 0; i < n; i++) {
        const y = Number(sampleDiscreteLaplace(s, t, rng));
        counts.set(y, (counts.get(y) ?? 0) + 1);
      }
      const chi = chiSquareDiscrete(counts, n, pmf);
      expect(chi.pValue, `s=${s} t=${t} χ²=${chi.stat} dof=${chi.dof}`).toBeGreaterThan(ALPHA);
    }
  });
});

describe('CKS 2020 Algorithm 3: discrete Gaussian', () => {
  const N = 200_000;

  for (const sigma2 of [1, 10, 100]) {
    describe(`σ² = ${sigma2}`, () => {
      const sampler = createDiscreteGaussianSampler(sigma2, seededRng(`discrete-gaussian-${sigma2}`));
      const values = new Int32Array(N);
      for (let i = 0; i < N; i++) values[i] = sampler.nextNumber();
      const counts = tally(values);
      const pmf = (x: number): number => discreteGaussianPmf(x, sigma2);
      const bound = Math.ceil(40 * Math.sqrt(sigma2));

      it('passes Kolmogorov–Smirnov against the exact CDF (α = 0.001)', () => {
        const cdfTable = new Map<number, number>();
        let acc = 0;
        for (let x = -bound; x <= bound; x++) {
          acc += pmf(x);
          cdfTable.set(x, acc);
        }
        const d = ksStatisticDiscrete(counts, N, (x) => cdfTable.get(x) ?? (x < 0 ? 0 : 1), -bound, bound);
        expect(Math.sqrt(N) * d).toBeLessThan(KS_CRITICAL_0_001);
      });

      it('passes Pearson χ² against the exact pmf (α = 0.001)', () => {
        const chi = chiSquareDiscrete(counts, N, pmf);
        expect(chi.pValue, `χ²=${chi.stat} dof=${chi.dof}`).toBeGreaterThan(ALPHA);
      });

      it('has sample variance within 2% of the exact variance, and mean ≈ 0', () => {
        let mean = 0;
        for (const v of values) mean += v;
        mean /= N;
        let second = 0;
        for (const v of values) second += v * v;
        const variance = second / N;
        const exact = discreteGaussianVariance(sigma2);
        expect(Math.abs(variance / exact - 1)).toBeLessThan(0.02);
        expect(Math.abs(mean)).toBeLessThan((4.5 * Math.sqrt(exact)) / Math.sqrt(N));
      });
    });
  }

  it('χ² has power: samples at σ² = 10 are rejected as σ² = 11', () => {
    const sampler = createDiscreteGaussianSampler(10, seededRng('power'));
    const counts = tally(Array.from({ length: 100_000 }, () => sampler.nextNumber()));
    expect(chiSquareDiscrete(counts, 100_000, (x) => discreteGaussianPmf(x, 11)).pValue).toBeLessThan(ALPHA);
  });

  it('takes σ² as an exact rational or as the exact value of a double (BigInt path)', () => {
    // 0.1 as a double has denominator 2^55: the sampler runs on BigInt, and must agree with σ² = 1/10
    // in distribution (the two σ² differ by 5.5e-18).
    const n = 20_000;
    for (const s2 of [rational(1, 10), 0.1, rational(21, 2)]) {
      const sampler = createDiscreteGaussianSampler(s2, seededRng('rational-sigma'));
      const counts = tally(Array.from({ length: n }, () => Number(sampler.next())));
      const value = Number(sampler.sigmaSquared.num) / Number(sampler.sigmaSquared.den);
      expect(chiSquareDiscrete(counts, n, (x) => discreteGaussianPmf(x, value)).pValue).toBeGreaterThan(ALPHA);
    }
  });

  it('is reproducible with a seeded source; σ² = 0 gives 0; bad σ² is refused', () => {
    const a = Array.from({ length: 20 }, ((s) => () => s.next())(createDiscreteGaussianSampler(5, seededRng(1))));
    const b = Array.from({ length: 20 }, ((s) => () => s.next())(createDiscreteGaussianSampler(5, seededRng(1))));
    expect(a).toEqual(b);
    expect(sampleDiscreteGaussian(0)).toBe(0n);
    expect(typeof sampleDiscreteGaussian(4)).toBe('bigint');
    expect(() => sampleDiscreteGaussian(-1)).toThrow(CohortError);
    expect(() => sampleDiscreteGaussian(NaN)).toThrow(CohortError);
  });

  it('adds integer noise to Int32Array and Float64Array vectors, refusing int32 overflow', () => {
    const v = addDiscreteGaussianNoise(new Int32Array(1000).fill(7), 4, seededRng('add'));
    expect(v.some((x) => x !== 7)).toBe(true);
    const f = addDiscreteGaussianNoise(new Float64Array(1000).fill(0.5), 4, seededRng('add'));
    for (let i = 0; i < 1000; i++) expect(f[i] - 0.5).toBe(v[i] - 7); // same seed, same noise
    expect(() => addDiscreteGaussianNoise(new Int32Array(64).fill(0x7fffffff), 100, seededRng('overflow'))).toThrow(/int32/);
  });

  it('pmf helpers: normalised, variance just below σ²', () => {
    for (const s2 of [0.25, 1, 10, 100, 1e4]) {
      const z = discreteGaussianNormalizer(s2);
      let total = 0;
      const bound = Math.ceil(40 * Math.sqrt(s2));
      for (let x = -bound; x <= bound; x++) total += Math.exp((-x * x) / (2 * s2));
      expect(Math.abs(total / z - 1)).toBeLessThan(1e-12);
      expect(discreteGaussianPmf(0, s2)).toBe(1 / z);
      const variance = discreteGaussianVariance(s2);
      expect(variance).toBeLessThanOrEqual(s2 * (1 + 1e-12)); // CKS 2020: Var[N_Z(0, σ²)] < σ²
      if (s2 >= 1) expect(Math.abs(variance / s2 - 1)).toBeLessThan(1e-6);
    }
  });
});
