/**
 * One load-generator process of the load bench (bench/load.ts forks a few of these). It opens its share
 * of raw protocol clients to the coordinator: socket.io-client over WebSocket plus the real framing
 * (emitFrames / Reassembler), no client engine and no tfjs. Each client says hello, and answers `train`
 * with an `update` carrying a fixed small delta and plausible metrics after a simulated training time,
 * and `evaluate` with an `eval_result`.
 *
 * Talks to the parent over the IPC channel only (LoadGeneratorCommand in, LoadGeneratorReport out).
 */
import { io, type Socket } from 'socket.io-client';
import {
  DEFAULT_LIMITS,
  emitFrames,
  PROTOCOL_VERSION,
  Reassembler,
  type ClientMessage,
  type ServerMessage,
} from '../shared/protocol/index.ts';
import { seededRng, type Rng } from '../shared/random.ts';
import { ed25519KeyPair } from '../shared/crypto/ed25519.ts';
import { signedHello } from '../shared/identity/index.ts';

export interface GeneratorStart {
  type: 'start';
  url: string;
  /** Global index of this generator's first client (client ids are `load-<index>`). */
  first: number;
  count: number;
  /** At most this many of our clients connecting (not yet welcomed) at once. */
  ramp: number;
  /** Simulated local training: the update follows `train` after trainMs × U[0.5, 1.5) ms. */
  trainMs: number;
  seed: number;
  /** Source address of client k: addresses[floor(k / perAddress) % length]; empty = the OS's choice. */
  addresses: string[];
  perAddress: number;
}

export type LoadGeneratorCommand = GeneratorStart | { type: 'stop' };

export interface GeneratorStats {
  type: 'stats';
  /** Milliseconds from opening the socket to receiving `welcome`, one per client's first welcome. */
  connectMs: number[];
  /** Milliseconds from sending hello (the signed answer to the challenge) to `welcome`, per first welcome. */
  helloMs: number[];
  welcomed: number;
  /** Clients that were connected and welcomed when `stop` arrived. */
  connectedAtStop: number;
  disconnects: number;
  disconnectReasons: Record<string, number>;
  reconnects: number;
  connectErrors: number;
  trains: number;
  updates: number;
  evaluates: number;
  evalResults: number;
  roundResults: number;
  jobEnds: number;
  /** `error` messages from the server, by code. */
  serverErrors: Record<string, number>;
  /** Frames from the server our Reassembler rejected, by code. */
  frameErrors: Record<string, number>;
  rssBytes: number;
  cpuUserMs: number;
  cpuSystemMs: number;
}

export type LoadGeneratorReport =
  | { type: 'ready' }
  | { type: 'progress'; welcomed: number }
  | { type: 'all-welcomed'; welcomed: number }
  | GeneratorStats;

function send(report: LoadGeneratorReport): void {
  process.send?.(report);
}

const bump = (tally: Record<string, number>, key: string): void => {
  tally[key] = (tally[key] ?? 0) + 1;
};

/** One fixed small delta per model size: the same ±0.001 pattern for every client. */
const deltas = new Map<number, Float32Array>();
function deltaOf(length: number): Float32Array {
  let d = deltas.get(length);
  if (!d) {
    d = Float32Array.from({ length }, (_, i) => (i % 2 === 0 ? 1e-3 : -1e-3));
    deltas.set(length, d);
  }
  return d;
}

class Generator {
  private readonly clients: RawClient[] = [];
  private next = 0;
  private connecting = 0;
  private stopping = false;
  readonly stats: GeneratorStats = {
    type: 'stats',
    connectMs: [],
    helloMs: [],
    welcomed: 0,
    connectedAtStop: 0,
    disconnects: 0,
    disconnectReasons: {},
    reconnects: 0,
    connectErrors: 0,
    trains: 0,
    updates: 0,
    evaluates: 0,
    evalResults: 0,
    roundResults: 0,
    jobEnds: 0,
    serverErrors: {},
    frameErrors: {},
    rssBytes: 0,
    cpuUserMs: 0,
    cpuSystemMs: 0,
  };
  private lastProgress = 0;

  constructor(readonly cfg: GeneratorStart) {}

  get isStopping(): boolean {
    return this.stopping;
  }

  start(): void {
    this.fill();
  }

  /** Opens clients until `ramp` are in flight or all are open. */
  private fill(): void {
    while (!this.stopping && this.connecting < this.cfg.ramp && this.next < this.cfg.count) {
      const k = this.next++;
      this.connecting++;
      this.clients.push(new RawClient(this, k));
    }
  }

  /** A client's first welcome. */
  welcomed(ms: number, helloMs: number): void {
    this.connecting--;
    this.stats.welcomed++;
    this.stats.connectMs.push(ms);
    this.stats.helloMs.push(helloMs);
    if (this.stats.welcomed === this.cfg.count) send({ type: 'all-welcomed', welcomed: this.stats.welcomed });
    else if (this.stats.welcomed - this.lastProgress >= 250) {
      this.lastProgress = this.stats.welcomed;
      send({ type: 'progress', welcomed: this.stats.welcomed });
    }
    this.fill();
  }

  stop(): GeneratorStats {
    this.stopping = true;
    this.stats.connectedAtStop = this.clients.filter((c) => c.isWelcomed).length;
    for (const c of this.clients) c.close();
    const usage = process.cpuUsage();
    this.stats.cpuUserMs = usage.user / 1000;
    this.stats.cpuSystemMs = usage.system / 1000;
    this.stats.rssBytes = process.memoryUsage.rss();
    return this.stats;
  }
}

