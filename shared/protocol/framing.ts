/**
 * Binary framing. A message travels as one `head` frame (its JSON header plus a stream id and, if it
 * carries a vector, the vector's byte length and chunk count) followed by that many `chunk` frames of
 * raw little-endian float32 bytes. Chunks keep every transport packet under Socket.IO's buffer limit,
 * so models of any size travel; the receiver checks every size against explicit limits before it
 * allocates anything. Vectors are never sent as JSON arrays.
 *
 * Byte order: Float32Array uses the platform's order; every platform Node and browsers run on is
 * little-endian, and `assertLittleEndian()` refuses to run elsewhere rather than corrupt vectors.
 */
import { z } from 'zod';
import { CohortError } from '../errors.ts';
import { boundText, ErrorCode, PROTOCOL_VERSION, ProtocolError } from './errors.ts';
import type { WireLimits } from './limits.ts';
import { MESSAGE_KINDS, type BinaryKind, type Message } from './messages.ts';

/** Version of the frame layout (independent of the message protocol version, negotiated at hello). */
export const FRAME_VERSION = 1;

/** Smallest chunk a sender may use (except the last), so a peer cannot flood us with tiny frames. */
export const MIN_CHUNK_BYTES = 4096;

export interface FrameHead {
  v: number;
  /** Sender-chosen id, unique among the sender's open streams. */
  id: number;
  /** The message without its vector. */
  msg: Record<string, unknown>;
  /** Present iff the message carries a vector. */
  vec?: { bytes: number; chunks: number };
}

export interface ChunkMeta {
  id: number;
  /** Index of this chunk, 0-based; chunks arrive in order. */
  i: number;
}

export interface EncodedMessage {
  head: FrameHead;
  /** Views into the vector's buffer (no copy). */
  chunks: Uint8Array[];
}

const FrameHeadSchema = z
  .object({
    v: z.number().int(),
    id: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    msg: z.record(z.string(), z.unknown()),
    vec: z
      .object({ bytes: z.number().int().min(0), chunks: z.number().int().min(0) })
      .strict()
      .optional(),
  })
  .strict();

const ChunkMetaSchema = z
  .object({ id: z.number().int().min(0), i: z.number().int().min(0) })
  .strict();

export function assertLittleEndian(): void {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new CohortError('UNSUPPORTED_PLATFORM', 'Cohort requires a little-endian platform');
  }
}
assertLittleEndian();

/** The binary part of a message (vector or payload) as a byte view, and the header without it. */
function splitBinary(msg: Message): { header: Record<string, unknown>; bytes?: Uint8Array } {
  const { vector, payload, ...header } = msg as Message & { vector?: Float32Array; payload?: Uint8Array };
  const binary = vector ?? payload;
  return { header, bytes: binary ? new Uint8Array(binary.buffer, binary.byteOffset, binary.byteLength) : undefined };
}

/** Splits a message into a head and chunk views of its vector or payload. */
export function encodeMessage(msg: Message, streamId: number, chunkBytes: number): EncodedMessage {
  const { header, bytes } = splitBinary(msg);
  const head: FrameHead = { v: FRAME_VERSION, id: streamId, msg: header };
  const chunks: Uint8Array[] = [];
  if (bytes) {
    for (let off = 0; off < bytes.length; off += chunkBytes) {
      chunks.push(bytes.subarray(off, Math.min(off + chunkBytes, bytes.length)));
    }
    head.vec = { bytes: bytes.length, chunks: chunks.length };
  }
  return { head, chunks };
}

/** Anything with Socket.IO's `emit` shape. */
export interface FrameEmitter {
  emit(event: string, ...args: unknown[]): unknown;
}

/**
 * Sends a message as one `head` event plus one binary `chunk` event per chunk. The chunks are views
 * of the vector (no copy); Socket.IO ships typed-array views as binary attachments.
 */
