/**
 * One throughput measurement, the same in Node and in the browser's worker: a warm-up epoch of a few
 * batches (model build, wasm compile, JIT), then `repeats` epochs over the whole set; the median
 * epoch's samples/s.
 */
import type { Dataset } from '../client/data/dataset.ts';
import type { LocalTrainer } from '../client/train/trainer.ts';
import type { ModelSpec } from '../shared/model/index.ts';

export interface ThroughputRequest {
  spec: ModelSpec;
  batch: number;
  features: Float32Array;
  labels: Int32Array;
  /** Examples in the warm-up epoch. */
  warmup: number;
  repeats: number;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function dataset(req: ThroughputRequest, size: number): Dataset {
  const width = req.features.length / req.labels.length;
  const shape = 'zoo' in req.spec && req.spec.zoo === 'cnn' ? [28, 28, 1] : [width];
  return { features: req.features.subarray(0, size * width), labels: req.labels.subarray(0, size), featureShape: shape, numClasses: 10, size };
}

export async function trainThroughput(trainer: LocalTrainer, weights: Float32Array, req: ThroughputRequest): Promise<{ samplesPerSec: number; runs: number[] }> {
  const cfg = { epochs: 1, batchSize: req.batch, learningRate: 0.05, proxMu: 0, seed: 1 };
  await trainer.train(weights, dataset(req, req.warmup), cfg);
  const all = dataset(req, req.labels.length);
  const runs: number[] = [];
  for (let r = 0; r < req.repeats; r++) {
    const start = performance.now();
    await trainer.train(weights, all, cfg);
    runs.push(all.size / ((performance.now() - start) / 1000));
  }
  return { samplesPerSec: median(runs), runs };
}
