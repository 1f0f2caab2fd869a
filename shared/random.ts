/**
 * Sources of randomness.
 *
 * Two kinds, never mixed up:
 * - The platform CSPRNG, reached only through this module (`randomFill`, and on top of it
 *   `cryptoWords`, `randomBytes`, `cryptoRng()`): node:crypto `randomFillSync` when running in Node
 *   (found at run time through `process.getBuiltinModule`, no static `node:*` import, so this file stays
 *   isomorphic), else WebCrypto `getRandomValues` (every browser; at most 64 KiB per call). Anything a
 *   privacy or security guarantee rests on (cohort sampling for DP accounting, noise, rounding, keys,
 *   seeds) draws from it.
 * - `seededRng(seed)` is a fast, reproducible PRNG (sfc32 seeded through splitmix32) for model
 *   initialisation, data shuffling and simulations. It is not cryptographic.
 */
import { nodeCrypto } from './crypto/node.ts';

export interface Rng {
  /** Uniform double in [0, 1). */
  next(): number;
  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number;
}

/** splitmix32: spreads a 32-bit seed over the state of sfc32. */
function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Hashes a string seed to 32 bits (FNV-1a), so runs can be seeded by name. */
export function seedFromString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** sfc32 (Chris Doty-Humphrey's Small Fast Chaotic PRNG), 128-bit state. Reproducible, not secure. */
export function seededRng(seed: number | string): Rng {
  const mix = splitmix32(typeof seed === 'string' ? seedFromString(seed) : seed >>> 0);
  let a = mix();
  let b = mix();
  let c = mix();
  let d = mix();
  const nextUint32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 12; i++) nextUint32();
  return {
    nextUint32,
    // 53 random bits -> double in [0, 1)
    next: () => (nextUint32() * 2 ** 21 + (nextUint32() >>> 11)) / 2 ** 53,
  };
}

// ---- the CSPRNG door ------------------------------------------------------------------------------

/** Fills `out` with uniform 32-bit words. */
export type UniformWords = (out: Uint32Array) => void;

/** WebCrypto's limit per `getRandomValues` call. */
const WEBCRYPTO_MAX_BYTES = 65536;

type RandomFillSync = (buf: Uint8Array | Uint32Array) => unknown;
let platformFill: ((out: Uint8Array | Uint32Array) => void) | undefined;

function makePlatformFill(): (out: Uint8Array | Uint32Array) => void {
  const node = nodeCrypto() as { randomFillSync?: RandomFillSync } | undefined;
  const randomFillSync = node?.randomFillSync;
  if (typeof randomFillSync === 'function') return (out) => void randomFillSync.call(node, out);
  return (out) => {
    const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    for (let off = 0; off < bytes.length; off += WEBCRYPTO_MAX_BYTES) {
      globalThis.crypto.getRandomValues(bytes.subarray(off, Math.min(bytes.length, off + WEBCRYPTO_MAX_BYTES)));
    }
  };
}

/** Fills `out` (any length) from the platform CSPRNG. */
export function randomFill(out: Uint8Array | Uint32Array): void {
  (platformFill ??= makePlatformFill())(out);
}

/** Uniform words from the platform CSPRNG. */
export const cryptoWords: UniformWords = (out) => randomFill(out);

/** `length` bytes from the platform CSPRNG. */
export function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  randomFill(out);
  return out;
}

/** A `UniformWords` drawing from an `Rng` (e.g. `seededRng` for reproducible tests and simulations; never for real noise). */
export function wordsFromRng(rng: Pick<Rng, 'nextUint32'>): UniformWords {
  return (out) => {
    for (let i = 0; i < out.length; i++) out[i] = rng.nextUint32() >>> 0;
  };
}

/** CSPRNG-backed Rng; buffers 256 words per call to the platform CSPRNG. */
export function cryptoRng(): Rng {
  const buf = new Uint32Array(256);
  let pos = buf.length;
  const nextUint32 = (): number => {
    if (pos === buf.length) {
      randomFill(buf);
      pos = 0;
    }
    return buf[pos++];
  };
  return {
    nextUint32,
    next: () => (nextUint32() * 2 ** 21 + (nextUint32() >>> 11)) / 2 ** 53,
  };
}

/** Uniform integer in [0, n) without modulo bias. */
export function randomInt(rng: Rng, n: number): number {
  if (!Number.isInteger(n) || n <= 0 || n > 2 ** 32) throw new RangeError(`randomInt: bad bound ${n}`);
  const limit = 2 ** 32 - (2 ** 32 % n);
  for (;;) {
    const x = rng.nextUint32();
    if (x < limit) return x % n;
  }
}

/** Fisher–Yates shuffle in place. */
export function shuffleInPlace<T>(items: T[] | Int32Array | Uint32Array, rng: Rng): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randomInt(rng, i + 1);
    const tmp = items[i];
    items[i] = items[j];
    items[j] = tmp as never;
  }
}

/** k distinct items drawn uniformly without replacement (order random). */
export function sampleWithoutReplacement<T>(items: readonly T[], k: number, rng: Rng): T[] {
  const copy = items.slice();
  const take = Math.min(k, copy.length);
  for (let i = 0; i < take; i++) {
    const j = i + randomInt(rng, copy.length - i);
    const tmp = copy[i];
    copy[i] = copy[j];
    copy[j] = tmp;
  }
  return copy.slice(0, take);
}
