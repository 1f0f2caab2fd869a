import { describe, expect, it } from 'vitest';
import { CohortError } from '../errors.ts';
import { roundedNormBound } from '../secagg/encoding/encode.ts';
import { DEFAULT_ORDERS, INTEGER_ORDERS, RdpAccountant, rdpOfEvent } from './accountant.ts';
import { epsilonFromRdp } from './conversion.ts';
import {
  DDGAUSS_ORDERS,
  ddgaussEpsilon,
  ddgaussEventFor,
  ddgaussRdpFunction,
  ddgaussTau,
  effectiveL1Sensitivity,
  rdpDistributedDiscreteGaussian,
} from './ddgauss.ts';
import {
  DpEventSchema,
  composedEvent,
  distributedDiscreteGaussianEvent,
  gaussianEvent,
  poissonSampledEvent,
  sampledWithoutReplacementEvent,
  selfComposedEvent,
} from './events.ts';
import { rdpGaussian, rdpPoissonSubsampledGaussian } from './rdp.ts';

const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

/**
 * Expected values: google-research/federated distributed_dp/accounting_utils.py (`ddgauss_epsilon`,
 * `compute_rdp_dgaussian`, `_compute_rdp_subsampled`; RDP_ORDERS = 2…128, 256) with tensorflow_privacy's
 * `get_privacy_spent` (the improved conversion), evaluated in float64. The reference ships no test of
 * its own for these functions; the first two rows are the settings of KLS21's experiments (γ = 0.01,
 * σ = 0.1, n = 100, d = 1024, clip 1, β = e^{−1/2}, δ = 1e-5).
 */
const REFERENCE_ORDERS = [...Array.from({ length: 127 }, (_, i) => i + 2), 256];
const BETA = Math.exp(-0.5);
const REFERENCE: Array<{
  gamma: number;
  localStddev: number;
  clients: number;
  l2Sensitivity: number;
  beta: number;
  dimension: number;
  q: number;
  steps: number;
  delta: number;
  epsilon: number;
  order: number;
}> = [
  { gamma: 0.01, localStddev: 0.1, clients: 100, l2Sensitivity: 1, beta: BETA, dimension: 1024, q: 1, steps: 1, delta: 1e-5, epsilon: 4.845728336819823, order: 5 },
  { gamma: 0.01, localStddev: 0.1, clients: 100, l2Sensitivity: 1, beta: BETA, dimension: 1024, q: 0.01, steps: 1000, delta: 1e-5, epsilon: 2.567307781320251, order: 7 },
  { gamma: 0.01, localStddev: 0.1, clients: 100, l2Sensitivity: 1, beta: BETA, dimension: 1024, q: 0.001, steps: 10000, delta: 1e-6, epsilon: 1.066851889523903, order: 12 },
  // τ > 0 (σ of a few integer steps or less).
  { gamma: 1, localStddev: 0.6, clients: 5, l2Sensitivity: 3, beta: BETA, dimension: 16, q: 1, steps: 1, delta: 1e-5, epsilon: 27.10428781454182, order: 3 },
  { gamma: 1, localStddev: 0.6, clients: 5, l2Sensitivity: 3, beta: BETA, dimension: 16, q: 0.1, steps: 10, delta: 1e-5, epsilon: 137.1009228729021, order: 2 },
  { gamma: 1, localStddev: 1, clients: 20, l2Sensitivity: 4, beta: 0, dimension: 64, q: 1, steps: 1, delta: 1e-6, epsilon: 16.787835868979947, order: 3 },
  { gamma: 1, localStddev: 1, clients: 20, l2Sensitivity: 4, beta: 0, dimension: 64, q: 0.05, steps: 100, delta: 1e-6, epsilon: 161.16419330195308, order: 2 },
];

