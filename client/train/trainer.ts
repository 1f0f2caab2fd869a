/**
 * Local training on a client: E epochs of minibatch SGD from the global weights, returning the update
 * Δ = w_local − w_global. Optional FedProx proximal term μ/2‖w − w_global‖² (Li et al. 2020,
 * "Federated Optimization in Heterogeneous Networks", MLSys), applied through its gradient.
 *
 * The loop is our own (no model.fit). Batches are assembled on the JS side (a row copy per example)
 * and uploaded as small tensors: on the wasm backend, Slice and Gather copy their whole source tensor
 * per call, so slicing batches out of a device-resident dataset costs O(dataset) per batch. Every step
 * runs inside tf.tidy, and the metrics are accumulated on the device and read once at the end of the
 * epoch, so per-batch overhead is a few kernel launches and nothing leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { CohortError, ConfigError } from '../../shared/errors.ts';
import { silentLogger, type Logger } from '../../shared/log.ts';
import { cryptoRng, seededRng, shuffleInPlace, type Rng } from '../../shared/random.ts';
import { buildModel } from '../../shared/model/build.ts';
import type { ModelSpec } from '../../shared/model/spec.ts';
import { flattenWeights, manifestOf, setFlatWeights, type WeightManifest } from '../../shared/model/weights.ts';
import type { Dataset } from '../data/dataset.ts';
import { currentBackend, selectBackend } from './backend.ts';

export interface TrainingConfig {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** FedProx μ; 0 is plain FedAvg local training. */
  proxMu: number;
  /** Seeds the per-epoch shuffles; default: random. */
  seed?: number;
}

export interface TrainResult {
  /** w_local − w_global, in manifest order. */
  delta: Float32Array;
  numExamples: number;
  /** Mean cross-entropy (without the proximal term) and accuracy over the last epoch, as trained. */
  metrics: { loss: number; accuracy: number };
}

export interface EvalResult {
  numExamples: number;
  loss: number;
  accuracy: number;
}

/** The chosen backend lacks a kernel this model needs (e.g. conv gradients on wasm). */
export class UnsupportedOnBackendError extends CohortError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('UNSUPPORTED_ON_BACKEND', message, details);
  }
}

/** Data whose shape does not fit the model. */
export class ShapeMismatchError extends CohortError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('SHAPE_MISMATCH', message, details);
  }
}

// Keras' epsilon: probabilities are clipped to [ε, 1−ε] before the log.
const EPSILON = 1e-7;
const DEFAULT_EVAL_BATCH = 256;

// Gradient kernels a layer class needs when training. Checked up front so a missing kernel is a clear
// error before any work, instead of a tfjs exception halfway through the first step.
const TRAINING_KERNELS: Record<string, string[]> = {
  Conv1D: ['Conv2DBackpropFilter'],
  Conv2D: ['Conv2DBackpropFilter'],
  DepthwiseConv2D: ['DepthwiseConv2dNativeBackpropFilter'],
  SeparableConv2D: ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter'],
};
const MISSING_KERNEL = /Kernel '(\w+)' not registered for backend '(\w+)'/;

function unsupportedError(kernel: string, backend: string): UnsupportedOnBackendError {
  return new UnsupportedOnBackendError(
    `this model cannot be trained on the '${backend}' backend (it lacks the '${kernel}' kernel); ` +
      `use COHORT_BACKEND=cpu or install @tensorflow/tfjs-node`,
    { kernel, backend },
  );
}

function validateConfig(cfg: TrainingConfig): void {
  const bad = (field: string, rule: string): never => {
    throw new ConfigError(`training config: ${field} must be ${rule}`, { [field]: (cfg as unknown as Record<string, unknown>)[field] });
  };
  if (!Number.isInteger(cfg.epochs) || cfg.epochs < 1) bad('epochs', 'an integer >= 1');
  if (!Number.isInteger(cfg.batchSize) || cfg.batchSize < 1) bad('batchSize', 'an integer >= 1');
  if (!(Number.isFinite(cfg.learningRate) && cfg.learningRate > 0)) bad('learningRate', 'a finite number > 0');
  if (!(Number.isFinite(cfg.proxMu) && cfg.proxMu >= 0)) bad('proxMu', 'a finite number >= 0');
}

/** Mean categorical cross-entropy of predicted probabilities against one-hot targets. */
function crossEntropy(probs: tf.Tensor, oneHot: tf.Tensor): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.log(tf.clipByValue(probs, EPSILON, 1 - EPSILON))), -1))) as tf.Scalar;
}

function countCorrect(probs: tf.Tensor, oneHot: tf.Tensor): tf.Scalar {
  return tf.sum(tf.cast(tf.equal(tf.argMax(probs, -1), tf.argMax(oneHot, -1)), 'float32'));
}

