// Runs on the wasm backend. tfjs backends are per process, so cpu-backend tests live in another file.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { seededRng } from '../../shared/random.ts';
import { initialWeights, type ModelSpec } from '../../shared/model/index.ts';
import { fromArrays, type Dataset } from '../data/dataset.ts';
import { currentBackend, selectBackend } from './backend.ts';
import { LocalTrainer, type TrainingConfig } from './trainer.ts';

const DIM = 20;
const CLASSES = 3;

/** Linearly separable blobs: class c has +1.5 on features j ≡ c (mod 3), plus uniform noise. */
function separable(n: number, seed: number): Dataset {
  const rng = seededRng(seed);
  const rows: number[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = i % CLASSES;
    labels.push(y);
    rows.push(Array.from({ length: DIM }, (_, j) => (j % CLASSES === y ? 1.5 : 0) + rng.next() - 0.5));
  }
  return fromArrays(rows, labels, { numClasses: CLASSES });
}

const norm = (v: Float32Array): number => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const bits = (v: Float32Array): Uint32Array => new Uint32Array(v.buffer, v.byteOffset, v.length);
const cfg = (over: Partial<TrainingConfig> = {}): TrainingConfig => ({
  epochs: 1,
  batchSize: 10,
  learningRate: 0.1,
  proxMu: 0,
  seed: 1,
  ...over,
});

const data = separable(150, 1);
const held = separable(60, 2);

beforeAll(async () => {
  expect(await selectBackend({ prefer: 'wasm' })).toBe('wasm');
  expect(currentBackend()).toBe('wasm');
  expect(tf.getBackend()).toBe('wasm');
});

describe.each(['logreg', 'mlp'] as const)('LocalTrainer %s on wasm', (zoo) => {
  const spec: ModelSpec = { zoo, inputShape: [DIM], numClasses: CLASSES };

  it('learns: held-out loss falls and accuracy rises over a few epochs', async () => {
    const trainer = new LocalTrainer(spec);
    const { weights: w0 } = initialWeights(spec, 1);
    const before = await trainer.evaluate(w0, held);
    const result = await trainer.train(w0, data, cfg({ epochs: 4 }));
    const w1 = w0.map((x, i) => x + result.delta[i]);
    const after = await trainer.evaluate(w1, held);
    expect(result.numExamples).toBe(150);
    expect(after.numExamples).toBe(60);
    expect(after.loss).toBeLessThan(0.5 * before.loss);
    expect(after.accuracy).toBeGreaterThan(before.accuracy);
    expect(after.accuracy).toBeGreaterThanOrEqual(0.95);
    expect(result.metrics.loss).toBeLessThan(before.loss);
    expect(result.metrics.accuracy).toBeGreaterThan(0.9);
    trainer.dispose();
  });

  it('returns delta = w_local − w_global', async () => {
    const trainer = new LocalTrainer(spec);
    const { weights: w0 } = initialWeights(spec, 2);
    const { delta } = await trainer.train(w0, data, cfg({ epochs: 2 }));
    const local = trainer.currentWeights();
    expect(delta.length).toBe(w0.length);
    expect(bits(delta)).toEqual(bits(local.map((x, i) => x - w0[i])));
    expect(norm(delta)).toBeGreaterThan(0);
    trainer.dispose();
  });

  it('is deterministic for a seed, and the seed matters', async () => {
    const trainer = new LocalTrainer(spec);
    const { weights: w0 } = initialWeights(spec, 3);
    const a = await trainer.train(w0, data, cfg({ epochs: 2, seed: 9 }));
    const b = await trainer.train(w0, data, cfg({ epochs: 2, seed: 9 }));
    const c = await trainer.train(w0, data, cfg({ epochs: 2, seed: 10 }));
    expect(bits(b.delta)).toEqual(bits(a.delta));
    expect(b.metrics).toEqual(a.metrics);
    expect(bits(c.delta)).not.toEqual(bits(a.delta));
    trainer.dispose();
  });

  it('FedProx with a large mu keeps the update closer to the global model', async () => {
    const trainer = new LocalTrainer(spec);
    const { weights: w0 } = initialWeights(spec, 4);
    const plain = await trainer.train(w0, data, cfg({ epochs: 3, proxMu: 0 }));
    const prox = await trainer.train(w0, data, cfg({ epochs: 3, proxMu: 5 }));
    expect(norm(prox.delta)).toBeLessThan(0.7 * norm(plain.delta));
    expect(norm(prox.delta)).toBeGreaterThan(0);
    trainer.dispose();
  });

  it('FedProx adds exactly μ(w − w_global) to the gradient (Li et al. 2020)', async () => {
    // Two full-batch steps from w0. Step 1 is the same with or without the term (w = w0); step 2 sees
    // the same data gradient at w1, plus μ(w1 − w0) with the term. So Δ_μ − Δ_0 = −lr·μ·(w1 − w0).
    const trainer = new LocalTrainer(spec);
    const { weights: w0 } = initialWeights(spec, 6);
    const lr = 0.1;
    const mu = 0.5;
    const full = cfg({ batchSize: data.size, learningRate: lr, seed: 3 });
    const step1 = await trainer.train(w0, data, { ...full, epochs: 1 });
    const plain = await trainer.train(w0, data, { ...full, epochs: 2 });
    const prox = await trainer.train(w0, data, { ...full, epochs: 2, proxMu: mu });
    let maxErr = 0;
    for (let i = 0; i < w0.length; i++) {
      const expected = -lr * mu * step1.delta[i];
      maxErr = Math.max(maxErr, Math.abs(prox.delta[i] - plain.delta[i] - expected));
    }
    expect(norm(step1.delta)).toBeGreaterThan(0);
    expect(maxErr).toBeLessThan(1e-6);
    trainer.dispose();
  });

  it('leaks no tensors in train() or evaluate()', async () => {
    const trainer = new LocalTrainer(spec);
    const { weights: w0 } = initialWeights(spec, 5);
    await trainer.train(w0, data, cfg()); // builds the model (its weights are long-lived)
    const start = tf.memory().numTensors;
    await trainer.train(w0, data, cfg({ epochs: 2, batchSize: 7 }));
    expect(tf.memory().numTensors).toBe(start);
    await trainer.train(w0, data, cfg({ epochs: 2, proxMu: 0.5 }));
    expect(tf.memory().numTensors).toBe(start);
    await trainer.evaluate(w0, held, 16);
    expect(tf.memory().numTensors).toBe(start);
    const modelTensors = trainer.manifest.length;
    trainer.dispose();
    expect(tf.memory().numTensors).toBe(start - modelTensors);
  });
});

