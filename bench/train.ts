/**
 * `npm run bench -- train [--json] [--models mlp,cnn] [--batches 10,50] [--backends tensorflow,wasm,cpu]
 *   [--workers 1,N] [--repeats 3] [--seconds 2] [--stock] [--kernels]`
 *
 * Local-training throughput (samples/s) of the zoo's 2NN (`mlp`) and CNN (McMahan et al. 2017) on real
 * MNIST digits (the `mnist` package), per tfjs backend, with one worker thread and with a pool
 * (default N = os.availableParallelism()). Every measurement runs through a TrainingPool, so each
 * backend lives in its own worker threads, as in simulations. Per configuration: one warm-up task per
 * worker (model build, wasm compile, JIT), then `--repeats` rounds in which every worker trains one
 * epoch on its own shard of about `--seconds` seconds of work; a round's throughput is all samples over
 * the round's wall time, and the reported value is the median round.
 *
 * `--stock` runs tfjs's own kernels (COHORT_STOCK_KERNELS=1), for before/after comparisons.
 * Backends that cannot load, and models a backend cannot train, are reported with samplesPerSec null.
 *
 * With --json, stdout carries one JSON line per configuration:
 *   {"model","batch","backend","workers","samplesPerSec"}
 * The same lines are written to bench/results/train.json.
 *
 * `--kernels` instead times each training kernel of the 2NN and CNN at batch 10 on the wasm backend,
 * first tfjs's stock kernel, then ours (kernels.ts), and the cpu backend's filter gradient likewise:
 *   {"kernel","shape","backend","stockMs","oursMs"} (median of --repeats calls, after a warm-up call;
 * null where the stock backend has no such kernel), written to bench/results/train-kernels.json.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CohortError } from '../shared/errors.ts';
import { initialWeights, type ModelSpec } from '../shared/model/index.ts';
import { subset, type Dataset } from '../client/data/dataset.ts';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../client/train/backend.ts';
import { installCpuKernels, installWasmKernels } from '../client/train/kernels.ts';
import { TrainingPool } from '../client/node/pool.ts';
import { loadMnist } from '../simulations/datasets/mnist.ts';
import { flagReaders } from './args.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.join(here, 'results', 'train.json');
const KERNEL_RESULTS = path.join(here, 'results', 'train-kernels.json');

const MODELS: Record<string, ModelSpec> = {
  mlp: { zoo: 'mlp', inputShape: [784], numClasses: 10 },
  cnn: { zoo: 'cnn', inputShape: [28, 28, 1], numClasses: 10 },
};

export interface TrainBenchLine {
  model: string;
  batch: number;
  backend: string;
  workers: number;
  samplesPerSec: number | null;
}

interface Options {
  json: boolean;
  models: string[];
  batches: number[];
  backends: string[];
  workers: number[];
  repeats: number;
  seconds: number;
  stock: boolean;
  kernels: boolean;
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      json: { type: 'boolean', default: false },
      models: { type: 'string', default: 'mlp,cnn' },
      batches: { type: 'string', default: '10,50' },
      backends: { type: 'string', default: 'tensorflow,wasm,cpu' },
      workers: { type: 'string', default: `1,${os.availableParallelism()}` },
      repeats: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '2' },
      stock: { type: 'boolean', default: false },
      kernels: { type: 'boolean', default: false },
    },
  });
  const { int, ints, list, num } = flagReaders('train');
  const models = list(values.models);
  for (const m of models) if (!MODELS[m]) throw new Error(`bench train: unknown model "${m}" (known: ${Object.keys(MODELS).join(', ')})`);
  const seconds = num(values.seconds, 'seconds', (v) => v > 0, '> 0');
  return {
    json: values.json,
    models,
    batches: ints(values.batches, 'batches'),
    backends: list(values.backends),
    workers: [...new Set(ints(values.workers, 'workers'))],
    repeats: int(values.repeats, 'repeats'),
    seconds,
    stock: values.stock,
    kernels: values.kernels,
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function asImages(ds: Dataset, spec: ModelSpec): Dataset {
  return 'zoo' in spec && spec.zoo === 'cnn' ? { ...ds, featureShape: [28, 28, 1] } : ds;
}

/** One epoch on `shard` in every worker at once; returns samples/s over the wall time. */
async function round(pool: TrainingPool, spec: ModelSpec, weights: Float32Array, shards: string[], size: number, batch: number): Promise<number> {
  const cfg = { epochs: 1, batchSize: batch, learningRate: 0.05, proxMu: 0, seed: 1 };
  const start = performance.now();
  await Promise.all(shards.map((id) => pool.train(spec, weights, id, cfg)));
  return (shards.length * size) / ((performance.now() - start) / 1000);
}

