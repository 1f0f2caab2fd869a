// The WebAssembly ChaCha20 kernel against RFC 8439 and the portable implementation.
import { describe, expect, it } from 'vitest';
import { bytesToHex, hexToBytes, randomBytes, utf8 } from './bytes.ts';
import { chacha20Words, chacha20Xor } from './chacha20.ts';
import { chacha20BlockReference } from './chacha20.ts';
import { chacha20Kernel } from './chacha20-wasm.ts';

const KEY_0_31 = hexToBytes('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574];

function state(key: Uint8Array, nonce: Uint8Array, counter: number): Uint32Array {
  const w = chacha20Words(key, nonce);
  return new Uint32Array([...SIGMA, ...w.key, counter, ...w.nonce]);
}

describe('ChaCha20 WebAssembly kernel', () => {
  const k = chacha20Kernel();

  it('is available on this platform', () => {
    expect(k).toBeDefined();
  });

  it('RFC 8439 §2.4.2: keystream XOR plaintext gives the published ciphertext', () => {
    const nonce = hexToBytes('000000000000004a00000000');
    const text = utf8("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
    const ks = k!.generate(state(KEY_0_31, nonce, 1), 2).slice();
    const out = text.map((b, i) => b ^ ks[i]);
    expect(bytesToHex(out)).toBe(
      '6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b' +
        'f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8' +
        '07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736' +
        '5af90bbf74a35be6b40b8eedf2785e42874d',
    );
    expect(bytesToHex(out)).toBe(bytesToHex(chacha20Xor(KEY_0_31, nonce, 1, text)));
  });

  it('equals the reference block function for block counts 1–9 and across calls (counter carried)', () => {
    for (let t = 0; t < 6; t++) {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      const s = state(key, nonce, t * 977);
      let counter = t * 977;
      for (const blocks of [1, 2, 3, 4, 5, 9]) {
        const ks = k!.generate(s, blocks).slice();
        expect(ks.length).toBe(64 * blocks);
        for (let b = 0; b < blocks; b++) {
          expect(bytesToHex(ks.subarray(64 * b, 64 * b + 64))).toBe(bytesToHex(chacha20BlockReference(key, counter + b, nonce)));
        }
        counter += blocks;
        expect(s[12]).toBe(counter);
      }
    }
  });

  it('wraps the 32-bit block counter as RFC 8439 does', () => {
    const key = randomBytes(32);
    const nonce = new Uint8Array(12);
    const s = state(key, nonce, 0xfffffffe);
    const ks = k!.generate(s, 4).slice();
    for (let b = 0; b < 4; b++) {
      expect(bytesToHex(ks.subarray(64 * b, 64 * b + 64))).toBe(bytesToHex(chacha20BlockReference(key, (0xfffffffe + b) >>> 0, nonce)));
    }
    expect(s[12]).toBe(2);
  });
});
