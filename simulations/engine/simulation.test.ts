/**
 * The virtual-client engine: deterministic for a seed (same final weights, bit for bit, even with two
 * workers finishing in any order), different for another seed, dropouts injected and counted; parked
 * members (population scale) give the bits of engines kept awake; generated populations; stopping.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrainingPool } from '../../client/node/pool.ts';
import { parseJobConfig } from '../../server/round/config.ts';
import { weightsChecksum } from '../../shared/model/index.ts';
import { loadMnist } from '../datasets/mnist.ts';
import { iidPartition } from '../datasets/partition.ts';
import { SyntheticPopulation } from '../datasets/synthetic.ts';
import { generatedData } from './population.ts';
import { runSimulation } from './simulation.ts';

describe('simulation engine', () => {
  let pool: TrainingPool;
  const { train, test } = loadMnist({ trainSize: 1200, testSize: 300, seed: 2 });
  const partition = iidPartition(train.size, 30, 2);
  const jobInput = (rounds: number) => ({
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
  const config = (rounds: number) => parseJobConfig(jobInput(rounds));

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

  it('parks idle members and gives the same bits as engines kept awake (dropouts and retries included)', async () => {
    const run = (keepAwake: boolean) =>
      runSimulation({ config: config(3), data: train, partition, pool, seed: 11, dropout: { probability: 0.3 }, keepAwake, connectWave: 7 });
    const parked = await run(false);
    const awake = await run(true);
    expect(parked.job.status).toBe('completed');
    expect(weightsChecksum(parked.finalWeights)).toBe(weightsChecksum(awake.finalWeights));
    expect(parked.rounds.map((r) => [r.summary.record.survivors, r.dropped])).toEqual(awake.rounds.map((r) => [r.summary.record.survivors, r.dropped]));
    // Kept awake: every member's engine at once; parked: at most a wave of hellos and a cohort (10).
    expect(awake.peakAwake).toBe(30);
    expect(parked.peakAwake).toBeLessThanOrEqual(7 + 10);
  });

  it('runs a generated population: only the sampled clients are ever made, data included', async () => {
    const population = new SyntheticPopulation({ alpha: 1, beta: 1, clients: 3000, seed: 3, maxSize: 200 });
    const made: number[] = [];
    const clients = generatedData({ size: population.size, sizeOf: (k) => population.sizeOf(k), client: (k) => (made.push(k), population.client(k)) });
    const r = await runSimulation({
      config: parseJobConfig({ ...jobInput(2), model: { zoo: 'logreg', inputShape: [60], numClasses: 10 }, sampling: { mode: 'fixed', cohortSize: 20 } }),
      clients,
      pool,
      seed: 4,
    });
    expect(r.job.status).toBe('completed');
    expect(r.rounds.map((x) => x.summary.record.survivors)).toEqual([20, 20]);
    expect(made.length).toBe(40);
    expect(r.peakAwake).toBeLessThanOrEqual(1000 + 20);
  });

  it('stops when its signal aborts, while connecting or in a round, and says so in the store', async () => {
    const early = new AbortController();
    early.abort('SIGTERM');
    const a = await runSimulation({ config: config(50), data: train, partition, pool, seed: 1, signal: early.signal });
    expect(a.job.status).toBe('stopped');
    expect(a.rounds).toEqual([]);
    const late = new AbortController();
    const b = await runSimulation({
      config: config(50),
      data: train,
      partition,
      pool,
      seed: 1,
      signal: late.signal,
      onRound: (r) => r.round === 2 && late.abort('SIGINT'),
    });
    expect(b.job.status).toBe('stopped');
    expect(b.job.reason).toContain('SIGINT');
    expect(b.rounds.length).toBeGreaterThanOrEqual(2);
    expect(b.rounds.length).toBeLessThan(50);
  });
});
