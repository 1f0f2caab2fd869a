/**
 * `cohort admin` as a process against a real data dir: a token created, listed, verified by the store,
 * revoked; every create and revoke in the audit log with actor 'cli'; `audit --verify` exit 0 on an
 * intact chain and 1 (naming the seq) after an edit made by dropping the trigger; bad flags exit 2.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { CohortStore } from '../../server/store/index.ts';
import { cohort } from './helpers.ts';

describe('cohort admin', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-admin-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates, lists and revokes tokens, audits each, and verifies the audit chain', async () => {
    const created = await cohort(['admin', 'token', 'create', '--data-dir', dir, '--role', 'operator', '--name', 'ci', '--json']);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const out = JSON.parse(created.stdout) as { token: string; id: string; name: string; role: string };
    expect(out).toEqual({ token: expect.stringMatching(/^cht_[A-Za-z0-9_-]{43}$/), id: expect.stringMatching(/^tok_/), name: 'ci', role: 'operator' });

    const plain = await cohort(['admin', 'token', 'create', '--data-dir', dir, '--role', 'viewer', '--name', 'dash']);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^cht_[A-Za-z0-9_-]{43}\n$/);

    let store = CohortStore.open(dir);
    expect(store.verifyToken(out.token)).toMatchObject({ id: out.id, name: 'ci', role: 'operator' });
    expect(store.verifyToken(plain.stdout.trim())?.name).toBe('dash');
    store.close();

    const list = await cohort(['admin', 'token', 'list', '--data-dir', dir, '--json']);
    expect(list.code).toBe(0);
    const rows = list.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.map((r) => [r.name, r.role, r.revokedAt])).toEqual([
      ['ci', 'operator', null],
      ['dash', 'viewer', null],
    ]);
    expect(list.stdout).not.toContain(out.token.slice(4));
    const table = await cohort(['admin', 'token', 'list', '--data-dir', dir]);
    expect(table.stdout).toMatch(/^id\s+name\s+role/);
    expect(table.stdout).toContain(out.id);

    const duplicate = await cohort(['admin', 'token', 'create', '--data-dir', dir, '--role', 'admin', '--name', 'ci']);
    expect(duplicate.code).toBe(2);
    expect(duplicate.stderr).toMatch(/already exists/);

    const revoked = await cohort(['admin', 'token', 'revoke', '--data-dir', dir, 'ci']);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain(`token ${out.id} (ci) revoked`);
    const unknown = await cohort(['admin', 'token', 'revoke', '--data-dir', dir, 'nobody']);
    expect(unknown.code).toBe(2);
    store = CohortStore.open(dir);
    expect(store.verifyToken(out.token)).toBeUndefined();
    expect(store.listAudit().map((r) => [r.seq, r.actor, r.action, r.outcome, r.target])).toEqual([
      [1, 'cli', 'token.create', 'ok', out.id],
      [2, 'cli', 'token.create', 'ok', expect.stringMatching(/^tok_/)],
      [3, 'cli', 'token.create', 'failed', undefined],
      [4, 'cli', 'token.revoke', 'ok', out.id],
      [5, 'cli', 'token.revoke', 'failed', 'nobody'],
    ]);
    store.close();

    const audit = await cohort(['admin', 'audit', '--data-dir', dir, '--json']);
    expect(audit.code).toBe(0);
    expect(audit.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([1, 2, 3, 4, 5]);
    const filtered = await cohort(['admin', 'audit', '--data-dir', dir, '--action', 'token.revoke', '--limit', '1']);
    expect(filtered.stdout.trim().split('\n')).toHaveLength(1);
    expect(filtered.stdout).toMatch(/^5 .*token\.revoke +nobody +failed/);

    const ok = await cohort(['admin', 'audit', '--data-dir', dir, '--verify', '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ ok: true, rows: 5, head: expect.stringMatching(/^[0-9a-f]{64}$/) });

    // Someone with the file drops the trigger and edits a row: the chain names it.
    const db = new Database(join(dir, 'cohort.db'));
    db.exec('DROP TRIGGER audit_log_no_update');
    db.prepare(`UPDATE audit_log SET actor = 'someone-else' WHERE seq = 4`).run();
    db.close();
    const broken = await cohort(['admin', 'audit', '--data-dir', dir, '--verify']);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/audit chain broken at seq 4/);
    const brokenJson = await cohort(['admin', 'audit', '--data-dir', dir, '--verify', '--json']);
    expect(brokenJson.code).toBe(1);
    expect(JSON.parse(brokenJson.stdout)).toMatchObject({ ok: false, seq: 4 });
  });

  it('refuses bad flags with exit 2 (ConfigError) and does not create a store for list, revoke or audit', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'cohort-admin-empty-'));
    try {
      const cases: [string[], RegExp][] = [
        [['admin', 'token', 'create', '--data-dir', empty, '--role', 'root', '--name', 'x'], /--role must be one of viewer, operator, admin/],
        [['admin', 'token', 'create', '--data-dir', empty, '--role', 'admin'], /--name is required/],
        [['admin', 'token', 'create', '--role', 'admin', '--name', 'x'], /--data-dir is required/],
        [['admin', 'token', 'create', '--data-dir', empty, '--role', 'admin', '--name', 'tok_x'], /--name: /],
        [['admin', 'token', 'list', '--data-dir', join(empty, 'nothing')], /no Cohort store/],
        [['admin', 'token', 'revoke', '--data-dir', dir], /id or name to revoke is required/],
        [['admin', 'audit', '--data-dir', join(empty, 'nothing'), '--verify'], /no Cohort store/],
        [['admin', 'audit', '--data-dir', dir, '--limit', '0'], /--limit must be/],
      ];
      for (const [args, message] of cases) {
        const r = await cohort(args);
        expect(r.code, args.join(' ')).toBe(2);
        expect(r.stderr, args.join(' ')).toMatch(message);
      }
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