export function emitFrames(emitter: FrameEmitter, msg: Message, streamId: number, chunkBytes: number): void {
  const { head, chunks } = encodeMessage(msg, streamId, chunkBytes);
  emitter.emit('head', head);
  for (let i = 0; i < chunks.length; i++) emitter.emit('chunk', { id: streamId, i } satisfies ChunkMeta, chunks[i]);
}

/** The first schema issue, bounded (paths and zod's key lists quote the input), with a count of the rest. */
function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  const where = issue.path.length ? boundText(issue.path.map(String).join('.'), 200) : '(root)';
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more issues)` : '';
  return `${where}: ${boundText(issue.message, 400)}${more}`;
}

/**
 * Validates a message header of a type the given sender may send. Returns the parsed header, or
 * throws UNKNOWN_TYPE / BAD_SCHEMA.
 */
export function parseHeader(raw: unknown, from: 'client' | 'server'): Record<string, unknown> {
  const type = (raw as { type?: unknown } | null)?.type;
  const kind = typeof type === 'string' ? MESSAGE_KINDS[type as Message['type']] : undefined;
  if (!kind || kind.from !== from || !Object.hasOwn(MESSAGE_KINDS, type as string)) {
    throw new ProtocolError(ErrorCode.UNKNOWN_TYPE, `unknown message type ${boundText(JSON.stringify(type) ?? String(type), 80)}`);
  }
  const parsed = kind.header.safeParse(raw);
  if (!parsed.success) {
    throw new ProtocolError(ErrorCode.BAD_SCHEMA, `bad ${String(type)} message: ${firstIssue(parsed.error)}`, {
      type,
    });
  }
  return parsed.data as Record<string, unknown>;
}

/** Throws NON_FINITE at the first NaN or ±Infinity. */
export function assertFiniteVector(v: Float32Array, what: string): void {
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (x - x !== 0) {
      throw new ProtocolError(ErrorCode.NON_FINITE, `${what}: element ${i} is ${x}`, { index: i });
    }
  }
}

function binaryKind(type: string): BinaryKind {
  return MESSAGE_KINDS[type as Message['type']].binary;
}

/**
 * Validates a whole message object as it would arrive through framing: header schema, vector
 * presence, finiteness. The vector is copied (unless `copyVector: false`), so sender and receiver
 * never share memory. Used by the in-memory transport so simulations pass the same checks as Socket.IO.
 */
export function validateMessage(
  raw: unknown,
  from: 'client' | 'server',
  limits: WireLimits,
  opts: { copyVector?: boolean } = {},
): Message {
  const { vector, payload, ...header } = (raw ?? {}) as Record<string, unknown>;
  const parsed = parseHeader(header, from);
  const type = parsed.type as string;
  const kind = binaryKind(type);
  if (kind !== 'f32' && vector !== undefined) throw new ProtocolError(ErrorCode.BAD_SCHEMA, `${type} carries no vector`);
  if (kind !== 'bytes' && payload !== undefined) throw new ProtocolError(ErrorCode.BAD_SCHEMA, `${type} carries no payload`);
  if (kind === 'none') return parsed as unknown as Message;
  if (kind === 'bytes') {
    if (payload === undefined) return parsed as unknown as Message;
    if (!(payload instanceof Uint8Array)) throw new ProtocolError(ErrorCode.BAD_SCHEMA, `${type} payload must be bytes`);
    if (payload.byteLength > limits.maxPayloadBytes) {
      throw new ProtocolError(ErrorCode.PAYLOAD_TOO_LARGE, `${type} payload of ${payload.byteLength} bytes exceeds the limit of ${limits.maxPayloadBytes}`);
    }
    return { ...parsed, payload: opts.copyVector === false ? payload : payload.slice() } as unknown as Message;
  }
  if (!(vector instanceof Float32Array)) {
    throw new ProtocolError(ErrorCode.BAD_SCHEMA, `${type} needs a Float32Array vector`);
  }
  if (vector.byteLength > limits.maxPayloadBytes) {
    throw new ProtocolError(
      ErrorCode.PAYLOAD_TOO_LARGE,
      `${type} vector of ${vector.byteLength} bytes exceeds the limit of ${limits.maxPayloadBytes}`,
    );
  }
  const out = opts.copyVector === false ? vector : new Float32Array(vector);
  assertFiniteVector(out, type);
  return { ...parsed, vector: out } as unknown as Message;
}

interface OpenStream {
  header: Record<string, unknown>;
  /** Announced size; memory is taken only as chunks actually arrive (a peer that announces 64 MB and sends nothing costs nothing). */
  size: number;
  parts: Uint8Array[];
  chunks: number;
  next: number;
  filled: number;
}

/**
 * Reassembles messages from frames for one peer connection. Every check happens before allocation:
 * a rejected head makes the reassembler drop that stream's chunks silently (the sender already got
 * its error), so one bad message yields exactly one error.
 */
export class Reassembler {
  private readonly open = new Map<number, OpenStream>();
  private readonly rejected = new Set<number>();

  constructor(
    private readonly from: 'client' | 'server',
    private readonly limits: WireLimits,
  ) {}

  /** Handles a head frame: returns the message if complete (no vector), else null. */
  head(raw: unknown): Message | null {
    const parsedHead = FrameHeadSchema.safeParse(raw);
    if (!parsedHead.success) {
      throw new ProtocolError(ErrorCode.BAD_FRAME, `bad frame head: ${firstIssue(parsedHead.error)}`);
    }
    const head = parsedHead.data;
    const headerBytes = jsonLength(head.msg);
    if (headerBytes === undefined) {
      this.reject(head.id);
      throw new ProtocolError(ErrorCode.BAD_SCHEMA, 'message header is nested too deeply');
    }
    if (headerBytes > this.limits.maxHeaderBytes) {
      this.reject(head.id);
      throw new ProtocolError(ErrorCode.PAYLOAD_TOO_LARGE, `message header of ${headerBytes} bytes exceeds the limit of ${this.limits.maxHeaderBytes}`);
    }
    if (head.v !== FRAME_VERSION) {
      this.reject(head.id);
      throw new ProtocolError(ErrorCode.VERSION_MISMATCH, `frame version ${head.v}, expected ${FRAME_VERSION}`);
    }
    if (this.open.has(head.id)) {
      this.reject(head.id);
      throw new ProtocolError(ErrorCode.BAD_FRAME, `stream ${head.id} is already open`);
    }
    let header: Record<string, unknown>;
    try {
      header = parseHeader(head.msg, this.from);
      this.checkVectorShape(header.type as string, head.vec);
    } catch (err) {
      this.reject(head.id);
      throw err;
    }
    if (!head.vec) return header as unknown as Message;
    if (this.open.size >= this.limits.maxOpenStreams) {
      this.reject(head.id);
      throw new ProtocolError(ErrorCode.BAD_FRAME, `more than ${this.limits.maxOpenStreams} open streams`);
    }
    this.rejected.delete(head.id);
    const stream: OpenStream = {
      header,
      size: head.vec.bytes,
      parts: [],
      chunks: head.vec.chunks,
      next: 0,
      filled: 0,
    };
    if (stream.chunks === 0) return this.finish(head.id, stream);
    this.open.set(head.id, stream);
    return null;
  }

  /** Handles a chunk frame: returns the message when its last chunk arrived, else null. */
  chunk(rawMeta: unknown, data: unknown): Message | null {
    const parsed = ChunkMetaSchema.safeParse(rawMeta);
    if (!parsed.success) throw new ProtocolError(ErrorCode.BAD_FRAME, `bad chunk meta: ${firstIssue(parsed.error)}`);
    const { id, i } = parsed.data;
    const stream = this.open.get(id);
    if (!stream) {
      if (this.rejected.has(id)) return null;
      throw new ProtocolError(ErrorCode.BAD_FRAME, `chunk for unknown stream ${id}`);
    }
    const bytes = toBytes(data);
    const remaining = stream.size - stream.filled;
    const chunksLeft = stream.chunks - i;
    const sizeOk =
      bytes !== undefined &&
      bytes.length > 0 &&
      bytes.length <= this.limits.chunkBytes &&
      bytes.length <= remaining &&
      (chunksLeft > 1 || bytes.length === remaining);
    if (i !== stream.next || !sizeOk) {
      this.open.delete(id);
      this.reject(id);
      throw new ProtocolError(
        ErrorCode.BAD_FRAME,
        `stream ${id}: got chunk ${i} of ${bytes?.length ?? 'non-binary'} bytes; expected chunk ${stream.next}, ` +
          `at most ${Math.min(this.limits.chunkBytes, remaining)} bytes, ${remaining} bytes left`,
      );
    }
    // A copy (the transport's buffer is not ours to keep; Buffer#slice would be a view).
    stream.parts.push(new Uint8Array(bytes));
    stream.filled += bytes.length;
    stream.next++;
    if (stream.next < stream.chunks) return null;
    this.open.delete(id);
    return this.finish(id, stream);
  }

  /** Number of partially received vectors (for tests and metrics). */
  get openStreams(): number {
    return this.open.size;
  }

  private checkVectorShape(type: string, vec: FrameHead['vec']): void {
    const kind = binaryKind(type);
    if (kind === 'f32' && !vec) throw new ProtocolError(ErrorCode.BAD_SCHEMA, `${type} needs a vector`);
    if (kind === 'none' && vec) throw new ProtocolError(ErrorCode.BAD_SCHEMA, `${type} carries no vector`);
    if (!vec) return;
    if (vec.bytes > this.limits.maxPayloadBytes) {
      throw new ProtocolError(
        ErrorCode.PAYLOAD_TOO_LARGE,
        `${type} vector of ${vec.bytes} bytes exceeds the limit of ${this.limits.maxPayloadBytes}`,
      );
    }
    if (kind === 'f32' && vec.bytes % 4 !== 0) throw new ProtocolError(ErrorCode.BAD_FRAME, `vector bytes ${vec.bytes} not a multiple of 4`);
    // Senders choose their chunk size up to our limit; the count must be consistent with it.
    const fewest = Math.ceil(vec.bytes / this.limits.chunkBytes);
    const most = Math.ceil(vec.bytes / MIN_CHUNK_BYTES);
    if (vec.chunks < fewest || vec.chunks > most) {
      throw new ProtocolError(
        ErrorCode.BAD_FRAME,
        `${vec.bytes} bytes in ${vec.chunks} chunks: need between ${fewest} and ${most} (chunks of ${MIN_CHUNK_BYTES}..${this.limits.chunkBytes} bytes)`,
      );
    }
  }

  private finish(id: number, stream: OpenStream): Message {
    const bytes = stream.parts.length === 1 ? stream.parts[0] : new Uint8Array(stream.size);
    if (stream.parts.length !== 1) {
      let off = 0;
      for (const p of stream.parts) {
        bytes.set(p, off);
        off += p.length;
      }
    }
    stream.parts = [];
    if (binaryKind(String(stream.header.type)) === 'bytes') return { ...stream.header, payload: bytes } as unknown as Message;
    const vector = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    assertFiniteVector(vector, String(stream.header.type));
    return { ...stream.header, vector } as unknown as Message;
  }

  private reject(id: number): void {
    this.rejected.add(id);
    if (this.rejected.size > 64) {
      const oldest = this.rejected.values().next().value as number;
      this.rejected.delete(oldest);
    }
  }
}

/** Length of the JSON text of a parsed value, or undefined if it is nested too deeply to serialise. */
function jsonLength(value: unknown): number | undefined {
  try {
    return JSON.stringify(value).length;
  } catch {
    return undefined;
  }
}

function toBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}
