/**
 * `fairness`: two groups of clients with different data quality, the accuracy gap between them before
 * and after group reweighting in FedAvg, and calibration before and after federated temperature scaling.
 *
 * MNIST, `--clients` clients with a Dirichlet(`--alpha`) label partition; a fraction `--group-b` of them
 * form group B, whose device produces lower-quality images (low contrast on a grey floor, Gaussian pixel noise σ =
 * `--noise-b`), train and test alike. FedAvg of a `--model` (real tfjs local training, LocalTrainer) for
 * `--rounds` rounds, every client every round, updates weighted by examples — and, in the reweighted run,
 * by `--weight-b` for group B's clients (the coordinator's `health.groupWeights`, server/round/parts.ts).
 * Every client then evaluates its held-out data with the client's own HealthAccumulator (statistics and
 * NLL over the coarse temperature grid, shared/evaluation); the sums give the per-group accuracy, the
 * gap, the worst decile across clients and the ECE; the T with the least summed NLL is refined once
 * (HealthMonitor's second exchange) and the calibrated statistics give the ECE after temperature
 * scaling (Guo et al. 2017).
 */
import { selectBackend } from '../../client/train/backend.ts';
import { LocalTrainer } from '../../client/train/trainer.ts';
import { subset, type Dataset } from '../../client/data/dataset.ts';
import {
  accuracyDistribution,
  addStats,
  emptyStats,
  fairnessReport,
  HealthAccumulator,
  metricsOf,
  type EvalStats,
  type GroupTally,
  type HealthRequest,
} from '../../shared/evaluation/index.ts';
import { initialWeights, type ModelSpec } from '../../shared/model/index.ts';
import { seededRng } from '../../shared/random.ts';
import { parseJobConfig } from '../../server/round/config.ts';
import { HealthMonitor } from '../../server/round/health.ts';
import { dirichletPartition } from '../datasets/partition.ts';
import { loadMnist } from '../datasets/mnist.ts';
import { int, num, parseFlags } from './common.ts';
import { HealthRun } from './health-report.ts';

export const FLAGS = {
  clients: { type: 'string' as const, default: '40', help: 'clients' },
  rounds: { type: 'string' as const, default: '15', help: 'FedAvg rounds' },
  alpha: { type: 'string' as const, default: '0.5', help: 'Dirichlet concentration of the label partition' },
  'group-b': { type: 'string' as const, default: '0.25', help: 'fraction of clients in group B (low-quality images)' },
  'noise-b': { type: 'string' as const, default: '0.3', help: "std of the pixel noise on group B's (inverted) images" },
  'weight-b': { type: 'string' as const, default: '3', help: "group B's FedAvg weight in the reweighted run" },
  model: { type: 'string' as const, default: 'logreg', help: 'logreg | mlp' },
  'train-size': { type: 'string' as const, default: '6000', help: 'MNIST examples (80% train, 20% held out, per client)' },
  lr: { type: 'string' as const, default: '0.1', help: 'client learning rate' },
  seed: { type: 'string' as const, default: '1', help: 'seed' },
  out: { type: 'string' as const, default: 'runs', help: 'output directory' },
  quick: { type: 'boolean' as const, default: false, help: 'a reduced run (tests): 20 clients, 6 rounds, 2,000 examples' },
  json: { type: 'boolean' as const, default: false, help: 'print only the summary line' },
};

interface Client {
  group: 'A' | 'B';
  train: Dataset;
  test: Dataset;
}

/** Group B's camera: low contrast (half the intensity, on a grey floor of 0.3) and Gaussian pixel noise, clamped to [0, 1]. */
function degrade(ds: Dataset, sigma: number, seed: number): Dataset {
  const rng = seededRng(seed);
  const features = Float32Array.from(ds.features, (x) => {
    const u = Math.max(1e-12, rng.next());
    const g = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
    return Math.min(1, Math.max(0, 0.3 + 0.5 * x + sigma * g));
  });
  return { ...ds, features };
}

