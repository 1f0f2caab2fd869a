/**
 * Hostile evaluation statistics (issue 18) over real Socket.IO, a real coordinator in this process and
 * real SQLite: every client is untrusted, so statistics that no honest evaluation could produce — an
 * NLL sum of 10^15 for 20 examples, a confusion matrix that does not add up to the examples, another
 * class count than the model's, a drift sketch nobody asked for, 101 classes, a fractional sum — are
 * refused with a typed, bounded error (OUT_OF_RANGE after the schema, BAD_SCHEMA by it), the sender's
 * result is excluded, and the job completes with the honest clients' sums only.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientEngine, type ClientTask, type EvaluationResult, type FitResult } from '../../client/engine/index.ts';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import { startCoordinator } from '../../server/coordinator.ts';
import { parseJobConfig } from '../../server/round/config.ts';
import { CohortStore } from '../../server/store/index.ts';
import { addPredictions, emptyStats, type ClientHealthReport, type HealthRequest } from '../../shared/evaluation/index.ts';
import { ErrorCode, MAX_ERROR_MESSAGE_CHARS, type ErrorMessage } from '../../shared/protocol/index.ts';
import { testIdentity } from '../support/identity.ts';

const DIM = 18; // logreg 8 → 2

/** 20 examples, 2 classes: an honest report for them. */
function honest(): ClientHealthReport {
  const probs: number[] = [];
  const labels: number[] = [];
  for (let r = 0; r < 20; r++) {
    probs.push(r % 4 === 0 ? 0.3 : 0.8, r % 4 === 0 ? 0.7 : 0.2);
    labels.push(r % 2);
  }
  return { stats: addPredictions(emptyStats(2), probs, labels) };
}

type Forge = (h: ClientHealthReport) => unknown;

class Task implements ClientTask {
  constructor(private readonly forge?: Forge) {}
  get numExamples() {
    return 20;
  }
  async fit(): Promise<FitResult> {
    return { delta: new Float32Array(DIM).fill(0.01), numExamples: 20, metrics: { loss: 0.5 } };
  }
  async evaluate(_w: Float32Array, _m: unknown, _b: number, health?: HealthRequest): Promise<EvaluationResult> {
    const h = honest();
    return { numExamples: 20, loss: 0.4, accuracy: 0.5, ...(health ? { health: (this.forge ? this.forge(h) : h) as ClientHealthReport } : {}) };
  }
}

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe('hostile evaluation statistics', () => {
  it('are refused with typed, bounded errors; the job completes on the honest sums', async () => {
    const forged: [string, Forge, string][] = [
      ['NLL of 10^15', (h) => ({ ...h, stats: { ...h.stats, nll: 1e15 } }), ErrorCode.OUT_OF_RANGE],
      ['confusion not adding up', (h) => ({ ...h, stats: { ...h.stats, confusion: [20, 20, 0, 0] } }), ErrorCode.OUT_OF_RANGE],
      ['wrong class count (consistent, but 3 classes)', () => ({ stats: addPredictions(emptyStats(3), new Array(60).fill(1 / 3), new Array(20).fill(0)) }), ErrorCode.OUT_OF_RANGE],
      ['a drift sketch nobody asked for', (h) => ({ ...h, drift: { labels: [10, 10], features: [] } }), ErrorCode.OUT_OF_RANGE],
      ['101 classes (101² confusion entries)', (h) => ({ ...h, stats: { ...h.stats, numClasses: 101, confusion: new Array(101 * 101).fill(0) } }), ErrorCode.BAD_SCHEMA],
      ['a fractional count', (h) => ({ ...h, stats: { ...h.stats, brier: 0.5 } }), ErrorCode.BAD_SCHEMA],
    ];
    const behaviours: (Forge | undefined)[] = [undefined, undefined, ...forged.map((f) => f[1])];
    const dataDir = mkdtempSync(join(tmpdir(), 'cohort-hostile-health-'));
    const config = parseJobConfig({
      id: 'hh',
      model: { zoo: 'logreg', inputShape: [8], numClasses: 2 },
      rounds: 2,
      sampling: { mode: 'fixed', cohortSize: behaviours.length },
      minClients: behaviours.length,
      evaluation: { every: 1 },
      limits: { maxPayloadBytes: 1024 * 1024 },
      // A schema-refused eval_result cannot be attributed to an evaluation: its sender counts as silent until the deadline.
      timeouts: { trainMs: 20_000, evaluateMs: 1_500, retryDelayMs: 20 },
    });
    const coordinator = await startCoordinator({ config, dataDir });
    cleanup.push(() => coordinator.close());
    const errors: ErrorMessage[][] = behaviours.map(() => []);
    behaviours.forEach((forge, i) => {
      const engine = new ClientEngine({
        clientId: `h${i}`,
        identity: testIdentity(`hostile-health-${i}`),
        task: new Task(forge),
        transport: new SocketIoClientTransport({ url: coordinator.url, reconnect: { maxAttempts: 0 } }),
      });
      engine.on('serverError', (e) => errors[i].push(e));
      engine.start();
      cleanup.push(() => engine.stop());
    });
    expect(await coordinator.engine.whenFinished()).toMatchObject({ status: 'completed', rounds: 2 });
    expect(errors[0]).toEqual([]);
    expect(errors[1]).toEqual([]);
    for (const [k, [, , code]] of forged.entries()) {
      const got = errors[k + 2];
      // (the server may finish before its last reply reaches the client)
      await expect.poll(() => got.map((e) => e.code)).toEqual([code, code]);
      for (const e of got) expect(e.message.length).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_CHARS);
    }
    const store = CohortStore.open(dataDir);
    try {
      const evals = store.listEvaluations('hh');
      expect(evals.map((e) => e.round)).toEqual([1, 2]);
      for (const e of evals) {
        // only the two honest clients' statistics are summed
        expect(e.health!.clients).toBe(2);
        expect(e.health!.stats).toEqual({ ...honest().stats, count: 40, confusion: honest().stats.confusion.map((x) => 2 * x), binCount: honest().stats.binCount.map((x) => 2 * x), binCorrect: honest().stats.binCorrect.map((x) => 2 * x), binConfidence: honest().stats.binConfidence.map((x) => 2 * x), brier: 2 * honest().stats.brier, nll: 2 * honest().stats.nll });
      }
    } finally {
      store.close();
    }
  }, 60_000);
});
