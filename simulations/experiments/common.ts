/**
 * What every experiment shares: flags, data sets and partitions, one simulated series, and the run
 * directory with its progress display and final JSON summary.
 */
import { parseArgs } from 'node:util';
import { subset, type Dataset } from '../../client/data/dataset.ts';
import { TrainingPool } from '../../client/node/pool.ts';
import { parseJobConfig, type JobConfigInput } from '../../server/round/config.ts';
import { ConfigError } from '../../shared/errors.ts';
import type { ModelSpec } from '../../shared/model/index.ts';
import type { LocalOptimizerInput } from '../../shared/fl/index.ts';
import { runSimulation, type Adversary, type SimulationRound } from '../engine/simulation.ts';
import { clientFairness, type ClientFairness } from '../../shared/fl/index.ts';
import { loadFashionMnist } from '../datasets/fashion-mnist.ts';
import { loadMnist } from '../datasets/mnist.ts';
import { describeSkew, dirichletPartition, iidPartition, labelSkew, shardPartition, type Partition } from '../datasets/partition.ts';
import { SYNTHETIC_CLASSES, SYNTHETIC_FEATURES, SyntheticPopulation } from '../datasets/synthetic.ts';
import { generatedData } from '../engine/population.ts';
import { Progress } from '../report/progress.ts';
import { RunDir, type RoundRow } from '../report/run-dir.ts';

export type FlagSpec = Record<string, { type: 'string' | 'boolean'; default?: string | boolean; help: string }>;

export const COMMON_FLAGS: FlagSpec = {
  dataset: { type: 'string', default: 'mnist', help: 'mnist | fashion-mnist | synthetic' },
  model: { type: 'string', default: 'mlp', help: 'logreg | mlp | cnn' },
  clients: { type: 'string', default: '100', help: 'number of virtual clients' },
  partition: { type: 'string', default: 'iid', help: 'iid | shards | dirichlet (comma list to compare)' },
  alpha: { type: 'string', default: '0.5', help: 'Dirichlet concentration (partition dirichlet)' },
  'synthetic-alpha': { type: 'string', default: '1', help: 'Synthetic(α, β): model heterogeneity α' },
  'synthetic-beta': { type: 'string', default: '1', help: 'Synthetic(α, β): feature heterogeneity β' },
  rounds: { type: 'string', default: '50', help: 'rounds of FedAvg' },
  fraction: { type: 'string', default: '0.1', help: 'fraction of clients sampled per round (C in McMahan et al.)' },
  epochs: { type: 'string', default: '1', help: 'local epochs E (comma list to sweep)' },
  'batch-size': { type: 'string', default: '10', help: 'local batch size B (comma list to sweep)' },
  lr: { type: 'string', default: '0.05', help: 'client learning rate' },
  optimizer: { type: 'string', default: 'sgd', help: 'local optimizer: sgd | momentum | adam (default hyperparameters)' },
  dropout: { type: 'string', default: '0', help: 'probability a sampled client drops out of a round' },
  'eval-every': { type: 'string', default: '1', help: 'evaluate on the held-out set every k rounds' },
  workers: { type: 'string', help: 'training worker threads (default: all cores)' },
  backend: { type: 'string', help: 'tensorflow | wasm | cpu' },
  seed: { type: 'string', default: '1', help: 'seed for data, partition, sampling, dropouts, training' },
  out: { type: 'string', default: 'runs', help: 'parent directory of the run directory' },
  'train-size': { type: 'string', help: 'training examples to use (default: all of the data set)' },
  'test-size': { type: 'string', help: 'held-out examples (default: data set specific)' },
  help: { type: 'boolean', default: false, help: 'show the flags' },
};

export type Flags = Record<string, string | boolean | undefined>;