/**
 * Adds the gradient of the FedProx term μ/2·‖w − w_global‖², which is μ·(w − w_global), to each
 * variable's data-loss gradient. Same objective as adding the term to the loss, without
 * differentiating through it.
 */
function addProximalGradient(grads: tf.NamedTensorMap, vars: tf.Variable[], anchors: tf.Tensor[], mu: number): void {
  vars.forEach((v, i) => {
    grads[v.name] = tf.add(grads[v.name], tf.mul(tf.sub(v, anchors[i]), mu));
  });
}

/** Running sums of one epoch's loss and correct predictions, kept on the device. */
class EpochStats {
  private lossSum: tf.Scalar = tf.keep(tf.scalar(0));
  private correctSum: tf.Scalar = tf.keep(tf.scalar(0));

  add(meanLoss: tf.Scalar, correct: tf.Scalar, batch: number): void {
    const loss = tf.keep(tf.add(this.lossSum, tf.mul(meanLoss, batch))) as tf.Scalar;
    const right = tf.keep(tf.add(this.correctSum, correct)) as tf.Scalar;
    tf.dispose([this.lossSum, this.correctSum]);
    this.lossSum = loss;
    this.correctSum = right;
  }

  /** Reads both sums and frees them. */
  finish(n: number): { loss: number; accuracy: number } {
    const [loss, correct] = [this.lossSum.dataSync()[0], this.correctSum.dataSync()[0]];
    this.dispose();
    return n === 0 ? { loss: 0, accuracy: 0 } : { loss: loss / n, accuracy: correct / n };
  }

  dispose(): void {
    tf.dispose([this.lossSum, this.correctSum]);
  }
}

interface StepContext {
  model: tf.LayersModel;
  optimizer: tf.Optimizer;
  vars: tf.Variable[];
  anchors: tf.Tensor[];
  mu: number;
}

/** One SGD step on a batch; adds the batch's loss and hits to `stats` when given. */
function trainStep(ctx: StepContext, xb: tf.Tensor, yb: tf.Tensor, stats: EpochStats | undefined): void {
  tf.tidy(() => {
    const seen: { correct?: tf.Scalar } = {};
    const { value, grads } = tf.variableGrads(() => {
      const probs = ctx.model.apply(xb, { training: true }) as tf.Tensor;
      // Kept so it survives the gradient tape's scope; disposed below.
      if (stats) seen.correct = tf.keep(countCorrect(probs, yb));
      return crossEntropy(probs, yb);
    }, ctx.vars);
    if (ctx.mu > 0) addProximalGradient(grads, ctx.vars, ctx.anchors, ctx.mu);
    ctx.optimizer.applyGradients(grads);
    if (stats && seen.correct) {
      stats.add(value, seen.correct, xb.shape[0]);
      seen.correct.dispose();
    }
  });
}

/**
 * Turns dataset rows into batch tensors: features reshaped to the model's input, one-hot labels.
 * Checks once that the data fits the model.
 */
class BatchMaker {
  private readonly dims: number[];
  private readonly width: number;
  private readonly classes: number;

  constructor(
    model: tf.LayersModel,
    private readonly data: Dataset,
  ) {
    const inputDims = model.inputs[0].shape.slice(1);
    this.dims = inputDims.every((d): d is number => typeof d === 'number') ? inputDims : data.featureShape;
    this.width = data.featureShape.reduce((a, b) => a * b, 1);
    if (this.dims.reduce((a, b) => a * b, 1) !== this.width) {
      throw new ShapeMismatchError(`data rows of shape [${data.featureShape}] do not fit model input [${inputDims}]`);
    }
    const outShape = model.outputs[0].shape;
    const units = outShape[outShape.length - 1];
    if (typeof units === 'number' && data.numClasses > units) {
      throw new ShapeMismatchError(`data has ${data.numClasses} classes, the model outputs ${units}`);
    }
    this.classes = typeof units === 'number' ? units : data.numClasses;
  }

  /** The examples order[start .. start+len), copied into fresh tensors (caller disposes). */
  pick(order: Int32Array, start: number, len: number): { x: tf.Tensor; y: tf.Tensor } {
    const { features, labels } = this.data;
    const w = this.width;
    const x = new Float32Array(len * w);
    const y = new Float32Array(len * this.classes);
    for (let k = 0; k < len; k++) {
      const i = order[start + k];
      x.set(features.subarray(i * w, (i + 1) * w), k * w);
      y[k * this.classes + labels[i]] = 1;
    }
    return { x: tf.tensor(x, [len, ...this.dims], 'float32'), y: tf.tensor2d(y, [len, this.classes], 'float32') };
  }

  /** The examples [start, start+len) in dataset order. */
  range(start: number, len: number): { x: tf.Tensor; y: tf.Tensor } {
    return this.pick(Int32Array.from({ length: len }, (_, k) => start + k), 0, len);
  }
}

