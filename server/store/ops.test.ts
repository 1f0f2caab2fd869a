/**
 * The operations plane's storage (schema v5), on real SQLite files and node:crypto: API tokens (only
 * their hash on disk), the hash-chained audit log (triggers, and tampering the chain still shows), and
 * production version tags (one per job, history, pruning keeps the tagged checkpoint), and the v4 → v5
 * migration.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CohortStore, GENESIS_HASH, ROLES, roleAtLeast, SCHEMA_VERSION, type StoreOptions } from './index.ts';
import { MIGRATIONS } from './migrations.ts';
import { codeOf } from '../../shared/testing/errors.ts';

let dir: string;
let clock: number;
const opened: CohortStore[] = [];

function open(opts: StoreOptions = {}): CohortStore {
  const s = CohortStore.open(dir, { now: () => clock, ...opts });
  opened.push(s);
  return s;
}

/** A second, raw connection to the same file: what someone with file-system access can do. */
function raw(): Database.Database {
  return new Database(path.join(dir, 'cohort.db'));
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cohort-ops-'));
  clock = 1_700_000_000_000;
});

afterEach(() => {
  for (const s of opened.splice(0)) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});


const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

function commit(s: CohortStore, jobId: string, round: number): void {
  const weights = Float32Array.of(round, round / 3, -0);
  const record = { startedAt: round, endedAt: round + 1, cohortSize: 3, survivors: 3, dropouts: 0, numExamples: 30, trainLoss: null, trainAccuracy: null };
  s.commitRound({ jobId, round, weights, optimizerState: Uint8Array.of(round), checksum: `c${round}`, record });
}

describe('roles', () => {
  it('are ordered viewer < operator < admin', () => {
    expect(ROLES).toEqual(['viewer', 'operator', 'admin']);
    expect(roleAtLeast('admin', 'operator')).toBe(true);
    expect(roleAtLeast('operator', 'operator')).toBe(true);
    expect(roleAtLeast('viewer', 'operator')).toBe(false);
  });
});

