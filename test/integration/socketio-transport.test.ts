/**
 * The Socket.IO transport over real loopback sockets: large vectors in chunks, and every kind of bad
 * frame answered with a typed error while nothing reaches the sink.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import {
  DEFAULT_LIMITS,
  FRAME_VERSION,
  PROTOCOL_VERSION,
  type ClientMessage,
  type ErrorMessage,
  type ServerMessage,
  type ServerTransportSink,
  type Train,
  type Update,
} from '../../shared/protocol/index.ts';
import { SocketIoServerTransport } from '../../server/transport/socketio.ts';

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

interface Received {
  messages: { connId: string; msg: ClientMessage }[];
  errors: string[];
  connects: string[];
}

async function startServer(limits = DEFAULT_LIMITS) {
  const transport = new SocketIoServerTransport({ port: 0, limits });
  const received: Received = { messages: [], errors: [], connects: [] };
  let onMessage: ((connId: string, msg: ClientMessage) => void) | undefined;
  const sink: ServerTransportSink = {
    onConnect: (id) => received.connects.push(id),
    onMessage: (connId, msg) => {
      received.messages.push({ connId, msg });
      onMessage?.(connId, msg);
    },
    onDisconnect: () => {},
    onProtocolError: (_id, err) => received.errors.push(err.code),
  };
  await transport.start(sink);
  closers.push(() => transport.close());
  return { transport, received, setOnMessage: (f: typeof onMessage) => (onMessage = f) };
}

function waitFor<T>(probe: () => T | undefined, ms = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = () => {
      const value = probe();
      if (value !== undefined) return resolve(value);
      if (Date.now() - started > ms) return reject(new Error('timed out waiting'));
      setTimeout(poll, 5);
    };
    poll();
  });
}

function pattern(n: number, salt: number): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = Math.fround(Math.sin(i * 0.001 + salt) * 1e3);
  return v;
}

describe('Socket.IO transport', () => {
  it('carries vectors of more than 8 MB both ways, bit-exact, in chunks under the buffer limit', async () => {
    const server = await startServer();
    const n = 2_300_000; // 9.2 MB of float32, ~9x Socket.IO's default 1 MB maxHttpBufferSize
    const weights = pattern(n, 1);
    const client = new SocketIoClientTransport({ url: server.transport.url });
    closers.push(() => client.close());
    const inbox: ServerMessage[] = [];
    client.start({ onConnect() {}, onDisconnect() {}, onMessage: (m) => inbox.push(m) });
    const connId = await waitFor(() => server.received.connects[0]);
    const train: Train = {
      type: 'train',
      jobId: 'job',
      round: 1,
      modelChecksum: 'x',
      model: { zoo: 'mlp' } as Train['model'],
      training: { epochs: 1, batchSize: 10, learningRate: 0.1, proxMu: 0 },
      timeoutMs: 1000,
      vector: weights,
    };
    server.transport.send(connId, train);
    const got = (await waitFor(() => inbox.find((m) => m.type === 'train'))) as Train;
    expect(got.vector.length).toBe(n);
    expect(Buffer.from(got.vector.buffer, got.vector.byteOffset, got.vector.byteLength).equals(Buffer.from(weights.buffer))).toBe(true);

    const delta = pattern(n, 2);
    client.send({ type: 'update', jobId: 'job', round: 1, numExamples: 5, metrics: { loss: 1 }, vector: delta });
    const up = (await waitFor(() => server.received.messages.find((m) => m.msg.type === 'update'))).msg as Update;
    expect(Buffer.from(up.vector.buffer, up.vector.byteOffset, up.vector.byteLength).equals(Buffer.from(delta.buffer))).toBe(true);
    expect(server.received.errors).toEqual([]);
  });

  describe('rejects bad frames with typed errors and delivers nothing', () => {
    async function rawSocket(url: string): Promise<{ socket: Socket; errors: ErrorMessage[] }> {
      const socket = io(url, { transports: ['websocket'], reconnection: false });
      closers.push(() => void socket.disconnect());
      const errors: ErrorMessage[] = [];
      socket.on('head', (head: { msg: ErrorMessage }) => {
        if (head.msg.type === 'error') errors.push(head.msg);
      });
      await new Promise<void>((resolve) => socket.on('connect', () => resolve()));
      return { socket, errors };
    }
    const head = (msg: object, vec?: { bytes: number; chunks: number }) => ({ v: FRAME_VERSION, id: 1, msg, ...(vec ? { vec } : {}) });
    const cases: [string, (s: Socket) => void, string][] = [
      ['malformed head', (s) => s.emit('head', { nonsense: true }), 'BAD_FRAME'],
      ['unknown event', (s) => s.emit('exec', 'rm -rf /'), 'UNKNOWN_TYPE'],
      ['unknown message type', (s) => s.emit('head', head({ type: 'shutdown' })), 'UNKNOWN_TYPE'],
      ['wrong schema', (s) => s.emit('head', head({ type: 'hello', protocolVersion: '1', clientId: 'a' })), 'BAD_SCHEMA'],
      [
        'oversized payload',
        (s) =>
          s.emit('head', head({ type: 'update', jobId: 'j', round: 1, numExamples: 1, metrics: {} }, { bytes: 2 ** 30, chunks: 4096 })),
        'PAYLOAD_TOO_LARGE',
      ],
      [
        'NaN in a vector',
        (s) => {
          s.emit('head', head({ type: 'update', jobId: 'j', round: 1, numExamples: 1, metrics: {} }, { bytes: 8, chunks: 1 }));
          s.emit('chunk', { id: 1, i: 0 }, new Uint8Array(new Float32Array([1, NaN]).buffer));
        },
        'NON_FINITE',
      ],
      ['chunk for no stream', (s) => s.emit('chunk', { id: 77, i: 0 }, new Uint8Array(16)), 'BAD_FRAME'],
    ];
    for (const [name, send, code] of cases) {
      it(name, async () => {
        const server = await startServer();
        const { socket, errors } = await rawSocket(server.transport.url);
        send(socket);
        const error = await waitFor(() => errors[0]);
        expect(error.code).toBe(code);
        expect(server.received.errors).toEqual([code]);
        expect(server.received.messages).toEqual([]);
        // The connection survives a rejected frame: a valid hello still gets through.
        const valid = { type: 'hello', protocolVersion: PROTOCOL_VERSION, clientId: 'ok', publicKey: 'A'.repeat(43), signature: 'A'.repeat(86), server: 'plaintext' };
        socket.emit('head', { v: FRAME_VERSION, id: 2, msg: valid });
        const hello = await waitFor(() => server.received.messages[0]);
        expect(hello.msg).toEqual(valid);
      });
    }

    it('drops a packet beyond the Socket.IO buffer limit by closing that connection only', async () => {
      const server = await startServer({ ...DEFAULT_LIMITS, chunkBytes: 64 * 1024, maxHeaderBytes: 16 * 1024 });
      const { socket } = await rawSocket(server.transport.url);
      const closed = new Promise<string>((resolve) => socket.on('disconnect', resolve));
      socket.emit('chunk', { id: 1, i: 0 }, new Uint8Array(4 * 1024 * 1024));
      expect(await closed).toMatch(/close/);
      expect(server.received.messages).toEqual([]);
      const other = await rawSocket(server.transport.url);
      expect(other.socket.connected).toBe(true);
    });
  });
});
