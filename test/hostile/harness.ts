/**
 * Plumbing of the hostile-input suite: an in-process coordinator with an in-memory pino log, process
 * level crash recorders, a tapping client connection that attributes every server error to the input
 * that caused it, a tally of inputs and violations, and the SQLite consistency check.
 *
 * Attribution: after every input the tap emits a *probe*, a head frame of the unknown message type
 * `probe.<n>`. The server handles one connection's frames in order and answers the probe with
 * UNKNOWN_TYPE naming it, so the errors that arrive after probe n−1's answer and before probe n's
 * belong to input n. Inputs are pipelined (no round trip wait between them) and still attributed
 * exactly. A connection that closes before a probe is answered marks its pending inputs `dropped`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { ClientEngine, type ClientTask } from '../../client/engine/index.ts';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import { startCoordinator, type Coordinator, type CoordinatorOptions } from '../../server/coordinator.ts';
import { parseJobConfig, type JobConfig } from '../../server/round/config.ts';
import { DB_FILE } from '../../server/store/store.ts';
import type { Logger } from '../../shared/log.ts';
import {
  DEFAULT_LIMITS,
  emitFrames,
  ErrorCode,
  ErrorMessageSchema,
  FRAME_VERSION,
  ProtocolError,
  Reassembler,
  type ClientMessage,
  type ClientTransport,
  type ClientTransportSink,
  type ServerMessage,
} from '../../shared/protocol/index.ts';
import { SecAggErrorCode } from '../../shared/secagg/errors.ts';
import type { RawInput } from './generators.ts';

// ---- seed -------------------------------------------------------------------------------------

/** The run's seed: COHORT_HOSTILE_SEED, or a random 32-bit one. Printed in every failure. */
export function hostileSeed(): number {
  const env = process.env.COHORT_HOSTILE_SEED;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`COHORT_HOSTILE_SEED must be a 32-bit unsigned integer, got ${env}`);
    return n;
  }
  return (Math.random() * 2 ** 32) >>> 0;
}

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

/**
 * `error`: at least one typed error (optionally one of `codes`), or the connection dropped.
 * `silent`: no error (frames the protocol documents as dropped silently, honest messages).
 * `drop`: the server must close the connection. `any`: no expectation beyond the global ones
 * (raw engine.io garbage: close or ignore, never crash).
 */
export type Expect =
  | { kind: 'error'; codes?: readonly string[]; allowDrop?: boolean }
  | { kind: 'silent' }
  | { kind: 'drop' }
  | { kind: 'any' };

/** One socket.io emission. */
export interface Emit {
  event: string;
  args: unknown[];
}

export interface HostileInput {
  category: string;
  /** Human-readable description for failure messages (what was sent). */
  label: string;
  emits: Emit[];
  expect: Expect;
  /**
   * Send with nothing else in flight on the connection. Socket.IO runs `onAny` listeners at once but
   * the `head` handler on the next tick, so the error for an unknown event can overtake the answer to
   * an earlier probe; such inputs go alone.
   */
  serial?: boolean;
}

export interface InputResult {
  outcome: Outcome;
  codes: string[];
}

// ---- the tapping connection ---------------------------------------------------------------------

interface Pending {
  input: HostileInput;
  probe: number;
  errors: { code: string; message: string }[];
  resolve: (r: InputResult) => void;
  timer: NodeJS.Timeout;
}

const PROBE_ID_BASE = 2 ** 51;
const PROBE_RE = /"probe\.(\d+)"/;

export interface TapOptions {
  url: string;
  tally: Tally;
  /** Outgoing messages of an honest engine on this connection pass through here (may add inputs). */
  intercept?: (msg: ClientMessage, tap: TapConnection) => boolean;
  /** Every server message (not errors) as it arrives. */
  onServerMessage?: (msg: ServerMessage, tap: TapConnection) => void;
  /** How long a probe may take before the input counts as a stall. */
  replyTimeoutMs?: number;
}

/**
 * A raw Socket.IO connection that can carry an honest ClientEngine (it implements ClientTransport)
 * and hand-built hostile frames, and attributes every error the server sends to one input.
 */
export class TapConnection implements ClientTransport {
  readonly kind = 'tap';
  readonly socket: Socket;
  readonly closed: Promise<string>;
  private sink?: ClientTransportSink;
  private readonly pending: Pending[] = [];
  private probeSeq = 0;
  private streamSeq = 1;
  private reassembler = new Reassembler('server', DEFAULT_LIMITS);
  private isClosed = false;
  private readonly ready: Promise<void>;
  /** Server messages received (not errors), in order. */
  readonly inbox: ServerMessage[] = [];
  /** Errors that arrived with no input pending (must not happen). */
  readonly unattributed: string[] = [];

