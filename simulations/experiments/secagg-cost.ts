/**
 * `secagg-cost`: what secure aggregation costs. For each cohort size in --cohorts and dropout rate in
 * --dropouts, the same FedAvg round runs with and without SecAgg+; we record the round's wall time
 * and the bytes each client sends and receives besides the global model download. Plots: round time
 * and bytes per client against cohort size, one curve per (SecAgg on/off, dropout rate).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseJobConfig } from '../../server/round/config.ts';
import { runSimulation } from '../engine/simulation.ts';
import { iidPartition } from '../datasets/partition.ts';
import { ConfigError } from '../../shared/errors.ts';
import { lineChartSvg, svgToPng, type Series } from '../report/plot.ts';
import { COMMON_FLAGS, experiment, int, list, num, parseFlags, type SeriesResult } from './common.ts';

export const FLAGS = {
  ...COMMON_FLAGS,
  cohorts: { type: 'string' as const, default: '10,20,40', help: 'cohort sizes to compare (comma list)' },
  dropouts: { type: 'string' as const, default: '0,0.1', help: 'dropout rates to compare (comma list)' },
  bits: { type: 'string' as const, default: '16', help: 'SecAgg modulus bits' },
  rounds: { type: 'string' as const, default: '2', help: 'rounds per configuration (time is the median)' },
};

export async function run(args: string[]): Promise<number> {
  const flags = parseFlags(args, FLAGS);
  const cohorts = list(flags, 'cohorts').map(Number);
  const dropouts = list(flags, 'dropouts').map(Number);
  const rounds = int(flags, 'rounds');
  const combos = cohorts.flatMap((n) => dropouts.flatMap((p) => [false, true].map((secagg) => ({ n, p, secagg }))));
  return experiment('secagg-cost', flags, rounds * combos.length, async (ctx) => {
    const train = ctx.data.train;
    if (!train) throw new ConfigError('secagg-cost needs image data (--dataset mnist or fashion-mnist)');
    const results: SeriesResult[] = [];
    const points: { name: string; n: number; ms: number; bytes: number }[] = [];
    for (const { n, p, secagg } of combos) {
      const started = Date.now();
      const name = `${secagg ? 'secagg' : 'plain'} dropout=${p}`;
      const partition = iidPartition(train.size, n, int(flags, 'seed', 0));
      const minSurvivors = Math.max(2, Math.floor(n * (1 - Math.max(p, 0.05) * 2)));
      const config = parseJobConfig({
        id: 'cost',
        model: ctx.data.model,
        rounds,
        sampling: { mode: 'fixed', cohortSize: n },
        minClients: n,
        minSurvivors,
        training: { epochs: 1, batchSize: int(flags, 'batch-size'), learningRate: num(flags, 'lr') },
        evaluation: { every: 0 },
        timeouts: { trainMs: 3_600_000, retryDelayMs: 0 },
        ...(secagg ? { secagg: { enabled: true, clipNorm: 1, bits: int(flags, 'bits', 8), dropoutRate: Math.max(p, 0.05) } } : {}),
      });
      const times: number[] = [];
      let last = Date.now();
      const sim = await runSimulation({
        config,
        data: train,
        partition,
        pool: ctx.pool,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        seed: int(flags, 'seed', 0),
        dropout: { probability: p },
        meterTraffic: true,
        onRound: (r) => {
          times.push(Date.now() - last);
          last = Date.now();
          ctx.run.record({ series: name, round: r.round, cohort: n, survivors: r.summary.record.survivors, durationMs: times.at(-1) });
          ctx.progress.tick(1, `${name} n=${n}`);
        },
      });
      const meters = [...(sim.traffic?.values() ?? [])];
      const bytes = meters.reduce((s, m) => s + m.up + m.down, 0) / Math.max(1, meters.length) / rounds;
      const ms = times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
      points.push({ name, n, ms, bytes });
      results.push({ name: `${name} n=${n}`, status: sim.job.status, rounds: sim.job.rounds, durationMs: Date.now() - started });
      ctx.run.record({ series: `${name} summary`, round: 0, cohort: n, roundMs: ms, bytesPerClientPerRound: Math.round(bytes) });
    }
    const chart = (key: 'ms' | 'bytes', label: string, file: string) => {
      const names = [...new Set(points.map((q) => q.name))];
      const series: Series[] = names.map((nm) => ({ name: nm, points: points.filter((q) => q.name === nm).map((q) => ({ x: q.n, y: q[key] })) }));
      const svg = lineChartSvg(series, { title: `secagg-cost: ${label}`, xLabel: 'cohort size', yLabel: label });
      writeFileSync(join(ctx.run.path, `${file}.svg`), svg);
      writeFileSync(join(ctx.run.path, `${file}.png`), svgToPng(svg));
    };
    chart('ms', 'round time (ms, median)', 'round-time');
    chart('bytes', 'bytes per client per round (without the model download)', 'bytes');
    process.stderr.write(`secagg-cost: plots round-time.svg/png and bytes.svg/png in ${ctx.run.path}\n`);
    return results;
  });
}
