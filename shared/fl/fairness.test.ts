import { describe, expect, it } from 'vitest';
import { clientFairness } from './fairness.ts';

describe('clientFairness', () => {
  it('by hand: 10 clients → the worst one; mean and population variance', () => {
    // mean 0.75; deviations ±0.05 (8 clients), −0.35, +0.15 … computed below
    const acc = [0.4, 0.7, 0.7, 0.8, 0.8, 0.8, 0.8, 0.9, 0.9, 0.7];
    const f = clientFairness(acc);
    expect(f.clients).toBe(10);
    expect(f.mean).toBeCloseTo(0.75, 12);
    expect(f.worstDecile).toBeCloseTo(0.4, 12);
    // Σ(a − 0.75)² = 0.1225 + 3·0.0025 + 4·0.0025 + 2·0.0225 = 0.1225 + 0.0075 + 0.01 + 0.045 = 0.185
    expect(f.variance).toBeCloseTo(0.0185, 12);
  });

  it('11 clients: the worst ⌈11/10⌉ = 2 are averaged; equal accuracies have no variance', () => {
    const f = clientFairness([0.9, 0.1, 0.9, 0.3, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]);
    expect(f.worstDecile).toBeCloseTo(0.2, 12);
    expect(clientFairness([0.5, 0.5, 0.5]).variance).toBe(0);
  });

  it('refuses no clients and impossible accuracies', () => {
    expect(() => clientFairness([])).toThrow(expect.objectContaining({ code: 'EMPTY' }));
    expect(() => clientFairness([1.5])).toThrow(expect.objectContaining({ code: 'OUT_OF_RANGE' }));
  });
});
