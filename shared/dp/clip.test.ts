import { describe, expect, it } from 'vitest';
import { CohortError } from '../errors.ts';
import { seededRng } from '../random.ts';
import { clipL2InPlace, l2Norm } from './clip.ts';

describe('l2Norm', () => {
  it('accumulates in float64', () => {
    expect(l2Norm(new Float32Array(1 << 20).fill(1))).toBe(1024);
    // 1e6 squares of 0.1: a float32 accumulator is off by ~1e-3 relative; float64 by ~1e-11.
    const v = new Float32Array(1_000_000).fill(0.1);
    const exact = Math.sqrt(1_000_000) * Math.fround(0.1);
    expect(Math.abs(l2Norm(v) - exact) / exact).toBeLessThan(1e-10);
    let single = Math.fround(0);
    for (let i = 0; i < v.length; i++) single = Math.fround(single + Math.fround(v[i] * v[i]));
    expect(Math.abs(Math.sqrt(single) - exact) / exact).toBeGreaterThan(1e-5);
    expect(l2Norm(new Float64Array([3, 4]))).toBe(5);
    expect(l2Norm(new Float32Array(0))).toBe(0);
  });
});

describe('clipL2InPlace', () => {
  it('leaves updates within the bound untouched', () => {
    const v = new Float32Array([0.3, -0.4]);
    const r = clipL2InPlace(v, 0.6);
    expect(r).toEqual({ norm: Math.hypot(Math.fround(0.3), Math.fround(0.4)), scale: 1, clipped: false });
    expect(Array.from(v)).toEqual([Math.fround(0.3), Math.fround(-0.4)]);
    const zero = new Float32Array(10);
    expect(clipL2InPlace(zero, 1).clipped).toBe(false);
  });

  it('clips exactly: C·(1 − 2^-20) ≤ ‖v‖ ≤ C afterwards, for many sizes, scales and bounds', () => {
    const rng = seededRng('clip-exactness');
    for (const dim of [1, 2, 3, 17, 1000, 65_537, 400_000]) {
      for (const [spread, clipNorm] of [[1, 0.1], [1e3, 1], [1e-3, 1e-5], [50, 7.3]] as const) {
        const v = Float32Array.from({ length: dim }, () => spread * (2 * rng.next() - 1));
        const before = l2Norm(v);
        const direction = Float64Array.from(v, (x) => x / before);
        const r = clipL2InPlace(v, clipNorm);
        const after = l2Norm(v);
        expect(r.clipped).toBe(true);
        expect(r.norm).toBe(before);
        expect(after, `dim=${dim} C=${clipNorm}`).toBeLessThanOrEqual(clipNorm);
        expect(after).toBeGreaterThanOrEqual(clipNorm * (1 - 2 ** -20));
        expect(Math.abs(r.scale * before - clipNorm) / clipNorm).toBeLessThan(2 ** -20);
        // direction preserved (to float32 rounding)
        let cos = 0;
        for (let i = 0; i < dim; i++) cos += (v[i] / after) * direction[i];
        expect(cos).toBeGreaterThan(1 - 1e-6);
      }
    }
  });

  it('clips float64 vectors too', () => {
    const v = new Float64Array([30, 40]);
    const r = clipL2InPlace(v, 5);
    expect(r.clipped).toBe(true);
    expect(l2Norm(v)).toBeLessThanOrEqual(5);
    expect(l2Norm(v)).toBeGreaterThan(5 * (1 - 2 ** -20));
  });

  it('refuses non-finite updates and bad bounds', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const v = new Float32Array([1, bad]);
      expect(() => clipL2InPlace(v, 1)).toThrow(CohortError);
    }
    for (const c of [0, -1, NaN, Infinity]) expect(() => clipL2InPlace(new Float32Array(2), c)).toThrow(/clip norm/);
  });
});
