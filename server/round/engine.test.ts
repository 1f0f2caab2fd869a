/**
 * Round engine over the in-memory transport with the real client engine and a real SQLite store.
 * The client task here returns fixed deltas (a stand-in for training, which these tests are not about)
 * so the expected global model can be computed exactly.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientEngine, type ClientTask, type FitResult } from '../../client/engine/index.ts';
import { initialWeights, weightsChecksum, type ModelSpec } from '../../shared/model/index.ts';
import type { Challenge, ErrorMessage, ServerMessage } from '../../shared/protocol/index.ts';
import { ed25519KeyPair } from '../../shared/crypto/ed25519.ts';
import { signedHello } from '../../shared/identity/index.ts';
import { seededRng } from '../../shared/random.ts';
import { ManualClock } from '../../shared/clock.ts';
import { drive, settle } from '../../test/support/drive.ts';
import { testIdentity } from '../../test/support/identity.ts';
import { CohortStore } from '../store/index.ts';
import { MemoryServerTransport, type MemoryClientEnd } from '../transport/memory.ts';
import { parseJobConfig, type JobConfigInput } from './config.ts';
import { RoundEngine, type RoundSummary } from './engine.ts';

const MODEL: ModelSpec = { zoo: 'logreg', inputShape: [4], numClasses: 3 }; // d = 4*3 + 3 = 15
const DIM = 15;

/** Client i always proposes delta_j = (i+1) * 0.01 * (j+1) with n_i = 10 * (i+1) examples. */
class FixedTask implements ClientTask {
  calls = 0;
  onFit?: () => void | Promise<void>;
  constructor(readonly index: number) {}
  get numExamples() {
    return 10 * (this.index + 1);
  }
  delta(): Float32Array {
    return Float32Array.from({ length: DIM }, (_, j) => (this.index + 1) * 0.01 * (j + 1));
  }
  async fit(): Promise<FitResult> {
    this.calls++;
    await this.onFit?.();
    return { delta: this.delta(), numExamples: this.numExamples, metrics: { loss: 1 / (this.index + 1), accuracy: 0.5 } };
  }
  async evaluate() {
    return { numExamples: 5, loss: 0.25, accuracy: 0.8 };
  }
}

interface Harness {
  clock: ManualClock;
  engine: RoundEngine;
  store: CohortStore;
  transport: MemoryServerTransport;
  clients: { engine: ClientEngine; end: MemoryClientEnd; task: FixedTask }[];
  dataDir: string;
}

const open: Harness[] = [];
afterEach(async () => {
  for (const h of open.splice(0)) {
    await h.engine.shutdown();
    h.store.close();
  }
});

function config(overrides: Partial<JobConfigInput> = {}) {
  return parseJobConfig({
    id: 'job',
    model: MODEL,
    rounds: 2,
    sampling: { mode: 'fixed', cohortSize: 5 },
    minClients: 5,
    minSurvivors: 3,
    evaluation: { every: 0 },
    timeouts: { trainMs: 5_000, retryDelayMs: 10 },
    ...overrides,
  });
}

async function harness(cfg = config(), nClients = 5, dataDir = mkdtempSync(join(tmpdir(), 'cohort-engine-'))): Promise<Harness> {
  const store = CohortStore.open(dataDir);
  const transport = new MemoryServerTransport();
  // Every deadline runs on a manual clock: `drive` jumps to the next timer only when nothing else can happen.
  const clock = new ManualClock();
  const engine = new RoundEngine({ config: cfg, store, transport, rng: seededRng(7), clock });
  await engine.start();
  const clients = Array.from({ length: nClients }, (_, i) => {
    const task = new FixedTask(i);
    const end = transport.createClient();
    const client = new ClientEngine({ clientId: `c${i}`, task, transport: end, clock, identity: testIdentity(`c${i}`) });
    client.start();
    return { engine: client, end, task };
  });
  const h = { clock, engine, store, transport, clients, dataDir };
  open.push(h);
  return h;
}

