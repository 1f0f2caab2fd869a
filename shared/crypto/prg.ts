/**
 * The mask PRG of secure aggregation (Bonawitz et al. CCS 2017, §4, "PRG"; Bell et al. CCS 2020, §3):
 * a 256-bit seed expands to one pseudorandom element of Z_{2^b} per coordinate. Two keystreams, a
 * named choice (`MaskPrgName`) that the server announces in each round's configuration (keys.ts,
 * messages.ts), so client and server always expand the same one:
 *
 *   'aes-256-ctr' (default): keystream = AES-256-CTR(key = seed, initial counter block = 0^128,
 *                 counter +1 mod 2^128 as a big-endian integer)      (FIPS-197; SP 800-38A §6.5, B.1)
 *                 = OpenSSL's 'aes-256-ctr' with an all-zero IV over zero bytes.
 *   'chacha20':   keystream = ChaCha20(key = seed, nonce = 0^12, initial counter = 0)   (RFC 8439 §2.4)
 *
 * and, for either keystream,
 *   w       = maskWordBytes(b)  ∈ {1, 2, 4}   (1 for b ≤ 8, 2 for b ≤ 16, else 4)
 *   mask[i] = little-endian w-byte word i of the keystream            (uniform in Z_{2^{8w}}, hence
 *                                                                      uniform mod 2^b since 2^b | 2^{8w})
 * Sums are kept mod 2^32 in Uint32Array words and reduced mod 2^b only at the end, which is exact
 * because 2^b divides 2^32. Using w < 4 bytes for small b halves or quarters the keystream the server
 * must generate during unmasking, which dominates its cost.
 *
 * Each seed is used for exactly one mask (seeds are fresh per round and per pair, see keys.ts), so the
 * fixed IV/nonce never repeats under one key. Length caps: ChaCha20's 32-bit block counter allows
 * 256 GiB per mask; AES-CTR's 128-bit counter is not a practical limit (the 2^64-block birthday
 * distinguisher of a 128-bit block cipher in CTR mode is far beyond a 4 GiB mask).
 *
 * Why AES by default: the server expands ~290 masks of 3.3 MB per round (bench/secagg.ts, n = 100,
 * d = 1.66M, 10% dropout) and in Node AES-256-CTR is the faster keystream on AES-NI/VAES hardware.
 * Measured on the 2-core CI machine (AMD EPYC, VAES), quiet: through `addMasks` (290 masks, b = 16)
 * ~1.7–2.1 vs ~1.3 GB/s; `cipher.update` of 64 KiB alone ~2.5 vs ~1.5–2.0 GB/s; `openssl speed`
 * 6.4 vs 3.1 GB/s (Node's update returns a freshly allocated Buffer per call, which caps both).
 * Without node:crypto the order flips: the portable table AES of aes.ts runs ~0.1 GB/s against
 * ~1 GB/s for ChaCha20 in WebAssembly SIMD (0.2–0.4 GB/s in plain JS), so a deployment with browser
 * clients should announce 'chacha20'.
 *
 * The adds into the accumulator run in WebAssembly SIMD where available (simd.ts), else in scalar JS.
 *
 * Fast paths: node:crypto's 'aes-256-ctr' (16-byte IV = the initial counter block) and 'chacha20'
 * (16-byte IV = the RFC 8439 block counter, little-endian, followed by the 96-bit nonce), over a zero
 * buffer. Without node:crypto, ChaCha20 runs in WebAssembly SIMD (chacha20-wasm.ts, ~1 GB/s). Portable:
 * aes.ts and chacha20.ts. Tests: FIPS-197 / SP 800-38A / RFC 8439 vectors in the
 * primitives' tests, both paths against each other here.
 *
 * OpenSSL is called with exactly the bytes one accumulator slice consumes (≤ 64 KiB, the SIMD slice
 * of simd.ts). Reading more per call (64–256 KiB, handed out slice by slice) measured 5–30% slower
 * in the chunk-major `addMasks` (and up to 50% for ChaCha20): with ~290 readers each holding a
 * pending buffer, garbage collections double or triple and the buffers fall out of cache.
 */
import { aes256CtrKeystreamWords, aes256ExpandKey } from './aes.ts';
import { chacha20KeystreamWords, chacha20Words } from './chacha20.ts';
import { chacha20Kernel } from './chacha20-wasm.ts';
import { asUint8, nodeCrypto, type NodeCrypto } from './node.ts';
import { SLICE_WORDS, sliceAccumulator } from './simd.ts';

