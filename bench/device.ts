/**
 * `npm run bench -- device [--json] [--models mlp,cnn] [--runs 300] [--test 1000] [--quick]`
 *
 * Realistic device benchmark (issue 19): the 2NN and the CNN of McMahan et al. 2017, trained briefly on
 * real MNIST digits here, exported as float32, float16, int8 (per-channel affine) and int8 of the model
 * pruned to 90% (magnitude, one fine-tuning epoch, re-pruned), each measured alone in a fresh process
 * (bench/device.worker.ts) on the wasm backend with our kernels and one thread, as a constrained device
 * runs it: batch-1 inference latency p50/p99 and throughput, accuracy on held-out digits, peak RSS, the
 * artifact's size raw and gzipped (model.json + weights.bin). One more line per model (`format:
 * "train"`) is a client's training round (1 epoch of 600 digits, batch 10) with its time and peak RSS.
 *
 * With --json, stdout carries one JSON line per model × format:
 *   {"model","format","bytes","gzipBytes","p50Ms","p99Ms","throughputPerSec","accuracy","peakRssMb","sparsity"}
 * and the train lines {"model","format":"train","examples","trainMs","peakRssMb"}; also written to
 * bench/results/device.json. --quick trains and measures less (a smoke run, not figures to quote).
 * Node only: the headless Chromium run of the same matrix is not written yet.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../client/train/backend.ts';
import { LocalTrainer } from '../client/train/trainer.ts';
import { initialWeights, kernelSparsity, pruneByMagnitude, type ExportFormat, type ModelSpec } from '../shared/model/index.ts';
import { exportVersion, sizeOf } from '../server/ops/export.ts';
import { loadMnist } from '../simulations/datasets/mnist.ts';
import { flagReaders } from './args.ts';

const execFileAsync = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const WORKER = path.join(here, 'device.worker.ts');
const RESULTS = path.join(here, 'results', 'device.json');

const MODELS: Record<string, ModelSpec> = {
  mlp: { zoo: 'mlp', inputShape: [784], numClasses: 10 },
  cnn: { zoo: 'cnn', inputShape: [28, 28, 1], numClasses: 10 },
};

interface Variant {
  format: string;
  export: ExportFormat;
  weights: Float32Array;
}

async function worker(args: string[]): Promise<Record<string, number>> {
  const { stdout } = await execFileAsync(process.execPath, ['--import', import.meta.resolve('tsx'), WORKER, ...args], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, number>;
}

/** Central training on MNIST digits (the bench needs a model that has learned something, not a federation). */
async function trained(spec: ModelSpec, examples: number, epochs: number): Promise<{ weights: Float32Array; prunedWeights: Float32Array }> {
  const { train } = loadMnist({ trainSize: examples, testSize: 0, seed: 3 });
  const data = 'zoo' in spec && spec.zoo === 'cnn' ? { ...train, featureShape: [28, 28, 1] } : train;
  const trainer = new LocalTrainer(spec);
  let weights = initialWeights(spec, 1).weights;
  for (let e = 0; e < epochs; e++) {
    const r = await trainer.train(weights, data, { epochs: 1, batchSize: 20, learningRate: 0.05, proxMu: 0, seed: e });
    weights = weights.map((w, i) => w + r.delta[i]);
  }
  // Han et al. 2015: prune, retrain the survivors, prune again (the retrained zeros moved).
  const manifest = trainer.manifest;
  const pruned = weights.slice();
  pruneByMagnitude(pruned, manifest, 0.9);
  const r = await trainer.train(pruned, data, { epochs: 1, batchSize: 20, learningRate: 0.02, proxMu: 0, seed: 99 });
  const prunedWeights = pruned.map((w, i) => w + r.delta[i]);
  pruneByMagnitude(prunedWeights, manifest, 0.9);
  trainer.dispose();
  return { weights, prunedWeights };
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { json: { type: 'boolean' }, models: { type: 'string', default: 'mlp,cnn' }, runs: { type: 'string', default: '300' }, test: { type: 'string', default: '1000' }, quick: { type: 'boolean' } },
    strict: true,
  });
  const flags = flagReaders('device');
  const models = flags.list(values.models!);
  for (const m of models) if (!MODELS[m]) throw new Error(`bench device: unknown model ${m} (mlp, cnn)`);
  const runs = values.quick ? 30 : flags.int(values.runs!, 'runs');
  const testSize = values.quick ? 200 : flags.int(values.test!, 'test');
  await selectBackend({ prefer: 'wasm' });
  const lines: Record<string, unknown>[] = [];
  const emit = (line: Record<string, unknown>) => {
    lines.push(line);
    if (values.json) process.stdout.write(`${JSON.stringify(line)}\n`);
    else process.stdout.write(`${Object.entries(line).map(([k, v]) => `${k}=${v}`).join('  ')}\n`);
  };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cohort-device-'));
  try {
    for (const name of models) {
      const spec = MODELS[name];
      const cnn = name === 'cnn';
      const { weights, prunedWeights } = await trained(spec, values.quick ? 300 : cnn ? 3000 : 8000, values.quick ? 1 : 2);
      const variants: Variant[] = [
        { format: 'float32', export: 'float32', weights },
        { format: 'float16', export: 'float16', weights },
        { format: 'int8', export: 'int8', weights },
        { format: 'int8-pruned90', export: 'int8', weights: prunedWeights },
      ];
      for (const v of variants) {
        const dir = path.join(tmp, `${name}-${v.format}`);
        fs.mkdirSync(dir);
        const e = exportVersion({ model: spec }, v.weights, v.export);
        fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(e.modelJson));
        fs.writeFileSync(path.join(dir, 'weights.bin'), e.weightsBin);
        const size = sizeOf(e, v.export);
        const m = await worker(['infer', dir, String(testSize), String(runs)]);
        emit({ model: name, format: v.format, backend: 'wasm', bytes: size.bytes, gzipBytes: size.gzipBytes, ...m, sparsity: Math.round(kernelSparsity(v.weights, e.manifest) * 1000) / 1000 });
      }
      const examples = values.quick ? 100 : 600;
      const t = await worker(['train', path.join(tmp, `${name}-float32`), String(examples)]);
      emit({ model: name, format: 'train', backend: 'wasm', examples, ...t });
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    tf.disposeVariables();
  }
  if (!values.quick) {
    fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
    fs.writeFileSync(RESULTS, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  }
}
