/**
 * `drift`: how fast federated drift monitoring notices a shift, and how often it cries wolf.
 *
 * MNIST, `--clients` clients (default 200) with disjoint IID shards. Every round each client summarises
 * a fresh window of `--window` of its examples as a drift sketch (shared/evaluation/drift.ts: label
 * histogram and fixed-bin histograms of the mean intensity of 4 horizontal bands of the image), the
 * sketches are summed (what SecAgg or the coordinator would see), and the coordinator's own
 * `HealthMonitor` (server/round/health.ts) compares each round with the reference window of the first
 * `--reference` rounds: PSI above `--psi` raises an alert. At round `--drift-round` a fraction
 * `--drift-fraction` of the clients switches to shifted data: label shift (only digits 0–4), covariate
 * shift (images rotated 90°), or both. Reported: detection delay (rounds from the shift to the first
 * alert) over `--runs` drift runs, and the false-alarm rate (runs with any alert) over as many no-drift
 * runs; each with and without DP noise on the summed sketches.
 *
 * DP: the Gaussian mechanism on the summed counts. One client's sketch of w examples changes the label
 * histogram by w in L1 and each band histogram by w, so by at most Δ = w·√(1 + bands) in L2 (add or
 * remove a client); σ = z·Δ on every count, noised counts clamped at 0. ε is the RDP accountant's for
 * that Gaussian composed over every round (unsampled: every client reports every round), at δ = 1e-5.
 * Federated accuracy drop is not simulated here (no model is trained): the alerts are the sketches'.
 */
import { ConfigError } from '../../shared/errors.ts';
import { addSketches, addToSketch, bandMeans, emptySketch, emptyStats, type DriftSketch, type EvalMetrics, type FeatureBinning } from '../../shared/evaluation/index.ts';
import { gaussianSample } from '../../shared/dp/index.ts';
import { gaussianEvent, RdpAccountant } from '../../shared/privacy/index.ts';
import { seededRng, type Rng } from '../../shared/random.ts';
import { parseJobConfig } from '../../server/round/config.ts';
import { HealthMonitor } from '../../server/round/health.ts';
import { loadMnist, partitionIid } from '../datasets/mnist.ts';
import type { Dataset } from '../../client/data/dataset.ts';
import { int, num, parseFlags } from './common.ts';
import { HealthRun } from './health-report.ts';

export const FLAGS = {
  clients: { type: 'string' as const, default: '200', help: 'clients' },
  rounds: { type: 'string' as const, default: '24', help: 'monitoring rounds per run' },
  window: { type: 'string' as const, default: '20', help: 'examples in each client window' },
  reference: { type: 'string' as const, default: '3', help: 'rounds in the reference window' },
  'drift-round': { type: 'string' as const, default: '10', help: 'round at which drift starts' },
  'drift-fraction': { type: 'string' as const, default: '0.5', help: 'fraction of clients that drift' },
  shift: { type: 'string' as const, default: 'both', help: 'label, rotate, or both' },
  psi: { type: 'string' as const, default: '0.03', help: 'PSI alert threshold (no DP)' },
  'psi-dp': { type: 'string' as const, default: '0.2', help: 'PSI alert threshold of the DP runs (above their noise floor)' },
  bins: { type: 'string' as const, default: '6', help: 'bins of each band histogram' },
  runs: { type: 'string' as const, default: '10', help: 'drift runs and no-drift runs, each' },
  noise: { type: 'string' as const, default: '1', help: 'noise multiplier z of the DP runs' },
  seed: { type: 'string' as const, default: '1', help: 'seed' },
  out: { type: 'string' as const, default: 'runs', help: 'output directory' },
  quick: { type: 'boolean' as const, default: false, help: 'a reduced run (tests): 200 clients, 14 rounds, 3 + 3 runs' },
  json: { type: 'boolean' as const, default: false, help: 'print only the summary line' },
};

const BANDS = 4;
let BINNING: FeatureBinning = { features: BANDS, bins: 6, lo: 0, hi: 0.4 };
const SIDE = 28;

/** The image rotated by 90° (covariate shift). */
function rotate(pixels: Float32Array, from: number): Float32Array {
  const out = new Float32Array(SIDE * SIDE);
  for (let r = 0; r < SIDE; r++) for (let c = 0; c < SIDE; c++) out[c * SIDE + (SIDE - 1 - r)] = pixels[from + r * SIDE + c];
  return out;
}

