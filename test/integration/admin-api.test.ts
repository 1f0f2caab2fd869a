/**
 * The admin HTTP API over real HTTP on 127.0.0.1, on the coordinator's own port (Socket.IO shares it),
 * with real Socket.IO clients training a real central-DP job and a real SQLite store: every route ×
 * every role (and no token) answers as its declared role says; denials are audited; lifecycle
 * transitions and their refusals; a downloaded version loads with tf.loadLayersModel and holds the
 * coordinator's weights; promotion and rollback; typed errors for bad input; the OpenAPI document lists
 * exactly the live routes; Prometheus metrics.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientEngine, type ClientTask } from '../../client/engine/index.ts';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import { startCoordinator, type Coordinator } from '../../server/coordinator.ts';
import { parseJobConfig, type JobConfigInput } from '../../server/round/config.ts';
import { testIdentity } from '../support/identity.ts';
import { ed25519KeyPair } from '../../shared/crypto/ed25519.ts';
import { signRevocationList } from '../../shared/identity/index.ts';

const DIM = 18; // logreg 8 → 2

class QuickTask implements ClientTask {
  readonly numExamples = 10;
  constructor(private readonly value: number) {}
  async fit() {
    return { delta: new Float32Array(DIM).fill(this.value), numExamples: 10, metrics: { loss: 1 } };
  }
  async evaluate() {
    return { numExamples: 1, loss: 1, accuracy: 1 };
  }
}

function jobConfig(id: string, overrides: Partial<JobConfigInput> = {}) {
  return parseJobConfig({
    id,
    model: { zoo: 'logreg', inputShape: [8], numClasses: 2 },
    rounds: 2,
    sampling: { mode: 'fixed', cohortSize: 3 },
    minClients: 3,
    timeouts: { trainMs: 30_000, retryDelayMs: 50 },
    dp: { mode: 'central', noiseMultiplier: 1, clipNorm: 1, budget: { epsilon: 1e6, delta: 1e-5 } },
    ...overrides,
  });
}

const engines: ClientEngine[] = [];
function clients(url: string, n: number, prefix: string) {
  for (let i = 0; i < n; i++) {
    const engine = new ClientEngine({ clientId: `${prefix}${i}`, identity: testIdentity(`${prefix}${i}`), task: new QuickTask(0.01 * (i + 1)), transport: new SocketIoClientTransport({ url, reconnect: { maxAttempts: 0 } }) });
    engine.start();
    engines.push(engine);
  }
}

describe('admin API', () => {
  let c: Coordinator;
  const tokens: Record<'viewer' | 'operator' | 'admin', string> = { viewer: '', operator: '', admin: '' };
  const call = (method: string, path: string, token?: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(`${c.url}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });

  beforeAll(async () => {
    c = await startCoordinator({ config: jobConfig('api'), dataDir: mkdtempSync(join(tmpdir(), 'cohort-api-')) });
    for (const role of ['viewer', 'operator', 'admin'] as const) tokens[role] = c.store.createToken({ name: `${role}-1`, role }).token;
    clients(c.url, 3, 'a');
    await c.engine.whenFinished();
  }, 60_000);
  afterAll(async () => {
    for (const e of engines) e.stop();
    await c?.close();
  });

  it('answers every route as its declared role says, for every role and without a token; denials are audited', async () => {
    const doc = (await (await call('GET', '/api/v1/openapi.json')).json()) as { paths: Record<string, Record<string, { 'x-cohort-role': string }>> };
    const rank = { public: -1, viewer: 0, operator: 1, admin: 2 } as const;
    const deniedBefore = c.store.listAudit({ limit: 10_000 }).filter((r) => r.outcome === 'denied').length;
    let denials = 0;
    let checked = 0;
    c.store.createToken({ name: 'matrix', role: 'viewer' });
    // A body each POST route accepts (the others take {}); revoking a revoked token again is a no-op.
    const bodies: Record<string, () => unknown> = { '/api/v1/tokens': () => ({ name: `matrix-${checked}`, role: 'viewer' }), '/api/v1/clients/enrolments': () => ({ clientId: 'matrix-device' }), '/api/v1/clients/revocation-list': () => signRevocationList(ed25519KeyPair(), [], Date.now()) };
    for (const [path, methods] of Object.entries(doc.paths)) {
      // A client route names a client of the job (revoking one again is a no-op).
      const url = path.replace(/^\/api\/v1\/clients\/\{id\}/, '/api/v1/clients/a2').replace('{id}', 'api').replace('{round}', '1').replace('{token}', 'matrix').replace('{format}', 'int8');
      for (const [method, op] of Object.entries(methods)) {
        const needed = op['x-cohort-role'] as keyof typeof rank;
        for (const who of [undefined, 'viewer', 'operator', 'admin'] as const) {
          const res = await call(method.toUpperCase(), url, who ? tokens[who] : undefined, method === 'post' ? (bodies[path]?.() ?? {}) : undefined);
          const allowed = needed === 'public' || (who !== undefined && rank[who] >= rank[needed]);
          const what = `${method.toUpperCase()} ${url} as ${who ?? 'nobody'} (needs ${needed}): ${res.status}`;
          if (allowed) expect([200, 409], what).toContain(res.status);
          else {
            expect(res.status, what).toBe(who === undefined ? 401 : 403);
            const body = (await res.json()) as { error: { code: string } };
            expect(body.error.code, what).toBe(who === undefined ? 'API_UNAUTHENTICATED' : 'API_FORBIDDEN');
            denials++;
          }
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(4 * 20);
    const denied = c.store.listAudit({ limit: 10_000 }).filter((r) => r.outcome === 'denied').length;
    expect(denied - deniedBefore).toBe(denials);
  });

  it('lists the job with both ε, its ledger with the next round projected, rounds and clients', async () => {
    const [job] = (await (await call('GET', '/api/v1/jobs', tokens.viewer)).json()) as Array<Record<string, unknown>>;
    expect(job).toMatchObject({ id: 'api', status: 'completed', round: 2, rounds: 2, dp: 'central' });
    const ledger = (await (await call('GET', '/api/v1/jobs/api/ledger', tokens.viewer)).json()) as { rows: Array<{ epsilon: number }>; spent: { published: number; coordinator: null } };
    expect(ledger.rows).toHaveLength(2);
    expect(ledger.spent.published).toBe(c.store.listLedger('api').at(-1)!.epsilon);
    expect(ledger.spent.coordinator).toBeNull(); // central mode: no guarantee against the coordinator
    const rounds = (await (await call('GET', '/api/v1/jobs/api/rounds', tokens.viewer)).json()) as { rounds: unknown[] };
    expect(rounds.rounds).toHaveLength(2);
    const seen = (await (await call('GET', '/api/v1/clients', tokens.viewer)).json()) as Array<{ id: string }>;
    expect(seen.map((x) => x.id).sort()).toEqual(['a0', 'a1', 'a2']);
  });

  it('serves a version that tf.loadLayersModel loads, holding the coordinator’s weights', async () => {
    const versions = (await (await call('GET', '/api/v1/jobs/api/versions', tokens.viewer)).json()) as Array<{ round: number; sha256: string }>;
    expect(versions.map((v) => v.round)).toContain(2);
    await tf.setBackend('cpu');
    const model = await tf.loadLayersModel(tf.io.http(`${c.url}/api/v1/jobs/api/versions/2/model.json`, { requestInit: { headers: { authorization: `Bearer ${tokens.viewer}` } } }));
    const loaded = model.getWeights().flatMap((w) => Array.from(w.dataSync()));
    const stored = Array.from(c.store.checkpoint('api', 2)!.weights);
    expect(loaded).toEqual(stored);
    expect(Array.from(c.engine.globalWeights)).toEqual(stored);
  });

  it('promotes a version and rolls back to the previous one, audited; rollback without a previous one is a conflict', async () => {
    expect((await call('POST', '/api/v1/jobs/api/versions/2/promote', tokens.operator, {})).status).toBe(200);
    expect((await call('POST', '/api/v1/jobs/api/versions/1/promote', tokens.operator, {})).status).toBe(200);
    const back = await call('POST', '/api/v1/jobs/api/rollback', tokens.operator, {});
    expect(back.status).toBe(200);
    expect(((await back.json()) as { round: number }).round).toBe(2);
    expect(c.store.productionTag('api')?.round).toBe(2);
    const actions = c.store.listAudit({ job: 'api' }).map((r) => r.action);
    expect(actions).toContain('version.promote');
    expect(actions).toContain('version.rollback');
    expect((await call('POST', '/api/v1/jobs/api/versions/9/promote', tokens.operator, {})).status).toBe(404);
  });

  it('refuses bad input with typed errors and no stack trace', async () => {
    const unknown = await call('GET', '/api/v1/jobs/nope', tokens.viewer);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: { code: 'API_NOT_FOUND', message: 'no job "nope"' } });
    expect((await call('GET', '/api/v1/nothing-here', tokens.viewer)).status).toBe(404);
    const media = await call('POST', '/api/v1/jobs/api/pause', tokens.operator, 'x', { 'content-type': 'text/xml' });
    expect(media.status).toBe(415);
    const big = await call('POST', '/api/v1/jobs/api/pause', tokens.operator, { reason: 'x'.repeat(2 * 1024 * 1024) });
    expect(big.status).toBe(413);
    const extra = await call('POST', '/api/v1/jobs/api/pause', tokens.operator, { reason: 'a', sneaky: 1 });
    expect(extra.status).toBe(400);
    const text = JSON.stringify(await extra.json());
    expect(text).toMatch(/API_BAD_REQUEST/);
    expect(text).not.toMatch(/at .*\.ts:\d+/);
    expect((await call('POST', '/api/v1/jobs/api/resume', tokens.operator, {})).status).toBe(409); // a finished job
  });

  it('serves Prometheus metrics to a viewer and health to anyone', async () => {
    const res = await call('GET', '/metrics', tokens.viewer);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^cohort_rounds_committed_total\{job="api"\} 2$/m);
    expect(text).toMatch(/process_cpu_user_seconds_total/);
    expect(await (await call('GET', '/healthz')).json()).toEqual({ ok: true, jobs: 1 });
  });

  it('rate-limits failed authentication per address', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await call('GET', '/api/v1/jobs', `cht_wrong${i}`)).status);
    expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(10)).toEqual([429, 429]);
    // A good token from the same address is refused too until the minute is over (the limit is per address).
    expect((await call('GET', '/api/v1/jobs', tokens.viewer)).status).toBe(429);
  });
});

describe('admin API promotion gates and model cards', () => {
  it('promotes automatically only versions that pass every gate; a manual promotion failing one needs force, audited', async () => {
    // The demo-style held-out evaluation runs after each round (acknowledged: the metrics leave un-noised).
    const cfg = jobConfig('gated', {
      rounds: 3,
      evaluation: { every: 1, unaccountedMetrics: true },
      promote: { auto: true, minAccuracy: 0.5, maxEpsilon: 1e5 },
    });
    const c = await startCoordinator({ config: cfg, dataDir: mkdtempSync(join(tmpdir(), 'cohort-api-gates-')) });
    try {
      const op = c.store.createToken({ name: 'op', role: 'operator' }).token;
      clients(c.url, 3, 'g');
      await c.engine.whenFinished();
      // QuickTask evaluates at accuracy 1: every version passes; the last one holds the tag.
      expect(c.store.productionTag('gated')).toMatchObject({ round: 3, actor: 'system', forced: false });
      expect(c.store.listAudit({ job: 'gated', action: 'version.promote' }).filter((r) => r.actor === 'system')).toHaveLength(3);
      const card = (await (await fetch(`${c.url}/api/v1/jobs/gated/versions/3/card`, { headers: { authorization: `Bearer ${op}` } })).json()) as Record<string, any>;
      expect(card).toMatchObject({ job: 'gated', version: 3, evaluation: { accuracy: 1 }, gates: { passed: true } });
      expect(card.privacy.epsilonAgainstConsumers).toBe(c.store.listLedger('gated').at(-1)!.epsilonPublished);
      expect(card.privacy.trust).toMatch(/trusted coordinator/);
      const md = await (await fetch(`${c.url}/api/v1/jobs/gated/versions/3/card?format=md`, { headers: { authorization: `Bearer ${op}` } })).text();
      expect(md).toMatch(/^# Model card: gated, version 3/);
      expect(md).toMatch(/gates: minAccuracy 0\.5: passed/);
    } finally {
      await c.close();
    }
  }, 60_000);

  it('refuses a manual promotion that fails a gate unless forced', async () => {
    const cfg = jobConfig('strict', { rounds: 2, evaluation: { every: 1, unaccountedMetrics: true }, promote: { maxEpsilon: 1e-3 } });
    const c = await startCoordinator({ config: cfg, dataDir: mkdtempSync(join(tmpdir(), 'cohort-api-strict-')) });
    try {
      const op = c.store.createToken({ name: 'op', role: 'operator' }).token;
      clients(c.url, 3, 's');
      await c.engine.whenFinished();
      expect(c.store.productionTag('strict')).toBeUndefined(); // not auto
      const post = (body: unknown) =>
        fetch(`${c.url}/api/v1/jobs/strict/versions/2/promote`, { method: 'POST', headers: { authorization: `Bearer ${op}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const refused = await post({});
      expect(refused.status).toBe(409);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/fails its promotion gates \(maxEpsilon\)/);
      expect(c.store.productionTag('strict')).toBeUndefined();
      expect((await post({ force: true })).status).toBe(200);
      expect(c.store.productionTag('strict')).toMatchObject({ round: 2, actor: 'op', forced: true });
      const audit = c.store.listAudit({ job: 'strict', action: 'version.promote' });
      expect(audit.map((r) => r.outcome)).toEqual(['failed', 'ok']);
      expect(audit[1].details).toMatchObject({ forced: true });
    } finally {
      await c.close();
    }
  }, 60_000);
});

describe('admin API lifecycle', () => {
  it('pauses, resumes and stops a running job; a stopped job cannot resume', async () => {
    const c = await startCoordinator({ config: jobConfig('life', { rounds: 1000 }), dataDir: mkdtempSync(join(tmpdir(), 'cohort-api-life-')) });
    try {
      const op = c.store.createToken({ name: 'op', role: 'operator' }).token;
      const call = (path: string) => fetch(`${c.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${op}`, 'content-type': 'application/json' }, body: '{}' });
      clients(c.url, 3, 'l');
      await new Promise<void>((resolve) => c.engine.once('round', () => resolve()));
      const paused = await call('/api/v1/jobs/life/pause');
      expect(paused.status).toBe(200);
      expect(((await paused.json()) as { state: string }).state).toBe('paused');
      expect((await call('/api/v1/jobs/life/pause')).status).toBe(409);
      expect((await call('/api/v1/jobs/life/resume')).status).toBe(200);
      expect(c.engine.status).not.toBe('paused');
      expect((await call('/api/v1/jobs/life/stop')).status).toBe(200);
      expect((await c.engine.whenFinished()).status).toBe('stopped');
      expect((await call('/api/v1/jobs/life/resume')).status).toBe(409);
      const actions = c.store.listAudit({ job: 'life' }).map((r) => `${r.actor}:${r.action}:${r.outcome}`);
      expect(actions).toEqual(
        expect.arrayContaining(['op:job.pause:ok', 'op:job.pause:failed', 'op:job.resume:ok', 'op:job.stop:ok', 'system:job.finished:ok', 'op:job.resume:failed']),
      );
      expect(c.store.verifyAudit()).toMatchObject({ ok: true, rows: c.store.listAudit({ limit: 10_000 }).length });
    } finally {
      await c.close();
    }
  }, 60_000);
  it('serves a growing ledger fresh after every commit, the same plain and gzipped', async () => {
    const c = await startCoordinator({ config: jobConfig('grow', { rounds: 1000 }), dataDir: mkdtempSync(join(tmpdir(), 'cohort-api-grow-')) });
    try {
      const viewer = c.store.createToken({ name: 'v', role: 'viewer' }).token;
      const read = async (encoding: string) => {
        const res = await fetch(`${c.url}/api/v1/jobs/grow/ledger`, { headers: { authorization: `Bearer ${viewer}`, 'accept-encoding': encoding } });
        expect(res.status).toBe(200);
        return { encoding: res.headers.get('content-encoding'), body: (await res.json()) as { rows: Array<{ seq: number; epsilon: number }>; spent: { published: number } } };
      };
      clients(c.url, 3, 'g');
      await new Promise<void>((resolve) => c.engine.once('round', () => resolve()));
      for (let step = 0; step < 3; step++) {
        const [plain, gz] = [await read('identity'), await read('gzip')];
        expect(plain.encoding).toBeNull();
        expect(gz.encoding).toBe('gzip');
        const stored = c.store.listLedger('grow');
        // Each answer is the store as it was then: never a stale cached ledger.
        for (const answer of [plain.body, gz.body]) {
          expect(answer.rows.length).toBeGreaterThanOrEqual(step + 1);
          expect(answer.rows).toEqual(stored.slice(0, answer.rows.length));
          expect(answer.spent.published).toBe(answer.rows.at(-1)!.epsilon);
        }
        const before = c.store.ledgerHead('grow');
        await new Promise<void>((resolve) => c.engine.once('round', () => resolve()));
        const after = c.store.ledgerHead('grow');
        expect(after).toBeGreaterThan(before);
        // Rounds keep committing meanwhile: the answer holds at least every row committed before it was asked.
        expect((await read('gzip')).body.rows.length).toBeGreaterThanOrEqual(after);
      }
    } finally {
      await c.close();
    }
  }, 60_000);
});
