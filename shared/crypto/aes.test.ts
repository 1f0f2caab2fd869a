/**
 * AES-256 and CTR mode (aes.ts) against the published vectors:
 * - FIPS-197, "Advanced Encryption Standard (AES)", NIST 2001 (updated 2023): §5.1.1 (S-box),
 *   Appendix A.3 (expansion of a 256-bit cipher key), Appendix C.3 (AES-256, Nk = 8, Nr = 14).
 * - NIST SP 800-38A, "Recommendation for Block Cipher Modes of Operation", 2001: Appendix F.5.5
 *   (CTR-AES256.Encrypt) and F.5.6 (CTR-AES256.Decrypt), whose counter blocks carry across a byte
 *   (…feff → …ff00).
 * Then the reference (byte-oriented) and fast (table) versions against each other, and the CTR
 * keystream against node:crypto's 'aes-256-ctr' (OpenSSL) on random keys, counters and lengths.
 */
import { describe, expect, it } from 'vitest';
import { bytesToHex, hexToBytes, randomBytes } from './bytes.ts';
import {
  aes256CtrKeystreamWords,
  aes256CtrXor,
  aes256EncryptBlock,
  aes256EncryptBlockReference,
  aes256ExpandKey,
  aes256KeyExpansionReference,
  counterWords,
  gfMul,
  SBOX,
} from './aes.ts';
import { nodeCrypto } from './node.ts';

const crypto = nodeCrypto()!;
const nodeCtr = (key: Uint8Array, iv: Uint8Array, input: Uint8Array): string =>
  bytesToHex(crypto.createCipheriv('aes-256-ctr', key, iv).update(input));

