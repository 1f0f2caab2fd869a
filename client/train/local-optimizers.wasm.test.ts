// Local optimizers (shared/fl/local-optimizers.ts) in the trainer, on the wasm backend with our kernels.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { seededRng } from '../../shared/random.ts';
import { initialWeights, type ModelSpec } from '../../shared/model/index.ts';
import { LocalOptimizerSchema } from '../../shared/fl/local-optimizers.ts';
import { fromArrays, type Dataset } from '../data/dataset.ts';
import { selectBackend } from './backend.ts';
import { LocalTrainer, type TrainingConfig } from './trainer.ts';

const DIM = 12;
const CLASSES = 3;
const spec: ModelSpec = { zoo: 'logreg', inputShape: [DIM], numClasses: CLASSES };

function blobs(n: number, seed: number): Dataset {
  const rng = seededRng(seed);
  const rows: number[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    labels.push(i % CLASSES);
    rows.push(Array.from({ length: DIM }, (_, j) => (j % CLASSES === i % CLASSES ? 1.5 : 0) + rng.next() - 0.5));
  }
  return fromArrays(rows, labels, { numClasses: CLASSES });
}

const data = blobs(60, 1);
const held = blobs(60, 2);
const fullBatch = (over: Partial<TrainingConfig>): TrainingConfig => ({ epochs: 1, batchSize: data.size, learningRate: 0.01, proxMu: 0, seed: 1, ...over });
const opt = (x: unknown) => LocalOptimizerSchema.parse(x);
const bits = (v: Float32Array) => Array.from(new Uint32Array(v.buffer, v.byteOffset, v.length));

beforeAll(async () => {
  expect(await selectBackend({ prefer: 'wasm' })).toBe('wasm');
});