function expectedAfterRound(old: Float32Array, tasks: FixedTask[]): Float32Array {
  const total = tasks.reduce((s, t) => s + t.numExamples, 0);
  return old.map((w, j) => w + tasks.reduce((s, t) => s + t.numExamples * t.delta()[j], 0) / total);
}

function nextRound(h: Harness): Promise<RoundSummary> {
  return drive(h.clock, new Promise((resolve) => h.engine.once('round', resolve)));
}

const finished = (h: Harness) => drive(h.clock, h.engine.whenFinished());

describe('round engine (in-memory transport)', () => {
  it('runs a job to completion: each round is the example-weighted mean of the deltas', async () => {
    const h = await harness();
    const w0 = initialWeights(MODEL, 0).weights;
    const summary = await finished(h);
    expect(summary.status).toBe('completed');
    expect(summary.rounds).toBe(2);
    const tasks = h.clients.map((c) => c.task);
    const expected = expectedAfterRound(expectedAfterRound(w0, tasks), tasks);
    const got = h.engine.globalWeights;
    for (let j = 0; j < DIM; j++) expect(got[j]).toBeCloseTo(expected[j], 6);
    const rounds = h.store.listRounds('job');
    expect(rounds.map((r) => [r.round, r.cohortSize, r.survivors, r.numExamples])).toEqual([
      [1, 5, 5, 150],
      [2, 5, 5, 150],
    ]);
    // Example-weighted training loss: sum(n_i * 1/(i+1)) / 150 = 50/150.
    expect(rounds[0].trainLoss).toBeCloseTo(50 / 150, 9);
    expect(h.store.latestCheckpoint('job')!.checksum).toBe(weightsChecksum(got));
    expect(h.store.getJob('job')!.status).toBe('completed');
    const ends = await drive(h.clock, Promise.all(h.clients.map((c) => c.engine.whenJobEnds())));
    expect(ends.every((e) => e.status === 'completed' && e.rounds === 2)).toBe(true);
  });

  it('completes a round without a client that disconnects mid-training', async () => {
    const h = await harness(config({ rounds: 1 }));
    const w0 = h.engine.globalWeights;
    const quitter = h.clients[2];
    quitter.task.onFit = () => quitter.end.drop('network lost');
    const s = await nextRound(h);
    expect(s.record).toMatchObject({ cohortSize: 5, survivors: 4, dropouts: 1 });
    const survivors = h.clients.filter((c) => c !== quitter).map((c) => c.task);
    const expected = expectedAfterRound(w0, survivors);
    const got = h.engine.globalWeights;
    for (let j = 0; j < DIM; j++) expect(Math.abs(got[j] - expected[j])).toBeLessThan(1e-6);
  });

  it('aborts a round with too few survivors, publishes nothing, and retries it', async () => {
    const h = await harness(config({ rounds: 1, maxAttemptsPerRound: 2 }));
    const w0 = h.engine.globalWeights;
    for (const c of h.clients.slice(0, 3)) c.task.onFit = () => c.end.drop();
    const aborted = new Promise((resolve) => h.engine.once('aborted', resolve));
    expect(await drive(h.clock, aborted)).toMatchObject({ round: 1, attempt: 1 });
    expect(h.store.latestCheckpoint('job')).toBeUndefined();
    expect(h.store.listRoundAttempts('job')).toHaveLength(1);
    expect(h.engine.globalWeights).toEqual(w0);
    // The dropped clients come back; the retried round succeeds.
    for (const c of h.clients.slice(0, 3)) {
      c.task.onFit = undefined;
      c.end.connect();
    }
    const summary = await finished(h);
    expect(summary).toMatchObject({ status: 'completed', rounds: 1 });
    expect(h.store.listRounds('job')).toHaveLength(1);
  });

  it('fails the job after maxAttemptsPerRound aborted attempts', async () => {
    const h = await harness(config({ rounds: 1, maxAttemptsPerRound: 2, minClients: 3, sampling: { mode: 'fixed', cohortSize: 5 } }));
    for (const c of h.clients) c.task.onFit = () => Promise.reject(new Error('disk full'));
    const summary = await finished(h);
    expect(summary.status).toBe('failed');
    expect(summary.reason).toMatch(/aborted 2 times/);
    expect(h.store.getJob('job')!.status).toBe('failed');
    expect(h.store.listRoundAttempts('job')).toHaveLength(2);
  });

  it('treats a silent client as a dropout at the training deadline', async () => {
    const h = await harness(config({ rounds: 1 })); // trainMs 5,000 of manual time
    h.clients[4].task.onFit = () => new Promise(() => {}); // never finishes
    const s = await nextRound(h);
    expect(s.record).toMatchObject({ cohortSize: 5, survivors: 4, dropouts: 1 });
  });

  it('resumes after a restart at the next round from the identical model', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cohort-resume-'));
    const cfg = config({ rounds: 3 });
    const first = await harness(cfg, 5, dataDir);
    await nextRound(first);
    await first.engine.shutdown();
    const afterRound1 = first.store.latestCheckpoint('job')!;
    first.store.close();
    open.splice(open.indexOf(first), 1);
    expect(afterRound1.round).toBe(1);

    const second = await harness(cfg, 5, dataDir);
    expect(second.engine.lastCommittedRound).toBe(1);
    expect(second.engine.globalChecksum).toBe(afterRound1.checksum);
    const s = await nextRound(second);
    expect(s.round).toBe(2);
    const expected = expectedAfterRound(afterRound1.weights, second.clients.map((c) => c.task));
    const got = second.engine.globalWeights;
    for (let j = 0; j < DIM; j++) expect(Math.abs(got[j] - expected[j])).toBeLessThan(1e-6);
  });

  it('refuses to resume a job id with a different config', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cohort-cfg-'));
    const store = CohortStore.open(dataDir);
    await new RoundEngine({ config: config(), store, transport: new MemoryServerTransport() }).start();
    const other = new RoundEngine({ config: config({ rounds: 9 }), store, transport: new MemoryServerTransport() });
    await expect(other.start()).rejects.toMatchObject({ code: 'CONFIG_CHANGED' });
    store.close();
  });

  it('samples Poisson cohorts of varying size from the eligible clients', async () => {
    const h = await harness(
      config({ rounds: 6, sampling: { mode: 'poisson', rate: 0.5 }, minClients: 1, minSurvivors: 1 }),
      12,
    );
    await finished(h);
    const sizes = h.store.listRounds('job').map((r) => r.cohortSize);
    expect(sizes).toHaveLength(6);
    expect(sizes.every((n) => n >= 1 && n <= 12)).toBe(true);
    expect(new Set(sizes).size).toBeGreaterThan(1);
  });

  it('runs federated evaluation every k rounds and records the weighted mean', async () => {
    const h = await harness(config({ rounds: 2, evaluation: { every: 1 } }));
    const s = await nextRound(h);
    expect(s.evaluation).toEqual({ kind: 'federated', loss: 0.25, accuracy: 0.8, numExamples: 25, clients: 5 });
    await finished(h);
    expect(h.store.listRounds('job').map((r) => r.evaluation?.accuracy)).toEqual([0.8, 0.8]);
  });
});

