/**
 * `qfedavg`: FedAvg vs q-FedAvg (Li, Sanjabi, Beirami, Smith 2020, "Fair Resource Allocation in
 * Federated Learning") on a skewed partition. One curve per q (q = 0 is FedAvg's unweighted mean;
 * `mean` is the example-weighted FedAvg); after the last round, the final model is evaluated on every
 * client's own data and the summary reports, per curve, the figures of that paper's Table 1: average
 * accuracy, the worst 10% of clients, and the variance of accuracy across clients (shared/fl/fairness.ts).
 */
import { COMMON_FLAGS, describePartition, experiment, int, list, makePartition, num, parseFlags, runSeries, type FlagSpec, type SeriesResult } from './common.ts';

export const FLAGS: FlagSpec = {
  ...COMMON_FLAGS,
  clients: { type: 'string', default: '20', help: 'number of virtual clients' },
  partition: { type: 'string', default: 'dirichlet', help: 'iid | shards | dirichlet' },
  alpha: { type: 'string', default: '0.3', help: 'Dirichlet concentration' },
  rounds: { type: 'string', default: '20', help: 'rounds per curve' },
  fraction: { type: 'string', default: '0.5', help: 'fraction of clients sampled per round' },
  'batch-size': { type: 'string', default: '32', help: 'local batch size B' },
  'train-size': { type: 'string', default: '4000', help: 'training examples shared by the clients' },
  q: { type: 'string', default: 'mean,0,1,5', help: "comma list: 'mean' (FedAvg) and q values for q-FedAvg" },
};

export async function run(args: string[]): Promise<number> {
  const flags = parseFlags(args, FLAGS);
  const rounds = int(flags, 'rounds');
  const clients = int(flags, 'clients');
  const curves = list(flags, 'q');
  const seed = int(flags, 'seed', 0);
  const cohort = Math.max(1, Math.round(num(flags, 'fraction', (x) => x > 0 && x <= 1, 'in (0, 1]') * clients));
  return experiment(
    'qfedavg',
    flags,
    rounds * curves.length,
    async (ctx) => {
      const partition = makePartition(ctx.data, String(flags.partition), clients, num(flags, 'alpha'), seed);
      process.stderr.write(`qfedavg: ${describePartition(ctx.data, partition)}\n`);
      const results: SeriesResult[] = [];
      for (const c of curves) {
        const q = c === 'mean' ? undefined : num({ q: c }, 'q', (x) => x >= 0 && x <= 10, 'mean or a number in [0, 10]');
        const name = q === undefined ? 'fedavg' : `qfedavg q=${q}`;
        results.push(
          await runSeries(ctx, {
            name,
            partition,
            dropout: 0,
            fairness: true,
            job: {
              id: name.replace(/[^A-Za-z0-9._-]/g, '_'),
              model: ctx.data.model,
              seed,
              rounds,
              sampling: { mode: 'fixed', cohortSize: cohort },
              minClients: 1,
              minSurvivors: 1,
              training: { epochs: int(flags, 'epochs'), batchSize: int(flags, 'batch-size'), learningRate: num(flags, 'lr') },
              ...(q === undefined ? {} : { aggregator: { name: 'qfedavg', q } }),
            },
          }),
        );
      }
      return results;
    },
    (series) => ({ fairness: Object.fromEntries(series.map((s) => [s.name, { accuracy: s.finalAccuracy, ...s.fairness }])) }),
  );
}
