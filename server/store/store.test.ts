import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CohortStore, SCHEMA_VERSION, type LedgerEntry, type RoundRecord } from './index.ts';
import { MIGRATIONS } from './migrations.ts';
import { codeOf } from '../../shared/testing/errors.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');

let dir: string;
let store: CohortStore;
const opened: CohortStore[] = [];

function open(opts?: Parameters<typeof CohortStore.open>[1]): CohortStore {
  const s = CohortStore.open(dir, opts);
  opened.push(s);
  return s;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cohort-store-'));
  store = open();
});

afterEach(() => {
  for (const s of opened.splice(0)) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});


/** Weights whose bit patterns a lossy round trip would change: -0, a subnormal, float32 max, 1/3. */
function weightsFor(round: number, dim = 64): Float32Array {
  const w = new Float32Array(dim);
  for (let i = 0; i < dim; i++) w[i] = Math.sin(round * 7.1 + i) / 3;
  w[0] = -0;
  w[1] = 1.4e-45 * round;
  w[2] = 3.4028234663852886e38;
  return w;
}

const sha = (w: Float32Array): string => createHash('sha256').update(new Uint8Array(w.buffer, w.byteOffset, w.byteLength)).digest('hex');

function record(round: number): RoundRecord {
  return {
    startedAt: 1_000 * round,
    endedAt: 1_000 * round + 500,
    cohortSize: 10,
    survivors: 9,
    dropouts: 1,
    numExamples: 900 + round,
    trainLoss: 2 / round,
    trainAccuracy: round / 10,
    metrics: { clipFraction: 0.25 },
  };
}

function commit(s: CohortStore, jobId: string, round: number): void {
  const weights = weightsFor(round);
  s.commitRound({ jobId, round, weights, optimizerState: Uint8Array.of(round, 1, 2, 3), checksum: sha(weights), record: record(round) });
}

const bytes = (w: Float32Array): Uint8Array => new Uint8Array(w.buffer, w.byteOffset, w.byteLength);

