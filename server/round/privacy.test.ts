/**
 * Differential privacy in the round engine: ledger, budget stop, noisy fixed-denominator mean,
 * server-side clipping, adaptive clipping, local mode, client privacy floors, restart.
 * Real client engines over the in-memory transport, a real SQLite store; the client task returns
 * fixed deltas so the expected aggregate is known.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ClientEngine,
  privacyFloorPolicy,
  PrivacyFloorSchema,
  type ClientTask,
  type FitResult,
  type PrivacyFloorInput,
} from '../../client/engine/index.ts';
import type { ModelSpec } from '../../shared/model/index.ts';
import {
  DEFAULT_ORDERS,
  epsilonFor,
  gaussianEvent,
  RdpAccountant,
  sampledWithoutReplacementEvent,
} from '../../shared/privacy/index.ts';
import { seededRng } from '../../shared/random.ts';
import { ManualClock } from '../../shared/clock.ts';
import { drive } from '../../test/support/drive.ts';
import { CohortStore } from '../store/index.ts';
import { MemoryServerTransport } from '../transport/memory.ts';
import { parseJobConfig, type JobConfigInput } from './config.ts';
import { RoundEngine } from './engine.ts';
import { testIdentity } from '../../test/support/identity.ts';

const MODEL: ModelSpec = { zoo: 'logreg', inputShape: [4], numClasses: 3 }; // d = 15
const DIM = 15;

/** Sends delta = scale · (1, 1, …, 1): norm scale·√15. */
class ConstantTask implements ClientTask {
  sentNorms: number[] = [];
  constructor(private readonly scale: number, readonly numExamples = 10) {}
  async fit(): Promise<FitResult> {
    return { delta: new Float32Array(DIM).fill(this.scale), numExamples: this.numExamples, metrics: { loss: 1, accuracy: 0.5 } };
  }
  async evaluate() {
    return { numExamples: 1, loss: 1, accuracy: 1 };
  }
}

const cleanup: (() => Promise<void> | void)[] = [];
const clocks = new WeakMap<RoundEngine, ManualClock>();
/** Runs the engine's manual clock until the job ends (no wall-clock waits). */
const finished = (engine: RoundEngine) => drive(clocks.get(engine)!, engine.whenFinished());
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function config(overrides: Partial<JobConfigInput>) {
  return parseJobConfig({
    id: 'dp',
    model: MODEL,
    rounds: 20,
    sampling: { mode: 'fixed', cohortSize: 4 },
    minClients: 4,
    evaluation: { every: 0 },
    timeouts: { trainMs: 5_000, retryDelayMs: 5 },
    ...overrides,
  });
}

async function run(cfg: ReturnType<typeof config>, tasks: ClientTask[], dataDir = mkdtempSync(join(tmpdir(), 'cohort-dp-')), floors: PrivacyFloorInput[] = []) {
  const store = CohortStore.open(dataDir);
  const transport = new MemoryServerTransport();
  const clock = new ManualClock();
  const engine = new RoundEngine({ config: cfg, store, transport, rng: seededRng(3), clock });
  cleanup.push(() => store.close());
  cleanup.push(() => engine.shutdown());
  clocks.set(engine, clock);
  await engine.start();
  const clients = tasks.map((task, i) => {
    const client = new ClientEngine({
      clientId: `c${i}`,
      identity: testIdentity(`c${i}`),
      task,
      transport: transport.createClient(),
      ...(floors[i] ? { policy: privacyFloorPolicy(PrivacyFloorSchema.parse(floors[i])) } : {}),
    });
    client.start();
    return client;
  });
  return { engine, store, clients, dataDir, clock };
}

