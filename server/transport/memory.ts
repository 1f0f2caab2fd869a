/**
 * In-memory transport: the coordinator and any number of clients in one process, as simulations and
 * tests use it. Messages pass the same validation as over Socket.IO (schema, size, finiteness). Client
 * vectors are copied at send time, so a client may reuse its buffer. Server vectors (the global model)
 * are shared by all clients, not copied: the round engine never mutates a model it has published (each
 * round makes a new array) and clients only read it, so a simulation of thousands of clients holds one
 * model, not one per client. Delivery is asynchronous (a microtask per message), preserving
 * per-connection order, like a socket.
 *
 * `MemoryClientEnd` satisfies the client-side `ClientTransport` interface structurally, so simulations
 * can hand it to the client engine without the server importing client code.
 */
import {
  DEFAULT_LIMITS,
  ErrorCode,
  ProtocolError,
  validateMessage,
  type ClientMessage,
  type ClientTransport,
  type ClientTransportSink,
  type ServerMessage,
  type ServerTransport,
  type ServerTransportSink,
  type WireLimits,
} from '../../shared/protocol/index.ts';

/** Bytes a message would take on the wire: its JSON header plus its binary part. */
export function wireBytes(msg: object): number {
  const { vector, payload, ...header } = msg as { vector?: Float32Array; payload?: Uint8Array };
  return JSON.stringify(header).length + (vector?.byteLength ?? 0) + (payload?.byteLength ?? 0);
}

/** Traffic per client, for cost experiments; the global-model download (`train`) is counted apart. */
export interface TrafficMeter {
  up: number;
  down: number;
  modelDown: number;
}

export class MemoryServerTransport implements ServerTransport {
  readonly kind = 'memory';
  /** Set to count bytes per client id (hello's clientId is learned from the connection). */
  meter?: Map<string, TrafficMeter>;
  private readonly clientOf = new Map<string, string>();
  private sink?: ServerTransportSink;
  private readonly ends = new Map<string, MemoryClientEnd>();
  private nextId = 0;

  constructor(readonly limits: WireLimits = DEFAULT_LIMITS) {}

  async start(sink: ServerTransportSink): Promise<void> {
    this.sink = sink;
  }

  /** Creates a client end; it connects when the client engine calls `start`. */
  createClient(): MemoryClientEnd {
    return new MemoryClientEnd(this, `mem-${this.nextId++}`);
  }

  send(connId: string, msg: ServerMessage): void {
    const end = this.ends.get(connId);
    if (!end) return;
    let copy: ServerMessage;
    try {
      copy = validateMessage(msg, 'server', this.limits, { copyVector: false }) as ServerMessage;
    } catch (err) {
      // The server produced an invalid message: a bug on our side, never the client's problem.
      throw new Error(`memory transport: server sent an invalid message: ${(err as Error).message}`);
    }
    if (this.meter) {
      const m = this.meterOf(connId);
      if (m) {
        if (copy.type === 'train') m.modelDown += wireBytes(copy);
        else m.down += wireBytes(copy);
      }
    }
    queueMicrotask(() => end.deliver(copy));
  }

  private meterOf(connId: string): TrafficMeter | undefined {
    const clientId = this.clientOf.get(connId);
    if (!clientId || !this.meter) return undefined;
    let m = this.meter.get(clientId);
    if (!m) this.meter.set(clientId, (m = { up: 0, down: 0, modelDown: 0 }));
    return m;
  }

  disconnect(connId: string): void {
    this.ends.get(connId)?.drop('server disconnect');
  }

  async close(): Promise<void> {
    for (const end of [...this.ends.values()]) end.drop('server shutting down');
  }

  /** @internal */
  attach(end: MemoryClientEnd): void {
    if (!this.sink) throw new Error('memory transport: server not started');
    this.ends.set(end.connId, end);
    const sink = this.sink;
    queueMicrotask(() => sink.onConnect(end.connId));
  }

  /** @internal */
  detach(end: MemoryClientEnd, reason: string): void {
    if (!this.ends.delete(end.connId)) return;
    const sink = this.sink;
    queueMicrotask(() => sink?.onDisconnect(end.connId, reason));
  }

  /** @internal Validates a client message as the Socket.IO transport would. */
  receive(end: MemoryClientEnd, msg: ClientMessage): void {
    if (!this.ends.has(end.connId) || !this.sink) return;
    const sink = this.sink;
    let copy: ClientMessage;
    try {
      copy = validateMessage(msg, 'client', this.limits) as ClientMessage;
      if (this.meter) {
        if (copy.type === 'hello') this.clientOf.set(end.connId, copy.clientId);
        const m = this.meterOf(end.connId);
        if (m) m.up += wireBytes(copy);
      }
    } catch (err) {
      const error =
        err instanceof ProtocolError ? err : new ProtocolError(ErrorCode.INTERNAL, 'internal error handling a message');
      queueMicrotask(() => {
        end.deliver({ type: 'error', code: error.code, message: error.message });
        sink.onProtocolError?.(end.connId, error);
      });
      return;
    }
    queueMicrotask(() => {
      if (this.ends.has(end.connId)) sink.onMessage(end.connId, copy);
    });
  }
}

export class MemoryClientEnd implements ClientTransport {
  readonly kind = 'memory';
  private sink?: ClientTransportSink;
  private isConnected = false;
  private generation = 0;

  constructor(
    private readonly server: MemoryServerTransport,
    private baseId: string,
  ) {}

  /** Connection id as the server sees it (changes on each reconnect). */
  get connId(): string {
    return `${this.baseId}#${this.generation}`;
  }

  get connected(): boolean {
    return this.isConnected;
  }

  start(sink: ClientTransportSink): void {
    this.sink = sink;
    this.connect();
  }

  /** (Re)connects after a drop: a new connection id, like a fresh socket. */
  connect(): void {
    if (this.isConnected || !this.sink) return;
    this.generation++;
    this.isConnected = true;
    this.server.attach(this);
    const sink = this.sink;
    queueMicrotask(() => sink.onConnect());
  }

  send(msg: ClientMessage): void {
    if (this.isConnected) this.server.receive(this, msg);
  }

  /** Simulates a network drop (the client may `connect()` again later). */
  drop(reason = 'transport close'): void {
    if (!this.isConnected) return;
    this.isConnected = false;
    this.server.detach(this, reason);
    const sink = this.sink;
    queueMicrotask(() => sink?.onDisconnect(reason));
  }

  close(): void {
    this.drop('client closed');
    this.sink = undefined;
  }

  /** @internal */
  deliver(msg: ServerMessage): void {
    if (this.isConnected) this.sink?.onMessage(msg);
  }
}
