/**
 * The multi-job service (`cohort serve`, server/service.ts) over real HTTP and Socket.IO on 127.0.0.1:
 * two jobs submitted over the admin API run at once on one port, each with its own clients and one
 * client taking part in both; a bad config is a 400 with its issues; a restarted service resumes a job
 * that was running, after its last committed round.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientEngine, type ClientTask } from '../../client/engine/index.ts';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import { startService, type Service } from '../../server/service.ts';
import { testIdentity } from '../support/identity.ts';

class QuickTask implements ClientTask {
  readonly numExamples = 10;
  async fit() {
    return { delta: new Float32Array(18).fill(0.01), numExamples: 10, metrics: { loss: 1 } };
  }
  async evaluate() {
    return { numExamples: 1, loss: 1, accuracy: 1 };
  }
}

const job = (id: string, rounds: number) => ({
  id,
  model: { zoo: 'logreg', inputShape: [8], numClasses: 2 },
  rounds,
  sampling: { mode: 'fixed', cohortSize: 4 },
  minClients: 4,
  timeouts: { trainMs: 30_000, retryDelayMs: 50 },
});

const engines: ClientEngine[] = [];
const services: Service[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) e.stop();
  for (const s of services.splice(0)) await s.close();
});

function join_(url: string, jobId: string, clientId: string): ClientEngine {
  const e = new ClientEngine({ clientId, identity: testIdentity(clientId), task: new QuickTask(), transport: new SocketIoClientTransport({ url: `${url}/jobs/${jobId}`, reconnect: { initialDelayMs: 100, maxDelayMs: 300 } }) });
  e.start();
  engines.push(e);
  return e;
}

describe('cohort serve: many jobs in one process', () => {
  it('runs two submitted jobs at once, with a client in both, and refuses a bad config with its issues', async () => {
    const s = await startService({ dataDir: mkdtempSync(join(tmpdir(), 'cohort-serve-')) });
    services.push(s);
    const op = s.store.createToken({ name: 'op', role: 'operator' }).token;
    const submit = (body: unknown) =>
      fetch(`${s.url}/api/v1/jobs`, { method: 'POST', headers: { authorization: `Bearer ${op}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await submit(job('alpha', 2))).status).toBe(200);
    expect((await submit(job('beta', 3))).status).toBe(200);
    expect((await submit(job('alpha', 2))).status).toBe(409);
    const bad = await submit({ ...job('gamma', 2), rounds: -1 });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { error: { code: string; issues: Array<{ path: string[] }> } };
    expect(body.error.code).toBe('BAD_CONFIG');
    expect(body.error.issues.map((i) => i.path.join('.'))).toContain('rounds');
    for (let i = 0; i < 3; i++) join_(s.url, 'alpha', `a${i}`);
    for (let i = 0; i < 3; i++) join_(s.url, 'beta', `b${i}`);
    // One client process in both jobs.
    join_(s.url, 'alpha', 'both');
    join_(s.url, 'beta', 'both');
    const [a, b] = await Promise.all([s.jobs.get('alpha')!.engine.whenFinished(), s.jobs.get('beta')!.engine.whenFinished()]);
    expect([a.status, a.rounds, b.status, b.rounds]).toEqual(['completed', 2, 'completed', 3]);
    // 'both' took part in every round of each job (cohorts of 4 of exactly 4).
    expect(s.store.listClients().find((c) => c.id === 'both')?.roundsCompleted).toBe(5);
    const list = (await (await fetch(`${s.url}/api/v1/jobs`, { headers: { authorization: `Bearer ${op}` } })).json()) as Array<{ id: string; status: string }>;
    expect(list.map((j) => `${j.id}:${j.status}`).sort()).toEqual(['alpha:completed', 'beta:completed']);
    const metrics = await (await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${op}` } })).text();
    expect(metrics).toMatch(/^cohort_rounds_committed_total\{job="alpha"\} 2$/m);
    expect(metrics).toMatch(/^cohort_rounds_committed_total\{job="beta"\} 3$/m);
    expect(s.store.listAudit({ action: 'job.submit' }).map((r) => `${r.target ?? '-'}:${r.outcome}`)).toEqual(['alpha:ok', 'beta:ok', 'alpha:failed', '-:failed']);
  }, 60_000);

  it('resumes a job that was running when the service stopped, after its last committed round', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cohort-serve-restart-'));
    const first = await startService({ dataDir });
    services.push(first);
    await first.submit((await import('../../server/round/config.ts')).parseJobConfig(job('long', 1000)));
    for (let i = 0; i < 4; i++) join_(first.url, 'long', `l${i}`);
    await new Promise<void>((resolve) => first.jobs.get('long')!.engine.on('round', (r) => r.round >= 2 && resolve()));
    for (const e of engines.splice(0)) e.stop();
    await first.close();
    services.splice(0);
    const second = await startService({ dataDir });
    services.push(second);
    const resumed = second.jobs.get('long');
    expect(resumed).toBeDefined();
    const from = resumed!.engine.lastCommittedRound;
    expect(from).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < 4; i++) join_(second.url, 'long', `l${i}`);
    await new Promise<void>((resolve) => resumed!.engine.on('round', (r) => r.round > from && resolve()));
    expect(second.store.listRounds('long').map((r) => r.round)).toEqual(Array.from({ length: resumed!.engine.lastCommittedRound }, (_, i) => i + 1));
  }, 60_000);
});
