/**
 * The load bench's instrumented coordinator transport: CountingTransport wraps the Socket.IO server
 * transport, counts disconnects and protocol errors, and times the engine's send() fan-outs per loop turn.
 */
import type { SocketIoServerTransport } from '../server/transport/socketio.ts';
import type { ProtocolError, ServerMessage, ServerTransport, ServerTransportSink } from '../shared/protocol/index.ts';
import { bump } from './load.stats.ts';

// ---- the coordinator, instrumented -----------------------------------------------------------------

/** Sends in one event-loop turn that count as a fan-out burst. */
const BURST_MIN_SENDS = 100;

/** Delegates to the Socket.IO transport, counts what the engine hears from it and times its sends. */
export class CountingTransport implements ServerTransport {
  readonly kind: string;
  counting = true;
  disconnects = 0;
  readonly disconnectReasons: Record<string, number> = {};
  protocolErrors = 0;

  constructor(private readonly inner: SocketIoServerTransport) {
    this.kind = inner.kind;
  }

  get url(): string {
    return this.inner.url;
  }

  start(sink: ServerTransportSink): Promise<void> {
    return this.inner.start({
      onConnect: (connId) => sink.onConnect(connId),
      onMessage: (connId, msg) => sink.onMessage(connId, msg),
      onDisconnect: (connId, reason) => {
        if (this.counting) {
          this.disconnects++;
          bump(this.disconnectReasons, reason);
        }
        sink.onDisconnect(connId, reason);
      },
      onProtocolError: (connId: string, error: ProtocolError) => {
        if (this.counting) this.protocolErrors++;
        sink.onProtocolError?.(connId, error);
      },
    });
  }

  /** Time spent in send() per event-loop turn (the engine's fan-outs: trains, round results). */
  readonly bursts: { ms: number; sends: number }[] = [];
  private burst = { ms: 0, sends: 0 };
  private burstScheduled = false;

  send(connId: string, msg: ServerMessage): void {
    const t = performance.now();
    this.inner.send(connId, msg);
    this.burst.ms += performance.now() - t;
    this.burst.sends++;
    if (!this.burstScheduled) {
      this.burstScheduled = true;
      setImmediate(() => {
        this.burstScheduled = false;
        if (this.counting && this.burst.sends >= BURST_MIN_SENDS) this.bursts.push(this.burst);
        this.burst = { ms: 0, sends: 0 };
      });
    }
  }

  disconnect(connId: string): void {
    this.inner.disconnect(connId);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
