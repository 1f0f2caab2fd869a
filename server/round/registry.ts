/**
 * Who is connected: connections, the client each one registered as at hello, the handshake deadline
 * of those that have not said hello yet, and which clients have been told that the job ended. Client
 * authentication happens here (DESIGN.md §4): every new connection is sent a fresh 256-bit challenge,
 * and its hello must be signed over it; the federation (server/identity) decides whether that key may
 * speak for that client id. A refused hello changes nothing — in particular, a connection claiming the
 * id of a connected client does not displace it: the old connection is replaced only by one that
 * authenticated as the same client.
 */
import { CohortError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/log.ts';
import { toBase64Url } from '../../shared/crypto/bytes.ts';
import { CHALLENGE_BYTES } from '../../shared/identity/index.ts';
import { errorMessage, ErrorCode, PROTOCOL_VERSION, type Hello, type ServerMessage, type ServerTransport } from '../../shared/protocol/index.ts';
import { randomBytes } from '../../shared/random.ts';
import type { Admission, ClientAuthenticator } from '../identity/federation.ts';
import type { Clock } from './clock.ts';
import { checkHello, type ValueLimits } from './ranges.ts';

export interface ConnectedClient {
  connId: string;
  clientId: string;
  numExamples?: number;
  /** The Ed25519 key its hello proved (base64url): SecAgg round keys must be signed by it. */
  publicKey?: string;
}

export interface RegistryOptions {
  jobId: string;
  /** Who decides whether a signed hello may speak for its client id. */
  authenticator: ClientAuthenticator;
  /** The server identity challenges announce (a TLS fingerprint, or `plaintext`). */
  serverIdentity: string;
  transport: ServerTransport;
  clock: Clock;
  log: Logger;
  helloMs: number;
  valueLimits: ValueLimits;
  /** Schedules a guarded timer (the engine's, so errors never escape to the event loop). */
  timer: (what: string, ms: number, fn: () => void) => unknown;
}

export class ClientRegistry {
  private readonly byConn = new Map<string, ConnectedClient>();
  private readonly connByClient = new Map<string, string>();
  private readonly helloTimers = new Map<string, unknown>();
  /** Each unregistered connection's challenge (base64url). */
  private readonly challenges = new Map<string, string>();
  /** Distinct clients that were sent job_end. */
  private readonly endTold = new Set<string>();

  constructor(private readonly opts: RegistryOptions) {}

  get size(): number {
    return this.byConn.size;
  }

  /** The client registered on a connection, if any. */
  client(connId: string): ConnectedClient | undefined {
    return this.byConn.get(connId);
  }

  has(connId: string): boolean {
    return this.byConn.has(connId);
  }

  all(): ConnectedClient[] {
    return [...this.byConn.values()];
  }

  connIds(): IterableIterator<string> {
    return this.byConn.keys();
  }

  /** A new connection: it is sent its challenge, and must say hello within `helloMs`, or it is told so and closed. */
  opened(connId: string): void {
    const { helloMs, transport, log } = this.opts;
    const nonce = toBase64Url(randomBytes(CHALLENGE_BYTES));
    this.challenges.set(connId, nonce);
    transport.send(connId, { type: 'challenge', protocolVersion: PROTOCOL_VERSION, jobId: this.opts.jobId, nonce, server: this.opts.serverIdentity });
    this.helloTimers.set(
      connId,
      this.opts.timer('hello deadline', helloMs, () => {
        this.helloTimers.delete(connId);
        if (this.byConn.has(connId)) return;
        log.info({ connId, ms: helloMs }, 'no hello before the handshake deadline; closing the connection');
        transport.send(connId, errorMessage(ErrorCode.NOT_REGISTERED, `no hello within ${helloMs} ms; closing`));
        transport.disconnect(connId);
      }),
    );
  }

  /** A connection closed; returns the client it was registered as (if it still was). */
  closed(connId: string): ConnectedClient | undefined {
    this.clearHelloTimer(connId);
    this.challenges.delete(connId);
    const client = this.byConn.get(connId);
    if (!client) return undefined;
    this.byConn.delete(connId);
    if (this.connByClient.get(client.clientId) === connId) this.connByClient.delete(client.clientId);
    return client;
  }

  /**
   * Registers a hello (throws a typed error, changing nothing, if it is refused; a refused
   * authentication also closes the connection). Returns the client, how it was admitted, and the
   * connection it replaces: the same client, authenticated again, before its old socket timed out —
   * the new connection wins, and the caller must treat the old one as gone.
   */
  register(connId: string, msg: Hello, address?: string): { client: ConnectedClient; admission: Admission; replaced?: string } {
    const closeSoon = (what: string) => this.opts.timer(what, 100, () => this.opts.transport.disconnect(connId));
    if (msg.protocolVersion !== PROTOCOL_VERSION) {
      // Give the error time to reach the peer before closing.
      closeSoon('version mismatch close');
      throw new CohortError(ErrorCode.VERSION_MISMATCH, `server speaks protocol ${PROTOCOL_VERSION}, client ${msg.protocolVersion}`);
    }
    if (this.byConn.has(connId)) throw new CohortError(ErrorCode.DUPLICATE, 'hello already received on this connection');
    checkHello(msg, this.opts.valueLimits);
    const nonce = this.challenges.get(connId);
    let admission: Admission;
    try {
      if (nonce === undefined) throw new CohortError(ErrorCode.UNAUTHORIZED, 'no challenge was issued on this connection');
      admission = this.opts.authenticator.authenticate(msg, { jobId: this.opts.jobId, nonce, server: this.opts.serverIdentity, address });
    } catch (err) {
      closeSoon('unauthorized close');
      throw err;
    }
    // One challenge, one hello: a replay on the same connection has nothing left to sign.
    this.challenges.delete(connId);
    const replaced = this.connByClient.get(msg.clientId);
    if (replaced !== undefined) this.byConn.delete(replaced);
    this.clearHelloTimer(connId);
    const client: ConnectedClient = { connId, clientId: msg.clientId, numExamples: msg.numExamples, publicKey: msg.publicKey };
    this.byConn.set(connId, client);
    this.connByClient.set(msg.clientId, connId);
    return { client, admission, replaced };
  }

  /** The connection a client is registered on, if any. */
  connOf(clientId: string): string | undefined {
    return this.connByClient.get(clientId);
  }

  /** How many distinct clients have been told that the job ended. */
  get toldOfEnd(): number {
    return this.endTold.size;
  }

  /** Sends a client `job_end`; true the first time this client is told. */
  announceEnd(connId: string, clientId: string, msg: ServerMessage & { type: 'job_end' }): boolean {
    this.opts.transport.send(connId, msg);
    const before = this.endTold.size;
    this.endTold.add(clientId);
    return this.endTold.size > before;
  }

  private clearHelloTimer(connId: string): void {
    const t = this.helloTimers.get(connId);
    if (t === undefined) return;
    this.opts.clock.clearTimeout(t);
    this.helloTimers.delete(connId);
  }
}
