/**
 * One training worker of a TrainingPool (pool.ts): selects its own tfjs backend (tfjs state is per
 * thread), caches datasets it has been sent and one LocalTrainer per model spec, and runs train /
 * evaluate requests one at a time. Loaded through pool-worker.mjs, which registers tsx first.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CohortError } from '../../shared/errors.ts';
import type { ModelSpec } from '../../shared/model/spec.ts';
import { subset, type Dataset } from '../data/dataset.ts';
import { selectBackend } from '../train/backend.ts';
import { LocalTrainer, type TrainingConfig } from '../train/trainer.ts';
import type { PoolReply, PoolRequest, TaskData, WireDataset } from './pool.ts';

const port = parentPort;
if (!port) throw new Error('pool-worker.ts must run in a worker thread');

/** Models kept per worker; a simulation uses one or two specs, so eviction is rare. */
const MAX_TRAINERS = 4;

const datasets = new Map<string, Dataset>();
const trainers = new Map<string, LocalTrainer>();

function fromWire(d: WireDataset): Dataset {
  return {
    features: new Float32Array(d.features, d.featuresOffset ?? 0, d.size * d.featureShape.reduce((a, b) => a * b, 1)),
    labels: new Int32Array(d.labels, d.labelsOffset ?? 0, d.size),
    featureShape: d.featureShape,
    numClasses: d.numClasses,
    size: d.size,
  };
}

function trainerFor(spec: ModelSpec): LocalTrainer {
  const key = JSON.stringify(spec);
  let trainer = trainers.get(key);
  if (trainer) {
    // Most recently used last.
    trainers.delete(key);
    trainers.set(key, trainer);
    return trainer;
  }
  trainer = new LocalTrainer(spec);
  trainers.set(key, trainer);
  if (trainers.size > MAX_TRAINERS) {
    const [oldestKey, oldest] = trainers.entries().next().value as [string, LocalTrainer];
    oldest.dispose();
    trainers.delete(oldestKey);
  }
  return trainer;
}

function registered(id: string): Dataset {
  const data = datasets.get(id);
  if (!data) throw new CohortError('UNKNOWN_DATASET', `dataset '${id}' is not registered with this worker`);
  return data;
}

function dataOf(req: { dataset: TaskData }): Dataset {
  const d = req.dataset;
  if (typeof d === 'string') return registered(d);
  // The task's rows of a registered dataset, gathered for this task alone.
  if ('rows' in d) return subset(registered(d.id), d.rows);
  return fromWire(d);
}

function reply(msg: PoolReply, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(msg, transfer);
}

function errorReply(id: number, err: unknown): PoolReply {
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    type: 'error',
    id,
    name: e.name,
    message: e.message,
    code: e instanceof CohortError ? e.code : undefined,
    details: e instanceof CohortError ? e.details : undefined,
  };
}

const ready = selectBackend({ prefer: (workerData as { backend?: string } | undefined)?.backend });

async function handle(req: PoolRequest): Promise<void> {
  switch (req.type) {
    case 'dataset':
      datasets.set(req.id, fromWire(req.data));
      return;
    case 'forget':
      datasets.delete(req.id);
      return;
    case 'train': {
      try {
        await ready;
        const result = await trainerFor(req.spec).train(req.weights, dataOf(req), req.cfg as TrainingConfig);
        reply({ type: 'trained', id: req.id, result }, [result.delta.buffer as ArrayBuffer]);
      } catch (err) {
        reply(errorReply(req.id, err));
      }
      return;
    }
    case 'evaluate': {
      try {
        await ready;
        const result = await trainerFor(req.spec).evaluate(req.weights, dataOf(req), req.batchSize);
        reply({ type: 'evaluated', id: req.id, result });
      } catch (err) {
        reply(errorReply(req.id, err));
      }
      return;
    }
  }
}

// Requests are handled strictly in arrival order (the pool sends one task at a time per worker, but
// dataset messages may precede it).
let queue: Promise<void> = Promise.resolve();
port.on('message', (req: PoolRequest) => {
  queue = queue.then(() => handle(req));
});

ready.then(
  (backend) => reply({ type: 'ready', backend }),
  (err: unknown) => reply(errorReply(-1, err)),
);
