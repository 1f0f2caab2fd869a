/**
 * Local training on a client: E epochs of minibatch SGD from the global weights, returning the update
 * Δ = w_local − w_global. Optional FedProx proximal term μ/2‖w − w_global‖² (Li et al. 2020,
 * "Federated Optimization in Heterogeneous Networks", MLSys), applied through its gradient.
 *
 * The loop is our own (no model.fit). Batches are assembled on the JS side (a row copy per example)
 * and uploaded as small tensors: on the wasm backend, Slice and Gather copy their whole source tensor
 * per call, so slicing batches out of a device-resident dataset costs O(dataset) per batch. Every step
 * runs inside tf.tidy, so nothing leaks. Per-step overhead is kept to the ops the gradient needs:
 * metrics are computed in JS from the batch's predicted probabilities (B × classes numbers), and where
 * kernels.ts registered its fused `CohortSgdStep` for the backend, the SGD update with the FedProx
 * term is one op per variable (bitwise the same result as the optimizer's ops).
 * Momentum and Adam (shared/fl/local-optimizers.ts) run as tfjs optimizers, with the FedProx gradient
 * added to the data gradient first.
 */
import * as tf from '@tensorflow/tfjs';
import { CohortError, ConfigError } from '../../shared/errors.ts';
import { silentLogger, type Logger } from '../../shared/log.ts';
import { cryptoRng, seededRng, shuffleInPlace, type Rng } from '../../shared/random.ts';
import { buildModel } from '../../shared/model/build.ts';
import type { ModelSpec } from '../../shared/model/spec.ts';
import { LocalOptimizerSchema, type LocalOptimizer } from '../../shared/fl/local-optimizers.ts';
import { flattenWeights, manifestOf, setFlatWeights, type WeightManifest } from '../../shared/model/weights.ts';
import type { Dataset } from '../data/dataset.ts';
import { featureLength } from '../data/dataset.ts';
import { HealthAccumulator, type ClientHealthReport, type HealthRequest } from '../../shared/evaluation/index.ts';
import { currentBackend, selectBackend } from './backend.ts';
import { SGD_STEP, type SgdStepAttrs } from './kernels.ts';

export interface TrainingConfig {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** FedProx μ; 0 is plain FedAvg local training. */
  proxMu: number;
  /**
   * The local optimizer (shared/fl/local-optimizers.ts); default plain SGD. Built fresh for every call
   * of train(), so momentum and Adam state start at zero each round.
   */
  optimizer?: LocalOptimizer;
  /** Also measure the mean loss of `globalWeights` on the data before training (q-FedAvg's F_k(w^t)). */
  initialLoss?: boolean;
  /** Seeds the per-epoch shuffles; default: random. */
  seed?: number;
  /** Layers not to train (a frozen base, issue 19): their weights come back unchanged, their delta zero. */
  frozen?: readonly string[];
}

export interface TrainResult {
  /** w_local − w_global, in manifest order. */
  delta: Float32Array;
  numExamples: number;
  /**
   * Mean cross-entropy (without the proximal term) and accuracy over the last epoch, as trained; with
   * `initialLoss` asked for, the mean cross-entropy of the global model on the data before training.
   */
  metrics: { loss: number; accuracy: number; initialLoss?: number };
}

export interface EvalResult {
  numExamples: number;
  loss: number;
  accuracy: number;
}