  constructor(private readonly opts: TapOptions) {
    this.socket = io(opts.url, { transports: ['websocket'], reconnection: false, forceNew: true });
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('connect_error', (err) => reject(new Error(`tap connect failed: ${err.message}`)));
    });
    this.closed = new Promise((resolve) => {
      this.socket.on('disconnect', (reason) => {
        this.isClosed = true;
        for (const p of this.pending.splice(0)) {
          clearTimeout(p.timer);
          p.resolve({ outcome: 'dropped', codes: p.errors.map((e) => e.code) });
        }
        this.sink?.onDisconnect(reason);
        resolve(reason);
      });
    });
    this.socket.on('head', (head: unknown) => this.onHead(head));
    this.socket.on('chunk', (meta: unknown, data: unknown) => this.deliver(() => this.reassembler.chunk(meta, data)));
  }

  get connected(): boolean {
    return this.socket.connected;
  }

  /** Resolves once connected (rejects if the server refused the connection). */
  whenConnected(): Promise<void> {
    return this.ready;
  }

  nextStreamId(): number {
    return this.streamSeq++;
  }

  // ClientTransport, for an honest engine riding on this connection.
  start(sink: ClientTransportSink): void {
    this.sink = sink;
    void this.ready.then(() => sink.onConnect(), () => {});
  }

  send(msg: ClientMessage): void {
    if (this.isClosed) return;
    if (this.opts.intercept?.(msg, this)) return;
    this.sendHonest(msg);
  }

  close(): void {
    this.socket.disconnect();
  }

  /** Sends an honest message as an input that must not be rejected. */
  sendHonest(msg: ClientMessage, category = 'honest'): Promise<InputResult> {
    return this.submit({ category, label: `honest ${msg.type}`, emits: framesOf(msg, this.nextStreamId()), expect: { kind: 'silent' } });
  }

  /** Emits one input and its probe; resolves with what the server answered. Records the outcome. */
  submit(input: HostileInput): Promise<InputResult> {
    return new Promise((resolve) => {
      const finish = (r: InputResult) => {
        this.judge(input, r);
        resolve(r);
      };
      if (this.isClosed) return finish({ outcome: 'dropped', codes: [] });
      const probe = this.probeSeq++;
      const p: Pending = {
        input,
        probe,
        errors: [],
        resolve: finish,
        timer: setTimeout(() => {
          const i = this.pending.indexOf(p);
          if (i >= 0) this.pending.splice(i, 1);
          this.opts.tally.violation(`seed ${this.opts.tally.seed}: [${input.category}] ${input.label}: no answer to the probe within ${this.opts.replyTimeoutMs ?? 20_000} ms (stall)`);
          finish({ outcome: 'silent', codes: p.errors.map((e) => e.code) });
        }, this.opts.replyTimeoutMs ?? 20_000),
      };
      this.pending.push(p);
      for (const e of input.emits) this.socket.emit(e.event, ...e.args);
      this.socket.emit('head', { v: FRAME_VERSION, id: PROBE_ID_BASE + probe, msg: { type: `probe.${probe}` } });
    });
  }

  private onHead(head: unknown): void {
    const msg = (head as { msg?: { type?: unknown } } | null)?.msg;
    if (msg && msg.type === 'error') return this.onError(msg as Record<string, unknown>);
    this.deliver(() => this.reassembler.head(head));
  }

  private deliver(produce: () => unknown): void {
    let msg: ServerMessage | null;
    try {
      msg = produce() as ServerMessage | null;
    } catch (err) {
      const text = err instanceof ProtocolError ? `${err.code}: ${err.message}` : String(err);
      this.opts.tally.violation(`seed ${this.opts.tally.seed}: the server sent a frame its own client rejects: ${text}`);
      return;
    }
    if (!msg) return;
    this.inbox.push(msg);
    this.opts.onServerMessage?.(msg, this);
    this.sink?.onMessage(msg);
  }

  private onError(raw: Record<string, unknown>): void {
    const code = String(raw.code);
    const message = typeof raw.message === 'string' ? raw.message : '';
    const probe = code === ErrorCode.UNKNOWN_TYPE ? PROBE_RE.exec(message) : null;
    const head = this.pending[0];
    if (probe && head && Number(probe[1]) === head.probe) {
      this.pending.shift();
      clearTimeout(head.timer);
      head.resolve({ outcome: head.errors.length ? 'error' : 'silent', codes: head.errors.map((e) => e.code) });
      return;
    }
    if (!head) {
      this.unattributed.push(`${code}: ${message.slice(0, 200)}`);
      this.opts.tally.violation(`seed ${this.opts.tally.seed}: error with no input pending: ${code}: ${message.slice(0, 200)}`);
      return;
    }
    head.errors.push({ code, message });
    if (message.length > MAX_ERROR_MESSAGE) {
      this.opts.tally.violation(`seed ${this.opts.tally.seed}: [${head.input.category}] ${head.input.label}: ${code} error message of ${message.length} chars > ${MAX_ERROR_MESSAGE}`);
    }
    const valid = ErrorMessageSchema.safeParse(raw);
    if (!valid.success) {
      this.opts.tally.violation(
        `seed ${this.opts.tally.seed}: [${head.input.category}] ${head.input.label}: the error reply breaks the protocol's own schema ` +
          `(${valid.error.issues[0]?.path.join('.')}: ${valid.error.issues[0]?.message}; message of ${message.length} chars)`,
      );
    }
  }

  private judge(input: HostileInput, r: InputResult): void {
    const { tally } = this.opts;
    tally.record(input.category, r.outcome, r.codes);
    const where = `seed ${tally.seed}: [${input.category}] ${input.label}`;
    for (const code of r.codes) {
      if (code === ErrorCode.INTERNAL) tally.violation(`${where}: answered INTERNAL`);
      else if (!DOCUMENTED_CODES.has(code)) tally.violation(`${where}: undocumented error code ${code}`);
    }
    const e = input.expect;
    if (e.kind === 'error') {
      if (r.outcome === 'silent') tally.violation(`${where}: accepted without an error`);
      else if (r.outcome === 'dropped' && !e.allowDrop && r.codes.length === 0) tally.violation(`${where}: connection dropped without a typed error`);
      else if (e.codes && r.codes.length && !e.codes.includes(r.codes[0])) tally.violation(`${where}: got ${r.codes.join(',')}, expected one of ${e.codes.join(',')}`);
    } else if (e.kind === 'silent') {
      if (r.outcome !== 'silent') tally.violation(`${where}: expected no error, got ${r.outcome} ${r.codes.join(',')}`);
    } else if (e.kind === 'drop') {
      if (r.outcome !== 'dropped') tally.violation(`${where}: expected the server to close the connection, got ${r.outcome} ${r.codes.join(',')}`);
    }
  }

}

