/**
 * Seeded generators of hostile inputs, built from templates.ts. Everything derives from one 32-bit
 * seed (each generator draws from a `Gen`), so a failing run replays exactly with COHORT_HOSTILE_SEED.
 *
 * Each generator returns `HostileInput`s: socket.io emissions plus what the server must do (see
 * types.ts `Expect`). Inputs are built so that none can be accepted by accident (a round number that
 * is never the current one, a job id that is not running, a type that does not exist), unless the
 * input is meant to be honest. Message-level generators first (the boundary), then raw engine.io /
 * socket.io packets (rawGarbage).
 */
import { FRAME_VERSION, MIN_CHUNK_BYTES } from '../../shared/protocol/index.ts';
import {
  EXTREMES,
  f32bytes,
  fieldPaths,
  FINITE_F32_EXTREMES,
  frames,
  NON_FINITE_BITS,
  NUMERIC_FIELDS,
  setPath,
  templates,
  vectorWithBits,
  WRONG_TYPED,
  type Ctx,
  type Gen,
} from './templates.ts';
import type { Expect, HostileInput, RawInput } from './types.ts';
export type { RawInput } from './types.ts';

// ---- generators: the boundary (any connection that is not a pending cohort member) --------------

/** `ids` hands out stream ids; `err` is the expectation for an input that must be rejected. */
export interface GenOpts {
  ctx: Ctx;
  ids: () => number;
  err: Expect;
}

export function malformedHeads(g: Gen, n: number, o: GenOpts): HostileInput[] {
  const out: HostileInput[] = [];
  const e: Expect = { kind: 'error', codes: ['BAD_FRAME', 'VERSION_MISMATCH'] };
  const fixed: [string, unknown][] = [
    ['no head', undefined],
    ['null head', null],
    ['number head', 42],
    ['string head', 'head'],
    ['array head', [1, 2, 3]],
    ['empty head', {}],
    ['head without msg', { v: FRAME_VERSION, id: 1 }],
    ['head without id', { v: FRAME_VERSION, msg: { type: 'hello' } }],
    ['head without v', { id: 1, msg: { type: 'hello' } }],
    ['msg is an array', { v: FRAME_VERSION, id: 1, msg: [1] }],
    ['msg is a string', { v: FRAME_VERSION, id: 1, msg: 'hello' }],
    ['msg is null', { v: FRAME_VERSION, id: 1, msg: null }],
    ['extra head key', { v: FRAME_VERSION, id: 1, msg: { type: 'x' }, extra: 1 }],
    ['frame version 2', { v: 2, id: 1, msg: { type: 'refuse' } }],
    ['frame version 0', { v: 0, id: 1, msg: { type: 'refuse' } }],
    ['vec with extra key', { v: FRAME_VERSION, id: 1, msg: { type: 'update' }, vec: { bytes: 4, chunks: 1, x: 1 } }],
    ['vec is a number', { v: FRAME_VERSION, id: 1, msg: { type: 'update' }, vec: 4 }],
    ['vec missing chunks', { v: FRAME_VERSION, id: 1, msg: { type: 'update' }, vec: { bytes: 4 } }],
  ];
  for (const [label, head] of fixed) out.push({ category: 'malformed_head', label, emits: [{ event: 'head', args: head === undefined ? [] : [head] }], expect: e });
  // Every numeric field of the head itself, with the extremes.
  for (const [name, x] of EXTREMES) {
    for (const field of ['v', 'id'] as const) {
      const head: Record<string, unknown> = { v: FRAME_VERSION, id: o.ids(), msg: { type: 'probe-none' } };
      head[field] = x;
      // A valid id (an integer in range) leaves an unknown type: UNKNOWN_TYPE is the typed answer then.
      out.push({ category: 'numeric_extremes', label: `head.${field} = ${name}`, emits: [{ event: 'head', args: [head] }], expect: { kind: 'error', codes: ['BAD_FRAME', 'VERSION_MISMATCH', 'UNKNOWN_TYPE'] } });
    }
    for (const field of ['bytes', 'chunks'] as const) {
      const vec: Record<string, unknown> = { bytes: 4 * o.ctx.dim, chunks: 1 };
      vec[field] = x;
      const head = { v: FRAME_VERSION, id: o.ids(), msg: templates(o.ctx).update.msg, vec };
      out.push({ category: 'numeric_extremes', label: `head.vec.${field} = ${name}`, emits: [{ event: 'head', args: [head] }], expect: { kind: 'error', codes: ['BAD_FRAME', 'PAYLOAD_TOO_LARGE', 'BAD_SCHEMA'] } });
    }
  }
  // Arbitrary values as heads, and heads with arbitrary fields.
  const vals = g.anything(n);
  for (let i = 0; i < n; i++) {
    const v = vals[i];
    let head: unknown = v;
    let label = `arbitrary head ${JSON.stringify(v)?.slice(0, 80)}`;
    if (g.chance(0.5)) {
      const field = g.pick(['v', 'id', 'msg', 'vec']);
      head = { v: FRAME_VERSION, id: o.ids(), msg: { type: 'refuse' }, [field]: v };
      label = `head.${field} = ${JSON.stringify(v)?.slice(0, 80)}`;
    }
    out.push({ category: 'malformed_head', label, emits: [{ event: 'head', args: [head] }], expect: { kind: 'error', codes: ['BAD_FRAME', 'VERSION_MISMATCH', 'BAD_SCHEMA', 'UNKNOWN_TYPE'] } });
  }
  return out;
}

