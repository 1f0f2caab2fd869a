/**
 * Weights travel as one flat Float32Array plus a manifest of (name, shape) in model.getWeights() order.
 * Names are the layer-scoped names the model was built with (`fc1/kernel`), not tfjs's process-unique
 * variable names, so two processes building the same spec agree on the manifest.
 */
import * as tf from '@tensorflow/tfjs';
import { CohortError } from '../errors.ts';
import { seededRng, type Rng } from '../random.ts';
import { buildModel } from './build.ts';
import type { ModelSpec } from './spec.ts';

export interface WeightManifestEntry {
  name: string;
  shape: number[];
}
export type WeightManifest = WeightManifestEntry[];

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function manifestOf(model: tf.LayersModel): WeightManifest {
  return model.weights.map((w) => ({ name: w.originalName, shape: [...w.shape] as number[] }));
}

/** Total number of scalars the manifest describes. */
export function manifestSize(m: WeightManifest): number {
  let n = 0;
  for (const e of m) n += sizeOf(e.shape);
  return n;
}

/** All of a model's weights, concatenated in manifest order. Creates no tensors. */
export function flattenWeights(model: tf.LayersModel): Float32Array {
  const values = model.weights.map((w) => w.read().dataSync() as Float32Array);
  let total = 0;
  for (const v of values) total += v.length;
  const flat = new Float32Array(total);
  let offset = 0;
  for (const v of values) {
    flat.set(v, offset);
    offset += v.length;
  }
  return flat;
}

/** Overwrites a model's weights from a flat vector; throws WRONG_LENGTH on a size mismatch. */
export function setFlatWeights(model: tf.LayersModel, flat: Float32Array): void {
  const manifest = manifestOf(model);
  const expected = manifestSize(manifest);
  if (flat.length !== expected) {
    throw new CohortError('WRONG_LENGTH', `weight vector has ${flat.length} values, the model has ${expected}`, {
      expected,
      actual: flat.length,
    });
  }
  const tensors: tf.Tensor[] = [];
  let offset = 0;
  for (const { shape } of manifest) {
    const n = sizeOf(shape);
    tensors.push(tf.tensor(flat.subarray(offset, offset + n), shape, 'float32'));
    offset += n;
  }
  try {
    model.setWeights(tensors);
  } finally {
    tf.dispose(tensors);
  }
}

/**
 * Fan-in and fan-out of a kernel, Keras convention (channels last): a dense kernel is [in, out]; a conv
 * kernel [...receptive field, in, out] counts its receptive field in both fans.
 */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) throw new RangeError(`fans: a kernel has rank >= 2, got [${shape}]`);
  const receptive = sizeOf(shape.slice(0, -2));
  return { fanIn: shape[shape.length - 2] * receptive, fanOut: shape[shape.length - 1] * receptive };
}

/** Glorot & Bengio 2010 ("Understanding the difficulty of training deep feedforward neural networks"). */
export function glorotLimit(shape: readonly number[]): number {
  const { fanIn, fanOut } = fans(shape);
  return Math.sqrt(6 / (fanIn + fanOut));
}

// 1-D weights that must start at one rather than zero (batch-norm scale and variance).
const ONE_INIT = /(^|\/)(gamma|moving_variance)(_\d+)?$/;

function fillWeight(out: Float32Array, entry: WeightManifestEntry, rng: Rng): void {
  if (entry.shape.length >= 2) {
    const limit = glorotLimit(entry.shape);
    for (let i = 0; i < out.length; i++) out[i] = (2 * rng.next() - 1) * limit;
  } else if (ONE_INIT.test(entry.name)) {
    out.fill(1);
  } // biases and other 1-D weights stay zero
}

/**
 * Deterministic initial weights from our own PRNG (not tfjs initializers), so the same seed gives a
 * bit-identical vector on every backend and platform: Glorot-uniform kernels, zero biases.
 */
export function initialWeights(spec: ModelSpec, seed: number): { weights: Float32Array; manifest: WeightManifest } {
  const model = buildModel(spec);
  let manifest: WeightManifest;
  try {
    manifest = manifestOf(model);
  } finally {
    model.dispose();
  }
  const weights = new Float32Array(manifestSize(manifest));
  const rng = seededRng(seed);
  let offset = 0;
  for (const entry of manifest) {
    const n = sizeOf(entry.shape);
    fillWeight(weights.subarray(offset, offset + n), entry, rng);
    offset += n;
  }
  return { weights, manifest };
}
