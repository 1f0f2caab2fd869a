/**
 * Connection abuse over real Socket.IO: a connection that never says hello is closed at the handshake
 * deadline; a flood of connections from one address is capped (per address, and in all for
 * connections that have not said hello), is refused with TOO_MANY_CONNECTIONS, and neither starves
 * the registered clients (they finish the job) nor a new client from another address.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientEngine, type ClientTask, type FitResult } from '../../client/engine/index.ts';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import { startCoordinator } from '../../server/coordinator.ts';
import { parseJobConfig } from '../../server/round/config.ts';
import { ManualClock } from '../../shared/clock.ts';
import { emitFrames, ErrorCode, type Challenge, type ErrorMessage } from '../../shared/protocol/index.ts';
import { ed25519KeyPair } from '../../shared/crypto/ed25519.ts';
import { signedHello } from '../../shared/identity/index.ts';

const DIM = 18;

class SlowTask implements ClientTask {
  constructor(private readonly gate: () => Promise<void>) {}
  get numExamples() {
    return 10;
  }
  async fit(): Promise<FitResult> {
    await this.gate();
    return { delta: new Float32Array(DIM).fill(0.01), numExamples: 10, metrics: { loss: 1 } };
  }
  async evaluate() {
    return { numExamples: 1, loss: 1, accuracy: 1 };
  }
}

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

type Outcome = { kind: 'connected'; socket: Socket } | { kind: 'refused'; message: string; code?: string };

/** Each raw socket's challenge, caught from its first frame on (it may arrive before `connect` resolves). */
const challenges = new WeakMap<Socket, Promise<Challenge>>();

function rawConnect(url: string, localAddress = '127.0.0.1'): Promise<Outcome> {
  const socket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true, localAddress } as never);
  cleanup.push(() => socket.close());
  challenges.set(socket, new Promise((resolve) => socket.on('head', (h: { msg: Challenge }) => h.msg.type === 'challenge' && resolve(h.msg))));
  return new Promise((resolve) => {
    socket.once('connect', () => resolve({ kind: 'connected', socket }));
    socket.once('connect_error', (err: Error & { data?: { code?: string } }) => resolve({ kind: 'refused', message: err.message, code: err.data?.code }));
  });
}

/** Answers the socket's challenge with a hello signed by a fresh key. */
async function sayHello(socket: Socket, clientId: string): Promise<void> {
  const challenge = await challenges.get(socket)!;
  emitFrames(socket, signedHello(ed25519KeyPair(), challenge, clientId), 0, 256 * 1024);
}

describe('connection abuse', () => {
  it('closes a silent connection at the hello deadline; caps a flood without starving registered clients', async () => {
    const config = parseJobConfig({
      id: 'abuse',
      model: { zoo: 'logreg', inputShape: [8], numClasses: 2 },
      rounds: 3,
      sampling: { mode: 'fixed', cohortSize: 3 },
      minClients: 3,
      evaluation: { every: 0 },
      timeouts: { trainMs: 20_000, retryDelayMs: 20, helloMs: 400 },
    });
    // The engine's deadlines run on a manual clock: the hello deadline passes exactly when the test says.
    const clock = new ManualClock();
    const coordinator = await startCoordinator({
      config,
      clock,
      dataDir: mkdtempSync(join(tmpdir(), 'cohort-abuse-')),
      connections: { maxPerIp: 12, maxUnregistered: 8, maxUnregisteredPerIp: 5 },
    });
    cleanup.push(() => coordinator.close());
    // Honest clients train only when the test lets them, so the flood hits a running round.
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const engines = [0, 1, 2].map((i) => {
      const e = new ClientEngine({
        clientId: `honest-${i}`,
        task: new SlowTask(() => gate),
        transport: new SocketIoClientTransport({ url: coordinator.url, reconnect: { maxAttempts: 0 } }),
      });
      e.start();
      cleanup.push(() => e.stop());
      return e;
    });
    await expect.poll(() => coordinator.engine.status).toBe('training');

    const flood = await Promise.all(Array.from({ length: 30 }, () => rawConnect(coordinator.url)));
    const admitted = flood.filter((o): o is Extract<Outcome, { kind: 'connected' }> => o.kind === 'connected');
    const refused = flood.filter((o): o is Extract<Outcome, { kind: 'refused' }> => o.kind === 'refused');
    expect(admitted).toHaveLength(5); // maxUnregisteredPerIp
    expect(refused).toHaveLength(25);
    for (const r of refused) {
      expect(r.code).toBe(ErrorCode.TOO_MANY_CONNECTIONS);
      expect(r.message).toMatch(/have not said hello/);
    }
    expect(coordinator.transport.connectionCounts).toEqual({ open: 8, unregistered: 5 });

    // Another address is not blocked by this one's flood, and can register.
    const other = await rawConnect(coordinator.url, '127.0.0.2');
    expect(other.kind).toBe('connected');
    const otherSocket = (other as { socket: Socket }).socket;
    const welcomed = new Promise<string>((resolve) => otherSocket.on('head', (h: { msg: { type: string } }) => h.msg.type !== 'challenge' && resolve(h.msg.type)));
    await sayHello(otherSocket, 'from-elsewhere');
    expect(await welcomed).toBe('welcome');

    // The silent ones are told why and closed at the hello deadline.
    expect(coordinator.transport.connectionCounts.unregistered).toBe(5);
    clock.advance(400);
    const closed = await Promise.all(
      admitted.map(
        ({ socket }) =>
          new Promise<{ errors: ErrorMessage[]; reason: string }>((resolve) => {
            const errors: ErrorMessage[] = [];
            socket.on('head', (h: { msg: ErrorMessage }) => h.msg.type === 'error' && errors.push(h.msg));
            socket.once('disconnect', (reason) => resolve({ errors, reason }));
          }),
      ),
    );
    for (const c of closed) {
      expect(c.reason).toBe('io server disconnect');
      expect(c.errors.map((e) => e.code)).toEqual([ErrorCode.NOT_REGISTERED]);
    }
    await expect.poll(() => coordinator.transport.connectionCounts).toEqual({ open: 4, unregistered: 0 });

    // Per-address cap, registered or not: 3 honest + 9 more from 127.0.0.1 reach maxPerIp = 12.
    const more: Outcome[] = [];
    for (let i = 0; i < 10; i++) {
      const o = await rawConnect(coordinator.url);
      more.push(o);
      if (o.kind === 'connected') await sayHello(o.socket, `late-${i}`);
    }
    expect(more.filter((o) => o.kind === 'connected')).toHaveLength(9);
    expect(more.at(-1)).toMatchObject({ kind: 'refused', code: ErrorCode.TOO_MANY_CONNECTIONS, message: expect.stringMatching(/more than 12 connections from/) });

    // The registered clients were never disturbed: they finish the job (the raw clients leave first, so
    // later cohorts are drawn from the honest three).
    for (const o of more) if (o.kind === 'connected') o.socket.close();
    otherSocket.close();
    await expect.poll(() => coordinator.engine.connectedClients).toBe(3);
    const ends = engines.map((e) => new Promise((resolve) => e.once('jobEnd', resolve)));
    open();
    const summary = await coordinator.engine.whenFinished();
    expect(summary).toMatchObject({ status: 'completed', rounds: 3 });
    for (const end of await Promise.all(ends)) expect(end).toMatchObject({ status: 'completed', rounds: 3 });
  });
});