/** Chunk frames with bad meta or data, for streams that do not exist (ids outside any used range). */
export function malformedChunks(g: Gen, n: number): HostileInput[] {
  const out: HostileInput[] = [];
  const e: Expect = { kind: 'error', codes: ['BAD_FRAME'] };
  const data = new Uint8Array(8);
  const fixed: [string, unknown[]][] = [
    ['no args', []],
    ['meta only', [{ id: 2 ** 45, i: 0 }]],
    ['null meta', [null, data]],
    ['string meta', ['x', data]],
    ['meta with extra key', [{ id: 2 ** 45, i: 0, x: 1 }, data]],
    ['negative id', [{ id: -1, i: 0 }, data]],
    ['negative index', [{ id: 2 ** 45, i: -1 }, data]],
    ['fractional index', [{ id: 2 ** 45, i: 0.5 }, data]],
    ['string data', [{ id: 2 ** 45, i: 0 }, 'AAAA']],
    ['number data', [{ id: 2 ** 45, i: 0 }, 7]],
    ['array data', [{ id: 2 ** 45, i: 0 }, [1, 2, 3, 4]]],
    ['chunk for an unknown stream', [{ id: 2 ** 45 + 1, i: 0 }, data]],
  ];
  for (const [label, args] of fixed) out.push({ category: 'malformed_chunk', label, emits: [{ event: 'chunk', args }], expect: e });
  for (const [name, x] of EXTREMES) {
    // A valid id may name a stream this connection had rejected: its chunks are dropped silently (documented).
    out.push({ category: 'numeric_extremes', label: `chunk.id = ${name}`, emits: [{ event: 'chunk', args: [{ id: x, i: 0 }, data] }], expect: { kind: 'any' } });
    out.push({ category: 'numeric_extremes', serial: true, label: `chunk.i = ${name}`, emits: [{ event: 'chunk', args: [{ id: 2 ** 45 + 2, i: x }, data] }], expect: e });
  }
  const vals = g.anything(2 * n);
  for (let i = 0; i < n; i++) {
    const meta = g.chance(0.5) ? vals[2 * i] : { id: 2 ** 46 + i, i: vals[2 * i] };
    const d = g.chance(0.5) ? vals[2 * i + 1] : data;
    out.push({ category: 'malformed_chunk', label: `chunk(${JSON.stringify(meta)?.slice(0, 60)}, ${JSON.stringify(d)?.slice(0, 40)})`, emits: [{ event: 'chunk', args: [meta, d] }], expect: e });
  }
  return out;
}