async function measure(
  pool: TrainingPool,
  workers: number,
  model: string,
  batch: number,
  digits: Dataset,
  opts: Options,
): Promise<number> {
  const spec = MODELS[model];
  const { weights } = initialWeights(spec, 1);
  const perWorker = Math.floor(digits.size / workers);
  const shardOf = (w: number, size: number): Dataset => asImages(subset(digits, Int32Array.from({ length: size }, (_, i) => w * perWorker + i)), spec);
  // Warm-up on a few batches per worker; a second pass estimates the speed for sizing the real shards.
  const warmSize = Math.min(perWorker - (perWorker % batch), 5 * batch);
  const warmIds = Array.from({ length: workers }, (_, w) => `${model}-warm-${w}`);
  warmIds.forEach((id, w) => pool.registerDataset(id, shardOf(w, warmSize)));
  await round(pool, spec, weights, warmIds, warmSize, batch);
  const estimate = await round(pool, spec, weights, warmIds, warmSize, batch);
  warmIds.forEach((id) => pool.unregisterDataset(id));
  const wanted = Math.round(((estimate / workers) * opts.seconds) / batch) * batch;
  const size = Math.max(warmSize, Math.min(wanted, perWorker - (perWorker % batch)));
  const ids = Array.from({ length: workers }, (_, w) => `${model}-${w}`);
  ids.forEach((id, w) => pool.registerDataset(id, shardOf(w, size)));
  const runs: number[] = [];
  for (let r = 0; r < opts.repeats; r++) runs.push(await round(pool, spec, weights, ids, size, batch));
  ids.forEach((id) => pool.unregisterDataset(id));
  process.stderr.write(
    `  ${model} B=${batch} workers=${workers}: ${runs.map((x) => x.toFixed(0)).join(', ')} samples/s (shard ${size} per worker)\n`,
  );
  return median(runs);
}

