/**
 * Model health end to end (issue 18) over real Socket.IO on 127.0.0.1, real tfjs training, real SQLite,
 * in the multi-job service: four clients declaring groups evaluate with additive statistics; after the
 * reference window (two evaluations) their held-out data drifts (label shift and a covariate shift of
 * every feature). The next evaluation raises a drift alert: the `cohort_drift_alerts_total` metric, a
 * `model.drift` audit row, and the configured action `onDrift: "retrain"` — a retraining job submitted
 * from the drifted version. The health report per version is served by the admin API, with fairness per
 * declared group and the success criteria checked. No sleeps: the drift is switched on by the clients'
 * own `evaluated` events.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromArrays, type Dataset } from '../../client/data/dataset.ts';
import { ClientEngine, type ClientTask, type EvaluationResult } from '../../client/engine/index.ts';
import { selectBackend } from '../../client/train/backend.ts';
import { TfjsTask } from '../../client/train/task.ts';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import { parseJobConfig } from '../../server/round/config.ts';
import type { DriftAlert } from '../../server/round/health.ts';
import { startService, type Service } from '../../server/service.ts';
import { startCoordinator } from '../../server/coordinator.ts';
import type { HealthReport, HealthRequest } from '../../shared/evaluation/index.ts';
import type { ModelSpec } from '../../shared/model/index.ts';
import type { TrainingParams } from '../../shared/protocol/index.ts';
import { seededRng } from '../../shared/random.ts';
import { testIdentity } from '../support/identity.ts';

const MODEL: ModelSpec = { zoo: 'logreg', inputShape: [8], numClasses: 3 };

/** Three Gaussian blobs in 8-D; `shift` moves every feature, `labelShift` makes most labels class 0. */
function blobs(n: number, seed: number, drift = false): Dataset {
  const rng = seededRng(seed);
  const features = new Float32Array(n * 8);
  const labels = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const y = drift ? (r % 5 === 0 ? 1 + (r % 2) : 0) : r % 3;
    labels[r] = y;
    for (let j = 0; j < 8; j++) features[r * 8 + j] = (j % 3 === y ? 2 : 0) + (rng.next() - 0.5) + (drift ? 1.5 : 0);
  }
  return fromArrays(features, labels, { featureShape: [8], numClasses: 3 });
}

/** Trains on its data; evaluates on held-out data that drifts once `drift()` is called. */
class DriftingTask implements ClientTask {
  private current: TfjsTask;
  private readonly shifted: TfjsTask;
  constructor(
    private readonly train: TfjsTask,
    seed: number,
    n: number,
  ) {
    this.current = new TfjsTask({ train: blobs(n, seed), test: blobs(n, seed + 100) });
    this.shifted = new TfjsTask({ train: blobs(n, seed), test: blobs(n, seed + 200, true) });
  }
  get numExamples() {
    return this.train.numExamples;
  }
  fit(weights: Float32Array, model: ModelSpec, training: TrainingParams, round: number) {
    return this.train.fit(weights, model, training, round);
  }
  evaluate(weights: Float32Array, model: ModelSpec, batchSize: number, health?: HealthRequest): Promise<EvaluationResult> {
    return this.current.evaluate(weights, model, batchSize, health);
  }
  drift(): void {
    this.current = this.shifted;
  }
}

