/** b-bit packing of the masked vector for transport (⌈d·b/8⌉ bytes), and the server's packed add. */
import { SLICE_WORDS, sliceAccumulator } from '../../crypto/simd.ts';

/** Bytes of `count` values packed at `bits` bits each. */
export function packedBytes(count: number, bits: number): number {
  return Math.ceil((count * bits) / 8);
}

function checkBits(bits: number): void {
  if (!Number.isInteger(bits) || bits < 1 || bits > 32) throw new RangeError(`packing: bits must be in [1, 32], got ${bits}`);
}

/**
 * Packs values mod 2^bits into ⌈count·bits/8⌉ bytes: value i occupies bits [i·b, (i+1)·b) of the
 * little-endian bit string (least significant bit first). Higher bits of the inputs are ignored.
 */
export function packBits(values: Uint32Array, bits: number): Uint8Array<ArrayBuffer> {
  checkBits(bits);
  const nBytes = packedBytes(values.length, bits);
  const words = new Uint32Array(Math.ceil(nBytes / 4) + 1);
  // TypedArray set converts with ToUint16 / ToUint8, i.e. keeps the low 16 / 8 bits, in native code.
  if (bits === 32) words.set(values);
  else if (bits === 16) new Uint16Array(words.buffer, 0, values.length).set(values);
  else if (bits === 8) new Uint8Array(words.buffer, 0, values.length).set(values);
  else {
    const mask = (2 ** bits - 1) >>> 0;
    let pos = 0;
    for (let i = 0; i < values.length; i++, pos += bits) {
      const v = values[i] & mask;
      const w = pos >>> 5;
      const s = pos & 31;
      words[w] |= v << s;
      if (s + bits > 32) words[w + 1] |= v >>> (32 - s);
    }
  }
  return new Uint8Array(words.buffer, 0, nBytes);
}

/** 32-bit-aligned words over `bytes`, zero-padded (copies only if needed). */
function alignedWords(bytes: Uint8Array): Uint32Array {
  if (bytes.byteOffset % 4 === 0 && bytes.byteLength % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const words = new Uint32Array(Math.ceil(bytes.length / 4));
  new Uint8Array(words.buffer).set(bytes);
  return words;
}

function checkPacked(packed: Uint8Array, count: number, bits: number): void {
  checkBits(bits);
  if (packed.length !== packedBytes(count, bits)) {
    throw new RangeError(`packing: ${packed.length} bytes, expected ${packedBytes(count, bits)} for ${count} values of ${bits} bits`);
  }
}

/** acc[i] ← acc[i] + value_i (mod 2^32) for the `acc.length` values packed in `packed` (no allocation of d values). */
export function addPacked(acc: Uint32Array, packed: Uint8Array, bits: number): void {
  const count = acc.length;
  checkPacked(packed, count, bits);
  const simd = bits === 32 || bits === 16 ? sliceAccumulator() : undefined;
  if (simd) {
    // WebAssembly SIMD (crypto/simd.ts), slice by slice; reads `packed` directly, no alignment needed.
    const w = bits / 8;
    const acc32 = new Int32Array(acc.buffer, acc.byteOffset, acc.length);
    for (let start = 0; start < count; start += SLICE_WORDS) {
      const n = Math.min(SLICE_WORDS, count - start);
      simd.load(acc32, start, n);
      simd.add(packed.subarray(start * w, (start + n) * w), w as 2 | 4, 1);
      simd.store(acc32, start, n);
    }
    return;
  }
  const words = alignedWords(packed);
  if (bits === 32) {
    for (let i = 0; i < count; i++) acc[i] += words[i];
  } else if (bits === 16) {
    const h = new Uint16Array(words.buffer, words.byteOffset, count);
    for (let i = 0; i < count; i++) acc[i] += h[i];
  } else if (bits === 8) {
    const b = new Uint8Array(words.buffer, words.byteOffset, count);
    for (let i = 0; i < count; i++) acc[i] += b[i];
  } else {
    const mask = (2 ** bits - 1) >>> 0;
    let pos = 0;
    for (let i = 0; i < count; i++, pos += bits) {
      const w = pos >>> 5;
      const s = pos & 31;
      let v = words[w] >>> s;
      if (s + bits > 32) v |= words[w + 1] << (32 - s);
      acc[i] += v & mask;
    }
  }
}

/** Inverse of packBits. */
export function unpackBits(packed: Uint8Array, bits: number, count: number): Uint32Array {
  const out = new Uint32Array(count);
  addPacked(out, packed, bits);
  return out;
}
