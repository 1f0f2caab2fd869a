/**
 * Socket.IO server transport. Each connection gets its own Reassembler; frames that fail validation
 * are answered with a typed `error` message and never reach the round engine.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket } from 'socket.io';
import {
  DEFAULT_LIMITS,
  emitFrames,
  ErrorCode,
  ProtocolError,
  Reassembler,
  type Message,
  type ServerMessage,
  type ServerTransport,
  type ServerTransportSink,
  type WireLimits,
} from '../../shared/protocol/index.ts';
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
}

export class SocketIoServerTransport implements ServerTransport {
  readonly kind = 'socket.io';
  private io?: Server;
  private http?: HttpServer;
  private ownsHttp = false;
  private readonly sockets = new Map<string, Socket>();
  private nextStreamId = 0;
  private readonly limits: WireLimits;
  private readonly log: Logger;

  constructor(private readonly opts: SocketIoServerOptions = {}) {
    this.limits = opts.limits ?? DEFAULT_LIMITS;
    this.log = (opts.logger ?? silentLogger).child({ component: 'transport' });
  }

  async start(sink: ServerTransportSink): Promise<void> {
    this.http = this.opts.httpServer ?? createServer();
    this.ownsHttp = !this.opts.httpServer;
    this.io = new Server(this.http, {
      serveClient: false,
      // One packet is at most one chunk or one header, plus framing overhead.
      maxHttpBufferSize: Math.max(this.limits.chunkBytes, this.limits.maxHeaderBytes) + 16 * 1024,
      pingInterval: this.opts.pingIntervalMs ?? 10_000,
      pingTimeout: this.opts.pingTimeoutMs ?? 20_000,
      cors: { origin: false },
    });
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

  get url(): string {
    return `http://${this.opts.host ?? '127.0.0.1'}:${this.port}`;
  }

  send(connId: string, msg: ServerMessage): void {
    const socket = this.sockets.get(connId);
    if (!socket?.connected) return;
    emitFrames(socket, msg, this.nextStreamId++, this.limits.chunkBytes);
  }

  disconnect(connId: string): void {
    this.sockets.get(connId)?.disconnect(true);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets.values()) socket.disconnect(true);
    this.sockets.clear();
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
    emitFrames(socket, { type: 'error', code: error.code, message: error.message }, this.nextStreamId++, this.limits.chunkBytes);
    sink.onProtocolError?.(socket.id, error);
  }
}
