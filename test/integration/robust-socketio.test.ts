/**
 * A robust job end to end over real Socket.IO on loopback, real tfjs training (wasm, Adam as the local
 * optimizer), real SQLite: five clients, one hostile, which sends a huge but finite update (every value
 * 9·10⁵, inside the range checks, so it is accepted as a survivor's update). The coordinate-wise median
 * (shared/fl/robust.ts) is the new model's step; the mean would have moved every weight by ~1.8·10⁵.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromArrays, type Dataset } from '../../client/data/dataset.ts';
import { ClientEngine, type ClientTask, type FitResult } from '../../client/engine/index.ts';
import { selectBackend } from '../../client/train/backend.ts';
import { TfjsTask } from '../../client/train/task.ts';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import { startCoordinator, type Coordinator } from '../../server/coordinator.ts';
import { parseJobConfig } from '../../server/round/config.ts';
import { CohortStore } from '../../server/store/index.ts';
import type { ModelSpec } from '../../shared/model/index.ts';
import type { TrainingParams } from '../../shared/protocol/index.ts';
import { seededRng } from '../../shared/random.ts';
import { testIdentity } from '../support/identity.ts';

const MODEL: ModelSpec = { zoo: 'logreg', inputShape: [8], numClasses: 3 };
const HOSTILE = 9e5;

function blobs(n: number, seed: number): Dataset {
  const rng = seededRng(seed);
  const features = new Float32Array(n * 8);
  const labels = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const y = r % 3;
    labels[r] = y;
    for (let j = 0; j < 8; j++) features[r * 8 + j] = (j % 3 === y ? 2 : 0) + (rng.next() - 0.5);
  }
  return fromArrays(features, labels, { featureShape: [8], numClasses: 3 });
}

/** Real training (or, hostile, a huge update instead), recording what it received and sent. */
class Task implements ClientTask {
  readonly sent: FitResult[] = [];
  readonly params: TrainingParams[] = [];
  received?: Float32Array;
  constructor(
    private readonly inner: TfjsTask,
    private readonly hostile: boolean,
  ) {}
  get numExamples() {
    return this.inner.numExamples;
  }
  async fit(weights: Float32Array, model: ModelSpec, training: TrainingParams, round: number) {
    this.received = weights.slice();
    this.params.push(training);
    const honest = await this.inner.fit(weights, model, training, round);
    // The hostile client claims many examples too (a weighted mean would favour it even more).
    const result = this.hostile ? { delta: new Float32Array(weights.length).fill(HOSTILE), numExamples: 100_000, metrics: honest.metrics } : honest;
    this.sent.push(result);
    return result;
  }
  evaluate(weights: Float32Array, model: ModelSpec, batchSize: number) {
    return this.inner.evaluate(weights, model, batchSize);
  }
}

describe('a robust job (coordinate-wise median) over Socket.IO with a hostile client', () => {
  let coordinator: Coordinator;
  let clients: { engine: ClientEngine; task: Task }[];
  let dataDir: string;

  beforeAll(async () => {
    await selectBackend({ prefer: 'wasm' });
    dataDir = mkdtempSync(join(tmpdir(), 'cohort-robust-'));
    const config = parseJobConfig({
      id: 'robust',
      model: MODEL,
      rounds: 1,
      sampling: { mode: 'fixed', cohortSize: 5 },
      minClients: 5,
      training: { epochs: 2, batchSize: 8, learningRate: 0.05, optimizer: { name: 'adam' } },
      aggregator: { name: 'median', maxCohort: 5 },
      evaluation: { every: 0 },
      timeouts: { trainMs: 60_000 },
    });
    coordinator = await startCoordinator({ config, dataDir });
    clients = Array.from({ length: 5 }, (_, i) => {
      const task = new Task(new TfjsTask({ train: blobs(30 + 6 * i, i), seed: i }), i === 3);
      const transport = new SocketIoClientTransport({ url: coordinator.url, reconnect: { maxAttempts: 0 } });
      const engine = new ClientEngine({ clientId: `client-${i}`, identity: testIdentity(`client-${i}`), task, transport });
      return { engine, task };
    });
    for (const c of clients) c.engine.start();
  });

  afterAll(async () => {
    for (const c of clients ?? []) c.engine.stop();
    await coordinator?.close();
  });

  it('commits the median of all five updates, the hostile one included, and the mean would have been captured', async () => {
    const summary = await coordinator.engine.whenFinished();
    expect(summary).toMatchObject({ status: 'completed', rounds: 1 });
    // The local optimizer reached every client with its hyperparameters.
    for (const c of clients) expect(c.task.params[0].optimizer).toEqual({ name: 'adam', beta1: 0.9, beta2: 0.999, epsilon: 1e-7 });

    const w0 = clients[0].task.received!;
    const got = coordinator.engine.globalWeights;
    let maxErr = 0;
    let maxStep = 0;
    let meanStepMin = Infinity;
    for (let j = 0; j < w0.length; j++) {
      const col = clients.map((c) => c.task.sent[0].delta[j]).sort((a, b) => a - b);
      maxErr = Math.max(maxErr, Math.abs(got[j] - (w0[j] + col[2])));
      maxStep = Math.max(maxStep, Math.abs(got[j] - w0[j]));
      meanStepMin = Math.min(meanStepMin, Math.abs(col.reduce((s, x) => s + x, 0) / 5));
    }
    expect(maxErr).toBeLessThan(1e-6);
    expect(maxStep).toBeLessThan(1); // an honest step (Adam moves each weight ≤ lr per step)
    expect(meanStepMin).toBeGreaterThan(1e5); // what FedAvg's mean would have done to every weight

    const store = CohortStore.open(dataDir);
    try {
      const [round] = store.listRounds('robust');
      expect(round).toMatchObject({ round: 1, cohortSize: 5, survivors: 5, dropouts: 0 });
    } finally {
      store.close();
    }
  });
});
