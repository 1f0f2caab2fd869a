/**
 * Transfer learning with a frozen base over real Socket.IO on 127.0.0.1 (issue 19): a base job trains a
 * 2-layer MLP, then a second job in the same store starts from its latest version with `fc1` and `fc2`
 * frozen. Real tfjs clients (TfjsTask) train on generated data. Checked:
 * - the frozen layers of the new job's version are bit-identical to the base's, the head moved;
 * - every update the coordinator received has the trainable dimension (603 of 45,003 weights), and the
 *   bytes each client's engine.io socket wrote in the round are counted: under 1/10 of one full update;
 * - with SecAgg and distributed DP, the masked vectors and the ledger's DP event have the trainable
 *   dimension (603, not 45,003);
 * - magnitude pruning to 90% with fine-tuning rounds reaches the requested sparsity in every kernel.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientEngine } from '../../client/engine/index.ts';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import { TfjsTask } from '../../client/train/task.ts';
import type { Dataset } from '../../client/data/dataset.ts';
import { startCoordinator, type Coordinator } from '../../server/coordinator.ts';
import { parseJobConfig, type JobConfigInput } from '../../server/round/config.ts';
import { gatherTrainable, kernelSparsity, modelLayers, trainableSelection } from '../../shared/model/index.ts';
import type { ClientMessage } from '../../shared/protocol/index.ts';
import { seededRng } from '../../shared/random.ts';
import { testIdentity } from '../support/identity.ts';

const MODEL = { zoo: 'mlp' as const, inputShape: [20], numClasses: 3 };
const FULL = 20 * 200 + 200 + 200 * 200 + 200 + 200 * 3 + 3; // 45,003
const HEAD = 200 * 3 + 3; // 603

/** Three Gaussian clusters in 20 dimensions, one per class. */
function clusters(n: number, seed: number): Dataset {
  const rng = seededRng(seed);
  const features = new Float32Array(n * 20);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const y = i % 3;
    labels[i] = y;
    for (let j = 0; j < 20; j++) features[i * 20 + j] = (j % 3 === y ? 1 : 0) + 0.3 * (2 * rng.next() - 1);
  }
  return { features, labels, featureShape: [20], numClasses: 3, size: n };
}

interface Run {
  coordinator: Coordinator;
  received: ClientMessage[];
  /** Bytes each client's engine.io socket wrote (packet data: text length + binary attachments). */
  bytesSent: number[];
}

const open: { coordinator: Coordinator; engines: ClientEngine[] }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    for (const e of o.engines) e.stop();
    await o.coordinator.close();
  }
});

async function run(dataDir: string, job: JobConfigInput, clients: number): Promise<Run> {
  const coordinator = await startCoordinator({ config: parseJobConfig(job), dataDir });
  const received: ClientMessage[] = [];
  const sink = coordinator.engine.sink;
  const onMessage = sink.onMessage.bind(sink);
  sink.onMessage = (connId, msg) => {
    received.push(msg);
    onMessage(connId, msg);
  };
  const engines: ClientEngine[] = [];
  open.push({ coordinator, engines });
  const bytesSent = new Array<number>(clients).fill(0);
  for (let i = 0; i < clients; i++) {
    const transport = new SocketIoClientTransport({ url: coordinator.url, reconnect: { maxAttempts: 0 } });
    const engine = new ClientEngine({ clientId: `dev-${i}`, identity: testIdentity(`dev-${i}`), task: new TfjsTask({ train: clusters(60, 100 + i), seed: i }), transport });
    engine.start();
    // The socket exists once started: count what its engine.io connection writes.
    const socket = (transport as unknown as { socket: { io: { engine: { on(e: string, f: (p: { data?: unknown }) => void): void } } } }).socket;
    socket.io.engine.on('packetCreate', (p) => {
      const d = p.data;
      bytesSent[i] += typeof d === 'string' ? Buffer.byteLength(d) : d instanceof ArrayBuffer || ArrayBuffer.isView(d) ? (d as ArrayBufferView).byteLength ?? (d as ArrayBuffer).byteLength : 0;
    });
    engines.push(engine);
  }
  await coordinator.engine.whenFinished();
  return { coordinator, received, bytesSent };
}

const common = { model: MODEL, rounds: 1, sampling: { mode: 'fixed', cohortSize: 3 }, minClients: 3, training: { epochs: 2, batchSize: 10, learningRate: 0.1 } } as const;

