// TrainingPool: worker threads (each with its own tfjs wasm backend) give the same results as training
// on the main thread, report worker errors without breaking, and terminate on close().
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRng } from '../../shared/random.ts';
import { initialWeights, type ModelSpec } from '../../shared/model/index.ts';
import { fromArrays, subset, type Dataset } from '../data/dataset.ts';
import { selectBackend } from '../train/backend.ts';
import { PoolClosedError, TrainingPool } from './pool.ts';
import { LocalTrainer, type TrainingConfig } from '../train/trainer.ts';

const spec: ModelSpec = { zoo: 'mlp', inputShape: [64], numClasses: 4 };
const cnn: ModelSpec = { zoo: 'cnn', inputShape: [8, 8, 1], numClasses: 4 };

function data(n: number, seed: number, featureShape = [64]): Dataset {
  const rng = seededRng(seed);
  const features = Float32Array.from({ length: n * 64 }, () => rng.next());
  return fromArrays(features, Array.from({ length: n }, (_, i) => i % 4), { featureShape, numClasses: 4 });
}

const cfg: TrainingConfig = { epochs: 2, batchSize: 8, learningRate: 0.1, proxMu: 0.01, seed: 5 };
const shard = data(96, 1);
const images = data(16, 2, [8, 8, 1]);
let pool: TrainingPool;

beforeAll(async () => {
  expect(await selectBackend({ prefer: 'wasm' })).toBe('wasm');
  pool = new TrainingPool({ workers: 2, backend: 'wasm' });
});

afterAll(async () => {
  await pool?.close();
});

describe('TrainingPool', () => {
  it('trains and evaluates exactly like the main thread, for a registered or a passed dataset', async () => {
    const { weights } = initialWeights(spec, 3);
    const local = new LocalTrainer(spec);
    const expected = await local.train(weights, shard, cfg);
    const expectedEval = await local.evaluate(weights, shard, 32);
    local.dispose();

    pool.registerDataset('shard', shard);
    // Four tasks on two workers: each worker trains twice, from a fresh copy of the weights.
    const results = await Promise.all([
      pool.train(spec, weights, 'shard', cfg),
      pool.train(spec, weights, shard, cfg),
      pool.train(spec, weights, 'shard', cfg),
      pool.train(spec, weights, shard, cfg),
    ]);
    for (const r of results) {
      expect(r.numExamples).toBe(expected.numExamples);
      expect(Array.from(r.delta)).toEqual(Array.from(expected.delta));
      expect(r.metrics).toEqual(expected.metrics);
    }
    expect(await pool.evaluate(spec, weights, 'shard', 32)).toEqual(expectedEval);
    expect(pool.backends).toEqual(['wasm', 'wasm']);
  });

  it('trains on rows of a registered dataset exactly as on those rows copied out (any order of rows)', async () => {
    const { weights } = initialWeights(spec, 6);
    const whole = data(200, 7);
    pool.registerDataset('whole', whole);
    const rows = Int32Array.from([150, 3, 77, 199, 0, 42, 41, 120, 5, 9, 10, 11, 60, 61, 62, 63]);
    const copied = subset(whole, rows);
    const local = new LocalTrainer(spec);
    const expected = await local.train(weights, copied, cfg);
    local.dispose();
    const [a, b] = await Promise.all([pool.train(spec, weights, { id: 'whole', rows }, cfg), pool.train(spec, weights, { id: 'whole', rows }, cfg)]);
    for (const r of [a, b]) {
      expect(r.numExamples).toBe(rows.length);
      expect(Array.from(r.delta)).toEqual(Array.from(expected.delta));
    }
    await expect(pool.train(spec, weights, { id: 'whole', rows: Int32Array.from([200]) }, cfg)).rejects.toMatchObject({ code: 'BAD_DATA' });
    await expect(pool.train(spec, weights, { id: 'gone', rows }, cfg)).rejects.toMatchObject({ code: 'UNKNOWN_DATASET' });
    pool.unregisterDataset('whole');
  });

  it('trains the CNN in a worker like on the main thread', async () => {
    const { weights } = initialWeights(cnn, 4);
    const local = new LocalTrainer(cnn);
    const expected = await local.train(weights, images, { ...cfg, epochs: 1, batchSize: 4 });
    local.dispose();
    const r = await pool.train(cnn, weights, images, { ...cfg, epochs: 1, batchSize: 4 });
    expect(Array.from(r.delta)).toEqual(Array.from(expected.delta));
  });

  it("rejects with the worker's error (code and message) and keeps working", async () => {
    const { weights } = initialWeights(spec, 1);
    await expect(pool.train(spec, new Float32Array(7), 'shard', cfg)).rejects.toMatchObject({
      code: 'WRONG_LENGTH',
      message: expect.stringContaining('weight vector has 7 values'),
    });
    await expect(pool.train(spec, weights, 'shard', { ...cfg, batchSize: 0 })).rejects.toMatchObject({ code: 'BAD_CONFIG' });
    await expect(pool.train(spec, weights, 'nope', cfg)).rejects.toMatchObject({ code: 'UNKNOWN_DATASET' });
    const ok = await Promise.all([pool.train(spec, weights, 'shard', cfg), pool.train(spec, weights, 'shard', cfg)]);
    expect(ok.map((r) => r.numExamples)).toEqual([96, 96]);
  });

  it('close() terminates the workers and rejects later and pending tasks', async () => {
    const own = new TrainingPool({ workers: 1, backend: 'wasm' });
    const { weights } = initialWeights(spec, 1);
    // Outcomes captured before close() settles them (an unhandled rejection would end the process:
    // the emscripten runtime of tfjs-backend-wasm rethrows them).
    const running = own.train(spec, weights, shard, { ...cfg, epochs: 50 }).catch((e: unknown) => e);
    const queued = own.train(spec, weights, shard, cfg).catch((e: unknown) => e);
    await own.close();
    expect(await running).toBeInstanceOf(PoolClosedError);
    expect(await queued).toBeInstanceOf(PoolClosedError);
    await expect(own.train(spec, weights, shard, cfg)).rejects.toMatchObject({ code: 'POOL_CLOSED' });
  });
});
