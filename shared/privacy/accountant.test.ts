import { describe, expect, it } from 'vitest';
import { CohortError } from '../errors.ts';
import {
  DEFAULT_ORDERS,
  INTEGER_ORDERS,
  RdpAccountant,
  calibrateNoiseMultiplier,
  calibrateNoiseMultiplierWithoutReplacement,
  effectiveNoiseMultiplier,
  epsilonFor,
  rdpOfEvent,
} from './accountant.ts';
import {
  composedEvent,
  gaussianEvent,
  poissonSampledEvent,
  sampledWithoutReplacementEvent,
  selfComposedEvent,
} from './events.ts';

const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);
const range = (from: number, toExclusive: number): number[] => Array.from({ length: toExclusive - from }, (_, i) => from + i);

/** tensorflow_privacy/privacy/analysis/compute_dp_sgd_privacy_lib.py: orders and steps of compute_dp_sgd_privacy. */
const TFP_ORDERS = [1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5, ...range(5, 64), 128, 256, 512];
const tfpSetting = (n: number, batch: number, epochs: number) => ({ q: batch / n, steps: Math.ceil((epochs * n) / batch) });

/** opacus/accountants/rdp.py: RDPAccountant.DEFAULT_ALPHAS. */
const OPACUS_ALPHAS = [...range(1, 100).map((x) => 1 + x / 10), ...range(12, 64)];

describe('orders', () => {
  it('DEFAULT_ORDERS is dp_accounting DEFAULT_RDP_ORDERS: 1.1..10.9 step 0.1, 11..63, 128, 256, 512, 1024', () => {
    expect(DEFAULT_ORDERS.length).toBe(99 + 53 + 4);
    expect(DEFAULT_ORDERS[0]).toBe(1.1);
    expect(DEFAULT_ORDERS[98]).toBe(10.9);
    expect(DEFAULT_ORDERS.slice(99, 152)).toEqual(range(11, 64));
    expect(DEFAULT_ORDERS.slice(152)).toEqual([128, 256, 512, 1024]);
    expect(INTEGER_ORDERS).toEqual([...range(2, 65), 128, 256, 512, 1024]);
  });
});