/** Every field of every client message type replaced by a value of another type, removed, or joined by an unknown field. */
export function wrongTypes(o: GenOpts): HostileInput[] {
  const out: HostileInput[] = [];
  for (const [kind, t] of Object.entries(templates(o.ctx))) {
    for (const path of fieldPaths(t.msg)) {
      for (const [name, v] of WRONG_TYPED) {
        out.push({ category: 'wrong_types', label: `${kind}.${path.join('.')} = ${name}`, emits: frames(setPath(t.msg, path, v), o.ids(), t.binary), expect: o.err });
      }
      if (path.length === 1 || path[0] !== 'metrics') {
        out.push({ category: 'wrong_types', label: `${kind} without ${path.join('.')}`, emits: frames(setPath(t.msg, path, undefined), o.ids(), t.binary), expect: o.err });
      }
    }
    out.push({ category: 'wrong_types', label: `${kind} with an unknown field`, emits: frames({ ...t.msg, admin: true }, o.ids(), t.binary), expect: o.err });
    out.push({ category: 'wrong_types', label: `${kind} with a 10k-char metric key`, emits: frames({ ...t.msg, metrics: { ['k'.repeat(10_000)]: 1 } }, o.ids(), t.binary), expect: o.err });
  }
  return out;
}

/** Every numeric field of every client message type set to every extreme. */
export function numericExtremes(o: GenOpts): HostileInput[] {
  const out: HostileInput[] = [];
  const t = templates(o.ctx);
  for (const [kind, path] of NUMERIC_FIELDS) {
    for (const [name, x] of EXTREMES) {
      out.push({ category: 'numeric_extremes', label: `${kind}.${path.join('.')} = ${name}`, emits: frames(setPath(t[kind].msg, path, x), o.ids(), t[kind].binary), expect: o.err });
    }
  }
  // The binary vector's elements: non-finite bit patterns and finite extremes, at a random position.
  for (const [name, bits] of NON_FINITE_BITS) {
    for (const at of [0, o.ctx.dim - 1]) {
      out.push({ category: 'numeric_extremes', label: `update.vector[${at}] = ${name}`, emits: frames(t.update.msg, o.ids(), vectorWithBits(o.ctx.dim, at, bits)), expect: { kind: 'error', codes: ['NON_FINITE'] } });
    }
  }
  for (const [name, x] of FINITE_F32_EXTREMES) {
    const v = new Float32Array(o.ctx.dim).fill(x);
    out.push({ category: 'numeric_extremes', label: `update.vector = all ${name}`, emits: frames(t.update.msg, o.ids(), new Uint8Array(v.buffer)), expect: o.err });
  }
  return out;
}

export function wrongVectorLengths(o: GenOpts): HostileInput[] {
  const out: HostileInput[] = [];
  const t = templates(o.ctx);
  for (const len of [0, 1, o.ctx.dim - 1, o.ctx.dim + 1, 2 * o.ctx.dim, 1000, 70_000]) {
    out.push({ category: 'wrong_vector_length', label: `update with ${len} values`, emits: frames(t.update.msg, o.ids(), f32bytes(new Float32Array(len).fill(0.01))), expect: o.err });
  }
  return out;
}