describe('DP in the round engine', () => {
  it('stops exactly before the round that would exceed the budget; the ledger holds the accountant’s ε', async () => {
    const z = 1.2;
    // ε after k rounds of sampling 4 of 4 clients without replacement (replace-one, z/2 per event).
    const epsAfter = (k: number) => {
      const acc = new RdpAccountant(DEFAULT_ORDERS, { neighboringRelation: 'replaceOne' });
      acc.compose(sampledWithoutReplacementEvent(4, 4, gaussianEvent(z / 2)), k);
      return acc.getEpsilon(1e-5).epsilon;
    };
    const budget = (epsAfter(3) + epsAfter(4)) / 2;
    const cfg = config({ dp: { mode: 'central', noiseMultiplier: z, clipNorm: 1, budget: { epsilon: budget, delta: 1e-5 } } });
    const { engine, store } = await run(cfg, [1, 2, 3, 4].map(() => new ConstantTask(0.01)));
    const summary = await finished(engine);
    expect(summary.status).toBe('budget_exhausted');
    expect(summary.rounds).toBe(3);
    expect(summary.reason).toMatch(/past the budget/);
    const ledger = store.listLedger('dp');
    expect(ledger.map((r) => r.round)).toEqual([1, 2, 3]);
    ledger.forEach((row, i) => expect(row.epsilon).toBeCloseTo(epsAfter(i + 1), 10));
    expect(ledger[2].epsilon).toBeLessThanOrEqual(budget);
    expect(ledger[0]).toMatchObject({ mode: 'central', sampling: 'fixed', samplingRate: 1, population: 4, cohortSize: 4, survivors: 4, noiseMultiplier: z, clipNorm: 1, delta: 1e-5 });
    expect(ledger[0].trust).toMatch(/trusted coordinator/);
    expect(store.getJob('dp')!.status).toBe('budget_exhausted');
  });

  it('Poisson cohorts: the ledger ε equals epsilonFor(q, z, rounds) — the same numbers `cohort privacy epsilon` prints', async () => {
    // Central DP, no SecAgg: every draw runs as drawn (even a short one), so nothing is conditioned.
    const cfg = config({
      rounds: 4,
      sampling: { mode: 'poisson', rate: 0.5 },
      minClients: 1,
      dp: { mode: 'central', noiseMultiplier: 0.9, clipNorm: 1 },
    });
    const { engine, store } = await run(cfg, Array.from({ length: 8 }, () => new ConstantTask(0.01)));
    await finished(engine);
    const ledger = store.listLedger('dp');
    expect(ledger).toHaveLength(4);
    ledger.forEach((row, i) => {
      const expected = epsilonFor({ q: 0.5, noiseMultiplier: 0.9, steps: i + 1, delta: 1e-5 });
      expect(row.epsilon).toBeCloseTo(expected.epsilon, 10);
      expect(row.shortDrawProbability).toBe(0);
      expect(row.event).toEqual({ kind: 'poissonSampled', samplingProbability: 0.5, event: { kind: 'gaussian', noiseMultiplier: 0.9 } });
    });
  });

  it('central mode: clips every update to C (client and server side), weights clients uniformly, divides by the cohort size', async () => {
    // Clients send constant deltas of norm 0.5√15 ≈ 1.94 and 0.1√15 ≈ 0.39 with C = 1, z tiny.
    const cfg = config({ rounds: 1, dp: { mode: 'central', noiseMultiplier: 1e-9, clipNorm: 1 } });
    const tasks = [new ConstantTask(0.5, 10), new ConstantTask(0.5, 1000), new ConstantTask(0.1, 10), new ConstantTask(0.1, 10)];
    const { engine } = await run(cfg, tasks);
    const w0 = engine.globalWeights;
    await finished(engine);
    const clipped = 1 / Math.sqrt(15); // each coordinate of a clipped 0.5-vector
    const expected = (2 * clipped + 2 * 0.1) / 4; // uniform weights, fixed denominator m = 4
    const got = engine.globalWeights;
    for (let j = 0; j < DIM; j++) expect(got[j] - w0[j]).toBeCloseTo(expected, 5);
  });

  it('aborted rounds spend nothing', async () => {
    const quitting = new ConstantTask(0.01);
    const cfg = config({ rounds: 1, minSurvivors: 4, maxAttemptsPerRound: 1, dp: { mode: 'central', noiseMultiplier: 1, clipNorm: 1 } });
    const tasks = [new ConstantTask(0.01), new ConstantTask(0.01), new ConstantTask(0.01), quitting];
    quitting.fit = () => Promise.reject(new Error('battery died'));
    const { engine, store } = await run(cfg, tasks);
    const summary = await finished(engine);
    expect(summary.status).toBe('failed');
    expect(store.listLedger('dp')).toEqual([]);
    expect(store.listRoundAttempts('dp')).toHaveLength(1);
  });

  it('a client below its privacy floor refuses, saying why, and the round goes on without it', async () => {
    const cfg = config({ rounds: 1, minSurvivors: 3, dp: { mode: 'central', noiseMultiplier: 0.5, clipNorm: 1 } });
    const { engine, store, clients } = await run(cfg, [1, 2, 3, 4].map(() => new ConstantTask(0.01)), undefined, [
      { requireDp: true, minNoiseMultiplier: 1 },
    ]);
    const refused = new Promise<{ reason: string }>((r) => clients[0].once('refused', r));
    await finished(engine);
    expect((await refused).reason).toMatch(/noise multiplier 0.5 is below this client's minimum 1/);
    expect(store.listRounds('dp')[0]).toMatchObject({ cohortSize: 4, survivors: 3 });
    expect(store.listLedger('dp')[0].survivors).toBe(3);
  });

  it('adaptive clipping moves C geometrically toward the target quantile', async () => {
    const adaptive = () =>
      config({
        rounds: 1,
        // σ_b ≈ 0 so the update is deterministic; the split needs 2σ_b > z, hence an even smaller z.
        dp: { mode: 'central', noiseMultiplier: 1e-10, clipNorm: 'adaptive', adaptiveClipping: { initialClipNorm: 1, countNoiseStddev: 1e-9 } },
      });
    // All norms ≤ C: b̄ = 1, C₁ = exp(−0.2·(1 − 0.5)) ≈ 0.9048. All above: b̄ = 0, C₁ = exp(0.1) ≈ 1.1052.
    for (const [scale, next] of [[0.01, Math.exp(-0.1)], [1, Math.exp(0.1)]] as const) {
      const { engine, store } = await run(adaptive(), [1, 2, 3, 4].map(() => new ConstantTask(scale)));
      await finished(engine);
      expect(store.listRounds('dp')[0].metrics).toMatchObject({ clipNorm: 1 });
      expect(store.listRounds('dp')[0].metrics!.clipNormNext).toBeCloseTo(next, 6);
    }
  });

  it('local mode: clients noise their own updates; the ledger records an unsampled replace-one Gaussian (z/2) and no client metrics', async () => {
    const cfg = config({ rounds: 1, dp: { mode: 'local', noiseMultiplier: 2, clipNorm: 0.1 } });
    const { engine, store } = await run(cfg, [1, 2, 3, 4].map(() => new ConstantTask(0)));
    const w0 = engine.globalWeights;
    await finished(engine);
    // Zero deltas plus noise of σ = 0.2 each: the mean moved by noise of σ = 0.2·2/4 = 0.1 per coordinate.
    const moved = engine.globalWeights.map((w, j) => w - w0[j]);
    const rms = Math.sqrt(moved.reduce((a, x) => a + x * x, 0) / DIM);
    expect(rms).toBeGreaterThan(0.03);
    expect(rms).toBeLessThan(0.3);
    // The attempt's release to the coordinator is written before anyone trains; the commit adds the published one.
    const [ahead, row] = store.listLedger('dp');
    expect(ahead).toMatchObject({ status: 'attempt', attempt: 1, event: null, coordinatorEvent: { kind: 'gaussian', noiseMultiplier: 1 } });
    expect(row).toMatchObject({ status: 'committed', coordinatorEvent: null, event: { kind: 'gaussian', noiseMultiplier: 1 } });
    expect(row.trust).toMatch(/no trust in the coordinator/);
    expect(store.listRounds('dp')[0].trainLoss).toBeNull();
  });

  it('after a restart the accountant resumes from the ledger; an exhausted job stays stopped', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cohort-dp-restart-'));
    const z = 1.5;
    const cfg = config({ dp: { mode: 'central', noiseMultiplier: z, clipNorm: 1, budget: { epsilon: 40, delta: 1e-5 } } });
    const first = await run(cfg, [1, 2, 3, 4].map(() => new ConstantTask(0.01)), dataDir);
    await drive(first.clock, new Promise<void>((resolve) => first.engine.on('round', (s) => s.round === 2 && resolve())));
    await first.engine.shutdown();
    const before = first.store.listLedger('dp');
    first.store.close();
    expect(before.length).toBeGreaterThanOrEqual(2);

    const second = await run(cfg, [1, 2, 3, 4].map(() => new ConstantTask(0.01)), dataDir);
    const summary = await finished(second.engine);
    expect(summary.status).toBe('budget_exhausted');
    const after = second.store.listLedger('dp');
    expect(after.slice(0, before.length)).toEqual(before); // unchanged by the restart
    const fresh = new RdpAccountant(DEFAULT_ORDERS, { neighboringRelation: 'replaceOne' });
    fresh.compose(sampledWithoutReplacementEvent(4, 4, gaussianEvent(z / 2)), after.length);
    expect(after.at(-1)!.epsilon).toBeCloseTo(fresh.getEpsilon(1e-5).epsilon, 10);
    await second.engine.shutdown();
    second.store.close();

    const third = await run(cfg, [1, 2, 3, 4].map(() => new ConstantTask(0.01)), dataDir);
    expect((await finished(third.engine)).status).toBe('budget_exhausted');
    expect(third.store.listLedger('dp')).toEqual(after);
  });

  it('central noise covers the sensitivity it is given (SecAgg rounding inflates it past C)', async () => {
    const { PrivacyController } = await import('./privacy.ts');
    const controller = new PrivacyController(config({ dp: { mode: 'central', noiseMultiplier: 2, clipNorm: 1 } }), []);
    const plan = controller.plan(4, 4, 4);
    if ('exhausted' in plan) throw new Error('unexpected budget stop');
    const std = (v: Float32Array) => Math.sqrt(v.reduce((a, x) => a + x * x, 0) / v.length);
    const zeros = new Float64Array(40_000);
    // σ = z · sensitivity / m: 2·1/4 = 0.5 with C, 2·1.5/4 = 0.75 with a rounded sensitivity of 1.5.
    expect(plan.noise).toMatchObject({ sensitivity: 1, centralStddev: 2 });
    expect(std(controller.noisyMean(zeros, plan, seededRng(1)))).toBeCloseTo(0.5, 1);
    const coarse = structuredClone(plan);
    controller.bindSecAgg(coarse, { gamma: 1e-3, dimension: 8, sensitivity: 1.5, noiseStddev: 0, minSurvivors: 4 });
    expect(coarse.noise).toMatchObject({ sensitivity: 1.5, centralStddev: 3 });
    expect(std(controller.noisyMean(zeros, coarse, seededRng(2)))).toBeCloseTo(0.75, 1);
    // A sensitivity below C never lowers the noise.
    const fine = structuredClone(plan);
    controller.bindSecAgg(fine, { gamma: 1e-3, dimension: 8, sensitivity: 0.5, noiseStddev: 0, minSurvivors: 4 });
    expect(std(controller.noisyMean(zeros, fine, seededRng(3)))).toBeCloseTo(0.5, 1);
  });

  it('rejects DP configs that cannot work, with the path of the problem', () => {
    expect(() => config({ dp: { mode: 'central', noiseMultiplier: 1 } })).toThrow(/dp\.clipNorm/);
    expect(() => config({ dp: { mode: 'distributed', noiseMultiplier: 1, clipNorm: 1 } })).toThrow(/secure aggregation/);
    expect(() => config({ dp: { mode: 'off', budget: { epsilon: 1, delta: 1e-5 } } })).toThrow(/budget/);
  });
});
