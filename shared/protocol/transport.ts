/**
 * The seams between protocol logic and the network. The round engine and the client engine speak
 * only these interfaces; Socket.IO (deployment) and in-memory (simulations, tests) implement them.
 * Messages handed to a sink are already validated (schema, sizes, finiteness).
 */
import type { ProtocolError } from './errors.ts';
import type { ClientMessage, ServerMessage } from './messages.ts';

/** What a server transport reports to the round engine. */
export interface ServerTransportSink {
  onConnect(connId: string): void;
  onMessage(connId: string, msg: ClientMessage): void;
  onDisconnect(connId: string, reason: string): void;
  /** A frame was rejected at the boundary; the transport has already sent the error to the peer. */
  onProtocolError?(connId: string, error: ProtocolError): void;
}

export interface ServerTransport {
  /** Human-readable kind, for logs ("socket.io", "memory"). */
  readonly kind: string;
  start(sink: ServerTransportSink): Promise<void>;
  /** Queues a message to one connection; a closed connection drops it silently. */
  send(connId: string, msg: ServerMessage): void;
  /** Closes one connection from the server side. */
  disconnect(connId: string): void;
  close(): Promise<void>;
  /** The peer's network address, where the transport has one (failed-hello limits, audit rows). */
  peerAddress?(connId: string): string | undefined;
}

/** What a client transport reports to the client engine. */
export interface ClientTransportSink {
  /** Called on every (re)connection; the engine answers with hello. */
  onConnect(): void;
  onMessage(msg: ServerMessage): void;
  onDisconnect(reason: string): void;
  onProtocolError?(error: ProtocolError): void;
}

export interface ClientTransport {
  readonly kind: string;
  readonly connected: boolean;
  /**
   * The server's identity as this transport verified it (`sha256:<hex>` of its TLS certificate), signed
   * into hello; undefined without TLS (the engine then signs what the challenge announced).
   */
  readonly serverIdentity?: string;
  start(sink: ClientTransportSink): void;
  send(msg: ClientMessage): void;
  close(): void;
}
