import { describe, expect, it } from 'vitest';
import { DEFAULT_ORDERS, rdpOfEvent } from './accountant.ts';
import { logBinomialBelow, shortDrawProbability, epsilonWithShortDraws } from './conditioning.ts';
import { deltaFromRdp, epsilonFromRdp } from './conversion.ts';
import { gaussianEvent, poissonSampledEvent, selfComposedEvent } from './events.ts';

/** P(Bin(n, q) < m) by the plain sum, for small n. */
function direct(n: number, q: number, m: number): number {
  let total = 0;
  let binom = 1;
  for (let k = 0; k < m && k <= n; k++) {
    if (k > 0) binom = (binom * (n - k + 1)) / k;
    total += binom * q ** k * (1 - q) ** (n - k);
  }
  return total;
}

describe('Poisson draws conditioned on a minimum cohort', () => {
  it('computes the binomial lower tail exactly', () => {
    for (const [n, q, m] of [
      [10, 0.3, 3],
      [20, 0.05, 1],
      [50, 0.5, 25],
      [99, 0.1, 10],
      [5, 0.9, 6],
    ] as const) {
      expect(Math.exp(logBinomialBelow(n, q, m))).toBeCloseTo(direct(n, q, m), 14);
    }
    expect(logBinomialBelow(10, 0.5, 0)).toBe(-Infinity);
    expect(logBinomialBelow(10, 0.5, 11)).toBe(0);
    expect(logBinomialBelow(10, 1, 10)).toBe(-Infinity);
    // Deep tails stay finite in log space where the plain sum underflows.
    expect(logBinomialBelow(100_000, 0.1, 10)).toBeLessThan(-10_000);
    expect(Number.isFinite(logBinomialBelow(100_000, 0.1, 10))).toBe(true);
  });

  it('reproduces the inclusion rates of the conditioned draw quoted in the issue (1.216·q and 1.229·q)', () => {
    // P(x ∈ S | |S| ≥ m) = q · P(Bin(N−1, q) ≥ m−1) / P(Bin(N, q) ≥ m).
    const rate = (N: number, q: number, m: number) =>
      (q * (1 - Math.exp(logBinomialBelow(N - 1, q, m - 1)))) / (1 - Math.exp(logBinomialBelow(N, q, m)));
    expect(rate(100, 0.1, 10) / 0.1).toBeCloseTo(1.216, 3);
    expect(rate(1000, 0.01, 10) / 0.01).toBeCloseTo(1.229, 3);
  });

  it('evaluates the short-draw probability at the smaller neighbour (population − 1)', () => {
    expect(shortDrawProbability(100, 0.1, 10)).toBeCloseTo(direct(99, 0.1, 10), 14);
    expect(shortDrawProbability(100, 0.1, 10)).toBeGreaterThan(0.4);
    expect(shortDrawProbability(1000, 0.1, 10)).toBeLessThan(1e-25);
    expect(shortDrawProbability(1, 0.5, 1)).toBe(1); // a lone client's neighbour has nobody to draw
  });

  const curve = (q: number, z: number, steps: number) =>
    rdpOfEvent(selfComposedEvent(poissonSampledEvent(q, gaussianEvent(z)), steps), DEFAULT_ORDERS);

  it('adds nothing without short draws and never less than the unconditioned ε', () => {
    const rdp = curve(0.1, 1, 100);
    const plain = epsilonFromRdp(DEFAULT_ORDERS, rdp, 1e-5);
    expect(epsilonWithShortDraws(DEFAULT_ORDERS, rdp, 1e-5, 0)).toEqual(plain);
    let previous = plain.epsilon;
    for (const mass of [1e-30, 1e-14, 1e-12, 1e-10, 1e-9]) {
      const r = epsilonWithShortDraws(DEFAULT_ORDERS, rdp, 1e-5, mass);
      expect(r.epsilon).toBeGreaterThanOrEqual(previous);
      // The returned ε meets the bound: δ_U(ε) + (1 + e^ε)·P ≤ δ.
      const used = deltaFromRdp(DEFAULT_ORDERS, rdp, r.epsilon).delta + (1 + Math.exp(r.epsilon)) * mass;
      expect(used).toBeLessThanOrEqual(1e-5 * (1 + 1e-9));
      previous = r.epsilon;
    }
    // 1e-30 is invisible; 1e-9 is not (it is multiplied by e^ε ≈ 2,700 here); 1e-6 cannot be absorbed
    // at all, since (1 + e^ε)·1e-6 ≤ 1e-5 needs ε < 2.2 and 100 rounds already cost 7.9.
    expect(epsilonWithShortDraws(DEFAULT_ORDERS, rdp, 1e-5, 1e-30).epsilon).toBeCloseTo(plain.epsilon, 9);
    expect(epsilonWithShortDraws(DEFAULT_ORDERS, rdp, 1e-5, 1e-9).epsilon).toBeGreaterThan(plain.epsilon + 0.01);
    expect(epsilonWithShortDraws(DEFAULT_ORDERS, rdp, 1e-5, 1e-6).epsilon).toBe(Infinity);
  });

  it('has no finite ε when the redraws are as likely as in the issue (N = 100, q = 0.1, minClients 10)', () => {
    const p = shortDrawProbability(100, 0.1, 10);
    const r = epsilonWithShortDraws(DEFAULT_ORDERS, curve(0.1, 1, 1), 1e-5, p);
    expect(r.epsilon).toBe(Infinity);
  });
});
