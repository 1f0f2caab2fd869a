import { describe, expect, it } from 'vitest';
import { CohortError } from '../errors.ts';
import { DEFAULT_ORDERS } from './accountant.ts';
import { logAFractional, poissonSubsampledGaussianRdp, rdpGaussian, rdpPoissonSubsampledGaussian } from './rdp.ts';

const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

/**
 * |actual − published| ≤ half a unit in the last digit the source printed: the tightest comparison
 * the published number supports.
 */
function expectPrinted(actual: number, printed: string, label: string): void {
  const value = Number(printed);
  const [mantissa, exp = '0'] = printed.toLowerCase().split('e');
  const decimals = mantissa.includes('.') ? mantissa.split('.')[1].length : 0;
  const halfUlp = 0.5 * 10 ** (Number(exp) - decimals);
  expect(Math.abs(actual - value), `${label}: ${actual} vs published ${printed}`).toBeLessThanOrEqual(halfUlp * (1 + 1e-12));
}

describe('published RDP values of the Poisson-subsampled Gaussian', () => {
  // google/differential-privacy, python/dp_accounting/dp_accounting/rdp/rdp_privacy_accountant_test.py,
  // test_compute_rdp_poisson_sampled_gaussian: q = 0.01, z = 2.5, 50 steps,
  // orders [1.5, 2.5, 5, 50, 100, inf] -> [6.70579741e-04, 1.08548710e-03, 2.18075656e-03,
  // 2.38460375e-02, 1.67416308e02, inf] (the source checks rtol 1e-4).
  const orders = [1.5, 2.5, 5, 50, 100, Infinity];

  it('dp_accounting, integer orders: to half a unit of the 9 printed digits (≤ 3e-9 relative)', () => {
    const rdp = rdpPoissonSubsampledGaussian(0.01, 2.5, orders).map((r) => 50 * r);
    expectPrinted(rdp[2], '2.18075656e-03', 'order 5');
    expectPrinted(rdp[3], '2.38460375e-02', 'order 50');
    expectPrinted(rdp[4], '1.67416308e02', 'order 100');
    expect(rdp[5]).toBe(Infinity);
  });

  it("dp_accounting, fractional orders: reproduced by the 'absolute' series (its upper bound)", () => {
    const rdp = rdpPoissonSubsampledGaussian(0.01, 2.5, orders, { fractionalSeries: 'absolute' }).map((r) => 50 * r);
    expectPrinted(rdp[0], '6.70579741e-04', 'order 1.5');
    expectPrinted(rdp[1], '1.08548710e-03', 'order 2.5');
  });

  it("TF-Privacy (signed series): the exact series reproduces it, and lies below dp_accounting's bound", () => {
    // tensorflow/privacy, tensorflow_privacy/privacy/analysis/rdp_accountant_test.py, test_compute_rdp_sequence:
    // compute_rdp(0.01, 2.5, 50, [1.5, 2.5, 5, 50, 100, inf]) ≈ [0.00065, 0.001085, 0.00218075, 0.023846,
    // 167.416307, inf] with delta=1e-5.
    const exact = rdpPoissonSubsampledGaussian(0.01, 2.5, orders).map((r) => 50 * r);
    const published = [0.00065, 0.001085, 0.00218075, 0.023846, 167.416307];
    for (let i = 0; i < published.length; i++) expect(Math.abs(exact[i] - published[i])).toBeLessThan(1e-5);
    const bound = rdpPoissonSubsampledGaussian(0.01, 2.5, orders, { fractionalSeries: 'absolute' });
    expect(50 * bound[0]).toBeGreaterThan(exact[0] * 1.03); // the |terms| bound is 3% loose at α = 1.5
  });

  it('TF-Privacy scalar and degenerate cases', () => {
    // tensorflow_privacy/privacy/analysis/rdp_accountant_test.py: test_compute_rdp_scalar
    // (compute_rdp(0.1, 2, 10, 5) ≈ 0.07737, places=5), test_compute_rdp_no_data (q = 0 -> 0),
    // test_compute_rdp_no_sampling (compute_rdp(1, 10, 1, 20) == 0.1).
    expect(Math.abs(10 * poissonSubsampledGaussianRdp(0.1, 2, 5) - 0.07737)).toBeLessThan(5e-6);
    expect(poissonSubsampledGaussianRdp(0, 10, 20)).toBe(0);
    expect(poissonSubsampledGaussianRdp(1, 10, 20)).toBe(0.1);
  });
});

