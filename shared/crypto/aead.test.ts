import { describe, expect, it } from 'vitest';
import { randomBytes } from './bytes.ts';
import { AEAD_OVERHEAD, aeadOpen, aeadSeal, AeadError } from './aead.ts';

describe('AEAD (XSalsa20-Poly1305 secretbox)', () => {
  it('round trips, with fresh random nonces', () => {
    const key = randomBytes(32);
    const msg = randomBytes(150);
    const a = aeadSeal(key, msg);
    const b = aeadSeal(key, msg);
    expect(a.length).toBe(msg.length + AEAD_OVERHEAD);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
    expect(Buffer.from(aeadOpen(key, a)).equals(Buffer.from(msg))).toBe(true);
  });

  it('rejects every single-bit flip of nonce, ciphertext and tag', () => {
    const key = randomBytes(32);
    const sealed = aeadSeal(key, randomBytes(40));
    for (let bit = 0; bit < sealed.length * 8; bit += 3) {
      const bad = sealed.slice();
      bad[bit >> 3] ^= 1 << (bit & 7);
      expect(() => aeadOpen(key, bad)).toThrow(AeadError);
    }
  });

  it('rejects a wrong key, truncation and extension', () => {
    const key = randomBytes(32);
    const sealed = aeadSeal(key, randomBytes(40));
    expect(() => aeadOpen(randomBytes(32), sealed)).toThrow(AeadError);
    expect(() => aeadOpen(key, sealed.subarray(0, sealed.length - 1))).toThrow(AeadError);
    const longer = new Uint8Array(sealed.length + 1);
    longer.set(sealed);
    expect(() => aeadOpen(key, longer)).toThrow(AeadError);
    expect(() => aeadOpen(key, sealed.subarray(0, 10))).toThrow(AeadError);
  });
});
