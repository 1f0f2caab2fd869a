/**
 * `cohort admin jobs|ledger|versions|promote|rollback|download|tokens|audit` as a real process against a running
 * coordinator's admin API over HTTP on 127.0.0.1: tables and JSON, a downloaded version equal to the
 * stored checkpoint, and exit codes that say what failed.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientEngine, type ClientTask } from '../../client/engine/index.ts';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import { startCoordinator, type Coordinator } from '../../server/coordinator.ts';
import { parseJobConfig } from '../../server/round/config.ts';
import { cohort } from './helpers.ts';
import { testIdentity } from '../support/identity.ts';

class QuickTask implements ClientTask {
  readonly numExamples = 10;
  async fit() {
    return { delta: new Float32Array(18).fill(0.02), numExamples: 10, metrics: { loss: 1 } };
  }
  async evaluate() {
    return { numExamples: 1, loss: 1, accuracy: 1 };
  }
}

describe('cohort admin against a running coordinator', () => {
  let c: Coordinator;
  let token = '';
  let viewer = '';
  let root = '';
  let dataDir = '';
  const engines: ClientEngine[] = [];
  const admin = (...args: string[]) => cohort(['admin', ...args, '--server', c.url, '--token', token]);

  beforeAll(async () => {
    const config = parseJobConfig({
      id: 'remote',
      model: { zoo: 'logreg', inputShape: [8], numClasses: 2 },
      rounds: 2,
      sampling: { mode: 'fixed', cohortSize: 3 },
      minClients: 3,
      dp: { mode: 'central', noiseMultiplier: 1, clipNorm: 1 },
    });
    dataDir = mkdtempSync(join(tmpdir(), 'cohort-remote-'));
    c = await startCoordinator({ config, dataDir });
    token = c.store.createToken({ name: 'ops', role: 'operator' }).token;
    viewer = c.store.createToken({ name: 'watcher', role: 'viewer' }).token;
    root = c.store.createToken({ name: 'root', role: 'admin' }).token;
    for (let i = 0; i < 3; i++) {
      const e = new ClientEngine({ clientId: `r${i}`, identity: testIdentity(`r${i}`), task: new QuickTask(), transport: new SocketIoClientTransport({ url: c.url, reconnect: { maxAttempts: 0 } }) });
      e.start();
      engines.push(e);
    }
    await c.engine.whenFinished();
  }, 60_000);
  afterAll(async () => {
    for (const e of engines) e.stop();
    await c?.close();
  });

  it('lists jobs, shows the ledger and the versions', async () => {
    const list = await admin('jobs', 'list', '--json');
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout.trim())).toMatchObject({ id: 'remote', status: 'completed', round: 2 });
    const table = await admin('jobs', 'list');
    expect(table.stdout).toMatch(/^\s*job\s+status\s+round/m);
    expect(table.stdout).toMatch(/remote\s+completed\s+2\/2/);
    const ledger = await admin('ledger', 'remote');
    expect(ledger.code, ledger.stderr).toBe(0);
    expect(ledger.stdout).toContain(c.store.listLedger('remote').at(-1)!.epsilon.toFixed(4));
    const versions = await admin('versions', 'remote', '--json');
    expect(versions.stdout.trim().split('\n').map((l) => JSON.parse(l).round)).toEqual(c.store.checkpointRounds('remote'));
  });

  it('promotes, rolls back and downloads the production version, equal to the checkpoint', async () => {
    expect((await admin('promote', 'remote', '1')).code).toBe(0);
    expect((await admin('promote', 'remote', '2')).code).toBe(0);
    const back = await admin('rollback', 'remote', '--json');
    expect(back.code, back.stderr).toBe(0);
    expect(JSON.parse(back.stdout).round).toBe(1);
    const out = mkdtempSync(join(tmpdir(), 'cohort-download-'));
    const d = await admin('download', 'remote', '--out', out);
    expect(d.code, d.stderr).toBe(0);
    const bin = readFileSync(join(out, 'weights.bin'));
    const weights = new Float32Array(bin.buffer, bin.byteOffset, bin.byteLength / 4);
    expect(Array.from(weights)).toEqual(Array.from(c.store.checkpoint('remote', 1)!.weights));
    expect(JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')).weightsManifest[0].paths).toEqual(['weights.bin']);
  });

  it('downloads a version as int8 and float16 (--quantize): loaded by tfjs, within each format\'s rounding of the checkpoint; sizes from the exports route', async () => {
    const tf = await import('@tensorflow/tfjs');
    await tf.setBackend('cpu');
    const { artifactHandler, flattenWeights } = await import('../../shared/model/index.ts');
    const checkpoint = c.store.checkpoint('remote', 2)!.weights;
    const sizes: Record<string, number> = {};
    for (const format of ['int8', 'float16']) {
      const out = mkdtempSync(join(tmpdir(), `cohort-download-${format}-`));
      const d = await admin('download', 'remote', '--round', '2', '--quantize', format, '--out', out, '--json');
      expect(d.code, d.stderr).toBe(0);
      expect(JSON.parse(d.stdout)).toMatchObject({ round: 2, format });
      const bin = new Uint8Array(readFileSync(join(out, 'weights.bin')));
      sizes[format] = bin.length;
      const model = await tf.loadLayersModel(artifactHandler(JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')), bin));
      const w = flattenWeights(model);
      model.dispose();
      const bound = format === 'float16' ? 1e-3 : 0.02; // logreg kernel range / 255, well inside for these weights
      for (let i = 0; i < w.length; i++) expect(Math.abs(w[i] - checkpoint[i])).toBeLessThan(bound);
    }
    // logreg 8×2 kernel + 2 biases: int8 = 16 + 8 bytes, float16 = 2 × 18
    expect(sizes).toEqual({ int8: 24, float16: 36 });
    expect((await admin('download', 'remote', '--quantize', 'int4', '--out', tmpdir())).code).toBe(2);
    const res = await fetch(`${c.url}/api/v1/jobs/remote/versions/2/exports`, { headers: { authorization: `Bearer ${viewer}` } });
    const exports = (await res.json()) as Array<{ format: string; bytes: number; gzipBytes: number; weightsBytes: number }>;
    expect(exports.map((e) => [e.format, e.weightsBytes])).toEqual([['float32', 72], ['float16', 36], ['int8', 24]]);
    for (const e of exports) expect(e.gzipBytes).toBeGreaterThan(0);
    expect((await fetch(`${c.url}/api/v1/jobs/remote/versions/2/int4/model.json`, { headers: { authorization: `Bearer ${viewer}` } })).status).toBe(400);
  });

  it('says what failed in its exit code: 3 not allowed, 4 not found, 5 not possible now, 2 bad flags', async () => {
    const forbidden = await cohort(['admin', 'jobs', 'pause', 'remote', '--server', c.url, '--token', viewer]);
    expect(forbidden.code).toBe(3);
    expect(forbidden.stderr).toMatch(/API_FORBIDDEN/);
    expect((await cohort(['admin', 'jobs', 'list', '--server', c.url, '--token', 'cht_nope'])).code).toBe(3);
    expect((await admin('jobs', 'show', 'nope')).code).toBe(4);
    const conflict = await admin('jobs', 'resume', 'remote');
    expect(conflict.code).toBe(5);
    expect(conflict.stderr).toMatch(/API_CONFLICT: cannot resume job remote: it has finished/);
    expect((await cohort(['admin', 'jobs', 'list', '--token', token])).code).toBe(2); // no --server
  });

  it('manages tokens over the API with an admin token: created, listed, used, revoked — each audited as its actor', async () => {
    const asRoot = (...args: string[]) => cohort(['admin', 'tokens', ...args, '--server', c.url, '--token', root]);
    const made = await asRoot('create', 'ci-reader', '--role', 'viewer', '--json');
    expect(made.code, made.stderr).toBe(0);
    const t = JSON.parse(made.stdout) as { token: string; id: string; role: string };
    expect(t).toMatchObject({ name: 'ci-reader', role: 'viewer' });
    const headers = { authorization: `Bearer ${t.token}` };
    expect((await fetch(`${c.url}/api/v1/jobs`, { headers })).status).toBe(200);
    const list = await asRoot('list', '--json');
    const rows = list.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.map((r) => r.name)).toEqual(expect.arrayContaining(['ops', 'watcher', 'root', 'ci-reader']));
    expect(rows.every((r) => !('hash' in r) && !('token' in r))).toBe(true);
    expect((await asRoot('create', 'ci-reader', '--role', 'viewer')).code).toBe(5); // the name is taken
    // An operator may not manage tokens.
    expect((await cohort(['admin', 'tokens', 'list', '--server', c.url, '--token', token])).code).toBe(3);
    const revoked = await asRoot('revoke', 'ci-reader');
    expect(revoked.code, revoked.stderr).toBe(0);
    expect((await fetch(`${c.url}/api/v1/jobs`, { headers })).status).toBe(401);
    expect((await asRoot('revoke', 'nobody')).code).toBe(4);
    const audit = c.store.listAudit({ actor: 'root' }).filter((r) => r.action.startsWith('token.'));
    expect(audit.map((r) => `${r.action}:${r.outcome}`)).toEqual(['token.create:ok', 'token.create:failed', 'token.revoke:ok', 'token.revoke:failed']);
  });

  it('submits a job file; the one-job coordinator refuses it (cohort serve takes submissions)', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'cohort-submit-')), 'job.json');
    writeFileSync(file, JSON.stringify({ id: 'other', model: { zoo: 'logreg', inputShape: [8], numClasses: 2 }, rounds: 1 }));
    const refused = await admin('jobs', 'submit', file);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(/cohort serve/);
    expect((await admin('jobs', 'submit', join(file, 'missing'))).code).toBe(2);
  });
  // Last: it breaks the chain on purpose.
  it('reads and verifies the audit log over the API; an edited row is named (exit 1)', async () => {
    const listed = await cohort(['admin', 'audit', '--server', c.url, '--token', viewer, '--action', 'token.create', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const rows = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seq: number; action: string });
    expect(rows.map((r) => r.seq)).toEqual(c.store.listAudit({ action: 'token.create' }).map((r) => r.seq));
    expect(rows.every((r) => r.action === 'token.create')).toBe(true);

    const held = await cohort(['admin', 'audit', '--verify', '--server', c.url, '--token', viewer, '--json']);
    expect(held.code, held.stderr).toBe(0);
    expect(JSON.parse(held.stdout)).toEqual(c.store.verifyAudit());
    expect(JSON.parse(held.stdout)).toMatchObject({ ok: true });

    // Someone with the database file edits a row behind the triggers' back.
    const target = c.store.listAudit({ limit: 10_000 })[1].seq;
    const db = new Database(join(dataDir, 'cohort.db'));
    db.exec('DROP TRIGGER audit_log_no_update');
    db.prepare(`UPDATE audit_log SET actor = 'mallory' WHERE seq = ?`).run(target);
    db.close();
    const broken = await cohort(['admin', 'audit', '--verify', '--server', c.url, '--token', viewer]);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(new RegExp(`audit chain broken at seq ${target}:`));
    expect((await cohort(['admin', 'audit', '--verify', '--server', c.url, '--token', 'cht_wrong'])).code).toBe(3);
  });
});
