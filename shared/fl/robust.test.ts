import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WeightedSum } from './aggregate.ts';
import {
  AggregatorConfigSchema,
  bulyan,
  coordinateMedian,
  minUpdatesFor,
  multiKrum,
  robustAggregate,
  robustMemoryBytes,
  trimmedMean,
  type RobustAggregatorConfig,
} from './robust.ts';

const v = (...xs: number[]) => Float32Array.from(xs);
const list = (rows: number[][]) => rows.map((r) => Float32Array.from(r));
const arr = (x: Float32Array) => Array.from(x);

describe('coordinate-wise median (Yin et al. 2018, Def. 1)', () => {
  it('odd n: the middle value of each coordinate', () => {
    // coordinate 0: {1, 3, 2} → 2; coordinate 1: {5, −1, 10} → 5
    expect(arr(coordinateMedian(list([[1, 5], [3, -1], [2, 10]])))).toEqual([2, 5]);
  });
  it('even n, with ties: the mean of the two middle values', () => {
    // coordinate 0: 1, 4, 4, 9 → (4 + 4)/2 = 4; coordinate 1: 0, 0, 2, 7 → (0 + 2)/2 = 1
    expect(arr(coordinateMedian(list([[1, 0], [4, 0], [4, 2], [9, 7]])))).toEqual([4, 1]);
  });
  it('one update is its own median', () => {
    expect(arr(coordinateMedian(list([[3, -2]])))).toEqual([3, -2]);
  });
});

describe('coordinate-wise trimmed mean (Yin et al. 2018, Def. 2)', () => {
  it('drops ⌊βn⌋ from each end of each coordinate', () => {
    // n = 5, β = 0.2: k = 1. coordinate 0: −100 | 1 2 3 | 100 → 2; coordinate 1: 0 | 0 0 0 | 50 → 0
    expect(arr(trimmedMean(list([[-100, 0], [1, 0], [2, 0], [3, 50], [100, 0]]), 0.2))).toEqual([2, 0]);
  });
  it('even n: β = 0.3 trims one each end, β = 0.24 trims none (⌊0.96⌋ = 0)', () => {
    const xs = list([[1], [2], [3], [10]]);
    expect(arr(trimmedMean(xs, 0.3))).toEqual([2.5]);
    expect(arr(trimmedMean(xs, 0.24))).toEqual([4]);
  });
  it('ties at the cut: equal values are interchangeable', () => {
    // 5, 5, 5, 7 with k = 1: 5 | 5 5 | 7 → 5
    expect(arr(trimmedMean(list([[5], [7], [5], [5]]), 0.25))).toEqual([5]);
  });
  it('β must be in [0, ½)', () => {
    expect(() => trimmedMean(list([[1]]), 0.5)).toThrow(expect.objectContaining({ code: 'BAD_CONFIG' }));
  });
});

describe('Krum and Multi-Krum (Blanchard et al. 2017)', () => {
  // f = 1 at its bound: n = 2f + 3 = 5, so each score sums n − f − 2 = 2 squared distances.
  // values 0, 1, 2, 3, 100. scores: 0 → 1 + 4 = 5; 1 → 1 + 1 = 2; 2 → 1 + 1 = 2; 3 → 1 + 4 = 5; 100 → 97² + 98².
  const xs = list([[0], [1], [2], [3], [100]]);
  it('f at its bound, with a tie in scores: the earlier update wins', () => {
    expect(arr(multiKrum(xs, 1))).toEqual([1]);
  });
  it('Multi-Krum: the mean of the m lowest scores (ties in arrival order)', () => {
    expect(arr(multiKrum(xs, 1, 2))).toEqual([1.5]); // updates 1 and 2
    expect(arr(multiKrum(xs, 1, 3))).toEqual([1]); // 1, 2 and then 0 (score 5, before 3)
  });
  it('refuses f beyond its bound (n < 2f + 3)', () => {
    expect(() => multiKrum(xs, 2)).toThrow(expect.objectContaining({ code: 'TOO_FEW_UPDATES' }));
  });
  it('in several dimensions: picks the update closest to its neighbours', () => {
    // (0,0), (1,0), (0,1), (10,10), (1,1) with f = 1, 2 neighbours:
    // (0,0): 1, 1 → 2; (1,0): 1, 1 → 2; (0,1): 1, 1 → 2; (1,1): 1, 1 → 2; (10,10): 162 + 181 → 343. All tie → first.
    expect(arr(multiKrum(list([[10, 10], [0, 0], [1, 0], [0, 1], [1, 1]]), 1))).toEqual([0, 0]);
  });
});

