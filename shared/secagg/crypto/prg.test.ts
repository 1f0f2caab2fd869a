import { describe, expect, it } from 'vitest';
import { bytesToHex, randomBytes } from './bytes.ts';
import { chacha20Keystream } from './chacha20.ts';
import { assembleKernels, setSimdEnabled, sliceAccumulator } from './simd.ts';
import { addMask, addMasks, maskVector, maskWordBytes, prgBytes, prgNode, prgPortable } from './prg.ts';

describe('mask PRG', () => {
  it('node:crypto path is available here', () => expect(prgNode).toBeDefined());

  it('is ChaCha20 with nonce 0 and counter 0, on both paths, across chunk boundaries', () => {
    const seed = randomBytes(32);
    const n = 64 * 1024 * 2 + 100;
    const expected = bytesToHex(chacha20Keystream(seed, new Uint8Array(12), 0, n));
    expect(bytesToHex(prgBytes(seed, n, prgPortable))).toBe(expected);
    expect(bytesToHex(prgBytes(seed, n, prgNode))).toBe(expected);
  });

  it.each([1, 8, 13, 16, 20, 32])('addMask gives identical results on both paths (bits=%i) and ± cancel', (bits) => {
    const seed = randomBytes(32);
    const d = 40_000 + bits;
    const a = new Uint32Array(d);
    const b = new Uint32Array(d);
    addMask(a, seed, 1, bits, prgPortable);
    addMask(b, seed, 1, bits, prgNode);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    addMask(a, seed, -1, bits, prgNode);
    expect(a.every((v) => v === 0)).toBe(true);
    // The words are the little-endian w-byte words of the keystream.
    const w = maskWordBytes(bits);
    const ks = prgBytes(seed, d * w);
    const view = new DataView(ks.buffer, ks.byteOffset);
    for (const i of [0, 1, 777, d - 1]) {
      const word = w === 4 ? view.getUint32(i * 4, true) : w === 2 ? view.getUint16(i * 2, true) : ks[i];
      expect(b[i]).toBe(word);
    }
  });

  it('different seeds give different masks; maskVector is reduced mod 2^b', () => {
    const v1 = maskVector(randomBytes(32), 1000, 12);
    const v2 = maskVector(randomBytes(32), 1000, 12);
    expect(v1.every((x) => x < 4096)).toBe(true);
    expect(v1.some((x, i) => x !== v2[i])).toBe(true);
  });
});

describe('addMasks (chunk-major)', () => {
  it('equals the masks applied one by one', () => {
    const terms = Array.from({ length: 5 }, (_, i) => ({ seed: randomBytes(32), sign: (i % 2 ? -1 : 1) as 1 | -1 }));
    for (const bits of [7, 16, 31]) {
      const d = 50_001;
      const a = new Uint32Array(d);
      const b = new Uint32Array(d);
      for (const t of terms) addMask(a, t.seed, t.sign, bits);
      addMasks(b, terms, bits);
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    }
  });
});

describe('WebAssembly SIMD accumulation', () => {
  it('is available here and gives the same results as the scalar loops', () => {
    expect(WebAssembly.validate(assembleKernels())).toBe(true);
    expect(sliceAccumulator()).toBeDefined();
    const terms = Array.from({ length: 4 }, (_, i) => ({ seed: randomBytes(32), sign: (i % 2 ? -1 : 1) as 1 | -1 }));
    for (const bits of [7, 12, 16, 24, 32]) {
      for (const d of [1, 9, 16_384, 40_003]) {
        const init = new Uint32Array(d).map(() => (Math.random() * 2 ** 32) >>> 0);
        const a = init.slice();
        const b = init.slice();
        addMasks(a, terms, bits);
        setSimdEnabled(false);
        try {
          addMasks(b, terms, bits);
        } finally {
          setSimdEnabled(true);
        }
        expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
      }
    }
  });
});
