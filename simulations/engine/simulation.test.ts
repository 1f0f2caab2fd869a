/**
 * The virtual-client engine: deterministic for a seed (same final weights, bit for bit, even with two
 * workers finishing in any order), different for another seed, dropouts injected and counted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrainingPool } from '../../client/node/pool.ts';
import { parseJobConfig } from '../../server/round/config.ts';
import { weightsChecksum } from '../../shared/model/index.ts';
import { loadMnist } from '../datasets/mnist.ts';
import { iidPartition } from '../datasets/partition.ts';
import { runSimulation } from './simulation.ts';

describe('simulation engine', () => {
  let pool: TrainingPool;
  const { train, test } = loadMnist({ trainSize: 1200, testSize: 300, seed: 2 });
  const partition = iidPartition(train.size, 30, 2);
  const config = (rounds: number) =>
    parseJobConfig({
      id: 'sim',
      model: { zoo: 'logreg', inputShape: [784], numClasses: 10 },
      rounds,
      sampling: { mode: 'fixed', cohortSize: 10 },
      minClients: 1,
      minSurvivors: 1,
      training: { epochs: 1, batchSize: 10, learningRate: 0.1 },
      evaluation: { every: 0 },
      timeouts: { retryDelayMs: 0 },
    });

  beforeAll(() => {
    pool = new TrainingPool({ workers: 2, backend: 'wasm' });
  });
  afterAll(async () => {
    await pool.close();
  });

  const simulate = (seed: number, dropout = 0, rounds = 3) =>
    runSimulation({ config: config(rounds), data: train, partition, test, evaluateEvery: rounds, pool, seed, dropout: { probability: dropout } });

  it('is deterministic for a seed and differs for another', async () => {
    const a = await simulate(5);
    const b = await simulate(5);
    const c = await simulate(6);
    expect(a.job.status).toBe('completed');
    expect(weightsChecksum(a.finalWeights)).toBe(weightsChecksum(b.finalWeights));
    expect(weightsChecksum(a.finalWeights)).not.toBe(weightsChecksum(c.finalWeights));
    expect(a.rounds.at(-1)!.accuracy).toBeGreaterThan(0.5); // it learned something
    expect(a.rounds.map((r) => r.summary.record.cohortSize)).toEqual([10, 10, 10]);
  });

  it('injects dropouts at the given rate and still completes the rounds with the others', async () => {
    const r = await simulate(7, 0.3, 4);
    expect(r.job.status).toBe('completed');
    const dropped = r.rounds.reduce((s, x) => s + x.dropped, 0);
    const survivors = r.rounds.reduce((s, x) => s + x.summary.record.survivors, 0);
    expect(dropped).toBeGreaterThan(0);
    expect(dropped + survivors).toBe(40);
    expect(r.rounds.every((x) => x.summary.record.dropouts === x.dropped)).toBe(true);
  });
});
