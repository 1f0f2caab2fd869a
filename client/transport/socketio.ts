/**
 * Socket.IO client transport: frames out, reassembly and validation in, reconnection with exponential
 * backoff and jitter (Socket.IO's own reconnection manager). Every reconnection is reported to the
 * client engine, which says hello again and so rejoins the next round.
 *
 * Transport security: a plaintext URL (http://, ws://) to a host that is not loopback is refused
 * unless `insecure`. Over TLS the server's certificate is checked by a `ServerCertificateCheck` when
 * one is given (Node: client/node/tls.ts — the default store, a CA file or a pinned fingerprint) or by
 * the browser's own TLS; a certificate that fails the check ends the transport (no reconnection):
 * `whenFailed()` resolves with the typed error (TLS_UNTRUSTED, TLS_FINGERPRINT_MISMATCH).
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
import type { CohortError } from '../../shared/errors.ts';
import { checkServerUrl, isLoopbackHost } from '../../shared/transport-security.ts';

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
  /** Extra socket.io-client options. */
  socketOptions?: Record<string, unknown>;
  /** Allow a plaintext URL to a host that is not loopback (logged as a warning). */
  insecure?: boolean;
  /** Checks the server's TLS certificate and reports what it saw (Node: client/node/tls.ts). */
  certificateCheck?: ServerCertificateCheck;
}

/**
 * A check of the server's TLS certificate that runs inside the connection attempt, before any HTTP
 * byte is sent (Node: an https.Agent; client/node/tls.ts `nodeCertificateCheck`). The transport reads
 * its state when an attempt fails or succeeds; it needs no Node built-in itself.
 */
export interface ServerCertificateCheck {
  /** socket.io-client options that carry the check (e.g. `{ agent }`). */
  readonly socketOptions: Record<string, unknown>;
  /** `sha256:<hex>` of the leaf certificate the server presented on the latest TLS handshake. */
  readonly observedFingerprint: string | undefined;
  /** Set when the latest attempt's certificate failed the check: final, the transport stops. */
  readonly failure: CohortError | undefined;
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
  private fingerprint: string | undefined;
  private failure: CohortError | undefined;
  private readonly failed: Promise<CohortError>;
  private reportFailure!: (err: CohortError) => void;

  /** Throws a ConfigError for a URL that does not parse, or plaintext to a non-loopback host without `insecure`. */
  constructor(private readonly opts: SocketIoClientOptions) {
    const { url, tls } = checkServerUrl(opts.url, opts.insecure);
    this.failed = new Promise((resolve) => (this.reportFailure = resolve));
    this.limits = opts.limits ?? DEFAULT_LIMITS;
    this.sendChunkBytes = this.limits.chunkBytes;
    this.reassembler = new Reassembler('server', this.limits);
    this.log = (opts.logger ?? silentLogger).child({ component: 'transport' });
    if (!tls && !isLoopbackHost(url.hostname)) {
      this.log.warn({ server: url.origin }, 'plaintext connection to a host that is not loopback (--insecure): the model and updates cross the network unencrypted');
    }
  }

  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  /**
   * `sha256:<hex>` of the TLS certificate the server presented for the current (or, once
   * disconnected, the last) connection; undefined over plaintext or without a certificate check
   * (a browser cannot see the certificate).
   */
  get serverFingerprint(): string | undefined {
    return this.fingerprint;
  }

  /** What hello signs as the server's identity (shared/identity/transcript.ts): the certificate this transport checked. */
  get serverIdentity(): string | undefined {
    return this.fingerprint;
  }

  /** Resolves when the transport has stopped for good: the server's certificate failed the check. */
  whenFailed(): Promise<CohortError> {
    return this.failed;
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
      // A Manager of its own: a shared one (same origin, another namespace) would connect through
      // another transport's check, and this one would see no handshake.
      ...(this.opts.certificateCheck ? { forceNew: true, ...this.opts.certificateCheck.socketOptions } : {}),
      ...this.opts.socketOptions,
    });
    this.socket = socket;
    socket.on('connect', () => {
      this.reassembler = new Reassembler('server', this.limits);
      this.fingerprint = this.opts.certificateCheck?.observedFingerprint;
      sink.onConnect();
    });
    socket.on('disconnect', (reason) => sink.onDisconnect(reason));
    socket.on('connect_error', (err) => {
      const failure = this.opts.certificateCheck?.failure;
      if (failure) return this.fail(failure);
      this.log.warn({ err: err.message }, 'connect failed, retrying');
    });
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

  /** A certificate that fails the check will not pass on a retry: stop reconnecting and report it. */
  private fail(failure: CohortError): void {
    if (this.failure) return;
    this.failure = failure;
    this.log.error({ code: failure.code, err: failure.message, ...failure.details }, 'server certificate refused; not reconnecting');
    this.close();
    this.reportFailure(failure);
  }

  /** The server's limits bound what we send; our own still bound what we accept. */
  private adoptLimits(server: WireLimits): void {
    this.sendChunkBytes = Math.min(this.limits.chunkBytes, server.chunkBytes);
  }
}