/** Chunk-level abuse on one stream each: out of order, duplicate, oversized, short, empty, inconsistent heads. */
export function chunkAbuse(g: Gen, o: GenOpts): HostileInput[] {
  const out: HostileInput[] = [];
  const msg = templates(o.ctx).update.msg;
  const bad: Expect = { kind: 'error', codes: ['BAD_FRAME'] };
  const three = 3 * MIN_CHUNK_BYTES; // three minimum-size chunks (a wrong-length vector, rejected later anyway)
  const head = (id: number, bytes: number, chunks: number, m: unknown = msg) => ({ event: 'head', args: [{ v: FRAME_VERSION, id, msg: m, vec: { bytes, chunks } }] });
  const chunk = (id: number, i: number, len: number) => ({ event: 'chunk', args: [{ id, i }, new Uint8Array(len)] });
  for (let rep = 0; rep < 3; rep++) {
    let id = o.ids();
    out.push({ category: 'chunk_abuse', label: 'out-of-order chunk (1 before 0)', emits: [head(id, three, 3), chunk(id, 1, MIN_CHUNK_BYTES)], expect: bad });
    id = o.ids();
    out.push({ category: 'chunk_abuse', label: 'duplicate chunk 0', emits: [head(id, three, 3), chunk(id, 0, MIN_CHUNK_BYTES), chunk(id, 0, MIN_CHUNK_BYTES)], expect: bad });
    id = o.ids();
    out.push({ category: 'chunk_abuse', label: 'chunk index past the end', emits: [head(id, three, 3), chunk(id, 5, MIN_CHUNK_BYTES)], expect: bad });
    id = o.ids();
    out.push({ category: 'chunk_abuse', label: 'chunk larger than the bytes left', emits: [head(id, 4 * o.ctx.dim, 1), chunk(id, 0, 4 * o.ctx.dim + 4)], expect: bad });
    id = o.ids();
    out.push({ category: 'chunk_abuse', label: 'chunk larger than chunkBytes', emits: [head(id, 2 * 256 * 1024, 2), chunk(id, 0, 256 * 1024 + 4096)], expect: { kind: 'error', codes: ['BAD_FRAME', 'PAYLOAD_TOO_LARGE'] } });
    id = o.ids();
    out.push({ category: 'chunk_abuse', label: 'last chunk short', emits: [head(id, 4 * o.ctx.dim, 1), chunk(id, 0, 4 * o.ctx.dim - 4)], expect: bad });
    id = o.ids();
    out.push({ category: 'chunk_abuse', label: 'empty chunk', emits: [head(id, 4 * o.ctx.dim, 1), chunk(id, 0, 0)], expect: bad });
    id = o.ids();
    out.push({ category: 'chunk_abuse', label: 'chunk data not binary', emits: [head(id, 4 * o.ctx.dim, 1), { event: 'chunk', args: [{ id, i: 0 }, Array.from({ length: 4 * o.ctx.dim }, () => 1)] }], expect: bad });
    id = o.ids();
    out.push({ category: 'chunk_abuse', label: 'vector bytes not a multiple of 4', emits: [head(id, 4 * o.ctx.dim + 1, 1)], expect: bad });
    id = o.ids();
    out.push({ category: 'chunk_abuse', label: 'too few chunks for the bytes', emits: [head(id, 2 * 256 * 1024 + 4, 1)], expect: { kind: 'error', codes: ['BAD_FRAME', 'PAYLOAD_TOO_LARGE'] } });
    id = o.ids();
    out.push({ category: 'chunk_abuse', label: 'too many chunks for the bytes', emits: [head(id, 4 * o.ctx.dim, 5)], expect: bad });
    id = o.ids();
    out.push({ category: 'chunk_abuse', label: 'vector of 2^30 bytes announced', emits: [head(id, 2 ** 30, 4096)], expect: { kind: 'error', codes: ['PAYLOAD_TOO_LARGE'] } });
    id = o.ids();
    out.push({ category: 'chunk_abuse', label: 'vector on a message without one', emits: [head(id, 8, 1, templates(o.ctx).refuse.msg), chunk(id, 0, 8)], expect: { kind: 'error', codes: ['BAD_SCHEMA'] } });
    id = o.ids();
    out.push({ category: 'chunk_abuse', label: 'update without a vector', emits: [{ event: 'head', args: [{ v: FRAME_VERSION, id, msg }] }], expect: { kind: 'error', codes: ['BAD_SCHEMA'] } });
    id = o.ids();
    out.push({ category: 'chunk_abuse', label: `complete stream then a replayed chunk (${g.int(1, 9)})`, emits: [head(id, 4 * o.ctx.dim, 1), chunk(id, 0, 4 * o.ctx.dim), chunk(id, 0, 4 * o.ctx.dim)], expect: o.err });
  }
  return out;
}

/** Truncated streams: silent until the open-stream limit, then typed errors. For a throwaway connection. */
export function truncatedStreams(o: GenOpts, maxOpen: number): HostileInput[] {
  const out: HostileInput[] = [];
  const msg = templates(o.ctx).update.msg;
  const ids: number[] = [];
  for (let k = 0; k < maxOpen; k++) {
    const id = o.ids();
    ids.push(id);
    out.push({
      category: 'chunk_abuse',
      label: `truncated stream ${k + 1}/${maxOpen} (head, 1 of 3 chunks)`,
      emits: [{ event: 'head', args: [{ v: FRAME_VERSION, id, msg, vec: { bytes: 3 * MIN_CHUNK_BYTES, chunks: 3 } }] }, { event: 'chunk', args: [{ id, i: 0 }, new Uint8Array(MIN_CHUNK_BYTES)] }],
      expect: { kind: 'silent' },
    });
  }
  const over = o.ids();
  out.push({ category: 'chunk_abuse', label: `stream ${maxOpen + 1} beyond the open-stream limit`, emits: [{ event: 'head', args: [{ v: FRAME_VERSION, id: over, msg, vec: { bytes: 8, chunks: 1 } }] }], expect: { kind: 'error', codes: ['BAD_FRAME'] } });
  out.push({ category: 'chunk_abuse', label: 'head reusing an open stream id', emits: [{ event: 'head', args: [{ v: FRAME_VERSION, id: ids[0], msg, vec: { bytes: 8, chunks: 1 } }] }], expect: { kind: 'error', codes: ['BAD_FRAME'] } });
  out.push({ category: 'chunk_abuse', label: 'wrong chunk on a truncated stream', emits: [{ event: 'chunk', args: [{ id: ids[1], i: 2 }, new Uint8Array(MIN_CHUNK_BYTES)] }], expect: { kind: 'error', codes: ['BAD_FRAME'] } });
  return out;
}