describe('local optimizers', () => {
  it('adam, one full-batch step: Δ = −η·m̂/(√v̂ + ε) = −η·g/(|g| + ε), so each moved weight moves by η against its gradient', async () => {
    // Kingma & Ba 2015, Algorithm 1, t = 1: m̂ = g, v̂ = g². The SGD step from the same point is −η_s·g,
    // which gives g's sign; every coordinate with |g| ≫ ε moves by exactly η (to float32 precision).
    const trainer = new LocalTrainer(spec);
    const { weights: w0 } = initialWeights(spec, 1);
    const sgd = await trainer.train(w0, data, fullBatch({}));
    const adam = await trainer.train(w0, data, fullBatch({ optimizer: opt({ name: 'adam', epsilon: 1e-8 }) }));
    let moved = 0;
    for (let i = 0; i < w0.length; i++) {
      const g = -sgd.delta[i] / 0.01;
      if (Math.abs(g) < 1e-4) continue;
      moved++;
      expect(adam.delta[i]).toBeCloseTo(-0.01 * Math.sign(g), 5);
    }
    expect(moved).toBeGreaterThan(w0.length / 2);
    trainer.dispose();
  });

  it('momentum: with μ = 0 it is SGD; two full-batch steps with μ > 0 go further along the first gradient', async () => {
    const trainer = new LocalTrainer(spec);
    const { weights: w0 } = initialWeights(spec, 2);
    const two = (o?: unknown) => trainer.train(w0, data, fullBatch({ epochs: 2, ...(o ? { optimizer: opt(o) } : {}) }));
    const sgd = await two();
    const zero = await two({ name: 'momentum', momentum: 0 });
    for (let i = 0; i < w0.length; i++) expect(zero.delta[i]).toBeCloseTo(sgd.delta[i], 6);
    // v₁ = g₁, v₂ = μ g₁ + g₂: the momentum run = SGD run − η μ g₁ + (a second-order change in g₂).
    const one = await trainer.train(w0, data, fullBatch({}));
    const heavy = await two({ name: 'momentum', momentum: 0.9 });
    const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i], 0);
    const extra = heavy.delta.map((x, i) => x - sgd.delta[i]);
    // The extra displacement points along the first step (−η g₁): cosine close to 1.
    const cos = dot(extra, one.delta) / Math.sqrt(dot(extra, extra) * dot(one.delta, one.delta));
    expect(cos).toBeGreaterThan(0.95);
    trainer.dispose();
  });

  it("state resets every round: two rounds from the same weights and seed give the same update", async () => {
    const trainer = new LocalTrainer(spec);
    const { weights: w0 } = initialWeights(spec, 3);
    for (const o of [{ name: 'adam' }, { name: 'momentum', nesterov: true }]) {
      const cfg = { epochs: 2, batchSize: 8, learningRate: 0.05, proxMu: 0, seed: 4, optimizer: opt(o) };
      const a = await trainer.train(w0, data, cfg);
      const b = await trainer.train(w0, data, cfg);
      expect(bits(b.delta)).toEqual(bits(a.delta));
    }
    trainer.dispose();
  });

  it('FedProx composes with adam: a large μ keeps the local model closer to the global one', async () => {
    const trainer = new LocalTrainer(spec);
    const { weights: w0 } = initialWeights(spec, 4);
    const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    const cfg = { epochs: 5, batchSize: 10, learningRate: 0.02, seed: 2, optimizer: opt({ name: 'adam' }) };
    const plain = await trainer.train(w0, data, { ...cfg, proxMu: 0 });
    const prox = await trainer.train(w0, data, { ...cfg, proxMu: 50 });
    expect(norm(prox.delta)).toBeLessThan(0.5 * norm(plain.delta));
    trainer.dispose();
  });

  it('adam learns the task and leaks no tensors', async () => {
    const trainer = new LocalTrainer(spec);
    const { weights: w0, manifest } = initialWeights(spec, 5);
    await trainer.train(w0, data, fullBatch({ optimizer: opt({ name: 'adam' }) })); // model built
    const start = tf.memory().numTensors;
    const r = await trainer.train(w0, data, { epochs: 3, batchSize: 10, learningRate: 0.05, proxMu: 0.1, seed: 1, optimizer: opt({ name: 'adam' }) });
    expect(tf.memory().numTensors).toBe(start);
    expect(manifest.length).toBeGreaterThan(0);
    const after = await trainer.evaluate(w0.map((x, i) => x + r.delta[i]), held);
    expect(after.accuracy).toBeGreaterThan(0.9);
    trainer.dispose();
  });

  it("q-FedAvg's initialLoss: the global model's mean loss on the data, measured before training", async () => {
    const trainer = new LocalTrainer(spec);
    const { weights: w0 } = initialWeights(spec, 7);
    const expected = (await trainer.evaluate(w0, data)).loss;
    const r = await trainer.train(w0, data, { epochs: 2, batchSize: 10, learningRate: 0.1, proxMu: 0, seed: 1, initialLoss: true });
    expect(r.metrics.initialLoss).toBeCloseTo(expected, 6);
    expect(r.metrics.loss).toBeLessThan(expected); // training moved on from there
    const plain = await trainer.train(w0, data, { epochs: 2, batchSize: 10, learningRate: 0.1, proxMu: 0, seed: 1 });
    expect(plain.metrics.initialLoss).toBeUndefined();
    expect(bits(plain.delta)).toEqual(bits(r.delta)); // measuring does not change training
    trainer.dispose();
  });

  it('refuses an invalid optimizer with a BAD_CONFIG error naming the field', async () => {
    const trainer = new LocalTrainer(spec);
    const { weights: w0 } = initialWeights(spec, 6);
    const bad = { name: 'adam', beta1: 1, beta2: 0.999, epsilon: 1e-7 } as unknown as TrainingConfig['optimizer'];
    await expect(trainer.train(w0, data, fullBatch({ optimizer: bad }))).rejects.toMatchObject({ code: 'BAD_CONFIG', message: expect.stringContaining('beta1') });
    trainer.dispose();
  });
});
