/**
 * kill -9 of the real `cohort serve` process while three jobs run — plain FedAvg, central DP, and
 * SecAgg with distributed DP — and a restart on the same data dir: every job resumes after its last
 * committed round, the ledgers' rows are unchanged by the restart, the audit chain verifies, finished
 * jobs stay listed, and ε is reported on /metrics before the first commit after the restart.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ClientEngine, type ClientTask } from '../../client/engine/index.ts';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import { CohortStore } from '../../server/store/index.ts';
import { BIN, freePort, spawnJsonLines, type JsonLinesChild, type LogLine } from './helpers.ts';
import { testIdentity } from '../support/identity.ts';

class QuickTask implements ClientTask {
  readonly numExamples = 10;
  constructor(private readonly dim: number) {}
  async fit() {
    await new Promise((r) => setTimeout(r, 20));
    return { delta: new Float32Array(this.dim).fill(0.01), numExamples: 10, metrics: { loss: 1 } };
  }
  async evaluate() {
    return { numExamples: 1, loss: 1, accuracy: 1 };
  }
}

const base = (id: string) => ({
  id,
  model: { zoo: 'logreg', inputShape: [8], numClasses: 2 },
  rounds: 10_000,
  sampling: { mode: 'fixed', cohortSize: 4 },
  minClients: 4,
  evaluation: { every: 0 },
  checkpoints: { keep: 2 },
  timeouts: { trainMs: 30_000, retryDelayMs: 50 },
});
const JOBS = [
  base('plain'),
  { ...base('central'), dp: { mode: 'central', noiseMultiplier: 1, clipNorm: 1 } },
  { ...base('secure'), minSurvivors: 3, dp: { mode: 'distributed', noiseMultiplier: 1, clipNorm: 1 }, secagg: { enabled: true, bits: 20, phaseTimeoutMs: 10_000 } },
];

describe('cohort serve after kill -9 with three jobs running', () => {
  const children: JsonLinesChild<LogLine>[] = [];
  const engines: ClientEngine[] = [];
  afterAll(() => {
    for (const e of engines) e.stop();
    for (const c of children) c.child.kill('SIGKILL');
  });

  it('resumes every job after its last committed round; ledgers unchanged; the audit chain verifies', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cohort-serve-kill-'));
    const seed = CohortStore.open(dataDir);
    const admin = seed.createToken({ name: 'root', role: 'admin' }).token;
    seed.close();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const serve = () => {
      const c = spawnJsonLines<LogLine>([BIN, 'serve', '--port', String(port), '--data-dir', dataDir]);
      children.push(c);
      return c;
    };
    const api = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${admin}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      return { status: res.status, body: (res.headers.get('content-type') ?? '').includes('json') ? await res.json() : await res.text() };
    };
    const rounds = async () => Object.fromEntries(((await api('GET', '/api/v1/jobs')).body as Array<{ id: string; round: number }>).map((j) => [j.id, j.round]));
    const until = async (ok: (r: Record<string, number>) => boolean) => {
      for (;;) {
        const r = await rounds();
        if (ok(r)) return r;
        await new Promise((res) => setTimeout(res, 100));
      }
    };

    const first = serve();
    await first.waitFor((l) => l.msg === 'service listening');
    // A short job that finishes before the kill: it must stay listed after the restart.
    expect((await api('POST', '/api/v1/jobs', { ...base('short'), rounds: 1 })).status).toBe(200);
    for (const j of JOBS) expect((await api('POST', '/api/v1/jobs', j)).status).toBe(200);
    for (const j of [...JOBS, base('short')]) {
      for (let i = 0; i < 4; i++) {
        const transport = new SocketIoClientTransport({ url: `${url}/jobs/${j.id}`, reconnect: { initialDelayMs: 100, maxDelayMs: 400 } });
        const e = new ClientEngine({ clientId: `${j.id}-${i}`, identity: testIdentity(`${j.id}-${i}`), task: new QuickTask(18), transport });
        e.start();
        engines.push(e);
      }
    }
    await until((r) => JOBS.every((j) => r[j.id] >= 3) && r.short === 1);
    first.child.kill('SIGKILL');
    expect((await first.exit).signal).toBe('SIGKILL');

    const before = CohortStore.open(dataDir);
    const snapshot = Object.fromEntries(JOBS.map((j) => [j.id, { round: before.getJob(j.id)!.currentRound, status: before.getJob(j.id)!.status, ledger: before.listLedger(j.id), kept: before.checkpointRounds(j.id) }]));
    before.close();
    for (const j of JOBS) {
      expect(snapshot[j.id].status).toBe('running');
      expect(snapshot[j.id].kept.length).toBeLessThanOrEqual(2); // the job's own checkpoints.keep
    }
    expect(snapshot.central.ledger.length).toBeGreaterThanOrEqual(3);
    expect(snapshot.secure.ledger.filter((r) => r.status === 'committed').length).toBe(snapshot.secure.round);

    const second = serve();
    const listening = await second.waitFor((l) => l.msg === 'service listening');
    expect((listening.jobs as string[]).sort()).toEqual(['central', 'plain', 'secure']);
    // ε is on /metrics from the ledger, before any round commits after the restart.
    const metrics = (await api('GET', '/metrics')).body as string;
    const spent = Number(/^cohort_epsilon_spent\{job="central",audience="published"\} (\S+)$/m.exec(metrics)?.[1]);
    expect(spent).toBeCloseTo(snapshot.central.ledger.at(-1)!.epsilonPublished!, 10);
    // The finished job is listed with its status.
    const listed = (await api('GET', '/api/v1/jobs')).body as Array<{ id: string; status: string; round: number }>;
    expect(listed.find((j) => j.id === 'short')).toMatchObject({ status: 'completed', round: 1 });
    expect((await api('POST', '/api/v1/jobs/short/resume', {})).status).toBe(409);

    const after = await until((r) => JOBS.every((j) => r[j.id] >= snapshot[j.id].round + 2));
    await api('POST', '/api/v1/jobs/plain/stop', { reason: 'test over' });
    second.child.kill('SIGKILL');
    await second.exit;

    const store = CohortStore.open(dataDir);
    try {
      for (const j of JOBS) {
        const got = store.listRounds(j.id).map((r) => r.round);
        // Rounds continue after the last committed one: no gap, no repeat.
        expect(got.slice(0, after[j.id])).toEqual(Array.from({ length: after[j.id] }, (_, i) => i + 1));
        // The ledger's rows from before the kill are there, unchanged; new rows come after them.
        expect(store.listLedger(j.id).slice(0, snapshot[j.id].ledger.length)).toEqual(snapshot[j.id].ledger);
      }
      expect(store.verifyAudit()).toMatchObject({ ok: true });
      expect(store.listAudit({ action: 'job.submit' }).map((r) => r.target).sort()).toEqual(['central', 'plain', 'secure', 'short']);
      expect(store.listAudit({ action: 'job.stop' })).toHaveLength(1);
    } finally {
      store.close();
    }
  }, 120_000);
});