export function parseFlags(args: string[], spec: FlagSpec): Flags {
  const options = Object.fromEntries(
    Object.entries(spec).map(([k, v]) => [k, { type: v.type, ...(v.default !== undefined ? { default: v.default } : {}) }]),
  );
  try {
    return parseArgs({ args, options: options as never, strict: true, allowPositionals: false }).values as Flags;
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\n${usage(spec)}`);
  }
}

export function usage(spec: FlagSpec): string {
  return Object.entries(spec)
    .map(([k, v]) => `  --${k.padEnd(12)} ${v.help}${v.default !== undefined && v.type === 'string' ? ` (default ${v.default})` : ''}`)
    .join('\n');
}

export function num(flags: Flags, name: string, check: (x: number) => boolean = (x) => x > 0, what = 'a positive number'): number {
  const raw = flags[name];
  const x = Number(raw);
  if (raw === undefined || typeof raw === 'boolean' || !Number.isFinite(x) || !check(x)) {
    throw new ConfigError(`--${name} must be ${what}, got ${String(raw)}`);
  }
  return x;
}

export const int = (flags: Flags, name: string, min = 1) =>
  num(flags, name, (x) => Number.isInteger(x) && x >= min, `an integer ≥ ${min}`);

/** A local optimizer (shared/fl/local-optimizers.ts) by name, with its default hyperparameters. */
export function localOptimizer(name: string): LocalOptimizerInput {
  if (name !== 'sgd' && name !== 'momentum' && name !== 'adam') throw new ConfigError(`--optimizer must be sgd, momentum or adam, got ${name}`);
  return { name };
}

export function list(flags: Flags, name: string): string[] {
  return String(flags[name]).split(',').map((s) => s.trim()).filter(Boolean);
}

/** Clients whose examples are generated when they are sampled (nothing else of them exists). */
export interface GeneratedClients {
  size: number;
  sizeOf(k: number): number;
  client(k: number): Dataset;
}

/** Each client's examples: rows of the loaded training set, or generated on demand (synthetic). */
export type ClientSplit = Partition | GeneratedClients;

export const splitSize = (split: ClientSplit): number => (Array.isArray(split) ? split.length : split.size);

export interface LoadedData {
  name: string;
  /** The pooled training set (image data; synthetic clients are generated instead). */
  train?: Dataset;
  test: Dataset;
  /** Synthetic data: its generator makes each client, on demand. */
  generated?: GeneratedClients;
  model: ModelSpec;
}

/** Clients of a held-out sample whose last 20% of rows make the synthetic test set. */
export const SYNTHETIC_TEST_CLIENTS = 500;

/**
 * Synthetic(α, β) as clients on demand: client k trains on the first 80% of its rows; the held-out
 * set is the last 20% of up to SYNTHETIC_TEST_CLIENTS clients spread over the population (all of
 * them in a population that small).
 */
export async function syntheticClients(population: SyntheticPopulation, signal?: AbortSignal): Promise<{ generated: GeneratedClients; test: Dataset }> {
  const cut = (size: number) => Math.max(1, Math.floor(size * 0.8));
  const generated: GeneratedClients = {
    size: population.size,
    sizeOf: (k) => cut(population.sizeOf(k)),
    client: (k) => {
      const all = population.client(k);
      return subset(all, Int32Array.from({ length: cut(all.size) }, (_, n) => n));
    },
  };
  const held = Math.min(population.size, SYNTHETIC_TEST_CLIENTS);
  process.stderr.write(`synthetic: generating the held-out rows of ${held} clients…\n`);
  const parts: Dataset[] = [];
  for (let i = 0; i < held; i++) {
    if (i % 25 === 0) await stillGoing(signal);
    const all = population.client(Math.floor((i * population.size) / held));
    parts.push(subset(all, Int32Array.from({ length: all.size - cut(all.size) }, (_, n) => cut(all.size) + n)));
  }
  const size = parts.reduce((a, p) => a + p.size, 0);
  const features = new Float32Array(size * SYNTHETIC_FEATURES);
  const labels = new Int32Array(size);
  let row = 0;
  for (const p of parts) {
    features.set(p.features, row * SYNTHETIC_FEATURES);
    labels.set(p.labels, row);
    row += p.size;
  }
  return { generated, test: { features, labels, featureShape: [SYNTHETIC_FEATURES], numClasses: SYNTHETIC_CLASSES, size } };
}

/** The run was asked to stop (SIGINT, SIGTERM) before its rounds began. */
export class Interrupted extends Error {
  constructor(readonly signal: string) {
    super(`interrupted by ${signal}`);
  }
}

/** Lets a pending signal be handled (one event-loop turn), then throws if the run was asked to stop. */
export async function stillGoing(signal?: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  if (signal?.aborted) throw new Interrupted(String(signal.reason));
}

/** Loads the data set the flags name; checks `signal` between steps (each well under a second). */
export async function loadData(flags: Flags, signal?: AbortSignal): Promise<LoadedData> {
  await stillGoing(signal);
  const seed = int(flags, 'seed', 0);
  const dataset = String(flags.dataset);
  const model = String(flags.model);
  if (!['logreg', 'mlp', 'cnn'].includes(model)) throw new ConfigError(`--model must be logreg, mlp or cnn, got ${model}`);
  const sizes = (defTrain: number, defTest: number) => ({
    trainSize: flags['train-size'] === undefined ? defTrain : int(flags, 'train-size'),
    testSize: flags['test-size'] === undefined ? defTest : int(flags, 'test-size'),
    seed,
  });
  const image = (name: ModelSpec & { zoo: string }) =>
    model === 'cnn' ? ({ zoo: 'cnn', inputShape: [28, 28, 1], numClasses: 10 } as ModelSpec) : name;
  if (dataset === 'mnist') {
    const { train, test } = loadMnist(sizes(8000, 2000));
    return { name: 'mnist', train, test, model: image({ zoo: model as 'mlp' }) };
  }
  if (dataset === 'fashion-mnist') {
    const { train, test } = loadFashionMnist(sizes(60_000, 10_000));
    return { name: 'fashion-mnist', train, test, model: image({ zoo: model as 'mlp' }) };
  }
  if (dataset === 'synthetic') {
    if (model === 'cnn') throw new ConfigError('--model cnn needs image data; use logreg or mlp with --dataset synthetic');
    const clients = int(flags, 'clients');
    const nonNegative = (x: number) => x >= 0;
    const population = new SyntheticPopulation({
      alpha: num(flags, 'synthetic-alpha', nonNegative, '≥ 0'),
      beta: num(flags, 'synthetic-beta', nonNegative, '≥ 0'),
      clients,
      seed,
    });
    const { generated, test } = await syntheticClients(population, signal);
    return { name: 'synthetic', generated, test, model: { zoo: model as 'mlp', inputShape: [SYNTHETIC_FEATURES], numClasses: SYNTHETIC_CLASSES } };
  }
  throw new ConfigError(`--dataset must be mnist, fashion-mnist or synthetic, got ${dataset}`);
}

export function makePartition(data: LoadedData, kind: string, clients: number, alpha: number, seed: number): ClientSplit {
  if (data.generated) {
    if (kind !== 'iid' && kind !== 'natural') throw new ConfigError('synthetic data is partitioned by its generator: use --partition natural');
    return data.generated;
  }
  if (!data.train) throw new ConfigError(`${data.name}: no training set to partition`);
  switch (kind) {
    case 'iid':
    case 'natural':
      return iidPartition(data.train.size, clients, seed);
    case 'shards':
      return shardPartition(data.train.labels, clients, seed);
    case 'dirichlet':
      return dirichletPartition(data.train.labels, data.train.numClasses, clients, alpha, seed);
    default:
      throw new ConfigError(`--partition must be iid, shards or dirichlet, got ${kind}`);
  }
}

export interface SeriesSpec {
  name: string;
  partition: ClientSplit;
  job: JobConfigInput;
  dropout: number;
  /** Count the bytes clients send (recorded per round as the cumulative `bytesUp`). */
  meterTraffic?: boolean;
  /** Attacking clients (poisoning experiments). */
  adversary?: Adversary;
  /** Report fairness across the (honest) clients: the final model's accuracy on each one's own data. */
  fairness?: boolean;
}

export interface SeriesResult {
  name: string;
  status: string;
  /** Why the job ended early (failed / budget exhausted / stopped), from the round engine. */
  reason?: string;
  rounds: number;
  finalAccuracy?: number;
  finalLoss?: number;
  epsilon?: number;
  epsilonPublished?: number | null;
  epsilonCoordinator?: number | null;
  /** Across honest clients, the final model on each one's data (when the series asked for it). */
  fairness?: ClientFairness;
  durationMs: number;
}

export interface ExperimentContext {
  flags: Flags;
  run: RunDir;
  pool: TrainingPool;
  data: LoadedData;
  progress: Progress;
  /** Aborted by SIGINT / SIGTERM: the series in flight stops, later ones do not start. */
  signal?: AbortSignal;
}

/** Runs one configuration as one curve of the experiment, recording every round. */
export async function runSeries(ctx: ExperimentContext, spec: SeriesSpec): Promise<SeriesResult> {
  const started = Date.now();
  if (ctx.signal?.aborted) return { name: spec.name, status: 'not started', reason: String(ctx.signal.reason), rounds: 0, durationMs: 0 };
  const config = parseJobConfig({ evaluation: { every: 0 }, timeouts: { trainMs: 3_600_000, retryDelayMs: 0 }, ...spec.job });
  let last: SimulationRound | undefined;
  let lastStarted = Date.now();
  let tenthsReported = 0;
  const split = spec.partition;
  const result = await runSimulation({
    config,
    ...(Array.isArray(split) ? { data: ctx.data.train, partition: split } : { clients: generatedData(split) }),
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    onJoining: (joined, total) => {
      // A line per tenth of a large population (joining 100,000 takes minutes).
      const tenth = Math.floor((10 * joined) / total);
      if (total < 20_000 || tenth <= tenthsReported) return;
      tenthsReported = tenth;
      process.stderr.write(`${spec.name}: ${joined}/${total} clients joined\n`);
    },
    onConnected: (ms) => {
      // A round's duration is its own, not the wait for the population to join.
      lastStarted = Date.now();
      process.stderr.write(`${spec.name}: ${splitSize(split)} clients joined in ${(ms / 1000).toFixed(1)} s; rounds start\n`);
    },
    test: ctx.data.test,
    evaluateEvery: int(ctx.flags, 'eval-every', 0),
    pool: ctx.pool,
    seed: int(ctx.flags, 'seed', 0),
    dropout: { probability: spec.dropout },
    ...(spec.meterTraffic ? { meterTraffic: true } : {}),
    ...(spec.adversary ? { adversary: spec.adversary } : {}),
    perClientAccuracy: spec.fairness === true,
    onRound: (r) => {
      last = r;
      const row: RoundRow = {
        series: spec.name,
        round: r.round,
        accuracy: r.accuracy,
        loss: r.loss,
        trainLoss: r.summary.record.trainLoss ?? undefined,
        epsilon: r.summary.epsilon,
        // Both audiences where they differ (distributed mode): model consumers, and the coordinator.
        ...(r.summary.epsilonCoordinator != null && r.summary.epsilonPublished != null && r.summary.epsilonCoordinator !== r.summary.epsilonPublished
          ? { epsilonPublished: r.summary.epsilonPublished, epsilonCoordinator: r.summary.epsilonCoordinator }
          : {}),
        cohort: r.summary.record.cohortSize,
        survivors: r.summary.record.survivors,
        dropped: r.dropped,
        ...(r.bytesUp === undefined ? {} : { bytesUp: r.bytesUp }),
        durationMs: Date.now() - lastStarted,
      };
      lastStarted = Date.now();
      ctx.run.record(row);
      ctx.progress.tick(1, `${spec.name}${r.accuracy === undefined ? '' : ` acc ${r.accuracy.toFixed(3)}`}${r.summary.epsilon === undefined ? '' : ` ε ${r.summary.epsilon.toFixed(3)}`}`);
    },
  });
  if (result.job.status !== 'completed') {
    process.stderr.write(`series "${spec.name}" ended ${result.job.status} after ${result.job.rounds} rounds${result.job.reason ? `: ${result.job.reason}` : ''}\n`);
  }
  return {
    name: spec.name,
    status: result.job.status,
    ...(result.job.reason ? { reason: result.job.reason } : {}),
    rounds: result.job.rounds,
    finalAccuracy: last?.accuracy,
    finalLoss: last?.loss,
    epsilon: last?.summary.epsilon,
    ...(last?.summary.epsilonCoordinator != null ? { epsilonPublished: last.summary.epsilonPublished, epsilonCoordinator: last.summary.epsilonCoordinator } : {}),
    ...(result.clientAccuracy ? { fairness: clientFairness(result.clientAccuracy.filter((_, i) => !spec.adversary?.clients.has(i))) } : {}),
    durationMs: Date.now() - started,
  };
}

/** Exit status of a run stopped by a signal (128 + its number, as a shell reports it). */
const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Creates the run dir and pool, runs the experiment body, writes plots, prints dir and summary.
 *
 * SIGINT or SIGTERM stops the run at any stage: while loading or generating data (checked between
 * steps, each well under a second), connecting clients or in a round (the round engine stops the job;
 * telling every member and closing every connection grows with the population: ~2 s at 20,000). What
 * was recorded stays: rounds.jsonl (one complete line per committed round), then rounds.csv, the plots
 * and summary.json of those rounds; the summary says `stopped`, and the exit status is 130 / 143. A
 * second signal exits at once.
 */
export async function experiment(
  name: string,
  flags: Flags,
  plannedRounds: number,
  body: (ctx: ExperimentContext) => Promise<SeriesResult[]>,
  /** Fields the experiment adds to its JSON summary, from its series. */
  summarize?: (series: SeriesResult[]) => Record<string, unknown>,
): Promise<number> {
  const started = Date.now();
  const stopping = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping.signal.aborted) process.exit(SIGNAL_EXIT[sig] ?? 1);
    process.stderr.write(`${name}: ${sig}: stopping…\n`);
    stopping.abort(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let pool: TrainingPool | undefined;
  try {
    const data = await loadData(flags, stopping.signal);
    const run = RunDir.create(String(flags.out), name, { experiment: name, flags, model: data.model });
    pool = new TrainingPool({
      ...(flags.workers !== undefined ? { workers: int(flags, 'workers') } : {}),
      ...(flags.backend !== undefined ? { backend: String(flags.backend) } : {}),
    });
    const progress = new Progress(plannedRounds, name);
    const series = await body({ flags, run, pool, data, progress, signal: stopping.signal });
    const stopped = stopping.signal.aborted ? String(stopping.signal.reason) : undefined;
    const summary = {
      experiment: name,
      ...(stopped ? { stopped } : {}),
      runDir: run.path,
      files: [...run.finish(name), 'summary.json'],
      series,
      ...(summarize ? summarize(series) : {}),
      durationMs: Date.now() - started,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
    };
    run.writeSummary(summary);
    process.stdout.write(`run directory: ${run.path}\n`);
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return stopped ? (SIGNAL_EXIT[stopped] ?? 1) : 0;
  } catch (err) {
    if (!(err instanceof Interrupted)) throw err;
    process.stderr.write(`${name}: stopped before the first round (${err.signal})\n`);
    return SIGNAL_EXIT[err.signal] ?? 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await pool?.close();
  }
}

export function describePartition(data: LoadedData, split: ClientSplit): string {
  if (!Array.isArray(split) || !data.train) return `${splitSize(split)} clients generated on demand`;
  return describeSkew(labelSkew(split, data.train.labels, data.train.numClasses));
}