/** The frames of a message as our transport would send them. */
export function framesOf(msg: ClientMessage, streamId: number, chunkBytes = DEFAULT_LIMITS.chunkBytes): Emit[] {
  const out: Emit[] = [];
  emitFrames({ emit: (event, ...args) => void out.push({ event, args }) }, msg, streamId, chunkBytes);
  return out;
}

// ---- coordinator --------------------------------------------------------------------------------

export interface LogCapture {
  logger: Logger;
  /** Every line, when COHORT_HOSTILE_DEBUG is set. */
  all: string[];
  /** Lines at level ≥ 50 (error, fatal). */
  errors: string[];
  lines: number;
}

/** A pino logger writing JSON lines to memory. */
export function captureLogs(level = 'info'): LogCapture {
  const capture: LogCapture = { logger: undefined as unknown as Logger, errors: [], all: [], lines: 0 };
  const debug = !!process.env.COHORT_HOSTILE_DEBUG;
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) {
        if (!line) continue;
        capture.lines++;
        if (debug) capture.all.push(line);
        const m = /"level":(\d+)/.exec(line);
        if (m && Number(m[1]) >= 50 && capture.errors.length < 200) capture.errors.push(line.slice(0, 2000));
      }
      cb();
    },
  });
  capture.logger = pino({ level }, stream) as unknown as Logger;
  return capture;
}

/** Records uncaught exceptions and unhandled rejections while installed. */
export function crashRecorder(): { events: string[]; uninstall(): void } {
  const events: string[] = [];
  const onException = (err: unknown) => events.push(`uncaughtException: ${(err as Error)?.stack ?? String(err)}`);
  const onRejection = (err: unknown) => events.push(`unhandledRejection: ${(err as Error)?.stack ?? String(err)}`);
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return {
    events,
    uninstall() {
      process.off('uncaughtException', onException);
      process.off('unhandledRejection', onRejection);
    },
  };
}

export interface Job {
  coordinator: Coordinator;
  config: JobConfig;
  dataDir: string;
  logs: LogCapture;
}

export async function startJob(raw: Record<string, unknown>, extra: Partial<CoordinatorOptions> = {}): Promise<Job> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cohort-hostile-'));
  const config = parseJobConfig(raw);
  const logs = captureLogs();
  const coordinator = await startCoordinator({ config, dataDir, logger: logs.logger, ...extra });
  return { coordinator, config, dataDir, logs };
}

// ---- honest clients -----------------------------------------------------------------------------

