// Runs on the cpu backend (with our Conv2DBackpropFilter, see kernels.ts); its own process.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, expect, it } from 'vitest';
import { seededRng } from '../../shared/random.ts';
import { initialWeights, manifestSize, type ModelSpec } from '../../shared/model/index.ts';
import { fromArrays } from '../data/dataset.ts';
import { selectBackend } from './backend.ts';
import { LocalTrainer } from './trainer.ts';

beforeAll(async () => {
  expect(await selectBackend({ prefer: 'cpu' })).toBe('cpu');
});

// The full-size McMahan CNN on 28×28 rows. (tfjs's own cpu Conv2DBackpropFilter needed about 3 s per
// example here; ours, registered by selectBackend, needs milliseconds.)
it('trains the CNN one epoch on flat rows reshaped to the image input', async () => {
  const spec: ModelSpec = { zoo: 'cnn', inputShape: [28, 28, 1], numClasses: 10 };
  const rng = seededRng(3);
  const images = fromArrays(new Float32Array(4 * 784).map(() => rng.next()), [0, 3, 7, 9], { numClasses: 10 });
  const { weights, manifest } = initialWeights(spec, 1);
  const trainer = new LocalTrainer(spec);
  const start = tf.memory().numTensors;
  const result = await trainer.train(weights, images, { epochs: 1, batchSize: 2, learningRate: 0.05, proxMu: 0.1, seed: 1 });
  expect(tf.memory().numTensors).toBe(start + manifest.length); // only the model's own weights remain
  expect(result.delta.length).toBe(manifestSize(manifest));
  expect(result.delta.every(Number.isFinite)).toBe(true);
  // The first conv kernel and the output bias both moved.
  expect(result.delta.subarray(0, 800).some((d) => d !== 0)).toBe(true);
  expect(result.delta.subarray(result.delta.length - 10).some((d) => d !== 0)).toBe(true);
  expect(Number.isFinite(result.metrics.loss)).toBe(true);
  trainer.dispose();
});