export const PRG_SEED_BYTES = 32;
/** Keystream is produced and consumed in chunks of this many bytes (fits in L2, amortises calls). */
const CHUNK_BYTES = 64 * 1024;
if (CHUNK_BYTES / 4 !== SLICE_WORDS) throw new Error('prg: chunk and SIMD slice sizes disagree');
const ZERO_NONCE = new Uint8Array(12);

/** The mask PRGs a round may announce. */
export const MASK_PRG_NAMES = ['aes-256-ctr', 'chacha20'] as const;
export type MaskPrgName = (typeof MASK_PRG_NAMES)[number];
/** The mask PRG of a round whose configuration names none. */
export const DEFAULT_MASK_PRG: MaskPrgName = 'aes-256-ctr';

export function isMaskPrgName(x: unknown): x is MaskPrgName {
  return typeof x === 'string' && (MASK_PRG_NAMES as readonly string[]).includes(x);
}

/** A running keystream. `read(n)` returns the next n bytes as a 4-byte-aligned view valid until the next call. */
export interface KeystreamReader {
  read(bytes: number): Uint8Array;
}

export interface PrgImpl {
  /** '<MaskPrgName>/<node|portable>'. */
  readonly name: string;
  /** The keystream this implementation computes. */
  readonly prg: MaskPrgName;
  open(seed: Uint8Array): KeystreamReader;
}

function checkSeed(seed: Uint8Array): void {
  if (!(seed instanceof Uint8Array) || seed.length !== PRG_SEED_BYTES) throw new RangeError(`prg: seed must be ${PRG_SEED_BYTES} bytes`);
}

/**
 * Reads happen in whole cipher blocks; a read whose length is not a multiple of the block size must
 * be the last one (the rest of its final block is dropped). Both paths enforce this, so they can never
 * disagree after a short read.
 */
function readGuard(blockBytes: number): (n: number) => void {
  let ended = false;
  return (n) => {
    if (!Number.isInteger(n) || n < 0 || n > CHUNK_BYTES) throw new RangeError(`prg: read at most ${CHUNK_BYTES} bytes at a time`);
    if (ended) throw new Error('prg: read after a final partial block');
    if (n % blockBytes !== 0) ended = true;
  };
}

/** Portable ChaCha20 keystream (chacha20.ts). */
export const chacha20Portable: PrgImpl = {
  name: 'chacha20/portable',
  prg: 'chacha20',
  open(seed) {
    checkSeed(seed);
    const { key, nonce } = chacha20Words(seed, ZERO_NONCE);
    const guard = readGuard(64);
    let counter = 0;
    const buf = new Uint32Array(CHUNK_BYTES / 4);
    const bytes = new Uint8Array(buf.buffer);
    return {
      read(n) {
        guard(n);
        const blocks = Math.ceil(n / 64);
        counter = chacha20KeystreamWords(key, nonce, counter, buf.subarray(0, blocks * 16));
        return bytes.subarray(0, n);
      },
    };
  },
};

/**
 * ChaCha20 keystream from the WebAssembly SIMD kernel (chacha20-wasm.ts, ~1 GB/s, no allocation): the
 * fast path where node:crypto is absent (browsers), 3–10× the portable JS. Its views share the
 * kernel's output buffer: each is valid until the next read on *any* reader of this implementation
 * (every caller here consumes a read before the next). Undefined without WebAssembly SIMD.
 */
export const chacha20Wasm: PrgImpl | undefined = (() => {
  const kernel = chacha20Kernel();
  if (!kernel) return undefined;
  return {
    name: 'chacha20/wasm',
    prg: 'chacha20',
    open(seed) {
      checkSeed(seed);
      const { key, nonce } = chacha20Words(seed, ZERO_NONCE);
      // RFC 8439 §2.3 state: "expand 32-byte k", key, block counter 0, nonce.
      const state = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574, ...key, 0, ...nonce]);
      const guard = readGuard(64);
      return {
        read(n) {
          guard(n);
          return kernel.generate(state, Math.ceil(n / 64)).subarray(0, n);
        },
      };
    },
  };
})();

