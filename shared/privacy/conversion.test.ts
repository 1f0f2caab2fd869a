import { describe, expect, it } from 'vitest';
import { CohortError } from '../errors.ts';
import { deltaFromRdp, epsilonAtOrder, epsilonFromRdp } from './conversion.ts';
import { rdpGaussian } from './rdp.ts';

const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);
const range = (from: number, toExclusive: number): number[] => Array.from({ length: toExclusive - from }, (_, i) => from + i);

describe('improved conversion: published values', () => {
  it('constant RDP 1.1 on orders 2..32 at δ = 1e-5 gives ε = 1.32783806176 at order 32, and back', () => {
    // google/differential-privacy, python/dp_accounting/dp_accounting/rdp/rdp_privacy_accountant_test.py,
    // test_compute_epsilon_delta_pure_dp (also tensorflow_privacy/privacy/analysis/rdp_accountant_test.py,
    // test_get_privacy_spent_check_target_delta / _eps).
    const orders = range(2, 33);
    const rdp = orders.map(() => 1.1);
    const { epsilon, order } = epsilonFromRdp(orders, rdp, 1e-5);
    expect(rel(epsilon, 1.32783806176)).toBeLessThan(1e-11);
    expect(order).toBe(32);
    const back = deltaFromRdp(orders, rdp, 1.32783806176);
    expect(rel(back.delta, 1e-5)).toBeLessThan(1e-9);
    expect(back.order).toBe(32);
  });

  it('the Gaussian with z = 4.530877117 is (1, 1e-6)-DP over orders 1.000 … 99.999', () => {
    // Same file, test_compute_epsilon_delta_gaussian: orders [0.001·i for i in 1000..99999], q = 1,
    // z = 4.530877117, "noise multiplier is chosen to obtain exactly (1,1e-6)-DP"; assertAlmostEqual (7 places).
    const orders = range(1000, 100000).map((i) => 0.001 * i);
    const rdp = rdpGaussian(4.530877117, orders);
    expect(Math.abs(epsilonFromRdp(orders, rdp, 1e-6).epsilon - 1)).toBeLessThan(5e-8);
    expect(Math.abs(deltaFromRdp(orders, rdp, 1).delta - 1e-6)).toBeLessThan(5e-8);
  });
});

describe('conversion properties', () => {
  it('classic is Mironov 2017 Proposition 3 and never beats the improved bound', () => {
    const orders = [1.5, 2, 4, 8, 16, 32, 64];
    const rdp = rdpGaussian(1.3, orders);
    const classic = epsilonFromRdp(orders, rdp, 1e-5, 'classic');
    let best = Infinity;
    for (let i = 0; i < orders.length; i++) best = Math.min(best, rdp[i] + Math.log(1e5) / (orders[i] - 1));
    expect(classic.epsilon).toBe(best);
    expect(epsilonFromRdp(orders, rdp, 1e-5, 'improved').epsilon).toBeLessThan(classic.epsilon);
  });

  it('ε and δ conversions are inverse at the optimum', () => {
    const orders = range(2, 50);
    const rdp = rdpGaussian(2, orders).map((r) => 30 * r);
    for (const conversion of ['classic', 'improved'] as const) {
      for (const delta of [1e-3, 1e-5, 1e-9]) {
        const { epsilon } = epsilonFromRdp(orders, rdp, delta, conversion);
        expect(rel(deltaFromRdp(orders, rdp, epsilon, conversion).delta, delta)).toBeLessThan(1e-9);
      }
    }
  });

  it('edge cases: zero curve → ε 0; infinite curve → ε ∞; order ≤ 1.01 unusable for improved', () => {
    expect(epsilonFromRdp([2, 3], [0, 0], 1e-5).epsilon).toBe(0);
    const inf = epsilonFromRdp([2, 3], [Infinity, Infinity], 1e-5);
    expect(inf.epsilon).toBe(Infinity);
    expect(inf.order).toBeNaN();
    expect(epsilonAtOrder(1.005, 1, 1e-5, 'improved')).toBe(Infinity);
    // KL shortcut: r so small that δ ≥ sqrt(1 − e^{−r}) already.
    expect(epsilonAtOrder(2, 1e-12, 1e-5, 'improved')).toBe(0);
  });

  it('rejects malformed input', () => {
    expect(() => epsilonFromRdp([2], [1, 2], 1e-5)).toThrow(CohortError);
    expect(() => epsilonFromRdp([2], [1], 0)).toThrow(CohortError);
    expect(() => epsilonFromRdp([2], [1], 1)).toThrow(CohortError);
    expect(() => epsilonFromRdp([0.5], [1], 1e-5)).toThrow(CohortError);
    expect(() => deltaFromRdp([2], [1], -1)).toThrow(CohortError);
  });
});