/** The same reference, per order, for integer-domain events given directly (Δ₂, Δ₁, σ, n, d). */
const CURVE_ORDERS = [2, 3, 5, 8, 16, 32, 64, 128, 256];
const CURVES: Array<{ l2: number; l1: number; sigma: number; n: number; d: number; tau: number; byQ: Record<string, number[]> }> = [
  {
    l2: 5, l1: 9, sigma: 0.8, n: 4, d: 16, tau: 0.02102890829703541,
    byQ: {
      '1': [10.00927565808829, 14.984900032752567, 24.750525032752567, 39.39896253275256, 78.46146253275256, 156.58646253275256, 312.8364625327526, 625.3364625327525, 1250.3364625327526],
      '0.01': [1.170335135984418, 8.626451020309139, 19.268715372434478, 34.292855504290195, 73.62252182027648, 151.86817757588318, 308.1756326976007, 620.7036816546596, 1245.717541139324],
      '0.3': [7.601784751531937, 13.728246973099688, 23.52021209951217, 38.1799382261898, 77.25046569404942, 155.3790910021151, 311.63081733928925, 624.1316601180671, 1249.1320765499338],
    },
  },
  {
    l2: 12, l1: 40, sigma: 1, n: 20, d: 64, tau: 0.0005445600381254544,
    byQ: {
      '1': [7.209760365025275, 10.814640547537913, 18.024400912563188, 28.83485184244003, 57.63485184244003, 115.23485184244004, 230.43485184244003, 460.83485184244006, 921.6348518424401],
      '0.01': [0.12677080050144074, 4.456285796592066, 12.542591252282076, 23.72874481397766, 52.79591112996393, 110.51656688557065, 225.77402200728812, 456.2020709643471, 917.0159304490115],
      '0.3': [4.809262444665103, 9.5579881250562, 16.794087979323663, 27.615827535877262, 56.423855003736904, 114.02748031180255, 229.22920664897669, 459.6300494277546, 920.4304658596213],
    },
  },
  {
    l2: 5, l1: 25, sigma: 0.7, n: 10, d: 1024, tau: 0.11792820305148437,
    byQ: {
      '1': [22.00659794288829, 33.00989691433244, 55.01649485722073, 88.02639177155316, 161.57480645533224, 202.3911329859445, 284.023786047169, 447.289092169618, 773.819704414516],
      '0.01': [12.796260341755083, 26.651447779684354, 49.53468519690264, 82.92028474309082, 156.73586574285613, 197.67284802907508, 279.36295621201714, 442.65631129152507, 769.2007830210874],
    },
  },
];

const kls21 = { gamma: 0.01, localStddev: 0.1, clients: 100, l2Sensitivity: 1, beta: BETA, dimension: 1024, delta: 1e-5 };

describe('ddgaussEpsilon reproduces KLS21’s released accounting', () => {
  it('matches ddgauss_epsilon (ε to 1e-11 relative, the same order)', () => {
    for (const r of REFERENCE) {
      const { epsilon, order } = ddgaussEpsilon({ ...r, orders: REFERENCE_ORDERS });
      expect(rel(epsilon, r.epsilon)).toBeLessThan(1e-11);
      expect(order).toBe(r.order);
      // 2…256 gives the same answer here (the optimum is far below 128).
      expect(ddgaussEpsilon(r).epsilon).toBe(epsilon);
    }
  });

  it('q = 1: 4.845728 at order 5; q = 0.01, 1,000 steps: 2.567 at order 7', () => {
    const full = ddgaussEpsilon({ ...kls21, q: 1, steps: 1 });
    expect(full.epsilon.toFixed(6)).toBe('4.845728');
    expect(full.order).toBe(5);
    const sampled = ddgaussEpsilon({ ...kls21, q: 0.01, steps: 1000 });
    expect(sampled.epsilon.toFixed(3)).toBe('2.567');
    expect(sampled.order).toBe(7);
  });

  it('inflates Δ₂ with the encoding’s own rounded-norm bound and uses σ/γ, Δ₂·min(√d, Δ₂)', () => {
    const event = ddgaussEventFor({ ...kls21, q: 1, steps: 1 });
    expect(event.l2Sensitivity).toBe(roundedNormBound(1, 0.01, 1024, BETA));
    expect(event.l2Sensitivity).toBeCloseTo(101.84301645179212, 10); // reference: rounded_l2_norm_bound(100, β, 1024)
    expect(event.localStddev).toBeCloseTo(10, 12);
    expect(event.l1Sensitivity).toBeUndefined();
    expect(effectiveL1Sensitivity(event)).toBeCloseTo(event.l2Sensitivity * 32, 9);
    const unrounded = ddgaussEventFor({ ...kls21, q: 1, steps: 1, rounding: false, l1Sensitivity: 5 });
    expect(unrounded.l2Sensitivity).toBeCloseTo(100, 10);
    expect(unrounded.l1Sensitivity).toBeCloseTo(500, 10);
    // β = 0: the unconditional bound c/γ + √d.
    expect(ddgaussEventFor({ ...kls21, beta: 0, q: 1, steps: 1 }).l2Sensitivity).toBeCloseTo(132, 10);
  });

  it('rejects parameters out of range', () => {
    const ok = { ...kls21, q: 0.01, steps: 10 };
    for (const bad of [{ gamma: 0 }, { beta: 1 }, { l2Sensitivity: -1 }, { dimension: 1.5 }, { clients: 0 }, { localStddev: 0 }, { steps: -1 }, { q: 2 }]) {
      expect(() => ddgaussEpsilon({ ...ok, ...bad })).toThrow(CohortError);
    }
  });
});