class RawClient {
  private readonly socket: Socket;
  private reassembler = new Reassembler('server', DEFAULT_LIMITS);
  private nextStreamId = 0;
  private readonly clientId: string;
  private readonly numExamples: number;
  /** Its identity key: the coordinator binds the id to it at the first hello (first-use mode). */
  private readonly key = ed25519KeyPair();
  private readonly openedAt = performance.now();
  private helloSentAt = 0;
  private everWelcomed = false;
  private welcomedNow = false;
  private connectedOnce = false;
  private readonly rng: Rng;

  constructor(
    private readonly gen: Generator,
    k: number,
  ) {
    const { cfg } = gen;
    const index = cfg.first + k;
    this.clientId = `load-${index}`;
    this.numExamples = 50 + (index % 451);
    this.rng = seededRng((cfg.seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
    const localAddress = cfg.addresses.length ? cfg.addresses[Math.floor(index / cfg.perAddress) % cfg.addresses.length] : undefined;
    this.socket = io(cfg.url, {
      transports: ['websocket'],
      // One engine.io connection per client: without it socket.io-client multiplexes every io(url) onto one.
      forceNew: true,
      reconnection: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 30_000,
      randomizationFactor: 0.5,
      ...(localAddress ? { localAddress } : {}),
    });
    this.socket.on('connect', () => this.onConnect());
    this.socket.on('disconnect', (reason) => this.onDisconnect(reason));
    this.socket.on('connect_error', () => {
      if (!this.gen.isStopping) this.gen.stats.connectErrors++;
    });
    this.socket.on('head', (head: unknown) => this.deliver(() => this.reassembler.head(head)));
    this.socket.on('chunk', (meta: unknown, data: unknown) => this.deliver(() => this.reassembler.chunk(meta, data)));
  }

  get isWelcomed(): boolean {
    return this.welcomedNow && this.socket.connected;
  }

  close(): void {
    this.socket.io.reconnection(false);
    this.socket.disconnect();
  }

  private onConnect(): void {
    if (this.connectedOnce) this.gen.stats.reconnects++;
    this.connectedOnce = true;
    this.reassembler = new Reassembler('server', DEFAULT_LIMITS);
    // Hello answers the connection's challenge (onMessage).
  }

  private onDisconnect(reason: string): void {
    this.welcomedNow = false;
    if (this.gen.isStopping) return;
    this.gen.stats.disconnects++;
    bump(this.gen.stats.disconnectReasons, reason);
  }

  private deliver(produce: () => unknown): void {
    let msg: ServerMessage | null;
    try {
      msg = produce() as ServerMessage | null;
    } catch (err) {
      bump(this.gen.stats.frameErrors, (err as { code?: string }).code ?? 'UNKNOWN');
      return;
    }
    if (msg) this.onMessage(msg);
  }

  private onMessage(msg: ServerMessage): void {
    const stats = this.gen.stats;
    switch (msg.type) {
      case 'challenge':
        this.helloSentAt = performance.now();
        this.send(signedHello(this.key, msg, this.clientId, { numExamples: this.numExamples, backend: 'load-bench' }));
        return;
      case 'welcome':
        this.welcomedNow = true;
        if (!this.everWelcomed) {
          this.everWelcomed = true;
          const now = performance.now();
          this.gen.welcomed(now - this.openedAt, now - this.helloSentAt);
        }
        return;
      case 'train': {
        stats.trains++;
        const think = this.gen.cfg.trainMs * (0.5 + this.rng.next());
        const length = msg.vector.length;
        const { jobId, round } = msg;
        const loss = 0.3 + 0.4 * this.rng.next();
        const accuracy = 0.6 + 0.3 * this.rng.next();
        setTimeout(() => {
          if (!this.socket.connected || this.gen.isStopping) return;
          stats.updates++;
          this.send({ type: 'update', jobId, round, numExamples: this.numExamples, metrics: { loss, accuracy }, vector: deltaOf(length) });
        }, think);
        return;
      }
      case 'evaluate': {
        stats.evaluates++;
        const { jobId, round } = msg;
        setTimeout(() => {
          if (!this.socket.connected || this.gen.isStopping) return;
          stats.evalResults++;
          const n = Math.max(1, Math.round(this.numExamples / 5));
          this.send({ type: 'eval_result', jobId, round, numExamples: n, loss: 0.3 + 0.4 * this.rng.next(), accuracy: 0.6 + 0.3 * this.rng.next() });
        }, this.gen.cfg.trainMs * 0.1 * (0.5 + this.rng.next()));
        return;
      }
      case 'round_result':
        stats.roundResults++;
        return;
      case 'job_end':
        stats.jobEnds++;
        return;
      case 'error':
        bump(stats.serverErrors, msg.code);
        return;
      default:
        return;
    }
  }

  private send(msg: ClientMessage): void {
    if (!this.socket.connected) return;
    emitFrames(this.socket, msg, this.nextStreamId++, DEFAULT_LIMITS.chunkBytes);
  }
}

let generator: Generator | undefined;
process.on('message', (cmd: LoadGeneratorCommand) => {
  if (cmd.type === 'start') {
    generator = new Generator(cmd);
    generator.start();
  } else if (cmd.type === 'stop' && generator) {
    // The parent disconnects once it has the stats (then we leave, below); leave anyway if it never does.
    process.send?.(generator.stop());
    setTimeout(() => process.exit(0), 60_000).unref();
  }
});
// The parent has our stats, or went away: let the close frames go out, then leave.
process.on('disconnect', () => setTimeout(() => process.exit(0), 300).unref());
send({ type: 'ready' });