describe('model health over Socket.IO: statistics, groups, criteria, and a drift alert that retrains', () => {
  let service: Service;
  const engines: ClientEngine[] = [];
  let alert: Promise<DriftAlert>;
  let token: string;

  beforeAll(async () => {
    await selectBackend({ prefer: 'wasm' });
    service = await startService({ dataDir: mkdtempSync(join(tmpdir(), 'cohort-health-')) });
    token = service.store.createToken({ name: 'viewer', role: 'viewer' }).token;
    const config = parseJobConfig({
      id: 'health',
      model: MODEL,
      rounds: 6,
      sampling: { mode: 'fixed', cohortSize: 4 },
      minClients: 4,
      training: { epochs: 2, batchSize: 8, learningRate: 0.2 },
      evaluation: { every: 1 },
      health: {
        minGroupCount: 1,
        temperatureScaling: true,
        drift: { binning: { bands: 2, bins: 8, lo: -1, hi: 3 }, referenceEvaluations: 2, psiThreshold: 0.25, onDrift: 'retrain' },
      },
      criteria: { minAccuracy: 0.5, maxEce: 0.5 },
      timeouts: { trainMs: 60_000, evaluateMs: 60_000, retryDelayMs: 50 },
    });
    const job = await service.submit(config);
    alert = new Promise((resolve) => job.engine.once('drift', resolve));
    for (let i = 0; i < 4; i++) {
      const task = new DriftingTask(new TfjsTask({ train: blobs(40 + 8 * i, i), seed: i }), i, 30 + 6 * i);
      const engine = new ClientEngine({
        clientId: `c${i}`,
        identity: testIdentity(`health-c${i}`),
        task,
        groups: { region: i < 2 ? 'eu' : 'us' },
        transport: new SocketIoClientTransport({ url: `${service.url}/jobs/health`, reconnect: { maxAttempts: 0 } }),
      });
      // The data drifts once the reference window (evaluations of rounds 1 and 2) is complete.
      engine.on('evaluated', ({ round }) => {
        if (round === 2) task.drift();
      });
      engine.start();
      engines.push(engine);
    }
  }, 60_000);

  afterAll(async () => {
    for (const e of engines) e.stop();
    await service?.close();
  });

  it('raises the alert at the first evaluation after the drift, and submits a retraining job from that version', async () => {
    const a = await alert;
    expect(a.round).toBe(3);
    expect(a.action).toBe('retrain');
    expect(a.reason).toMatch(/PSI/);
    expect(a.drift.scores!.maxPsi).toBeGreaterThan(0.25);
    expect(a.drift.scores!.labelPsi).toBeGreaterThan(0.1);
    await expect.poll(() => service.jobs.get('health-retrain-3')?.config.initFrom).toEqual({ job: 'health', round: 3 });
    const audit = service.store.listAudit().filter((r) => r.action === 'model.drift');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: 'system', target: 'health/3' });
    expect(JSON.stringify(audit[0].details)).toContain('health-retrain-3');
    expect(await service.metrics.metrics()).toMatch(/cohort_drift_alerts_total\{job="health",action="retrain"\} 1/);
  }, 120_000);

  it('serves each version\'s health: metrics from summed statistics, groups, temperature, drift, criteria', async () => {
    await service.jobs.get('health')!.engine.whenFinished();
    const res = await fetch(`${service.url}/api/v1/jobs/health/health`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const reports = (await res.json()) as (HealthReport & { round: number })[];
    expect(reports.map((r) => r.round)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const r of reports) {
      expect(r.clients).toBe(4);
      expect(r.stats.count).toBe(30 + 36 + 42 + 48);
      expect(r.metrics.perClass).toHaveLength(3);
      expect(r.metrics.ece).toBeGreaterThanOrEqual(0);
      expect(r.fairness!.groups.map((g) => g.group)).toEqual(['region=eu', 'region=us']);
      expect(r.fairness!.groups[0].count).toBe(30 + 36);
      expect(r.clientAccuracy!.clients).toBe(4);
      expect(r.criteria!.results.map((c) => c.criterion)).toEqual(['minAccuracy', 'maxEce']);
      expect(r.temperature!.candidates.length).toBeGreaterThan(1);
    }
    // before the drift: the reference window is built and no alert; the alert only once (it stays above).
    expect(reports[0].drift!.reference).toEqual({ evaluations: 1, of: 2 });
    expect(reports[1].drift!.scores).toBeUndefined();
    expect(reports[2].drift!.alert).toMatch(/PSI/);
    expect(reports.slice(3).every((r) => r.drift!.alert === undefined && r.drift!.scores!.maxPsi > 0.25)).toBe(true);
    // the second evaluation refines the temperature around the first one's best and reports calibrated metrics
    expect(reports[1].temperature!.applied).toBe(reports[0].temperature!.best);
    expect(reports[1].temperature!.calibrated!.count).toBe(reports[1].stats.count);
    // accuracy summed from the statistics is the example-weighted mean of the clients' own accuracies
    const v = await fetch(`${service.url}/api/v1/jobs/health/versions`, { headers: { authorization: `Bearer ${token}` } });
    const versions = (await v.json()) as { round: number; evaluation: { accuracy: number }; health: { ece: number } | null; gates: { results: { gate: string }[] } }[];
    const last = versions.at(-1)!;
    expect(last.evaluation.accuracy).toBeCloseTo(reports.at(-1)!.metrics.accuracy, 12);
    expect(last.health!.ece).toBe(reports.at(-1)!.metrics.ece);
    expect(last.gates.results.map((g) => g.gate)).toEqual(['criteria.minAccuracy', 'criteria.maxEce']);
  }, 120_000);

  it('serves a version with its temperature folded in: tf.loadLayersModel over HTTP predicts softmax(z / T)', async () => {
    await service.jobs.get('health')!.engine.whenFinished();
    const reports = service.store.listEvaluations('health').filter((e) => e.kind === 'federated' && e.round <= 6);
    const T = reports.at(-1)!.health!.temperature!.best;
    expect(T).not.toBe(1);
    const requestInit = { headers: { authorization: `Bearer ${token}` } };
    const base = `${service.url}/api/v1/jobs/health/versions/6`;
    const json = (await (await fetch(`${base}/model.json`, requestInit)).json()) as { userDefinedMetadata?: { cohort?: { temperature: number; applied: boolean } } };
    expect(json.userDefinedMetadata?.cohort).toMatchObject({ temperature: T, applied: true });
    const calibrated = await tf.loadLayersModel(`${base}/model.json`, { requestInit });
    const raw = await tf.loadLayersModel(`${base}/model.json?temperature=none`, { requestInit });
    const x = tf.tensor2d(blobs(20, 77).features, [20, 8]);
    const p = (calibrated.predict(x) as tf.Tensor).arraySync() as number[][];
    const expected = tf.tidy(() => tf.softmax(tf.log(raw.predict(x) as tf.Tensor).div(T)).arraySync()) as number[][];
    for (let r = 0; r < 20; r++) for (let c = 0; c < 3; c++) expect(p[r][c]).toBeCloseTo(expected[r][c], 5);
    // the raw weights are the checkpoint's, bit for bit
    const stored = service.store.checkpoint('health', 6)!.weights;
    const rawWeights = new Float32Array(raw.getWeights().flatMap((w) => Array.from(w.dataSync())));
    expect(Buffer.from(rawWeights.buffer).equals(Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength))).toBe(true);
    tf.dispose([x]);
    calibrated.dispose();
    raw.dispose();
  }, 60_000);
});

