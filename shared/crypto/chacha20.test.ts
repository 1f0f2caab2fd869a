import { describe, expect, it } from 'vitest';
import { bytesToHex, hexToBytes, randomBytes, utf8 } from './bytes.ts';
import { chacha20BlockReference, chacha20Keystream, chacha20Xor, quarterRound } from './chacha20.ts';
import { nodeCrypto } from './node.ts';

const KEY_0_31 = hexToBytes('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
const SUNSCREEN = utf8(
  "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
);

describe('ChaCha20 (RFC 8439)', () => {
  it('§2.1.1 quarter round test vector', () => {
    const s = new Uint32Array([0x11111111, 0x01020304, 0x9b8d6f43, 0x01234567]);
    quarterRound(s, 0, 1, 2, 3);
    expect([...s]).toEqual([0xea2a92f4, 0xcb1cf8ce, 0x4581472e, 0x5881c4bb]);
  });

  it('§2.3.2 block function test vector (reference and fast)', () => {
    const nonce = hexToBytes('000000090000004a00000000');
    const expected =
      '10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e' +
      'd2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e';
    expect(bytesToHex(chacha20BlockReference(KEY_0_31, 1, nonce))).toBe(expected);
    expect(bytesToHex(chacha20Keystream(KEY_0_31, nonce, 1, 64))).toBe(expected);
  });

  it('§2.4.2 encryption test vector', () => {
    const nonce = hexToBytes('000000000000004a00000000');
    const expected =
      '6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b' +
      'f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8' +
      '07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736' +
      '5af90bbf74a35be6b40b8eedf2785e42874d';
    expect(bytesToHex(chacha20Xor(KEY_0_31, nonce, 1, SUNSCREEN))).toBe(expected);
    // node:crypto's 'chacha20': 16-byte IV = 32-bit little-endian block counter ‖ 96-bit nonce.
    const crypto = nodeCrypto()!;
    const iv = new Uint8Array(16);
    iv[0] = 1;
    iv.set(nonce, 4);
    expect(bytesToHex(crypto.createCipheriv('chacha20', KEY_0_31, iv).update(SUNSCREEN))).toBe(expected);
  });

  it('fast keystream equals the reference block function block by block', () => {
    for (let t = 0; t < 5; t++) {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      const start = t * 1000;
      const fast = chacha20Keystream(key, nonce, start, 64 * 7);
      for (let b = 0; b < 7; b++) {
        expect(bytesToHex(fast.subarray(64 * b, 64 * b + 64))).toBe(bytesToHex(chacha20BlockReference(key, start + b, nonce)));
      }
    }
  });
});