function windowSketch(ds: Dataset, w: number, rng: Rng, shift: { label: boolean; rotate: boolean } | null): DriftSketch {
  const pick: number[] = [];
  const eligible = shift?.label ? [...ds.labels.keys()].filter((i) => ds.labels[i] < 5) : [...ds.labels.keys()];
  const pool = eligible.length > 0 ? eligible : [...ds.labels.keys()];
  for (let i = 0; i < w; i++) pick.push(pool[Math.floor(rng.next() * pool.length)]);
  const px = new Float32Array(w * SIDE * SIDE);
  pick.forEach((row, k) => px.set(shift?.rotate ? rotate(ds.features, row * SIDE * SIDE) : ds.features.subarray(row * SIDE * SIDE, (row + 1) * SIDE * SIDE), k * SIDE * SIDE));
  return addToSketch(emptySketch(10, BINNING), bandMeans(px, SIDE * SIDE, BANDS), pick.map((r) => ds.labels[r]), BINNING);
}

function noised(s: DriftSketch, sigma: number, rng: Rng): DriftSketch {
  if (sigma === 0) return s;
  const n = (x: number) => Math.max(0, x + sigma * gaussianSample(rng));
  return { labels: s.labels.map(n), features: s.features.map((h) => h.map(n)) };
}

interface RunResult {
  firstAlert: number | null;
  psi: number[];
}

function monitorRun(opts: {
  shards: Dataset[];
  rounds: number;
  window: number;
  reference: number;
  psi: number;
  drift: { round: number; fraction: number; label: boolean; rotate: boolean } | null;
  sigma: number;
  seed: number;
}): RunResult {
  const rng = seededRng(opts.seed);
  const config = parseJobConfig({
    model: { zoo: 'mlp', inputShape: [784], numClasses: 10 },
    health: { drift: { binning: { bands: BANDS, bins: BINNING.bins, lo: BINNING.lo, hi: BINNING.hi }, referenceEvaluations: opts.reference, psiThreshold: opts.psi } },
  });
  const monitor = new HealthMonitor(config);
  const drifting = new Set<number>();
  if (opts.drift) {
    const k = Math.round(opts.drift.fraction * opts.shards.length);
    const order = opts.shards.map((_, i) => i).sort(() => rng.next() - 0.5);
    for (const i of order.slice(0, k)) drifting.add(i);
  }
  // The sketch-only report the monitor reads (no model here: accuracy is not part of this experiment).
  const metrics = { accuracy: 0 } as EvalMetrics;
  let firstAlert: number | null = null;
  const psi: number[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    const shifted = opts.drift && round >= opts.drift.round ? opts.drift : null;
    let sum = emptySketch(10, BINNING);
    opts.shards.forEach((ds, i) => {
      sum = addSketches(sum, windowSketch(ds, opts.window, rng, shifted && drifting.has(i) ? shifted : null));
    });
    const report = { stats: emptyStats(10), metrics, clients: opts.shards.length, drift: { sketch: noised(sum, opts.sigma, rng), reference: { evaluations: 0, of: 0 } } };
    const alert = monitor.conclude(round, report, null);
    psi.push((report.drift as { scores?: { maxPsi: number } }).scores?.maxPsi ?? 0);
    if (alert && firstAlert === null) firstAlert = round;
  }
  return { firstAlert, psi };
}

