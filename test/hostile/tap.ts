/**
 * The connections that carry hostile inputs to the coordinator and attribute its answers.
 *
 * TapConnection: a tapping Socket.IO client connection that attributes every server error to the input
 * that caused it. After every input the tap emits a *probe*, a head frame of the unknown message type
 * `probe.<n>`. The server handles one connection's frames in order and answers the probe with
 * UNKNOWN_TYPE naming it, so the errors that arrive after probe n−1's answer and before probe n's
 * belong to input n. Inputs are pipelined (no round trip wait between them) and still attributed
 * exactly. A connection that closes before a probe is answered marks its pending inputs `dropped`.
 *
 * rawInput: raw engine.io / socket.io frames over a bare websocket (the `ws` package), then a probe.
 */
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
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
import { DOCUMENTED_CODES, MAX_ERROR_MESSAGE, type InputResult, type Outcome, type Tally } from './checks.ts';
import type { Emit, HostileInput, RawInput } from './types.ts';

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

  /** Resolves when every submitted input has been answered (or `ms` passed): the server may finish a
   * job while a member's last inputs are still in flight, and closing then would count them dropped. */
  async drain(ms = 10_000): Promise<void> {
    const until = Date.now() + ms;
    while (this.pending.length > 0 && !this.isClosed && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
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
      try {
        for (const e of input.emits) this.socket.emit(e.event, ...e.args);
      } catch (err) {
        // Our own socket.io-client could not even encode it (a deep value overflowing its recursive
        // encoder, depending on the stack left): nothing reached the server, so there is nothing to judge.
        if (!(err instanceof RangeError)) throw err;
        clearTimeout(p.timer);
        this.pending.splice(this.pending.indexOf(p), 1);
        this.opts.tally.unsendable(input.category);
        return resolve({ outcome: 'silent', codes: [] });
      }
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