describe('AES-256 (FIPS-197)', () => {
  it('§4.2 multiplication and the §5.1.1 S-box (Fig. 7 / Table 4 entries)', () => {
    expect(gfMul(0x57, 0x83)).toBe(0xc1); // §4.2 example {57} • {83} = {c1}
    expect(gfMul(0x57, 0x13)).toBe(0xfe); // §4.2.1 example {57} • {13} = {fe}
    expect(SBOX[0x00]).toBe(0x63);
    expect(SBOX[0x53]).toBe(0xed); // §5.1.1: S-box({53}) = {ed}
    expect(SBOX[0xff]).toBe(0x16);
    expect(new Set(SBOX).size).toBe(256); // a permutation
  });

  it('Appendix A.3: expansion of the 256-bit key 603deb10…0914dff4 (reference and word form)', () => {
    const key = hexToBytes('603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4');
    const w = aes256KeyExpansionReference(key);
    const word = (i: number) => bytesToHex(w.subarray(4 * i, 4 * i + 4));
    expect(word(7)).toBe('0914dff4');
    expect(word(8)).toBe('9ba35411');
    expect(word(9)).toBe('8e6925af');
    expect(word(59)).toBe('706c631e');
    const fast = aes256ExpandKey(key);
    expect(bytesToHex(new Uint8Array(fast.buffer))).toBe(bytesToHex(w));
  });

  it('Appendix C.3: AES-256 single block, reference and table versions', () => {
    const key = hexToBytes('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    const plaintext = hexToBytes('00112233445566778899aabbccddeeff');
    const expected = '8ea2b7ca516745bfeafc49904b496089';
    expect(bytesToHex(aes256EncryptBlockReference(key, plaintext))).toBe(expected);
    expect(bytesToHex(aes256EncryptBlock(key, plaintext))).toBe(expected);
    // Inputs are not modified (Buffer#slice would alias them).
    expect(bytesToHex(plaintext)).toBe('00112233445566778899aabbccddeeff');
  });

  it('reference and table versions agree on random keys and blocks', () => {
    for (let i = 0; i < 40; i++) {
      const key = randomBytes(32);
      const block = randomBytes(16);
      expect(bytesToHex(aes256EncryptBlock(key, block))).toBe(bytesToHex(aes256EncryptBlockReference(key, block)));
    }
  });

  it('rejects keys that are not 32 bytes', () => {
    expect(() => aes256ExpandKey(new Uint8Array(16))).toThrow(RangeError);
    expect(() => aes256KeyExpansionReference(new Uint8Array(33))).toThrow(RangeError);
  });
});

describe('AES-256-CTR (SP 800-38A)', () => {
  const KEY = hexToBytes('603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4');
  const INIT_COUNTER = hexToBytes('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff');
  const PLAINTEXT =
    '6bc1bee22e409f96e93d7e117393172a' + 'ae2d8a571e03ac9c9eb76fac45af8e51' + '30c81c46a35ce411e5fbc1191a0a52ef' + 'f69f2445df4f9b17ad2b417be66c3710';
  const CIPHERTEXT =
    '601ec313775789a5b7a7f504bbf3d228' + 'f443e3ca4d62b59aca84e990cacaf5c5' + '2b0930daa23de94ce87017ba2d84988d' + 'dfc9c58db67aada613c2dd08457941a6';

  it('F.5.5 CTR-AES256.Encrypt and F.5.6 CTR-AES256.Decrypt', () => {
    expect(bytesToHex(aes256CtrXor(KEY, INIT_COUNTER, hexToBytes(PLAINTEXT)))).toBe(CIPHERTEXT);
    expect(bytesToHex(aes256CtrXor(KEY, INIT_COUNTER, hexToBytes(CIPHERTEXT)))).toBe(PLAINTEXT);
    // The same vector through OpenSSL, so the node fast path is checked against the standard too.
    expect(nodeCtr(KEY, INIT_COUNTER, hexToBytes(PLAINTEXT))).toBe(CIPHERTEXT);
  });

  it('F.5.5 block by block: the counter advances as a 128-bit big-endian integer (…feff, …ff00, …ff01, …ff02)', () => {
    const rk = aes256ExpandKey(KEY);
    const counter = counterWords(INIT_COUNTER);
    const pt = hexToBytes(PLAINTEXT);
    for (let b = 0; b < 4; b++) {
      const ks = new Uint32Array(4);
      aes256CtrKeystreamWords(rk, counter, ks);
      const ksBytes = new Uint8Array(ks.buffer);
      const ct = pt.subarray(16 * b, 16 * b + 16).map((x, i) => x ^ ksBytes[i]);
      expect(bytesToHex(ct)).toBe(CIPHERTEXT.slice(32 * b, 32 * b + 32));
      // Output block b is E(K, input block b), the block cipher applied to the counter itself.
      expect(bytesToHex(ksBytes)).toBe(bytesToHex(aes256EncryptBlockReference(KEY, counterBlock(INIT_COUNTER, b))));
    }
    expect([...counter]).toEqual([0xf0f1f2f3, 0xf4f5f6f7, 0xf8f9fafb, 0xfcfdff03]);
  });

  it('agrees with node:crypto aes-256-ctr on random keys and lengths, including 32-, 64- and 128-bit counter wrap', () => {
    const ivs = [
      new Uint8Array(16),
      hexToBytes('000000000000000000000000fffffffd'), // low word wraps
      hexToBytes('0000000000000000fffffffffffffffe'), // low 64 bits wrap
      hexToBytes('fffffffffffffffffffffffffffffffe'), // wraps to 0^128
      randomBytes(16),
    ];
    for (const iv of ivs) {
      for (const len of [1, 15, 16, 17, 100, 4096 + 5]) {
        const key = randomBytes(32);
        const data = randomBytes(len);
        expect(bytesToHex(aes256CtrXor(key, iv, data))).toBe(nodeCtr(key, iv, data));
      }
    }
  });

  it('a keystream generated in pieces equals one generated at once', () => {
    const rk = aes256ExpandKey(randomBytes(32));
    const whole = new Uint32Array(4 * 50);
    aes256CtrKeystreamWords(rk, new Uint32Array([0, 0, 0, 0xffffffe0]), whole);
    const pieces = new Uint32Array(4 * 50);
    const counter = new Uint32Array([0, 0, 0, 0xffffffe0]);
    for (const [from, to] of [[0, 12], [12, 13], [13, 50]]) aes256CtrKeystreamWords(rk, counter, pieces.subarray(4 * from, 4 * to));
    expect([...pieces]).toEqual([...whole]);
    expect([...counter]).toEqual([0, 0, 1, 0x12]);
  });

  it('rejects partial output blocks and bad counter blocks', () => {
    const rk = aes256ExpandKey(randomBytes(32));
    expect(() => aes256CtrKeystreamWords(rk, new Uint32Array(4), new Uint32Array(6))).toThrow(RangeError);
    expect(() => counterWords(new Uint8Array(12))).toThrow(RangeError);
  });
});

/** The 16-byte counter block `start + offset` (mod 2^128), by byte-wise big-endian addition. */
function counterBlock(start: Uint8Array, offset: number): Uint8Array {
  const out = start.slice();
  let carry = offset;
  for (let i = 15; i >= 0 && carry > 0; i--) {
    const v = out[i] + (carry & 0xff);
    out[i] = v & 0xff;
    carry = (carry >>> 8) + (v >>> 8);
  }
  return out;
}