describe('round engine rejects bad input and stays intact', () => {
  /** Talks to the engine directly through a raw in-memory end, capturing its replies. */
  async function rawClient(h: Harness, clientId: string) {
    const end = h.transport.createClient();
    const inbox: ServerMessage[] = [];
    end.start({ onConnect() {}, onDisconnect() {}, onMessage: (m) => inbox.push(m) });
    await tick();
    // Hello answers the connection's challenge, signed by a key of this client's own.
    const challenge = inbox.find((m): m is Challenge => m.type === 'challenge')!;
    end.send(signedHello(ed25519KeyPair(), challenge, clientId, { numExamples: 1 }));
    await tick();
    return { end, inbox, errors: () => inbox.filter((m): m is ErrorMessage => m.type === 'error').map((m) => m.code) };
  }
  const tick = () => settle();

  it('rejects wrong lengths, strangers, duplicates, NaN, unknown jobs and pre-hello messages', async () => {
    const h = await harness(config({ rounds: 1, sampling: { mode: 'fixed', cohortSize: 2 }, minClients: 2, minSurvivors: 2 }), 0);
    const a = await rawClient(h, 'a');
    const b = await rawClient(h, 'b');
    await tick();
    const trainA = a.inbox.find((m) => m.type === 'train');
    expect(trainA).toBeDefined();
    const w0 = h.engine.globalWeights;
    const good = (vector: Float32Array) => ({ type: 'update' as const, jobId: 'job', round: 1, numExamples: 3, metrics: {}, vector });

    a.end.send(good(new Float32Array(DIM + 1))); // wrong length
    a.end.send({ ...good(new Float32Array(DIM)), round: 2 }); // not in round 2
    a.end.send({ ...good(new Float32Array(DIM)), jobId: 'other' }); // unknown job
    a.end.send(good(new Float32Array(DIM).fill(NaN))); // non-finite
    a.end.send({ ...good(new Float32Array(DIM)), numExamples: -1 }); // schema
    a.end.send({ type: 'launch', jobId: 'job' } as never); // unknown type
    const stranger = h.transport.createClient();
    const strangerInbox: ServerMessage[] = [];
    stranger.start({ onConnect() {}, onDisconnect() {}, onMessage: (m) => strangerInbox.push(m) });
    await tick();
    stranger.send(good(new Float32Array(DIM))); // no hello
    await tick();
    // (transport-level rejections arrive before engine-level ones, so compare as sets)
    expect(a.errors().sort()).toEqual(['BAD_SCHEMA', 'NON_FINITE', 'NOT_IN_ROUND', 'UNKNOWN_JOB', 'UNKNOWN_TYPE', 'WRONG_LENGTH']);
    expect(strangerInbox.map((m) => m.type)).toEqual(['challenge', 'error']);
    expect(strangerInbox.map((m) => (m as ErrorMessage).code)[1]).toBe('NOT_REGISTERED');
    // None of it touched the round: still collecting, nothing committed.
    expect(h.engine.status).toBe('training');
    expect(h.store.latestCheckpoint('job')).toBeUndefined();

    const deltaA = new Float32Array(DIM).fill(0.5);
    const deltaB = new Float32Array(DIM).fill(-0.25);
    a.end.send({ ...good(deltaA), numExamples: 1 });
    await tick();
    a.end.send({ ...good(deltaA), numExamples: 1 }); // replay
    await tick();
    expect(a.errors().at(-1)).toBe('DUPLICATE');
    const done = h.engine.whenFinished();
    b.end.send({ ...good(deltaB), numExamples: 3 });
    await drive(h.clock, done);
    // (1 * 0.5 + 3 * -0.25) / 4 = -0.0625
    const got = h.engine.globalWeights;
    for (let j = 0; j < DIM; j++) expect(got[j]).toBeCloseTo(w0[j] - 0.0625, 6);
    expect(h.store.listRounds('job')).toHaveLength(1);
  });

  it('refuses a client speaking another protocol version', async () => {
    const h = await harness(config(), 0);
    const end = h.transport.createClient();
    const inbox: ServerMessage[] = [];
    let dropped = false;
    end.start({ onConnect() {}, onDisconnect: () => (dropped = true), onMessage: (m) => inbox.push(m) });
    await tick();
    const challenge = inbox.shift() as Challenge;
    expect(challenge.type).toBe('challenge');
    end.send(signedHello(ed25519KeyPair(), { ...challenge, protocolVersion: 99 }, 'future'));
    await settle();
    expect(dropped).toBe(false); // the error goes out first…
    h.clock.advance(100); // …and the connection closes a moment later
    await settle();
    expect(inbox).toMatchObject([{ type: 'error', code: 'VERSION_MISMATCH' }]);
    expect(dropped).toBe(true);
    expect(h.engine.connectedClients).toBe(0);
  });
});
