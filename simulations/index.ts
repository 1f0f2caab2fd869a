/**
 * `npm run sim -- <experiment> [--flags]` (also `cohort sim <experiment>`): named, reproducible
 * experiments that write a run directory (config, rounds.jsonl, CSV, SVG/PNG plots) and print the
 * run directory and a one-line JSON summary last.
 */
import { CohortError } from '../shared/errors.ts';

export const EXPERIMENTS: Record<string, { about: string; load: () => Promise<{ run(args: string[]): Promise<number> }> }> = {
  fedavg: { about: 'IID vs shards vs Dirichlet; E and B sweeps (McMahan et al. 2017)', load: () => import('./experiments/fedavg.ts') },
  'dp-fedavg': { about: 'accuracy and ε per round for several noise multipliers', load: () => import('./experiments/dp-fedavg.ts') },
  drift: { about: 'drift detection delay and false alarms (PSI on summed sketches), with and without DP noise', load: () => import('./experiments/drift.ts') },
  fairness: { about: 'group accuracy gap before/after group reweighting; ECE before/after federated temperature scaling', load: () => import('./experiments/fairness.ts') },
  transfer: { about: 'a CNN base pretrained on MNIST, its head fine-tuned on Fashion-MNIST vs from scratch (rounds, bytes, ε to a target)', load: () => import('./experiments/transfer.ts') },
  qfedavg: { about: 'FedAvg vs q-FedAvg: average, worst-10% and variance of accuracy across clients (Li et al. 2020)', load: () => import('./experiments/qfedavg-fairness.ts') },
  poisoning: { about: 'sign-flip, scaled and label-flip attacks vs FedAvg, robust aggregators and clipping + DP', load: () => import('./experiments/poisoning.ts') },
  'secagg-cost': { about: 'round time and bytes vs cohort size and dropout, with and without SecAgg', load: () => import('./experiments/secagg-cost.ts') },
};

export async function runExperiment(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  const entry = name ? EXPERIMENTS[name] : undefined;
  if (!entry) {
    const names = Object.entries(EXPERIMENTS).map(([n, e]) => `  ${n.padEnd(12)} ${e.about}`).join('\n');
    process.stderr.write(`${name ? `unknown experiment ${name}\n` : ''}usage: npm run sim -- <experiment> [--flags] (--help for flags)\n${names}\n`);
    return 2;
  }
  const mod = await entry.load();
  if (rest.includes('--help')) {
    const { usage } = await import('./experiments/common.ts');
    const flags = (mod as unknown as { FLAGS: Parameters<typeof usage>[0] }).FLAGS;
    process.stdout.write(`npm run sim -- ${name} [flags]\n${usage(flags)}\n`);
    return 0;
  }
  return mod.run(rest);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runExperiment(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`sim: ${err instanceof CohortError ? err.message : ((err as Error).stack ?? String(err))}\n`);
      process.exit(err instanceof CohortError ? 2 : 1);
    },
  );
}
