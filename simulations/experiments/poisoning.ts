/**
 * `poisoning`: a fraction of the clients attacks, and each aggregation rule defends (or not).
 *
 * Attacks (each attacker acts every round it is sampled; what it sends passes the same client engine and
 * coordinator range checks as an honest update):
 *   sign-flip   trains honestly, sends −boost·Δ (the "sign-flipping" attack of Damaskinos et al. 2018 and
 *               the robust-aggregation papers' experiments)
 *   scaled      model replacement (Bagdasaryan et al. 2020, "How To Backdoor Federated Learning"): trains
 *               on label-flipped data and scales the update by boost, so it survives averaging
 *   label-flip  trains on its data with every label ℓ replaced by (C − 1 − ℓ), sends that update as is
 *               (Tolpegin et al. 2020, "Data Poisoning Attacks Against Federated Learning Systems")
 *
 * Defences, one curve each: `mean` (FedAvg), `median`, `trimmed-mean` (β), `krum` (f), `multi-krum`
 * (f, m = n − f), `bulyan` (f, capped at what the cohort allows: n ≥ 4f + 3), and `clip-dp`: norm bounding
 * plus central DP (every update clipped to --clip-norm, Gaussian noise z = --noise; the usual defence
 * when rounds use SecAgg and robust rules cannot run). A `no-attack` FedAvg curve is the reference.
 * Every attacker scenario (attack × partition) runs every defence. f defaults to the number of attackers
 * in a cohort (the rules' guarantee needs f ≥ that).
 *
 * The JSON summary adds `fedavgAccuracy` (FedAvg's final accuracy under attack, mean over scenarios),
 * `bestRobust` / `bestRobustAccuracy` (the defence with the highest such mean), `attackFraction`, and
 * per scenario and defence the final accuracy and the honest clients' fairness figures.
 */
import type { Dataset } from '../../client/data/dataset.ts';
import type { JobConfigInput } from '../../server/round/config.ts';
import { ConfigError } from '../../shared/errors.ts';
import type { Adversary } from '../engine/simulation.ts';
import {
  COMMON_FLAGS,
  describePartition,
  experiment,
  int,
  list,
  makePartition,
  num,
  parseFlags,
  runSeries,
  type FlagSpec,
  type SeriesResult,
} from './common.ts';

export const FLAGS: FlagSpec = {
  ...COMMON_FLAGS,
  clients: { type: 'string', default: '20', help: 'number of virtual clients (all sampled every round)' },
  rounds: { type: 'string', default: '20', help: 'rounds per curve' },
  'batch-size': { type: 'string', default: '32', help: 'local batch size B' },
  'train-size': { type: 'string', default: '8000', help: 'training examples shared by the clients' },
  partition: { type: 'string', default: 'iid,dirichlet', help: 'iid | dirichlet (comma list)' },
  attack: { type: 'string', default: 'sign-flip,scaled,label-flip', help: 'sign-flip | scaled | label-flip (comma list)' },
  'attack-fraction': { type: 'string', default: '0.2', help: 'fraction of clients that attack' },
  boost: { type: 'string', default: '10', help: 'scale of the sign-flip and scaled attacks' },
  defences: { type: 'string', default: 'mean,median,trimmed-mean,krum,multi-krum,bulyan,clip-dp', help: 'aggregation rules to compare' },
  beta: { type: 'string', default: '0.2', help: 'trimmed mean β' },
  f: { type: 'string', help: 'Krum / Bulyan f (default: attackers per cohort)' },
  'clip-norm': { type: 'string', default: '1', help: 'clip-dp: the L2 clip norm C' },
  noise: { type: 'string', default: '0.1', help: 'clip-dp: noise multiplier z' },
  quick: { type: 'boolean', default: false, help: 'small run (10 clients, 3,000 examples, 8 rounds, sign-flip on IID): minutes on 2 cores' },
  json: { type: 'boolean', default: false, help: 'the JSON summary is the last line (always true; accepted for scripts)' },
};

const ATTACKS = ['sign-flip', 'scaled', 'label-flip'] as const;
type Attack = (typeof ATTACKS)[number];
const DEFENCES = ['mean', 'median', 'trimmed-mean', 'krum', 'multi-krum', 'bulyan', 'clip-dp'] as const;
type Defence = (typeof DEFENCES)[number];

/** Every label ℓ becomes C − 1 − ℓ. */
export function flipLabels(shard: Dataset): Dataset {
  const labels = Int32Array.from(shard.labels, (l) => shard.numClasses - 1 - l);
  return { ...shard, labels };
}

export function adversaryFor(attack: Attack, clients: ReadonlySet<number>, boost: number): Adversary {
  switch (attack) {
    case 'sign-flip':
      return { clients, update: (d) => d.map((x) => -boost * x) };
    case 'scaled':
      return { clients, data: flipLabels, update: (d) => d.map((x) => boost * x) };
    case 'label-flip':
      return { clients, data: flipLabels };
  }
}