describe('the DDGauss RDP curve', () => {
  it('matches compute_rdp_dgaussian per order, unsampled and subsampled (1e-12 relative)', () => {
    for (const c of CURVES) {
      const event = distributedDiscreteGaussianEvent({ l2Sensitivity: c.l2, l1Sensitivity: c.l1, localStddev: c.sigma, clients: c.n, dimension: c.d });
      expect(rel(ddgaussTau(c.sigma, c.n), c.tau)).toBeLessThan(1e-13);
      for (const [q, expected] of Object.entries(c.byQ)) {
        const curve = rdpDistributedDiscreteGaussian(event, CURVE_ORDERS, Number(q));
        for (let i = 0; i < CURVE_ORDERS.length; i++) expect(rel(curve[i], expected[i])).toBeLessThan(1e-12);
      }
    }
  });

  it('τ = 10 Σ_{k<n} exp(−2π²σ² k/(k+1)); n = 1 is the discrete Gaussian α Δ₂²/(2σ²)', () => {
    expect(ddgaussTau(1, 2)).toBeCloseTo(10 * Math.exp(-(Math.PI ** 2)), 15);
    expect(ddgaussTau(0.3, 1)).toBe(0);
    const single = distributedDiscreteGaussianEvent({ l2Sensitivity: 3, localStddev: 0.3, clients: 1, dimension: 8 });
    const f = ddgaussRdpFunction(single);
    for (const a of [2, 7, 100]) expect(rel(f(a), (a * 9) / (2 * 0.09))).toBeLessThan(1e-14);
  });

  it('is +∞ for n ≥ 2 and σ < 1/2 (outside the range KLS21’s sum bound is stated for)', () => {
    const narrow = distributedDiscreteGaussianEvent({ l2Sensitivity: 3, localStddev: 0.49, clients: 2, dimension: 8 });
    expect(Array.from(rdpDistributedDiscreteGaussian(narrow, [2, 10], 0.01))).toEqual([Infinity, Infinity]);
    expect(Array.from(rdpDistributedDiscreteGaussian(narrow, [2, 10], 0))).toEqual([0, 0]);
  });

  it('a given Δ₁ larger than Δ₂·min(√d, Δ₂) is capped there (both bound every integer vector)', () => {
    const capped = distributedDiscreteGaussianEvent({ l2Sensitivity: 5, l1Sensitivity: 1e6, localStddev: 0.7, clients: 10, dimension: 1024 });
    const generic = distributedDiscreteGaussianEvent({ l2Sensitivity: 5, localStddev: 0.7, clients: 10, dimension: 1024 });
    expect(effectiveL1Sensitivity(capped)).toBe(25);
    expect(rdpDistributedDiscreteGaussian(capped, CURVE_ORDERS)).toEqual(rdpDistributedDiscreteGaussian(generic, CURVE_ORDERS));
    expect(Array.from(rdpDistributedDiscreteGaussian(generic, CURVE_ORDERS, 0.01))).toEqual(
      CURVES[2].byQ['0.01'].map((v) => expect.closeTo(v, 9)),
    );
  });

  it('stays accurate for tiny q: (α/2) q² (e^{ε(2)} − 1) to leading order', () => {
    // small ε(l), so the l ≥ 3 terms are O(q) relative to the l = 2 one
    const event = distributedDiscreteGaussianEvent({ l2Sensitivity: 2, localStddev: 1, clients: 20, dimension: 64 });
    const eps2 = ddgaussRdpFunction(event)(2);
    const q = 1e-6;
    const curve = rdpDistributedDiscreteGaussian(event, [2, 3, 4], q);
    for (const [i, a] of [2, 3, 4].entries()) {
      const leading = (a / 2) * q * q * Math.expm1(eps2);
      expect(rel(curve[i], leading)).toBeLessThan(1e-4);
    }
  });

  it('fractional orders take the value at max(2, ⌈α⌉) (RDP is non-decreasing in α)', () => {
    const event = distributedDiscreteGaussianEvent({ l2Sensitivity: 5, localStddev: 0.8, clients: 4, dimension: 16 });
    for (const q of [1, 0.05]) {
      const [a, b, c, d, e] = rdpDistributedDiscreteGaussian(event, [1, 1.5, 2, 2.2, 3], q);
      expect(a).toBe(c);
      expect(b).toBe(c);
      expect(d).toBe(e);
    }
    expect(Array.from(rdpDistributedDiscreteGaussian(event, [Infinity], 0.5))).toEqual([Infinity]);
  });

  it('is non-decreasing in the order, q = 1 equals the unsampled curve, q = 0 is 0', () => {
    const event = distributedDiscreteGaussianEvent({ l2Sensitivity: 40, localStddev: 3, clients: 50, dimension: 4096 });
    for (const q of [1, 0.2, 0.01, 1e-4]) {
      const curve = rdpDistributedDiscreteGaussian(event, DDGAUSS_ORDERS, q);
      for (let i = 1; i < curve.length; i++) expect(curve[i]).toBeGreaterThanOrEqual(curve[i - 1]);
    }
    const f = ddgaussRdpFunction(event);
    expect(Array.from(rdpDistributedDiscreteGaussian(event, DDGAUSS_ORDERS, 1))).toEqual(DDGAUSS_ORDERS.map(f));
    expect(rdpDistributedDiscreteGaussian(event, DDGAUSS_ORDERS, 0).every((v) => v === 0)).toBe(true);
  });
});