/** Portable AES-256-CTR keystream (aes.ts). */
export const aes256CtrPortable: PrgImpl = {
  name: 'aes-256-ctr/portable',
  prg: 'aes-256-ctr',
  open(seed) {
    checkSeed(seed);
    const rk = aes256ExpandKey(seed);
    const guard = readGuard(16);
    const counter = new Uint32Array(4); // initial counter block 0^128
    const buf = new Int32Array(CHUNK_BYTES / 4);
    const bytes = new Uint8Array(buf.buffer);
    return {
      read(n) {
        guard(n);
        const blocks = Math.ceil(n / 16);
        aes256CtrKeystreamWords(rk, counter, buf.subarray(0, blocks * 4));
        return bytes.subarray(0, n);
      },
    };
  },
};

/** The ChaCha20 portable implementation (its historical name). */
export const prgPortable: PrgImpl = chacha20Portable;

const NODE_CIPHERS: Record<MaskPrgName, { cipher: string; blockBytes: number }> = {
  // IV = initial counter block 0^128.
  'aes-256-ctr': { cipher: 'aes-256-ctr', blockBytes: 16 },
  // IV = counter 0 (LE) ‖ nonce 0^12.
  chacha20: { cipher: 'chacha20', blockBytes: 64 },
};

function nodeImpl(crypto: NodeCrypto, prg: MaskPrgName): PrgImpl {
  const { cipher, blockBytes } = NODE_CIPHERS[prg];
  const zeros = new Uint8Array(CHUNK_BYTES);
  const iv = new Uint8Array(16);
  return {
    name: `${prg}/node`,
    prg,
    open(seed) {
      checkSeed(seed);
      const c = crypto.createCipheriv(cipher, seed, iv);
      const guard = readGuard(blockBytes);
      return {
        read(n) {
          guard(n);
          const out = asUint8(c.update(zeros.subarray(0, n)));
          // OpenSSL returns a fresh, aligned buffer; copy in the unlikely case it is not.
          return out.byteOffset % 4 === 0 ? out : out.slice();
        },
      };
    },
  };
}

function detectNode(prg: MaskPrgName): PrgImpl | undefined {
  const crypto = nodeCrypto();
  if (!crypto) return undefined;
  try {
    if (!crypto.getCiphers().includes(NODE_CIPHERS[prg].cipher)) return undefined;
    return nodeImpl(crypto, prg);
  } catch {
    return undefined;
  }
}

/** node:crypto implementations, or undefined outside Node (or in an OpenSSL build without the cipher). */
export const chacha20Node: PrgImpl | undefined = detectNode('chacha20');
export const aes256CtrNode: PrgImpl | undefined = detectNode('aes-256-ctr');
/** The ChaCha20 node:crypto implementation (its historical name). */
export const prgNode: PrgImpl | undefined = chacha20Node;

/**
 * The implementation of a named PRG: node:crypto where available, else portable (`portable: true`
 * forces the portable one). Throws RangeError on an unknown name.
 */
export function prgFor(name: MaskPrgName, opts: { portable?: boolean } = {}): PrgImpl {
  if (name === 'aes-256-ctr') return (!opts.portable && aes256CtrNode) || aes256CtrPortable;
  if (name === 'chacha20') return (!opts.portable && (chacha20Node ?? chacha20Wasm)) || chacha20Portable;
  throw new RangeError(`prg: unknown mask PRG ${JSON.stringify(name)}`);
}

/**
 * The keystream `prgBytes` uses by default: ChaCha20 (encoding.ts derives the rotation signs from it,
 * identically on clients and server). Masks use the round's named PRG instead (`prgFor`).
 */
export const defaultPrg: PrgImpl = prgFor('chacha20');

/** The implementation `addMask` / `addMasks` / `maskVector` use when given none: the default mask PRG. */
export const defaultMaskPrg: PrgImpl = prgFor(DEFAULT_MASK_PRG);

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
export function addMask(acc: Uint32Array, seed: Uint8Array, sign: 1 | -1, bits: number, impl: PrgImpl = defaultMaskPrg): void {
  addMasks(acc, [{ seed, sign }], bits, impl);
}

/**
 * Applies many masks at once, chunk-major: every stream advances over the same 64 KiB slice of
 * `acc` before the next slice, so the slice stays in cache while all masks are added (the d-long
 * accumulator is read and written once instead of once per mask). Same result as repeated addMask.
 */
export function addMasks(acc: Uint32Array, terms: readonly MaskTerm[], bits: number, impl: PrgImpl = defaultMaskPrg): void {
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
export function maskVector(seed: Uint8Array, length: number, bits: number, impl: PrgImpl = defaultMaskPrg): Uint32Array {
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