async function fedAvg(spec: ModelSpec, clients: Client[], rounds: number, weightB: number, lr: number, seed: number, onRound: (r: number) => void): Promise<Float32Array> {
  const trainer = new LocalTrainer(spec);
  let w = initialWeights(spec, seed).weights;
  for (let r = 1; r <= rounds; r++) {
    const sum = new Float64Array(w.length);
    let total = 0;
    for (const [i, c] of clients.entries()) {
      const res = await trainer.train(w, c.train, { epochs: 1, batchSize: 10, learningRate: lr, proxMu: 0, seed: seed * 7919 + r * 101 + i });
      const weight = res.numExamples * (c.group === 'B' ? weightB : 1);
      for (let j = 0; j < w.length; j++) sum[j] += weight * res.delta[j];
      total += weight;
    }
    w = Float32Array.from(w, (x, j) => x + sum[j] / total);
    onRound(r);
  }
  trainer.dispose();
  return w;
}

interface Evaluation {
  all: EvalStats;
  calibrated?: EvalStats;
  groups: Map<string, GroupTally>;
  accuracies: number[];
  temperatureNll: number[];
}

async function evaluate(spec: ModelSpec, w: Float32Array, clients: Client[], request: HealthRequest): Promise<Evaluation> {
  const trainer = new LocalTrainer(spec);
  const out: Evaluation = { all: emptyStats(10), groups: new Map(), accuracies: [], temperatureNll: (request.temperatures ?? []).map(() => 0) };
  for (const c of clients) {
    const r = await trainer.evaluate(w, c.test, 256, request);
    const h = r.health!;
    addStats(out.all, h.stats, out.all);
    if (h.calibrated) out.calibrated = out.calibrated ? addStats(out.calibrated, h.calibrated, out.calibrated) : h.calibrated;
    h.temperatureNll?.forEach((x, i) => (out.temperatureNll[i] += x));
    const key = `group=${c.group}`;
    const g = out.groups.get(key) ?? { stats: emptyStats(10), clients: 0 };
    addStats(g.stats, h.stats, g.stats);
    g.clients++;
    out.groups.set(key, g);
    out.accuracies.push(metricsOf(h.stats)!.accuracy);
  }
  trainer.dispose();
  return out;
}

