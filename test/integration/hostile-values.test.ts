/**
 * The four ways one client could break a job before issue 11, each over real Socket.IO with a real
 * coordinator (in this process: an uncaught error would fail the test run) and real SQLite:
 *
 * 1. an update with a finite but huge loss (1e308), or 2^40 examples with loss 1e300, overflowed the
 *    round's weighted loss to Infinity: every attempt's commit failed and the job ended `failed`;
 * 2. eval_result loss 1e308 from every evaluator: the evaluation record failed and the job stalled;
 * 3. the same with one evaluator silent, so the evaluation closed on its deadline timer: the process
 *    died of an uncaught CohortError;
 * 4. error replies quoted the input without bound (longer than the protocol's 4,096-character limit).
 *
 * Now the sender gets OUT_OF_RANGE, is excluded (a dropout of that round) and the job completes.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientEngine, type ClientTask, type EvaluationResult, type FitResult } from '../../client/engine/index.ts';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import { startCoordinator, type Coordinator } from '../../server/coordinator.ts';
import { parseJobConfig, type JobConfigInput } from '../../server/round/config.ts';
import { CohortStore } from '../../server/store/index.ts';
import type { ModelSpec } from '../../shared/model/index.ts';
import { emitFrames, ErrorCode, MAX_ERROR_MESSAGE_CHARS, PROTOCOL_VERSION, type ErrorMessage } from '../../shared/protocol/index.ts';
import { testIdentity } from '../support/identity.ts';

const MODEL: ModelSpec = { zoo: 'logreg', inputShape: [8], numClasses: 2 };
const DIM = 18;

interface Behaviour {
  fitExamples?: number;
  loss?: number;
  evalLoss?: number;
  /** Never answers evaluate. */
  silentEval?: boolean;
}

class Task implements ClientTask {
  constructor(
    readonly index: number,
    private readonly b: Behaviour = {},
  ) {}
  get numExamples() {
    return 10;
  }
  async fit(): Promise<FitResult> {
    const delta = new Float32Array(DIM).fill(0.01 * (this.index + 1));
    return { delta, numExamples: this.b.fitExamples ?? 10, metrics: { loss: this.b.loss ?? 0.5 + this.index, accuracy: 0.5 } };
  }
  evaluate(): Promise<EvaluationResult> {
    if (this.b.silentEval) return new Promise(() => {});
    return Promise.resolve({ numExamples: 20, loss: this.b.evalLoss ?? 0.3, accuracy: 0.75 });
  }
}

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function job(overrides: Partial<JobConfigInput>, behaviours: Behaviour[]) {
  const dataDir = mkdtempSync(join(tmpdir(), 'cohort-hostile-values-'));
  const config = parseJobConfig({
    id: 'hv',
    model: MODEL,
    rounds: 2,
    sampling: { mode: 'fixed', cohortSize: behaviours.length },
    minClients: behaviours.length,
    minSurvivors: 2,
    evaluation: { every: 0 },
    timeouts: { trainMs: 20_000, evaluateMs: 20_000, retryDelayMs: 20 },
    maxAttemptsPerRound: 3,
    ...overrides,
  });
  const coordinator = await startCoordinator({ config, dataDir });
  cleanup.push(() => coordinator.close());
  const errors: ErrorMessage[][] = behaviours.map(() => []);
  const clients = behaviours.map((b, i) => {
    const transport = new SocketIoClientTransport({ url: coordinator.url, reconnect: { maxAttempts: 0 } });
    const engine = new ClientEngine({ clientId: `c${i}`, identity: testIdentity(`c${i}`), task: new Task(i, b), transport });
    engine.on('serverError', (e) => errors[i].push(e));
    engine.start();
    cleanup.push(() => engine.stop());
    return engine;
  });
  return { coordinator, clients, errors, dataDir };
}

function rounds(dataDir: string) {
  const store = CohortStore.open(dataDir);
  try {
    return store.listRounds('hv');
  } finally {
    store.close();
  }
}