/** A cheap, deterministic task: a small fixed delta and sane metrics, no tfjs. */
export class CheapTask implements ClientTask {
  /** If set, fit waits for it (keeps a job running while hostile inputs are sent). */
  gate?: (round: number) => Promise<void>;
  constructor(
    private readonly dim: number,
    private readonly index: number,
    readonly numExamples = 20,
  ) {}
  async fit(_w: Float32Array, _m: unknown, _t: unknown, round: number) {
    await this.gate?.(round);
    const delta = Float32Array.from({ length: this.dim }, (_, j) => 0.01 * Math.sin(j + this.index + round));
    return { delta, numExamples: this.numExamples, metrics: { loss: 0.5 + 0.01 * this.index, accuracy: 0.75 } };
  }
  async evaluate() {
    return { numExamples: 10, loss: 0.6, accuracy: 0.7 };
  }
}

export interface HonestClient {
  engine: ClientEngine;
  task: CheapTask;
  ended: Promise<{ status: string; rounds: number }>;
  included: number;
  errors: string[];
}

/** An honest client over the real client transport. */
export function honestClient(url: string, clientId: string, dim: number, index: number): HonestClient {
  const task = new CheapTask(dim, index);
  const transport = new SocketIoClientTransport({ url, reconnect: { initialDelayMs: 100, maxDelayMs: 500 } });
  const engine = new ClientEngine({ clientId, task, transport });
  const client: HonestClient = { engine, task, ended: engine.whenJobEnds(), included: 0, errors: [] };
  engine.on('roundResult', (r) => {
    if (r.included) client.included++;
  });
  engine.on('serverError', (e) => client.errors.push(`${e.code}: ${e.message.slice(0, 200)}`));
  engine.start();
  return client;
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

/** Resolves with `p`, or rejects after `ms` with `what`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

// ---- raw websocket (engine.io) inputs -----------------------------------------------------------

/**
 * Sends raw engine.io / socket.io frames over a bare websocket, then a probe (after a socket.io
 * CONNECT if the input did not include one). Outcome: `dropped` if the server closed the socket,
 * `error` if a typed error came back before the probe's answer, else `silent` (ignored).
 */
export function rawInput(url: string, input: RawInput, tally: Tally, timeoutMs = 15_000): Promise<void> {
  const wsUrl = `${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`;
  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrl);
    const codes: string[] = [];
    let stage: 'open' | 'connecting' | 'reconnecting' | 'probing' | 'done' = 'open';
    const where = `seed ${tally.seed}: [${input.category}] ${input.label}`;
    const done = (outcome: Outcome) => {
      if (stage === 'done') return;
      stage = 'done';
      clearTimeout(timer);
      tally.record(input.category, outcome, codes);
      for (const code of codes) {
        if (code === ErrorCode.INTERNAL) tally.violation(`${where}: answered INTERNAL`);
        else if (!DOCUMENTED_CODES.has(code)) tally.violation(`${where}: undocumented error code ${code}`);
      }
      ws.terminate();
      resolve();
    };
    const timer = setTimeout(() => {
      tally.violation(`${where}: no answer and no close within ${timeoutMs} ms (stall)`);
      done('silent');
    }, timeoutMs);
    const probe = () => {
      stage = 'probing';
      ws.send(`42["head",{"v":1,"id":${PROBE_ID_BASE},"msg":{"type":"probe.0"}}]`);
    };
    const connect = () => {
      stage = 'connecting';
      ws.send('40');
    };
    ws.on('error', () => done('dropped'));
    ws.on('close', () => done('dropped'));
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const text = data.toString();
      if (text === '2') return void ws.send('3'); // heartbeat
      if (stage === 'open' && text.startsWith('0')) {
        if (input.connect) return connect();
        for (const f of input.frames) ws.send(f);
        return connect();
      }
      if (stage === 'connecting' && text.startsWith('40')) {
        if (input.connect) {
          for (const f of input.frames) ws.send(f);
          if (input.reconnect) {
            stage = 'reconnecting';
            return ws.send('40');
          }
        }
        return probe();
      }
      if (stage === 'reconnecting' && text.startsWith('40')) return probe();
      if (text.startsWith('42')) {
        let msg: { type?: string; code?: string; message?: string } | undefined;
        try {
          msg = (JSON.parse(text.slice(2)) as [string, { msg?: typeof msg }])[1]?.msg;
        } catch {
          return;
        }
        if (msg?.type !== 'error') return;
        if (msg.code === ErrorCode.UNKNOWN_TYPE && msg.message?.includes('"probe.0"')) return done(codes.length ? 'error' : 'silent');
        codes.push(String(msg.code));
        if ((msg.message?.length ?? 0) > MAX_ERROR_MESSAGE) tally.violation(`${where}: ${msg.code} error message of ${msg.message!.length} chars > ${MAX_ERROR_MESSAGE}`);
      }
    });
  });
}

/** Runs `tasks` with at most `limit` in flight. */
export async function pool<T>(items: readonly T[], limit: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await run(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
