/**
 * `transfer` (issue 19): does a pretrained, frozen base make federated learning on a new task cheaper?
 * The CNN of McMahan et al. 2017 is pretrained centrally on MNIST digits (public data at the
 * coordinator), exported as a tfjs artifact, and used as the base of a federated job on Fashion-MNIST
 * where each client holds few labelled images: only the layers from `--trainable-from` on (default the
 * softmax head) are trained and sent. The same job from scratch (every weight trained and sent) is the
 * comparison. Both run DP-FedAvg with the same q, z and C, so ε per round is the same; what differs is
 * the dimension the noise is spread over and the bytes each update costs.
 *
 * Reported per series: rounds, bytes sent by clients and ε when the test accuracy first reaches
 * `--target` (null if never), and the final accuracy; plots of accuracy and ε per round.
 * `--quick` is a small smoke run (a few clients and rounds, a short pretraining).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { selectBackend } from '../../client/train/backend.ts';
import { LocalTrainer } from '../../client/train/trainer.ts';
import { exportVersion } from '../../server/ops/export.ts';
import { ConfigError } from '../../shared/errors.ts';
import { initialWeights, type ModelSpec } from '../../shared/model/index.ts';
import { loadMnist } from '../datasets/mnist.ts';
import { COMMON_FLAGS, experiment, int, makePartition, num, parseFlags, runSeries, type Flags, type SeriesResult } from './common.ts';

export const FLAGS = {
  ...COMMON_FLAGS,
  dataset: { type: 'string', default: 'fashion-mnist', help: 'the federated task (fashion-mnist)' },
  model: { type: 'string', default: 'cnn', help: 'cnn (the base and the job)' },
  clients: { type: 'string', default: '100', help: 'number of virtual clients' },
  labels: { type: 'string', default: '20', help: 'labelled examples per client' },
  rounds: { type: 'string', default: '30', help: 'rounds of DP-FedAvg' },
  fraction: { type: 'string', default: '0.2', help: 'fraction of clients per round' },
  lr: { type: 'string', default: '0.1', help: 'client learning rate' },
  epochs: { type: 'string', default: '5', help: 'local epochs E (few labels per client: several passes)' },
  noise: { type: 'string', default: '0.3', help: 'noise multiplier z (central DP; 0: no DP)' },
  clip: { type: 'string', default: '1', help: 'clip norm C' },
  target: { type: 'string', default: '0.65', help: 'the test accuracy to reach' },
  'trainable-from': { type: 'string', default: 'output', help: 'first trainable layer of the transfer job' },
  'pretrain-size': { type: 'string', default: '6000', help: 'MNIST digits the base is pretrained on' },
  'pretrain-epochs': { type: 'string', default: '2', help: 'pretraining epochs' },
  quick: { type: 'boolean', default: false, help: 'a small smoke run' },
} as const;

const CNN: ModelSpec = { zoo: 'cnn', inputShape: [28, 28, 1], numClasses: 10 };

/** Central pretraining on MNIST digits; returns the base's flat weights. */
async function pretrain(size: number, epochs: number, seed: number): Promise<Float32Array> {
  await selectBackend({ prefer: 'wasm' });
  const { train } = loadMnist({ trainSize: size, testSize: 0, seed });
  const data = { ...train, featureShape: [28, 28, 1] };
  const trainer = new LocalTrainer(CNN);
  let weights = initialWeights(CNN, seed).weights;
  for (let e = 0; e < epochs; e++) {
    const r = await trainer.train(weights, data, { epochs: 1, batchSize: 20, learningRate: 0.05, proxMu: 0, seed: seed + e });
    weights = weights.map((w, i) => w + r.delta[i]);
    process.stderr.write(`pretraining epoch ${e + 1}/${epochs}: loss ${r.metrics.loss.toFixed(3)} accuracy ${r.metrics.accuracy.toFixed(3)}\n`);
  }
  trainer.dispose();
  return weights;
}

interface AtTarget {
  round: number | null;
  bytesUp: number | null;
  epsilon: number | null;
}

export async function run(args: string[]): Promise<number> {
  const flags: Flags = parseFlags(args, FLAGS as never);
  if (flags.quick) {
    Object.assign(flags, { clients: '10', labels: '20', rounds: '3', fraction: '0.5', epochs: '1', 'pretrain-size': '300', 'pretrain-epochs': '1', 'test-size': '200' });
  }
  if (flags.model !== 'cnn' || flags.dataset !== 'fashion-mnist') throw new ConfigError('transfer: the experiment is the CNN on fashion-mnist (--model cnn --dataset fashion-mnist)');
  const clients = int(flags, 'clients');
  const labels = int(flags, 'labels');
  flags['train-size'] = String(clients * labels);
  flags['test-size'] ??= '2000';
  const rounds = int(flags, 'rounds');
  const target = num(flags, 'target', (x) => x > 0 && x <= 1, 'in (0, 1]');
  const noise = num(flags, 'noise', (x) => x >= 0, '≥ 0');
  const clip = num(flags, 'clip');
  const seed = int(flags, 'seed', 0);
  const cohort = Math.max(2, Math.round(num(flags, 'fraction', (x) => x > 0 && x <= 1, 'in (0, 1]') * clients));
  const summary: Record<string, AtTarget> = {};
  const code = await experiment('transfer', flags, 2 * rounds, async (ctx) => {
    const base = await pretrain(int(flags, 'pretrain-size'), int(flags, 'pretrain-epochs'), seed);
    const baseDir = join(ctx.run.path, 'base');
    mkdirSync(baseDir);
    const e = exportVersion({ model: CNN }, base);
    writeFileSync(join(baseDir, 'model.json'), JSON.stringify(e.modelJson));
    writeFileSync(join(baseDir, 'weights.bin'), e.weightsBin);
    const partition = makePartition(ctx.data, 'iid', clients, 0.5, seed);
    const job = {
      model: CNN,
      seed,
      rounds,
      sampling: { mode: 'fixed', cohortSize: cohort },
      minClients: cohort,
      minSurvivors: 1,
      training: { epochs: int(flags, 'epochs'), batchSize: int(flags, 'batch-size'), learningRate: num(flags, 'lr') },
      ...(noise > 0 ? { dp: { mode: 'central' as const, noiseMultiplier: noise, clipNorm: clip } } : {}),
    } as const;
    const results: SeriesResult[] = [];
    const series = [
      { name: `transfer (${String(flags['trainable-from'])}+)`, job: { ...job, id: 'transfer', transfer: { base: { path: join(baseDir, 'model.json') }, trainableFrom: String(flags['trainable-from']) } } },
      { name: 'from scratch', job: { ...job, id: 'scratch' } },
    ];
    for (const s of series) {
      results.push(await runSeries(ctx, { name: s.name, partition, dropout: 0, meterTraffic: true, job: s.job }));
      const first = ctx.run.rows.find((r) => r.series === s.name && (r.accuracy ?? 0) >= target);
      summary[s.name] = first
        ? { round: first.round, bytesUp: (first.bytesUp as number | undefined) ?? null, epsilon: first.epsilon ?? null }
        : { round: null, bytesUp: null, epsilon: null };
      process.stderr.write(`${s.name}: target ${target} ${first ? `reached at round ${first.round}, ${first.bytesUp} bytes sent, ε ${first.epsilon ?? '-'}` : 'not reached'}\n`);
    }
    writeFileSync(join(ctx.run.path, 'target.json'), `${JSON.stringify({ target, series: summary }, null, 2)}\n`);
    return results.map((r) => ({ ...r, atTarget: summary[r.name] }));
  });
  return code;
}
