/**
 * The virtual-client engine: N simulated clients driven by the real coordinator round engine and the
 * real client engine over the in-memory transport, with local training on a worker pool so every core
 * is used. What differs from deployment is only where the bytes go (memory, not sockets) and where
 * training runs (a shared pool, not each device).
 *
 * Population scale (population.ts): a member of the population is an open in-memory connection and
 * 71 bytes of state; its ClientEngine, task and data exist only while it takes part in a round. Data
 * is one data set registered once with the pool (a client is rows of it) or generated on demand; all
 * clients read the one published model (the in-memory transport shares it, never copies it per
 * client). Members connect in waves, so memory at start grows with a wave, not the population.
 *
 * Stopping: `signal` aborts the run at any stage (connecting, training, SecAgg): the job is stopped
 * through the round engine (status `stopped` in the store, what was committed stays committed).
 *
 * Deterministic given a seed (on one backend): cohort sampling, dropouts and local shuffling are
 * seeded, and updates are released to the coordinator in cohort order, so the floating-point sum is
 * formed in the same order whichever worker finishes first.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { featureLength, subset, type Dataset } from '../../client/data/dataset.ts';
import type { ClientEngine, ClientTask, FitResult } from '../../client/engine/index.ts';
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
import { ClientStates, Member, memberEngine, partitionedData, type ClientDataSource } from './population.ts';

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
  /** The pooled data set and which examples each client holds (or `clients`). */
  data?: Dataset;
  partition?: Partition;
  /** Where each client's examples come from (instead of `data` and `partition`). */
  clients?: ClientDataSource;
  /** Keep every client engine for the whole run instead of parking idle ones (the reference path). */
  keepAwake?: boolean;
  /** Clients connecting at a time before the first round (default 1,000). */
  connectWave?: number;
  /** Stops the run: the job ends `stopped` and runSimulation resolves. */
  signal?: AbortSignal;
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
  /** Called after each wave of members has joined (how many have, of how many). */
  onJoining?: (joined: number, total: number) => void;
  /** Called when every member has joined, before the first round (milliseconds it took). */
  onConnected?: (ms: number) => void;
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
  /** Bytes all clients have sent so far (cumulative), when meterTraffic was set. */
  bytesUp?: number;
}

export interface SimulationResult {
  job: JobSummary;
  rounds: SimulationRound[];
  finalWeights: Float32Array;
  dataDir: string;
  /** Per client id, when meterTraffic was set. */
  traffic?: Map<string, TrafficMeter>;
  /** Milliseconds until every member had joined (before the first round). */
  connectMs: number;
  /** Most client engines awake at once (the cohort and its stragglers, not the population). */
  peakAwake: number;
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

interface SimContext {
  pool: TrainingPool;
  seed: number;
  dropout: number;
  sequencer: RoundSequencer;
  states: ClientStates;
  clients: ClientDataSource;
  onDrop: (round: number) => void;
}

/** A member's task while it is awake: train on its data in the pool, or drop out as seeded. */
class VirtualClient implements ClientTask {
  constructor(
    readonly index: number,
    readonly numExamples: number,
    private readonly end: MemoryClientEnd,
    private readonly sim: SimContext,
    private readonly poison?: (delta: Float32Array) => Float32Array,
  ) {}

