/**
 * The virtual-client engine: N simulated clients driven by the real coordinator round engine and the
 * real client engine over the in-memory transport, with local training on a worker pool so every core
 * is used. What differs from deployment is only where the bytes go (memory, not sockets) and where
 * training runs (a shared pool, not each device).
 *
 * Compact: a client is a ClientEngine, its shard's id in the pool and a few numbers; shards are
 * registered with the pool once (shared memory), and all clients read the one published model
 * (the in-memory transport shares it, never copies it per client).
 *
 * Deterministic given a seed (on one backend): cohort sampling, dropouts and local shuffling are
 * seeded, and updates are released to the coordinator in cohort order, so the floating-point sum is
 * formed in the same order whichever worker finishes first.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Dataset } from '../../client/data/dataset.ts';
import { subset } from '../../client/data/dataset.ts';
import { ClientEngine, type ClientTask, type FitResult } from '../../client/engine/index.ts';
import type { TrainingPool } from '../../client/node/pool.ts';
import type { JobConfig } from '../../server/round/config.ts';
import { RoundEngine, type JobSummary, type RoundSummary } from '../../server/round/engine.ts';
import { CohortStore } from '../../server/store/index.ts';
import { MemoryServerTransport, type MemoryClientEnd, type TrafficMeter } from '../../server/transport/memory.ts';
import { silentLogger, type Logger } from '../../shared/log.ts';
import type { ModelSpec } from '../../shared/model/index.ts';
import type { TrainingParams } from '../../shared/protocol/index.ts';
import { seededRng, seedFromString } from '../../shared/random.ts';
import type { Partition } from '../datasets/partition.ts';

export interface DropoutOptions {
  /** Probability that a sampled client drops out of a round (independently per client and round). */
  probability: number;
}

/**
 * Clients that attack (poisoning experiments): their shard may be poisoned before it is registered
 * (label flipping) and their update replaced after training (sign flipping, scaling). What they send
 * goes through the same client engine and the coordinator's checks as any other client's.
 */
export interface Adversary {
  clients: ReadonlySet<number>;
  data?: (shard: Dataset) => Dataset;
  update?: (delta: Float32Array) => Float32Array;
}

export interface SimulationOptions {
  config: JobConfig;
  /** The pooled data set and which examples each client holds. */
  data: Dataset;
  partition: Partition;
  /** Held-out data for server-side evaluation. */
  test?: Dataset;
  /** Evaluate the global model on `test` after every k-th round (0: never). */
  evaluateEvery?: number;
  pool: TrainingPool;
  seed: number;
  dropout?: DropoutOptions;
  /** Where the coordinator's SQLite store goes (a temp dir by default). */
  dataDir?: string;
  logger?: Logger;
  /** Called after each committed round (and its evaluation, if due). */
  onRound?: (report: SimulationRound) => void;
  /** Count bytes each client sends and receives (cost experiments). */
  meterTraffic?: boolean;
  /** Attacking clients, by index in the partition. */
  adversary?: Adversary;
  /** After the job: each client's accuracy of the final model on its own shard (unpoisoned), in partition order. */
  perClientAccuracy?: boolean;
}

export interface SimulationRound {
  round: number;
  summary: RoundSummary;
  accuracy?: number;
  loss?: number;
  dropped: number;
}

export interface SimulationResult {
  job: JobSummary;
  rounds: SimulationRound[];
  finalWeights: Float32Array;
  dataDir: string;
  /** Per client id, when meterTraffic was set. */
  traffic?: Map<string, TrafficMeter>;
  /** When perClientAccuracy was set: the final model's accuracy on each client's shard. */
  clientAccuracy?: number[];
}

/** Releases each round's updates in cohort order (the order train messages arrived). */
class RoundSequencer {
  private round = 0;
  private tail: Promise<void> = Promise.resolve();

  /** Call synchronously when a client receives its train message. */
  ticket(round: number): { turn: Promise<void>; done: () => void } {
    if (round !== this.round) {
      this.round = round;
      this.tail = Promise.resolve();
    }
    const turn = this.tail;
    let done!: () => void;
    // Released on a macrotask, so the previous client's send has fully gone through the transport.
    this.tail = new Promise<void>((resolve) => (done = () => setImmediate(resolve)));
    return { turn, done };
  }
}

class VirtualClient implements ClientTask {
  end!: MemoryClientEnd;
  dropped = 0;
  private readonly attempts = new Map<number, number>();

  constructor(
    readonly index: number,
    readonly datasetId: string,
    readonly numExamples: number,
    private readonly sim: { pool: TrainingPool; seed: number; dropout: number; sequencer: RoundSequencer; onDrop: (round: number) => void },
    private readonly poison?: (delta: Float32Array) => Float32Array,
  ) {}