describe('one client cannot fail, stall or crash a job', () => {
  it('1. an update with loss 1e308, or 2^40 examples with loss 1e300: OUT_OF_RANGE, excluded, the job completes', async () => {
    const { coordinator, errors, dataDir } = await job({}, [{}, {}, { loss: 1e308 }, { fitExamples: 2 ** 40, loss: 1e300 }]);
    const summary = await coordinator.engine.whenFinished();
    expect(summary).toMatchObject({ status: 'completed', rounds: 2 });
    for (const i of [2, 3]) {
      // (the server finished before the last reply reached the client)
      await expect.poll(() => errors[i].map((e) => e.code)).toEqual([ErrorCode.OUT_OF_RANGE, ErrorCode.OUT_OF_RANGE]);
      expect(errors[i][0].ref).toMatchObject({ type: 'update', round: 1 });
    }
    expect(errors[0]).toEqual([]);
    const rows = rounds(dataDir);
    expect(rows.map((r) => r.round)).toEqual([1, 2]);
    for (const r of rows) {
      // The two honest clients (loss 0.5 and 1.5, 10 examples each) carry the round; the others are dropouts.
      expect(r).toMatchObject({ cohortSize: 4, survivors: 2, dropouts: 2, numExamples: 20 });
      expect(r.trainLoss).toBeCloseTo(1.0, 12);
    }
  });

  it('2. eval_result loss 1e308 from every evaluator: excluded, the job does not stall', async () => {
    const { coordinator, errors, dataDir } = await job({ evaluation: { every: 1 } }, [{ evalLoss: 1e308 }, { evalLoss: 1e308 }, { evalLoss: -1e308 }]);
    const summary = await coordinator.engine.whenFinished();
    expect(summary).toMatchObject({ status: 'completed', rounds: 2 });
    for (const e of errors) await expect.poll(() => e.map((x) => x.code)).toEqual([ErrorCode.OUT_OF_RANGE, ErrorCode.OUT_OF_RANGE]);
    expect(rounds(dataDir).map((r) => r.evaluation)).toEqual([null, null]);
  });

  it('3. the same with one evaluator silent (the deadline closes the evaluation): the process survives, honest results count', async () => {
    const { coordinator, dataDir } = await job({ evaluation: { every: 1 }, timeouts: { trainMs: 20_000, evaluateMs: 400, retryDelayMs: 20 } }, [
      { evalLoss: 1e308 },
      { silentEval: true },
      {},
    ]);
    const summary = await coordinator.engine.whenFinished();
    expect(summary).toMatchObject({ status: 'completed', rounds: 2 });
    for (const r of rounds(dataDir)) expect(r.evaluation).toMatchObject({ kind: 'federated', clients: 1, numExamples: 20, loss: 0.3, accuracy: 0.75 });
  });

  it('4. error replies are bounded however long the offending input is', async () => {
    const { coordinator } = await job({}, [{}, {}]);
    const socket: Socket = io(coordinator.url, { transports: ['websocket'], reconnection: false });
    cleanup.push(() => socket.close());
    const replies: ErrorMessage[] = [];
    socket.on('head', (head: { msg: ErrorMessage }) => {
      if (head.msg.type === 'error') replies.push(head.msg);
    });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const longType = 'x'.repeat(200_000);
    const manyKeys = Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`unexpected_key_number_${i}`, i]));
    const inputs = [
      { type: longType },
      { type: 'hello', protocolVersion: PROTOCOL_VERSION, clientId: 'raw', ...manyKeys },
      { type: 'hello', protocolVersion: PROTOCOL_VERSION, clientId: 'y'.repeat(100_000) },
    ];
    inputs.forEach((msg, i) => emitFrames(socket, msg as never, i, 256 * 1024));
    socket.emit('x'.repeat(100_000), 1);
    await expect.poll(() => replies.length, { timeout: 10_000 }).toBe(4);
    for (const r of replies) {
      expect(r.message.length).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_CHARS);
      expect([ErrorCode.UNKNOWN_TYPE, ErrorCode.BAD_SCHEMA]).toContain(r.code);
    }
    expect(replies.some((r) => /more issues|more characters/.test(r.message))).toBe(true);
    expect(await coordinator.engine.whenFinished()).toMatchObject({ status: 'completed' });
  });
});
