/**
 * ChaCha20 (RFC 8439 §2.1–§2.4), portable, as the keystream of the SecAgg mask PRG (prg.ts) and of
 * the neighbour-graph permutation. Two versions: `chacha20BlockReference` follows the RFC's
 * pseudocode line by line (§2.1 quarter round, §2.3 block function); `chacha20Keystream` is the same
 * function unrolled over local variables (~5× faster). Tests: RFC 8439 §2.1.1, §2.3.2 and §2.4.2
 * vectors, and the two versions against each other and against node:crypto's 'chacha20'.
 */
import { CohortError } from '../errors.ts';

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new CohortError('UNSUPPORTED_PLATFORM', 'chacha20: little-endian platform required');

// RFC 8439 §2.3: the constants "expand 32-byte k".
const C0 = 0x61707865;
const C1 = 0x3320646e;
const C2 = 0x79622d32;
const C3 = 0x6b206574;

const rotl = (x: number, n: number): number => (x << n) | (x >>> (32 - n));

/** RFC 8439 §2.1: the quarter round on state words a, b, c, d (in place). */
export function quarterRound(s: Uint32Array, a: number, b: number, c: number, d: number): void {
  s[a] = (s[a] + s[b]) | 0; s[d] = rotl(s[d] ^ s[a], 16);
  s[c] = (s[c] + s[d]) | 0; s[b] = rotl(s[b] ^ s[c], 12);
  s[a] = (s[a] + s[b]) | 0; s[d] = rotl(s[d] ^ s[a], 8);
  s[c] = (s[c] + s[d]) | 0; s[b] = rotl(s[b] ^ s[c], 7);
}