describe('LocalTrainer errors on wasm', () => {
  const spec: ModelSpec = { zoo: 'logreg', inputShape: [DIM], numClasses: CLASSES };

  it('trains the CNN (our conv gradient kernels), without leaking', async () => {
    const cnn: ModelSpec = { zoo: 'cnn', inputShape: [8, 8, 1], numClasses: 2 };
    const trainer = new LocalTrainer(cnn);
    const { weights, manifest } = initialWeights(cnn, 1);
    const rng = seededRng(4);
    const images = fromArrays(new Float32Array(4 * 64).map(() => rng.next()), [0, 1, 0, 1], { featureShape: [8, 8, 1] });
    const start = tf.memory().numTensors;
    const result = await trainer.train(weights, images, cfg({ batchSize: 2, proxMu: 0.1 }));
    expect(tf.memory().numTensors).toBe(start + manifest.length); // only the model's own weights remain
    expect(result.delta.every(Number.isFinite)).toBe(true);
    expect(result.delta.subarray(0, 800).some((d) => d !== 0)).toBe(true); // conv1's kernel moved
    trainer.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('refuses a model whose gradient kernel the backend lacks with UNSUPPORTED_ON_BACKEND, without leaking', async () => {
    // tfjs-backend-wasm has no DepthwiseConv2dNativeBackpropFilter, and we do not add one.
    const model = tf.sequential({
      layers: [
        tf.layers.depthwiseConv2d({ inputShape: [8, 8, 1], kernelSize: 3, name: 'dw' }),
        tf.layers.flatten({ name: 'flat' }),
        tf.layers.dense({ units: 2, activation: 'softmax', name: 'out' }),
      ],
    });
    const spec: ModelSpec = { layers: model.toJSON(null, false) as Record<string, unknown> };
    const weights = new Float32Array(model.countParams()).fill(0.01);
    model.dispose();
    const trainer = new LocalTrainer(spec);
    const images = fromArrays(new Float32Array(4 * 64).fill(0.5), [0, 1, 0, 1], { featureShape: [8, 8, 1] });
    const start = tf.memory().numTensors;
    await expect(trainer.train(weights, images, cfg({ batchSize: 2 }))).rejects.toMatchObject({
      code: 'UNSUPPORTED_ON_BACKEND',
      message: expect.stringContaining('DepthwiseConv2dNativeBackpropFilter'),
    });
    trainer.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('rejects a global vector of the wrong length with WRONG_LENGTH', async () => {
    const trainer = new LocalTrainer(spec);
    await expect(trainer.train(new Float32Array(5), data, cfg())).rejects.toMatchObject({ code: 'WRONG_LENGTH' });
    trainer.dispose();
  });

  it('rejects data with more classes than the model outputs', async () => {
    const trainer = new LocalTrainer({ zoo: 'logreg', inputShape: [DIM], numClasses: 2 });
    const { weights } = initialWeights({ zoo: 'logreg', inputShape: [DIM], numClasses: 2 }, 1);
    await expect(trainer.train(weights, data, cfg())).rejects.toMatchObject({ code: 'SHAPE_MISMATCH' });
    trainer.dispose();
  });

  it('rejects a bad training config with BAD_CONFIG', async () => {
    const trainer = new LocalTrainer(spec);
    const { weights } = initialWeights(spec, 1);
    await expect(trainer.train(weights, data, cfg({ batchSize: 0 }))).rejects.toMatchObject({ code: 'BAD_CONFIG' });
    await expect(trainer.train(weights, data, cfg({ learningRate: -1 }))).rejects.toMatchObject({ code: 'BAD_CONFIG' });
    trainer.dispose();
  });
});
