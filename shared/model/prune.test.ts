/**
 * Magnitude pruning (Han et al. 2015) on the Zhu & Gupta 2017 schedule: the schedule's published shape
 * (0 before the start, s_f from the end, cubic in between), exact per-kernel sparsity with the smallest
 * magnitudes removed, biases and other layers untouched.
 */
import { describe, expect, it } from 'vitest';
import { seededRng } from '../random.ts';
import { kernelSparsity, pruneByMagnitude, sparsityAt } from './prune.ts';
import type { WeightManifest } from './weights.ts';

describe('sparsityAt', () => {
  it('is 0 before startRound, the target from endRound, and rises as 1 − (1 − p)³ between', () => {
    const s = { sparsity: 0.8, startRound: 3, endRound: 6 };
    expect([1, 2].map((r) => sparsityAt(s, r))).toEqual([0, 0]);
    expect([6, 7, 100].map((r) => sparsityAt(s, r))).toEqual([0.8, 0.8, 0.8]);
    expect(sparsityAt(s, 3)).toBeCloseTo(0.8 * (1 - 0.75 ** 3), 12);
    expect(sparsityAt(s, 5)).toBeCloseTo(0.8 * (1 - 0.25 ** 3), 12);
  });
});

describe('pruneByMagnitude', () => {
  const manifest: WeightManifest = [
    { name: 'a/kernel', shape: [10, 10] },
    { name: 'a/bias', shape: [10] },
    { name: 'b/kernel', shape: [10, 3] },
  ];
  const values = () => {
    const rng = seededRng(5);
    return Float32Array.from({ length: 100 + 10 + 30 }, () => 2 * rng.next() - 1);
  };

  it('zeroes exactly ⌊s·n⌋ of each kernel, the smallest magnitudes, and no bias', () => {
    const w = values();
    const before = w.slice();
    const { zeros, size } = pruneByMagnitude(w, manifest, 0.7);
    expect([zeros, size]).toEqual([70 + 21, 130]);
    expect(w.subarray(100, 110)).toEqual(before.subarray(100, 110));
    const kept = Array.from(w.subarray(0, 100)).filter((v) => v !== 0).map(Math.abs);
    const removed = Array.from(before.subarray(0, 100)).filter((_, i) => w[i] === 0).map(Math.abs);
    expect(Math.min(...kept)).toBeGreaterThanOrEqual(Math.max(...removed));
    expect(kernelSparsity(w, manifest)).toBeCloseTo(91 / 130, 12);
  });

  it('prunes only the layers named', () => {
    const w = values();
    const before = w.slice();
    pruneByMagnitude(w, manifest, 0.5, new Set(['b']));
    expect(w.subarray(0, 110)).toEqual(before.subarray(0, 110));
    expect(Array.from(w.subarray(110)).filter((v) => v === 0)).toHaveLength(15);
    expect(() => pruneByMagnitude(w, manifest, 1)).toThrow(RangeError);
  });
});
