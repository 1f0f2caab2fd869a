import { describe, expect, it } from 'vitest';
import { seededRng } from '../random.ts';
import { WeightedSum, isAllFinite, l2Norm } from './aggregate.ts';
import { codeOf } from '../testing/errors.ts';


describe('WeightedSum', () => {
  it('mean equals the example-weighted mean computed naively in float64', () => {
    const rng = seededRng('weighted-sum');
    const dim = 257;
    const n = 60;
    const vectors: Float32Array[] = [];
    const weights: number[] = [];
    const agg = new WeightedSum(dim);
    for (let k = 0; k < n; k++) {
      const v = Float32Array.from({ length: dim }, () => rng.next() * 2 - 1);
      const weight = 1 + Math.floor(rng.next() * 500); // examples per client
      vectors.push(v);
      weights.push(weight);
      agg.add(v, weight);
    }
    const total = weights.reduce((a, b) => a + b, 0);
    expect(agg.count).toBe(n);
    expect(agg.totalWeight).toBe(total);

    const mean = agg.mean();
    expect(mean).toBeInstanceOf(Float32Array);
    for (let i = 0; i < dim; i++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += weights[k] * vectors[k][i];
      expect(Math.abs(mean[i] - s / total)).toBeLessThan(1e-7);
    }
  });

  it('does not retain added vectors (a reused buffer is fine)', () => {
    const agg = new WeightedSum(2);
    const buf = Float32Array.of(1, 2);
    agg.add(buf, 1);
    buf.set([3, 6]);
    agg.add(buf, 3);
    buf.fill(1000);
    // (1·[1, 2] + 3·[3, 6]) / 4 = [10/4, 20/4]
    expect(Array.from(agg.mean())).toEqual([2.5, 5]);
  });

  it('rejects wrong lengths and bad weights without changing the sum', () => {
    const agg = new WeightedSum(3);
    agg.add(Float32Array.of(1, 1, 1), 2);
    expect(codeOf(() => agg.add(Float32Array.of(1, 2), 1))).toBe('WRONG_LENGTH');
    expect(codeOf(() => agg.add(Float32Array.of(1, 2, 3, 4), 1))).toBe('WRONG_LENGTH');
    expect(codeOf(() => agg.add(Float32Array.of(1, 2, 3), Number.NaN))).toBe('NON_FINITE');
    expect(codeOf(() => agg.add(Float32Array.of(1, 2, 3), Number.POSITIVE_INFINITY))).toBe('NON_FINITE');
    expect(codeOf(() => agg.add(Float32Array.of(1, 2, 3), -1))).toBe('BAD_WEIGHT');
    expect(agg.count).toBe(1);
    expect(agg.totalWeight).toBe(2);
    expect(Array.from(agg.mean())).toEqual([1, 1, 1]);
  });

  it('mean of nothing throws; reset empties', () => {
    const agg = new WeightedSum(2);
    expect(codeOf(() => agg.mean())).toBe('EMPTY');
    agg.add(Float32Array.of(4, 4), 1);
    agg.reset();
    expect(agg.count).toBe(0);
    expect(agg.totalWeight).toBe(0);
    expect(codeOf(() => agg.mean())).toBe('EMPTY');
    agg.add(Float32Array.of(1, -1), 5);
    expect(Array.from(agg.mean())).toEqual([1, -1]);
  });

  it('scaled() divides by a fixed denominator', () => {
    const agg = new WeightedSum(2);
    agg.add(Float32Array.of(2, 4), 1);
    expect(Array.from(agg.scaled(1 / 4))).toEqual([0.5, 1]);
  });

  it('rejects a bad dimension', () => {
    expect(codeOf(() => new WeightedSum(0))).toBe('BAD_DIM');
    expect(codeOf(() => new WeightedSum(2.5))).toBe('BAD_DIM');
  });
});

describe('vector helpers', () => {
  it('isAllFinite', () => {
    expect(isAllFinite(Float32Array.of(0, -1, 3.4e38))).toBe(true);
    expect(isAllFinite(new Float32Array(0))).toBe(true);
    expect(isAllFinite(Float32Array.of(0, Number.NaN))).toBe(false);
    expect(isAllFinite(Float32Array.of(Number.NEGATIVE_INFINITY, 0))).toBe(false);
  });

  it('l2Norm', () => {
    expect(l2Norm(Float32Array.of(3, -4))).toBe(5);
    expect(l2Norm(new Float32Array(5))).toBe(0);
    // float32 max squared overflows float32 but not the float64 accumulator
    const big = Math.fround(3e38);
    expect(l2Norm(Float32Array.of(big, big)) / (Math.SQRT2 * big)).toBeCloseTo(1, 12);
  });
});