describe('published ε values', () => {
  // tensorflow/privacy, tensorflow_privacy/privacy/analysis/compute_dp_sgd_privacy_test.py,
  // test_compute_dp_sgd_privacy (revisions 943ef91e and 2cd46dbb; dp_accounting RdpAccountant with the
  // orders above, improved conversion). Two dp_accounting versions gave two last-digit variants for Test1
  // and Test2; the first ones below come from 943ef91e (signed fractional series), the second from
  // 2cd46dbb (absolute-value series).
  const IMPROVED = [
    { n: 60000, batch: 150, z: 1.3, epochs: 15, delta: 1e-5, eps: 0.7242234026109595, order: 19 },
    { n: 100000, batch: 100, z: 1.0, epochs: 30, delta: 1e-7, eps: 1.4154988495444845, order: 13 },
    { n: 100000000, batch: 1024, z: 0.1, epochs: 10, delta: 1e-7, eps: 5907982.31138195, order: 1.25 },
  ];
  // The same test in the earlier revision (TF-Privacy's own rdp_accountant, classic conversion), and the
  // same numbers as targets in tensorflow_privacy/privacy/analysis/compute_noise_from_budget_test.py
  // (revision 16d5e6ed).
  const CLASSIC = [
    { n: 60000, batch: 150, z: 1.3, epochs: 15, delta: 1e-5, eps: 0.941870567, order: 19 },
    { n: 100000, batch: 100, z: 1.0, epochs: 30, delta: 1e-7, eps: 1.70928734, order: 13 },
    { n: 100000000, batch: 1024, z: 0.1, epochs: 10, delta: 1e-7, eps: 5907984.81339406, order: 1.25 },
  ];

  it('TF-Privacy / dp_accounting, improved conversion: ε within 1e-4 relative (observed ≤ 1e-12) and same order', () => {
    for (const c of IMPROVED) {
      const { q, steps } = tfpSetting(c.n, c.batch, c.epochs);
      const got = epsilonFor({ q, noiseMultiplier: c.z, steps, delta: c.delta, orders: TFP_ORDERS });
      expect(rel(got.epsilon, c.eps), `n=${c.n}`).toBeLessThan(1e-4);
      expect(rel(got.epsilon, c.eps), `n=${c.n}`).toBeLessThan(1e-11);
      expect(got.order).toBe(c.order);
    }
    // 2cd46dbb's values for Test1/Test2 (its dp_accounting summed |terms| at fractional orders):
    const { q, steps } = tfpSetting(100000000, 1024, 10);
    const absolute = epsilonFor({ q, noiseMultiplier: 0.1, steps, delta: 1e-7, orders: TFP_ORDERS, fractionalSeries: 'absolute' });
    expect(rel(absolute.epsilon, 5907982.3113978775)).toBeLessThan(1e-12);
    const t1 = tfpSetting(100000, 100, 30);
    expect(rel(epsilonFor({ q: t1.q, noiseMultiplier: 1, steps: t1.steps, delta: 1e-7, orders: TFP_ORDERS }).epsilon, 1.4154988495444842)).toBeLessThan(1e-12);
  });

  it('TF-Privacy, classic conversion: ε to the 9–10 printed digits and same order', () => {
    for (const c of CLASSIC) {
      const { q, steps } = tfpSetting(c.n, c.batch, c.epochs);
      const got = epsilonFor({ q, noiseMultiplier: c.z, steps, delta: c.delta, orders: TFP_ORDERS, conversion: 'classic' });
      expect(rel(got.epsilon, c.eps), `n=${c.n}`).toBeLessThan(5e-9); // 9 printed digits
      expect(got.order).toBe(c.order);
    }
  });

  it('integer-order RDP recovered from the published 16-digit ε agrees to 1e-9 relative', () => {
    // At the optimal order 19 the improved conversion is ε = R + log1p(−1/19) − (log δ + log 19)/18, so the
    // published ε pins down the composed RDP R(19) to ~1e-16.
    const { q, steps } = tfpSetting(60000, 150, 15);
    const published = 0.7242234026109595 - Math.log1p(-1 / 19) + (Math.log(1e-5) + Math.log(19)) / 18;
    const ours = rdpOfEvent(selfComposedEvent(poissonSampledEvent(q, gaussianEvent(1.3)), steps), [19])[0];
    expect(rel(ours, published)).toBeLessThan(1e-9);
  });

  it('Opacus RDPAccountant: q = 0.04, z = 1.5, 2250 steps, δ = 1e-5 → ε = 7.32911117143', () => {
    // pytorch/opacus, opacus/tests/accountants_test.py, test_rdp_accountant (steps = int(90 / 0.04)); Opacus
    // uses DEFAULT_ALPHAS above, the signed fractional series and the improved conversion.
    const got = epsilonFor({ q: 0.04, noiseMultiplier: 1.5, steps: 2250, delta: 1e-5, orders: OPACUS_ALPHAS });
    expect(rel(got.epsilon, 7.32911117143)).toBeLessThan(1e-10);
  });

  it('dp_accounting composition cases', () => {
    // rdp_privacy_accountant_test.py: test_compute_rdp_multi_gaussian, test_zero_poisson_sample,
    // test_zero_fixed_batch_sample, test_epsilon_non_private_gaussian.
    const a = 3.14159;
    const [s1, s2] = [2.71828, 6.28319];
    const multi = rdpOfEvent(poissonSampledEvent(1, composedEvent([gaussianEvent(s1), gaussianEvent(s2)])), [a])[0];
    expect(rel(multi, a / (2 * s1 * s1) + a / (2 * s2 * s2))).toBeLessThan(1e-14);
    for (const z of [1, 0]) {
      const acc = new RdpAccountant([3.14159]).compose(poissonSampledEvent(0, gaussianEvent(z)));
      expect(acc.getEpsilon(1e-10).epsilon).toBe(0);
      expect(acc.getDelta(1e-10).delta).toBe(0);
    }
    const fixed = new RdpAccountant([3.14159], { neighboringRelation: 'replaceOne' });
    fixed.compose(sampledWithoutReplacementEvent(0, 1000, gaussianEvent(1)));
    expect(fixed.getEpsilon(1e-10).epsilon).toBe(0);
    expect(new RdpAccountant([3.14159]).compose(gaussianEvent(0)).getEpsilon(0.1).epsilon).toBe(Infinity);
  });
});

