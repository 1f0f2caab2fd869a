/**
 * HKDF with HMAC-SHA256 (RFC 5869), for every symmetric key and mask seed SecAgg derives.
 *
 * Portable: HMAC (RFC 2104) over the portable SHA-256 (sha256.ts). Node: `crypto.hkdfSync`. The two
 * agree byte for byte; a test checks both against RFC 5869 Appendix A test cases 1–3.
 */
import { asUint8, nodeCrypto } from './node.ts';
import { sha256Portable } from './sha256.ts';

const HASH_LEN = 32;
const BLOCK_LEN = 64;

/** HMAC-SHA256 (RFC 2104 §2), portable. */
export function hmacSha256Portable(key: Uint8Array, message: Uint8Array): Uint8Array {
  // RFC 2104 §2: keys longer than the block are hashed first, then zero-padded to B bytes.
  const k = new Uint8Array(BLOCK_LEN);
  k.set(key.length > BLOCK_LEN ? sha256Portable(key) : key);
  const inner = new Uint8Array(BLOCK_LEN + message.length);
  const outer = new Uint8Array(BLOCK_LEN + HASH_LEN);
  for (let i = 0; i < BLOCK_LEN; i++) {
    inner[i] = k[i] ^ 0x36;
    outer[i] = k[i] ^ 0x5c;
  }
  inner.set(message, BLOCK_LEN);
  outer.set(sha256Portable(inner), BLOCK_LEN);
  return sha256Portable(outer);
}

/** RFC 5869 §2.2 HKDF-Extract: PRK = HMAC-Hash(salt, IKM); an absent salt is HashLen zero bytes. */
export function hkdfExtractPortable(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return hmacSha256Portable(salt.length > 0 ? salt : new Uint8Array(HASH_LEN), ikm);
}

/** RFC 5869 §2.3 HKDF-Expand: T(i) = HMAC(PRK, T(i-1) | info | i), OKM = first L bytes of T(1)|T(2)|… */
export function hkdfExpandPortable(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  checkLength(length);
  const out = new Uint8Array(length);
  let t: Uint8Array = new Uint8Array(0);
  for (let i = 1, off = 0; off < length; i++) {
    const input = new Uint8Array(t.length + info.length + 1);
    input.set(t);
    input.set(info, t.length);
    input[input.length - 1] = i;
    t = hmacSha256Portable(prk, input);
    out.set(t.subarray(0, Math.min(HASH_LEN, length - off)), off);
    off += HASH_LEN;
  }
  return out;
}

function checkLength(length: number): void {
  // RFC 5869 §2.3: L <= 255 * HashLen.
  if (!Number.isInteger(length) || length < 0 || length > 255 * HASH_LEN) {
    throw new RangeError(`hkdf: output length ${length} outside [0, ${255 * HASH_LEN}]`);
  }
}

/** HKDF-SHA256 (extract then expand), portable. */
export function hkdfPortable(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  return hkdfExpandPortable(hkdfExtractPortable(salt, ikm), info, length);
}

/** HKDF-SHA256 through node:crypto, or undefined outside Node (or for `info` > 1024 bytes, Node's limit). */
export function hkdfNode(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array | undefined {
  const crypto = nodeCrypto();
  if (!crypto || info.length > 1024) return undefined;
  checkLength(length);
  if (length === 0) return new Uint8Array(0);
  return asUint8(crypto.hkdfSync('sha256', ikm, salt, info, length));
}

/** HKDF-SHA256 (RFC 5869): node:crypto in Node, portable elsewhere. */
export function hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  return hkdfNode(ikm, salt, info, length) ?? hkdfPortable(ikm, salt, info, length);
}
