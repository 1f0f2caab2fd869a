/**
 * Secure aggregation in the round engine (in-memory transport, real client engines, real SQLite):
 * the coordinator learns only the sum, which decodes to the survivors' mean within the quantisation
 * error; dropouts during the masked-input phase are recovered; distributed DP is ledgered with the
 * survivors; the modulus/quantisation choice refuses what cannot work.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientEngine, type ClientTask, type FitResult } from '../../client/engine/index.ts';
import type { ModelSpec } from '../../shared/model/index.ts';
import type { ClientMessage } from '../../shared/protocol/index.ts';
import { seededRng } from '../../shared/random.ts';
import { ManualClock } from '../../shared/clock.ts';
import { drive } from '../../test/support/drive.ts';
import { CohortStore } from '../store/index.ts';
import { MemoryServerTransport, type MemoryClientEnd } from '../transport/memory.ts';
import { parseJobConfig, type JobConfigInput } from './config.ts';
import { RoundEngine } from './engine.ts';
import { findGraphParams } from '../../shared/secagg/index.ts';
import { chooseEncoding, distributedGaussianTau, tolerantGraph } from './secagg.ts';

const MODEL: ModelSpec = { zoo: 'logreg', inputShape: [20], numClasses: 5 }; // d = 105
const DIM = 105;

class PatternTask implements ClientTask {
  end!: MemoryClientEnd;
  onTrained?: () => void;
  constructor(readonly index: number) {}
  get numExamples() {
    return 10;
  }
  delta(): Float32Array {
    return Float32Array.from({ length: DIM }, (_, j) => 0.02 * Math.sin(j + this.index));
  }
  async fit(): Promise<FitResult> {
    queueMicrotask(() => this.onTrained?.());
    return { delta: this.delta(), numExamples: 10, metrics: {} };
  }
  async evaluate() {
    return { numExamples: 1, loss: 1, accuracy: 1 };
  }
}

const cleanup: (() => unknown)[] = [];
const clocks = new WeakMap<RoundEngine, ManualClock>();
/** Runs the engine's manual clock until the job ends (no wall-clock waits). */
const finished = (engine: RoundEngine) => drive(clocks.get(engine)!, engine.whenFinished());
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function config(overrides: Partial<JobConfigInput> = {}) {
  return parseJobConfig({
    id: 'sa',
    model: MODEL,
    rounds: 1,
    sampling: { mode: 'fixed', cohortSize: 8 },
    minClients: 8,
    minSurvivors: 5,
    evaluation: { every: 0 },
    timeouts: { trainMs: 5_000, retryDelayMs: 5 },
    secagg: { enabled: true, clipNorm: 1, phaseTimeoutMs: 2_000 },
    ...overrides,
  });
}

async function run(cfg: ReturnType<typeof config>, n = 8) {
  const store = CohortStore.open(mkdtempSync(join(tmpdir(), 'cohort-sa-')));
  const transport = new MemoryServerTransport();
  const clock = new ManualClock();
  const engine = new RoundEngine({ config: cfg, store, transport, rng: seededRng(1), clock });
  cleanup.push(() => store.close());
  cleanup.push(() => engine.shutdown());
  // Record everything clients send: a plain `update` must never appear.
  const sent: ClientMessage[] = [];
  clocks.set(engine, clock);
  await engine.start();
  const tasks = Array.from({ length: n }, (_, i) => new PatternTask(i));
  for (const task of tasks) {
    task.end = transport.createClient();
    const send = task.end.send.bind(task.end);
    task.end.send = (m) => {
      sent.push(m);
      send(m);
    };
    new ClientEngine({ clientId: `c${i(task)}`, task, transport: task.end }).start();
  }
  return { engine, store, tasks, sent, clock };
}
const i = (t: PatternTask) => t.index;

