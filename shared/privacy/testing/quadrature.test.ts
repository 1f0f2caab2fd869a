import { FRACTIONAL } from './fractional-references.ts';
import { describe, expect, it } from 'vitest';
import { gaussKronrod15, integrate, logH, subsampledGaussianDivergence } from './quadrature.ts';

describe('Gauss–Kronrod 7–15 rule', () => {
  it('integrates x^k on [−1, 1] exactly for k ≤ 22 (the Kronrod degree), and its Gauss part for k ≤ 13', () => {
    for (let k = 0; k <= 22; k++) {
      const exact = k % 2 === 1 ? 0 : 2 / (k + 1);
      const p = gaussKronrod15((x) => x ** k, -1, 1);
      expect(Math.abs(p.kronrod - exact), `k=${k}`).toBeLessThan(4e-16);
      // The 7-point Gauss rule is exact up to degree 13, so the error estimate |K − G| vanishes there.
      if (k <= 13) expect(p.error, `k=${k}`).toBeLessThan(4e-16);
    }
  });

  it('adaptive integration of a peaked integrand meets its own error estimate', () => {
    const r = integrate((x) => Math.exp(-((x - 0.3) ** 2) / 2e-4), [-1, 0, 1]);
    const exact = Math.sqrt(2e-4 * Math.PI);
    expect(Math.abs(r.value - exact)).toBeLessThanOrEqual(Math.max(r.error, 1e-16 * exact));
    expect(r.error).toBeLessThan(1e-14 * exact);
  });
});

describe('h(w) = (1 + w)^α − 1 − αw in log space', () => {
  it('agrees with the direct formula where that has no cancellation, and with α(α−1)w²/2 near 0', () => {
    for (const a of [1.1, 1.6, 3.7, 64]) {
      for (const w of [-0.9, -0.6, 0.7, 3, 100]) {
        const direct = (1 + w) ** a - 1 - a * w;
        expect(Math.abs(Math.exp(logH(a, w, Math.log1p(w))) / direct - 1), `α=${a} w=${w}`).toBeLessThan(1e-12);
      }
      const w = 1e-9;
      expect(Math.abs(Math.exp(logH(a, w, Math.log1p(w))) / ((a * (a - 1) * w * w) / 2) - 1)).toBeLessThan(1e-7);
    }
  });
});

describe('quadrature of A_α and B_α', () => {
  it('reproduces the mpmath.quad references of rdp.test.ts (60 digits) to 1e-12 relative', () => {
    for (const [q, z, a, want] of FRACTIONAL) {
      const r = subsampledGaussianDivergence(q, z, a, 'A');
      expect(Math.abs(r.rdp / want - 1), `q=${q} z=${z} α=${a}`).toBeLessThan(1e-12);
      expect(r.rdpLow).toBeLessThanOrEqual(want * (1 + 1e-15));
      expect(r.rdpHigh).toBeGreaterThanOrEqual(want * (1 - 1e-15));
    }
  });

  it('agrees with 50-digit mpmath at tiny q, where A_α − 1 is far below the rounding unit of A_α', () => {
    // mpmath.quad at mp.dps = 50 of ∫ N(x; 0, z²)·[(1+u)^α − 1 − αu] dx, u = q(e^{(2x−1)/(2z²)} − 1),
    // then log1p(·)/(α − 1).
    const TINY: ReadonlyArray<readonly [number, number, number, number]> = [
      [1e-6, 1.5, 1.5, 4.1971748385562755e-13],
      [1e-8, 10, 1.5, 7.5376253127460026e-19],
      [1e-6, 10, 1.25, 6.2813543800999428e-15],
      [1e-4, 1, 1.9, 1.6323236404109719e-8],
      [1e-8, 0.8, 1.1, 2.0739030912381116e-16],
    ];
    for (const [q, z, a, want] of TINY) {
      const r = subsampledGaussianDivergence(q, z, a, 'A');
      expect(Math.abs(r.rdp / want - 1), `q=${q} z=${z} α=${a}`).toBeLessThan(1e-13);
    }
  });
});
