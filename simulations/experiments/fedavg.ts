/**
 * `fedavg`: the questions of McMahan et al. 2017 ("Communication-Efficient Learning of Deep Networks
 * from Decentralized Data"): how does FedAvg fare on IID vs pathological non-IID (label shards) vs
 * Dirichlet(α) partitions, and how do local epochs E and batch size B trade computation for rounds?
 * Every combination of the comma-separated --partition, --epochs, --batch-size and --optimizer values is
 * one curve.
 */
import {
  COMMON_FLAGS,
  describePartition,
  experiment,
  int,
  list,
  localOptimizer,
  makePartition,
  num,
  parseFlags,
  runSeries,
  splitSize,
  type SeriesResult,
} from './common.ts';

export const FLAGS = COMMON_FLAGS;

export async function run(args: string[]): Promise<number> {
  const flags = parseFlags(args, FLAGS);
  const partitions = list(flags, 'partition');
  const epochs = list(flags, 'epochs').map(Number);
  const batches = list(flags, 'batch-size').map(Number);
  const rounds = int(flags, 'rounds');
  const clients = int(flags, 'clients');
  const fraction = num(flags, 'fraction', (x) => x > 0 && x <= 1, 'in (0, 1]');
  const optimizers = list(flags, 'optimizer').map(localOptimizer);
  const combos = partitions.flatMap((p) => epochs.flatMap((e) => batches.flatMap((b) => optimizers.map((o) => ({ p, e, b, o })))));
  return experiment('fedavg', flags, rounds * combos.length, async (ctx) => {
    const results: SeriesResult[] = [];
    for (const { p, e, b, o } of combos) {
      const partition = makePartition(ctx.data, p, clients, num(flags, 'alpha'), int(flags, 'seed', 0));
      process.stderr.write(`fedavg ${p} E=${e} B=${b}: ${describePartition(ctx.data, partition)}\n`);
      const cohort = Math.max(1, Math.round(fraction * splitSize(partition)));
      const name = combos.length === partitions.length ? p : `${p} E=${e} B=${b}${optimizers.length > 1 ? ` ${o.name}` : ''}`;
      results.push(
        await runSeries(ctx, {
          name,
          partition,
          dropout: num(flags, 'dropout', (x) => x >= 0 && x < 1, 'in [0, 1)'),
          job: {
            id: 'fedavg',
            model: ctx.data.model,
            seed: int(flags, 'seed', 0),
            rounds,
            sampling: { mode: 'fixed', cohortSize: cohort },
            minClients: 1,
            minSurvivors: 1,
            training: { epochs: e, batchSize: b, learningRate: num(flags, 'lr'), optimizer: o },
          },
        }),
      );
    }
    return results;
  });
}
