/**
 * The building blocks of the hostile-input generators (generators.ts): the seeded `Gen` (structure
 * from our sfc32 PRNG, shared/random.ts; arbitrary JSON values from fast-check, `fc.sample` with a
 * seed), extreme and wrong-typed values, raw head/chunk frames, and one template of each client message.
 */
import fc from 'fast-check';
import { FRAME_VERSION, PROTOCOL_VERSION } from '../../shared/protocol/index.ts';
import { seededRng, type Rng } from '../../shared/random.ts';
import type { Emit } from './types.ts';

// ---- randomness -------------------------------------------------------------------------------

export class Gen {
  readonly rng: Rng;
  private fcSeed: number;
  constructor(readonly seed: number, stream: string) {
    // One independent stream per use, so adding inputs to one category does not shift the others.
    this.rng = seededRng(`${seed}:${stream}`);
    this.fcSeed = this.rng.nextUint32() | 0;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.rng.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rng.next() * xs.length)];
  }
  chance(p: number): boolean {
    return this.rng.next() < p;
  }
  /** n arbitrary JSON-ish values (objects, arrays, strings, numbers incl. extremes, null, booleans). */
  anything(n: number, maxDepth = 3): unknown[] {
    return fc.sample(fc.anything({ maxDepth, maxKeys: 6 }), { seed: this.fcSeed++, numRuns: n });
  }
  strings(n: number, maxLength = 40): string[] {
    return fc.sample(fc.string({ maxLength, unit: 'binary' }), { seed: this.fcSeed++, numRuns: n });
  }
}

// ---- values -----------------------------------------------------------------------------------

/** Non-finite and finite extremes. NaN and ±Infinity travel as `null` in JSON (socket.io's encoding). */
export const EXTREMES: readonly [string, number][] = [
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
  ['1e308', 1e308],
  ['-1e308', -1e308],
  ['MAX_VALUE', Number.MAX_VALUE],
  ['-MAX_VALUE', -Number.MAX_VALUE],
  ['1e300', 1e300],
  ['2^40', 2 ** 40],
  ['2^40+1', 2 ** 40 + 1],
  ['MAX_SAFE_INTEGER', Number.MAX_SAFE_INTEGER],
  ['2^53', 2 ** 53],
  ['-MAX_SAFE_INTEGER', -Number.MAX_SAFE_INTEGER],
  ['-0', -0],
  ['0', 0],
  ['5e-324', 5e-324],
  ['-5e-324', -5e-324],
  ['1e-300', 1e-300],
  ['-1', -1],
  ['0.5', 0.5],
  ['1.5', 1.5],
  ['1e6+1', 1e6 + 1],
  ['1e7+1', 1e7 + 1],
  ['1e9+1', 1e9 + 1],
  ['2^31', 2 ** 31],
  ['2^32', 2 ** 32],
  ['-2^31', -(2 ** 31)],
  ['f32 max', 3.4028234663852886e38],
  ['3.5e38', 3.5e38],
];

/** Values of every JSON type, for wrong-type substitution. */
export const WRONG_TYPED: readonly [string, unknown][] = [
  ['string', 'x'],
  ['empty string', ''],
  ['numeric string', '1'],
  ['number', 7],
  ['true', true],
  ['false', false],
  ['null', null],
  ['array', [1, 2]],
  ['empty array', []],
  ['object', { a: 1 }],
  ['empty object', {}],
  ['nested', { type: 'update', x: [{}] }],
];

/** float32 bit patterns of non-finite values (the binary vector can carry them, JSON cannot). */
export const NON_FINITE_BITS: readonly [string, number][] = [
  ['quiet NaN', 0x7fc00000],
  ['signalling NaN', 0x7f800001],
  ['negative NaN', 0xffc00000],
  ['NaN payload', 0x7fffffff],
  ['+Inf', 0x7f800000],
  ['-Inf', 0xff800000],
];

export const FINITE_F32_EXTREMES: readonly [string, number][] = [
  ['f32 max', 3.4028234663852886e38],
  ['-f32 max', -3.4028234663852886e38],
  ['1e30', 1e30],
  ['-1e30', -1e30],
  ['1.5e6', 1.5e6],
  ['denormal', 1e-45],
  ['-0', -0],
];

// ---- frames -----------------------------------------------------------------------------------

/** Head + chunk emissions of a raw header with an optional binary part (no validation at all). */
export function frames(msg: unknown, streamId: number, binary?: Uint8Array, chunkBytes = 256 * 1024): Emit[] {
  const out: Emit[] = [];
  if (!binary) {
    out.push({ event: 'head', args: [{ v: FRAME_VERSION, id: streamId, msg }] });
    return out;
  }
  const chunks: Uint8Array[] = [];
  for (let off = 0; off < binary.length; off += chunkBytes) chunks.push(binary.slice(off, Math.min(off + chunkBytes, binary.length)));
  out.push({ event: 'head', args: [{ v: FRAME_VERSION, id: streamId, msg, vec: { bytes: binary.length, chunks: chunks.length } }] });
  chunks.forEach((c, i) => out.push({ event: 'chunk', args: [{ id: streamId, i }, c] }));
  return out;
}

