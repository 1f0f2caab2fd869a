/**
 * Compressed exports (issue 19): binary16 conversion against known bit patterns, the per-channel int8
 * affine map's error bound and exact zero, and the acceptance check — a 2NN trained on real MNIST
 * digits, exported as int8 and float16 (server/ops/export.ts), loaded with `tf.loadLayersModel`, agrees
 * with the float32 model's predicted class on ≥ 99% of 2,000 held-out digits. The measured agreement is
 * printed (COHORT_TEST_LOG=1) and quoted in the README.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadMnist } from '../../simulations/datasets/mnist.ts';
import { exportVersion, sizeOf, asArtifactJson } from '../../server/ops/export.ts';
import { seededRng } from '../random.ts';
import { buildModel } from './build.ts';
import { artifactHandler, channelAffine, decodeWeights, dequantizeInt8, encodeWeights, float16Bits, float16Value, quantizeInt8 } from './quantize.ts';
import { flattenWeights, initialWeights, manifestOf, setFlatWeights } from './weights.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('float16', () => {
  it('converts known values to their IEEE 754 binary16 bits, rounding to nearest even', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff], // largest finite half
      [65520, 0x7c00], // rounds up to Inf
      [1e6, 0x7c00],
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // a tie: rounds to even (zero)
      [3 * 2 ** -25, 0x0002], // a tie between 1 and 2 subnormal units: rounds to even (2)
      [2 ** -14, 0x0400], // smallest normal
      [1 + 2 ** -11, 0x3c00], // a tie: rounds to even (1)
      [1 + 3 * 2 ** -11, 0x3c02], // a tie: rounds to even (1 + 2^-9)
      [0.1, 0x2e66],
      [Infinity, 0x7c00],
    ];
    for (const [value, bits] of cases) expect([value, float16Bits(value)]).toEqual([value, bits]);
    expect(Number.isNaN(float16Value(float16Bits(NaN)))).toBe(true);
  });

  it('round-trips every binary16 value exactly', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const v = float16Value(bits);
      if (Number.isNaN(v)) continue;
      expect(float16Bits(v)).toBe(bits);
    }
  });
});

describe('int8, per-channel affine', () => {
  it('reconstructs each channel within half a step of its own scale, zero exactly', () => {
    const rng = seededRng(3);
    const channels = 7;
    const values = new Float32Array(50 * channels);
    // channels of very different ranges: one shared scale would lose the small ones
    for (let i = 0; i < values.length; i++) values[i] = (2 * rng.next() - 0.7) * 10 ** ((i % channels) - 3);
    values[5] = 0;
    const affine = channelAffine(values, channels);
    const out = new Float32Array(values.length);
    dequantizeInt8(quantizeInt8(values, affine), affine.scales, affine.zeroPoints, out);
    for (let i = 0; i < values.length; i++) {
      expect(Math.abs(out[i] - values[i])).toBeLessThanOrEqual(affine.scales[i % channels] * 0.5 * (1 + 1e-5));
    }
    expect(out[5]).toBe(0);
    expect(new Set(affine.scales).size).toBe(channels);
  });

  it('keeps 1-D weights float32 and lays out one byte per kernel weight', () => {
    const spec = { zoo: 'mlp' as const, inputShape: [20], numClasses: 5 };
    const { weights, manifest } = initialWeights(spec, 4);
    const enc = encodeWeights(weights, manifest, 'int8');
    const kernels = manifest.filter((m) => m.shape.length === 2).reduce((s, m) => s + m.shape[0] * m.shape[1], 0);
    expect(enc.bytes.length).toBe(kernels + 4 * (weights.length - kernels));
    const back = decodeWeights(enc.specs, enc.bytes);
    let offset = 0;
    for (const m of manifest) {
      const n = m.shape.reduce((a, b) => a * b, 1);
      if (m.shape.length === 1) expect(back.subarray(offset, offset + n)).toEqual(weights.subarray(offset, offset + n));
      offset += n;
    }
    expect(() => decodeWeights(enc.specs, enc.bytes.subarray(1))).toThrow(/bytes, the manifest describes/);
  });

  it('refuses to quantise a non-finite weight', () => {
    const { weights, manifest } = initialWeights({ zoo: 'logreg', inputShape: [3], numClasses: 2 }, 1);
    weights[0] = NaN;
    expect(() => encodeWeights(weights, manifest, 'int8')).toThrow(/non-finite/);
  });
});

describe('a trained 2NN exported as int8 and float16 (acceptance)', () => {
  it('loads with tf.loadLayersModel and agrees with float32 on ≥ 99% of 2,000 MNIST test digits', async () => {
    const spec = { zoo: 'mlp' as const };
    const { train, test } = loadMnist({ trainSize: 3000, testSize: 2000, seed: 19 });
    const model = buildModel(spec);
    setFlatWeights(model, initialWeights(spec, 19).weights);
    model.compile({ optimizer: tf.train.sgd(0.1), loss: 'sparseCategoricalCrossentropy' });
    const x = tf.tensor2d(train.features, [train.size, 784]);
    const y = tf.tensor1d(train.labels, 'float32');
    await model.fit(x, y, { epochs: 2, batchSize: 32, shuffle: false, verbose: 0 });
    tf.dispose([x, y]);
    const weights = flattenWeights(model);
    expect(manifestOf(model).length).toBe(6);
    model.dispose();

    const xt = tf.tensor2d(test.features, [test.size, 784]);
    const classes = async (format: 'float32' | 'float16' | 'int8') => {
      const e = exportVersion({ model: spec }, weights, format);
      const loaded = await tf.loadLayersModel(artifactHandler(asArtifactJson(e.modelJson), e.weightsBin));
      const pred = tf.tidy(() => (loaded.predict(xt) as tf.Tensor).argMax(-1));
      const out = (await pred.data()) as Int32Array;
      pred.dispose();
      loaded.dispose();
      return { classes: out, size: sizeOf(e, format) };
    };
    const f32 = await classes('float32');
    const accuracy = f32.classes.filter((c, i) => c === test.labels[i]).length / test.size;
    expect(accuracy).toBeGreaterThan(0.85); // it learned: agreement with a random model would say little
    const agreement: Record<string, number> = {};
    for (const format of ['float16', 'int8'] as const) {
      const q = await classes(format);
      agreement[format] = q.classes.filter((c, i) => c === f32.classes[i]).length / test.size;
      expect(q.size.bytes).toBeLessThan(f32.size.bytes);
    }
    xt.dispose();
    if (process.env.COHORT_TEST_LOG) console.log(JSON.stringify({ accuracy, agreement }));
    expect(agreement.int8).toBeGreaterThanOrEqual(0.99);
    expect(agreement.float16).toBeGreaterThanOrEqual(0.995);
  }, 400_000); // training on the cpu backend: generous on a loaded machine

  it('a float16 export loads with stock tfjs (tf.io.fromMemory, no handler of ours) to the same weights', async () => {
    const spec = { zoo: 'mlp' as const, inputShape: [30], numClasses: 4 };
    const { weights } = initialWeights(spec, 8);
    const e = exportVersion({ model: spec }, weights, 'float16');
    const group = e.modelJson.weightsManifest[0];
    const buf = e.weightsBin.buffer.slice(e.weightsBin.byteOffset, e.weightsBin.byteOffset + e.weightsBin.byteLength) as ArrayBuffer;
    const stock = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: e.modelJson.modelTopology, weightSpecs: group.weights, weightData: buf }));
    const ours = await tf.loadLayersModel(artifactHandler(asArtifactJson(e.modelJson), e.weightsBin));
    expect(flattenWeights(stock)).toEqual(flattenWeights(ours));
    const w = flattenWeights(stock);
    for (let i = 0; i < w.length; i++) expect(Math.abs(w[i] - weights[i])).toBeLessThanOrEqual(Math.abs(weights[i]) * 2 ** -11 + 2 ** -25);
    stock.dispose();
    ours.dispose();
  });
});
