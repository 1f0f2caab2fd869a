/**
 * The privacy audit: each accounting claim of the README's "Differential privacy" section as an
 * executable check, by mode × sampling × abort point. Real round engines and client engines over the
 * in-memory transport, a real SQLite store, the manual clock; clients return fixed updates.
 *
 * Each claim is checked against an accountant built here from first principles (the DP events the
 * claim says a release is), never against the ledger's own arithmetic: if a change makes the ledger
 * account a release differently, or not at all, a test here fails.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientEngine, type ClientTask, type FitResult } from '../client/engine/index.ts';
import { parseJobConfig, type JobConfigInput } from '../server/round/config.ts';
import { RoundEngine } from '../server/round/engine.ts';
import { CohortStore, type LedgerRow } from '../server/store/index.ts';
import { MemoryServerTransport } from '../server/transport/memory.ts';
import type { Failpoint } from '../server/failpoints.ts';
import { ManualClock } from '../shared/clock.ts';
import type { ModelSpec } from '../shared/model/index.ts';
import {
  DEFAULT_ORDERS,
  DpEventSchema,
  gaussianEvent,
  poissonSampledEvent,
  RdpAccountant,
  sampledWithoutReplacementEvent,
  type DpEvent,
} from '../shared/privacy/index.ts';
import { epsilonWithShortDraws, shortDrawProbability } from '../shared/privacy/conditioning.ts';
import { seededRng } from '../shared/random.ts';
import { drive } from './support/drive.ts';

const MODEL: ModelSpec = { zoo: 'logreg', inputShape: [20], numClasses: 5 }; // d = 105
const DIM = 105;
const DELTA = 1e-5;

/** A fixed small update; `hang` never answers (the attempt then aborts at its deadline). */
class FixedTask implements ClientTask {
  constructor(private readonly index: number, private readonly hang = false) {}
  get numExamples() {
    return 10;
  }
  async fit(): Promise<FitResult> {
    if (this.hang) return new Promise<FitResult>(() => {});
    return { delta: Float32Array.from({ length: DIM }, (_, j) => 0.01 * Math.sin(j + this.index)), numExamples: 10, metrics: {} };
  }
  async evaluate() {
    return { numExamples: 1, loss: 1, accuracy: 1 };
  }
}

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function config(overrides: Partial<JobConfigInput>) {
  return parseJobConfig({
    id: 'audit',
    model: MODEL,
    rounds: 3,
    sampling: { mode: 'fixed', cohortSize: 4 },
    minClients: 4,
    maxAttemptsPerRound: 3,
    timeouts: { trainMs: 1_000, retryDelayMs: 5 },
    ...overrides,
  });
}

async function job(cfg: ReturnType<typeof config>, clients: number, opts: { hang?: number[]; failpoint?: Failpoint } = {}) {
  const store = CohortStore.open(mkdtempSync(join(tmpdir(), 'cohort-audit-')));
  const transport = new MemoryServerTransport();
  const clock = new ManualClock();
  const engine = new RoundEngine({ config: cfg, store, transport, rng: seededRng(11), clock, ...(opts.failpoint ? { failpoint: opts.failpoint } : {}) });
  cleanup.push(() => store.close());
  cleanup.push(() => engine.shutdown());
  await engine.start();
  for (let i = 0; i < clients; i++) {
    new ClientEngine({ clientId: `c${i}`, task: new FixedTask(i, opts.hang?.includes(i)), transport: transport.createClient() }).start();
  }
  const summary = await drive(clock, engine.whenFinished());
  return { summary, ledger: store.listLedger(cfg.id), attempts: store.listRoundAttempts(cfg.id), rounds: store.listRounds(cfg.id) };
}

/** ε at δ of events composed under a relation. */
function epsilonOf(events: DpEvent[], relation: 'addOrRemove' | 'replaceOne', mass = 0): number {
  const acc = new RdpAccountant(DEFAULT_ORDERS, { neighboringRelation: relation });
  for (const e of events) acc.compose(e);
  return epsilonWithShortDraws(DEFAULT_ORDERS, acc.rdp(), DELTA, mass).epsilon;
}

