/**
 * Privacy end to end, as processes: a DP job with a budget under `cohort server`, killed with SIGKILL
 * between rounds and restarted (ledger and ε unchanged, the job continues to its budget stop, and a
 * further restart keeps it stopped); `cohort privacy ledger` prints what the store holds; `cohort
 * privacy epsilon|calibrate` print the accountant's numbers.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ClientEngine, type ClientTask } from '../../client/engine/index.ts';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import { CohortStore } from '../../server/store/index.ts';
import { calibrateNoiseMultiplier, epsilonFor } from '../../shared/privacy/index.ts';
import { cohort, freePort, startServer } from './helpers.ts';
import { testIdentity } from '../support/identity.ts';

class SlowTask implements ClientTask {
  readonly numExamples = 10;
  async fit() {
    await new Promise((r) => setTimeout(r, 200));
    return { delta: new Float32Array(18).fill(0.01), numExamples: 10, metrics: { loss: 1 } };
  }
  async evaluate() {
    return { numExamples: 1, loss: 1, accuracy: 1 };
  }
}

describe('privacy as processes', () => {
  const children: ChildProcess[] = [];
  const engines: ClientEngine[] = [];
  afterAll(() => {
    for (const e of engines) e.stop();
    for (const c of children) c.kill('SIGKILL');
  });

  it('keeps ledger and ε across SIGKILL, stops at the budget, and stays stopped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cohort-dp-kill-'));
    const config = join(dir, 'job.json');
    // Poisson rate 1 with 4 clients and minClients 3: every round q = 1, z = 2, and no draw can fall short
    // even without one of them (shared/privacy/conditioning.ts); ε(k) is known from the accountant.
    const z = 2;
    const eps = (k: number) => epsilonFor({ q: 1, noiseMultiplier: z, steps: k, delta: 1e-5 }).epsilon;
    const budget = (eps(5) + eps(6)) / 2;
    writeFileSync(
      config,
      JSON.stringify({
        id: 'private',
        model: { zoo: 'logreg', inputShape: [8], numClasses: 2 },
        rounds: 50,
        sampling: { mode: 'poisson', rate: 1 },
        minClients: 3,
        evaluation: { every: 0 },
        timeouts: { trainMs: 30_000, retryDelayMs: 100 },
        dp: { mode: 'central', noiseMultiplier: z, clipNorm: 1, budget: { epsilon: budget, delta: 1e-5 } },
      }),
    );
    const port = await freePort();
    const args = ['--config', config, '--port', String(port), '--data-dir', dir];
    const first = startServer(args);
    children.push(first.child);
    await first.waitFor((l) => l.msg === 'coordinator listening');
    for (let i = 0; i < 4; i++) {
      const transport = new SocketIoClientTransport({ url: `http://127.0.0.1:${port}`, reconnect: { initialDelayMs: 100, maxDelayMs: 300 } });
      const engine = new ClientEngine({ clientId: `c${i}`, identity: testIdentity(`c${i}`), task: new SlowTask(), transport });
      engine.start();
      engines.push(engine);
    }
    const committed = await first.waitFor((l) => l.msg === 'round committed' && l.round === 2);
    first.child.kill('SIGKILL');
    await first.exited;
    expect(committed.epsilon).toBeCloseTo(eps(2), 10);

    const store = CohortStore.open(dir);
    const before = store.listLedger('private');
    store.close();
    expect(before.length).toBeGreaterThanOrEqual(2);
    before.forEach((row, i) => expect(row.epsilon).toBeCloseTo(eps(i + 1), 10));

    const second = startServer(args);
    children.push(second.child);
    expect(await second.exited).toBe(1); // finished, but not 'completed'
    const stop = second.lines.find((l) => l.msg === 'privacy budget exhausted');
    expect(stop?.reason).toMatch(/past the budget/);
    const loaded = second.lines.find((l) => l.msg === 'privacy ledger loaded');
    expect(loaded?.epsilon).toBeCloseTo(before.at(-1)!.epsilon, 10);

    const after = CohortStore.open(dir);
    const ledger = after.listLedger('private');
    const job = after.getJob('private')!;
    after.close();
    expect(ledger.slice(0, before.length)).toEqual(before);
    expect(ledger.map((r) => r.round)).toEqual([1, 2, 3, 4, 5]); // stopped exactly before round 6
    expect(ledger.at(-1)!.epsilon).toBeLessThanOrEqual(budget);
    expect(job.status).toBe('budget_exhausted');

    const third = startServer(args);
    children.push(third.child);
    expect(await third.exited).toBe(1);
    const final = CohortStore.open(dir);
    expect(final.listLedger('private')).toEqual(ledger);
    final.close();

    // The ledger command shows the same numbers.
    const table = await cohort(['privacy', 'ledger', '--data-dir', dir, '--job', 'private', '--json']);
    expect(table.code, table.stderr).toBe(0);
    const rows = table.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((r) => r.epsilon)).toEqual(ledger.map((r) => r.epsilon));
    const text = await cohort(['privacy', 'ledger', '--data-dir', dir, '--job', 'private']);
    expect(text.stdout).toMatch(/status budget_exhausted/);
    expect(text.stdout).toContain(ledger[4].epsilon.toFixed(6));
  });

  it('`cohort privacy epsilon` and `calibrate` print the accountant’s values as JSON', async () => {
    const e = await cohort(['privacy', 'epsilon', '--q', '0.01', '--noise', '1.1', '--steps', '1000', '--delta', '1e-5', '--json']);
    expect(e.code, e.stderr).toBe(0);
    expect(JSON.parse(e.stdout)).toEqual({ ...epsilonFor({ q: 0.01, noiseMultiplier: 1.1, steps: 1000, delta: 1e-5 }), adjacency: 'add-remove' });
    // Replace-one (local mode; any guarantee against the coordinator): sensitivity 2C, unsampled — the 10.73 at z = 1.
    const r1 = await cohort(['privacy', 'epsilon', '--q', '1', '--noise', '1', '--steps', '1', '--delta', '1e-5', '--adjacency', 'replace-one', '--json']);
    expect(r1.code, r1.stderr).toBe(0);
    expect(JSON.parse(r1.stdout).epsilon).toBeCloseTo(10.7255, 3);
    const sampled = await cohort(['privacy', 'epsilon', '--q', '0.1', '--noise', '1', '--steps', '1', '--delta', '1e-5', '--adjacency', 'replace-one']);
    expect(sampled.code).toBe(2);
    expect(sampled.stderr).toMatch(/replace-one is analysed without sampling amplification/);
    const classic = await cohort([
      'privacy', 'epsilon', '--q', '0.01', '--noise', '1.1', '--steps', '1000', '--delta', '1e-5',
      '--conversion', 'classic', '--orders', 'integer', '--json',
    ]);
    expect(JSON.parse(classic.stdout).epsilon).toBeGreaterThan(JSON.parse(e.stdout).epsilon);
    const c = await cohort(['privacy', 'calibrate', '--epsilon', '2', '--delta', '1e-5', '--q', '0.01', '--steps', '1000', '--json']);
    expect(JSON.parse(c.stdout)).toEqual({ noiseMultiplier: calibrateNoiseMultiplier({ targetEpsilon: 2, delta: 1e-5, q: 0.01, steps: 1000 }) });
    const bad = await cohort(['privacy', 'epsilon', '--q', '1.5', '--noise', '1', '--steps', '1', '--delta', '1e-5']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--q must be in \(0, 1\]/);
  });
});