  async fit(weights: Float32Array, model: ModelSpec, training: TrainingParams, round: number): Promise<FitResult> {
    const { turn, done } = this.sim.sequencer.ticket(round);
    // A retried round (same number after an abort) draws fresh dropouts: the attempt is in the seed.
    const attempt = (this.attempts.get(round) ?? 0) + 1;
    this.attempts.set(round, attempt);
    const rng = seededRng(seedFromString(`${this.sim.seed}:${round}:${attempt}:${this.index}`));
    if (this.sim.dropout > 0 && rng.next() < this.sim.dropout) {
      await turn;
      this.dropped++;
      this.sim.onDrop(round);
      // The device vanishes mid-round, and comes back for later rounds.
      this.end.drop('simulated dropout');
      setImmediate(() => this.end.connect());
      done();
      throw new Error('simulated dropout');
    }
    try {
      const result = await this.sim.pool.train(model, weights, this.datasetId, { ...training, seed: rng.nextUint32() });
      await turn;
      const delta = this.poison ? this.poison(result.delta) : result.delta;
      return { delta, numExamples: result.numExamples, metrics: result.metrics };
    } finally {
      done();
    }
  }

  async evaluate(): Promise<{ numExamples: number; loss: number; accuracy: number }> {
    return { numExamples: 0, loss: 0, accuracy: 0 };
  }
}

export async function runSimulation(opts: SimulationOptions): Promise<SimulationResult> {
  const logger = opts.logger ?? silentLogger;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'cohort-sim-'));
  const store = CohortStore.open(dataDir, { keepCheckpoints: 1 });
  const transport = new MemoryServerTransport({ ...opts.config.limits, maxHeaderBytes: 1 << 20, maxOpenStreams: 4 });
  if (opts.meterTraffic) transport.meter = new Map();
  const engine = new RoundEngine({ config: opts.config, store, transport, logger, rng: seededRng(opts.seed), held: true });
  const prefix = `sim-${opts.seed}-${Date.now()}`;
  const sequencer = new RoundSequencer();
  const droppedPerRound = new Map<number, number>();
  const sim = {
    pool: opts.pool,
    seed: opts.seed,
    dropout: opts.dropout?.probability ?? 0,
    sequencer,
    onDrop: (round: number) => droppedPerRound.set(round, (droppedPerRound.get(round) ?? 0) + 1),
  };
  const adversary = opts.adversary;
  opts.partition.forEach((idx, i) => {
    const shard = subset(opts.data, idx);
    opts.pool.registerDataset(`${prefix}-${i}`, adversary?.data && adversary.clients.has(i) ? adversary.data(shard) : shard);
  });
  const testId = `${prefix}-test`;
  if (opts.test) opts.pool.registerDataset(testId, opts.test);

  const rounds: SimulationRound[] = [];
  const evaluations: Promise<void>[] = [];
  engine.on('round', (summary) => {
    const report: SimulationRound = { round: summary.round, summary, dropped: droppedPerRound.get(summary.round) ?? 0 };
    rounds.push(report);
    const every = opts.evaluateEvery ?? 1;
    const due = opts.test && every > 0 && (summary.round % every === 0 || summary.round === opts.config.rounds);
    if (!due) {
      opts.onRound?.(report);
      return;
    }
    const weights = engine.globalWeights;
    evaluations.push(
      opts.pool.evaluate(opts.config.model, weights, testId, 1000).then((ev) => {
        report.accuracy = ev.accuracy;
        report.loss = ev.loss;
        opts.onRound?.(report);
      }),
    );
  });

  await engine.start();
  const clients = opts.partition.map((idx, i) => {
    const task = new VirtualClient(i, `${prefix}-${i}`, idx.length, sim, adversary?.clients.has(i) ? adversary.update : undefined);
    task.end = transport.createClient();
    const client = new ClientEngine({ clientId: `virtual-${i}`, task, transport: task.end });
    client.start();
    return client;
  });
  // Every virtual client says hello before the first round is sampled.
  await new Promise<void>((resolve) => {
    const poll = () => (engine.connectedClients >= clients.length ? resolve() : setImmediate(poll));
    poll();
  });
  engine.release();
  const job = await engine.whenFinished();
  await Promise.all(evaluations);
  const finalWeights = engine.globalWeights;
  for (const c of clients) c.stop();
  await engine.shutdown();
  store.close();
  const clientAccuracy = opts.perClientAccuracy
    ? await Promise.all(opts.partition.map((idx, i) => opts.pool.evaluate(opts.config.model, finalWeights, subset(opts.data, idx), 1000).then((e) => e.accuracy)))
    : undefined;
  opts.partition.forEach((_, i) => opts.pool.unregisterDataset(`${prefix}-${i}`));
  if (opts.test) opts.pool.unregisterDataset(testId);
  return { job, rounds, finalWeights, dataDir, traffic: transport.meter, ...(clientAccuracy ? { clientAccuracy } : {}) };
}
