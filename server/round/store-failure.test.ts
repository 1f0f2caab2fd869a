/**
 * The store failing under a running job: a full disk (SQLite's own page limit, SQLITE_FULL) and a
 * lock held by another process (SQLITE_BUSY). The commit's transaction rolls back, nothing half-written
 * stays, no model is published, no ε is spent, and the job *pauses* with the store's error instead of
 * retrying in a loop; `resume()` after the cause is gone finishes the job. Real SQLite files and the
 * real client engine; the in-memory transport (these tests are about the store, not sockets).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientEngine, type ClientTask, type FitResult } from '../../client/engine/index.ts';
import type { ModelSpec } from '../../shared/model/index.ts';
import { seededRng } from '../../shared/random.ts';
import { ManualClock } from '../../shared/clock.ts';
import { drive } from '../../test/support/drive.ts';
import { CohortStore } from '../store/index.ts';
import { MemoryServerTransport } from '../transport/memory.ts';
import { parseJobConfig, type JobConfigInput } from './config.ts';
import { RoundEngine } from './engine.ts';
import { testIdentity } from '../../test/support/identity.ts';

// d = 784·10 + 10: each checkpoint needs fresh pages, so a capped file cannot take one more.
const MODEL: ModelSpec = { zoo: 'logreg', inputShape: [784], numClasses: 10 };
const DIM = 7850;

class FixedTask implements ClientTask {
  constructor(readonly index: number) {}
  get numExamples() {
    return 10;
  }
  async fit(): Promise<FitResult> {
    const delta = new Float32Array(DIM).fill(0.001 * (this.index + 1));
    return { delta, numExamples: 10, metrics: { loss: 1 } };
  }
  async evaluate() {
    return { numExamples: 5, loss: 0.5, accuracy: 0.5 };
  }
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function jobConfig(overrides: Partial<JobConfigInput> = {}) {
  return parseJobConfig({
    id: 'job',
    model: MODEL,
    rounds: 3,
    sampling: { mode: 'fixed', cohortSize: 3 },
    minClients: 3,
    evaluation: { every: 0 },
    timeouts: { trainMs: 10_000, retryDelayMs: 5 },
    ...overrides,
  });
}

async function run(overrides: Partial<JobConfigInput>, busyTimeoutMs?: number) {
  const dataDir = mkdtempSync(join(tmpdir(), 'cohort-store-failure-'));
  const config = jobConfig(overrides);
  const store = CohortStore.open(dataDir, { busyTimeoutMs });
  const transport = new MemoryServerTransport();
  const clock = new ManualClock();
  const engine = new RoundEngine({ config, store, transport, rng: seededRng(3), clock });
  const aborted: string[] = [];
  engine.on('aborted', (a) => aborted.push(a.reason));
  clocks.set(engine, clock);
  await engine.start();
  const clients = [0, 1, 2].map((i) => new ClientEngine({ clientId: `c${i}`, task: new FixedTask(i), transport: transport.createClient(), identity: testIdentity(`c${i}`) }));
  for (const c of clients) c.start();
  cleanup.push(() => store.close(), () => engine.shutdown(), () => clients.forEach((c) => c.stop()));
  return { engine, store, dataDir, aborted, clock };
}

const clocks = new WeakMap<RoundEngine, ManualClock>();
function nextEvent<T>(engine: RoundEngine, name: 'paused' | 'round'): Promise<T> {
  return drive(clocks.get(engine)!, new Promise((resolve) => engine.once(name, resolve as never)));
}
const finished = (engine: RoundEngine) => drive(clocks.get(engine)!, engine.whenFinished());

function consistency(dataDir: string) {
  const db = new Database(join(dataDir, 'cohort.db'), { readonly: true });
  try {
    return {
      integrity: db.pragma('integrity_check', { simple: true }),
      rounds: (db.prepare('SELECT round FROM rounds ORDER BY round').all() as { round: number }[]).map((r) => r.round),
      checkpoints: (db.prepare('SELECT round FROM checkpoints ORDER BY round').all() as { round: number }[]).map((r) => r.round),
      ledger: (db.prepare('SELECT round FROM privacy_ledger ORDER BY round').all() as { round: number }[]).map((r) => r.round),
    };
  } finally {
    db.close();
  }
}

describe('a failing store pauses the job instead of looping', () => {
  it('disk full on commit: the transaction rolls back, the job pauses with the error, resume finishes it', async () => {
    const { engine, store, dataDir, aborted, clock } = await run({});
    await nextEvent(engine, 'round');
    // Cap the file at its current size: the next checkpoint cannot be written (SQLITE_FULL).
    const db = (store as unknown as { db: Database.Database }).db;
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
    const paused = await nextEvent<{ reason: string }>(engine, 'paused');
    expect(paused.reason).toMatch(/store failed while settling round 2: .*full/);
    expect(engine.status).toBe('paused');
    expect(store.getJob('job')).toMatchObject({ status: 'paused', currentRound: 1 });
    expect(engine.lastCommittedRound).toBe(1);
    const abortsAtPause = aborted.length;
    // Held, not looping: no new attempt while paused, however long.
    clock.advance(3_600_000);
    expect(aborted.length).toBe(abortsAtPause);
    expect(clock.pending).toBe(0);
    expect(consistency(dataDir)).toMatchObject({ integrity: 'ok', rounds: [1], checkpoints: [1] });

    db.pragma('max_page_count = 1073741823');
    expect(engine.resume()).toBe(true);
    const summary = await finished(engine);
    expect(summary).toMatchObject({ status: 'completed', rounds: 3 });
    expect(consistency(dataDir)).toMatchObject({ integrity: 'ok', rounds: [1, 2, 3], checkpoints: [1, 2, 3] });
  });

  it('SQLite busy (another process holds the write lock): central DP spends no ε for the lost attempt', async () => {
    const { engine, store, dataDir, clock } = await run(
      { dp: { mode: 'central', noiseMultiplier: 1, clipNorm: 1, budget: { epsilon: 1e6, delta: 1e-5 } } },
      50,
    );
    await nextEvent(engine, 'round');
    const epsilonAfter1 = store.listLedger('job').at(-1)!.epsilon;
    const other = new Database(join(dataDir, 'cohort.db'));
    other.prepare('BEGIN IMMEDIATE').run();
    const paused = await nextEvent<{ reason: string }>(engine, 'paused');
    expect(paused.reason).toMatch(/locked|busy/i);
    expect(store.getJob('job')?.status).toBe('running'); // the lock also keeps the pause from being written…
    other.prepare('ROLLBACK').run();
    other.close();
    expect(consistency(dataDir)).toMatchObject({ integrity: 'ok', rounds: [1], ledger: [1] });
    expect(clock.runNext()).toBe(true); // the engine retries recording the pause…
    expect(store.getJob('job')?.status).toBe('paused'); // …and it takes once the lock is gone

    expect(engine.resume()).toBe(true);
    expect(store.getJob('job')?.status).toBe('running');
    const summary = await finished(engine);
    expect(summary.status).toBe('completed');
    const ledger = store.listLedger('job');
    expect(ledger.map((r) => r.round)).toEqual([1, 2, 3]);
    expect(ledger[0].epsilon).toBe(epsilonAfter1);
    expect(consistency(dataDir)).toMatchObject({ integrity: 'ok', rounds: [1, 2, 3], ledger: [1, 2, 3] });
  });

  it('a restarted coordinator resumes a job it finds paused when asked to (the one-job server does)', async () => {
    const { engine, store, dataDir } = await run({});
    await nextEvent(engine, 'round');
    engine.pause('operator');
    expect(store.getJob('job')).toMatchObject({ status: 'paused', reason: 'operator' });
    await engine.shutdown();
    store.close();

    const again = CohortStore.open(dataDir);
    cleanup.push(() => again.close());
    const cfg = jobConfig();
    const held = new RoundEngine({ config: cfg, store: again, transport: new MemoryServerTransport() });
    await held.start();
    expect(held.status).toBe('paused');
    expect(held.pausedBecause).toBe('operator');
    await held.shutdown();

    const transport = new MemoryServerTransport();
    const clock = new ManualClock();
    const resumed = new RoundEngine({ config: cfg, store: again, transport, resumePaused: true, clock });
    clocks.set(resumed, clock);
    await resumed.start();
    const clients = [0, 1, 2].map((i) => new ClientEngine({ clientId: `c${i}`, task: new FixedTask(i), transport: transport.createClient(), identity: testIdentity(`c${i}`) }));
    for (const c of clients) c.start();
    cleanup.push(() => resumed.shutdown(), () => clients.forEach((c) => c.stop()));
    expect(await finished(resumed)).toMatchObject({ status: 'completed', rounds: 3 });
  });
});