/** Messages only the server may send, unknown types, and names of Object.prototype members. */
export function serverOnlyTypes(g: Gen, o: GenOpts): HostileInput[] {
  const out: HostileInput[] = [];
  const e: Expect = { kind: 'error', codes: ['UNKNOWN_TYPE'] };
  const c = o.ctx;
  const msgs: Record<string, unknown>[] = [
    { type: 'welcome', protocolVersion: 1, jobId: c.jobId, clientId: 'x', limits: { maxPayloadBytes: 1e9, chunkBytes: 1e9, maxHeaderBytes: 1e9, maxOpenStreams: 1e9 } },
    { type: 'train', jobId: c.jobId, round: c.round, modelChecksum: 'x', model: { zoo: 'logreg', inputShape: [8], numClasses: 2 }, training: { epochs: 1, batchSize: 1, learningRate: 0.1, proxMu: 0 }, timeoutMs: 1 },
    { type: 'evaluate', jobId: c.jobId, round: c.round, modelChecksum: 'x', model: 'mlp', batchSize: 1, timeoutMs: 1 },
    { type: 'error', code: 'INTERNAL', message: 'spoofed' },
    { type: 'round_result', jobId: c.jobId, round: c.round, outcome: 'committed', included: true },
    { type: 'job_end', jobId: c.jobId, status: 'completed', rounds: 1 },
    { type: 'secagg_down', jobId: c.jobId, round: c.round, body: {} },
  ];
  for (const m of msgs) out.push({ category: 'server_only_types', label: `client sends ${String(m.type)}`, emits: frames(m, o.ids(), m.type === 'train' ? f32bytes([1]) : undefined), expect: e });
  for (const t of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', 'HELLO', 'Update', 'update ', '', 'shutdown', 'admin', 'x'.repeat(5000)]) {
    out.push({ category: 'server_only_types', label: `type ${JSON.stringify(t.slice(0, 40))}${t.length > 40 ? '…' : ''}`, emits: frames({ ...templates(c).refuse.msg, type: t }, o.ids()), expect: e });
  }
  for (const t of g.strings(20)) out.push({ category: 'server_only_types', label: `type ${JSON.stringify(t)}`, emits: frames({ type: t }, o.ids()), expect: { kind: 'error', codes: ['UNKNOWN_TYPE'] } });
  return out;
}

const RESERVED_EVENTS = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener', 'head', 'chunk']);

export function unknownEvents(g: Gen, n: number): HostileInput[] {
  const out: HostileInput[] = [];
  const names = ['exec', 'admin', 'hello', 'update', 'message', 'error', 'ping', 'HEAD', 'Chunk', ...g.strings(n, 30)].filter((s) => !RESERVED_EVENTS.has(s));
  const vals = g.anything(names.length, 2);
  names.forEach((name, i) => out.push({ category: 'unknown_events', label: `event ${JSON.stringify(name)}`, emits: [{ event: name, args: [vals[i]] }], expect: { kind: 'error', codes: ['UNKNOWN_TYPE'] }, serial: true }));
  return out;
}

/** Valid messages of every client type from a connection that never said hello. */
export function beforeHello(o: GenOpts): HostileInput[] {
  const out: HostileInput[] = [];
  for (const [kind, t] of Object.entries(templates(o.ctx))) {
    for (const round of [1, 2, 3, o.ctx.round]) {
      out.push({ category: 'before_hello', label: `${kind} for round ${round} before hello`, emits: frames(setPath(t.msg, ['round'], round), o.ids(), t.binary), expect: { kind: 'error', codes: ['NOT_REGISTERED'] } });
    }
  }
  return out;
}

