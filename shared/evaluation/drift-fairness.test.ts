import { describe, expect, it } from 'vitest';
import { accuracyDistribution, equalisedOdds, fairnessReport, type GroupTally } from './fairness.ts';
import { addSketches, addToSketch, bandMeans, driftScores, emptySketch, featureBin, jsDivergence, psi } from './drift.ts';
import { emptyStats, type EvalStats } from './stats.ts';

describe('PSI and Jensen–Shannon divergence: hand-computed values', () => {
  it('PSI([50, 50], [80, 20]) = 0.3·ln 1.6 + 0.3·ln 2.5', () => {
    expect(psi([50, 50], [80, 20])).toBeCloseTo(0.3 * Math.log(1.6) + 0.3 * Math.log(2.5), 12);
    expect(psi([50, 50], [80, 20])).toBeCloseTo(0.4158883, 6);
  });
  it('PSI of identical distributions is 0; an empty bin is smoothed to ε = 1e-4', () => {
    expect(psi([1, 2, 3], [2, 4, 6])).toBe(0);
    // r = (1, 0) → (1, 1e-4); c = (0.5, 0.5): 0.5·ln 0.5 + (0.5 − 1e-4)·ln(0.5 / 1e-4)
    expect(psi([10, 0], [5, 5])).toBeCloseTo(-0.5 * Math.log(0.5) + (0.5 - 1e-4) * Math.log(0.5 / 1e-4), 10);
  });
  it('JS([.5, .5], [1, 0]) = 0.311278 bits; identical 0, disjoint 1', () => {
    expect(jsDivergence([1, 1], [1, 0])).toBeCloseTo(0.5 * (0.5 * Math.log2(2 / 3) + 0.5) + 0.5 * Math.log2(4 / 3), 12);
    expect(jsDivergence([1, 1], [1, 0])).toBeCloseTo(0.311278, 6);
    expect(jsDivergence([3, 1], [6, 2])).toBe(0);
    expect(jsDivergence([1, 0], [0, 1])).toBeCloseTo(1, 12);
  });
  it('refuses histograms of different sizes or empty ones', () => {
    expect(() => psi([1], [1, 2])).toThrow(RangeError);
    expect(() => jsDivergence([0, 0], [1, 1])).toThrow(/empty/);
  });
});

describe('drift sketches', () => {
  const b = { features: 2, bins: 4, lo: 0, hi: 1 };
  it('fixed bins, out-of-range values in the end bins', () => {
    expect([-1, 0, 0.1, 0.25, 0.5, 0.99, 1, 7, NaN].map((x) => featureBin(x, b))).toEqual([0, 0, 0, 1, 2, 3, 3, 3, 0]);
  });
  it('sketches add, and a shifted window scores above an unshifted one', () => {
    const ref = addToSketch(emptySketch(2, b), [0.1, 0.9, 0.2, 0.8, 0.15, 0.85, 0.1, 0.9], [0, 1, 0, 1], b);
    const same = addSketches(emptySketch(2, b), ref);
    expect(same).toEqual(ref);
    const shifted = addToSketch(emptySketch(2, b), [0.9, 0.1, 0.8, 0.2, 0.85, 0.15, 0.9, 0.1], [1, 1, 1, 0], b);
    const s0 = driftScores(ref, same);
    const s1 = driftScores(ref, shifted);
    expect(s0.maxPsi).toBe(0);
    expect(s1.labelPsi).toBeCloseTo(psi([2, 2], [1, 3]), 12);
    expect(s1.maxPsi).toBeGreaterThan(1);
    expect(s1.maxPsiOn).toMatch(/feature/);
  });
  it('band means of an image row', () => {
    expect([...bandMeans([1, 1, 3, 3, 0, 0, 2, 2], 4, 2)]).toEqual([1, 3, 0, 2]);
  });
});

function stats(K: number, confusion: number[]): EvalStats {
  const s = emptyStats(K);
  s.confusion = confusion;
  s.count = confusion.reduce((a, b) => a + b, 0);
  return s;
}

describe('fairness from summed statistics', () => {
  it('per-group metrics, accuracy gap, equalised-odds difference, small groups suppressed with the reason', () => {
    const groups = new Map<string, GroupTally>([
      ['region=eu', { stats: stats(2, [40, 10, 5, 45]), clients: 3 }], // acc 0.85, TPR0 0.8, TPR1 0.9
      ['region=us', { stats: stats(2, [30, 20, 10, 40]), clients: 4 }], // acc 0.7, TPR0 0.6, TPR1 0.8
      ['region=apac', { stats: stats(2, [3, 0, 0, 2]), clients: 1 }],
    ]);
    const r = fairnessReport(groups, 20);
    expect(r.groups.map((g) => g.group)).toEqual(['region=apac', 'region=eu', 'region=us']);
    expect(r.groups[0].suppressed).toBe('5 examples, below evaluation.minGroupCount 20');
    expect(r.groups[0].metrics).toBeUndefined();
    expect(r.groups[1].metrics!.accuracy).toBe(0.85);
    expect(r.accuracyGap).toBeCloseTo(0.15, 12);
    // class 0: TPR 0.8 vs 0.6 (0.2); FPR = 1 − TPR1: 0.1 vs 0.2 (0.1). class 1 mirrors: max 0.2.
    expect(r.equalisedOddsDifference).toBeCloseTo(0.2, 12);
    expect(equalisedOdds([stats(2, [1, 0, 0, 1]), stats(2, [1, 0, 0, 1])])).toBe(0);
  });
  it('one reported group has no gap', () => {
    const r = fairnessReport(new Map([['g=a', { stats: stats(2, [5, 0, 0, 5]), clients: 1 }]]), 1);
    expect(r.accuracyGap).toBeNull();
  });
  it('accuracy across clients: mean, variance, worst decile (mean of the lowest ⌈n/10⌉)', () => {
    const accs = [0.9, 0.8, 0.7, 0.6, 0.5, 0.95, 0.85, 0.75, 0.65, 0.55, 0.1, 0.2];
    const d = accuracyDistribution(accs)!;
    expect(d.worstDecile).toBeCloseTo((0.1 + 0.2) / 2, 12);
    const mean = accs.reduce((a, b) => a + b) / accs.length;
    expect(d.mean).toBeCloseTo(mean, 12);
    expect(d.variance).toBeCloseTo(accs.reduce((a, x) => a + (x - mean) ** 2, 0) / accs.length, 12);
    expect(accuracyDistribution([])).toBeUndefined();
  });
});
