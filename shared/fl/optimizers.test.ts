import { describe, expect, it } from 'vitest';
import {
  ServerOptimizerConfigSchema,
  createServerOptimizer,
  type ServerOptimizer,
  type ServerOptimizerConfigInput,
} from './optimizers.ts';
import { codeOf } from '../testing/errors.ts';

const opt = (cfg: ServerOptimizerConfigInput, dim = 3): ServerOptimizer =>
  createServerOptimizer(ServerOptimizerConfigSchema.parse(cfg), dim);

const f32 = (...xs: number[]): Float32Array => Float32Array.from(xs);

/** Float32 weights against float64 hand-computed values: float32 rounding is ~6e-8 relative. */
function expectClose(actual: Float32Array, expected: number[]): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i]).toBeCloseTo(expected[i], 6);
}


describe('server optimizers: hand-computed steps', () => {
  it('fedavg: w + η Δ̄', () => {
    // η = 0.5, w = [1, 2, 3], Δ̄ = [0.2, -0.4, 1]
    // w = [1 + 0.1, 2 - 0.2, 3 + 0.5] = [1.1, 1.8, 3.5]
    const w = f32(1, 2, 3);
    const g = f32(0.2, -0.4, 1);
    opt({ name: 'fedavg', serverLr: 0.5 }).step(w, g);
    expectClose(w, [1.1, 1.8, 3.5]);
    expectClose(g, [0.2, -0.4, 1]); // pseudo-gradient untouched
  });

  it('fedavgm: momentum carries the first step into the second', () => {
    // η = 0.5, β = 0.9, w0 = [1, 2, 3]
    // step 1, Δ̄ = [0.2, -0.4, 1]:  v1 = [0.2, -0.4, 1];  w1 = w0 + 0.5 v1 = [1.1, 1.8, 3.5]
    // step 2, Δ̄ = [0.1, 0.1, -1]:  v2 = 0.9 v1 + Δ̄ = [0.18 + 0.1, -0.36 + 0.1, 0.9 - 1] = [0.28, -0.26, -0.1]
    //                              w2 = w1 + 0.5 v2 = [1.1 + 0.14, 1.8 - 0.13, 3.5 - 0.05] = [1.24, 1.67, 3.45]
    const o = opt({ name: 'fedavgm', serverLr: 0.5, momentum: 0.9 });
    const w = f32(1, 2, 3);
    o.step(w, f32(0.2, -0.4, 1));
    expectClose(w, [1.1, 1.8, 3.5]);
    o.step(w, f32(0.1, 0.1, -1));
    expectClose(w, [1.24, 1.67, 3.45]);
  });

  it('fedadagrad: v accumulates squares', () => {
    // η = 0.1, τ = 1 (so v0 = τ² = 1), β1 = 0 (default: m = Δ̄), w0 = [1, 2, 3]
    // step 1, Δ̄ = [0.75, -2.4, 0]:
    //   v1 = 1 + Δ̄² = [1 + 0.5625, 1 + 5.76, 1] = [1.5625, 6.76, 1];  √v1 = [1.25, 2.6, 1]
    //   w1 = [1 + 0.1·0.75/2.25, 2 − 0.1·2.4/3.6, 3] = [1.0333333, 1.9333333, 3]
    // step 2, Δ̄ = [3, 0, 0.75]:
    //   v2 = v1 + Δ̄² = [1.5625 + 9, 6.76, 1 + 0.5625] = [10.5625, 6.76, 1.5625];  √v2 = [3.25, 2.6, 1.25]
    //   w2 = [1.0333333 + 0.3/4.25, 1.9333333, 3 + 0.075/2.25] = [1.1039216, 1.9333333, 3.0333333]
    //   (without the state from step 1, coordinate 0 would use √10 instead of 3.25)
    const o = opt({ name: 'fedadagrad', serverLr: 0.1, tau: 1 });
    const w = f32(1, 2, 3);
    o.step(w, f32(0.75, -2.4, 0));
    expectClose(w, [1.0333333, 1.9333333, 3]);
    o.step(w, f32(3, 0, 0.75));
    expectClose(w, [1.1039216, 1.9333333, 3.0333333]);
  });

  it('fedadam: both moments', () => {
    // η = 0.1, β1 = 0.5, β2 = 0.5, τ = 1 (v0 = 1, m0 = 0), w0 = [1, 2, 3]
    // step 1, Δ̄ = [1, -7, 0]:
    //   m1 = 0.5·Δ̄ = [0.5, -3.5, 0]
    //   v1 = 0.5·1 + 0.5·[1, 49, 0] = [1, 25, 0.5];  √v1 + τ = [2, 6, ·]
    //   w1 = [1 + 0.05/2, 2 − 0.35/6, 3] = [1.025, 1.9416667, 3]
    // step 2, Δ̄ = [1, 5, 2]:
    //   m2 = 0.5 m1 + 0.5 Δ̄ = [0.25 + 0.5, -1.75 + 2.5, 0 + 1] = [0.75, 0.75, 1]
    //   v2 = 0.5 v1 + 0.5 Δ̄² = [0.5 + 0.5, 12.5 + 12.5, 0.25 + 2] = [1, 25, 2.25];  √v2 + τ = [2, 6, 2.5]
    //   w2 = [1.025 + 0.075/2, 1.9416667 + 0.075/6, 3 + 0.1/2.5] = [1.0625, 1.9541667, 3.04]
    const o = opt({ name: 'fedadam', serverLr: 0.1, beta1: 0.5, beta2: 0.5, tau: 1 });
    const w = f32(1, 2, 3);
    o.step(w, f32(1, -7, 0));
    expectClose(w, [1.025, 1.9416667, 3]);
    o.step(w, f32(1, 5, 2));
    expectClose(w, [1.0625, 1.9541667, 3.04]);
  });

  it('fedyogi: additive, sign-controlled second moment', () => {
    // η = 0.1, β1 = 0.5, β2 = 0.5, τ = 1 (v0 = 1, m0 = 0), w0 = [1, 2, 3]
    // v ← v − 0.5·Δ̄²·sign(v − Δ̄²)
    // step 1, Δ̄ = [1, -4, 0]:
    //   m1 = [0.5, -2, 0]
    //   v1 = [1 − 0.5·1·sign(0), 1 − 0.5·16·sign(-15), 1 − 0] = [1, 9, 1]
    //   w1 = [1 + 0.05/2, 2 − 0.2/4, 3] = [1.025, 1.95, 3]
    // step 2, Δ̄ = [4, 3, 0.5]:
    //   m2 = 0.5 m1 + 0.5 Δ̄ = [0.25 + 2, -1 + 1.5, 0 + 0.25] = [2.25, 0.5, 0.25]
    //   v2 = [1 − 8·sign(1 − 16), 9 − 4.5·sign(9 − 9), 1 − 0.125·sign(1 − 0.25)] = [9, 9, 0.875]
    //   w2 = [1.025 + 0.225/4, 1.95 + 0.05/4, 3 + 0.025/(√0.875 + 1)]
    //      = [1.025 + 0.05625, 1.95 + 0.0125, 3 + 0.025/1.9354143] = [1.08125, 1.9625, 3.0129171]
    //   (Adam would have v2 = [8.5, ·, 0.625] here: the test tells the two apart)
    const o = opt({ name: 'fedyogi', serverLr: 0.1, beta1: 0.5, beta2: 0.5, tau: 1 });
    const w = f32(1, 2, 3);
    o.step(w, f32(1, -4, 0));
    expectClose(w, [1.025, 1.95, 3]);
    o.step(w, f32(4, 3, 0.5));
    expectClose(w, [1.08125, 1.9625, 3.0129171]);
  });

  it('adaptive defaults: η 0.01, β1 0.9, β2 0.99, τ 1e-3, v0 = τ²', () => {
    // Δ̄ = [1, 0, -0.1]: m1 = 0.1·Δ̄ = [0.1, 0, -0.01]; v1 = 0.99·1e-6 + 0.01·Δ̄² = [0.01000099, 9.9e-7, 0.00010099]
    // w1 = 0.01·m1/(√v1 + 1e-3) = [0.001/(0.100004950 + 0.001), 0, -0.0001/(0.010049378 + 0.001)]
    //    = [0.0099005, 0, -0.0090503]
    const o = opt({ name: 'fedadam' });
    const w = f32(0, 0, 0);
    o.step(w, f32(1, 0, -0.1));
    expectClose(w, [0.0099005, 0, -0.0090503]);
  });
});