/** Nested JSON, through socket.io's own encoder (depths it can stringify). */
export function deepJsonViaSocket(o: GenOpts): HostileInput[] {
  const out: HostileInput[] = [];
  for (const depth of [10, 100, 1000, 3000]) {
    let nest: unknown = 1;
    for (let i = 0; i < depth; i++) nest = { a: nest };
    let arr: unknown = [];
    for (let i = 0; i < depth; i++) arr = [arr];
    out.push({ category: 'deep_json', label: `metrics nested ${depth} deep`, emits: frames({ ...templates(o.ctx).update.msg, metrics: { loss: nest } }, o.ids(), f32bytes(new Float32Array(o.ctx.dim))), expect: { kind: 'error', codes: ['BAD_SCHEMA'] } });
    out.push({ category: 'deep_json', label: `secagg body nested ${depth} deep`, emits: frames({ ...templates(o.ctx).secagg_up.msg, body: { type: 'secagg_advertise_keys', deep: nest } }, o.ids()), expect: o.err });
    out.push({ category: 'deep_json', label: `head nested ${depth} deep`, emits: [{ event: 'head', args: [arr] }], expect: { kind: 'error', codes: ['BAD_FRAME'] } });
    out.push({ category: 'deep_json', label: `chunk meta nested ${depth} deep`, emits: [{ event: 'chunk', args: [nest, new Uint8Array(4)] }], expect: { kind: 'error', codes: ['BAD_FRAME'] } });
  }
  return out;
}

/**
 * Random mutations of valid templates: each input applies 1–4 of (set a field to an extreme, to a
 * value of another type, to an arbitrary value, delete it, add an unknown field, swap the type). The
 * round is forced to `ctx.round` (never the current one) and the job id is left alone or replaced by
 * another, so none can be accepted.
 */
export function mutations(g: Gen, n: number, o: GenOpts): HostileInput[] {
  const out: HostileInput[] = [];
  const t = templates(o.ctx);
  const kinds = Object.keys(t);
  const vals = g.anything(n * 4, 2);
  let vi = 0;
  for (let k = 0; k < n; k++) {
    const kind = g.pick(kinds);
    let msg = structuredClone(t[kind].msg);
    const ops: string[] = [];
    for (let m = g.int(1, 4); m > 0; m--) {
      const paths = fieldPaths(msg);
      const path = paths.length ? g.pick(paths) : ['x'];
      const op = g.int(0, 5);
      if (op === 0) {
        const [name, x] = g.pick(EXTREMES);
        msg = setPath(msg, path, x);
        ops.push(`${path.join('.')}=${name}`);
      } else if (op === 1) {
        const [name, x] = g.pick(WRONG_TYPED);
        msg = setPath(msg, path, x);
        ops.push(`${path.join('.')}=${name}`);
      } else if (op === 2) {
        const x = vals[vi++ % vals.length];
        msg = setPath(msg, path, x);
        ops.push(`${path.join('.')}=${JSON.stringify(x)?.slice(0, 30)}`);
      } else if (op === 3) {
        msg = setPath(msg, path, undefined);
        ops.push(`-${path.join('.')}`);
      } else if (op === 4) {
        msg = setPath(msg, [`extra${k}`], vals[vi++ % vals.length] ?? 1);
        ops.push('+extra');
      } else {
        msg.type = g.pick(['update', 'eval_result', 'refuse', 'secagg_up', 'hello_', 'welcome']);
        ops.push(`type=${String(msg.type)}`);
      }
    }
    // Never the current round: a mutated but otherwise valid message must not be accepted.
    if (typeof msg.round === 'number' && Number.isInteger(msg.round) && msg.round >= 1 && msg.round < 1e6) msg.round = o.ctx.round;
    if (msg.type === 'hello') msg.type = 'hello_';
    const binary = g.chance(0.8) ? t[kind].binary : undefined;
    out.push({ category: 'mutations', label: `${kind} ${ops.join(' ')}`, emits: frames(msg, o.ids(), binary), expect: o.err });
  }
  return out;
}

// ---- raw engine.io / socket.io packets (the `ws` package) ---------------------------------------


