/**
 * The mask PRG of secure aggregation (Bonawitz et al. CCS 2017, §4, "PRG"; Bell et al. CCS 2020, §3):
 * a 256-bit seed expands to one pseudorandom element of Z_{2^b} per coordinate.
 *
 * Definition (what both implementations compute, bit for bit):
 *   keystream = ChaCha20(key = seed, nonce = 0^12, initial counter = 0)   (RFC 8439 §2.4)
 *   w         = maskWordBytes(b)  ∈ {1, 2, 4}   (1 for b ≤ 8, 2 for b ≤ 16, else 4)
 *   mask[i]   = little-endian w-byte word i of the keystream            (uniform in Z_{2^{8w}}, hence
 *                                                                        uniform mod 2^b since 2^b | 2^{8w})
 * Sums are kept mod 2^32 in Uint32Array words and reduced mod 2^b only at the end, which is exact
 * because 2^b divides 2^32. Using w < 4 bytes for small b halves or quarters the keystream the server
 * must generate during unmasking, which dominates its cost.
 *
 * Each seed is used for exactly one mask (seeds are fresh per round and per pair, see keys.ts), so the
 * fixed nonce never repeats under one key. ChaCha20's 32-bit block counter caps one mask at 256 GiB.
 *
 * The adds into the accumulator run in WebAssembly SIMD where available (simd.ts), else in scalar JS.
 *
 * Fast path: node:crypto's 'chacha20' cipher (OpenSSL; its 16-byte IV is the RFC 8439 block
 * counter, little-endian, followed by the 96-bit nonce) over a zero buffer, ~2 GB/s. Portable: the
 * unrolled ChaCha20 of chacha20.ts. Tests: both against RFC 8439 §2.4.2 and against each other.
 */
import { chacha20KeystreamWords, chacha20Words } from './chacha20.ts';
import { asUint8, nodeCrypto, type NodeCrypto } from './node.ts';
import { SLICE_WORDS, sliceAccumulator } from './simd.ts';

export const PRG_SEED_BYTES = 32;
/** Keystream is produced and consumed in chunks of this many bytes (fits in L2, amortises calls). */
const CHUNK_BYTES = 64 * 1024;
if (CHUNK_BYTES / 4 !== SLICE_WORDS) throw new Error('prg: chunk and SIMD slice sizes disagree');
const ZERO_NONCE = new Uint8Array(12);

/** A running keystream. `read(n)` returns the next n bytes as a 4-byte-aligned view valid until the next call. */
export interface KeystreamReader {
  read(bytes: number): Uint8Array;
}

export interface PrgImpl {
  readonly name: string;
  open(seed: Uint8Array): KeystreamReader;
}

function checkSeed(seed: Uint8Array): void {
  if (!(seed instanceof Uint8Array) || seed.length !== PRG_SEED_BYTES) throw new RangeError(`prg: seed must be ${PRG_SEED_BYTES} bytes`);
}

export const prgPortable: PrgImpl = {
  name: 'chacha20/portable',
  open(seed) {
    checkSeed(seed);
    const { key, nonce } = chacha20Words(seed, ZERO_NONCE);
    let counter = 0;
    const buf = new Uint32Array(CHUNK_BYTES / 4);
    const bytes = new Uint8Array(buf.buffer);
    return {
      read(n) {
        if (n > CHUNK_BYTES) throw new RangeError(`prg: read at most ${CHUNK_BYTES} bytes at a time`);
        const blocks = Math.ceil(n / 64);
        counter = chacha20KeystreamWords(key, nonce, counter, buf.subarray(0, blocks * 16));
        return bytes.subarray(0, n);
      },
    };
  },
};

function nodeImpl(crypto: NodeCrypto): PrgImpl {
  const zeros = new Uint8Array(CHUNK_BYTES);
  const iv = new Uint8Array(16); // counter 0 (LE) || nonce 0^12
  return {
    name: 'chacha20/node',
    open(seed) {
      checkSeed(seed);
      const cipher = crypto.createCipheriv('chacha20', seed, iv);
      let pending = 0; // bytes of a partial block already consumed (only after a final short read)
      return {
        read(n) {
          if (n > CHUNK_BYTES) throw new RangeError(`prg: read at most ${CHUNK_BYTES} bytes at a time`);
          if (pending !== 0) throw new Error('prg: read after a final partial block');
          if (n % 64 !== 0) pending = n % 64;
          const out = asUint8(cipher.update(zeros.subarray(0, n)));
          // OpenSSL returns a fresh, aligned buffer; copy in the unlikely case it is not.
          return out.byteOffset % 4 === 0 ? out : out.slice();
        },
      };
    },
  };
}

function detectNode(): PrgImpl | undefined {
  const crypto = nodeCrypto();
  if (!crypto) return undefined;
  try {
    if (!crypto.getCiphers().includes('chacha20')) return undefined;
    return nodeImpl(crypto);
  } catch {
    return undefined;
  }
}

/** node:crypto implementation, or undefined outside Node (or in an OpenSSL build without ChaCha20). */
export const prgNode: PrgImpl | undefined = detectNode();

/** The implementation `addMask` / `prgBytes` use by default. */
export const defaultPrg: PrgImpl = prgNode ?? prgPortable;