describe('server optimizer state', () => {
  const configs: ServerOptimizerConfigInput[] = [
    { name: 'fedavg' },
    { name: 'fedavgm' },
    { name: 'fedadagrad', beta1: 0.5 },
    { name: 'fedadam' },
    { name: 'fedyogi' },
  ];
  const dim = 17;
  const grad = (t: number): Float32Array => Float32Array.from({ length: dim }, (_, i) => Math.sin(i * 1.3 + t) * (t + 1));

  for (const cfg of configs) {
    it(`${cfg.name}: export → import → continue is identical to an uninterrupted run`, () => {
      const straight = opt(cfg, dim);
      const wStraight = new Float32Array(dim).fill(0.5);
      for (let t = 0; t < 5; t++) straight.step(wStraight, grad(t));

      const first = opt(cfg, dim);
      const w = new Float32Array(dim).fill(0.5);
      for (let t = 0; t < 2; t++) first.step(w, grad(t));
      const state = first.exportState();
      // Import from an unaligned view, as a Buffer slice from SQLite might be.
      const padded = new Uint8Array(state.length + 1);
      padded.set(state, 1);
      const resumed = opt(cfg, dim);
      resumed.importState(padded.subarray(1));
      expect(resumed.exportState()).toEqual(state);
      for (let t = 2; t < 5; t++) resumed.step(w, grad(t));

      expect(w).toEqual(wStraight);
      expect(resumed.exportState()).toEqual(straight.exportState());
    });
  }

  it('fedavg state is empty', () => {
    expect(opt({ name: 'fedavg' }).exportState().length).toBe(0);
    expect(codeOf(() => opt({ name: 'fedavg' }).importState(new Uint8Array(4)))).toBe('BAD_STATE');
  });

  it('rejects state of the wrong length, dimension or optimizer', () => {
    const adam = opt({ name: 'fedadam' }, dim);
    const state = adam.exportState();
    expect(codeOf(() => opt({ name: 'fedadam' }, dim).importState(state.subarray(0, state.length - 4)))).toBe('BAD_STATE');
    expect(codeOf(() => opt({ name: 'fedadam' }, dim + 1).importState(state))).toBe('BAD_STATE');
    // Same byte length, different optimizer.
    expect(codeOf(() => opt({ name: 'fedyogi' }, dim).importState(state))).toBe('BAD_STATE');
    expect(codeOf(() => opt({ name: 'fedavgm' }, dim).importState(state))).toBe('BAD_STATE');
  });

  it('a rejected import leaves the state unchanged', () => {
    const o = opt({ name: 'fedavgm' }, 3);
    o.step(f32(0, 0, 0), f32(1, 2, 3));
    const before = o.exportState();
    const junk = new Uint8Array(before.length).fill(7);
    expect(codeOf(() => o.importState(junk))).toBe('BAD_STATE');
    expect(o.exportState()).toEqual(before);
  });

  it('step rejects wrong lengths and non-finite pseudo-gradients without touching state', () => {
    const o = opt({ name: 'fedadam' }, 3);
    const before = o.exportState();
    const w = f32(1, 2, 3);
    expect(codeOf(() => o.step(w, f32(1, 2)))).toBe('WRONG_LENGTH');
    expect(codeOf(() => o.step(f32(1, 2), f32(1, 2, 3)))).toBe('WRONG_LENGTH');
    expect(codeOf(() => o.step(w, f32(1, Number.NaN, 3)))).toBe('NON_FINITE');
    expect(codeOf(() => o.step(w, f32(1, Number.POSITIVE_INFINITY, 3)))).toBe('NON_FINITE');
    expect(o.exportState()).toEqual(before);
    expect(w).toEqual(f32(1, 2, 3));
  });
});