function printTable(lines: TrainBenchLine[]): void {
  const header = ['model', 'batch', 'backend', 'workers', 'samples/s'];
  const rows = lines.map((l) => [l.model, String(l.batch), l.backend, String(l.workers), l.samplesPerSec === null ? 'n/a' : l.samplesPerSec.toFixed(0)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(header));
  for (const r of rows) console.log(line(r));
}

// ---------------------------------------------------------------------------------------------
// --kernels

export interface KernelBenchLine {
  kernel: string;
  shape: string;
  backend: string;
  stockMs: number | null;
  oursMs: number;
}

interface KernelCase {
  kernel: string;
  shape: string;
  inputs: () => tf.NamedTensorMap;
  attrs: Record<string, unknown>;
}

const rand = (shape: number[]): tf.Tensor => tf.randomUniform(shape, -1, 1, 'float32', 7);
const conv = { strides: [1, 1], pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined };

/** The kernels one training step of the 2NN and the CNN runs, at batch 10. */
const KERNEL_CASES: KernelCase[] = [
  { kernel: 'Conv2D', shape: 'conv1 x[10,28,28,1] f[5,5,1,32]', inputs: () => ({ x: rand([10, 28, 28, 1]), filter: rand([5, 5, 1, 32]) }), attrs: { ...conv, dilations: [1, 1] } },
  { kernel: 'Conv2D', shape: 'conv2 x[10,14,14,32] f[5,5,32,64]', inputs: () => ({ x: rand([10, 14, 14, 32]), filter: rand([5, 5, 32, 64]) }), attrs: { ...conv, dilations: [1, 1] } },
  { kernel: 'Conv2DBackpropFilter', shape: 'conv1 dF[5,5,1,32]', inputs: () => ({ x: rand([10, 28, 28, 1]), dy: rand([10, 28, 28, 32]) }), attrs: { ...conv, filterShape: [5, 5, 1, 32] } },
  { kernel: 'Conv2DBackpropFilter', shape: 'conv2 dF[5,5,32,64]', inputs: () => ({ x: rand([10, 14, 14, 32]), dy: rand([10, 14, 14, 64]) }), attrs: { ...conv, filterShape: [5, 5, 32, 64] } },
  { kernel: 'Conv2DBackpropInput', shape: 'conv2 dX[10,14,14,32]', inputs: () => ({ dy: rand([10, 14, 14, 64]), filter: rand([5, 5, 32, 64]) }), attrs: { ...conv, inputShape: [10, 14, 14, 32] } },
  { kernel: 'BatchMatMul', shape: 'cnn fc1 [10,3136]·[3136,512]', inputs: () => ({ a: rand([10, 3136]), b: rand([3136, 512]) }), attrs: { transposeA: false, transposeB: false } },
  { kernel: 'BatchMatMul', shape: 'cnn fc1 dX [10,512]·[3136,512]ᵀ', inputs: () => ({ a: rand([10, 512]), b: rand([3136, 512]) }), attrs: { transposeA: false, transposeB: true } },
  { kernel: 'BatchMatMul', shape: 'cnn fc1 dW [10,3136]ᵀ·[10,512]', inputs: () => ({ a: rand([10, 3136]), b: rand([10, 512]) }), attrs: { transposeA: true, transposeB: false } },
  { kernel: 'BatchMatMul', shape: '2NN fc1 [10,784]·[784,200]', inputs: () => ({ a: rand([10, 784]), b: rand([784, 200]) }), attrs: { transposeA: false, transposeB: false } },
  { kernel: 'BatchMatMul', shape: '2NN fc2 dX [10,200]·[200,200]ᵀ', inputs: () => ({ a: rand([10, 200]), b: rand([200, 200]) }), attrs: { transposeA: false, transposeB: true } },
  { kernel: 'BatchMatMul', shape: '2NN fc1 dW [10,784]ᵀ·[10,200]', inputs: () => ({ a: rand([10, 784]), b: rand([10, 200]) }), attrs: { transposeA: true, transposeB: false } },
  {
    kernel: 'MaxPoolGrad',
    shape: 'pool1 x[10,28,28,32]',
    inputs: () => ({ dy: rand([10, 14, 14, 32]), input: rand([10, 28, 28, 32]), output: rand([10, 14, 14, 32]) }),
    attrs: { filterSize: [2, 2], strides: [2, 2], pad: 'valid', dimRoundingMode: undefined },
  },
  { kernel: 'Sum', shape: 'conv1 bias grad [10,28,28,32] over 0,1,2', inputs: () => ({ x: rand([10, 28, 28, 32]) }), attrs: { axis: [0, 1, 2], keepDims: false } },
  { kernel: 'Identity', shape: 'fc1 weights [3136,512]', inputs: () => ({ x: rand([3136, 512]) }), attrs: {} },
];

/**
 * Median milliseconds of one kernel call (after one warm-up call), or null if not registered. Every
 * call gets freshly made inputs, as in training, where weights change every step (the stock wasm
 * matmul and convolution cache XNNPACK operators per weight tensor). wasm and cpu kernels are
 * synchronous, so the wall time of the call is the kernel's time.
 */
function timeKernel(c: KernelCase, repeats: number): number | null {
  if (!tf.getKernel(c.kernel, tf.getBackend())) return null;
  const once = (): number => {
    const inputs = c.inputs();
    const start = performance.now();
    const out = tf.engine().runKernel(c.kernel, inputs, c.attrs as tf.NamedAttrMap) as tf.Tensor;
    const ms = performance.now() - start;
    tf.dispose([out, ...Object.values(inputs)]);
    return ms;
  };
  once();
  return median(Array.from({ length: repeats }, once));
}

async function runKernels(opts: Options): Promise<void> {
  const lines: KernelBenchLine[] = [];
  const emit = (l: KernelBenchLine): void => {
    lines.push(l);
    if (opts.json) process.stdout.write(`${JSON.stringify(l)}\n`);
    else process.stderr.write(`${l.backend} ${l.kernel} ${l.shape}: stock ${l.stockMs?.toFixed(2) ?? 'n/a'} ms, ours ${l.oursMs.toFixed(2)} ms\n`);
  };
  const repeats = Math.max(opts.repeats, 5);
  // Stock kernels first: selectBackend skips our kernels with COHORT_STOCK_KERNELS=1.
  process.env.COHORT_STOCK_KERNELS = '1';
  await selectBackend({ prefer: 'wasm' });
  const stock = KERNEL_CASES.map((c) => timeKernel(c, repeats));
  installWasmKernels();
  KERNEL_CASES.forEach((c, i) => emit({ kernel: c.kernel, shape: c.shape, backend: 'wasm', stockMs: stock[i], oursMs: timeKernel(c, repeats) as number }));
  // The cpu backend: its stock filter gradient takes seconds per call, so one timed call each.
  await tf.setBackend('cpu');
  const cpuCases = KERNEL_CASES.filter((c) => c.kernel === 'Conv2DBackpropFilter');
  const cpuStock = cpuCases.map((c) => timeKernel(c, 1));
  installCpuKernels();
  cpuCases.forEach((c, i) => emit({ kernel: c.kernel, shape: c.shape, backend: 'cpu', stockMs: cpuStock[i], oursMs: timeKernel(c, 3) as number }));
  if (!opts.json) {
    const header = ['backend', 'kernel', 'shape', 'stock ms', 'ours ms'];
    const rows = lines.map((l) => [l.backend, l.kernel, l.shape, l.stockMs === null ? 'missing' : l.stockMs.toFixed(2), l.oursMs.toFixed(2)]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (cells: string[]): string => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
    console.log(line(header));
    for (const r of rows) console.log(line(r));
  }
  fs.mkdirSync(path.dirname(KERNEL_RESULTS), { recursive: true });
  fs.writeFileSync(KERNEL_RESULTS, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
}

// ---------------------------------------------------------------------------------------------

export async function run(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  if (opts.kernels) return runKernels(opts);
  if (opts.stock) process.env.COHORT_STOCK_KERNELS = '1';
  const { train: digits } = loadMnist({ trainSize: 8000, testSize: 0, seed: 1 });
  const lines: TrainBenchLine[] = [];
  const emit = (l: TrainBenchLine): void => {
    lines.push(l);
    if (opts.json) process.stdout.write(`${JSON.stringify(l)}\n`);
  };

  for (const backend of opts.backends) {
    for (const workers of opts.workers) {
      const pool = new TrainingPool({ workers, backend });
      let unavailable = false;
      try {
        for (const model of opts.models) {
          for (const batch of opts.batches) {
            let samplesPerSec: number | null = null;
            if (!unavailable) {
              process.stderr.write(`${backend}${opts.stock ? ' (stock kernels)' : ''}: ${model} B=${batch}, ${workers} worker(s)\n`);
              try {
                samplesPerSec = await measure(pool, workers, model, batch, digits, opts);
              } catch (err) {
                if (!(err instanceof CohortError)) throw err;
                process.stderr.write(`  skipped: ${err.code}: ${err.message.split('\n')[0]}\n`);
                unavailable = err.code === 'BACKEND_UNAVAILABLE';
              }
            }
            emit({ model, batch, backend, workers, samplesPerSec });
          }
        }
      } finally {
        await pool.close();
      }
    }
  }

  if (!opts.json) printTable(lines);
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(RESULTS, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
}
