/**
 * A pool of training worker threads, so that simulations of many virtual clients use every core.
 *
 * Each worker (pool-worker.ts) has its own tfjs instance and backend (tfjs and its wasm heap are per
 * thread) and trains with the same LocalTrainer as the main thread, so for one seed and backend a
 * pooled result is identical to a single-threaded one. Tasks queue and go to the first free worker.
 *
 * Data movement: weights are copied once per task (the copy's buffer is transferred, not cloned
 * again), deltas come back by transfer. A dataset registered with `registerDataset` is copied once into
 * SharedArrayBuffers and every worker keeps a view of it by id, so a simulation does not resend a
 * client's shard every round; a Dataset passed directly is copied per task. `{ id, rows }` names some
 * rows of a registered dataset (a client's shard of one shared data set, as partitions are): only the
 * row indices cross the thread boundary, and the worker gathers the rows for that task alone, so a
 * population of any size needs one registered dataset, not one per client.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { CohortError, isCohortErrorCode, ConfigError } from '../../shared/errors.ts';
import { silentLogger, type Logger } from '../../shared/log.ts';
import type { ModelSpec } from '../../shared/model/spec.ts';
import type { Dataset } from '../data/dataset.ts';
import type { EvalResult, TrainResult, TrainingConfig } from '../train/trainer.ts';

/** A dataset as it crosses the thread boundary: buffers (shared or transferred) plus shape. */
export interface WireDataset {
  features: ArrayBufferLike;
  featuresOffset?: number;
  labels: ArrayBufferLike;
  labelsOffset?: number;
  featureShape: number[];
  numClasses: number;
  size: number;
}

/** Some rows of a registered dataset, in this order. */
export interface DatasetRows {
  id: string;
  rows: Int32Array;
}

/** What a task names: a registered dataset, rows of one, or a dataset sent with the task. */
export type TaskData = string | DatasetRows | WireDataset;

export type PoolRequest =
  | { type: 'dataset'; id: string; data: WireDataset }
  | { type: 'forget'; id: string }
  | { type: 'train'; id: number; spec: ModelSpec; weights: Float32Array; dataset: TaskData; cfg: TrainingConfig }
  | { type: 'evaluate'; id: number; spec: ModelSpec; weights: Float32Array; dataset: TaskData; batchSize?: number };

export type PoolReply =
  | { type: 'ready'; backend: string }
  | { type: 'trained'; id: number; result: TrainResult }
  | { type: 'evaluated'; id: number; result: EvalResult }
  | { type: 'error'; id: number; name: string; message: string; code?: string; details?: Record<string, unknown> };

export interface TrainingPoolOptions {
  /** Number of worker threads; default os.availableParallelism(). */
  workers?: number;
  /** Backend each worker selects (as COHORT_BACKEND); default: the automatic choice. */
  backend?: string;
  logger?: Logger;
}

type TaskRequest = Extract<PoolRequest, { type: 'train' } | { type: 'evaluate' }>;
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

interface Task {
  request: WithoutId<TaskRequest>;
  datasetId?: string;
  transfer: ArrayBuffer[];
  resolve(value: unknown): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  task?: Task & { id: number };
  datasets: Set<string>;
  backend?: string;
}

const WORKER_ENTRY = new URL('./pool-worker.mjs', import.meta.url);

/** The pool was closed before or while the task ran. */
export class PoolClosedError extends CohortError {
  constructor() {
    super('POOL_CLOSED', 'the training pool was closed');
  }
}

function errorFromWorker(msg: Extract<PoolReply, { type: 'error' }>): Error {
  const err = isCohortErrorCode(msg.code) ? new CohortError(msg.code, msg.message, msg.details) : new Error(msg.message);
  err.name = msg.name;
  return err;
}

/** A typed array's bytes in a buffer of its own (so cloning or transferring it moves nothing more). */
function ownBuffer(view: Float32Array | Int32Array): ArrayBuffer {
  if (view.buffer instanceof ArrayBuffer && view.byteOffset === 0 && view.byteLength === view.buffer.byteLength) {
    return view.buffer.slice(0);
  }
  return view.slice().buffer as ArrayBuffer;
}

function toShared(view: Float32Array | Int32Array): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(view.byteLength);
  new Uint8Array(sab).set(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  return sab;
}