function runEpoch(ctx: StepContext, batches: BatchMaker, order: Int32Array, batchSize: number, stats: EpochStats | undefined): void {
  for (let start = 0; start < order.length; start += batchSize) {
    const len = Math.min(batchSize, order.length - start);
    tf.tidy(() => {
      const { x, y } = batches.pick(order, start, len);
      trainStep(ctx, x, y, stats);
    });
  }
}

function shuffledOrder(n: number, rng: Rng): Int32Array {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  shuffleInPlace(order, rng);
  return order;
}

export class LocalTrainer {
  private model: tf.LayersModel | undefined;
  private readonly logger: Logger;

  constructor(
    private readonly spec: ModelSpec,
    opts: { logger?: Logger } = {},
  ) {
    this.logger = opts.logger ?? silentLogger;
  }

  /**
   * The weight manifest of the model. Builds the model if needed; call selectBackend() first, or
   * the model is built on tfjs's default backend.
   */
  get manifest(): WeightManifest {
    return manifestOf(this.buildOnce());
  }

  /** Trains from `globalWeights` on `data`; the model's weights afterwards are the local ones. */
  async train(globalWeights: Float32Array, data: Dataset, cfg: TrainingConfig): Promise<TrainResult> {
    validateConfig(cfg);
    const model = await this.ready();
    this.checkTrainable(model);
    setFlatWeights(model, globalWeights);
    const batches = new BatchMaker(model, data);
    const optimizer = tf.train.sgd(cfg.learningRate);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    // tf.clone shares the buffer until the optimizer reassigns the variable, so this is cheap.
    const anchors = cfg.proxMu > 0 ? vars.map((v) => tf.keep(tf.clone(v))) : [];
    const ctx: StepContext = { model, optimizer, vars, anchors, mu: cfg.proxMu };
    const rng = seededRng(cfg.seed ?? cryptoRng().nextUint32());
    let metrics = { loss: 0, accuracy: 0 };
    try {
      for (let epoch = 0; epoch < cfg.epochs - 1; epoch++) {
        runEpoch(ctx, batches, shuffledOrder(data.size, rng), cfg.batchSize, undefined);
      }
      const stats = new EpochStats(); // only the last epoch's metrics are reported
      try {
        runEpoch(ctx, batches, shuffledOrder(data.size, rng), cfg.batchSize, stats);
        metrics = stats.finish(data.size);
      } finally {
        stats.dispose();
      }
    } catch (err) {
      throw wrapKernelError(err);
    } finally {
      tf.dispose(anchors);
      optimizer.dispose();
    }
    const delta = flattenWeights(model);
    for (let i = 0; i < delta.length; i++) delta[i] -= globalWeights[i];
    this.logger.debug({ numExamples: data.size, ...metrics }, 'local training done');
    return { delta, numExamples: data.size, metrics };
  }

  /** Loss and accuracy of `weights` on `data`, in batches of `batchSize` (default 256). */
  async evaluate(weights: Float32Array, data: Dataset, batchSize = DEFAULT_EVAL_BATCH): Promise<EvalResult> {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new ConfigError(`evaluate: batchSize must be an integer >= 1`);
    const model = await this.ready();
    setFlatWeights(model, weights);
    const batches = new BatchMaker(model, data);
    const stats = new EpochStats();
    try {
      for (let start = 0; start < data.size; start += batchSize) {
        const len = Math.min(batchSize, data.size - start);
        tf.tidy(() => {
          const { x, y } = batches.range(start, len);
          const probs = model.apply(x, { training: false }) as tf.Tensor;
          stats.add(crossEntropy(probs, y), countCorrect(probs, y), len);
        });
      }
      return { numExamples: data.size, ...stats.finish(data.size) };
    } finally {
      stats.dispose();
    }
  }

  /** The model's current weights: after train(), the locally trained ones. */
  currentWeights(): Float32Array {
    return flattenWeights(this.buildOnce());
  }

  /** Frees the model's weights. The trainer rebuilds the model if used again. */
  dispose(): void {
    this.model?.dispose();
    this.model = undefined;
  }

  private async ready(): Promise<tf.LayersModel> {
    if (currentBackend() === undefined) await selectBackend({ logger: this.logger });
    return this.buildOnce();
  }

  private buildOnce(): tf.LayersModel {
    this.model ??= buildModel(this.spec);
    return this.model;
  }

  private checkTrainable(model: tf.LayersModel): void {
    const backend = tf.getBackend();
    for (const layer of model.layers) {
      for (const kernel of TRAINING_KERNELS[layer.getClassName()] ?? []) {
        if (!tf.getKernel(kernel, backend)) throw unsupportedError(kernel, backend);
      }
    }
  }
}

function wrapKernelError(err: unknown): unknown {
  const match = err instanceof Error && !(err instanceof CohortError) ? MISSING_KERNEL.exec(err.message) : null;
  return match ? unsupportedError(match[1], match[2]) : err;
}