/** The aggregator (and DP) part of the job for a defence, for a cohort of n with f attackers assumed. */
export function defenceJob(defence: Defence, n: number, f: number, beta: number, clipNorm: number, noise: number): Partial<JobConfigInput> {
  const maxCohort = Math.max(n, 1);
  switch (defence) {
    case 'mean':
      return {};
    case 'median':
      return { aggregator: { name: 'median', maxCohort } };
    case 'trimmed-mean':
      return { aggregator: { name: 'trimmed-mean', beta, maxCohort } };
    case 'krum':
      return { aggregator: { name: 'krum', f: Math.min(f, Math.floor((n - 3) / 2)), maxCohort } };
    case 'multi-krum': {
      const fk = Math.min(f, Math.floor((n - 3) / 2));
      return { aggregator: { name: 'krum', f: fk, m: n - fk, maxCohort } };
    }
    case 'bulyan':
      return { aggregator: { name: 'bulyan', f: Math.max(0, Math.min(f, Math.floor((n - 3) / 4))), maxCohort } };
    case 'clip-dp':
      return { dp: { mode: 'central', noiseMultiplier: noise, clipNorm, budget: { epsilon: 1e9, delta: 1e-5 } } };
  }
}

export async function run(args: string[]): Promise<number> {
  const flags = parseFlags(args, FLAGS);
  if (flags.quick) {
    // Only flags left at their defaults are changed (an explicit --rounds 3 --quick keeps 3 rounds).
    const given = new Set(args.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')[0]));
    const quick: Record<string, string> = { clients: '10', 'train-size': '3000', rounds: '8', partition: 'iid', attack: 'sign-flip', 'test-size': '1000' };
    for (const [k, v] of Object.entries(quick)) if (!given.has(k)) flags[k] = v;
  }
  const attacks = list(flags, 'attack').map((a) => {
    if (!(ATTACKS as readonly string[]).includes(a)) throw new ConfigError(`--attack must be among ${ATTACKS.join(', ')}, got ${a}`);
    return a as Attack;
  });
  const defences = list(flags, 'defences').map((d) => {
    if (!(DEFENCES as readonly string[]).includes(d)) throw new ConfigError(`--defences must be among ${DEFENCES.join(', ')}, got ${d}`);
    return d as Defence;
  });
  const partitions = list(flags, 'partition');
  const clients = int(flags, 'clients');
  const rounds = int(flags, 'rounds');
  const attackFraction = num(flags, 'attack-fraction', (x) => x >= 0 && x < 0.5, 'in [0, 0.5)');
  const attackers = Math.round(attackFraction * clients);
  const f = flags.f === undefined ? attackers : int(flags, 'f', 0);
  const boost = num(flags, 'boost');
  const seed = int(flags, 'seed', 0);
  const scenarios = partitions.flatMap((p) => attacks.map((a) => ({ p, a })));
  const curves = partitions.length + scenarios.length * defences.length;

  return experiment(
    'poisoning',
    flags,
    rounds * curves,
    async (ctx) => {
      const results: SeriesResult[] = [];
      const job = (name: string, over: Partial<JobConfigInput>): JobConfigInput => ({
        id: name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64),
        model: ctx.data.model,
        seed,
        rounds,
        sampling: { mode: 'fixed', cohortSize: clients },
        minClients: clients,
        minSurvivors: clients,
        training: { epochs: int(flags, 'epochs'), batchSize: int(flags, 'batch-size'), learningRate: num(flags, 'lr') },
        ...over,
      });
      // Attackers: the first `attackers` clients of a seeded order (the partition is already shuffled).
      const bad = new Set(Array.from({ length: attackers }, (_, i) => i));
      for (const p of partitions) {
        const partition = makePartition(ctx.data, p, clients, num(flags, 'alpha'), seed);
        process.stderr.write(`poisoning ${p}: ${describePartition(ctx.data, partition)}; ${attackers} of ${clients} clients attack, f = ${f}\n`);
        const clean = `${p} no-attack`;
        results.push({ ...(await runSeries(ctx, { name: clean, partition, dropout: 0, fairness: true, job: job(clean, {}) })) });
        for (const a of attacks) {
          for (const d of defences) {
            const name = `${p} ${a} ${d}`;
            const over = defenceJob(d, clients, f, num(flags, 'beta', (x) => x >= 0 && x < 0.5, 'in [0, 0.5)'), num(flags, 'clip-norm'), num(flags, 'noise', (x) => x >= 0, '≥ 0'));
            results.push(await runSeries(ctx, { name, partition, dropout: 0, fairness: true, adversary: adversaryFor(a, bad, boost), job: job(name, over) }));
          }
        }
      }
      return results;
    },
    (series) => summarize(series, defences, attackFraction),
  );
}

/** The summary's headline: FedAvg under attack vs the best defence, each averaged over the scenarios. */
export function summarize(series: SeriesResult[], defences: readonly string[], attackFraction: number): Record<string, unknown> {
  const byDefence = new Map<string, number[]>();
  for (const s of series) {
    const d = defences.find((x) => s.name.endsWith(` ${x}`));
    if (!d || s.name.includes('no-attack')) continue;
    byDefence.set(d, [...(byDefence.get(d) ?? []), s.finalAccuracy ?? 0]);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const fedavg = byDefence.get('mean');
  let bestRobust: string | undefined;
  let bestRobustAccuracy = -1;
  for (const [d, accs] of byDefence) {
    if (d === 'mean') continue;
    if (mean(accs) > bestRobustAccuracy) [bestRobust, bestRobustAccuracy] = [d, mean(accs)];
  }
  const clean = series.filter((s) => s.name.includes('no-attack')).map((s) => s.finalAccuracy ?? 0);
  return {
    attackFraction,
    cleanAccuracy: clean.length ? mean(clean) : null,
    fedavgAccuracy: fedavg ? mean(fedavg) : null,
    bestRobust: bestRobust ?? null,
    bestRobustAccuracy: bestRobust ? bestRobustAccuracy : null,
    defenceAccuracy: Object.fromEntries([...byDefence].map(([d, accs]) => [d, mean(accs)])),
  };
}