describe('ServerOptimizerConfigSchema', () => {
  it('fills defaults per optimizer', () => {
    expect(ServerOptimizerConfigSchema.parse({ name: 'fedavg' })).toEqual({ name: 'fedavg', serverLr: 1 });
    expect(ServerOptimizerConfigSchema.parse({ name: 'fedavgm' })).toEqual({ name: 'fedavgm', serverLr: 1, momentum: 0.9 });
    expect(ServerOptimizerConfigSchema.parse({ name: 'fedyogi' })).toEqual({
      name: 'fedyogi',
      serverLr: 0.01,
      beta1: 0.9,
      beta2: 0.99,
      tau: 1e-3,
    });
    expect(ServerOptimizerConfigSchema.parse({ name: 'fedadagrad' })).toMatchObject({ beta1: 0, tau: 1e-3 });
  });

  it('rejects unknown names, unknown keys, and bad values', () => {
    const bad = [
      { name: 'sgd' },
      {},
      { name: 'fedavg', momentum: 0.9 }, // momentum belongs to fedavgm
      { name: 'fedadam', lr: 0.1 },
      { name: 'fedavg', serverLr: -1 },
      { name: 'fedavg', serverLr: 0 },
      { name: 'fedadam', serverLr: Number.POSITIVE_INFINITY },
      { name: 'fedavgm', momentum: 1 },
      { name: 'fedadam', beta2: -0.1 },
      { name: 'fedyogi', tau: 0 },
    ];
    for (const cfg of bad) expect(ServerOptimizerConfigSchema.safeParse(cfg).success, JSON.stringify(cfg)).toBe(false);
  });

  it('createServerOptimizer rejects a bad dimension', () => {
    const cfg = ServerOptimizerConfigSchema.parse({ name: 'fedavg' });
    expect(codeOf(() => createServerOptimizer(cfg, 0))).toBe('BAD_DIM');
    expect(codeOf(() => createServerOptimizer(cfg, 1.5))).toBe('BAD_DIM');
  });
});