describe('CohortStore: files and schema', () => {
  it('creates <dataDir>/cohort.db with parent directories, in WAL mode', () => {
    const nested = path.join(dir, 'a', 'b');
    const s = CohortStore.open(nested);
    opened.push(s);
    expect(s.path).toBe(path.join(nested, 'cohort.db'));
    expect(fs.existsSync(s.path)).toBe(true);
    const peek = new Database(s.path, { readonly: true });
    try {
      expect(peek.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(peek.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    } finally {
      peek.close();
    }
  });

  it('reopens an existing database: migrations are idempotent and data survives', () => {
    store.createJob({ id: 'j', config: { a: 1 }, configHash: 'h' });
    commit(store, 'j', 1);
    store.close();
    for (let i = 0; i < 2; i++) {
      const again = open();
      expect(again.getJob('j')?.currentRound).toBe(1);
      expect(again.latestCheckpoint('j')?.round).toBe(1);
      again.close();
    }
  });

  it('migrates a v2 database to v3 (paused/queued statuses) keeping its jobs and the rows that reference them', () => {
    store.close();
    fs.rmSync(path.join(dir, 'cohort.db'));
    const raw = new Database(path.join(dir, 'cohort.db'));
    raw.pragma('journal_mode = WAL');
    raw.pragma('foreign_keys = ON');
    MIGRATIONS[0](raw);
    MIGRATIONS[1](raw);
    raw.pragma('user_version = 2');
    raw.prepare(`INSERT INTO jobs VALUES ('j', '{}', 'h', 'running', NULL, 1, 1, 1)`).run();
    raw.prepare(`INSERT INTO rounds (job_id, round, started_at, ended_at, cohort_size, survivors, dropouts, num_examples, committed_at)
                 VALUES ('j', 1, 1, 2, 3, 3, 0, 30, 2)`).run();
    raw.prepare(`INSERT INTO round_attempts VALUES ('j', 2, 1, 3, 4, 3, 1, 'too few')`).run();
    expect(() => raw.prepare(`UPDATE jobs SET status = 'paused'`).run()).toThrow(/CHECK/);
    raw.close();
    const v3 = open();
    const peek = new Database(path.join(dir, 'cohort.db'), { readonly: true });
    expect(peek.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(peek.pragma('foreign_key_check')).toEqual([]);
    expect(peek.prepare('SELECT COUNT(*) AS n FROM round_attempts').get()).toEqual({ n: 1 });
    peek.close();
    expect(v3.getJob('j')).toMatchObject({ status: 'running', currentRound: 1 });
    expect(v3.listRounds('j').map((r) => r.round)).toEqual([1]);
    v3.setJobStatus('j', 'paused', 'disk full');
    expect(v3.getJob('j')).toMatchObject({ status: 'paused', reason: 'disk full' });
    v3.setJobStatus('j', 'queued');
    expect(v3.getJob('j')?.status).toBe('queued');
  });

  it('migrates a v3 ledger to v4: rows kept, numbered, and given the coordinator event their parameters imply', () => {
    store.close();
    fs.rmSync(path.join(dir, 'cohort.db'));
    const raw = new Database(path.join(dir, 'cohort.db'));
    raw.pragma('journal_mode = WAL');
    for (const m of MIGRATIONS.slice(0, 3)) m(raw);
    raw.pragma('user_version = 3');
    raw.prepare(`INSERT INTO jobs VALUES ('j', '{}', 'h', 'running', NULL, 2, 1, 1)`).run();
    const insertRound = raw.prepare(`INSERT INTO rounds (job_id, round, started_at, ended_at, cohort_size, survivors, dropouts, num_examples, committed_at)
                 VALUES ('j', ?, 1, 2, 3, 3, 0, 30, 2)`);
    const insertLedger = raw.prepare(`INSERT INTO privacy_ledger VALUES ('j', ?, 'local', 'gaussian', 'poisson', 0.1, 10, 3, 3, 4, 1, ?, ?, 1e-5, 3, 'old', 5)`);
    for (const round of [1, 2]) {
      insertRound.run(round);
      insertLedger.run(round, JSON.stringify({ kind: 'gaussian', noiseMultiplier: 4 }), round * 0.5);
    }
    raw.close();
    const v4 = open();
    const rows = v4.listLedger('j');
    expect(rows.map((r) => [r.seq, r.round, r.status, r.attempt, r.epsilon, r.epsilonPublished, r.epsilonCoordinator])).toEqual([
      [1, 1, 'committed', null, 0.5, 0.5, null],
      [2, 2, 'committed', null, 1, 1, null],
    ]);
    expect(rows[0].event).toEqual({ kind: 'gaussian', noiseMultiplier: 4 });
    expect(rows[0].coordinatorEvent).toEqual({ kind: 'gaussian', noiseMultiplier: 2 });
    expect(rows[0].trust).toMatch(/recorded before schema v4/);
    store = v4;
  });

  it('migrates a v6 database to v7: ledger rows (and attempts) kept column for column, evaluations gain health, evaluation rows allowed', () => {
    store.close();
    fs.rmSync(path.join(dir, 'cohort.db'));
    const raw = new Database(path.join(dir, 'cohort.db'));
    raw.pragma('journal_mode = WAL');
    raw.pragma('foreign_keys = OFF');
    for (const m of MIGRATIONS.slice(0, 6)) m(raw);
    raw.pragma('user_version = 6');
    raw.prepare(`INSERT INTO jobs VALUES ('j', '{}', 'h', 'running', NULL, 1, 1, 1)`).run();
    raw.prepare(`INSERT INTO rounds (job_id, round, started_at, ended_at, cohort_size, survivors, dropouts, num_examples, committed_at)
                 VALUES ('j', 1, 1, 2, 3, 3, 0, 30, 2)`).run();
    const ev = JSON.stringify({ kind: 'gaussian', noiseMultiplier: 4 });
    const ins = raw.prepare(`INSERT INTO privacy_ledger VALUES ('j', ?, 1, ?, ?, 'local', 'gaussian', 'fixed', 0.3, 10, 3, 3, 4, 1, NULL, ?, 0, 'coordinator', ?, NULL, ?, 1e-5, 3, 'old', 5)`);
    ins.run(1, 'attempt', 1, ev, 0.4, 0.4);
    ins.run(2, 'committed', null, ev, 0.5, 0.5);
    raw.prepare(`INSERT INTO evaluations (job_id, round, kind, loss, accuracy, num_examples, clients, recorded_at) VALUES ('j', 1, 'federated', 0.5, 0.8, 30, 3, 9)`).run();
    expect(() => ins.run(3, 'evaluation', null, ev, 0.6, 0.6)).toThrow(/CHECK/);
    raw.close();
    const v7 = open();
    expect(v7.listLedger('j').map((r) => [r.seq, r.status, r.attempt, r.epsilon])).toEqual([
      [1, 'attempt', 1, 0.4],
      [2, 'committed', null, 0.5],
    ]);
    expect(v7.listEvaluations('j')).toEqual([{ round: 1, kind: 'federated', loss: 0.5, accuracy: 0.8, numExamples: 30, clients: 3 }]);
    const entry = { ...v7.listLedger('j')[1], event: { kind: 'gaussian', noiseMultiplier: 1 }, coordinatorEvent: null, epsilon: 0.7 };
    v7.recordEvaluation('j', 1, { kind: 'federated', loss: 0.4, accuracy: 0.9, numExamples: 30, clients: 3 }, entry);
    expect(v7.listLedger('j').map((r) => [r.seq, r.status, r.attempt])).toEqual([
      [1, 'attempt', 1],
      [2, 'committed', null],
      [3, 'evaluation', null],
    ]);
    const peek = new Database(path.join(dir, 'cohort.db'), { readonly: true });
    expect(peek.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    peek.close();
    store = v7;
  });

  it('refuses a database written by a newer schema', () => {
    store.close();
    const raw = new Database(path.join(dir, 'cohort.db'));
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    expect(codeOf(() => open())).toBe('DB_TOO_NEW');
  });

  it('rejects a bad keepCheckpoints', () => {
    expect(codeOf(() => open({ keepCheckpoints: 0 }))).toBe('BAD_INPUT');
  });
});

describe('CohortStore: jobs', () => {
  it('creates, reads, lists and updates jobs', () => {
    let t = 100;
    const s = open({ now: () => t });
    const job = s.createJob({ id: 'mnist', config: { rounds: 3, nested: [1, 'x'] }, configHash: 'abc' });
    expect(job).toEqual({
      id: 'mnist',
      config: { rounds: 3, nested: [1, 'x'] },
      configHash: 'abc',
      status: 'created',
      reason: null,
      currentRound: 0,
      createdAt: 100,
      updatedAt: 100,
    });
    expect(s.getJob('mnist')).toEqual(job);
    expect(s.getJob('other')).toBeUndefined();

    t = 200;
    s.setJobStatus('mnist', 'budget_exhausted', 'epsilon 8.1 > 8');
    expect(s.getJob('mnist')).toMatchObject({ status: 'budget_exhausted', reason: 'epsilon 8.1 > 8', createdAt: 100, updatedAt: 200 });
    s.setJobStatus('mnist', 'running');
    expect(s.getJob('mnist')?.reason).toBeNull();

    s.createJob({ id: 'b', config: null, configHash: 'h2' });
    expect(s.listJobs().map((j) => j.id)).toEqual(['mnist', 'b']);
  });

  it('rejects duplicates, unknown jobs and bad input', () => {
    store.createJob({ id: 'j', config: {}, configHash: 'h' });
    expect(codeOf(() => store.createJob({ id: 'j', config: {}, configHash: 'h' }))).toBe('JOB_EXISTS');
    expect(codeOf(() => store.createJob({ id: '', config: {}, configHash: 'h' }))).toBe('BAD_INPUT');
    expect(codeOf(() => store.createJob({ id: 'k', config: undefined, configHash: 'h' }))).toBe('BAD_INPUT');
    expect(codeOf(() => store.setJobStatus('nope', 'running'))).toBe('UNKNOWN_JOB');
    expect(codeOf(() => store.setJobStatus('j', 'hibernating' as never))).toBe('BAD_INPUT');
    expect(store.listJobs()).toHaveLength(1);
  });
});

describe('CohortStore: rounds and checkpoints', () => {
  beforeEach(() => {
    store.createJob({ id: 'j', config: {}, configHash: 'h' });
  });

  it('commits rounds 1..5; the latest checkpoint is round 5, bit-identical; 3 checkpoints kept', () => {
    for (let r = 1; r <= 5; r++) commit(store, 'j', r);
    const latest = store.latestCheckpoint('j');
    expect(latest?.round).toBe(5);
    expect(latest?.weights).toBeInstanceOf(Float32Array);
    expect(latest?.weights.byteOffset).toBe(0);
    expect(bytes(latest!.weights)).toEqual(bytes(weightsFor(5)));
    expect(Object.is(latest!.weights[0], -0)).toBe(true);
    expect(latest?.checksum).toBe(sha(weightsFor(5)));
    expect(latest?.optimizerState).toEqual(Uint8Array.of(5, 1, 2, 3));

    expect(store.checkpointRounds('j')).toEqual([3, 4, 5]);
    expect(store.checkpoint('j', 2)).toBeUndefined();
    expect(bytes(store.checkpoint('j', 3)!.weights)).toEqual(bytes(weightsFor(3)));
    expect(store.getJob('j')?.currentRound).toBe(5);

    const rounds = store.listRounds('j');
    expect(rounds.map((r) => r.round)).toEqual([1, 2, 3, 4, 5]);
    expect(rounds[1]).toEqual({ round: 2, ...record(2), evaluation: null });
  });

  it('keepCheckpoints is configurable', () => {
    store.close();
    const s = open({ keepCheckpoints: 1 });
    for (let r = 1; r <= 3; r++) commit(s, 'j', r);
    expect(s.checkpointRounds('j')).toEqual([3]);
  });

  it('rejects out-of-order rounds and leaves state unchanged', () => {
    commit(store, 'j', 1);
    commit(store, 'j', 2);
    const before = { job: store.getJob('j'), rounds: store.listRounds('j'), ckpts: store.checkpointRounds('j') };
    expect(codeOf(() => commit(store, 'j', 2))).toBe('ROUND_ORDER'); // replay
    expect(codeOf(() => commit(store, 'j', 4))).toBe('ROUND_ORDER'); // gap
    expect(codeOf(() => commit(store, 'j', 1))).toBe('ROUND_ORDER');
    expect(codeOf(() => commit(store, 'nope', 1))).toBe('UNKNOWN_JOB');
    expect({ job: store.getJob('j'), rounds: store.listRounds('j'), ckpts: store.checkpointRounds('j') }).toEqual(before);
    commit(store, 'j', 3);
    expect(store.getJob('j')?.currentRound).toBe(3);
  });

  it('rejects bad commit input before writing', () => {
    const w = weightsFor(1);
    const base = { jobId: 'j', round: 1, weights: w, optimizerState: new Uint8Array(0), checksum: 'c', record: record(1) };
    expect(codeOf(() => store.commitRound({ ...base, checksum: 42 as unknown as string }))).toBe('BAD_INPUT');
    expect(codeOf(() => store.commitRound({ ...base, weights: Float32Array.of(1, Number.NaN) }))).toBe('NON_FINITE');
    expect(codeOf(() => store.commitRound({ ...base, weights: new Float32Array(0) }))).toBe('BAD_INPUT');
    expect(codeOf(() => store.commitRound({ ...base, record: { ...record(1), survivors: -1 } }))).toBe('BAD_INPUT');
    expect(codeOf(() => store.commitRound({ ...base, record: { ...record(1), trainLoss: Number.NaN } }))).toBe('BAD_INPUT');
    expect(codeOf(() => store.commitRound({ ...base, record: { ...record(1), metrics: { x: Number.POSITIVE_INFINITY } } }))).toBe(
      'BAD_INPUT',
    );
    expect(codeOf(() => store.commitRound({ ...base, round: 0 }))).toBe('BAD_INPUT');
    expect(store.listRounds('j')).toEqual([]);
    expect(store.getJob('j')?.currentRound).toBe(0);
    store.commitRound(base);
    expect(store.getJob('j')?.currentRound).toBe(1);
  });

  it('a failure inside the commit transaction leaves no partial row', () => {
    commit(store, 'j', 1);
    commit(store, 'j', 2);
    // A second connection installs a trigger that fails the checkpoint insert of round 3, i.e. after the
    // round row has been inserted inside the same transaction.
    const other = new Database(store.path);
    other.exec(`CREATE TRIGGER fail_ckpt BEFORE INSERT ON checkpoints WHEN NEW.round = 3
                BEGIN SELECT RAISE(ABORT, 'injected failure'); END`);
    try {
      expect(() => commit(store, 'j', 3)).toThrow(/injected failure/);
      expect(store.getJob('j')?.currentRound).toBe(2);
      expect(store.listRounds('j').map((r) => r.round)).toEqual([1, 2]);
      expect(store.checkpointRounds('j')).toEqual([1, 2]);
      expect(other.prepare('SELECT COUNT(*) AS n FROM rounds WHERE round = 3').get()).toEqual({ n: 0 });
    } finally {
      other.exec('DROP TRIGGER fail_ckpt');
      other.close();
    }
    commit(store, 'j', 3);
    expect(store.latestCheckpoint('j')?.round).toBe(3);
  });

  it('commits the privacy ledger row atomically with the round and its checkpoint', () => {
    const entry = (round: number, epsilon: number): LedgerEntry => ({
      mode: 'central',
      mechanism: 'gaussian',
      sampling: 'poisson',
      samplingRate: 0.1,
      population: 100,
      cohortSize: 9 + round,
      survivors: 8 + round,
      noiseMultiplier: 1.1,
      clipNorm: 0.5,
      event: { kind: 'poissonSampled', samplingProbability: 0.1, event: { kind: 'gaussian', noiseMultiplier: 1.1 } },
      coordinatorEvent: null,
      shortDrawProbability: 0,
      audience: 'published',
      epsilon,
      epsilonPublished: epsilon,
      epsilonCoordinator: null,
      delta: 1e-5,
      rdpOrder: 12,
      trust: 'trusted server adds the noise',
    });
    const commitWith = (round: number, ledger: LedgerEntry) => {
      const weights = weightsFor(round);
      store.commitRound({ jobId: 'j', round, weights, optimizerState: new Uint8Array(0), checksum: sha(weights), record: record(round), ledger });
    };
    commitWith(1, entry(1, 0.5));
    const other = new Database(store.path);
    other.exec(`CREATE TRIGGER fail_ledger BEFORE INSERT ON privacy_ledger WHEN NEW.round = 2
                BEGIN SELECT RAISE(ABORT, 'ledger write failed'); END`);
    try {
      expect(() => commitWith(2, entry(2, 0.7))).toThrow(/ledger write failed/);
      // No ledger row, so no round and no checkpoint: the model of round 2 was never published.
      expect(store.getJob('j')?.currentRound).toBe(1);
      expect(store.checkpointRounds('j')).toEqual([1]);
    } finally {
      other.exec('DROP TRIGGER fail_ledger');
      other.close();
    }
    expect(codeOf(() => commitWith(2, { ...entry(2, 0.7), delta: 2 }))).toBe('BAD_INPUT');
    expect(codeOf(() => commitWith(2, { ...entry(2, 0.7), mode: 'psychic' as never }))).toBe('BAD_INPUT');
    commitWith(2, entry(2, 0.7));
    const ledger = store.listLedger('j');
    expect(ledger.map((r) => [r.round, r.epsilon, r.cohortSize, r.survivors])).toEqual([
      [1, 0.5, 10, 9],
      [2, 0.7, 11, 10],
    ]);
    expect(ledger[0].event).toEqual(entry(1, 0.5).event);
    expect(ledger[1]).toMatchObject({ mode: 'central', samplingRate: 0.1, noiseMultiplier: 1.1, rdpOrder: 12, status: 'committed', attempt: null, seq: 2 });
  });

  it('writes an attempt\'s release to the coordinator ahead of it, numbered like the attempt, and keeps it when the attempt aborts', () => {
    const release: LedgerEntry = {
      mode: 'local',
      mechanism: 'gaussian',
      sampling: 'poisson',
      samplingRate: 0.1,
      population: 100,
      cohortSize: 10,
      survivors: 0,
      noiseMultiplier: 2,
      clipNorm: 0.5,
      event: null,
      coordinatorEvent: { kind: 'gaussian', noiseMultiplier: 1 },
      shortDrawProbability: 0,
      audience: 'coordinator',
      epsilon: 3,
      epsilonPublished: 0,
      epsilonCoordinator: 3,
      delta: 1e-5,
      rdpOrder: 5,
      trust: 'no trust in the coordinator',
    };
    expect(store.recordAttemptRelease({ jobId: 'j', round: 1, ledger: release })).toBe(1);
    store.recordRoundAborted({ jobId: 'j', round: 1, startedAt: 1, endedAt: 2, cohortSize: 10, survivors: 0, reason: 'deadline' });
    expect(store.recordAttemptRelease({ jobId: 'j', round: 1, ledger: { ...release, epsilon: 4, epsilonCoordinator: 4 } })).toBe(2);
    // Only the job's next round can release; a row with no release at all is refused.
    expect(codeOf(() => store.recordAttemptRelease({ jobId: 'j', round: 2, ledger: release }))).toBe('ROUND_ORDER');
    expect(codeOf(() => store.recordAttemptRelease({ jobId: 'j', round: 1, ledger: { ...release, coordinatorEvent: null } }))).toBe('BAD_INPUT');
    const rows = store.listLedger('j');
    expect(rows.map((r) => [r.seq, r.round, r.status, r.attempt, r.epsilon])).toEqual([
      [1, 1, 'attempt', 1, 3],
      [2, 1, 'attempt', 2, 4],
    ]);
    expect(rows[0].event).toBeNull();
    expect(rows[0].coordinatorEvent).toEqual({ kind: 'gaussian', noiseMultiplier: 1 });
    expect(store.listRoundAttempts('j').map((a) => a.attempt)).toEqual([1]);
  });

  it('aborted attempts do not advance the round, and the round can be retried', () => {
    const abort = (round: number, reason: string): void =>
      store.recordRoundAborted({ jobId: 'j', round, startedAt: 10, endedAt: 20, cohortSize: 8, survivors: 2, reason });
    abort(1, 'too few survivors');
    abort(1, 'timeout');
    expect(store.getJob('j')?.currentRound).toBe(0);
    expect(store.listRounds('j')).toEqual([]);
    expect(store.latestCheckpoint('j')).toBeUndefined();
    commit(store, 'j', 1);
    abort(2, 'timeout');
    expect(codeOf(() => abort(1, 'late'))).toBe('ROUND_ORDER');
    expect(codeOf(() => abort(2, ''))).toBe('BAD_INPUT');
    expect(store.listRoundAttempts('j')).toEqual([
      { round: 1, attempt: 1, startedAt: 10, endedAt: 20, cohortSize: 8, survivors: 2, reason: 'too few survivors' },
      { round: 1, attempt: 2, startedAt: 10, endedAt: 20, cohortSize: 8, survivors: 2, reason: 'timeout' },
      { round: 2, attempt: 1, startedAt: 10, endedAt: 20, cohortSize: 8, survivors: 2, reason: 'timeout' },
    ]);
    expect(store.listRounds('j').map((r) => r.round)).toEqual([1]);
    expect(store.getJob('j')?.currentRound).toBe(1);
  });

  it('evaluations: one per (round, kind), federated shown on the round, replaceable', () => {
    commit(store, 'j', 1);
    commit(store, 'j', 2);
    const server = { loss: 0.5, accuracy: 0.8, numExamples: 10_000, clients: 0, kind: 'server' as const };
    const fed = { loss: 0.6, accuracy: 0.75, numExamples: 1_200, clients: 12, kind: 'federated' as const };
    store.recordEvaluation('j', 0, server);
    store.recordEvaluation('j', 2, server);
    expect(store.listRounds('j')[1].evaluation).toEqual(server);
    store.recordEvaluation('j', 2, fed);
    expect(store.listRounds('j')[1].evaluation).toEqual(fed);
    store.recordEvaluation('j', 2, { ...fed, accuracy: 0.77 });
    expect(store.listRounds('j')[1].evaluation?.accuracy).toBe(0.77);
    expect(store.listRounds('j')[0].evaluation).toBeNull();
    expect(store.listEvaluations('j').map((e) => [e.round, e.kind])).toEqual([
      [0, 'server'],
      [2, 'federated'],
      [2, 'server'],
    ]);
    expect(codeOf(() => store.recordEvaluation('nope', 1, fed))).toBe('UNKNOWN_JOB');
    expect(codeOf(() => store.recordEvaluation('j', 1, { ...fed, loss: Number.NaN }))).toBe('BAD_INPUT');
    expect(codeOf(() => store.recordEvaluation('j', 1, { ...fed, kind: 'local' as never }))).toBe('BAD_INPUT');
  });
});

describe('CohortStore: clients', () => {
  it('tracks first/last seen and distinct completed rounds', () => {
    store.createJob({ id: 'j', config: {}, configHash: 'h' });
    store.upsertClient('alice', { lastSeen: 1_000, numExamples: 50 });
    store.upsertClient('alice', { lastSeen: 3_000 });
    store.upsertClient('alice', { lastSeen: 2_000 }); // out-of-order report does not move lastSeen back
    store.upsertClient('bob', { lastSeen: 1_500 });
    store.recordParticipation('j', 1, [{ clientId: 'alice', status: 'completed' }]); // aborted attempt
    store.recordParticipation('j', 1, [{ clientId: 'alice', status: 'completed' }]); // retry of round 1
    store.recordParticipation('j', 2, [{ clientId: 'alice', status: 'completed' }]);
    store.recordParticipation('j', 3, [{ clientId: 'alice', status: 'dropped' }]);
    store.recordParticipation('j', 1, [{ clientId: 'bob', status: 'refused' }]);
    store.recordParticipation('j', 2, [{ clientId: 'carol', status: 'rejected' }]); // unknown client is registered
    const clients = store.listClients();
    expect(clients.map((c) => c.id)).toEqual(['alice', 'bob', 'carol']);
    expect(clients[0]).toEqual({ id: 'alice', firstSeen: 1_000, lastSeen: 3_000, numExamples: 50, roundsCompleted: 2 });
    expect(clients[1]).toMatchObject({ roundsCompleted: 0, numExamples: null });
    expect(clients[2].roundsCompleted).toBe(0);
    expect(codeOf(() => store.recordParticipation('nope', 1, [{ clientId: 'alice', status: 'completed' }]))).toBe('UNKNOWN_JOB');
    expect(codeOf(() => store.recordParticipation('j', 1, [{ clientId: 'alice', status: 'won' as never }]))).toBe('BAD_INPUT');
    expect(codeOf(() => store.upsertClient('', { lastSeen: 1 }))).toBe('BAD_INPUT');
    expect(codeOf(() => store.upsertClient('x', { lastSeen: Number.NaN }))).toBe('BAD_INPUT');
  });
});

describe('CohortStore: crash safety', () => {
  it('a round committed before SIGKILL is there after reopening', () => {
    store.close();
    const script = path.join(dir, 'crash-child.ts');
    const storeUrl = pathToFileURL(path.join(here, 'index.ts')).href;
    fs.writeFileSync(
      script,
      `import { createHash } from 'node:crypto';
import { CohortStore } from ${JSON.stringify(storeUrl)};
const s = CohortStore.open(process.argv[2]);
s.createJob({ id: 'crash', config: { x: 1 }, configHash: 'h' });
for (let round = 1; round <= 2; round++) {
  const w = new Float32Array(4096);
  for (let i = 0; i < w.length; i++) w[i] = Math.sin(round * 1000 + i);
  const checksum = createHash('sha256').update(new Uint8Array(w.buffer)).digest('hex');
  const rec = { startedAt: 1, endedAt: 2, cohortSize: 3, survivors: 3, dropouts: 0, numExamples: 30, trainLoss: null, trainAccuracy: null };
  s.commitRound({ jobId: 'crash', round, weights: w, optimizerState: new Uint8Array([round]), checksum, record: rec });
}
process.stdout.write('committed\\n');
process.kill(process.pid, 'SIGKILL');
`,
    );
    const child = spawnSync(process.execPath, ['--import', 'tsx', script, dir], { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 });
    expect(child.stderr).toBe('');
    expect(child.stdout).toBe('committed\n');
    expect(child.signal).toBe('SIGKILL');

    const after = open();
    const ckpt = after.latestCheckpoint('crash');
    expect(ckpt?.round).toBe(2);
    const expected = new Float32Array(4096);
    for (let i = 0; i < expected.length; i++) expected[i] = Math.sin(2 * 1000 + i);
    expect(bytes(ckpt!.weights)).toEqual(bytes(expected));
    expect(ckpt?.checksum).toBe(sha(expected));
    expect(ckpt?.optimizerState).toEqual(Uint8Array.of(2));
    expect(after.getJob('crash')?.currentRound).toBe(2);
    // and the job continues where it stopped
    commit(after, 'crash', 3);
    expect(after.latestCheckpoint('crash')?.round).toBe(3);
  });
});