describe('properties of ε', () => {
  it('decreases in σ, increases in q and in the number of steps', () => {
    const base = { ...kls21, q: 0.01, steps: 1000 };
    const bySigma = [0.03, 0.05, 0.1, 0.2, 0.5].map((s) => ddgaussEpsilon({ ...base, localStddev: s }).epsilon);
    for (let i = 1; i < bySigma.length; i++) expect(bySigma[i]).toBeLessThan(bySigma[i - 1]);
    const byQ = [1e-4, 1e-3, 0.01, 0.05, 0.2, 1].map((q) => ddgaussEpsilon({ ...base, q }).epsilon);
    for (let i = 1; i < byQ.length; i++) expect(byQ[i]).toBeGreaterThan(byQ[i - 1]);
    const bySteps = [1, 10, 100, 1000, 10000].map((steps) => ddgaussEpsilon({ ...base, steps }).epsilon);
    for (let i = 1; i < bySteps.length; i++) expect(bySteps[i]).toBeGreaterThan(bySteps[i - 1]);
    expect(ddgaussEpsilon({ ...base, steps: 0 }).epsilon).toBe(0);
  });

  it('is at least the continuous Gaussian’s of the same total variance, and approaches it as σ grows', () => {
    const orders = DDGAUSS_ORDERS;
    const gaps: number[] = [];
    for (const sigma of [0.3, 0.5, 0.8, 1, 2, 10]) {
      const event = distributedDiscreteGaussianEvent({ l2Sensitivity: 10 * sigma, localStddev: sigma, clients: 8, dimension: 1024 });
      const z = (Math.sqrt(8) * sigma) / event.l2Sensitivity; // the same scale s₂ = Δ₂/(√n σ)
      for (const q of [1, 0.01]) {
        const ddg = epsilonFromRdp(orders, rdpDistributedDiscreteGaussian(event, orders, q).map((v) => 100 * v), 1e-5).epsilon;
        const gauss = epsilonFromRdp(orders, (q === 1 ? rdpGaussian(z, orders) : rdpPoissonSubsampledGaussian(q, z, orders)).map((v) => 100 * v), 1e-5).epsilon;
        expect(ddg).toBeGreaterThanOrEqual(gauss * (1 - 1e-14)); // equal once τ underflows, up to rounding
        if (q === 1) gaps.push(ddg / gauss - 1);
      }
    }
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]).toBeLessThanOrEqual(gaps[i - 1]);
    expect(gaps[0]).toBeGreaterThan(0.1); // σ = 0.3 quantisation steps: τ·d is large
    expect(gaps.at(-1)).toBeLessThan(1e-12); // σ = 10: τ underflows, the bound is the Gaussian's
  });
});