describe('API tokens', () => {
  it('returns the token once and stores only its SHA-256: the text is in no row and in no byte of the files', () => {
    const store = open();
    const { token, row } = store.createToken({ name: 'ci', role: 'operator' });
    expect(token).toMatch(/^cht_[A-Za-z0-9_-]{43}$/); // 32 bytes of base64url
    expect(row).toEqual({ id: expect.stringMatching(/^tok_[0-9a-f]{16}$/), name: 'ci', role: 'operator', createdAt: clock, lastUsedAt: null, revokedAt: null });
    const other = store.createToken({ name: 'ci2', role: 'viewer' });
    expect(other.token).not.toBe(token);
    expect(other.row.id).not.toBe(row.id);

    const db = raw();
    const rows = db.prepare('SELECT * FROM api_tokens').all() as Record<string, unknown>[];
    db.close();
    expect(rows).toHaveLength(2);
    const stored = rows.find((r) => r.id === row.id)!;
    expect(stored.token_hash).toBe(sha256(token));
    const secret = token.slice(4);
    for (const r of rows) for (const value of Object.values(r)) expect(String(value)).not.toContain(secret);
    for (const file of fs.readdirSync(dir)) {
      expect(fs.readFileSync(path.join(dir, file)).includes(Buffer.from(secret)), file).toBe(false);
    }
  });

  it('verifies a known token (lastUsedAt at most once a second), refuses unknown, altered and malformed ones', () => {
    const store = open();
    const { token, row } = store.createToken({ name: 'ops', role: 'admin' });
    clock += 10;
    expect(store.verifyToken(token)).toEqual({ ...row, lastUsedAt: clock });
    const first = clock;
    clock += 500;
    expect(store.verifyToken(token)?.lastUsedAt).toBe(first);
    clock += 500;
    expect(store.verifyToken(token)?.lastUsedAt).toBe(clock);
    expect(store.listTokens()[0].lastUsedAt).toBe(clock);

    const flipped = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    for (const bad of [flipped, token.slice(0, -1), `${token}x`, token.replace('cht_', 'xxx_'), '', 'cht_', token.toUpperCase()]) {
      expect(store.verifyToken(bad), bad).toBeUndefined();
    }
    expect(store.verifyToken(undefined as unknown as string)).toBeUndefined();
    expect(store.verifyToken(store.createToken({ name: 'fresh', role: 'viewer' }).token)?.name).toBe('fresh');
  });

  it('revokes by id or by name; a revoked token no longer verifies; revoking twice keeps the first revokedAt', () => {
    const store = open();
    const a = store.createToken({ name: 'a', role: 'viewer' });
    const b = store.createToken({ name: 'b', role: 'operator' });
    clock += 1000;
    const revoked = store.revokeToken('a');
    expect(revoked).toMatchObject({ id: a.row.id, revokedAt: clock });
    expect(store.verifyToken(a.token)).toBeUndefined();
    clock += 1000;
    expect(store.revokeToken(a.row.id).revokedAt).toBe(clock - 1000);
    expect(store.revokeToken(b.row.id)).toMatchObject({ name: 'b', revokedAt: clock });
    expect(store.verifyToken(b.token)).toBeUndefined();
    expect(store.listTokens().map((t) => [t.name, t.revokedAt])).toEqual([
      ['a', clock - 1000],
      ['b', clock],
    ]);
    expect(codeOf(() => store.revokeToken('nobody'))).toBe('NOT_FOUND');
  });

  it('refuses a duplicate name (a revoked token keeps its name), a bad role and a bad name, writing nothing', () => {
    const store = open();
    store.createToken({ name: 'ci', role: 'viewer' });
    expect(codeOf(() => store.createToken({ name: 'ci', role: 'admin' }))).toBe('TOKEN_EXISTS');
    store.revokeToken('ci');
    expect(codeOf(() => store.createToken({ name: 'ci', role: 'admin' }))).toBe('TOKEN_EXISTS');
    expect(codeOf(() => store.createToken({ name: 'x', role: 'root' as 'admin' }))).toBe('BAD_INPUT');
    for (const name of ['', ' padded ', 'tok_0123', 'a\nb', 'x'.repeat(129)]) {
      expect(codeOf(() => store.createToken({ name, role: 'viewer' })), JSON.stringify(name)).toBe('BAD_INPUT');
    }
    expect(store.listTokens().map((t) => t.name)).toEqual(['ci']);
  });

  it('survive reopening', () => {
    const store = open();
    const { token } = store.createToken({ name: 'keep', role: 'operator' });
    store.close();
    expect(open().verifyToken(token)?.role).toBe('operator');
  });
});