const parsed = (e: unknown) => DpEventSchema.parse(e);
const committed = (ledger: LedgerRow[]) => ledger.filter((r) => r.status === 'committed');

describe('privacy audit: what the README says is accounted, is', () => {
  it('central, fixed cohort: one row per committed round, sampled without replacement at z/2 (replace-one); no guarantee against the coordinator', async () => {
    const z = 2;
    const { summary, ledger } = await job(config({ dp: { mode: 'central', noiseMultiplier: z, clipNorm: 1 } }), 8);
    expect(summary.status).toBe('completed');
    expect(ledger.map((r) => [r.round, r.status])).toEqual([
      [1, 'committed'],
      [2, 'committed'],
      [3, 'committed'],
    ]);
    const events: DpEvent[] = [];
    for (const row of ledger) {
      // The population is whoever was connected when the round started.
      const event = sampledWithoutReplacementEvent(4, row.population, gaussianEvent(z / 2));
      events.push(event);
      expect(parsed(row.event)).toEqual(event);
      expect(row.coordinatorEvent).toBeNull();
      expect(row.epsilonCoordinator).toBeNull();
      expect(row.audience).toBe('published');
      expect(row.epsilon).toBeCloseTo(epsilonOf(events, 'replaceOne'), 9);
    }
  });

  it('central, Poisson: every draw runs as drawn — short and empty cohorts included — so ε is exactly the sampled Gaussian at q', async () => {
    const q = 0.15;
    // 8 clients at q = 0.15: most draws are below minClients 2, many are empty (0.85^8 ≈ 0.27).
    const cfg = config({ sampling: { mode: 'poisson', rate: q }, minClients: 2, minSurvivors: 2, rounds: 12, dp: { mode: 'central', noiseMultiplier: 1, clipNorm: 1 } });
    const { summary, ledger, rounds, attempts } = await job(cfg, 8);
    expect(summary.status).toBe('completed');
    expect(attempts).toEqual([]); // nothing redrawn, nothing aborted for too few survivors
    expect(rounds.some((r) => r.cohortSize < 2)).toBe(true);
    expect(rounds.some((r) => r.cohortSize === 0)).toBe(true);
    const event = poissonSampledEvent(q, gaussianEvent(1));
    for (const [k, row] of ledger.entries()) {
      expect(row.shortDrawProbability).toBe(0);
      expect(parsed(row.event)).toEqual(event);
      expect(row.epsilon).toBeCloseTo(epsilonOf(Array(k + 1).fill(event), 'addOrRemove'), 12);
    }
  });

  it('central + SecAgg, Poisson: short draws are redrawn (SecAgg needs members), so the first draw waits for a population where that costs < 1% of δ', async () => {
    const q = 0.25;
    const cfg = config({
      sampling: { mode: 'poisson', rate: q },
      minClients: 10,
      secagg: { enabled: true, bits: 20, phaseTimeoutMs: 2_000 },
      dp: { mode: 'central', noiseMultiplier: 1, clipNorm: 1 },
      timeouts: { trainMs: 1_000, retryDelayMs: 5, waitForClientsMs: 5_000 },
    });
    // N = 40: a draw from the 39 others falls short of 10 with probability ≈ 0.4: no round may run.
    const { summary, ledger } = await job(cfg, 40);
    expect(summary.status).toBe('failed');
    expect(summary.reason).toMatch(/from 40 clients falls short of minClients 10 with probability 0\.4.*waiting for more clients/);
    expect(ledger).toEqual([]);
  });

  it('distributed, Poisson: the short-draw probability of every draw enters the consumers\' δ (and their ε never exceeds the coordinator\'s)', async () => {
    const q = 0.8;
    const cfg = config({
      rounds: 2,
      sampling: { mode: 'poisson', rate: q },
      minClients: 4,
      minSurvivors: 4,
      secagg: { enabled: true, bits: 20, phaseTimeoutMs: 2_000 },
      dp: { mode: 'distributed', noiseMultiplier: 1, clipNorm: 1 },
    });
    const { summary, ledger } = await job(cfg, 12);
    expect(summary.status).toBe('completed');
    const rows = committed(ledger);
    expect(rows).toHaveLength(2);
    const published: DpEvent[] = [];
    let mass = 0;
    const coordinator: DpEvent[] = ledger.filter((r) => r.coordinatorEvent !== null).map((r) => parsed(r.coordinatorEvent));
    for (const row of rows) {
      const p = shortDrawProbability(row.population, q, 4);
      expect(p).toBeGreaterThan(0);
      expect(row.shortDrawProbability).toBe(p);
      mass += p;
      published.push(parsed(row.event));
    }
    const last = rows.at(-1)!;
    const withDraws = epsilonOf(published, 'addOrRemove', mass);
    expect(withDraws).toBeGreaterThan(epsilonOf(published, 'addOrRemove'));
    expect(last.epsilonPublished).toBeCloseTo(Math.min(withDraws, epsilonOf(coordinator, 'replaceOne')), 9);
  });

  it('central: an attempt that aborts after clients sent their updates releases nothing to anyone it protects — no row', async () => {
    const cfg = config({ rounds: 1, sampling: { mode: 'fixed', cohortSize: 4 }, minClients: 4, dp: { mode: 'central', noiseMultiplier: 1, clipNorm: 1 } });
    const { summary, ledger, attempts } = await job(cfg, 4, { hang: [3] });
    expect(summary.status).toBe('failed');
    expect(attempts).toHaveLength(3);
    expect(ledger).toEqual([]);
  });

  it('local: every attempt is a release to the coordinator, replace-one (z/2), written ahead — aborted ones included', async () => {
    const z = 3;
    const cfg = config({ rounds: 1, dp: { mode: 'local', noiseMultiplier: z, clipNorm: 1 } });
    const { summary, ledger, attempts } = await job(cfg, 4, { hang: [2] });
    expect(summary.status).toBe('failed');
    expect(attempts).toHaveLength(3);
    // One row per attempt, each with the coordinator's event and nothing published.
    expect(ledger.map((r) => [r.status, r.attempt])).toEqual([
      ['attempt', 1],
      ['attempt', 2],
      ['attempt', 3],
    ]);
    const event = gaussianEvent(z / 2);
    for (const [k, row] of ledger.entries()) {
      expect(row.event).toBeNull();
      expect(parsed(row.coordinatorEvent)).toEqual(event);
      expect(row.audience).toBe('coordinator');
      expect(row.epsilonCoordinator).toBeCloseTo(epsilonOf(Array(k + 1).fill(event), 'replaceOne'), 9);
      expect(row.epsilon).toBe(row.epsilonCoordinator);
    }
  });

  it('local: a committed round is accounted once against each audience', async () => {
    const z = 3;
    const { summary, ledger } = await job(config({ rounds: 2, dp: { mode: 'local', noiseMultiplier: z, clipNorm: 1 } }), 4);
    expect(summary.status).toBe('completed');
    const event = gaussianEvent(z / 2);
    expect(ledger.map((r) => r.status)).toEqual(['attempt', 'committed', 'attempt', 'committed']);
    const last = ledger.at(-1)!;
    expect(last.epsilonCoordinator).toBeCloseTo(epsilonOf([event, event], 'replaceOne'), 9);
    expect(last.epsilonPublished).toBeCloseTo(epsilonOf([event, event], 'replaceOne'), 9);
    expect(last.coordinatorEvent).toBeNull(); // written ahead by the attempt row
    expect(parsed(last.event)).toEqual(event);
  });

  describe('distributed (SecAgg + discrete Gaussian)', () => {
    const secagg = { enabled: true, bits: 20, phaseTimeoutMs: 2_000 };
    const dp = { mode: 'distributed' as const, noiseMultiplier: 1, clipNorm: 1 };

    it('accounts the sum of discrete Gaussians (KLS21): unsampled replace-one against the coordinator, once per attempt that unmasked', async () => {
      const cfg = config({ rounds: 2, sampling: { mode: 'poisson', rate: 1 }, minClients: 5, minSurvivors: 5, secagg, dp: { ...dp, budget: { epsilon: 1e6, delta: DELTA, against: 'published' } } });
      const { summary, ledger } = await job(cfg, 6);
      expect(summary.status).toBe('completed');
      expect(ledger.map((r) => r.status)).toEqual(['attempt', 'committed', 'attempt', 'committed']);
      const coordinatorEvents = ledger.filter((r) => r.coordinatorEvent !== null).map((r) => parsed(r.coordinatorEvent));
      const publishedEvents = committed(ledger).map((r) => parsed(r.event));
      expect(coordinatorEvents).toHaveLength(2);
      for (const e of coordinatorEvents) expect(e.kind).toBe('distributedDiscreteGaussian');
      for (const e of publishedEvents) expect(e).toMatchObject({ kind: 'poissonSampled', samplingProbability: 1, event: { kind: 'distributedDiscreteGaussian' } });
      const last = ledger.at(-1)!;
      expect(last.epsilonCoordinator).toBeCloseTo(epsilonOf(coordinatorEvents, 'replaceOne'), 9);
      expect(last.epsilonPublished).toBeCloseTo(Math.min(epsilonOf(publishedEvents, 'addOrRemove'), last.epsilonCoordinator!), 9);
      expect(last.epsilonPublished!).toBeLessThanOrEqual(last.epsilonCoordinator!);
      // This job's budget is against model consumers (the default would be the coordinator, the stricter).
      expect(last.audience).toBe('published');
      expect(last.epsilon).toBe(last.epsilonPublished);
      expect(last.mechanism).toBe('distributed_discrete_gaussian');
    });

    it('an attempt that aborts after the unmasking request is accounted against the coordinator; one that aborts before, is not', async () => {
      // Round 1: abort after the sum is unmasked (the commit fails once); round 2: abort while keys are shared (once).
      const pending = new Set(['commit:before@1', 'secagg:share@2']);
      const failpoint: Failpoint = (name, round) => {
        if (pending.delete(`${name}@${round}`)) throw new Error(`injected fault at ${name}`);
      };
      const cfg = config({ rounds: 2, sampling: { mode: 'fixed', cohortSize: 6 }, minClients: 6, minSurvivors: 5, secagg, dp });
      const { summary, ledger, attempts } = await job(cfg, 6, { failpoint });
      expect(summary.status).toBe('completed');
      expect(attempts.map((a) => a.round)).toEqual([1, 2]);
      // Round 1: two attempts unmasked (the aborted one and the committed one); round 2: only the committed one.
      expect(ledger.map((r) => [r.round, r.status, r.attempt])).toEqual([
        [1, 'attempt', 1],
        [1, 'attempt', 2],
        [1, 'committed', null],
        [2, 'attempt', 2],
        [2, 'committed', null],
      ]);
      const coordinatorEvents = ledger.filter((r) => r.coordinatorEvent !== null).map((r) => parsed(r.coordinatorEvent));
      expect(ledger.at(-1)!.epsilonCoordinator).toBeCloseTo(epsilonOf(coordinatorEvents, 'replaceOne'), 9);
      expect(ledger.at(-1)!.audience).toBe('coordinator'); // the default in distributed mode
      expect(ledger.at(-1)!.epsilon).toBe(ledger.at(-1)!.epsilonCoordinator);
      // Fixed cohorts claim no amplification for the discrete-Gaussian sum: the published event is the coordinator's.
      expect(parsed(committed(ledger)[0].event)).toEqual(coordinatorEvents[0]);
    });
  });

  it('federated evaluation of a DP job is refused unless its un-noised metrics are acknowledged', () => {
    expect(() => config({ evaluation: { every: 1 }, dp: { mode: 'central', noiseMultiplier: 1, clipNorm: 1 } })).toThrow(/unaccountedMetrics/);
    expect(config({ dp: { mode: 'central', noiseMultiplier: 1, clipNorm: 1 } }).evaluation.every).toBe(0);
    expect(config({ evaluation: { every: 1, unaccountedMetrics: true }, dp: { mode: 'central', noiseMultiplier: 1, clipNorm: 1 } }).evaluation.every).toBe(1);
    expect(config({}).evaluation.every).toBe(1);
  });
});
