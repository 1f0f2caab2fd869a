/**
 * Crash recovery of the real `cohort server` process: SIGKILL after a round committed, restart on
 * the same data dir, and the job carries on at the next round from the identical global model
 * (checksum equal), with the same clients reconnecting by themselves.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ClientEngine, type ClientTask } from '../../client/engine/index.ts';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import { CohortStore } from '../../server/store/index.ts';
import { weightsChecksum } from '../../shared/model/index.ts';
import { freePort, startServer } from './helpers.ts';
import { testIdentity } from '../support/identity.ts';

const DIM = 8 * 2 + 2;

/** Sends a fixed delta after a short pause, and remembers which model each round started from. */
class SlowTask implements ClientTask {
  readonly seen = new Map<number, string>();
  constructor(readonly index: number) {}
  get numExamples() {
    return 10 + this.index;
  }
  async fit(weights: Float32Array, _m: unknown, _t: unknown, round: number) {
    this.seen.set(round, weightsChecksum(weights));
    await new Promise((r) => setTimeout(r, 250));
    const delta = new Float32Array(DIM).fill(0.01 * (this.index + 1));
    return { delta, numExamples: this.numExamples, metrics: { loss: 1 } };
  }
  async evaluate() {
    return { numExamples: 1, loss: 1, accuracy: 1 };
  }
}

describe('coordinator restart after SIGKILL', () => {
  const children: ChildProcess[] = [];
  const engines: ClientEngine[] = [];
  afterAll(() => {
    for (const e of engines) e.stop();
    for (const c of children) c.kill('SIGKILL');
  });

  it('resumes at round k+1 from the committed model of round k', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cohort-restart-'));
    const configPath = join(dataDir, 'job.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        id: 'restart',
        model: { zoo: 'logreg', inputShape: [8], numClasses: 2 },
        rounds: 5,
        sampling: { mode: 'fixed', cohortSize: 3 },
        minClients: 3,
        evaluation: { every: 0 },
        timeouts: { trainMs: 30_000, retryDelayMs: 100 },
      }),
    );
    const port = await freePort();
    const args = ['--config', configPath, '--port', String(port), '--data-dir', dataDir];

    const first = startServer(args);
    children.push(first.child);
    await first.waitFor((l) => l.msg === 'coordinator listening');
    const tasks = [0, 1, 2].map((i) => new SlowTask(i));
    for (const task of tasks) {
      const transport = new SocketIoClientTransport({
        url: `http://127.0.0.1:${port}`,
        reconnect: { initialDelayMs: 100, maxDelayMs: 400 },
      });
      const engine = new ClientEngine({ clientId: `c${task.index}`, identity: testIdentity(`c${task.index}`), task, transport });
      engine.start();
      engines.push(engine);
    }
    await first.waitFor((l) => l.msg === 'round committed' && l.round === 2);
    first.child.kill('SIGKILL');
    expect(await first.exited).toBeNull(); // killed, not exited

    const store = CohortStore.open(dataDir);
    const k = store.latestCheckpoint('restart')!;
    expect(store.getJob('restart')!.status).toBe('running');
    store.close();
    expect(k.round).toBeGreaterThanOrEqual(2);

    const second = startServer(args);
    children.push(second.child);
    const resumed = await second.waitFor((l) => l.msg === 'resumed from checkpoint');
    expect(resumed.round).toBe(k.round);
    expect(resumed.checksum).toBe(k.checksum);
    const code = await second.exited;
    expect(code, second.stderr()).toBe(0);

    // Every client started round k+1 from exactly the model committed in round k.
    for (const task of tasks) expect(task.seen.get(k.round + 1)).toBe(k.checksum);
    const after = CohortStore.open(dataDir);
    try {
      expect(after.listRounds('restart').map((r) => r.round)).toEqual([1, 2, 3, 4, 5]);
      expect(after.getJob('restart')!.status).toBe('completed');
    } finally {
      after.close();
    }
  });
});