describe('composition', () => {
  const base = poissonSampledEvent(0.02, gaussianEvent(1.1));

  it('is additive: count, selfComposed, composed and repeated compose all agree', () => {
    const one = rdpOfEvent(base);
    const byCount = new RdpAccountant().compose(base, 6).rdp();
    const bySelf = rdpOfEvent(selfComposedEvent(base, 6));
    const byNested = rdpOfEvent(composedEvent([selfComposedEvent(base, 1), selfComposedEvent(base, 2), selfComposedEvent(base, 3)]));
    const repeated = new RdpAccountant();
    for (let i = 0; i < 6; i++) repeated.compose(base);
    for (let i = 0; i < one.length; i++) {
      for (const curve of [byCount, bySelf, byNested, repeated.rdp()]) expect(rel(curve[i], 6 * one[i])).toBeLessThan(1e-14);
    }
    const other = poissonSampledEvent(0.05, gaussianEvent(2));
    const both = rdpOfEvent(composedEvent([base, other]));
    const second = rdpOfEvent(other);
    for (let i = 0; i < one.length; i++) expect(rel(both[i], one[i] + second[i])).toBeLessThan(1e-14);
  });

  it('count 0 costs nothing, even for a non-private event', () => {
    expect(Array.from(rdpOfEvent(gaussianEvent(0), [2, 3], {}, 0))).toEqual([0, 0]);
    expect(Array.from(rdpOfEvent(selfComposedEvent(gaussianEvent(0), 0), [2, 3]))).toEqual([0, 0]);
  });

  it('effective noise multiplier of composed Gaussians is (Σ z_i^-2)^-1/2', () => {
    const z = effectiveNoiseMultiplier(composedEvent([gaussianEvent(1), selfComposedEvent(gaussianEvent(2), 3), gaussianEvent(4)]));
    expect(z).toBeCloseTo(1 / Math.sqrt(1 + 3 / 4 + 1 / 16), 15);
    expect(effectiveNoiseMultiplier(composedEvent([gaussianEvent(1), gaussianEvent(0)]))).toBe(0);
  });

  it('refuses events it cannot analyse, and leaves the curve unchanged', () => {
    const acc = new RdpAccountant().compose(base);
    const before = acc.rdp();
    const nested = poissonSampledEvent(0.1, poissonSampledEvent(0.1, gaussianEvent(1)));
    const wrongRelation = sampledWithoutReplacementEvent(10, 100, gaussianEvent(1));
    for (const e of [nested, wrongRelation]) {
      expect(() => acc.compose(e)).toThrow(CohortError);
    }
    expect(acc.rdp()).toEqual(before);
    expect(() => new RdpAccountant(DEFAULT_ORDERS, { neighboringRelation: 'replaceOne' }).compose(base)).toThrow(/addOrRemove/);
    expect(() => acc.compose(base, 1.5)).toThrow(CohortError);
  });
});

describe('ε properties', () => {
  const eps = (q: number, z: number, steps: number): number => epsilonFor({ q, noiseMultiplier: z, steps, delta: 1e-5 }).epsilon;

  it('is monotone: up in steps and q, down in z', () => {
    let prev = 0;
    for (const steps of [1, 10, 100, 1000, 10000]) {
      const e = eps(0.01, 1, steps);
      expect(e).toBeGreaterThan(prev);
      prev = e;
    }
    prev = 0;
    for (const q of [1e-4, 1e-3, 0.01, 0.1, 0.5, 1]) {
      const e = eps(q, 1, 100);
      expect(e).toBeGreaterThan(prev);
      prev = e;
    }
    prev = Infinity;
    for (const z of [0.5, 0.8, 1, 1.5, 3, 10]) {
      const e = eps(0.01, z, 100);
      expect(e).toBeLessThan(prev);
      prev = e;
    }
  });

  it('q = 1 is the composed Gaussian', () => {
    const a = epsilonFor({ q: 1, noiseMultiplier: 3, steps: 10, delta: 1e-6 });
    const g = new RdpAccountant().compose(gaussianEvent(3), 10).getEpsilon(1e-6);
    expect(a).toEqual(g);
  });

  it('stays finite for q = 1e-6 over 1e6 steps', () => {
    for (const z of [0.5, 1, 4]) {
      const e = eps(1e-6, z, 1e6);
      expect(Number.isFinite(e) && e >= 0).toBe(true);
    }
  });
});

