/**
 * One measurement of `npm run bench -- device`, alone in its process so that its peak RSS is its own:
 *   node --import tsx bench/device.worker.ts infer <dir> <testSize> <runs>
 *   node --import tsx bench/device.worker.ts train <dir> <examples>
 * `infer` loads <dir>/model.json (any of our formats, through shared/model's artifactHandler), measures
 * accuracy on <testSize> held-out MNIST digits and the latency of <runs> batch-1 predictions after 20
 * warm-up ones; `train` runs one local training round (1 epoch, batch 10) of the float32 model on
 * <examples> digits, as a client's round would. Both on the wasm backend with our kernels, one thread.
 * Prints one JSON line: {p50Ms, p99Ms, throughputPerSec, accuracy, peakRssMb} or {trainMs, peakRssMb}.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../client/train/backend.ts';
import { LocalTrainer } from '../client/train/trainer.ts';
import { artifactHandler, flattenWeights, type ArtifactJson } from '../shared/model/index.ts';
import { loadMnist } from '../simulations/datasets/mnist.ts';

const peakRssMb = () => Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function loadModel(dir: string): Promise<tf.LayersModel> {
  const json = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8')) as ArtifactJson;
  return tf.loadLayersModel(artifactHandler(json, new Uint8Array(readFileSync(path.join(dir, 'weights.bin')))));
}

async function main(): Promise<void> {
  const [mode, dir, a, b] = process.argv.slice(2);
  await selectBackend({ prefer: 'wasm' });
  const model = await loadModel(dir);
  const inputShape = model.inputs[0].shape.slice(1) as number[];
  if (mode === 'train') {
    const { train } = loadMnist({ trainSize: Number(a), testSize: 0, seed: 7 });
    const data = { ...train, featureShape: inputShape };
    const spec = { layers: model.toJSON(null, false) as Record<string, unknown> };
    const weights = flattenWeights(model);
    const trainer = new LocalTrainer(spec);
    const t0 = performance.now();
    await trainer.train(weights, data, { epochs: 1, batchSize: 10, learningRate: 0.05, proxMu: 0, seed: 1 });
    const trainMs = performance.now() - t0;
    process.stdout.write(`${JSON.stringify({ trainMs: Math.round(trainMs), peakRssMb: peakRssMb() })}\n`);
    return;
  }
  const testSize = Number(a);
  const runs = Number(b);
  const { test } = loadMnist({ trainSize: 0, testSize, seed: 11 });
  const width = test.features.length / test.size;
  let correct = 0;
  for (let start = 0; start < test.size; start += 100) {
    const n = Math.min(100, test.size - start);
    const pred = tf.tidy(() => (model.predict(tf.tensor(test.features.subarray(start * width, (start + n) * width), [n, ...inputShape])) as tf.Tensor).argMax(-1));
    const classes = (await pred.data()) as Int32Array;
    pred.dispose();
    for (let i = 0; i < n; i++) if (classes[i] === test.labels[start + i]) correct++;
  }
  const times: number[] = [];
  for (let r = 0; r < runs + 20; r++) {
    const i = r % test.size;
    const x = tf.tensor(test.features.subarray(i * width, (i + 1) * width), [1, ...inputShape]);
    const t0 = performance.now();
    const y = model.predict(x) as tf.Tensor;
    await y.data();
    const ms = performance.now() - t0;
    tf.dispose([x, y]);
    if (r >= 20) times.push(ms);
  }
  const total = times.reduce((s, t) => s + t, 0);
  times.sort((p, q) => p - q);
  const round = (v: number) => Math.round(v * 1000) / 1000;
  process.stdout.write(
    `${JSON.stringify({ p50Ms: round(quantile(times, 0.5)), p99Ms: round(quantile(times, 0.99)), throughputPerSec: Math.round((1000 * times.length) / total), accuracy: correct / test.size, peakRssMb: peakRssMb() })}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
