/**
 * The dashboard's reads of the participation log, on a real SQLite file: a round's counts are those of
 * its last attempt (an aborted attempt before it does not add to them), and a job's clients are counted
 * over every attempt of that job only.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CohortStore } from './index.ts';

let dir: string;
let clock: number;
let store: CohortStore;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cohort-participation-'));
  clock = 1_000;
  store = CohortStore.open(dir, { now: () => clock });
  for (const id of ['j', 'other']) store.createJob({ id, config: {}, configHash: id });
});
afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('participation reads', () => {
  it("counts each round's last attempt by status, and each job's clients over all its attempts", () => {
    // Round 1: an attempt where two dropped (aborted), then one where a refused and b, c completed.
    store.recordParticipation('j', 1, [
      { clientId: 'a', status: 'dropped' },
      { clientId: 'b', status: 'dropped' },
      { clientId: 'c', status: 'completed' },
    ]);
    clock += 50;
    store.recordParticipation('j', 1, [
      { clientId: 'a', status: 'refused' },
      { clientId: 'b', status: 'completed' },
      { clientId: 'c', status: 'completed' },
    ]);
    clock += 50;
    store.recordParticipation('j', 2, [
      { clientId: 'a', status: 'rejected' },
      { clientId: 'c', status: 'completed' },
    ]);
    store.recordParticipation('other', 1, [{ clientId: 'a', status: 'completed' }]);

    expect(store.roundParticipation('j')).toEqual([
      { round: 1, completed: 2, dropped: 0, refused: 1, rejected: 0 },
      { round: 2, completed: 1, dropped: 0, refused: 0, rejected: 1 },
    ]);
    const clients = store.jobClients('j').map(({ id, roundsCompleted, dropped, refused, rejected, lastRound }) => ({ id, roundsCompleted, dropped, refused, rejected, lastRound }));
    expect(clients).toEqual([
      { id: 'a', roundsCompleted: 0, dropped: 1, refused: 1, rejected: 1, lastRound: 2 },
      { id: 'b', roundsCompleted: 1, dropped: 1, refused: 0, rejected: 0, lastRound: 1 },
      // c completed round 1 twice (two attempts) and round 2: two distinct rounds.
      { id: 'c', roundsCompleted: 2, dropped: 0, refused: 0, rejected: 0, lastRound: 2 },
    ]);
    expect(store.jobClients('other').map((c) => [c.id, c.roundsCompleted])).toEqual([['a', 1]]);
    expect(store.roundParticipation('none')).toEqual([]);
  });
});
