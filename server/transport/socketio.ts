/**
 * Socket.IO server transport. Each connection gets its own Reassembler; frames that fail validation
 * are answered with a typed `error` message and never reach the round engine.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import { Server, type Namespace, type Socket } from 'socket.io';
import {
  DEFAULT_LIMITS,
  emitFrames,
  errorMessage,
  ErrorCode,
  ProtocolError,
  Reassembler,
  type Message,
  type ServerMessage,
  type ServerTransport,
  type ServerTransportSink,
  type WireLimits,
} from '../../shared/protocol/index.ts';
import { CohortError } from '../../shared/errors.ts';
import { silentLogger, type Logger } from '../../shared/log.ts';

export interface SocketIoServerOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  limits?: WireLimits;
  logger?: Logger;
  /** Socket.IO heartbeat; a client missing it is disconnected (and becomes a dropout). */
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  /** Attach to an existing HTTP server (admin API shares the port) instead of creating one. */
  httpServer?: HttpServer;
  /**
   * Serve one namespace of an existing Socket.IO server (`cohort serve`: a namespace per job, all on one
   * port) instead of creating a server; closing the transport then closes only its own connections.
   */
  io?: Server;
  namespace?: string;
  /** Caps on connections, checked when a connection opens (see ConnectionLimits). */
  connections?: Partial<ConnectionLimits>;
}

/**
 * Connection caps, so a flood of connections cannot exhaust the coordinator or crowd out clients
 * that are already registered. A connection is *unregistered* until the server has sent it `welcome`
 * (the round engine closes those that do not say hello in time: `timeouts.helloMs`). Excess
 * connections are refused at connect with TOO_MANY_CONNECTIONS. Addresses are the TCP peer's: behind
 * a reverse proxy every client shares the proxy's address, so raise `maxPerIp` there.
 */
export interface ConnectionLimits {
  /** Open connections from one IP address, registered or not. */
  maxPerIp: number;
  /** Unregistered connections in all. */
  maxUnregistered: number;
  /** Unregistered connections from one IP address. */
  maxUnregisteredPerIp: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxPerIp: 1024,
  maxUnregistered: 1024,
  maxUnregisteredPerIp: 64,
};

/**
 * Sends per event-loop turn before the rest wait for the next turn. One send of a small message costs
 * ~70 µs on the 2-core VM (Socket.IO encoding, a WebSocket frame and a write syscall per packet), so
 * 128 hold the loop ~10 ms; a 1,000-client round's 2,000 sends in one turn held it ~140 ms (load bench).
 */
const SENDS_PER_TURN = 128;

/** A queued send (`msg`) or server-side close (`msg` undefined) of one connection. */
interface Outgoing {
  connId: string;
  msg: ServerMessage | undefined;
}

export class SocketIoServerTransport implements ServerTransport {
  readonly kind = 'socket.io';
  private io?: Server;
  /** The namespace served when sharing a server (opts.io). */
  private nsp?: Namespace;
  private http?: HttpServer;
  private ownsHttp = false;
  private readonly sockets = new Map<string, Socket>();
  private nextStreamId = 0;
  private readonly limits: WireLimits;
  private readonly caps: ConnectionLimits;
  private readonly log: Logger;
  private readonly perIp = new Map<string, number>();
  private readonly unregisteredPerIp = new Map<string, number>();
  /** Connections not yet sent `welcome`, with their address. */
  private readonly unregistered = new Map<string, string>();
  /** Sends waiting for a later event-loop turn (see send), from outboxHead on. */
  private readonly outbox: (Outgoing | undefined)[] = [];
  private outboxHead = 0;
  private sentThisTurn = 0;
  private turnResetScheduled = false;
  private drainScheduled = false;

  constructor(private readonly opts: SocketIoServerOptions = {}) {
    this.limits = opts.limits ?? DEFAULT_LIMITS;
    this.caps = { ...DEFAULT_CONNECTION_LIMITS, ...opts.connections };
    this.log = (opts.logger ?? silentLogger).child({ component: 'transport' });
  }