describe('a DP job\'s evaluation over Socket.IO: noised statistics, accounted in the ledger with the record', () => {
  it('writes an evaluation ledger row after each committed round, publishes only the noised figures', async () => {
    await selectBackend({ prefer: 'wasm' });
    const dataDir = mkdtempSync(join(tmpdir(), 'cohort-health-dp-'));
    const coordinator = await startCoordinator({
      dataDir,
      config: parseJobConfig({
        id: 'dp-health',
        model: MODEL,
        rounds: 2,
        sampling: { mode: 'fixed', cohortSize: 4 },
        minClients: 4,
        dp: { mode: 'central', noiseMultiplier: 1, clipNorm: 1, budget: { epsilon: 100, delta: 1e-5 } },
        evaluation: { every: 1 },
        health: { dp: { noiseMultiplier: 1, maxExamples: 30 } },
        criteria: { minAccuracy: 0.01, maxEpsilon: 1000 },
        timeouts: { trainMs: 60_000, evaluateMs: 60_000, retryDelayMs: 50 },
      }),
    });
    const clients = Array.from({ length: 4 }, (_, i) => {
      const e = new ClientEngine({
        clientId: `d${i}`,
        identity: testIdentity(`health-dp-${i}`),
        task: new TfjsTask({ train: blobs(40, 10 + i), test: blobs(50, 20 + i) }),
        groups: { region: 'eu' },
        transport: new SocketIoClientTransport({ url: coordinator.url, reconnect: { maxAttempts: 0 } }),
      });
      e.start();
      return e;
    });
    try {
      expect(await coordinator.engine.whenFinished()).toMatchObject({ status: 'completed', rounds: 2 });
      const ledger = coordinator.store.listLedger('dp-health');
      expect(ledger.map((r) => [r.status, r.round])).toEqual([
        ['committed', 1],
        ['evaluation', 1],
        ['committed', 2],
        ['evaluation', 2],
      ]);
      const ev = ledger[1];
      expect(ev).toMatchObject({ noiseMultiplier: 1, clipNorm: 30 * Math.sqrt(7), event: { kind: 'gaussian', noiseMultiplier: 0.5 }, coordinatorEvent: null });
      expect(ev.epsilon).toBeGreaterThan(ledger[0].epsilon);
      expect(ledger[2].epsilon).toBeGreaterThan(ev.epsilon);
      for (const e of coordinator.store.listEvaluations('dp-health')) {
        const h = e.health!;
        expect(h.privacy).toMatchObject({ noiseMultiplier: 1, maxExamples: 30, stddev: 30 * Math.sqrt(7) });
        expect(h.fairness).toBeUndefined(); // groups were declared, but per-group figures are not noised
        expect(h.clientAccuracy).toBeUndefined();
        expect(e.accuracy).toBe(h.metrics.accuracy);
        expect(e.loss).toBe(h.metrics.nll);
        expect(h.criteria!.results.map((c) => [c.criterion, c.value])).toEqual([
          ['minAccuracy', h.metrics.accuracy],
          ['maxEpsilon', ledger.find((r) => r.status === 'evaluation' && r.round === e.round)!.epsilon],
        ]);
      }
    } finally {
      for (const c of clients) c.stop();
      await coordinator.close();
    }
  }, 120_000);
});