export function f32bytes(values: ArrayLike<number>): Uint8Array {
  const v = Float32Array.from(values);
  return new Uint8Array(v.buffer);
}

export function vectorWithBits(dim: number, at: number, bits: number): Uint8Array {
  const u = new Uint32Array(dim);
  const f = new Float32Array(u.buffer);
  for (let i = 0; i < dim; i++) f[i] = 0.01;
  u[at % dim] = bits >>> 0;
  return new Uint8Array(u.buffer);
}

// ---- message templates --------------------------------------------------------------------------

export interface Ctx {
  jobId: string;
  /** A round number these inputs use; never the current round unless the caller means it. */
  round: number;
  dim: number;
  /** A valid-looking 16-char session (SecAgg bodies). */
  session?: string;
}

const SESSION = 'AAAAAAAAAAAAAAAA';
const KEY32 = 'A'.repeat(43);
const SIG64 = 'A'.repeat(86);

/** A SecAgg body of each client phase, well-formed at the schema level (keys are zeros). */
export function secaggBodies(ctx: Ctx): Record<string, Record<string, unknown>> {
  const head = { jobId: ctx.jobId, round: ctx.round, session: ctx.session ?? SESSION };
  return {
    advertise: { type: 'secagg_advertise_keys', ...head, identityKey: KEY32, cPk: KEY32, sPk: 'B'.repeat(43), signature: SIG64 },
    share: { type: 'secagg_share_keys', ...head, shares: [{ to: 'peer-1', ciphertext: 'A'.repeat(150) }] },
    consistency: { type: 'secagg_consistency_signature', ...head, signature: SIG64 },
    unmask: { type: 'secagg_unmask', ...head, selfShares: [{ of: 'peer-1', share: 'A'.repeat(88) }], keyShares: [] },
  };
}

interface Template {
  msg: Record<string, unknown>;
  /** Binary part (vector bytes or SecAgg payload). */
  binary?: Uint8Array;
}

/** One template of each client message type (hello excluded: see helloTemplate). */
export function templates(ctx: Ctx): Record<string, Template> {
  const vector = f32bytes(Array.from({ length: ctx.dim }, (_, i) => 0.01 * i));
  return {
    update: { msg: { type: 'update', jobId: ctx.jobId, round: ctx.round, numExamples: 10, metrics: { loss: 0.5, accuracy: 0.5 } }, binary: vector },
    eval_result: { msg: { type: 'eval_result', jobId: ctx.jobId, round: ctx.round, numExamples: 10, loss: 0.5, accuracy: 0.5 } },
    refuse: { msg: { type: 'refuse', jobId: ctx.jobId, round: ctx.round, reason: 'no' } },
    secagg_up: { msg: { type: 'secagg_up', jobId: ctx.jobId, round: ctx.round, body: secaggBodies(ctx).advertise } },
    secagg_masked: {
      msg: { type: 'secagg_up', jobId: ctx.jobId, round: ctx.round, body: { type: 'secagg_masked_input', jobId: ctx.jobId, round: ctx.round, session: ctx.session ?? SESSION } },
      binary: new Uint8Array(Math.ceil((ctx.dim * 16) / 8)),
    },
  };
}

/** A hello that passes the schema (its signature is well-formed, and answers no challenge). */
export function helloTemplate(clientId: string): Record<string, unknown> {
  return { type: 'hello', protocolVersion: PROTOCOL_VERSION, clientId, numExamples: 10, backend: 'hostile', publicKey: 'A'.repeat(43), signature: 'A'.repeat(86), server: 'plaintext' };
}

/** Every numeric field of every client message type, as a path into its template. */
export const NUMERIC_FIELDS: readonly [string, string[]][] = [
  ['update', ['round']],
  ['update', ['numExamples']],
  ['update', ['metrics', 'loss']],
  ['update', ['metrics', 'accuracy']],
  ['update', ['metrics', 'customMetric']],
  ['update', ['clipBit']],
  ['eval_result', ['round']],
  ['eval_result', ['numExamples']],
  ['eval_result', ['loss']],
  ['eval_result', ['accuracy']],
  ['refuse', ['round']],
  ['secagg_up', ['round']],
  ['secagg_up', ['body', 'round']],
  ['secagg_masked', ['round']],
  ['secagg_masked', ['body', 'round']],
];

export function setPath(obj: Record<string, unknown>, path: string[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(obj);
  let at: Record<string, unknown> = copy;
  for (let i = 0; i < path.length - 1; i++) {
    if (typeof at[path[i]] !== 'object' || at[path[i]] === null) at[path[i]] = {};
    at = at[path[i]] as Record<string, unknown>;
  }
  if (value === undefined) delete at[path[path.length - 1]];
  else at[path[path.length - 1]] = value;
  return copy;
}

export function fieldPaths(obj: Record<string, unknown>, prefix: string[] = []): string[][] {
  const out: string[][] = [];
  for (const [k, v] of Object.entries(obj)) {
    out.push([...prefix, k]);
    if (v && typeof v === 'object' && !Array.isArray(v) && prefix.length < 2) out.push(...fieldPaths(v as Record<string, unknown>, [...prefix, k]));
  }
  return out;
}