export class TrainingPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private readonly registered = new Map<string, WireDataset>();
  private readonly logger: Logger;
  private readonly backend?: string;
  private closed = false;
  private nextId = 1;

  constructor(opts: TrainingPoolOptions = {}) {
    const n = opts.workers ?? os.availableParallelism();
    if (!Number.isInteger(n) || n < 1) throw new ConfigError(`TrainingPool: workers must be an integer >= 1, got ${n}`);
    this.logger = opts.logger ?? silentLogger;
    this.backend = opts.backend;
    for (let i = 0; i < n; i++) this.slots.push(this.spawn(i));
  }

  /** Number of worker threads. */
  get size(): number {
    return this.slots.length;
  }

  /** Backends the workers reported (undefined until a worker is ready). */
  get backends(): (string | undefined)[] {
    return this.slots.map((s) => s.backend);
  }

  /**
   * Makes `data` available to every worker under `id`, copied once into shared memory; tasks can then
   * name it instead of passing it. Registering an id again replaces it.
   */
  registerDataset(id: string, data: Dataset): void {
    this.checkOpen();
    if (this.registered.has(id)) this.unregisterDataset(id);
    this.registered.set(id, {
      features: toShared(data.features),
      labels: toShared(data.labels),
      featureShape: [...data.featureShape],
      numClasses: data.numClasses,
      size: data.size,
    });
  }

  /** Drops a registered dataset from the pool and its workers. */
  unregisterDataset(id: string): void {
    this.registered.delete(id);
    for (const slot of this.slots) {
      if (slot.datasets.delete(id)) slot.worker.postMessage({ type: 'forget', id } satisfies PoolRequest);
    }
  }

  /** LocalTrainer.train in a worker; `data` is a Dataset, the id of a registered one, or rows of one. */
  train(spec: ModelSpec, globalWeights: Float32Array, data: Dataset | string | DatasetRows, cfg: TrainingConfig): Promise<TrainResult> {
    const weights = new Float32Array(ownBuffer(globalWeights));
    return this.submit(data, [weights.buffer as ArrayBuffer], (dataset) => ({ type: 'train', spec, weights, dataset, cfg })) as Promise<TrainResult>;
  }

  /** LocalTrainer.evaluate in a worker. */
  evaluate(spec: ModelSpec, weights: Float32Array, data: Dataset | string | DatasetRows, batchSize?: number): Promise<EvalResult> {
    const copy = new Float32Array(ownBuffer(weights));
    return this.submit(data, [copy.buffer as ArrayBuffer], (dataset) => ({ type: 'evaluate', spec, weights: copy, dataset, batchSize })) as Promise<EvalResult>;
  }

  /** Terminates the workers; queued and running tasks reject with PoolClosedError. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const task of this.queue.splice(0)) task.reject(new PoolClosedError());
    await Promise.all(
      this.slots.map(async (slot) => {
        const running = slot.task;
        slot.task = undefined;
        running?.reject(new PoolClosedError());
        await slot.worker.terminate();
      }),
    );
    this.registered.clear();
  }

  private checkOpen(): void {
    if (this.closed) throw new PoolClosedError();
  }

  private submit(data: Dataset | string | DatasetRows, transfer: ArrayBuffer[], build: (dataset: TaskData) => Task['request']): Promise<unknown> {
    if (this.closed) return Promise.reject(new PoolClosedError());
    let datasetId: string | undefined;
    let request: Task['request'];
    if (typeof data === 'string' || 'rows' in data) {
      const id = typeof data === 'string' ? data : data.id;
      const registered = this.registered.get(id);
      if (!registered) {
        return Promise.reject(new CohortError('UNKNOWN_DATASET', `dataset '${id}' is not registered with this pool`));
      }
      if (typeof data !== 'string') {
        const bad = data.rows.find((r) => !(r >= 0 && r < registered.size));
        if (bad !== undefined) return Promise.reject(new CohortError('BAD_DATA', `row ${bad} is not in dataset '${id}' (${registered.size} rows)`));
      }
      datasetId = id;
      request = build(typeof data === 'string' ? data : { id, rows: data.rows.slice() });
    } else {
      const features = ownBuffer(data.features);
      const labels = ownBuffer(data.labels);
      request = build({ features, labels, featureShape: [...data.featureShape], numClasses: data.numClasses, size: data.size });
      transfer.push(features, labels);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ request, datasetId, transfer, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.task) continue;
      const task = this.queue.shift() as Task;
      const id = this.nextId++;
      slot.task = { ...task, id };
      if (task.datasetId && !slot.datasets.has(task.datasetId)) {
        const data = this.registered.get(task.datasetId);
        if (!data) {
          slot.task = undefined;
          task.reject(new CohortError('UNKNOWN_DATASET', `dataset '${task.datasetId}' was unregistered`));
          continue;
        }
        slot.worker.postMessage({ type: 'dataset', id: task.datasetId, data } satisfies PoolRequest);
        slot.datasets.add(task.datasetId);
      }
      slot.worker.postMessage({ ...task.request, id } as PoolRequest, task.transfer);
    }
  }

  private spawn(index: number): Slot {
    const worker = new Worker(WORKER_ENTRY, { workerData: { backend: this.backend } });
    const slot: Slot = { worker, datasets: new Set() };
    worker.on('message', (msg: PoolReply) => this.onMessage(slot, msg));
    worker.on('error', (err) => this.onCrash(slot, index, err));
    worker.on('exit', (code) => {
      if (!this.closed) this.onCrash(slot, index, new CohortError('WORKER_CRASHED', `training worker ${index} exited with code ${code}`));
    });
    return slot;
  }

  private onMessage(slot: Slot, msg: PoolReply): void {
    if (msg.type === 'ready') {
      slot.backend = msg.backend;
      this.logger.debug({ worker: this.slots.indexOf(slot), backend: msg.backend }, 'training worker ready');
      return;
    }
    if (msg.type === 'error' && msg.id === -1) {
      this.logger.warn({ worker: this.slots.indexOf(slot), err: msg.message }, 'training worker could not select a backend');
      return;
    }
    const task = slot.task;
    if (!task || task.id !== msg.id) return;
    slot.task = undefined;
    if (msg.type === 'error') task.reject(errorFromWorker(msg));
    else task.resolve(msg.result);
    this.pump();
  }

  /** A worker died (an uncaught error, or out of memory): fail its task, replace it, go on. */
  private onCrash(slot: Slot, index: number, err: Error): void {
    if (this.closed || this.slots[index] !== slot) return;
    this.logger.error({ worker: index, err: err.message }, 'training worker died; replacing it');
    const task = slot.task;
    slot.task = undefined;
    slot.worker.removeAllListeners();
    void slot.worker.terminate();
    this.slots[index] = this.spawn(index);
    task?.reject(err);
    this.pump();
  }
}
