/**
 * `dp-fedavg`: privacy against utility. DP-FedAvg (McMahan et al. 2018) with Poisson sampling at rate
 * q = --fraction, clip norm --clip, and one curve per noise multiplier in --noise (and per DP mode in
 * --modes): accuracy and the accountant's ε per round.
 */
import { COMMON_FLAGS, experiment, int, list, makePartition, num, parseFlags, runSeries, type SeriesResult } from './common.ts';
import { ConfigError } from '../../shared/errors.ts';

export const FLAGS = {
  ...COMMON_FLAGS,
  noise: { type: 'string' as const, default: '0.5,1', help: 'noise multipliers z (comma list: one curve each)' },
  clip: { type: 'string' as const, default: '1', help: "clip norm C, or 'adaptive'" },
  modes: { type: 'string' as const, default: 'central', help: 'DP modes: central, local, distributed (runs SecAgg+)' },
  bits: { type: 'string' as const, default: '16', help: 'SecAgg modulus bits (distributed mode)' },
  'min-survivors': { type: 'string' as const, default: '0.7', help: 'fraction of the expected cohort a round needs (distributed mode); the SecAgg graph must tolerate the rest dropping, so lower values cost more (k grows)' },
  delta: { type: 'string' as const, default: '1e-5', help: 'δ at which ε is reported' },
};

export async function run(args: string[]): Promise<number> {
  const flags = parseFlags(args, FLAGS);
  const noises = list(flags, 'noise').map(Number);
  const modes = list(flags, 'modes');
  for (const m of modes) {
    if (m !== 'central' && m !== 'local' && m !== 'distributed') throw new ConfigError(`--modes: ${m} is not a DP mode (central, local, distributed)`);
  }
  const rounds = int(flags, 'rounds');
  const clients = int(flags, 'clients');
  const q = num(flags, 'fraction', (x) => x > 0 && x <= 1, 'in (0, 1]');
  const clip = flags.clip === 'adaptive' ? 'adaptive' : num(flags, 'clip');
  const delta = num(flags, 'delta', (x) => x > 0 && x < 1, 'in (0, 1)');
  const combos = modes.flatMap((mode) => noises.map((z) => ({ mode, z })));
  // Distributed DP: the noise is split over at least this many survivors (a fraction of the expected cohort).
  const floor = Math.max(2, Math.floor(num(flags, 'min-survivors', (x) => x > 0 && x <= 1, 'in (0, 1]') * q * clients));
  return experiment('dp-fedavg', flags, rounds * combos.length, async (ctx) => {
    const partition = makePartition(ctx.data, String(flags.partition), clients, num(flags, 'alpha'), int(flags, 'seed', 0));
    const results: SeriesResult[] = [];
    for (const { mode, z } of combos) {
      results.push(
        await runSeries(ctx, {
          name: `${mode} z=${z}`,
          partition,
          dropout: num(flags, 'dropout', (x) => x >= 0 && x < 1, 'in [0, 1)'),
          job: {
            id: 'dp-fedavg',
            model: ctx.data.model,
            seed: int(flags, 'seed', 0),
            rounds,
            sampling: { mode: 'poisson', rate: q },
            minClients: mode === 'distributed' ? floor : 1,
            minSurvivors: mode === 'distributed' ? floor : 1,
            ...(mode === 'distributed' ? { secagg: { enabled: true, bits: int(flags, 'bits', 8), dropoutRate: Math.max(0.05, num(flags, 'dropout', (x) => x >= 0 && x < 1, 'in [0, 1)')) } } : {}),
            training: { epochs: int(flags, 'epochs'), batchSize: int(flags, 'batch-size'), learningRate: num(flags, 'lr') },
            // Reported at δ through a budget that cannot bind (ε ≤ 1e9).
            dp: { mode: mode as 'central', noiseMultiplier: z, clipNorm: clip === 'adaptive' && mode === 'distributed' ? 1 : clip, budget: { epsilon: 1e9, delta } },
          },
        }),
      );
    }
    return results;
  });
}