describe('the accountant and the event', () => {
  const event = distributedDiscreteGaussianEvent({ l2Sensitivity: 101.8, localStddev: 10, clients: 100, dimension: 1024 });

  it('JSON round-trips through the strict schema; the constructor freezes and omits an absent Δ₁', () => {
    const withL1 = distributedDiscreteGaussianEvent({ l2Sensitivity: 3, l1Sensitivity: 7, localStddev: 1, clients: 2, dimension: 4 });
    for (const e of [event, withL1, selfComposedEvent(poissonSampledEvent(0.01, event), 1000)]) {
      expect(DpEventSchema.parse(JSON.parse(JSON.stringify(e)))).toEqual(e);
    }
    expect(Object.isFrozen(event)).toBe(true);
    expect('l1Sensitivity' in event).toBe(false);
    const good = { kind: 'distributedDiscreteGaussian', l2Sensitivity: 3, localStddev: 1, clients: 2, dimension: 4 };
    for (const bad of [
      { extra: 1 },
      { l2Sensitivity: 0 },
      { l1Sensitivity: -1 },
      { localStddev: 0 },
      { localStddev: Infinity },
      { clients: 0 },
      { clients: 2.5 },
      { dimension: 0 },
    ]) {
      expect(DpEventSchema.safeParse({ ...good, ...bad }).success).toBe(false);
    }
  });

  it('rdpOfEvent: unsampled under either relation; Poisson-sampled and self-composed as ddgaussEpsilon', () => {
    const orders = INTEGER_ORDERS;
    const direct = rdpDistributedDiscreteGaussian(event, orders);
    expect(rdpOfEvent(event, orders)).toEqual(direct);
    expect(rdpOfEvent(event, orders, { neighboringRelation: 'replaceOne' })).toEqual(direct);
    const kls = ddgaussEventFor({ ...kls21, q: 0.01, steps: 1000 });
    const acc = new RdpAccountant(DDGAUSS_ORDERS).compose(poissonSampledEvent(0.01, kls), 1000);
    expect(rel(acc.getEpsilon(1e-5).epsilon, 2.567307781320251)).toBeLessThan(1e-11);
    expect(acc.getEpsilon(1e-5).order).toBe(7);
    const nested = rdpOfEvent(selfComposedEvent(poissonSampledEvent(0.01, kls), 1000), DDGAUSS_ORDERS);
    expect(Array.from(nested)).toEqual(Array.from(acc.rdp()));
  });

  it('with the default orders: finite at fractional orders (value at ⌈α⌉), the same ε as integer orders', () => {
    const kls = ddgaussEventFor({ ...kls21, q: 0.01, steps: 1000 });
    const acc = new RdpAccountant().compose(poissonSampledEvent(0.01, kls), 1000);
    expect(acc.rdp().every(Number.isFinite)).toBe(true);
    expect(rel(acc.getEpsilon(1e-5).epsilon, 2.567307781320251)).toBeLessThan(1e-11);
    // Composed with a Gaussian, the fractional orders are usable and the curves add order by order.
    const mixed = rdpOfEvent(composedEvent([poissonSampledEvent(0.01, kls), gaussianEvent(5)]), DEFAULT_ORDERS);
    const parts = [rdpOfEvent(poissonSampledEvent(0.01, kls), DEFAULT_ORDERS), rdpGaussian(5, DEFAULT_ORDERS)];
    for (let i = 0; i < DEFAULT_ORDERS.length; i++) expect(mixed[i]).toBe(parts[0][i] + parts[1][i]);
  });

  it('a composition inside one Poisson step is subsampled once, on the summed curve', () => {
    const orders = [2, 3, 8, 32];
    const twice = rdpOfEvent(poissonSampledEvent(0.05, composedEvent([event, event])), orders);
    const selfTwice = rdpOfEvent(poissonSampledEvent(0.05, selfComposedEvent(event, 2)), orders);
    expect(twice).toEqual(selfTwice);
    const once = rdpOfEvent(poissonSampledEvent(0.05, event), orders);
    for (let i = 0; i < orders.length; i++) {
      expect(twice[i]).toBeGreaterThan(once[i]);
      expect(twice[i]).toBeLessThanOrEqual(2 * ddgaussRdpFunction(event)(orders[i]));
    }
    // with a Gaussian inside (e.g. the adaptive-clipping count query): still finite, ≥ the DDGauss alone
    const withCount = rdpOfEvent(poissonSampledEvent(0.05, composedEvent([event, gaussianEvent(20)])), orders);
    for (let i = 0; i < orders.length; i++) expect(withCount[i]).toBeGreaterThan(once[i]);
  });

  it('refuses what it cannot analyse', () => {
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (err) {
        return (err as CohortError).code;
      }
      return undefined;
    };
    expect(code(() => rdpOfEvent(poissonSampledEvent(0.1, event), INTEGER_ORDERS, { neighboringRelation: 'replaceOne' }))).toBe('UNSUPPORTED_EVENT');
    expect(code(() => rdpOfEvent(sampledWithoutReplacementEvent(10, 100, event), INTEGER_ORDERS, { neighboringRelation: 'replaceOne' }))).toBe(
      'UNSUPPORTED_EVENT',
    );
    expect(code(() => rdpOfEvent(poissonSampledEvent(0.1, poissonSampledEvent(0.5, event)), INTEGER_ORDERS))).toBe('UNSUPPORTED_EVENT');
    const bad = { ...event, clients: 0 } as typeof event;
    expect(code(() => rdpOfEvent(bad, INTEGER_ORDERS))).toBe('BAD_PRIVACY_PARAMETER');
  });
});