/** Bytes per mask element for a modulus 2^bits (1 ≤ bits ≤ 32). */
export function maskWordBytes(bits: number): 1 | 2 | 4 {
  if (!Number.isInteger(bits) || bits < 1 || bits > 32) throw new RangeError(`prg: bits must be an integer in [1, 32], got ${bits}`);
  return bits <= 8 ? 1 : bits <= 16 ? 2 : 4;
}

/** The first `length` bytes of the keystream of `seed`. */
export function prgBytes(seed: Uint8Array, length: number, impl: PrgImpl = defaultPrg): Uint8Array {
  const out = new Uint8Array(length);
  const reader = impl.open(seed);
  for (let off = 0; off < length; off += CHUNK_BYTES) {
    const n = Math.min(CHUNK_BYTES, length - off);
    out.set(reader.read(n), off);
  }
  return out;
}

/** One mask to apply: acc += sign · PRG(seed). */
export interface MaskTerm {
  seed: Uint8Array;
  sign: 1 | -1;
}

/**
 * acc[i] ← acc[i] + sign · mask[i]  (mod 2^32), for i < acc.length, with mask[] = PRG(seed) for
 * modulus 2^bits as defined above. The keystream streams through a 64 KiB buffer: no O(d) allocation.
 */
export function addMask(acc: Uint32Array, seed: Uint8Array, sign: 1 | -1, bits: number, impl: PrgImpl = defaultPrg): void {
  addMasks(acc, [{ seed, sign }], bits, impl);
}

/**
 * Applies many masks at once, chunk-major: every stream advances over the same 64 KiB slice of
 * `acc` before the next slice, so the slice stays in cache while all masks are added (the d-long
 * accumulator is read and written once instead of once per mask). Same result as repeated addMask.
 */
export function addMasks(acc: Uint32Array, terms: readonly MaskTerm[], bits: number, impl: PrgImpl = defaultPrg): void {
  const w = maskWordBytes(bits);
  const readers = terms.map((t) => impl.open(t.seed));
  // Int32 view: `(a + b) | 0` stays in V8's int32 fast path, where Uint32Array arithmetic spills to
  // doubles above 2^31. Both are the same ring Z_{2^32}.
  const acc32 = new Int32Array(acc.buffer, acc.byteOffset, acc.length);
  const perChunk = CHUNK_BYTES / 4; // accumulator words per slice (64 KiB of acc)
  const simd = w === 1 ? undefined : sliceAccumulator();
  for (let start = 0; start < acc.length; start += perChunk) {
    const count = Math.min(perChunk, acc.length - start);
    if (simd) {
      simd.load(acc32, start, count);
      for (let m = 0; m < terms.length; m++) simd.add(readers[m].read(count * w), w as 2 | 4, terms[m].sign);
      simd.store(acc32, start, count);
    } else {
      for (let m = 0; m < terms.length; m++) addChunk(acc32, start, count, readers[m], w, terms[m].sign);
    }
  }
}

function addChunk(acc: Int32Array, start: number, count: number, reader: KeystreamReader, w: 1 | 2 | 4, sign: 1 | -1): void {
  const ks = reader.read(count * w);
  // One monomorphic loop per word width and sign (a shared loop over a union of typed-array types
  // runs several times slower in V8).
  if (w === 4) {
    const words = new Int32Array(ks.buffer, ks.byteOffset, count);
    if (sign === 1) add32(acc, start, words, count);
    else sub32(acc, start, words, count);
  } else if (w === 2) {
    const words = new Uint16Array(ks.buffer, ks.byteOffset, count);
    if (sign === 1) add16(acc, start, words, count);
    else sub16(acc, start, words, count);
  } else if (sign === 1) {
    add8(acc, start, ks, count);
  } else {
    sub8(acc, start, ks, count);
  }
}

function add32(acc: Int32Array, start: number, words: Int32Array, count: number): void {
  for (let j = 0; j < count; j++) acc[start + j] = (acc[start + j] + words[j]) | 0;
}
function sub32(acc: Int32Array, start: number, words: Int32Array, count: number): void {
  for (let j = 0; j < count; j++) acc[start + j] = (acc[start + j] - words[j]) | 0;
}
function add16(acc: Int32Array, start: number, words: Uint16Array, count: number): void {
  for (let j = 0; j < count; j++) acc[start + j] = (acc[start + j] + words[j]) | 0;
}
function sub16(acc: Int32Array, start: number, words: Uint16Array, count: number): void {
  for (let j = 0; j < count; j++) acc[start + j] = (acc[start + j] - words[j]) | 0;
}
function add8(acc: Int32Array, start: number, words: Uint8Array, count: number): void {
  for (let j = 0; j < count; j++) acc[start + j] = (acc[start + j] + words[j]) | 0;
}
function sub8(acc: Int32Array, start: number, words: Uint8Array, count: number): void {
  for (let j = 0; j < count; j++) acc[start + j] = (acc[start + j] - words[j]) | 0;
}

/** The mask itself, reduced mod 2^bits (tests and statistics; the protocol uses addMask). */
export function maskVector(seed: Uint8Array, length: number, bits: number, impl: PrgImpl = defaultPrg): Uint32Array {
  const out = new Uint32Array(length);
  addMask(out, seed, 1, bits, impl);
  reduceModPow2(out, bits);
  return out;
}

/** v[i] ← v[i] mod 2^bits, in place. */
export function reduceModPow2(v: Uint32Array, bits: number): void {
  if (bits >= 32) return;
  const m = (2 ** bits - 1) >>> 0;
  for (let i = 0; i < v.length; i++) v[i] &= m;
}