export async function run(args: string[]): Promise<number> {
  const flags = parseFlags(args, FLAGS);
  const quick = flags.quick === true;
  const clients = int(flags, 'clients');
  const rounds = quick ? 14 : int(flags, 'rounds');
  const window = int(flags, 'window');
  const reference = int(flags, 'reference');
  const driftRound = quick ? 7 : int(flags, 'drift-round');
  const runs = quick ? 3 : int(flags, 'runs');
  const fraction = num(flags, 'drift-fraction', (x) => x > 0 && x <= 1, 'in (0, 1]');
  const psiThreshold = num(flags, 'psi');
  const psiThresholdDp = num(flags, 'psi-dp');
  BINNING = { ...BINNING, bins: int(flags, 'bins', 2) };
  const z = num(flags, 'noise');
  const seed = int(flags, 'seed', 0);
  const shift = String(flags.shift);
  if (!['label', 'rotate', 'both'].includes(shift)) throw new ConfigError(`--shift: ${shift} is not label, rotate or both`);
  if (driftRound <= reference || driftRound > rounds) throw new ConfigError(`--drift-round must be after the reference window (${reference}) and at most --rounds (${rounds})`);
  const started = Date.now();
  const { train } = loadMnist({ trainSize: Math.min(8000, clients * 40), testSize: 0, seed });
  const shards = partitionIid(train, clients, seed);
  const out = new HealthRun(String(flags.out), 'drift', { clients, rounds, window, reference, driftRound, fraction, shift, psiThreshold, noise: z, runs, seed, quick });

  const delta = 1e-5;
  const sensitivity = window * Math.sqrt(1 + BANDS);
  const epsilon = new RdpAccountant().compose(gaussianEvent(z), rounds).getEpsilon(delta).epsilon;
  const kind = { label: shift !== 'rotate', rotate: shift !== 'label' };
  const variants = [
    { name: 'no DP', sigma: 0, psi: psiThreshold },
    { name: `DP z=${z}`, sigma: z * sensitivity, psi: psiThresholdDp },
  ];
  const results: Record<string, { delays: (number | null)[]; falseAlarms: number; psiDrift: number[]; psiClean: number[] }> = {};
  for (const v of variants) {
    const r = { delays: [] as (number | null)[], falseAlarms: 0, psiDrift: [] as number[], psiClean: [] as number[] };
    for (let i = 0; i < runs; i++) {
      const d = monitorRun({ shards, rounds, window, reference, psi: v.psi, drift: { round: driftRound, fraction, ...kind }, sigma: v.sigma, seed: seed * 1000 + i });
      r.delays.push(d.firstAlert === null ? null : d.firstAlert - driftRound);
      if (d.firstAlert !== null && d.firstAlert < driftRound) r.falseAlarms++; // an alert before the shift is false too
      const c = monitorRun({ shards, rounds, window, reference, psi: v.psi, drift: null, sigma: v.sigma, seed: seed * 1000 + 500 + i });
      if (c.firstAlert !== null) r.falseAlarms++;
      if (i === 0) [r.psiDrift, r.psiClean] = [d.psi, c.psi];
      out.record({ variant: v.name, run: i, firstAlertDrift: d.firstAlert, firstAlertClean: c.firstAlert, psiDrift: d.psi, psiClean: c.psi });
    }
    results[v.name] = r;
  }
  const meanDelay = (ds: (number | null)[]) => {
    const hit = ds.filter((d): d is number => d !== null && d >= 0);
    return hit.length ? hit.reduce((a, b) => a + b, 0) / hit.length : null;
  };
  const [plain, dp] = variants.map((v) => results[v.name]);
  out.plot(
    'psi',
    variants.flatMap((v) => [
      { name: `${v.name}, drift at ${driftRound}`, points: results[v.name].psiDrift.map((y, k) => ({ x: k + 1, y })) },
      { name: `${v.name}, no drift`, points: results[v.name].psiClean.map((y, k) => ({ x: k + 1, y })) },
    ]),
    { title: `Largest PSI vs reference window (${clients} clients, ${fraction * 100}% drift: ${shift})`, xLabel: 'round', yLabel: 'max PSI' },
  );
  out.finish(
    {
      experiment: 'drift',
      detectionDelayRounds: meanDelay(plain.delays),
      detected: plain.delays.filter((d) => d !== null && d >= 0).length / runs,
      falseAlarmRate: plain.falseAlarms / (2 * runs),
      detectionDelayRoundsDp: meanDelay(dp.delays),
      detectedDp: dp.delays.filter((d) => d !== null && d >= 0).length / runs,
      falseAlarmRateDp: dp.falseAlarms / (2 * runs),
      epsilon,
      delta,
      noiseMultiplier: z,
      psiThreshold,
      psiThresholdDp,
      noiseStddev: z * sensitivity,
      clients,
      rounds,
      runs,
      durationMs: Date.now() - started,
    },
    flags.json === true,
  );
  return 0;
}