describe('secure aggregation in the round engine', () => {
  it('commits the mean of the updates from their masked sum, and no client sends a plain update', async () => {
    const { engine, store, tasks, sent } = await run(config());
    const w0 = engine.globalWeights;
    const summary = await finished(engine);
    expect(summary.status).toBe('completed');
    const got = engine.globalWeights;
    let maxErr = 0;
    for (let j = 0; j < DIM; j++) {
      const mean = tasks.reduce((s, t) => s + t.delta()[j], 0) / tasks.length;
      maxErr = Math.max(maxErr, Math.abs(got[j] - w0[j] - mean));
    }
    expect(maxErr).toBeLessThan(2e-3); // randomized rounding: ~γ per client, γ ≈ 1e-4 here
    expect(sent.some((m) => m.type === 'update')).toBe(false);
    const masked = sent.filter((m) => m.type === 'secagg_up' && m.payload);
    expect(masked).toHaveLength(8);
    expect(store.listRounds('sa')[0]).toMatchObject({ cohortSize: 8, survivors: 8 });
  });

  it('recovers from clients that vanish after sending keys, before their masked input', async () => {
    const { engine, store, tasks } = await run(config());
    const w0 = engine.globalWeights;
    for (const t of tasks.slice(0, 2)) t.onTrained = () => t.end.drop('lost network');
    const summary = await finished(engine);
    expect(summary.status).toBe('completed');
    const [round] = store.listRounds('sa');
    expect(round).toMatchObject({ cohortSize: 8, survivors: 6, dropouts: 2 });
    const got = engine.globalWeights;
    const survivors = tasks.slice(2);
    for (let j = 0; j < DIM; j += 13) {
      const mean = survivors.reduce((s, t) => s + t.delta()[j], 0) / survivors.length;
      expect(Math.abs(got[j] - w0[j] - mean)).toBeLessThan(2e-3);
    }
  });

  it('a client that sends a garbage masked input cannot corrupt the model: the impossible sum aborts the attempt', async () => {
    const { engine, store, tasks } = await run(config({ maxAttemptsPerRound: 1 }));
    const w0 = engine.globalWeights;
    // Client 0 replaces its masked input with uniform bytes of the right length (schema-valid, unattributable).
    const end = tasks[0].end;
    const send = end.send.bind(end);
    end.send = (m) => {
      if (m.type === 'secagg_up' && m.payload) {
        const garbage = new Uint8Array(m.payload.length);
        for (let k = 0; k < garbage.length; k++) garbage[k] = (k * 2654435761) >>> 24;
        return send({ ...m, payload: garbage });
      }
      send(m);
    };
    const summary = await finished(engine);
    expect(summary.status).toBe('failed'); // (maxAttemptsPerRound 1: with more, retries draw fresh cohorts)
    expect(store.latestCheckpoint('sa')).toBeUndefined();
    expect(engine.globalWeights).toEqual(w0);
    expect(store.listRoundAttempts('sa')[0].reason).toMatch(/decoded sum has L2 norm .* more than 8 encoded updates/);
  });

  it('aborts cleanly, publishing nothing, when too many drop', async () => {
    const { engine, store, tasks } = await run(config({ maxAttemptsPerRound: 1 }));
    const w0 = engine.globalWeights;
    for (const t of tasks.slice(0, 4)) t.onTrained = () => t.end.drop('lost network');
    const summary = await finished(engine);
    expect(summary.status).toBe('failed');
    expect(store.latestCheckpoint('sa')).toBeUndefined();
    expect(engine.globalWeights).toEqual(w0);
    expect(store.listRoundAttempts('sa')[0].reason).toMatch(/secure aggregation aborted/);
  });

  it('distributed DP: clients add the noise, the ledger records the actual survivors and the trust assumption', async () => {
    const cfg = config({ dp: { mode: 'distributed', noiseMultiplier: 1, clipNorm: 1 } });
    const { engine, store, tasks } = await run(cfg);
    tasks[7].onTrained = () => tasks[7].end.drop('battery');
    const summary = await finished(engine);
    expect(summary.status).toBe('completed');
    // The release to the coordinator is written before the unmasking request, then the commit's row.
    const [ahead, row] = store.listLedger('sa');
    expect(ahead).toMatchObject({ status: 'attempt', attempt: 1, event: null, coordinatorEvent: { kind: 'distributedDiscreteGaussian' } });
    expect(row).toMatchObject({ status: 'committed', mode: 'distributed', mechanism: 'distributed_discrete_gaussian', cohortSize: 8, survivors: 7 });
    expect(row.trust).toMatch(/honest-but-curious coordinator/);
    expect(row.epsilon).toBeGreaterThan(0);
  });

  it('chooses γ so b bits hold the sum, and refuses bits that cannot', () => {
    const fine = chooseEncoding({ clients: 100, minSurvivors: 90, dim: 199_210, clipNorm: 1, bits: 16, wrapProbability: 1e-9, noiseMultiplier: 1 });
    expect(fine.gamma).toBeGreaterThan(0);
    expect(fine.sensitivity / 1).toBeLessThan(1.1);
    expect(fine.noiseStddev).toBeCloseTo((1 * fine.sensitivity) / Math.sqrt(90), 12);
    expect(() => chooseEncoding({ clients: 300, minSurvivors: 250, dim: 199_210, clipNorm: 1, bits: 8, wrapProbability: 1e-9, noiseMultiplier: 1 })).toThrow(
      /raise secagg.bits/,
    );
  });

  it('a large Poisson cohort over a fixed minimum gets the most dropout tolerance a graph can give, not a failed job', () => {
    // n = 119 with a job minimum of 60 asks for 59 tolerated dropouts (~50%): no (k, t) reaches the bounds.
    expect(() => findGraphParams({ clients: 119, dropoutRate: 59 / 119, corruptRate: 0.05 })).toThrow(/no neighbour degree/);
    const g = tolerantGraph(119, 60, 0.1, 0.05);
    // Close to what was asked (within the 2.5% search grid), far above the configured 10%.
    expect(g.maxDropouts).toBeLessThan(59);
    expect(g.maxDropouts).toBeGreaterThanOrEqual(Math.floor((59 / 119 - 0.05) * 119));
    // Where the job's minimum is reachable, nothing changes.
    expect(tolerantGraph(100, 90, 0.1, 0.05)).toEqual(findGraphParams({ clients: 100, dropoutRate: 0.1, corruptRate: 0.05 }));
    // An impossible configured rate still fails, with the finder's message.
    expect(() => tolerantGraph(20, 2, 0.6, 0.05)).toThrow();
  });

  it('refuses per-client noise too narrow for the continuous accounting of the discrete sum (KLS21 τ)', () => {
    // τ = 10·Σ_{k<n} exp(−2π²σ²k/(k+1)): n = 2, σ = 1 gives 10·e^{−π²}.
    expect(distributedGaussianTau(1, 2)).toBeCloseTo(10 * Math.exp(-(Math.PI ** 2)), 15);
    expect(distributedGaussianTau(1, 3)).toBeCloseTo(10 * (Math.exp(-(Math.PI ** 2)) + Math.exp((-2 * Math.PI ** 2 * 2) / 3)), 15);
    const opts = { clients: 20, minSurvivors: 18, dim: 1000, clipNorm: 1, wrapProbability: 1e-9, noiseMultiplier: 0.01 };
    // 12 bits: σ ≈ 0.7 quantisation steps, τ·d ≈ 1e-1 → refused with what to change; 14 bits: σ ≈ 2.8, accepted.
    expect(() => chooseEncoding({ ...opts, bits: 12 })).toThrow(/too narrow.*raise secagg\.bits/);
    const ok = chooseEncoding({ ...opts, bits: 14 });
    const sigma = ok.noiseStddev / ok.gamma;
    expect(sigma).toBeGreaterThan(2);
    expect(distributedGaussianTau(sigma, 20) * 1000).toBeLessThanOrEqual(1e-12);
  });

  it('validates the secagg config with the path of the problem', () => {
    expect(() => config({ secagg: { enabled: true } })).toThrow(/secagg\.clipNorm/);
    expect(() => config({ secagg: { enabled: false }, dp: { mode: 'distributed', noiseMultiplier: 1, clipNorm: 1 } })).toThrow(/secagg\.enabled/);
    expect(() => config({ secagg: { enabled: true, clipNorm: 1, bits: 4 } })).toThrow(/bits/);
    // Local noise is never added on the SecAgg path: the config must not let the ledger claim it.
    expect(() => config({ dp: { mode: 'local', noiseMultiplier: 1, clipNorm: 1 } })).toThrow(/'local' DP with secure aggregation/);
  });
});