describe('audit log', () => {
  it('appends a hash chain: seq 1, 2, …; prevHash of row 1 is 64 zeros; hash = sha256(prevHash ‖ canonical JSON)', () => {
    const store = open();
    const first = store.appendAudit({ actor: 'cli', action: 'token.create', target: 'tok_1', outcome: 'ok', details: { role: 'admin', name: 'ops' } });
    expect(first).toMatchObject({ seq: 1, at: clock, prevHash: GENESIS_HASH });
    expect(GENESIS_HASH).toBe('0'.repeat(64));
    // The canonical text, written out: keys sorted at every depth, no whitespace, details' keys too.
    const canonical = `{"action":"token.create","actor":"cli","at":${clock},"details":{"name":"ops","role":"admin"},"outcome":"ok","seq":1,"target":"tok_1"}`;
    expect(first.hash).toBe(sha256(GENESIS_HASH + canonical));
    expect(first.details).toEqual({ name: 'ops', role: 'admin' });

    clock += 5;
    const second = store.appendAudit({ actor: 'ops', action: 'job.pause', outcome: 'denied' });
    expect(second).toMatchObject({ seq: 2, prevHash: first.hash });
    expect(second.target).toBeUndefined();
    expect(second.details).toBeUndefined();
    expect(second.hash).toBe(sha256(first.hash + `{"action":"job.pause","actor":"ops","at":${clock},"details":null,"outcome":"denied","seq":2,"target":null}`));
    expect(store.listAudit()).toEqual([first, second]);
    expect(store.verifyAudit()).toEqual({ ok: true, rows: 2, head: second.hash });
  });

  it('an empty log verifies; bad entries are refused before anything is written', () => {
    const store = open();
    expect(store.verifyAudit()).toEqual({ ok: true, rows: 0, head: GENESIS_HASH });
    expect(codeOf(() => store.appendAudit({ actor: '', action: 'a', outcome: 'ok' }))).toBe('BAD_INPUT');
    expect(codeOf(() => store.appendAudit({ actor: 'a', action: 'a', outcome: 'maybe' as 'ok' }))).toBe('BAD_INPUT');
    expect(codeOf(() => store.appendAudit({ actor: 'a', action: 'a', outcome: 'ok', details: [] as unknown as Record<string, unknown> }))).toBe('BAD_INPUT');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(codeOf(() => store.appendAudit({ actor: 'a', action: 'a', outcome: 'ok', details: cyclic }))).toBe('BAD_INPUT');
    expect(store.listAudit()).toEqual([]);
  });

  it('filters by actor, action, job (the job or inside it, not a prefix of another id), since; limit keeps the newest, oldest first', () => {
    const store = open();
    const entries = [
      { actor: 'alice', action: 'job.pause', target: 'j1' },
      { actor: 'bob', action: 'tag.set', target: 'j1/round/3' },
      { actor: 'alice', action: 'tag.set', target: 'j10' },
      { actor: 'cli', action: 'token.create', target: 'tok_1' },
      { actor: 'bob', action: 'job.resume', target: 'j1' },
      { actor: 'alice', action: 'job.pause', target: 'j_1' },
    ];
    for (const e of entries) {
      store.appendAudit({ ...e, outcome: 'ok' });
      clock += 1000;
    }
    const seqs = (f: Parameters<CohortStore['listAudit']>[0]) => store.listAudit(f).map((r) => r.seq);
    expect(seqs({ actor: 'alice' })).toEqual([1, 3, 6]);
    expect(seqs({ action: 'tag.set' })).toEqual([2, 3]);
    expect(seqs({ job: 'j1' })).toEqual([1, 2, 5]);
    expect(seqs({ job: 'j%' })).toEqual([]); // no LIKE wildcards
    expect(seqs({ job: 'j1', actor: 'bob' })).toEqual([2, 5]);
    expect(seqs({ since: store.listAudit()[3].at })).toEqual([4, 5, 6]);
    expect(seqs({ limit: 2 })).toEqual([5, 6]);
    expect(seqs({ actor: 'alice', limit: 2 })).toEqual([3, 6]);
    expect(seqs({ limit: 10_000 })).toHaveLength(6);
    for (const limit of [0, 10_001, 1.5, -1]) expect(codeOf(() => store.listAudit({ limit })), String(limit)).toBe('BAD_INPUT');
  });

  it('the default limit is 1000 rows, the newest', () => {
    const store = open();
    for (let i = 0; i < 1005; i++) store.appendAudit({ actor: 'a', action: 'x', outcome: 'ok' });
    const rows = store.listAudit();
    expect(rows).toHaveLength(1000);
    expect([rows[0].seq, rows.at(-1)!.seq]).toEqual([6, 1005]);
    expect(store.verifyAudit()).toMatchObject({ ok: true, rows: 1005 });
  });

  function threeRows(): CohortStore {
    const store = open();
    for (const action of ['one', 'two', 'three']) {
      store.appendAudit({ actor: 'cli', action, target: 'j', outcome: 'ok', details: { action } });
      clock += 1;
    }
    expect(store.verifyAudit()).toMatchObject({ ok: true, rows: 3 });
    return store;
  }

  it('triggers refuse UPDATE and DELETE of audit rows', () => {
    threeRows();
    const db = raw();
    try {
      expect(() => db.prepare(`UPDATE audit_log SET outcome = 'denied' WHERE seq = 2`).run()).toThrow(/append-only/);
      expect(() => db.prepare('DELETE FROM audit_log WHERE seq = 3').run()).toThrow(/append-only/);
      expect(() => db.prepare('DELETE FROM audit_log').run()).toThrow(/append-only/);
    } finally {
      db.close();
    }
  });

  it('an edit made by dropping the trigger is found: verifyAudit names the edited seq', () => {
    const store = threeRows();
    const db = raw();
    db.exec('DROP TRIGGER audit_log_no_update');
    db.prepare(`UPDATE audit_log SET details = '{"action":"TWO"}' WHERE seq = 2`).run();
    db.close();
    expect(store.verifyAudit()).toEqual({ ok: false, seq: 2, reason: expect.stringMatching(/edited/) });
  });

  it('an edit whose row hash was recomputed is found at the next row (its prevHash)', () => {
    const store = threeRows();
    const db = raw();
    db.exec('DROP TRIGGER audit_log_no_update');
    const row = db.prepare('SELECT * FROM audit_log WHERE seq = 2').get() as { at: number; prev_hash: string };
    const forged = `{"action":"two","actor":"mallory","at":${row.at},"details":{"action":"two"},"outcome":"ok","seq":2,"target":"j"}`;
    db.prepare(`UPDATE audit_log SET actor = 'mallory', hash = ? WHERE seq = 2`).run(sha256(row.prev_hash + forged));
    db.close();
    expect(store.verifyAudit()).toEqual({ ok: false, seq: 3, reason: expect.stringMatching(/prevHash/) });
  });

  it('a deleted row is found: a gap in seq, or the first row gone', () => {
    const store = threeRows();
    const db = raw();
    db.exec('DROP TRIGGER audit_log_no_delete');
    db.prepare('DELETE FROM audit_log WHERE seq = 2').run();
    expect(store.verifyAudit()).toEqual({ ok: false, seq: 2, reason: expect.stringMatching(/missing/) });
    db.prepare('DELETE FROM audit_log WHERE seq = 1').run();
    db.close();
    expect(store.verifyAudit()).toMatchObject({ ok: false, seq: 1 });
  });

  it('a deleted row renumbered away (seq closed up) is found by prevHash', () => {
    const store = threeRows();
    const db = raw();
    db.exec('DROP TRIGGER audit_log_no_delete; DROP TRIGGER audit_log_no_update');
    db.prepare('DELETE FROM audit_log WHERE seq = 2').run();
    db.prepare('UPDATE audit_log SET seq = 2 WHERE seq = 3').run();
    db.close();
    expect(store.verifyAudit()).toMatchObject({ ok: false, seq: 2 });
  });

  it('reordered rows are found', () => {
    const store = threeRows();
    const db = raw();
    db.exec('DROP TRIGGER audit_log_no_update');
    const rows = db.prepare('SELECT * FROM audit_log WHERE seq IN (2, 3) ORDER BY seq').all() as Record<string, unknown>[];
    const put = db.prepare(
      'UPDATE audit_log SET at = @at, actor = @actor, action = @action, target = @target, outcome = @outcome, details = @details, prev_hash = @prev_hash, hash = @hash WHERE seq = @seq',
    );
    db.transaction(() => {
      put.run({ ...rows[1], seq: 2 });
      put.run({ ...rows[0], seq: 3 });
    })();
    db.close();
    expect(store.verifyAudit()).toMatchObject({ ok: false, seq: 2 });
  });

  it('two stores on one file append to one chain', () => {
    const a = open();
    const b = open();
    for (let i = 0; i < 10; i++) (i % 2 ? a : b).appendAudit({ actor: `s${i % 2}`, action: 'x', outcome: 'ok' });
    expect(a.verifyAudit()).toMatchObject({ ok: true, rows: 10 });
    expect(b.listAudit().map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
});

describe('production version tags', () => {
  it('one per job: setting, moving (the history keeps every move), the same round again is no move', () => {
    const store = open();
    store.createJob({ id: 'j', config: {}, configHash: 'h' });
    store.createJob({ id: 'k', config: {}, configHash: 'h' });
    for (let r = 1; r <= 3; r++) commit(store, 'j', r);
    commit(store, 'k', 1);
    expect(store.productionTag('j')).toBeUndefined();
    expect(store.tagHistory('j')).toEqual([]);

    const t2 = store.setProductionTag({ jobId: 'j', round: 2, actor: 'alice', forced: false });
    expect(t2).toEqual({ jobId: 'j', round: 2, tag: 'production', taggedAt: clock, actor: 'alice', forced: false });
    clock += 1000;
    const t3 = store.setProductionTag({ jobId: 'j', round: 3, actor: 'bob', forced: true });
    expect(store.productionTag('j')).toEqual(t3);
    expect(t3.forced).toBe(true);
    clock += 1000;
    expect(store.setProductionTag({ jobId: 'j', round: 3, actor: 'carol', forced: false })).toEqual(t3);
    const back = store.setProductionTag({ jobId: 'j', round: 2, actor: 'alice', forced: false });
    expect(store.tagHistory('j')).toEqual([t2, t3, back]);
    expect(store.tagHistory('j').at(-2)).toEqual(t3); // what a rollback returns to

    expect(store.productionTag('k')).toBeUndefined();
    store.setProductionTag({ jobId: 'k', round: 1, actor: 'alice', forced: false });
    expect(store.productionTag('j')?.round).toBe(2);
    expect(store.productionTag('k')?.round).toBe(1);
    store.close();
    expect(open().tagHistory('j').map((t) => t.round)).toEqual([2, 3, 2]);
  });

  it('refuses an unknown job, a round never committed, and bad input', () => {
    const store = open();
    store.createJob({ id: 'j', config: {}, configHash: 'h' });
    commit(store, 'j', 1);
    expect(codeOf(() => store.setProductionTag({ jobId: 'nope', round: 1, actor: 'a', forced: false }))).toBe('UNKNOWN_JOB');
    expect(codeOf(() => store.setProductionTag({ jobId: 'j', round: 2, actor: 'a', forced: false }))).toBe('NOT_FOUND');
    expect(codeOf(() => store.setProductionTag({ jobId: 'j', round: 0, actor: 'a', forced: false }))).toBe('BAD_INPUT');
    expect(codeOf(() => store.setProductionTag({ jobId: 'j', round: 1, actor: '', forced: false }))).toBe('BAD_INPUT');
    expect(codeOf(() => store.setProductionTag({ jobId: 'j', round: 1, actor: 'a', forced: 'no' as unknown as boolean }))).toBe('BAD_INPUT');
    expect(store.tagHistory('j')).toEqual([]);
  });

  it('pruning never prunes the tagged round\'s checkpoint, prunes it once the tag moves away, and a pruned round cannot be tagged', () => {
    const store = open({ keepCheckpoints: 2 });
    store.createJob({ id: 'j', config: {}, configHash: 'h' });
    store.createJob({ id: 'k', config: {}, configHash: 'h' });
    for (let r = 1; r <= 3; r++) commit(store, 'j', r);
    expect(store.checkpointRounds('j')).toEqual([2, 3]);
    expect(codeOf(() => store.setProductionTag({ jobId: 'j', round: 1, actor: 'a', forced: false }))).toBe('VERSION_PRUNED');

    store.setProductionTag({ jobId: 'j', round: 2, actor: 'a', forced: false });
    for (let r = 4; r <= 6; r++) commit(store, 'j', r);
    expect(store.checkpointRounds('j')).toEqual([2, 5, 6]);
    expect(Array.from(store.checkpoint('j', 2)!.weights)).toEqual([2, 2 / 3, -0].map(Math.fround));

    // A tag of another job does not keep this job's round of the same number.
    for (let r = 1; r <= 3; r++) commit(store, 'k', r);
    expect(store.checkpointRounds('k')).toEqual([2, 3]);

    store.setProductionTag({ jobId: 'j', round: 5, actor: 'a', forced: false });
    expect(store.checkpointRounds('j')).toEqual([2, 5, 6]); // pruning runs with a commit, not with a tag move
    commit(store, 'j', 7);
    expect(store.checkpointRounds('j')).toEqual([5, 6, 7]);
    commit(store, 'j', 8);
    expect(store.checkpointRounds('j')).toEqual([5, 7, 8]);
    // The rollback target (round 2) was untagged when it was pruned: tagging it again is refused.
    expect(store.tagHistory('j').at(-2)?.round).toBe(2);
    expect(codeOf(() => store.setProductionTag({ jobId: 'j', round: 2, actor: 'a', forced: true }))).toBe('VERSION_PRUNED');
    expect(store.productionTag('j')?.round).toBe(5);
  });
});

describe('schema v5 migration', () => {
  it('migrates a v4 database to v5 keeping its jobs, rounds, checkpoints and ledger; the new tables work', () => {
    expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(5);
    const file = path.join(dir, 'cohort.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    for (const m of MIGRATIONS.slice(0, 4)) m(db);
    db.pragma('user_version = 4');
    db.prepare(`INSERT INTO jobs VALUES ('j', '{"a":1}', 'h', 'running', NULL, 2, 1, 1)`).run();
    const insertRound = db.prepare(`INSERT INTO rounds (job_id, round, started_at, ended_at, cohort_size, survivors, dropouts, num_examples, committed_at)
                 VALUES ('j', ?, 1, 2, 3, 3, 0, 30, 2)`);
    const insertCheckpoint = db.prepare(`INSERT INTO checkpoints VALUES ('j', ?, ?, x'01', 'sum', 3)`);
    for (const round of [1, 2]) {
      insertRound.run(round);
      insertCheckpoint.run(round, Buffer.from(Float32Array.of(round, 0.5).buffer));
    }
    db.prepare(
      `INSERT INTO privacy_ledger (job_id, seq, round, status, attempt, mode, mechanism, sampling, sampling_rate, population, cohort_size,
         survivors, noise_multiplier, clip_norm, event, coordinator_event, audience, epsilon, epsilon_published, delta, trust, recorded_at)
       VALUES ('j', 1, 1, 'committed', NULL, 'central', 'gaussian', 'poisson', 0.1, 10, 3, 3, 1, 1, '{"kind":"gaussian","noiseMultiplier":1}', NULL,
         'published', 0.5, 0.5, 1e-5, 'trusted', 4)`,
    ).run();
    db.close();

    const store = open();
    const peek = new Database(file, { readonly: true });
    expect(peek.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(peek.pragma('foreign_key_check')).toEqual([]);
    const tables = (peek.prepare(`SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
    expect(tables).toEqual(expect.arrayContaining(['api_tokens', 'audit_log', 'audit_log_no_delete', 'audit_log_no_update', 'version_tags']));
    peek.close();

    expect(store.getJob('j')).toMatchObject({ status: 'running', currentRound: 2, config: { a: 1 } });
    expect(store.listRounds('j').map((r) => r.round)).toEqual([1, 2]);
    expect(store.checkpointRounds('j')).toEqual([1, 2]);
    expect(Array.from(store.checkpoint('j', 2)!.weights)).toEqual([2, 0.5]);
    expect(store.listLedger('j').map((r) => [r.seq, r.epsilon])).toEqual([[1, 0.5]]);

    expect(store.setProductionTag({ jobId: 'j', round: 1, actor: 'a', forced: false }).round).toBe(1);
    const { token } = store.createToken({ name: 'n', role: 'viewer' });
    expect(store.verifyToken(token)?.name).toBe('n');
    store.appendAudit({ actor: 'cli', action: 'token.create', outcome: 'ok' });
    expect(store.verifyAudit()).toMatchObject({ ok: true, rows: 1 });
    commit(store, 'j', 3);
    store.close();
    expect(open().checkpointRounds('j')).toEqual([1, 2, 3]);
  });
});
