/**
 * Audit log repository: the `audit_log` table (schema v5), append-only and hash-chained.
 *
 * Row n's hash is sha256(prevHash ‖ canonical JSON of {seq, at, actor, action, target, outcome, details})
 * in hex, where prevHash is row n−1's hash (64 zeros for row 1), ‖ is string concatenation (UTF-8), and
 * canonical JSON sorts object keys at every depth, has no whitespace, and writes an absent target or
 * details as null. An append reads the last row and writes the next under one write lock (BEGIN
 * IMMEDIATE), so two processes appending at once still make one chain.
 *
 * Triggers refuse UPDATE and DELETE; verify() recomputes the chain and names the first row that does not
 * fit: an edited row (its hash), a deleted one (a gap in seq, or the next row's prevHash), rows reordered
 * (prevHash). It cannot see the newest rows cut off the end — nothing inside the file can: compare the
 * `head` it reports with one kept elsewhere for that.
 */
import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { CohortError } from '../../shared/errors.ts';
import { AUDIT_OUTCOMES, type AuditEntry, type AuditFilter, type AuditRow, type AuditVerification } from './types.ts';
import * as v from './validate.ts';

export const GENESIS_HASH = '0'.repeat(64);
export const AUDIT_LIMIT_DEFAULT = 1000;
export const AUDIT_LIMIT_MAX = 10_000;

interface AuditSql {
  seq: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  outcome: AuditRow['outcome'];
  details: string | null;
  prev_hash: string;
  hash: string;
}

