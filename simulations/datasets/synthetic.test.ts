import { describe, expect, it } from 'vitest';
import { labelSkew } from './partition.ts';
import { SYNTHETIC_FEATURES, SyntheticPopulation, syntheticFedProx } from './synthetic.ts';

describe('Synthetic(α, β)', () => {
  it('is deterministic, covers every row once, and respects the size law bounds', () => {
    const a = syntheticFedProx({ alpha: 1, beta: 1, clients: 30, seed: 4, maxSize: 400 });
    const b = syntheticFedProx({ alpha: 1, beta: 1, clients: 30, seed: 4, maxSize: 400 });
    expect(a.data.labels).toEqual(b.data.labels);
    expect(a.data.features).toEqual(b.data.features);
    expect(a.data.features.length).toBe(a.data.size * SYNTHETIC_FEATURES);
    const sizes = a.partition.map((p) => p.length);
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(50);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(400);
    expect(sizes.reduce((x, y) => x + y, 0)).toBe(a.data.size);
    expect(a.data.features.every(Number.isFinite)).toBe(true);
  });

  it("beta spreads the clients' feature distributions apart", () => {
    // Variance across clients of the client's mean feature value: ≈ 1/60 + noise at β = 0
    // (v_k entries ~ N(0, 1)), ≈ β at β > 0 (they share the offset B_k ~ N(0, β)).
    const spread = (beta: number) => {
      const { data, partition } = syntheticFedProx({ alpha: 0, beta, clients: 40, seed: 8, maxSize: 300 });
      const means = partition.map((idx) => {
        let sum = 0;
        for (const r of idx) for (let j = 0; j < SYNTHETIC_FEATURES; j++) sum += data.features[r * SYNTHETIC_FEATURES + j];
        return sum / (idx.length * SYNTHETIC_FEATURES);
      });
      const mu = means.reduce((a, b) => a + b, 0) / means.length;
      return means.reduce((a, m) => a + (m - mu) ** 2, 0) / means.length;
    };
    expect(spread(0)).toBeLessThan(0.1);
    expect(spread(4)).toBeGreaterThan(1);
  });

  it('labels are skewed per client (each client has its own W_k)', () => {
    const { data, partition } = syntheticFedProx({ alpha: 1, beta: 1, clients: 30, seed: 2, maxSize: 300 });
    expect(labelSkew(partition, data.labels, 10).meanTotalVariation).toBeGreaterThan(0.3);
  });
});

describe('SyntheticPopulation (clients on demand)', () => {
  it('client k on demand equals client k of the whole population, bit for bit, in any order', () => {
    const opts = { alpha: 1, beta: 1, clients: 25, seed: 9, maxSize: 300 };
    const whole = syntheticFedProx(opts);
    const population = new SyntheticPopulation(opts);
    for (const k of [24, 3, 0, 17, 3]) {
      const c = population.client(k);
      const rows = whole.partition[k];
      expect(population.sizeOf(k)).toBe(rows.length);
      expect(c.size).toBe(rows.length);
      expect(c.labels).toEqual(whole.data.labels.slice(rows[0], rows[0] + rows.length));
      expect(c.features).toEqual(whole.data.features.slice(rows[0] * SYNTHETIC_FEATURES, (rows[0] + rows.length) * SYNTHETIC_FEATURES));
    }
  });

  it('a population of a million costs nothing until a client is asked for, and its clients differ', () => {
    const population = new SyntheticPopulation({ alpha: 1, beta: 1, clients: 1_000_000, seed: 1 });
    const a = population.client(999_999);
    const b = population.client(123_456);
    expect(a.size).toBeGreaterThanOrEqual(50);
    expect(a.features.slice(0, 60)).not.toEqual(b.features.slice(0, 60));
    expect(() => population.client(1_000_000)).toThrow(/no client/);
  });
});
