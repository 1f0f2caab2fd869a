/**
 * What every experiment shares: flags, data sets and partitions, one simulated series, and the run
 * directory with its progress display and final JSON summary.
 */
import { parseArgs } from 'node:util';
import type { Dataset } from '../../client/data/dataset.ts';
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
import { syntheticFedProx } from '../datasets/synthetic.ts';
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

export interface LoadedData {
  name: string;
  train: Dataset;
  test: Dataset;
  /** Synthetic data comes partitioned by its generator. */
  natural?: Partition;
  model: ModelSpec;
}

export function loadData(flags: Flags): LoadedData {
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
    const { data, partition } = syntheticFedProx({
      alpha: num(flags, 'synthetic-alpha', nonNegative, '≥ 0'),
      beta: num(flags, 'synthetic-beta', nonNegative, '≥ 0'),
      clients,
      seed,
    });
    // Each client's last 20% is its share of the held-out set.
    const trainIdx: number[] = [];
    const testIdx: number[] = [];
    const natural: Partition = [];
    for (const idx of partition) {
      const cut = Math.max(1, Math.floor(idx.length * 0.8));
      natural.push(Int32Array.from({ length: cut }, (_, k) => trainIdx.length + k));
      trainIdx.push(...idx.subarray(0, cut));
      testIdx.push(...idx.subarray(cut));
    }
    return {
      name: 'synthetic',
      train: pick(data, trainIdx),
      test: pick(data, testIdx),
      natural,
      model: { zoo: model as 'mlp', inputShape: [60], numClasses: 10 },
    };
  }
  throw new ConfigError(`--dataset must be mnist, fashion-mnist or synthetic, got ${dataset}`);
}

function pick(ds: Dataset, idx: number[]): Dataset {
  const width = ds.features.length / ds.size;
  const features = new Float32Array(idx.length * width);
  const labels = new Int32Array(idx.length);
  idx.forEach((r, i) => {
    features.set(ds.features.subarray(r * width, (r + 1) * width), i * width);
    labels[i] = ds.labels[r];
  });
  return { ...ds, features, labels, size: idx.length };
}

export function makePartition(data: LoadedData, kind: string, clients: number, alpha: number, seed: number): Partition {
  if (data.natural) {
    if (kind !== 'iid' && kind !== 'natural') throw new ConfigError('synthetic data is partitioned by its generator: use --partition natural');
    return data.natural;
  }
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
  partition: Partition;
  job: JobConfigInput;
  dropout: number;
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
}

/** Runs one configuration as one curve of the experiment, recording every round. */
export async function runSeries(ctx: ExperimentContext, spec: SeriesSpec): Promise<SeriesResult> {
  const started = Date.now();
  const config = parseJobConfig({ evaluation: { every: 0 }, timeouts: { trainMs: 3_600_000, retryDelayMs: 0 }, ...spec.job });
  let last: SimulationRound | undefined;
  let lastStarted = Date.now();
  const result = await runSimulation({
    config,
    data: ctx.data.train,
    partition: spec.partition,
    test: ctx.data.test,
    evaluateEvery: int(ctx.flags, 'eval-every', 0),
    pool: ctx.pool,
    seed: int(ctx.flags, 'seed', 0),
    dropout: { probability: spec.dropout },
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

/** Creates the run dir and pool, runs the experiment body, writes plots, prints dir and summary. */
export async function experiment(
  name: string,
  flags: Flags,
  plannedRounds: number,
  body: (ctx: ExperimentContext) => Promise<SeriesResult[]>,
  /** Fields the experiment adds to its JSON summary, from its series. */
  summarize?: (series: SeriesResult[]) => Record<string, unknown>,
): Promise<number> {
  const started = Date.now();
  const data = loadData(flags);
  const run = RunDir.create(String(flags.out), name, { experiment: name, flags, model: data.model });
  const pool = new TrainingPool({
    ...(flags.workers !== undefined ? { workers: int(flags, 'workers') } : {}),
    ...(flags.backend !== undefined ? { backend: String(flags.backend) } : {}),
  });
  const progress = new Progress(plannedRounds, name);
  try {
    const series = await body({ flags, run, pool, data, progress });
    const files = run.finish(name);
    const summary = {
      experiment: name,
      runDir: run.path,
      files,
      series,
      ...(summarize ? summarize(series) : {}),
      durationMs: Date.now() - started,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
    };
    process.stdout.write(`run directory: ${run.path}\n`);
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return 0;
  } finally {
    await pool.close();
  }
}

export function describePartition(data: LoadedData, partition: Partition): string {
  return describeSkew(labelSkew(partition, data.train.labels, data.train.numClasses));
}
