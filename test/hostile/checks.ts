/**
 * What the hostile-input suite judges by: the documented wire error codes and the bound on an error's
 * text, the tally of inputs per category and of the violations found, and the SQLite consistency check
 * of a finished job.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { JobConfig } from '../../server/round/config.ts';
import { DB_FILE } from '../../server/store/store.ts';
import { ErrorCode } from '../../shared/protocol/index.ts';
import { SecAggErrorCode } from '../../shared/secagg/errors.ts';

// ---- error codes ------------------------------------------------------------------------------

/**
 * Every documented wire error code: the protocol's ErrorCode values and the SecAgg state machines'
 * codes (shared/secagg/errors.ts), which the round engine forwards as they are. INTERNAL is
 * documented but is never an acceptable answer to a client's input.
 */
export const DOCUMENTED_CODES: ReadonlySet<string> = new Set([...Object.values(ErrorCode), ...Object.values(SecAggErrorCode)]);
/** The protocol's limit on an error message is 4,096 chars; issue 11 bounds our messages to 1,024. */
export const MAX_ERROR_MESSAGE = 1024;

// ---- tally ------------------------------------------------------------------------------------

export type Outcome = 'error' | 'silent' | 'dropped';

export interface CategoryCount {
  inputs: number;
  errors: number;
  silent: number;
  dropped: number;
}

/** Counts of inputs per category and the violations found, for the table and the assertions. */
export class Tally {
  readonly counts = new Map<string, CategoryCount>();
  readonly violations: string[] = [];
  /** Error codes seen per category (for the report). */
  readonly codes = new Map<string, Map<string, number>>();

  constructor(readonly seed: number) {}

  record(category: string, outcome: Outcome, codes: string[]): void {
    let c = this.counts.get(category);
    if (!c) this.counts.set(category, (c = { inputs: 0, errors: 0, silent: 0, dropped: 0 }));
    c.inputs++;
    if (outcome === 'error') c.errors++;
    else if (outcome === 'silent') c.silent++;
    else c.dropped++;
    let m = this.codes.get(category);
    if (!m) this.codes.set(category, (m = new Map()));
    for (const code of codes) m.set(code, (m.get(code) ?? 0) + 1);
  }

  /** Inputs our own client could not encode (never sent; counted apart, not judged). */
  readonly unsent = new Map<string, number>();
  unsendable(category: string): void {
    this.unsent.set(category, (this.unsent.get(category) ?? 0) + 1);
  }

  violation(text: string): void {
    // Keep the list bounded: a systematic failure repeats thousands of times.
    if (this.violations.length < 400) this.violations.push(text);
    else if (this.violations.length === 400) this.violations.push('… more violations omitted');
  }

  get total(): number {
    let n = 0;
    for (const c of this.counts.values()) n += c.inputs;
    return n;
  }

  merge(other: Tally): void {
    for (const [k, v] of other.counts) {
      const c = this.counts.get(k) ?? { inputs: 0, errors: 0, silent: 0, dropped: 0 };
      c.inputs += v.inputs;
      c.errors += v.errors;
      c.silent += v.silent;
      c.dropped += v.dropped;
      this.counts.set(k, c);
    }
    for (const [k, m] of other.codes) {
      const mine = this.codes.get(k) ?? new Map<string, number>();
      for (const [code, n] of m) mine.set(code, (mine.get(code) ?? 0) + n);
      this.codes.set(k, mine);
    }
    for (const v of other.violations) this.violation(v);
  }

  table(): string {
    const rows = [...this.counts].sort(([a], [b]) => (a < b ? -1 : 1));
    const w = Math.max(8, ...rows.map(([k]) => k.length));
    const lines = [`${'category'.padEnd(w)}  inputs  errors  silent  dropped`];
    for (const [k, c] of rows) {
      lines.push(`${k.padEnd(w)}  ${String(c.inputs).padStart(6)}  ${String(c.errors).padStart(6)}  ${String(c.silent).padStart(6)}  ${String(c.dropped).padStart(7)}`);
    }
    lines.push(`${'total'.padEnd(w)}  ${String(this.total).padStart(6)}`);
    return lines.join('\n');
  }

  json(extra: Record<string, unknown> = {}): string {
    return JSON.stringify({
      seed: this.seed,
      total: this.total,
      categories: Object.fromEntries([...this.counts].sort(([a], [b]) => (a < b ? -1 : 1))),
      codes: Object.fromEntries([...this.codes].map(([k, m]) => [k, Object.fromEntries(m)])),
      ...extra,
    });
  }
}

// ---- what an input expects --------------------------------------------------------------------


export interface InputResult {
  outcome: Outcome;
  codes: string[];
}

// ---- store consistency --------------------------------------------------------------------------

/** Checks the SQLite store of a finished job; returns the problems found (empty = consistent). */
export function checkStore(dataDir: string, config: JobConfig, opts: { dp: boolean }): string[] {
  const problems: string[] = [];
  const db = new Database(join(dataDir, DB_FILE), { readonly: true, fileMustExist: true });
  try {
    const integrity = db.pragma('integrity_check', { simple: true });
    if (integrity !== 'ok') problems.push(`integrity_check: ${String(integrity)}`);
    const fk = db.pragma('foreign_key_check') as unknown[];
    if (fk.length) problems.push(`foreign_key_check: ${JSON.stringify(fk).slice(0, 500)}`);
    const job = db.prepare('SELECT status, reason FROM jobs WHERE id = ?').get(config.id) as { status: string; reason: string | null } | undefined;
    if (job?.status !== 'completed') problems.push(`job status ${job?.status} (${job?.reason ?? ''})`);
    const rounds = (db.prepare('SELECT round FROM rounds WHERE job_id = ? ORDER BY round').all(config.id) as { round: number }[]).map((r) => r.round);
    const want = Array.from({ length: config.rounds }, (_, i) => i + 1);
    if (JSON.stringify(rounds) !== JSON.stringify(want)) problems.push(`rounds ${JSON.stringify(rounds)}, expected 1..${config.rounds}`);
    const cps = (db.prepare('SELECT round FROM checkpoints WHERE job_id = ? ORDER BY round').all(config.id) as { round: number }[]).map((r) => r.round);
    const keep = want.slice(-config.checkpoints.keep);
    if (JSON.stringify(cps) !== JSON.stringify(keep)) problems.push(`checkpoints ${JSON.stringify(cps)}, expected ${JSON.stringify(keep)}`);
    const ledger = (db.prepare('SELECT round FROM privacy_ledger WHERE job_id = ? ORDER BY round').all(config.id) as { round: number }[]).map((r) => r.round);
    const wantLedger = opts.dp ? rounds : [];
    if (JSON.stringify(ledger) !== JSON.stringify(wantLedger)) problems.push(`privacy_ledger rounds ${JSON.stringify(ledger)}, expected ${JSON.stringify(wantLedger)}`);
    const bad = db.prepare('SELECT round, train_loss AS loss FROM rounds WHERE job_id = ? AND train_loss IS NOT NULL AND abs(train_loss) > 1e6').all(config.id);
    if (bad.length) problems.push(`committed rounds with |train loss| > 1e6 (a hostile value got in): ${JSON.stringify(bad)}`);
  } finally {
    db.close();
  }
  return problems;
}