function words(bytes: Uint8Array, count: number, what: string): Uint32Array {
  if (bytes.length !== count * 4) throw new RangeError(`chacha20: ${what} must be ${count * 4} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getUint32(4 * i, true);
  return out;
}

/** RFC 8439 §2.3: one 64-byte block, straight from the pseudocode (reference version). */
export function chacha20BlockReference(key: Uint8Array, counter: number, nonce: Uint8Array): Uint8Array {
  const k = words(key, 8, 'key');
  const n = words(nonce, 3, 'nonce');
  const state = new Uint32Array([C0, C1, C2, C3, ...k, counter >>> 0, ...n]);
  const working = state.slice();
  for (let i = 0; i < 10; i++) {
    // §2.3 inner_block: column rounds then diagonal rounds.
    quarterRound(working, 0, 4, 8, 12);
    quarterRound(working, 1, 5, 9, 13);
    quarterRound(working, 2, 6, 10, 14);
    quarterRound(working, 3, 7, 11, 15);
    quarterRound(working, 0, 5, 10, 15);
    quarterRound(working, 1, 6, 11, 12);
    quarterRound(working, 2, 7, 8, 13);
    quarterRound(working, 3, 4, 9, 14);
  }
  const out = new Uint8Array(64);
  const view = new DataView(out.buffer);
  for (let i = 0; i < 16; i++) view.setUint32(4 * i, (working[i] + state[i]) >>> 0, true);
  return out;
}

/**
 * Fills `out` (length a multiple of 16 words) with keystream blocks counter, counter+1, … under
 * `key` (8 words) and `nonce` (3 words). Each block is the §2.3 block function; words are the
 * little-endian serialisation of §2.3 step "serialize", so `new Uint8Array(out.buffer)` is the
 * byte keystream. Returns the next counter.
 */
export function chacha20KeystreamWords(key: Uint32Array, nonce: Uint32Array, counter: number, out: Uint32Array): number {
  const k0 = key[0], k1 = key[1], k2 = key[2], k3 = key[3], k4 = key[4], k5 = key[5], k6 = key[6], k7 = key[7];
  const n0 = nonce[0], n1 = nonce[1], n2 = nonce[2];
  let ctr = counter >>> 0;
  for (let o = 0; o + 16 <= out.length; o += 16) {
    let x0 = C0, x1 = C1, x2 = C2, x3 = C3, x4 = k0, x5 = k1, x6 = k2, x7 = k3;
    let x8 = k4, x9 = k5, x10 = k6, x11 = k7, x12 = ctr, x13 = n0, x14 = n1, x15 = n2;
    for (let i = 0; i < 10; i++) {
      // column round: QR(0,4,8,12) QR(1,5,9,13) QR(2,6,10,14) QR(3,7,11,15)
      x0 = (x0 + x4) | 0; x12 = rotl(x12 ^ x0, 16); x8 = (x8 + x12) | 0; x4 = rotl(x4 ^ x8, 12);
      x0 = (x0 + x4) | 0; x12 = rotl(x12 ^ x0, 8); x8 = (x8 + x12) | 0; x4 = rotl(x4 ^ x8, 7);
      x1 = (x1 + x5) | 0; x13 = rotl(x13 ^ x1, 16); x9 = (x9 + x13) | 0; x5 = rotl(x5 ^ x9, 12);
      x1 = (x1 + x5) | 0; x13 = rotl(x13 ^ x1, 8); x9 = (x9 + x13) | 0; x5 = rotl(x5 ^ x9, 7);
      x2 = (x2 + x6) | 0; x14 = rotl(x14 ^ x2, 16); x10 = (x10 + x14) | 0; x6 = rotl(x6 ^ x10, 12);
      x2 = (x2 + x6) | 0; x14 = rotl(x14 ^ x2, 8); x10 = (x10 + x14) | 0; x6 = rotl(x6 ^ x10, 7);
      x3 = (x3 + x7) | 0; x15 = rotl(x15 ^ x3, 16); x11 = (x11 + x15) | 0; x7 = rotl(x7 ^ x11, 12);
      x3 = (x3 + x7) | 0; x15 = rotl(x15 ^ x3, 8); x11 = (x11 + x15) | 0; x7 = rotl(x7 ^ x11, 7);
      // diagonal round: QR(0,5,10,15) QR(1,6,11,12) QR(2,7,8,13) QR(3,4,9,14)
      x0 = (x0 + x5) | 0; x15 = rotl(x15 ^ x0, 16); x10 = (x10 + x15) | 0; x5 = rotl(x5 ^ x10, 12);
      x0 = (x0 + x5) | 0; x15 = rotl(x15 ^ x0, 8); x10 = (x10 + x15) | 0; x5 = rotl(x5 ^ x10, 7);
      x1 = (x1 + x6) | 0; x12 = rotl(x12 ^ x1, 16); x11 = (x11 + x12) | 0; x6 = rotl(x6 ^ x11, 12);
      x1 = (x1 + x6) | 0; x12 = rotl(x12 ^ x1, 8); x11 = (x11 + x12) | 0; x6 = rotl(x6 ^ x11, 7);
      x2 = (x2 + x7) | 0; x13 = rotl(x13 ^ x2, 16); x8 = (x8 + x13) | 0; x7 = rotl(x7 ^ x8, 12);
      x2 = (x2 + x7) | 0; x13 = rotl(x13 ^ x2, 8); x8 = (x8 + x13) | 0; x7 = rotl(x7 ^ x8, 7);
      x3 = (x3 + x4) | 0; x14 = rotl(x14 ^ x3, 16); x9 = (x9 + x14) | 0; x4 = rotl(x4 ^ x9, 12);
      x3 = (x3 + x4) | 0; x14 = rotl(x14 ^ x3, 8); x9 = (x9 + x14) | 0; x4 = rotl(x4 ^ x9, 7);
    }
    // §2.3: add the original state to the result.
    out[o] = x0 + C0; out[o + 1] = x1 + C1; out[o + 2] = x2 + C2; out[o + 3] = x3 + C3;
    out[o + 4] = x4 + k0; out[o + 5] = x5 + k1; out[o + 6] = x6 + k2; out[o + 7] = x7 + k3;
    out[o + 8] = x8 + k4; out[o + 9] = x9 + k5; out[o + 10] = x10 + k6; out[o + 11] = x11 + k7;
    out[o + 12] = x12 + ctr; out[o + 13] = x13 + n0; out[o + 14] = x14 + n1; out[o + 15] = x15 + n2;
    ctr = (ctr + 1) >>> 0;
  }
  return ctr;
}

/** `length` bytes of keystream starting at block `counter` (RFC 8439 §2.4 with an all-zero plaintext). */
export function chacha20Keystream(key: Uint8Array, nonce: Uint8Array, counter: number, length: number): Uint8Array {
  const blocks = Math.ceil(length / 64);
  const out = new Uint32Array(blocks * 16);
  chacha20KeystreamWords(words(key, 8, 'key'), words(nonce, 3, 'nonce'), counter, out);
  return new Uint8Array(out.buffer, 0, length);
}

/** RFC 8439 §2.4: ciphertext = plaintext XOR keystream(counter, counter+1, …). */
export function chacha20Xor(key: Uint8Array, nonce: Uint8Array, counter: number, input: Uint8Array): Uint8Array {
  const ks = chacha20Keystream(key, nonce, counter, input.length);
  const out = new Uint8Array(input.length);
  for (let i = 0; i < input.length; i++) out[i] = input[i] ^ ks[i];
  return out;
}

/** Key and nonce bytes as the word arrays `chacha20KeystreamWords` takes. */
export function chacha20Words(key: Uint8Array, nonce: Uint8Array): { key: Uint32Array; nonce: Uint32Array } {
  return { key: words(key, 8, 'key'), nonce: words(nonce, 3, 'nonce') };
}