  async start(sink: ServerTransportSink): Promise<void> {
    if (this.opts.io) {
      // A namespace of a shared server: the server and its HTTP listener belong to the caller.
      this.nsp = this.opts.io.of(this.opts.namespace ?? '/');
      this.http = this.opts.io.httpServer as HttpServer | undefined;
      this.nsp.use((socket, next) => this.admit(socket, next));
      this.nsp.on('connection', (socket) => this.accept(socket, sink));
      return;
    }
    this.http = this.opts.httpServer ?? createServer();
    this.ownsHttp = !this.opts.httpServer;
    this.io = new Server(this.http, {
      serveClient: false,
      // One packet is at most one chunk or one header, plus framing overhead.
      maxHttpBufferSize: Math.max(this.limits.chunkBytes, this.limits.maxHeaderBytes) + 16 * 1024,
      pingInterval: this.opts.pingIntervalMs ?? 10_000,
      pingTimeout: this.opts.pingTimeoutMs ?? 20_000,
      cors: { origin: false },
      // An engine.io connection that never joins the namespace is closed after this (the engine's
      // hello deadline covers the next step).
      connectTimeout: 10_000,
    });
    this.io.use((socket, next) => this.admit(socket, next));
    this.io.on('connection', (socket) => this.accept(socket, sink));
    if (this.ownsHttp) {
      await new Promise<void>((resolve, reject) => {
        this.http!.once('error', reject);
        this.http!.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => resolve());
      });
    }
  }

  /** The bound port (after start). */
  get port(): number {
    return (this.http!.address() as AddressInfo).port;
  }

  /** `https://` when the HTTP server is an HTTPS one (WSS for clients), else `http://`. */
  get url(): string {
    return serverUrl(this.http!, this.opts.host ?? '127.0.0.1');
  }

  /**
   * Queues a message. Up to SENDS_PER_TURN sends per event-loop turn go out at once; beyond that (a
   * round's trains and results to a cohort of thousands, job_end to everyone) they wait in one FIFO
   * outbox drained SENDS_PER_TURN per turn, so a fan-out never holds the event loop for more than a
   * few milliseconds at a time. Per-connection order is kept: sends and disconnects share the queue.
   */
  send(connId: string, msg: ServerMessage): void {
    this.enqueue({ connId, msg });
  }

  private enqueue(op: Outgoing): void {
    if (this.outboxHead === this.outbox.length && this.sentThisTurn < SENDS_PER_TURN) {
      this.countTurn();
      this.perform(op);
      return;
    }
    this.outbox.push(op);
    this.scheduleDrain();
  }

  private countTurn(): void {
    this.sentThisTurn++;
    if (this.turnResetScheduled) return;
    this.turnResetScheduled = true;
    setImmediate(() => {
      this.turnResetScheduled = false;
      this.sentThisTurn = 0;
    });
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      this.drain(SENDS_PER_TURN);
    });
  }

  private drain(max: number): void {
    for (let n = 0; n < max && this.outboxHead < this.outbox.length; n++) {
      const op = this.outbox[this.outboxHead];
      this.outbox[this.outboxHead++] = undefined;
      this.perform(op!);
    }
    if (this.outboxHead < this.outbox.length) return this.scheduleDrain();
    this.outbox.length = 0;
    this.outboxHead = 0;
  }

  private perform(op: Outgoing): void {
    const socket = this.sockets.get(op.connId);
    if (op.msg === undefined) {
      socket?.disconnect(true);
      return;
    }
    if (!socket?.connected) return;
    if (op.msg.type === 'welcome') this.markRegistered(op.connId);
    emitFrames(socket, op.msg, this.nextStreamId++, this.limits.chunkBytes);
  }

  /** Open connections, and how many of them have not been welcomed (for tests and metrics). */
  get connectionCounts(): { open: number; unregistered: number } {
    return { open: this.sockets.size, unregistered: this.unregistered.size };
  }

  /** Socket.IO middleware: counts the connection against the caps, or refuses it. */
  private admit(socket: Socket, next: (err?: Error) => void): void {
    const ip = socket.handshake.address;
    const refusal =
      (this.perIp.get(ip) ?? 0) >= this.caps.maxPerIp
        ? `more than ${this.caps.maxPerIp} connections from ${ip}`
        : (this.unregisteredPerIp.get(ip) ?? 0) >= this.caps.maxUnregisteredPerIp
          ? `more than ${this.caps.maxUnregisteredPerIp} connections from ${ip} have not said hello`
          : this.unregistered.size >= this.caps.maxUnregistered
            ? `more than ${this.caps.maxUnregistered} connections have not said hello`
            : undefined;
    if (refusal !== undefined) {
      this.log.warn({ ip, reason: refusal }, 'connection refused');
      const err: CohortError & { data?: unknown } = new CohortError(ErrorCode.TOO_MANY_CONNECTIONS, `${ErrorCode.TOO_MANY_CONNECTIONS}: ${refusal}`);
      err.data = { code: ErrorCode.TOO_MANY_CONNECTIONS };
      return next(err);
    }
    const connId = socket.id;
    bump(this.perIp, ip, 1);
    bump(this.unregisteredPerIp, ip, 1);
    this.unregistered.set(connId, ip);
    // The engine.io connection closes however the namespace connection ends (even before it completes).
    socket.conn.once('close', () => {
      bump(this.perIp, ip, -1);
      this.markRegistered(connId);
    });
    next();
  }

  private markRegistered(connId: string): void {
    const ip = this.unregistered.get(connId);
    if (ip === undefined) return;
    this.unregistered.delete(connId);
    bump(this.unregisteredPerIp, ip, -1);
  }

  disconnect(connId: string): void {
    this.enqueue({ connId, msg: undefined });
  }

  peerAddress(connId: string): string | undefined {
    return this.sockets.get(connId)?.handshake.address;
  }

  async close(): Promise<void> {
    this.drain(Infinity);
    for (const socket of this.sockets.values()) socket.disconnect(true);
    this.sockets.clear();
    if (this.nsp) {
      this.nsp.removeAllListeners('connection');
      return;
    }
    await new Promise<void>((resolve) => (this.io ? this.io.close(() => resolve()) : resolve()));
    if (this.ownsHttp && this.http?.listening) {
      await new Promise<void>((resolve) => this.http!.close(() => resolve()));
    }
  }

  private accept(socket: Socket, sink: ServerTransportSink): void {
    const connId = socket.id;
    const reassembler = new Reassembler('client', this.limits);
    this.sockets.set(connId, socket);
    const deliver = (produce: () => Message | null): void => {
      let msg: Message | null;
      try {
        msg = produce();
      } catch (err) {
        this.reject(socket, sink, err);
        return;
      }
      if (msg) sink.onMessage(connId, msg as Parameters<ServerTransportSink['onMessage']>[1]);
    };
    socket.on('head', (head: unknown) => deliver(() => reassembler.head(head)));
    socket.on('chunk', (meta: unknown, data: unknown) => deliver(() => reassembler.chunk(meta, data)));
    socket.onAny((event: string) => {
      if (event !== 'head' && event !== 'chunk') {
        this.reject(socket, sink, new ProtocolError(ErrorCode.UNKNOWN_TYPE, `unknown event ${JSON.stringify(event)}`));
      }
    });
    socket.on('disconnect', (reason) => {
      this.sockets.delete(connId);
      sink.onDisconnect(connId, reason);
    });
    sink.onConnect(connId);
  }

  private reject(socket: Socket, sink: ServerTransportSink, err: unknown): void {
    const error =
      err instanceof ProtocolError ? err : new ProtocolError(ErrorCode.INTERNAL, 'internal error handling a frame');
    if (!(err instanceof ProtocolError)) this.log.error({ err, connId: socket.id }, 'frame handler failed');
    this.log.warn({ connId: socket.id, code: error.code, reason: error.message }, 'frame rejected');
    // Through the outbox like every other send: a refusal must not overtake an earlier reply to the same
    // connection that is still waiting for its turn (replies stay in order per connection).
    this.enqueue({ connId: socket.id, msg: errorMessage(error.code, error.message) });
    sink.onProtocolError?.(socket.id, error);
  }
}

/** The URL clients reach a listening server at: its scheme, the host it was bound to, its port. */
export function serverUrl(server: HttpServer, host: string): string {
  const scheme = server instanceof TlsServer ? 'https' : 'http';
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function bump(counts: Map<string, number>, key: string, by: number): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n <= 0) counts.delete(key);
  else counts.set(key, n);
}