  async fit(weights: Float32Array, model: ModelSpec, training: TrainingParams, round: number): Promise<FitResult> {
    const { turn, done } = this.sim.sequencer.ticket(round);
    // A retried round (same number after an abort) draws fresh dropouts: the attempt is in the seed.
    const attempt = this.sim.states.nextAttempt(this.index, round);
    const rng = seededRng(seedFromString(`${this.sim.seed}:${round}:${attempt}:${this.index}`));
    if (this.sim.dropout > 0 && rng.next() < this.sim.dropout) {
      await turn;
      this.sim.onDrop(round);
      // The device vanishes mid-round, and comes back for later rounds.
      this.end.drop('simulated dropout');
      setImmediate(() => this.end.connect());
      done();
      throw new Error('simulated dropout');
    }
    try {
      const data = this.sim.clients.trainingData(this.index);
      const result = await this.sim.pool.train(model, weights, data, { ...training, seed: rng.nextUint32() });
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

/** A copy of the pooled data in which each attacking client's rows are replaced by `adversary.data` of its shard (partitions are disjoint). */
function poisoned(data: Dataset, partition: Partition, adversary: Adversary): Dataset {
  const width = featureLength(data.featureShape);
  const out: Dataset = { ...data, features: data.features.slice(), labels: data.labels.slice(), featureShape: [...data.featureShape] };
  for (const i of adversary.clients) {
    const idx = partition[i];
    if (!idx) continue;
    const bad = adversary.data!(subset(data, idx));
    for (let k = 0; k < idx.length; k++) {
      out.labels[idx[k]] = bad.labels[k];
      out.features.set(bad.features.subarray(k * width, (k + 1) * width), idx[k] * width);
    }
  }
  return out;
}

/** Resolves when `done()` holds (checked once per event-loop turn), or when `signal` aborts. */
function until(done: () => boolean, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const poll = () => (done() || signal?.aborted ? resolve() : setImmediate(poll));
    poll();
  });
}

export async function runSimulation(opts: SimulationOptions): Promise<SimulationResult> {
  const logger = opts.logger ?? silentLogger;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'cohort-sim-'));
  const store = CohortStore.open(dataDir, { keepCheckpoints: 1 });
  const transport = new MemoryServerTransport({ ...opts.config.limits, maxHeaderBytes: 1 << 20, maxOpenStreams: 4 });
  if (opts.meterTraffic) transport.meter = new Map();
  const engine = new RoundEngine({ config: opts.config, store, transport, logger, rng: seededRng(opts.seed), held: true });
  const prefix = `sim-${opts.seed}-${Date.now()}`;
  const droppedPerRound = new Map<number, number>();
  const adversary = opts.adversary;
  let clientData = opts.clients;
  if (!clientData) {
    if (!opts.data || !opts.partition) throw new Error('runSimulation: give `clients`, or `data` and `partition`');
    clientData = partitionedData(opts.pool, `${prefix}-data`, adversary?.data ? poisoned(opts.data, opts.partition, adversary) : opts.data, opts.partition);
  } else if (adversary?.data) {
    throw new Error('runSimulation: an adversary with poisoned data needs `data` and `partition`');
  }
  const sim: SimContext = {
    pool: opts.pool,
    seed: opts.seed,
    dropout: opts.dropout?.probability ?? 0,
    sequencer: new RoundSequencer(),
    states: new ClientStates(clientData.size),
    clients: clientData,
    onDrop: (round: number) => droppedPerRound.set(round, (droppedPerRound.get(round) ?? 0) + 1),
  };
  const testId = `${prefix}-test`;
  if (opts.test) opts.pool.registerDataset(testId, opts.test);
  const rounds: SimulationRound[] = [];
  const evaluations: Promise<void>[] = [];
  engine.on('round', (summary) => {
    const report: SimulationRound = { round: summary.round, summary, dropped: droppedPerRound.get(summary.round) ?? 0 };
    if (transport.meter) report.bytesUp = [...transport.meter.values()].reduce((n, m) => n + m.up, 0);
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
  const started = Date.now();
  let awake = 0;
  let peakAwake = 0;
  const members: Member[] = [];
  for (let k = 0; k < clientData.size; k++) {
    const end = transport.createClient();
    const numExamples = clientData.sizeOf(k);
    const poison = adversary?.clients.has(k) ? adversary.update : undefined;
    members.push(
      new Member(k, end, {
        wake: (joined): ClientEngine => {
          peakAwake = Math.max(peakAwake, ++awake);
          return memberEngine(`virtual-${k}`, new VirtualClient(k, numExamples, end, sim, poison), end, sim.states.identity(k), joined);
        },
        parked: () => awake--,
      }, opts.keepAwake),
    );
  }
  // Every member says hello before the first round is sampled; a wave at a time, each parking once welcomed.
  const wave = opts.connectWave ?? 1000;
  for (let from = 0; from < members.length && !opts.signal?.aborted; from += wave) {
    const to = Math.min(members.length, from + wave);
    for (let k = from; k < to; k++) members[k].start();
    await until(() => engine.connectedClients >= to, opts.signal);
    opts.onJoining?.(to, members.length);
  }
  const connectMs = Date.now() - started;
  if (!opts.signal?.aborted) opts.onConnected?.(connectMs);
  const stop = () => void engine.stop(`interrupted: ${String(opts.signal?.reason ?? 'aborted')}`.slice(0, 200), { keepTransport: true });
  if (opts.signal?.aborted) stop();
  else {
    opts.signal?.addEventListener('abort', stop, { once: true });
    engine.release();
  }
  const job = await engine.whenFinished();
  opts.signal?.removeEventListener('abort', stop);
  await Promise.all(evaluations);
  const finalWeights = engine.globalWeights;
  for (const m of members) m.stop();
  await engine.shutdown();
  store.close();
  const clientAccuracy =
    opts.perClientAccuracy && opts.data && opts.partition
      ? await Promise.all(opts.partition.map((idx) => opts.pool.evaluate(opts.config.model, finalWeights, subset(opts.data!, idx), 1000).then((e) => e.accuracy)))
      : undefined;
  clientData.close();
  if (opts.test) opts.pool.unregisterDataset(testId);
  return { job, rounds, finalWeights, dataDir, traffic: transport.meter, connectMs, peakAwake, ...(clientAccuracy ? { clientAccuracy } : {}) };
}
