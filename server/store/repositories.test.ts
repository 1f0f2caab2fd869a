/**
 * The facade over the repositories: its public surface, statements prepared once at open (none per call),
 * and the ledger row sharing the round commit's transaction.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CohortStore, type LedgerEntry } from './index.ts';

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cohort-repos-'));
});

afterEach(() => {
  vi.restoreAllMocks();
  fs.rmSync(dir, { recursive: true, force: true });
});

const ledgerEntry: LedgerEntry = {
  mode: 'central',
  mechanism: 'gaussian',
  sampling: 'poisson',
  samplingRate: 0.1,
  population: 100,
  cohortSize: 10,
  survivors: 9,
  noiseMultiplier: 1.1,
  clipNorm: 0.5,
  event: { kind: 'gaussian', noiseMultiplier: 1.1 },
  coordinatorEvent: null,
  shortDrawProbability: 0,
  audience: 'published',
  epsilon: 0.5,
  epsilonPublished: 0.5,
  epsilonCoordinator: null,
  delta: 1e-5,
  rdpOrder: 12,
  trust: 'trusted server adds the noise',
};

function commitInput(round: number, ledger?: LedgerEntry) {
  const record = { startedAt: round, endedAt: round + 1, cohortSize: 10, survivors: 9, dropouts: 1, numExamples: 90, trainLoss: null, trainAccuracy: null };
  return { jobId: 'j', round, weights: Float32Array.of(round, 2), optimizerState: Uint8Array.of(1), checksum: `c${round}`, record, ledger };
}

describe('CohortStore facade', () => {
  it('keeps its public API', () => {
    const methods = Object.getOwnPropertyNames(CohortStore.prototype)
      .filter((m) => m !== 'constructor')
      .sort();
    expect(methods).toEqual(
      [
        'checkpoint',
        'checkpointRounds',
        'close',
        'commitRound',
        'createJob',
        'getJob',
        'latestCheckpoint',
        'ledgerHead',
        'listClients',
        'listEvaluations',
        'listJobs',
        'listLedger',
        'listRoundAttempts',
        'listRounds',
        'recordAttemptRelease',
        'recordEvaluation',
        'recordParticipation',
        'recordRoundAborted',
        'setJobStatus',
        'upsertClient',
        'upsertClients',
        // operations plane (schema v5)
        'appendAudit',
        'createToken',
        'listAudit',
        'listTokens',
        'productionTag',
        'revokeToken',
        'setProductionTag',
        'tagHistory',
        'verifyAudit',
        'verifyToken',
        // the dashboard's participation reads
        'jobClients',
        'roundParticipation',
      ].sort(),
    );
    expect(typeof CohortStore.open).toBe('function');
  });

  it('prepares every repository statement once, at open, and none per call', () => {
    const prepare = vi.spyOn(Database.prototype, 'prepare');
    const store = CohortStore.open(dir);
    try {
      const atOpen = prepare.mock.calls.length;
      expect(atOpen).toBeGreaterThan(0);
      store.createJob({ id: 'j', config: { a: 1 }, configHash: 'h' });
      store.setJobStatus('j', 'running');
      store.recordRoundAborted({ jobId: 'j', round: 1, startedAt: 1, endedAt: 2, cohortSize: 3, survivors: 1, reason: 'too few' });
      store.recordParticipation('j', 1, [{ clientId: 'a', status: 'dropped' }]);
      store.commitRound(commitInput(1, ledgerEntry));
      store.commitRound(commitInput(2));
      store.recordEvaluation('j', 1, { kind: 'server', loss: 1, accuracy: 0.5, numExamples: 10, clients: 0 });
      store.upsertClient('b', { lastSeen: 5, numExamples: 7 });
      store.getJob('j');
      store.listJobs();
      store.listRounds('j');
      store.listRoundAttempts('j');
      store.listLedger('j');
      store.listEvaluations('j');
      store.listClients();
      store.latestCheckpoint('j');
      store.checkpoint('j', 1);
      store.checkpointRounds('j');
      const { token } = store.createToken({ name: 'ops', role: 'operator' });
      store.verifyToken(token);
      store.listTokens();
      store.revokeToken('ops');
      store.appendAudit({ actor: 'cli', action: 'token.revoke', target: 'ops', outcome: 'ok', details: { n: 1 } });
      store.listAudit({ job: 'j', limit: 5 });
      store.verifyAudit();
      store.setProductionTag({ jobId: 'j', round: 2, actor: 'admin', forced: false });
      store.productionTag('j');
      store.tagHistory('j');
      expect(prepare.mock.calls.length).toBe(atOpen);
    } finally {
      store.close();
    }
  });

  it('a failure after the ledger row is written inside the commit rolls the ledger row back too', () => {
    let fail = false;
    const store = CohortStore.open(dir, {
      failpoint: () => {
        if (fail) throw new Error('crash inside the commit');
      },
    });
    try {
      store.createJob({ id: 'j', config: {}, configHash: 'h' });
      store.commitRound(commitInput(1, ledgerEntry));
      fail = true;
      expect(() => store.commitRound(commitInput(2, { ...ledgerEntry, epsilon: 0.7 }))).toThrow(/crash inside/);
      expect(store.listLedger('j').map((r) => r.round)).toEqual([1]);
      expect(store.getJob('j')?.currentRound).toBe(1);
      expect(store.checkpointRounds('j')).toEqual([1]);
      fail = false;
      store.commitRound(commitInput(2, { ...ledgerEntry, epsilon: 0.7 }));
      expect(store.listLedger('j').map((r) => [r.round, r.epsilon])).toEqual([
        [1, 0.5],
        [2, 0.7],
      ]);
    } finally {
      store.close();
    }
  });
});
