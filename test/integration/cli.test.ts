/**
 * The `cohort` command as a user runs it: a server and two clients as separate processes, clients
 * reading CSV files, everything over Socket.IO on loopback. Plus the errors a user sees for bad input.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CohortStore } from '../../server/store/index.ts';
import { seededRng } from '../../shared/random.ts';
import { cohort, freePort } from './helpers.ts';

function writeCsv(path: string, rows: number, seed: number): void {
  const rng = seededRng(seed);
  const lines = ['f0,f1,f2,f3,label'];
  for (let r = 0; r < rows; r++) {
    const y = r % 2;
    const f = [0, 1, 2, 3].map((j) => ((j % 2 === y ? 1.5 : 0) + rng.next() - 0.5).toFixed(4));
    lines.push([...f, y].join(','));
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}

describe('cohort CLI', () => {
  it('runs a job with `cohort server` and two `cohort client` processes on CSV data', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cohort-cli-'));
    writeFileSync(
      join(dir, 'job.json'),
      JSON.stringify({
        id: 'cli',
        model: { zoo: 'logreg', inputShape: [4], numClasses: 2 },
        rounds: 2,
        sampling: { mode: 'fixed', cohortSize: 2 },
        minClients: 2,
        training: { epochs: 2, batchSize: 4, learningRate: 0.2 },
      }),
    );
    writeCsv(join(dir, 'a.csv'), 40, 1);
    writeCsv(join(dir, 'b.csv'), 60, 2);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const server = cohort(['server', '--config', join(dir, 'job.json'), '--port', String(port), '--data-dir', join(dir, 'data')]);
    const clients = ['a', 'b'].map((name) =>
      cohort(['client', '--server', url, '--data', join(dir, `${name}.csv`), '--id', `client-${name}`, '--backend', 'wasm']),
    );
    const [s, a, b] = await Promise.all([server, ...clients]);
    expect(s.code, s.stderr).toBe(0);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const logs = s.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(logs.filter((l) => l.msg === 'round committed').map((l) => l.round)).toEqual([1, 2]);
    const store = CohortStore.open(join(dir, 'data'));
    try {
      expect(store.getJob('cli')!.status).toBe('completed');
      const rounds = store.listRounds('cli');
      // 80% of each client's rows train (testFraction 0.2): 32 + 48.
      expect(rounds.map((r) => r.numExamples)).toEqual([80, 80]);
      expect(rounds[1].evaluation?.kind).toBe('federated');
      expect(store.listClients().map((c) => c.id).sort()).toEqual(['client-a', 'client-b']);
    } finally {
      store.close();
    }
  });

  it('explains an invalid job config and exits 2 without creating a job', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cohort-cli-bad-'));
    writeFileSync(join(dir, 'job.json'), JSON.stringify({ rounds: 0, sampling: { mode: 'poisson', rate: 2 }, lr: 1 }));
    const r = await cohort(['server', '--config', join(dir, 'job.json'), '--port', '0', '--data-dir', join(dir, 'data')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/rounds/);
    expect(r.stderr).toMatch(/sampling\.rate/);
    expect(r.stderr).toMatch(/lr/); // unknown key
  });

  it('refuses a client without data, naming the flag', async () => {
    const r = await cohort(['client', '--server', 'http://127.0.0.1:9']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--data/);
  });
});