/** JSON with object keys sorted at every depth and no whitespace: one text per value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value);
    if (text === undefined) throw new CohortError('BAD_INPUT', `details: ${typeof value} is not JSON`);
    return text;
  }
  if (Array.isArray(value)) return `[${value.map((x) => canonicalJson(x === undefined ? null : x)).join(',')}]`;
  const toJSON = (value as { toJSON?: () => unknown }).toJSON;
  if (typeof toJSON === 'function') return canonicalJson(toJSON.call(value));
  const keys = Object.keys(value)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

function rowHash(prevHash: string, r: Omit<AuditSql, 'prev_hash' | 'hash' | 'details'> & { details: unknown }): string {
  const content = canonicalJson({
    seq: r.seq,
    at: r.at,
    actor: r.actor,
    action: r.action,
    target: r.target,
    outcome: r.outcome,
    details: r.details,
  });
  return createHash('sha256').update(prevHash + content, 'utf8').digest('hex');
}

function prepare(db: Database.Database) {
  return {
    last: db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1'),
    insert: db.prepare(
      `INSERT INTO audit_log (seq, at, actor, action, target, outcome, details, prev_hash, hash)
       VALUES (@seq, @at, @actor, @action, @target, @outcome, @details, @prev_hash, @hash)`,
    ),
    // The newest @limit matching rows; the caller reverses them to oldest first.
    list: db.prepare<[{ actor: string | null; action: string | null; job: string | null; since: number | null; limit: number }], AuditSql>(
      `SELECT * FROM audit_log
        WHERE (@actor IS NULL OR actor = @actor)
          AND (@action IS NULL OR action = @action)
          AND (@job IS NULL OR target = @job OR substr(target, 1, length(@job) + 1) = @job || '/')
          AND (@since IS NULL OR at >= @since)
        ORDER BY seq DESC LIMIT @limit`,
    ),
    all: db.prepare<[], AuditSql>('SELECT * FROM audit_log ORDER BY seq'),
  };
}

function toAuditRow(r: AuditSql): AuditRow {
  const row: AuditRow = { seq: r.seq, at: r.at, actor: r.actor, action: r.action, outcome: r.outcome, prevHash: r.prev_hash, hash: r.hash };
  if (r.target !== null) row.target = r.target;
  if (r.details !== null) row.details = JSON.parse(r.details) as Record<string, unknown>;
  return row;
}

export class AuditRepository {
  private readonly st: ReturnType<typeof prepare>;
  private readonly appendTx: Database.Transaction<(e: Omit<AuditSql, 'seq' | 'at' | 'prev_hash' | 'hash'>) => AuditSql>;

  constructor(
    db: Database.Database,
    private readonly now: () => number,
  ) {
    this.st = prepare(db);
    this.appendTx = db.transaction((e) => {
      const last = this.st.last.get();
      const seq = (last?.seq ?? 0) + 1;
      const prev_hash = last?.hash ?? GENESIS_HASH;
      const at = this.now();
      const details = e.details === null ? null : (JSON.parse(e.details) as unknown);
      const row: AuditSql = { ...e, seq, at, prev_hash, hash: rowHash(prev_hash, { ...e, seq, at, details }) };
      this.st.insert.run(row);
      return row;
    });
  }

  /** Appends one row (validated first; nothing is written on BAD_INPUT) and returns it as stored. */
  append(entry: AuditEntry): AuditRow {
    if (typeof entry !== 'object' || entry === null) throw new CohortError('BAD_INPUT', 'audit entry: must be an object');
    const actor = v.nonEmptyString('actor', entry.actor);
    const action = v.nonEmptyString('action', entry.action);
    const target = entry.target === undefined ? null : v.nonEmptyString('target', entry.target);
    const outcome = v.oneOf('outcome', entry.outcome, AUDIT_OUTCOMES);
    let details: string | null = null;
    if (entry.details !== undefined) {
      if (typeof entry.details !== 'object' || entry.details === null || Array.isArray(entry.details)) {
        throw new CohortError('BAD_INPUT', 'details: must be an object');
      }
      try {
        // Canonical before it is stored, so what verify() re-canonicalises from the column is the same text.
        details = canonicalJson(JSON.parse(v.json('details', entry.details)));
      } catch (e) {
        if (e instanceof CohortError) throw e;
        throw new CohortError('BAD_INPUT', `details: ${(e as Error).message}`);
      }
    }
    return toAuditRow(this.appendTx.immediate({ actor, action, target, outcome, details }));
  }

  /** Rows matching every filter given: the newest `limit` of them, oldest first. */
  list(filter: AuditFilter = {}): AuditRow[] {
    if (typeof filter !== 'object' || filter === null) throw new CohortError('BAD_INPUT', 'filter: must be an object');
    const optional = (field: string, x: unknown) => (x === undefined ? null : v.nonEmptyString(field, x));
    const limit = filter.limit === undefined ? AUDIT_LIMIT_DEFAULT : v.roundNumber('limit', filter.limit);
    if (limit > AUDIT_LIMIT_MAX) throw new CohortError('BAD_INPUT', `limit: must be ≤ ${AUDIT_LIMIT_MAX}`, { field: 'limit', value: String(limit) });
    const rows = this.st.list.all({
      actor: optional('actor', filter.actor),
      action: optional('action', filter.action),
      job: optional('job', filter.job),
      since: filter.since === undefined ? null : v.timestamp('since', filter.since),
      limit,
    });
    return rows.reverse().map(toAuditRow);
  }

  /** Recomputes the whole chain, one row at a time (memory does not grow with the log). */
  verify(): AuditVerification {
    let expectedSeq = 1;
    let prevHash = GENESIS_HASH;
    for (const r of this.st.all.iterate()) {
      if (r.seq !== expectedSeq) {
        return { ok: false, seq: expectedSeq, reason: `row ${expectedSeq} is missing (the next row is ${r.seq})` };
      }
      if (r.prev_hash !== prevHash) {
        return { ok: false, seq: r.seq, reason: `prevHash does not match row ${r.seq - 1}'s hash (a row deleted, replaced or reordered)` };
      }
      let details: unknown;
      try {
        details = r.details === null ? null : JSON.parse(r.details);
      } catch {
        return { ok: false, seq: r.seq, reason: 'details are not JSON (the row was edited)' };
      }
      if (rowHash(prevHash, { ...r, details }) !== r.hash) {
        return { ok: false, seq: r.seq, reason: 'hash does not match the row content (the row was edited)' };
      }
      prevHash = r.hash;
      expectedSeq++;
    }
    return { ok: true, rows: expectedSeq - 1, head: prevHash };
  }
}
