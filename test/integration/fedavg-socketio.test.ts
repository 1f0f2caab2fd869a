/**
 * End to end over real Socket.IO on loopback, real tfjs training (wasm), real SQLite: five clients,
 * one of which disconnects mid-round. The round completes with the four survivors, and the new global
 * model is the old one plus the example-weighted mean of exactly the survivors' deltas.
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
import { weightsChecksum, type ModelSpec } from '../../shared/model/index.ts';
import type { TrainingParams } from '../../shared/protocol/index.ts';
import { seededRng } from '../../shared/random.ts';
import { testIdentity } from '../support/identity.ts';

const MODEL: ModelSpec = { zoo: 'logreg', inputShape: [8], numClasses: 3 };

/** Three Gaussian blobs in 8-D; client i gets a different number of points so weights differ. */
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

/** Real training, recording what was sent (so the test can recompute the mean independently). */
class RecordingTask implements ClientTask {
  readonly sent: FitResult[] = [];
  received?: Float32Array;
  beforeReturn?: () => Promise<void>;
  constructor(private readonly inner: TfjsTask) {}
  get numExamples() {
    return this.inner.numExamples;
  }
  async fit(weights: Float32Array, model: ModelSpec, training: TrainingParams, round: number) {
    this.received = weights.slice();
    const result = await this.inner.fit(weights, model, training, round);
    this.sent.push(result);
    await this.beforeReturn?.();
    return result;
  }
  evaluate(weights: Float32Array, model: ModelSpec, batchSize: number) {
    return this.inner.evaluate(weights, model, batchSize);
  }
}

describe('FedAvg over Socket.IO with a mid-round dropout', () => {
  let coordinator: Coordinator;
  let clients: { engine: ClientEngine; task: RecordingTask; transport: SocketIoClientTransport }[];
  let dataDir: string;

  beforeAll(async () => {
    await selectBackend({ prefer: 'wasm' });
    dataDir = mkdtempSync(join(tmpdir(), 'cohort-it-'));
    const config = parseJobConfig({
      id: 'it',
      model: MODEL,
      rounds: 1,
      sampling: { mode: 'fixed', cohortSize: 5 },
      minClients: 5,
      minSurvivors: 3,
      training: { epochs: 2, batchSize: 8, learningRate: 0.1 },
      evaluation: { every: 0 },
      timeouts: { trainMs: 60_000 },
    });
    coordinator = await startCoordinator({ config, dataDir });
    clients = Array.from({ length: 5 }, (_, i) => {
      const task = new RecordingTask(new TfjsTask({ train: blobs(30 + 12 * i, i), seed: i }));
      const transport = new SocketIoClientTransport({ url: coordinator.url, reconnect: { maxAttempts: 0 } });
      const engine = new ClientEngine({ clientId: `client-${i}`, identity: testIdentity(`client-${i}`), task, transport });
      return { engine, task, transport };
    });
    // Client 2 trains, then loses its connection before it can send its update.
    const quitter = clients[2];
    quitter.task.beforeReturn = async () => {
      quitter.transport.close();
      await new Promise((r) => setTimeout(r, 50));
    };
    for (const c of clients) c.engine.start();
  });

  afterAll(async () => {
    for (const c of clients ?? []) c.engine.stop();
    await coordinator?.close();
  });

  it('commits the round with the survivors and applies their example-weighted mean', async () => {
    const summary = await coordinator.engine.whenFinished();
    expect(summary).toMatchObject({ status: 'completed', rounds: 1 });

    const survivors = clients.filter((_, i) => i !== 2);
    const w0 = clients[0].task.received!;
    for (const c of clients) expect(c.task.received).toEqual(w0); // everyone trained from the same model
    expect(clients[2].task.sent).toHaveLength(1); // it did train…
    const total = survivors.reduce((s, c) => s + c.task.sent[0].numExamples, 0);
    const expected = new Float64Array(w0.length);
    for (let j = 0; j < w0.length; j++) {
      let acc = 0;
      for (const c of survivors) acc += c.task.sent[0].numExamples * c.task.sent[0].delta[j];
      expected[j] = w0[j] + acc / total;
    }
    const got = coordinator.engine.globalWeights;
    let maxErr = 0;
    for (let j = 0; j < got.length; j++) maxErr = Math.max(maxErr, Math.abs(got[j] - expected[j]));
    expect(maxErr).toBeLessThan(1e-6);
    // …but its update is not in the model: including it would move the weights measurably.
    const withQuitter = clients.reduce((s, c) => s + c.task.sent[0].numExamples, 0);
    let diffIfIncluded = 0;
    for (let j = 0; j < got.length; j++) {
      let acc = 0;
      for (const c of clients) acc += c.task.sent[0].numExamples * c.task.sent[0].delta[j];
      diffIfIncluded = Math.max(diffIfIncluded, Math.abs(w0[j] + acc / withQuitter - got[j]));
    }
    expect(diffIfIncluded).toBeGreaterThan(1e-4);

    const store = CohortStore.open(dataDir);
    try {
      const [round] = store.listRounds('it');
      expect(round).toMatchObject({ round: 1, cohortSize: 5, survivors: 4, dropouts: 1, numExamples: total });
      expect(store.latestCheckpoint('it')!.checksum).toBe(weightsChecksum(got));
    } finally {
      store.close();
    }
  });
});
