import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LIMITS,
  encodeMessage,
  ErrorCode,
  FRAME_VERSION,
  PROTOCOL_VERSION,
  MIN_CHUNK_BYTES,
  ProtocolError,
  Reassembler,
  validateMessage,
  type Update,
  type WireLimits,
} from './index.ts';

const limits: WireLimits = { ...DEFAULT_LIMITS, chunkBytes: 8192, maxPayloadBytes: 1 << 20 };

function update(length: number, fill = (i: number) => Math.sin(i)): Update {
  const vector = new Float32Array(length);
  for (let i = 0; i < length; i++) vector[i] = fill(i);
  return { type: 'update', jobId: 'job', round: 3, numExamples: 42, metrics: { loss: 0.5 }, vector };
}

/** Feeds an encoded message through a reassembler; returns what came out. */
function roundTrip(msg: Update, r = new Reassembler('client', limits), id = 1) {
  const { head, chunks } = encodeMessage(msg, id, limits.chunkBytes);
  let out = r.head(JSON.parse(JSON.stringify(head)));
  chunks.forEach((c, i) => {
    out = r.chunk({ id, i }, c.slice()) ?? out;
  });
  return out;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError);
    return (err as ProtocolError).code;
  }
  return undefined;
}

describe('binary framing', () => {
  it('round-trips a vector larger than one chunk bit-exactly', () => {
    const msg = update(50_001);
    const { head, chunks } = encodeMessage(msg, 7, limits.chunkBytes);
    expect(head.vec).toEqual({ bytes: 200_004, chunks: Math.ceil(200_004 / 8192) });
    expect(chunks.length).toBe(25);
    expect(JSON.stringify(head)).not.toContain('vector');
    const out = roundTrip(msg) as Update;
    expect(out.type).toBe('update');
    expect(out.numExamples).toBe(42);
    expect(Buffer.from(out.vector.buffer).equals(Buffer.from(msg.vector.buffer))).toBe(true);
  });

  it('delivers a message without vector on its head frame', () => {
    const r = new Reassembler('client', limits);
    const hello = { type: 'hello', protocolVersion: PROTOCOL_VERSION, clientId: 'a', publicKey: 'A'.repeat(43), signature: 'A'.repeat(86), server: 'plaintext' };
    const out = r.head({ v: FRAME_VERSION, id: 1, msg: hello });
    expect(out).toEqual(hello);
  });

  it('rejects unknown types, wrong senders and bad schemas with typed codes', () => {
    const r = new Reassembler('client', limits);
    expect(codeOf(() => r.head({ v: FRAME_VERSION, id: 1, msg: { type: 'steal' } }))).toBe(ErrorCode.UNKNOWN_TYPE);
    // A client may not send a server message.
    expect(codeOf(() => r.head({ v: FRAME_VERSION, id: 2, msg: { type: 'job_end', jobId: 'j', status: 'x', rounds: 1 } }))).toBe(
      ErrorCode.UNKNOWN_TYPE,
    );
    expect(codeOf(() => r.head({ v: FRAME_VERSION, id: 3, msg: { type: 'hello', protocolVersion: 1 } }))).toBe(ErrorCode.BAD_SCHEMA);
    expect(
      codeOf(() => r.head({ v: FRAME_VERSION, id: 4, msg: { type: 'hello', protocolVersion: 1, clientId: 'a', extra: 1 } })),
    ).toBe(ErrorCode.BAD_SCHEMA);
    expect(codeOf(() => r.head({ v: 99, id: 5, msg: { type: 'hello', protocolVersion: 1, clientId: 'a' } }))).toBe(
      ErrorCode.VERSION_MISMATCH,
    );
    expect(codeOf(() => r.head('garbage'))).toBe(ErrorCode.BAD_FRAME);
    // An update must carry a vector.
    const { head } = encodeMessage(update(4), 6, limits.chunkBytes);
    delete head.vec;
    expect(codeOf(() => r.head(head))).toBe(ErrorCode.BAD_SCHEMA);
  });

  it('refuses an oversized payload from the head, before allocating', () => {
    const r = new Reassembler('client', limits);
    const { head } = encodeMessage(update(4), 1, limits.chunkBytes);
    head.vec = { bytes: limits.maxPayloadBytes + 4, chunks: Math.ceil((limits.maxPayloadBytes + 4) / limits.chunkBytes) };
    expect(codeOf(() => r.head(head))).toBe(ErrorCode.PAYLOAD_TOO_LARGE);
    expect(r.openStreams).toBe(0);
    // Chunks of the rejected stream are dropped silently: one bad message, one error.
    expect(r.chunk({ id: 1, i: 0 }, new Uint8Array(8192))).toBeNull();
  });

  it('rejects NaN and Infinity anywhere in a vector', () => {
    expect(codeOf(() => roundTrip(update(10_000, (i) => (i === 9_999 ? NaN : 1))))).toBe(ErrorCode.NON_FINITE);
    expect(codeOf(() => roundTrip(update(10, (i) => (i === 3 ? -Infinity : 1))))).toBe(ErrorCode.NON_FINITE);
  });

  it('rejects broken chunk sequences', () => {
    const msg = update(5000); // 20,000 bytes: 3 chunks of 8192
    const { head, chunks } = encodeMessage(msg, 1, limits.chunkBytes);
    const r = new Reassembler('client', limits);
    r.head(head);
    expect(codeOf(() => r.chunk({ id: 1, i: 1 }, chunks[1]))).toBe(ErrorCode.BAD_FRAME); // out of order
    const r2 = new Reassembler('client', limits);
    r2.head(head);
    expect(codeOf(() => r2.chunk({ id: 1, i: 0 }, new Uint8Array(9000)))).toBe(ErrorCode.BAD_FRAME); // over chunk limit
    const r3 = new Reassembler('client', limits);
    r3.head(head);
    r3.chunk({ id: 1, i: 0 }, chunks[0]);
    r3.chunk({ id: 1, i: 1 }, chunks[1]);
    expect(codeOf(() => r3.chunk({ id: 1, i: 2 }, chunks[2].subarray(0, 8)))).toBe(ErrorCode.BAD_FRAME); // short last
    expect(codeOf(() => new Reassembler('client', limits).chunk({ id: 9, i: 0 }, chunks[0]))).toBe(ErrorCode.BAD_FRAME);
    expect(codeOf(() => new Reassembler('client', limits).chunk({ id: 1, i: 0 }, 'text'))).toBe(ErrorCode.BAD_FRAME);
  });

  it('rejects chunk counts that imply floods of tiny frames', () => {
    const { head } = encodeMessage(update(100_000), 1, limits.chunkBytes);
    head.vec!.chunks = Math.ceil(head.vec!.bytes / MIN_CHUNK_BYTES) + 1;
    expect(codeOf(() => new Reassembler('client', limits).head(head))).toBe(ErrorCode.BAD_FRAME);
  });

  it('accepts smaller chunks than its limit (sender chooses, within bounds)', () => {
    const msg = update(20_000);
    const { head, chunks } = encodeMessage(msg, 1, MIN_CHUNK_BYTES);
    const r = new Reassembler('client', limits);
    let out = r.head(head);
    chunks.forEach((c, i) => (out = r.chunk({ id: 1, i }, c) ?? out));
    expect((out as Update).vector).toEqual(msg.vector);
  });

  it('refuses a header over maxHeaderBytes with PAYLOAD_TOO_LARGE, and the connection goes on', () => {
    const r = new Reassembler('client', { ...limits, maxHeaderBytes: 1024 });
    const big = { v: FRAME_VERSION, id: 1, msg: { type: 'refuse', jobId: 'job', round: 1, reason: 'x'.repeat(1000) } };
    expect(() => r.head(big)).toThrow(expect.objectContaining({ code: ErrorCode.PAYLOAD_TOO_LARGE }));
    expect(r.head({ v: FRAME_VERSION, id: 2, msg: { type: 'refuse', jobId: 'job', round: 1, reason: 'no' } })).toMatchObject({ type: 'refuse' });
  });

  it('refuses a header nested too deeply to serialise with BAD_SCHEMA, not an internal error', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const r = new Reassembler('client', limits);
    expect(() => r.head({ v: FRAME_VERSION, id: 1, msg: { type: 'refuse', deep } })).toThrow(expect.objectContaining({ code: ErrorCode.BAD_SCHEMA }));
  });

  it('reassembles from chunk buffers that are views at odd offsets (as Socket.IO hands them over)', () => {
    const msg = update(3000);
    const { head, chunks } = encodeMessage(msg, 5, limits.chunkBytes);
    const r = new Reassembler('client', limits);
    r.head(JSON.parse(JSON.stringify(head)));
    let out: unknown = null;
    chunks.forEach((c, i) => {
      const pool = new Uint8Array(c.length + 3);
      pool.set(c, 3);
      out = r.chunk({ id: 5, i }, pool.subarray(3)) ?? out;
    });
    expect((out as Update).vector).toEqual(msg.vector);
  });

  it('caps the number of concurrently open streams', () => {
    const r = new Reassembler('client', { ...limits, maxOpenStreams: 2 });
    for (const id of [1, 2]) r.head(encodeMessage(update(4096), id, limits.chunkBytes).head);
    expect(codeOf(() => r.head(encodeMessage(update(4096), 3, limits.chunkBytes).head))).toBe(ErrorCode.BAD_FRAME);
  });
});

describe('validateMessage (in-memory path)', () => {
  it('copies the vector so sender and receiver never share memory', () => {
    const msg = update(16);
    const out = validateMessage(msg, 'client', limits) as Update;
    expect(out.vector).toEqual(msg.vector);
    msg.vector[0] = 99;
    expect(out.vector[0]).not.toBe(99);
  });

  it('applies the same checks as the framed path', () => {
    expect(codeOf(() => validateMessage(update(8, () => NaN), 'client', limits))).toBe(ErrorCode.NON_FINITE);
    expect(codeOf(() => validateMessage({ ...update(8), numExamples: 0 }, 'client', limits))).toBe(ErrorCode.BAD_SCHEMA);
    expect(codeOf(() => validateMessage(update(300_000), 'client', limits))).toBe(ErrorCode.PAYLOAD_TOO_LARGE);
    expect(codeOf(() => validateMessage({ type: 'nope' }, 'client', limits))).toBe(ErrorCode.UNKNOWN_TYPE);
  });
});