describe('RDP against independent high-precision references', () => {
  // log(A_α)/(α − 1) with A_α = Σ_k C(α,k)(1−q)^{α−k} q^k exp((k²−k)/(2z²)) summed in mpmath at 60 digits.
  const INTEGER: ReadonlyArray<readonly [number, number, number, number]> = [
    [0.01, 2.5, 5, 0.000043615131246157614865],
    [0.01, 2.5, 50, 0.00047692075077412336115],
    [1e-6, 1, 2, 1.7182818284575689891e-12],
    [1e-6, 1, 64, 17.965195623655340593],
    [1e-6, 0.5, 1024, 2034.1709845441296025],
    [0.5, 0.7, 32, 31.937554457460174954],
    [0.99, 0.1, 256, 12799.98991025106472],
    [0.001, 5, 1024, 13.565492272064802923],
    [0.2, 1.3, 2, 0.031773306642079357539],
    [1e-4, 0.8, 128, 90.717137262890146534],
    [0.04, 1.5, 12, 0.007765560381084014557],
    [0.0025, 1.3, 19, 0.000050377266148628812024],
  ];
  // log(A_α)/(α − 1) with A_α = ∫ N(x; 0, z²)(1 − q + q e^{(2x−1)/(2z²)})^α dx by mpmath.quad at 60 digits.
  const FRACTIONAL: ReadonlyArray<readonly [number, number, number, number]> = [
    [0.01, 1.1, 1.5, 0.000095545285718748317959],
    [0.1, 1, 1.1, 0.0080985684680738377999],
    [0.4, 12, 58.5, 0.036031114312815308669],
    [1e-3, 0.7, 3.7, 0.000012879310760646126661],
    [0.05, 2, 10.9, 0.0044835821985611210256],
    [0.04, 1.5, 3.9, 0.0018332021995838585679],
    [1e-5, 0.1, 1.25, 5.9575608855150553387],
    [0.3, 0.5, 2.5, 3.0070916955360951253],
  ];

  it('integer orders agree to 1e-12 relative (acceptance bar: 1e-9)', () => {
    for (const [q, z, a, want] of INTEGER) {
      expect(rel(poissonSubsampledGaussianRdp(q, z, a), want), `q=${q} z=${z} α=${a}`).toBeLessThan(1e-12);
    }
  });

  it('fractional orders (exact signed series) agree with quadrature to 1e-9 relative', () => {
    for (const [q, z, a, want] of FRACTIONAL) {
      expect(rel(poissonSubsampledGaussianRdp(q, z, a), want), `q=${q} z=${z} α=${a}`).toBeLessThan(1e-9);
    }
  });

  it("the 'absolute' series is never below the exact one (up to its e^-30 truncation)", () => {
    for (const [q, z, a] of FRACTIONAL) {
      const exact = logAFractional(q, z, a, 'exact');
      expect(logAFractional(q, z, a, 'absolute')).toBeGreaterThanOrEqual(exact - 1e-13 * Math.max(1, exact));
    }
  });
});