/** Garbage at the engine.io and socket.io packet layers, and deep JSON too deep for a JSON encoder. */
export function rawGarbage(g: Gen, n: number): RawInput[] {
  const out: RawInput[] = [];
  const fixed: [string, string | Buffer, boolean][] = [
    ['text garbage', 'hello world', true],
    ['empty text frame', '', true],
    ['unknown engine.io type 9', '9', true],
    ['engine.io close', '1', true],
    ['engine.io upgrade', '5', true],
    ['engine.io noop', '6', true],
    ['engine.io ping from the client', '2', true],
    ['engine.io pong unasked', '3', true],
    ['engine.io probe', '2probe', true],
    ['socket.io CONNECT to an unknown namespace', '40/admin,', true],
    ['socket.io CONNECT twice', '40', true],
    ['socket.io DISCONNECT', '41', true],
    ['socket.io unknown packet type', '49', true],
    ['socket.io EVENT with broken JSON', '42["head",{', true],
    ['socket.io EVENT that is not an array', '42{"a":1}', true],
    ['socket.io EVENT with a numeric name', '42[1,2]', true],
    ['socket.io EVENT with no name', '42[]', true],
    ['socket.io ACK for nothing', '4399["x"]', true],
    ['socket.io BINARY_EVENT never completed', '451-["chunk",{"id":1,"i":0},{"_placeholder":true,"num":0}]', true],
    ['socket.io BINARY_EVENT with 10^6 attachments announced', '451000000-["chunk",{"id":1,"i":0},{"_placeholder":true,"num":0}]', true],
    ['socket.io BINARY_EVENT with a placeholder out of range', '451-["chunk",{"id":1,"i":0},{"_placeholder":true,"num":7}]', true],
    ['binary frame with no BINARY_EVENT', Buffer.from([1, 2, 3, 4]), true],
    ['socket.io EVENT before CONNECT', '42["head",{"v":1,"id":1,"msg":{"type":"hello","protocolVersion":1,"clientId":"raw"}}]', false],
    ['text garbage before CONNECT', '\u0000\u0001\u0002', false],
    ['binary garbage before CONNECT', Buffer.from('ffffffff', 'hex'), false],
    ['socket.io CONNECT with a huge auth payload', `40${JSON.stringify({ token: 'x'.repeat(100_000) })}`, false],
  ];
  for (const [label, frame, connect] of fixed) out.push({ category: 'raw_engineio', label, frames: [frame], connect, reconnect: frame === '41' });
  // A placeholder BINARY_EVENT whose attachment then arrives: the real wire form of a chunk, but broken.
  out.push({ category: 'raw_engineio', label: 'BINARY_EVENT with a placeholder in the meta', frames: ['451-["chunk",{"_placeholder":true,"num":0},{"x":1}]', Buffer.from([0])], connect: true });
  for (const depth of [1_000, 10_000, 100_000]) {
    const deep = '['.repeat(depth) + ']'.repeat(depth);
    out.push({ category: 'deep_json', label: `raw head nested ${depth} deep`, frames: [`42["head",${deep}]`], connect: true });
    out.push({ category: 'deep_json', label: `raw msg nested ${depth} deep`, frames: [`42["head",{"v":1,"id":1,"msg":{"type":"refuse","reason":${deep}}}]`], connect: true });
    out.push({ category: 'deep_json', label: `raw BINARY_EVENT with ${depth}-deep data`, frames: [`451-["chunk",{"id":1,"i":0},${'['.repeat(depth)}{"_placeholder":true,"num":0}${']'.repeat(depth)}]`, Buffer.from([0, 0, 0, 0])], connect: true });
  }
  const strs = g.strings(n, 60);
  for (let i = 0; i < n; i++) {
    const kind = g.int(0, 3);
    if (kind === 0) out.push({ category: 'raw_engineio', label: `random text ${JSON.stringify(strs[i])}`, frames: [strs[i]], connect: g.chance(0.7) });
    else if (kind === 1) {
      const bytes = Buffer.alloc(g.int(1, 64));
      for (let j = 0; j < bytes.length; j++) bytes[j] = g.int(0, 255);
      out.push({ category: 'raw_engineio', label: `random binary of ${bytes.length} bytes`, frames: [bytes], connect: g.chance(0.7) });
    } else if (kind === 2) out.push({ category: 'raw_engineio', label: `socket.io packet 4${strs[i].slice(0, 20)}`, frames: [`4${strs[i]}`], connect: true });
    else out.push({ category: 'raw_engineio', label: `socket.io EVENT with random args`, frames: [`42["head",${JSON.stringify(strs[i])}]`], connect: true });
  }
  return out;
}
