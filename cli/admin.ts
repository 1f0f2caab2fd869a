/**
 * `cohort admin …`: API tokens and the audit log, run locally against the data dir. Whoever can open the
 * store's file is trusted (file-system access is the root of trust); the admin API's tokens are made here.
 *   token create --data-dir DIR --role admin|operator|viewer --name NAME [--json]   prints the token once
 *   token list   --data-dir DIR [--json]
 *   token revoke --data-dir DIR ID|NAME
 *   audit        --data-dir DIR [--verify] [--job ID] [--actor A] [--action A] [--limit N] [--json]
 * Each token create and revoke appends an audit row with actor 'cli' (outcome 'failed' when refused).
 * `audit --verify` exits 0 when the hash chain holds and 1, naming the first bad seq, when it does not.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CohortStore, DB_FILE, ROLES, type AuditRow, type Role } from '../server/store/index.ts';
import { CohortError, ConfigError } from '../shared/errors.ts';

const ACTOR = 'cli';

function dataDir(value: string | undefined): string {
  if (!value) throw new ConfigError('--data-dir is required');
  return resolve(value);
}

/** Opens an existing store (list, revoke, audit): a typo in --data-dir must not create an empty one. */
function openExisting(dir: string): CohortStore {
  if (!existsSync(join(dir, DB_FILE))) throw new ConfigError(`no Cohort store in ${dir} (expected ${DB_FILE})`);
  return CohortStore.open(dir);
}

function withStore<T>(store: CohortStore, fn: (s: CohortStore) => T): T {
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

/** Runs a token change and records it in the audit log, as done or as refused (then rethrows). */
function audited<T>(store: CohortStore, action: string, target: string | undefined, details: Record<string, unknown>, fn: () => T, ok: (r: T) => { target: string; details?: Record<string, unknown> }): T {
  let result: T;
  try {
    result = fn();
  } catch (e) {
    if (e instanceof CohortError && e.code !== 'BAD_INPUT') {
      store.appendAudit({ actor: ACTOR, action, ...(target ? { target } : {}), outcome: 'failed', details: { ...details, error: e.code } });
    }
    throw e;
  }
  const entry = ok(result);
  store.appendAudit({ actor: ACTOR, action, target: entry.target, outcome: 'ok', details: { ...details, ...entry.details } });
  return result;
}

export interface TokenCreateOptions {
  dataDir?: string;
  role?: string;
  name?: string;
  json?: boolean;
}

export function tokenCreate(o: TokenCreateOptions): number {
  const dir = dataDir(o.dataDir);
  if (!o.role || !(ROLES as readonly string[]).includes(o.role)) {
    throw new ConfigError(`--role must be one of ${ROLES.join(', ')}, got ${o.role ?? '(missing)'}`);
  }
  if (!o.name) throw new ConfigError('--name is required');
  const role = o.role as Role;
  const name = o.name;
  // Creating the first token may come before the coordinator ever ran: the store is created if missing.
  return withStore(CohortStore.open(dir), (store) => {
    const { token, row } = audited(
      store,
      'token.create',
      undefined,
      { name, role },
      () => {
        try {
          return store.createToken({ name, role });
        } catch (e) {
          if (e instanceof CohortError && e.code === 'BAD_INPUT') throw new ConfigError(`--name: ${e.message}`);
          throw e;
        }
      },
      (r) => ({ target: r.row.id }),
    );
    if (o.json) process.stdout.write(`${JSON.stringify({ token, id: row.id, name: row.name, role: row.role })}\n`);
    else {
      process.stdout.write(`${token}\n`);
      process.stderr.write(`token ${row.id} (${row.name}, ${row.role}) created; it is shown only this once and the store keeps only its hash\n`);
    }
    return 0;
  });
}

export interface TokenListOptions {
  dataDir?: string;
  json?: boolean;
}

const time = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());

export function tokenList(o: TokenListOptions): number {
  return withStore(openExisting(dataDir(o.dataDir)), (store) => {
    const tokens = store.listTokens();
    if (o.json) {
      for (const t of tokens) process.stdout.write(`${JSON.stringify(t)}\n`);
      return 0;
    }
    const header = ['id', 'name', 'role', 'created', 'last used', 'revoked'];
    const table = tokens.map((t) => [t.id, t.name, t.role, time(t.createdAt), time(t.lastUsedAt), time(t.revokedAt)]);
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
    process.stdout.write(`${line(header)}\n`);
    for (const row of table) process.stdout.write(`${line(row)}\n`);
    return 0;
  });
}

export interface TokenRevokeOptions {
  dataDir?: string;
}

export function tokenRevoke(idOrName: string | undefined, o: TokenRevokeOptions): number {
  const dir = dataDir(o.dataDir);
  if (!idOrName) throw new ConfigError('the token id or name to revoke is required');
  return withStore(openExisting(dir), (store) => {
    const row = audited(store, 'token.revoke', idOrName, { token: idOrName }, () => store.revokeToken(idOrName), (r) => ({
      target: r.id,
      details: { name: r.name },
    }));
    process.stdout.write(`token ${row.id} (${row.name}) revoked at ${time(row.revokedAt)}\n`);
    return 0;
  });
}

export interface AuditOptions {
  dataDir?: string;
  verify?: boolean;
  job?: string;
  actor?: string;
  action?: string;
  limit?: string;
  json?: boolean;
}

export function auditCommand(o: AuditOptions): number {
  const dir = dataDir(o.dataDir);
  let limit: number | undefined;
  if (o.limit !== undefined) {
    limit = Number(o.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new ConfigError(`--limit must be an integer in [1, 10000], got ${o.limit}`);
  }
  return withStore(openExisting(dir), (store) => {
    if (o.verify) {
      const result = store.verifyAudit();
      if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else if (result.ok) process.stdout.write(`audit chain holds: ${result.rows} rows, head ${result.head}\n`);
      else process.stdout.write(`audit chain broken at seq ${result.seq}: ${result.reason}\n`);
      return result.ok ? 0 : 1;
    }
    const rows = store.listAudit({ job: o.job, actor: o.actor, action: o.action, limit });
    if (o.json) {
      for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
      return 0;
    }
    for (const r of rows) process.stdout.write(`${auditLine(r)}\n`);
    return 0;
  });
}

function auditLine(r: AuditRow): string {
  const details = r.details ? ` ${JSON.stringify(r.details)}` : '';
  return `${r.seq}  ${time(r.at)}  ${r.actor}  ${r.action}  ${r.target ?? '-'}  ${r.outcome}${details}`;
}