describe('RDP properties', () => {
  it('q = 1 is the Gaussian α/(2z²); z = 0 is +∞; q = 0 is 0; α = ∞ is +∞', () => {
    const g = rdpGaussian(1.7, DEFAULT_ORDERS);
    const p = rdpPoissonSubsampledGaussian(1, 1.7, DEFAULT_ORDERS);
    for (let i = 0; i < g.length; i++) expect(p[i]).toBe(DEFAULT_ORDERS[i] / (2 * 1.7 * 1.7));
    expect(g).toEqual(p);
    expect(Array.from(rdpPoissonSubsampledGaussian(0.1, 0, [2, 2.5]))).toEqual([Infinity, Infinity]);
    expect(Array.from(rdpPoissonSubsampledGaussian(0, 0, [2, 2.5]))).toEqual([0, 0]);
    expect(poissonSubsampledGaussianRdp(0.1, 1, Infinity)).toBe(Infinity);
  });

  it('q → 1 approaches the Gaussian from below', () => {
    for (const a of [2, 3.5, 10, 64]) {
      const gaussian = a / (2 * 1.3 * 1.3);
      const near = poissonSubsampledGaussianRdp(1 - 1e-9, 1.3, a);
      expect(near).toBeLessThanOrEqual(gaussian * (1 + 1e-12));
      expect(rel(near, gaussian)).toBeLessThan(1e-6);
    }
  });

  it('is non-decreasing in q and in α, non-increasing in z', () => {
    const qs = [1e-6, 1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5, 0.9, 1];
    const zs = [0.3, 0.6, 0.9, 1.2, 2, 5, 20];
    for (const z of [0.5, 1.1, 3]) {
      let prev = new Float64Array(DEFAULT_ORDERS.length);
      for (const q of qs) {
        const cur = rdpPoissonSubsampledGaussian(q, z, DEFAULT_ORDERS);
        for (let i = 0; i < cur.length; i++) {
          expect(cur[i], `q=${q} z=${z} α=${DEFAULT_ORDERS[i]}`).toBeGreaterThanOrEqual(prev[i] * (1 - 1e-9));
          if (i > 0) expect(cur[i], `α monotone q=${q} z=${z}`).toBeGreaterThanOrEqual(cur[i - 1] * (1 - 1e-9));
        }
        prev = cur;
      }
    }
    for (const q of [1e-3, 0.05]) {
      let prev = new Float64Array(DEFAULT_ORDERS.length).fill(Infinity);
      for (const z of zs) {
        const cur = rdpPoissonSubsampledGaussian(q, z, DEFAULT_ORDERS);
        for (let i = 0; i < cur.length; i++) expect(cur[i]).toBeLessThanOrEqual(prev[i] * (1 + 1e-9));
        prev = cur;
      }
    }
  });

  it('is finite and non-negative at q = 1e-6, α = 1024 and 1e6 steps', () => {
    for (const z of [0.3, 0.8, 1, 5, 100]) {
      const rdp = rdpPoissonSubsampledGaussian(1e-6, z, DEFAULT_ORDERS);
      for (let i = 0; i < rdp.length; i++) {
        const total = 1e6 * rdp[i];
        expect(Number.isFinite(total) && total >= 0, `z=${z} α=${DEFAULT_ORDERS[i]}: ${total}`).toBe(true);
      }
    }
    // Tiny q keeps full relative precision at integer orders (A − 1 is summed, not A):
    // RDP(2) = log(1 + q²(e^{1/z²} − 1)) ≈ q²(e − 1) for z = 1.
    expect(rel(poissonSubsampledGaussianRdp(1e-6, 1, 2), 1e-12 * Math.expm1(1))).toBeLessThan(1e-9);
  });

  it('rejects bad parameters with CohortError BAD_PRIVACY_PARAMETER', () => {
    for (const bad of [() => rdpPoissonSubsampledGaussian(1.1, 1, [2]), () => rdpPoissonSubsampledGaussian(-0.1, 1, [2]),
      () => rdpPoissonSubsampledGaussian(0.1, -1, [2]), () => rdpPoissonSubsampledGaussian(0.1, NaN, [2]),
      () => rdpPoissonSubsampledGaussian(0.1, 1, [0.5]), () => rdpPoissonSubsampledGaussian(0.1, 1, [])]) {
      expect(bad).toThrow(CohortError);
      try {
        bad();
      } catch (e) {
        expect((e as CohortError).code).toBe('BAD_PRIVACY_PARAMETER');
      }
    }
  });
});