describe('Bulyan (El Mhamdi et al. 2018, Algorithm 1)', () => {
  it('f at its bound (n = 4f + 3 = 7): θ = 5 chosen by repeated Krum, then the β = 3 closest to their median', () => {
    // Worked by hand (see robust.ts): repeated Krum chooses 2, 3, 1, 4, 0 (never 1000); median 2;
    // the 3 values closest to it: 2, then 1 (tie with 3: the smaller), then 3 → mean 2.
    expect(arr(bulyan(list([[0], [1], [2], [3], [4], [5], [1000]]), 1))).toEqual([2]);
  });
  it('f = 0 is the mean', () => {
    expect(arr(bulyan(list([[1, 0], [2, 3], [6, 3]]), 0))).toEqual([3, 2]);
  });
  it('refuses n < 4f + 3', () => {
    expect(() => bulyan(list([[0], [1], [2], [3], [4], [5]]), 1)).toThrow(expect.objectContaining({ code: 'TOO_FEW_UPDATES' }));
  });
});

describe('every rule', () => {
  const honest = (i: number) => v(0.1 + 0.01 * i, -0.2 + 0.01 * i, 0.05);
  const rules: RobustAggregatorConfig[] = [
    AggregatorConfigSchema.parse({ name: 'median' }) as RobustAggregatorConfig,
    AggregatorConfigSchema.parse({ name: 'trimmed-mean', beta: 0.2 }) as RobustAggregatorConfig,
    AggregatorConfigSchema.parse({ name: 'krum', f: 1 }) as RobustAggregatorConfig,
    AggregatorConfigSchema.parse({ name: 'krum', f: 1, m: 3 }) as RobustAggregatorConfig,
    AggregatorConfigSchema.parse({ name: 'bulyan', f: 1 }) as RobustAggregatorConfig,
  ];

  it.each(rules.map((r) => [JSON.stringify(r), r] as const))('%s resists one huge (finite) update among 7', (_, rule) => {
    const updates = [honest(0), v(1e12, -1e12, 3.4e38), honest(1), honest(2), honest(3), honest(4), honest(5)];
    const out = robustAggregate(updates, rule);
    for (let j = 0; j < 3; j++) {
      const col = updates.filter((_, i) => i !== 1).map((u) => u[j]);
      expect(out[j]).toBeGreaterThanOrEqual(Math.min(...col) - 1e-7);
      expect(out[j]).toBeLessThanOrEqual(Math.max(...col) + 1e-7);
    }
  });

  it('property: when every update is the same vector, every rule (and the mean) returns it', () => {
    const update = fc.integer({ min: 1, max: 6 }).chain((d) => fc.float32Array({ minLength: d, maxLength: d, noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }));
    fc.assert(
      fc.property(update, fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 4 }), fc.double({ min: 0, max: 0.49, noNaN: true }), (u, f, extra, beta) => {
        const n = 4 * f + 3 + extra;
        const updates = Array.from({ length: n }, () => Float32Array.from(u));
        const expected = arr(Float32Array.from(u, (x) => x + 0)); // −0 and +0 both count as u
        const sum = new WeightedSum(u.length);
        for (const x of updates) sum.add(x, 1 + extra);
        const outs = [
          coordinateMedian(updates),
          trimmedMean(updates, beta),
          multiKrum(updates, f),
          multiKrum(updates, f, 1 + extra),
          bulyan(updates, f),
          sum.mean(),
        ];
        for (const out of outs) expect(arr(out).map((x) => x + 0)).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });

  it('states its bound and memory', () => {
    expect(minUpdatesFor({ name: 'krum', f: 2, m: 1, maxCohort: 100 })).toBe(7);
    expect(minUpdatesFor({ name: 'krum', f: 0, m: 9, maxCohort: 100 })).toBe(9);
    expect(minUpdatesFor({ name: 'bulyan', f: 2, maxCohort: 100 })).toBe(11);
    // 10 updates of 1,000 float32 (40,000 B) + scratch (80 B) + the output (4,000 B), + distances (800 B) for Krum
    expect(robustMemoryBytes({ name: 'median', maxCohort: 100 }, 10, 1000)).toBe(44_080);
    expect(robustMemoryBytes({ name: 'krum', f: 1, m: 1, maxCohort: 100 }, 10, 1000)).toBe(44_880);
    expect(AggregatorConfigSchema.safeParse({ name: 'median', maxCohort: 1001 }).success).toBe(false);
  });
});