describe('transfer learning with a frozen base over Socket.IO', () => {
  it('keeps frozen layers bit-identical, sends only the head, and accounts DP on the head', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cohort-transfer-'));
    const base = await run(dataDir, { ...common, id: 'base', evaluation: { every: 0 } }, 3);
    const baseWeights = base.coordinator.store.latestCheckpoint('base')!.weights;
    const fullUpdates = base.received.filter((m) => m.type === 'update');
    expect(fullUpdates.map((m) => m.type === 'update' && m.vector.length)).toEqual([FULL, FULL, FULL]);
    for (const o of open.splice(0)) {
      for (const e of o.engines) e.stop();
      await o.coordinator.close();
    }

    const head = await run(
      dataDir,
      { ...common, id: 'head', transfer: { base: { job: 'base' }, freeze: ['fc1', 'fc2'] }, dp: { mode: 'central', noiseMultiplier: 0.5, clipNorm: 1 }, evaluation: { every: 0 } },
      3,
    );
    const store = head.coordinator.store;
    expect(store.getJob('head')!.status).toBe('completed');
    const after = store.checkpoint('head', 1)!.weights;
    const sel = trainableSelection(modelLayers(MODEL).manifest, ['fc1', 'fc2']);
    expect(sel.dim).toBe(HEAD);
    // frozen: the first FULL − HEAD values (fc1, fc2) bit for bit; the head moved
    const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
    expect(bits(after.subarray(0, FULL - HEAD))).toEqual(bits(baseWeights.subarray(0, FULL - HEAD)));
    expect(gatherTrainable(after, sel)).not.toEqual(gatherTrainable(baseWeights, sel));
    const updates = head.received.filter((m) => m.type === 'update');
    expect(updates.map((m) => m.type === 'update' && m.vector.length)).toEqual([HEAD, HEAD, HEAD]);
    // The wire: each client's writes in the whole job (hello, update, acks) under a tenth of one full float32 update.
    for (const b of head.bytesSent) {
      expect(b).toBeGreaterThanOrEqual(4 * HEAD);
      expect(b).toBeLessThan((4 * FULL) / 10);
    }
    for (const b of base.bytesSent) expect(b).toBeGreaterThanOrEqual(4 * FULL);
    if (process.env.COHORT_TEST_LOG) console.log(JSON.stringify({ bytesFull: base.bytesSent, bytesHead: head.bytesSent }));
    const [ledger] = store.listLedger('head').filter((r) => r.status === 'committed');
    expect(ledger).toMatchObject({ mode: 'central', survivors: 3 });
  }, 300_000);

  it('with SecAgg and distributed DP: masked vectors and the ledger event have the trainable dimension', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cohort-transfer-sa-'));
    await run(dataDir, { ...common, id: 'base', evaluation: { every: 0 } }, 3);
    for (const o of open.splice(0)) {
      for (const e of o.engines) e.stop();
      await o.coordinator.close();
    }
    const head = await run(
      dataDir,
      {
        ...common,
        id: 'head-sa',
        transfer: { base: { job: 'base' }, trainableFrom: 'output' },
        dp: { mode: 'distributed', noiseMultiplier: 0.8, clipNorm: 1 },
        secagg: { enabled: true, bits: 20, phaseTimeoutMs: 20_000 },
        timeouts: { trainMs: 60_000 },
        evaluation: { every: 0 },
      },
      3,
    );
    const store = head.coordinator.store;
    expect(store.getJob('head-sa')!.status).toBe('completed');
    const masked = head.received.filter((m) => m.type === 'secagg_up' && m.payload);
    expect(masked).toHaveLength(3);
    // 20-bit packed integers of the trainable dimension: ⌈603 · 20 / 8⌉ bytes
    for (const m of masked) expect(m.type === 'secagg_up' && m.payload!.length).toBe(Math.ceil((HEAD * 20) / 8));
    const ledger = store.listLedger('head-sa').find((r) => r.status === 'committed')!;
    const dims = [...JSON.stringify(ledger).matchAll(/"dimension":(\d+)/g)].map((m) => Number(m[1]));
    expect(dims.length).toBeGreaterThan(0);
    for (const d of dims) expect(d).toBe(HEAD);
  }, 300_000);

  it('prunes the global model to the requested sparsity on the schedule, then fine-tunes at it', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cohort-prune-'));
    const r = await run(dataDir, { ...common, id: 'pruned', rounds: 4, prune: { sparsity: 0.9, startRound: 1, endRound: 2 }, evaluation: { every: 0 } }, 3);
    const store = r.coordinator.store;
    expect(store.getJob('pruned')!.status).toBe('completed');
    const { manifest } = modelLayers(MODEL);
    const sparsity = store.checkpointRounds('pruned').map((round) => kernelSparsity(store.checkpoint('pruned', round)!.weights, manifest));
    // kept: rounds 2–4; round 2 reached 0.9, rounds 3 and 4 fine-tuned (and were re-pruned) at it
    expect(store.checkpointRounds('pruned')).toEqual([2, 3, 4]);
    for (const s of sparsity) expect(s).toBeGreaterThanOrEqual(0.9);
    for (const s of sparsity) expect(s).toBeLessThan(0.901);
    const last = store.checkpoint('pruned', 4)!.weights;
    expect(last).not.toEqual(store.checkpoint('pruned', 3)!.weights); // fine-tuning moved the survivors
    expect(() => parseJobConfig({ ...common, prune: { sparsity: 0.5, endRound: 9 } })).toThrow(/prune.endRound: must be in \[startRound \(1\), rounds \(1\)\]/);
  }, 300_000);
});
