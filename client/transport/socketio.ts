/**
 * Socket.IO client transport: frames out, reassembly and validation in, reconnection with exponential
 * backoff and jitter (Socket.IO's own reconnection manager). Every reconnection is reported to the
 * client engine, which says hello again and so rejoins the next round.
 */
import { io, type Socket } from 'socket.io-client';
import {
  DEFAULT_LIMITS,
  emitFrames,
  ErrorCode,
  ProtocolError,
  Reassembler,
  type ClientMessage,
  type ClientTransport,
  type ClientTransportSink,
  type ServerMessage,
  type WireLimits,
} from '../../shared/protocol/index.ts';
import { silentLogger, type Logger } from '../../shared/log.ts';

export interface ReconnectOptions {
  /** First retry delay; doubles each attempt up to maxDelayMs, ±50% jitter. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** Give up after this many attempts (Infinity: never). */
  maxAttempts: number;
}

export const DEFAULT_RECONNECT: ReconnectOptions = { initialDelayMs: 500, maxDelayMs: 30_000, maxAttempts: Infinity };

export interface SocketIoClientOptions {
  url: string;
  limits?: WireLimits;
  reconnect?: Partial<ReconnectOptions>;
  logger?: Logger;
  /** Extra socket.io-client options (TLS `ca`, `rejectUnauthorized`, …). */
  socketOptions?: Record<string, unknown>;
}

export class SocketIoClientTransport implements ClientTransport {
  readonly kind = 'socket.io';
  private socket?: Socket;
  /** What we accept from the server. */
  private readonly limits: WireLimits;
  /** Chunk size we send with: ours, lowered to the server's at welcome. */
  private sendChunkBytes: number;
  private reassembler: Reassembler;
  private nextStreamId = 0;
  private readonly log: Logger;

  constructor(private readonly opts: SocketIoClientOptions) {
    this.limits = opts.limits ?? DEFAULT_LIMITS;
    this.sendChunkBytes = this.limits.chunkBytes;
    this.reassembler = new Reassembler('server', this.limits);
    this.log = (opts.logger ?? silentLogger).child({ component: 'transport' });
  }

  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  start(sink: ClientTransportSink): void {
    const reconnect = { ...DEFAULT_RECONNECT, ...this.opts.reconnect };
    const socket = io(this.opts.url, {
      transports: ['websocket'],
      reconnection: true,
      reconnectionDelay: reconnect.initialDelayMs,
      reconnectionDelayMax: reconnect.maxDelayMs,
      reconnectionAttempts: reconnect.maxAttempts,
      randomizationFactor: 0.5,
      ...this.opts.socketOptions,
    });
    this.socket = socket;
    socket.on('connect', () => {
      this.reassembler = new Reassembler('server', this.limits);
      sink.onConnect();
    });
    socket.on('disconnect', (reason) => sink.onDisconnect(reason));
    socket.on('connect_error', (err) => this.log.warn({ err: err.message }, 'connect failed, retrying'));
    const deliver = (produce: () => unknown): void => {
      let msg: ServerMessage | null;
      try {
        msg = produce() as ServerMessage | null;
      } catch (err) {
        const error = err instanceof ProtocolError ? err : new ProtocolError(ErrorCode.INTERNAL, String(err));
        this.log.warn({ code: error.code, reason: error.message }, 'server frame rejected');
        sink.onProtocolError?.(error);
        return;
      }
      if (!msg) return;
      if (msg.type === 'welcome') this.adoptLimits(msg.limits);
      sink.onMessage(msg);
    };
    socket.on('head', (head: unknown) => deliver(() => this.reassembler.head(head)));
    socket.on('chunk', (meta: unknown, data: unknown) => deliver(() => this.reassembler.chunk(meta, data)));
  }

  send(msg: ClientMessage): void {
    if (!this.socket?.connected) return;
    emitFrames(this.socket, msg, this.nextStreamId++, this.sendChunkBytes);
  }

  close(): void {
    this.socket?.disconnect();
    this.socket?.removeAllListeners();
  }

  /** The server's limits bound what we send; our own still bound what we accept. */
  private adoptLimits(server: WireLimits): void {
    this.sendChunkBytes = Math.min(this.limits.chunkBytes, server.chunkBytes);
  }
}
