// A few SGD steps of each zoo model on the wasm backend (our kernels) and on the cpu backend (tfjs's
// reference kernels, plus our cpu Conv2DBackpropFilter, itself checked in kernels.test.ts) from the
// same weights, data and seed: the updates must agree.
//
// Tolerance: max |Δ_wasm − Δ_cpu| ≤ 1e-4 · max |Δ_cpu| (observed: about 1e-6). Each backend sums in
// its own order, and the CNN's second convolution goes through Winograd on wasm. The images have
// exact-zero backgrounds like MNIST digits: that is where a ReLU's gradient depends on an output being
// exactly 0, which Winograd alone would not preserve (see zeroDeadOutputs in kernels.ts).
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { seededRng } from '../../shared/random.ts';
import { initialWeights, type ModelSpec } from '../../shared/model/index.ts';
import { fromArrays, type Dataset } from '../data/dataset.ts';
import { selectBackend } from './backend.ts';
import { installCpuKernels } from './kernels.ts';
import { LocalTrainer, type TrainResult, type TrainingConfig } from './trainer.ts';

const TOLERANCE = 1e-4;

beforeAll(async () => {
  expect(await selectBackend({ prefer: 'wasm' })).toBe('wasm');
  expect(installCpuKernels()).toBe(true);
});

/** 28×28 "digits": a random stroke-filled box on an exact-zero background, like MNIST. */
function images(n: number, shape: number[], classes: number, seed: number): Dataset {
  const rng = seededRng(seed);
  const side = 28;
  const features = new Float32Array(n * side * side);
  for (let i = 0; i < n; i++) {
    const top = 3 + Math.floor(rng.next() * 8);
    const left = 3 + Math.floor(rng.next() * 8);
    const h = 8 + Math.floor(rng.next() * 10);
    const w = 6 + Math.floor(rng.next() * 10);
    for (let r = top; r < top + h; r++) {
      for (let c = left; c < left + w; c++) if (rng.next() < 0.6) features[(i * side + r) * side + c] = rng.next();
    }
  }
  const labels = Array.from({ length: n }, (_, i) => i % classes);
  return fromArrays(features, labels, { featureShape: shape, numClasses: classes });
}

async function trainOn(backend: 'wasm' | 'cpu', spec: ModelSpec, data: Dataset, cfg: TrainingConfig): Promise<TrainResult> {
  await tf.setBackend(backend);
  const trainer = new LocalTrainer(spec);
  try {
    const { weights } = initialWeights(spec, 11);
    return await trainer.train(weights, data, cfg);
  } finally {
    trainer.dispose();
    await tf.setBackend('wasm');
  }
}

const cases: { name: string; spec: ModelSpec; data: Dataset; cfg: TrainingConfig }[] = [
  {
    name: 'logreg',
    spec: { zoo: 'logreg', inputShape: [784], numClasses: 10 },
    data: images(40, [784], 10, 1),
    cfg: { epochs: 1, batchSize: 10, learningRate: 0.1, proxMu: 0, seed: 1 },
  },
  {
    name: 'mlp (2NN)',
    spec: { zoo: 'mlp', inputShape: [784], numClasses: 10 },
    data: images(40, [784], 10, 2),
    cfg: { epochs: 1, batchSize: 10, learningRate: 0.1, proxMu: 0.01, seed: 2 },
  },
  {
    // The full-size McMahan CNN (28×28, 1,663,370 parameters); 3 steps of batch 4 keep the cpu side short.
    name: 'cnn',
    spec: { zoo: 'cnn', inputShape: [28, 28, 1], numClasses: 10 },
    data: images(12, [28, 28, 1], 10, 3),
    cfg: { epochs: 1, batchSize: 4, learningRate: 0.05, proxMu: 0, seed: 3 },
  },
];

describe.each(cases)('$name: SGD steps agree across backends', ({ spec, data, cfg }) => {
  it(`wasm vs cpu within ${TOLERANCE} of the update's scale`, async () => {
    const wasm = await trainOn('wasm', spec, data, cfg);
    const cpu = await trainOn('cpu', spec, data, cfg);
    expect(wasm.delta.length).toBe(cpu.delta.length);
    let err = 0;
    let scale = 0;
    for (let i = 0; i < cpu.delta.length; i++) {
      err = Math.max(err, Math.abs(wasm.delta[i] - cpu.delta[i]));
      scale = Math.max(scale, Math.abs(cpu.delta[i]));
    }
    expect(scale).toBeGreaterThan(0);
    expect(err).toBeLessThanOrEqual(TOLERANCE * scale);
    expect(wasm.metrics.loss).toBeCloseTo(cpu.metrics.loss, 4);
    expect(wasm.metrics.accuracy).toBe(cpu.metrics.accuracy);
  });
});
