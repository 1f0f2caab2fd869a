import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { QFedAvgSum } from './qfedavg.ts';

const v = (...xs: number[]) => Float32Array.from(xs);

/** Li et al. 2020, Algorithm 2, as printed: w^{t+1} − w^t = −Σ Δ_k / Σ h_k, Δw_k = L(w^t − w̄_k) = −L δ_k. */
function paperStep(deltas: Float32Array[], losses: number[], q: number, L: number): number[] {
  const d = deltas[0].length;
  const sumDelta = new Array<number>(d).fill(0);
  let sumH = 0;
  deltas.forEach((delta, k) => {
    const F = losses[k];
    const dw = Array.from(delta, (x) => -L * x);
    const norm2 = dw.reduce((s, x) => s + x * x, 0);
    dw.forEach((x, j) => (sumDelta[j] += F ** q * x));
    sumH += q * F ** (q - 1) * norm2 + L * F ** q;
  });
  return sumDelta.map((x) => -x / sumH);
}

describe('q-FedAvg (Li et al. 2020, Algorithm 2)', () => {
  it('by hand: q = 1, L = 2, δ_A = (1, 0) with F = 2, δ_B = (0, 2) with F = 1', () => {
    // Δ_A = 2·(−2, 0), h_A = 1·1·4 + 2·2 = 8; Δ_B = 1·(0, −4), h_B = 1·1·16 + 2·1 = 18 → −(−4, −4)/26 = (2/13, 2/13)
    const s = new QFedAvgSum(2, 1, 2);
    s.add(v(1, 0), 2);
    s.add(v(0, 2), 1);
    const step = s.step();
    expect(step[0]).toBeCloseTo(2 / 13, 7);
    expect(step[1]).toBeCloseTo(2 / 13, 7);
  });

  it('q = 0 is the unweighted mean of the updates', () => {
    const s = new QFedAvgSum(2, 0, 10);
    s.add(v(1, 3), 0.5);
    s.add(v(3, -1), 9);
    expect(Array.from(s.step())).toEqual([2, 1]);
  });

  it('larger q puts more weight on the client with the larger loss', () => {
    const stepFor = (q: number) => {
      const s = new QFedAvgSum(1, q, 1);
      s.add(v(0.1), 0.2); // low loss, pulls towards +0.1
      s.add(v(-0.1), 2); // high loss, pulls towards −0.1
      return s.step()[0];
    };
    expect(stepFor(0)).toBeCloseTo(0, 7);
    expect(stepFor(1)).toBeLessThan(0);
    expect(stepFor(5)).toBeLessThan(stepFor(1));
  });

  it('property: equals the paper’s formula, in any arrival order (the running rescaling is exact)', () => {
    const client = fc.record({
      delta: fc.float32Array({ minLength: 3, maxLength: 3, noNaN: true, noDefaultInfinity: true, min: -1, max: 1 }),
      loss: fc.double({ min: 0.01, max: 20, noNaN: true }),
    });
    fc.assert(
      fc.property(fc.array(client, { minLength: 1, maxLength: 8 }), fc.double({ min: 0, max: 5, noNaN: true }), fc.double({ min: 0.1, max: 100, noNaN: true }), (clients, q, L) => {
        const expected = paperStep(clients.map((c) => c.delta), clients.map((c) => c.loss), q, L);
        for (const order of [clients, [...clients].reverse()]) {
          const s = new QFedAvgSum(3, q, L);
          for (const c of order) s.add(c.delta, c.loss);
          const step = s.step();
          for (let j = 0; j < 3; j++) expect(step[j]).toBeCloseTo(expected[j], 5);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('absurd but finite inputs give a finite step: a zero loss, a huge loss at q = 10, huge updates', () => {
    const s = new QFedAvgSum(2, 10, 1e6);
    s.add(v(0.01, 0.01), 0); // F floored: F^{q−1} stays finite
    s.add(v(1e6, -1e6), 1e6); // (10⁶)¹⁰ = 10⁶⁰: relative weights, no overflow
    s.add(v(3e38, 3e38), 1e-300);
    const step = s.step();
    expect(step.every(Number.isFinite)).toBe(true);
    // A convex combination shrunk by the denominator: never beyond the largest update.
    for (const x of step) expect(Math.abs(x)).toBeLessThanOrEqual(3e38);
  });

  it('refuses an empty round and bad parameters', () => {
    expect(() => new QFedAvgSum(2, 1, 1).step()).toThrow(expect.objectContaining({ code: 'EMPTY' }));
    expect(() => new QFedAvgSum(2, -1, 1)).toThrow(expect.objectContaining({ code: 'BAD_CONFIG' }));
    expect(() => new QFedAvgSum(2, 1, 0)).toThrow(expect.objectContaining({ code: 'BAD_CONFIG' }));
    expect(() => new QFedAvgSum(2, 1, 1).add(v(1), 1)).toThrow(expect.objectContaining({ code: 'WRONG_LENGTH' }));
  });
});