describe('calibration', () => {
  it('reproduces TF-Privacy compute_noise_from_budget (classic conversion)', () => {
    // tensorflow/privacy, tensorflow_privacy/privacy/analysis/compute_noise_from_budget_test.py (revision
    // 16d5e6ed): target ε 0.941870567 / 1.70928734 / 5907984.81339406 → noise 1.3 / 1.0 / 0.1
    // (assertAlmostEqual, 7 places).
    const cases = [
      { n: 60000, batch: 150, eps: 0.941870567, epochs: 15, delta: 1e-5, z: 1.3 },
      { n: 100000, batch: 100, eps: 1.70928734, epochs: 30, delta: 1e-7, z: 1.0 },
      { n: 100000000, batch: 1024, eps: 5907984.81339406, epochs: 10, delta: 1e-7, z: 0.1 },
    ];
    for (const c of cases) {
      const { q, steps } = tfpSetting(c.n, c.batch, c.epochs);
      const z = calibrateNoiseMultiplier({
        targetEpsilon: c.eps,
        delta: c.delta,
        q,
        steps,
        orders: TFP_ORDERS,
        conversion: 'classic',
        relativeTolerance: 1e-9,
      });
      expect(Math.abs(z - c.z), `n=${c.n}`).toBeLessThan(5e-8);
    }
  });

  it('round trip: the calibrated z meets the target and 1% less noise does not', () => {
    for (const [q, steps, target] of [[0.01, 1000, 2], [0.001, 5000, 1], [0.1, 50, 8]] as const) {
      const z = calibrateNoiseMultiplier({ targetEpsilon: target, delta: 1e-5, q, steps });
      expect(epsilonFor({ q, noiseMultiplier: z, steps, delta: 1e-5 }).epsilon).toBeLessThanOrEqual(target);
      expect(epsilonFor({ q, noiseMultiplier: 0.99 * z, steps, delta: 1e-5 }).epsilon).toBeGreaterThan(target);
      // within the default relative tolerance of the true threshold
      expect(epsilonFor({ q, noiseMultiplier: z * (1 - 2e-6), steps, delta: 1e-5 }).epsilon).toBeGreaterThan(target);
    }
  });

  it('fixed-size cohorts calibrate through sampling without replacement', () => {
    const z = calibrateNoiseMultiplierWithoutReplacement({ targetEpsilon: 3, delta: 1e-5, sampleSize: 50, sourceSize: 5000, steps: 200, orders: INTEGER_ORDERS });
    const acc = new RdpAccountant(INTEGER_ORDERS, { neighboringRelation: 'replaceOne' });
    acc.compose(sampledWithoutReplacementEvent(50, 5000, gaussianEvent(z)), 200);
    expect(acc.getEpsilon(1e-5).epsilon).toBeLessThanOrEqual(3);
  });

  it('nothing to protect needs no noise; an unreachable target is a clear error', () => {
    expect(calibrateNoiseMultiplier({ targetEpsilon: 1, delta: 1e-5, q: 0, steps: 100 })).toBe(0);
    expect(calibrateNoiseMultiplier({ targetEpsilon: 1, delta: 1e-5, q: 0.1, steps: 0 })).toBe(0);
    let error: unknown;
    try {
      calibrateNoiseMultiplier({ targetEpsilon: 1e-3, delta: 1e-5, q: 0.1, steps: 10, conversion: 'classic' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CohortError);
    expect((error as CohortError).code).toBe('UNATTAINABLE_EPSILON');
    expect(() => calibrateNoiseMultiplier({ targetEpsilon: 0, delta: 1e-5, q: 0.1, steps: 10 })).toThrow(CohortError);
  });
});