/**
 * The chosen backend lacks a kernel this model needs (e.g. depthwise-convolution gradients on wasm;
 * the convolution and matmul gradients the zoo models need are registered by kernels.ts).
 */
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
  if (cfg.optimizer !== undefined) {
    const parsed = LocalOptimizerSchema.safeParse(cfg.optimizer);
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'optimizer'}: ${i.message}`).join('; ');
      throw new ConfigError(`training config: optimizer is invalid: ${why}`, { optimizer: cfg.optimizer });
    }
  }
}

/** The tfjs optimizer for a local optimizer config (a fresh one: zero state). */
function makeOptimizer(cfg: TrainingConfig): tf.Optimizer {
  const o = cfg.optimizer ?? { name: 'sgd' };
  switch (o.name) {
    case 'sgd':
      return tf.train.sgd(cfg.learningRate);
    case 'momentum':
      return tf.train.momentum(cfg.learningRate, o.momentum, o.nesterov);
    case 'adam':
      return tf.train.adam(cfg.learningRate, o.beta1, o.beta2, o.epsilon);
  }
}

/** Mean categorical cross-entropy of predicted probabilities against one-hot targets. */
function crossEntropy(probs: tf.Tensor, oneHot: tf.Tensor): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.log(tf.clipByValue(probs, EPSILON, 1 - EPSILON))), -1))) as tf.Scalar;
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

/**
 * Running loss and correct predictions of one epoch, from each batch's probabilities read back to JS
 * (B × classes values): per example, −log of the clipped probability of its label (the cross-entropy
 * against a one-hot target) and whether the first maximal probability is at its label (tfjs argMax).
 */
class EpochStats {
  private lossSum = 0;
  private correct = 0;

  add(probs: ArrayLike<number>, labels: Int32Array, classes: number): void {
    for (let k = 0; k < labels.length; k++) {
      const row = k * classes;
      const p = probs[row + labels[k]];
      this.lossSum -= Math.log(Math.min(Math.max(p, EPSILON), 1 - EPSILON));
      let best = 0;
      for (let c = 1; c < classes; c++) if (probs[row + c] > probs[row + best]) best = c;
      if (best === labels[k]) this.correct++;
    }
  }

  finish(n: number): { loss: number; accuracy: number } {
    return n === 0 ? { loss: 0, accuracy: 0 } : { loss: this.lossSum / n, accuracy: this.correct / n };
  }
}

interface StepContext {
  model: tf.LayersModel;
  optimizer: tf.Optimizer;
  vars: tf.Variable[];
  anchors: tf.Tensor[];
  mu: number;
  learningRate: number;
  /** The optimizer is plain SGD and the backend has our fused SGD kernel. */
  fused: boolean;
}

/** The optimizer's step on g + μ(w − w_global) for every variable (SGD: w ← w − lr·(g + μ(w − w_global))). */
function applyUpdate(ctx: StepContext, grads: tf.NamedTensorMap): void {
  if (!ctx.fused) {
    if (ctx.mu > 0) addProximalGradient(grads, ctx.vars, ctx.anchors, ctx.mu);
    ctx.optimizer.applyGradients(grads);
    return;
  }
  const attrs: SgdStepAttrs = { learningRate: ctx.learningRate, mu: ctx.mu };
  ctx.vars.forEach((v, i) => {
    const inputs: tf.NamedTensorMap = { w: v, g: grads[v.name] };
    if (ctx.mu > 0) inputs.anchor = ctx.anchors[i];
    v.assign(tf.engine().runKernel(SGD_STEP, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor);
  });
}

/** One SGD step on a batch; adds the batch's loss and hits to `stats` when given. */
function trainStep(ctx: StepContext, batch: Batch, stats: EpochStats | undefined): void {
  tf.tidy(() => {
    let probs: tf.Tensor | undefined;
    const { grads } = tf.variableGrads(() => {
      const p = ctx.model.apply(batch.x, { training: true }) as tf.Tensor;
      // Kept so it survives the gradient tape's scope; disposed below.
      if (stats) probs = tf.keep(p);
      return crossEntropy(p, batch.y);
    }, ctx.vars);
    applyUpdate(ctx, grads);
    if (stats && probs) {
      stats.add(probs.dataSync(), batch.labels, batch.classes);
      probs.dispose();
    }
  });
}

interface Batch {
  x: tf.Tensor;
  y: tf.Tensor;
  labels: Int32Array;
  classes: number;
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
  pick(order: Int32Array, start: number, len: number): Batch {
    const { features, labels } = this.data;
    const w = this.width;
    const x = new Float32Array(len * w);
    const y = new Float32Array(len * this.classes);
    const picked = new Int32Array(len);
    for (let k = 0; k < len; k++) {
      const i = order[start + k];
      x.set(features.subarray(i * w, (i + 1) * w), k * w);
      y[k * this.classes + labels[i]] = 1;
      picked[k] = labels[i];
    }
    return {
      x: tf.tensor(x, [len, ...this.dims], 'float32'),
      y: tf.tensor2d(y, [len, this.classes], 'float32'),
      labels: picked,
      classes: this.classes,
    };
  }

  /** The examples [start, start+len) in dataset order. */
  range(start: number, len: number): Batch {
    return this.pick(Int32Array.from({ length: len }, (_, k) => start + k), 0, len);
  }
}

function runEpoch(ctx: StepContext, batches: BatchMaker, order: Int32Array, batchSize: number, stats: EpochStats | undefined): void {
  for (let start = 0; start < order.length; start += batchSize) {
    const len = Math.min(batchSize, order.length - start);
    tf.tidy(() => trainStep(ctx, batches.pick(order, start, len), stats));
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
    const initial = cfg.initialLoss ? (await this.evaluate(globalWeights, data)).loss : undefined;
    const model = await this.ready();
    this.checkTrainable(model);
    setFlatWeights(model, globalWeights);
    const frozen = new Set(cfg.frozen ?? []);
    for (const layer of model.layers) {
      const trainable = !frozen.has(layer.name);
      if (layer.trainable !== trainable) layer.trainable = trainable;
    }
    const batches = new BatchMaker(model, data);
    const optimizer = makeOptimizer(cfg);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    // tf.clone shares the buffer until the optimizer reassigns the variable, so this is cheap.
    const anchors = cfg.proxMu > 0 ? vars.map((v) => tf.keep(tf.clone(v))) : [];
    const fused = (cfg.optimizer?.name ?? 'sgd') === 'sgd' && tf.getKernel(SGD_STEP, tf.getBackend()) !== undefined;
    const ctx: StepContext = { model, optimizer, vars, anchors, mu: cfg.proxMu, learningRate: cfg.learningRate, fused };
    const rng = seededRng(cfg.seed ?? cryptoRng().nextUint32());
    let metrics: TrainResult['metrics'] = { loss: 0, accuracy: 0 };
    try {
      for (let epoch = 0; epoch < cfg.epochs - 1; epoch++) {
        runEpoch(ctx, batches, shuffledOrder(data.size, rng), cfg.batchSize, undefined);
      }
      const stats = new EpochStats(); // only the last epoch's metrics are reported
      runEpoch(ctx, batches, shuffledOrder(data.size, rng), cfg.batchSize, stats);
      metrics = stats.finish(data.size);
    } catch (err) {
      throw wrapKernelError(err);
    } finally {
      tf.dispose(anchors);
      optimizer.dispose();
    }
    const delta = flattenWeights(model);
    for (let i = 0; i < delta.length; i++) delta[i] -= globalWeights[i];
    if (initial !== undefined) metrics.initialLoss = initial;
    this.logger.debug({ numExamples: data.size, ...metrics }, 'local training done');
    return { delta, numExamples: data.size, metrics };
  }

  /**
   * Loss and accuracy of `weights` on `data`, in batches of `batchSize` (default 256); with a health
   * request also the additive statistics of shared/evaluation (calibration, confusion, drift sketch).
   */
  async evaluate(weights: Float32Array, data: Dataset, batchSize = DEFAULT_EVAL_BATCH, health?: HealthRequest): Promise<EvalResult & { health?: ClientHealthReport }> {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new ConfigError(`evaluate: batchSize must be an integer >= 1`);
    const model = await this.ready();
    setFlatWeights(model, weights);
    const batches = new BatchMaker(model, data);
    const stats = new EpochStats();
    const dim = featureLength(data.featureShape);
    let healthStats: HealthAccumulator | undefined;
    for (let start = 0; start < data.size; start += batchSize) {
      const len = Math.min(batchSize, data.size - start);
      tf.tidy(() => {
        const batch = batches.range(start, len);
        const probs = model.apply(batch.x, { training: false }) as tf.Tensor;
        const p = probs.dataSync();
        stats.add(p, batch.labels, batch.classes);
        if (health) {
          healthStats ??= new HealthAccumulator(batch.classes, health, dim);
          healthStats.add(p, batch.labels, data.features.subarray(start * dim, (start + len) * dim));
        }
      });
    }
    return { numExamples: data.size, ...stats.finish(data.size), ...(healthStats ? { health: healthStats.report() } : {}) };
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
