import { describe, expect, it } from 'vitest';
import { seededRng } from '../../shared/random.ts';
import { dirichletPartition, iidPartition, labelSkew, sampleGamma, shardPartition, type Partition } from './partition.ts';

/** 10 classes × 100 examples, labels in blocks. */
const LABELS = Int32Array.from({ length: 1000 }, (_, i) => Math.floor(i / 100));

function expectExactCover(p: Partition, size: number): void {
  const seen = new Uint8Array(size);
  for (const idx of p) for (const i of idx) seen[i]++;
  expect(seen.every((c) => c === 1)).toBe(true);
}

describe('partitioners', () => {
  it('IID: exact cover, near-equal sizes, label mix close to global, deterministic', () => {
    const p = iidPartition(1000, 7, 3);
    expectExactCover(p, 1000);
    const sizes = p.map((x) => x.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    expect(labelSkew(p, LABELS, 10).meanTotalVariation).toBeLessThan(0.2);
    expect(iidPartition(1000, 7, 3)).toEqual(p);
    expect(iidPartition(1000, 7, 4)).not.toEqual(p);
  });

  it('label shards: every client has at most 2 labels and the same number of examples', () => {
    const p = shardPartition(LABELS, 50, 1); // 100 shards of 10 examples: each shard is a single label
    expectExactCover(p, 1000);
    const skew = labelSkew(p, LABELS, 10);
    expect(p.every((x) => x.length === 20)).toBe(true);
    for (const counts of skew.counts) expect(counts.filter((c) => c > 0).length).toBeLessThanOrEqual(2);
    expect(skew.meanClassesPerClient).toBeGreaterThan(1.5); // mostly two distinct labels
    expect(skew.meanTotalVariation).toBeGreaterThan(0.75);
    expect(shardPartition(LABELS, 50, 1)).toEqual(p);
  });

  it('Dirichlet: exact cover; skew falls as alpha grows', () => {
    const tv = (alpha: number) => {
      const p = dirichletPartition(LABELS, 10, 20, alpha, 5);
      expectExactCover(p, 1000);
      return labelSkew(p, LABELS, 10).meanTotalVariation;
    };
    const [small, mid, large] = [0.05, 1, 100].map(tv);
    expect(small).toBeGreaterThan(0.6);
    expect(small).toBeGreaterThan(mid);
    expect(mid).toBeGreaterThan(large);
    expect(large).toBeLessThan(0.25);
    expect(dirichletPartition(LABELS, 10, 20, 0.5, 9)).toEqual(dirichletPartition(LABELS, 10, 20, 0.5, 9));
  });

  it('Dirichlet: respects minSize or says what to change', () => {
    const p = dirichletPartition(LABELS, 10, 10, 0.3, 2, { minSize: 20 });
    expect(p.every((x) => x.length >= 20)).toBe(true);
    expect(() => dirichletPartition(LABELS, 10, 500, 0.01, 2, { minSize: 2, maxAttempts: 3 })).toThrow(/larger alpha/);
  });

  it('Gamma sampler has the right mean and variance (shape 0.5 and 3)', () => {
    const rng = seededRng(11);
    for (const shape of [0.5, 3]) {
      const n = 40_000;
      let sum = 0;
      let sumSq = 0;
      for (let i = 0; i < n; i++) {
        const x = sampleGamma(shape, rng);
        sum += x;
        sumSq += x * x;
      }
      const mean = sum / n;
      const variance = sumSq / n - mean * mean;
      // Gamma(k, 1): mean k, variance k. Standard error of the mean is sqrt(k/n) ~ 0.005-0.009.
      expect(Math.abs(mean - shape)).toBeLessThan(5 * Math.sqrt(shape / n));
      expect(Math.abs(variance - shape) / shape).toBeLessThan(0.06);
    }
  });

  it('rejects impossible requests with a clear message', () => {
    expect(() => iidPartition(10, 11, 1)).toThrow(/\[1, 10\]/);
    expect(() => shardPartition(LABELS, 600, 1)).toThrow(/exceed/);
    expect(() => dirichletPartition(LABELS, 10, 5, 0, 1)).toThrow(/alpha/);
  });
});