export async function run(args: string[]): Promise<number> {
  const flags = parseFlags(args, FLAGS);
  const quick = flags.quick === true;
  const nClients = quick ? 20 : int(flags, 'clients');
  const rounds = quick ? 6 : int(flags, 'rounds');
  const size = quick ? 2000 : int(flags, 'train-size');
  const alpha = num(flags, 'alpha');
  const fracB = num(flags, 'group-b', (x) => x > 0 && x < 1, 'in (0, 1)');
  const noiseB = num(flags, 'noise-b', (x) => x >= 0, '≥ 0');
  const weightB = num(flags, 'weight-b');
  const lr = num(flags, 'lr');
  const seed = int(flags, 'seed', 0);
  const spec: ModelSpec = { zoo: String(flags.model) as 'logreg', inputShape: [784], numClasses: 10 };
  const started = Date.now();
  await selectBackend({});
  const { train } = loadMnist({ trainSize: size, testSize: 0, seed });
  const parts = dirichletPartition(train.labels, 10, nClients, alpha, seed, { minSize: 10 });
  const rng = seededRng(seed + 1);
  const nB = Math.max(1, Math.round(fracB * nClients));
  const clients: Client[] = parts.map((idx, i) => {
    const shuffled = [...idx].sort(() => rng.next() - 0.5);
    const cut = Math.max(1, Math.floor(shuffled.length * 0.8));
    const group = i < nB ? 'B' : 'A';
    const tr = subset(train, shuffled.slice(0, cut));
    const te = subset(train, shuffled.slice(cut).length ? shuffled.slice(cut) : shuffled.slice(0, 1));
    return group === 'B' ? { group, train: degrade(tr, noiseB, seed + 10 * i), test: degrade(te, noiseB, seed + 10 * i + 5) } : { group, train: tr, test: te };
  });
  const out = new HealthRun(String(flags.out), 'fairness', { clients: nClients, rounds, size, alpha, groupB: fracB, noiseB, weightB, model: spec, lr, seed, quick });

  const results: Record<string, { accuracy: number; gap: number | null; worstDecile: number; ece: number; eceAfter: number; temperature: number; groups: Record<string, number> }> = {};
  const curves: Record<string, { x: number; y: number }[]> = {};
  for (const [name, wB] of [
    ['unweighted', 1],
    [`group B ×${weightB}`, weightB],
  ] as const) {
    curves[name] = [];
    const w = await fedAvg(spec, clients, rounds, wB, lr, seed, (r) => {
      if (!(flags.json === true)) process.stderr.write(`\r${name}: round ${r}/${rounds}`);
    });
    // Evaluation exchange 1: statistics and the coarse temperature grid; exchange 2: the refined grid and calibrated statistics at its best.
    const m = new HealthMonitor(parseJobConfig({ model: spec, health: { temperatureScaling: true } }));
    const first = m.request()!;
    const e1 = await evaluate(spec, w, clients, first);
    const t1 = first.temperatures!;
    const best1 = t1[e1.temperatureNll.indexOf(Math.min(...e1.temperatureNll))];
    const metrics1 = metricsOf(e1.all)!;
    m.conclude(1, { stats: e1.all, metrics: metrics1, clients: clients.length, temperature: { candidates: t1, nll: e1.temperatureNll, best: best1 } }, null);
    const second = m.request()!;
    const e2 = await evaluate(spec, w, clients, second);
    const t2 = second.temperatures!;
    const best2 = t2[e2.temperatureNll.indexOf(Math.min(...e2.temperatureNll))];
    const fair = fairnessReport(e1.groups, 1);
    const dist = accuracyDistribution(e1.accuracies)!;
    results[name] = {
      accuracy: metrics1.accuracy,
      gap: fair.accuracyGap,
      worstDecile: dist.worstDecile,
      ece: metrics1.ece,
      eceAfter: metricsOf(e2.calibrated!)!.ece,
      temperature: second.temperature!,
      groups: Object.fromEntries(fair.groups.map((g) => [g.group, g.metrics?.accuracy ?? NaN])),
    };
    curves[name] = t1.map((t, i) => ({ x: t, y: e1.temperatureNll[i] / 65536 / e1.all.count }));
    out.record({ run: name, ...results[name], refinedBest: best2, reliability: metrics1.reliability, reliabilityAfter: metricsOf(e2.calibrated!)!.reliability });
  }
  if (!(flags.json === true)) process.stderr.write('\n');
  const [plain, reweighted] = Object.values(results);
  out.plot('temperature-nll', Object.entries(curves).map(([name, points]) => ({ name, points })), { title: 'Summed NLL over the temperature grid', xLabel: 'temperature T', yLabel: 'mean NLL' });
  out.plot(
    'group-accuracy',
    Object.entries(results).map(([name, r]) => ({ name, points: Object.values(r.groups).map((y, i) => ({ x: i, y })) })),
    { title: 'Accuracy of group A (x=0) and group B (x=1)', xLabel: 'group', yLabel: 'accuracy', yRange: [0, 1] },
  );
  out.finish(
    {
      experiment: 'fairness',
      accuracy: plain.accuracy,
      accuracyAfterReweighting: reweighted.accuracy,
      groupAccuracy: plain.groups,
      groupAccuracyAfterReweighting: reweighted.groups,
      groupAccuracyGap: plain.gap,
      groupAccuracyGapAfterReweighting: reweighted.gap,
      worstDecileAccuracy: plain.worstDecile,
      worstDecileAccuracyAfterReweighting: reweighted.worstDecile,
      ece: plain.ece,
      eceAfterTemperature: plain.eceAfter,
      temperature: plain.temperature,
      weightB,
      clients: nClients,
      rounds,
      durationMs: Date.now() - started,
    },
    flags.json === true,
  );
  return 0;
}
