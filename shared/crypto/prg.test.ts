import { describe, expect, it } from 'vitest';
/**
 * The mask PRGs (prg.ts): each path against the keystream's definition — AES-256-CTR with counter
 * block 0^128 (FIPS-197 / NIST SP 800-38A; the cipher itself is tested against FIPS-197 Appendix C.3
 * and SP 800-38A F.5.5 in aes.test.ts) and ChaCha20 with nonce 0, counter 0 (RFC 8439 §2.4, tested in
 * chacha20.test.ts) — node:crypto against portable, and the word extraction and accumulation.
 */
import { bytesToHex, randomBytes } from './bytes.ts';
import { aes256CtrXor } from './aes.ts';
import { chacha20Keystream } from './chacha20.ts';
import { nodeCrypto } from './node.ts';
import { assembleKernels, setSimdEnabled, sliceAccumulator } from './simd.ts';
import {
  addMask,
  addMasks,
  aes256CtrNode,
  aes256CtrPortable,
  chacha20Node,
  chacha20Portable,
  chacha20Wasm,
  DEFAULT_MASK_PRG,
  defaultMaskPrg,
  defaultPrg,
  isMaskPrgName,
  MASK_PRG_NAMES,
  maskVector,
  maskWordBytes,
  prgBytes,
  prgFor,
  prgNode,
  prgPortable,
  type PrgImpl,
} from './prg.ts';

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

describe('AES-256-CTR mask PRG', () => {
  it('node:crypto path is available here and is the default mask PRG', () => {
    expect(aes256CtrNode).toBeDefined();
    expect(DEFAULT_MASK_PRG).toBe('aes-256-ctr');
    expect(defaultMaskPrg).toBe(aes256CtrNode);
  });

  // Lengths around the AES block (16), the 64 KiB chunk and several chunks, plus random ones.
  const lengths = [1, 15, 16, 17, 4095, 65536, 65536 + 16, 2 * 65536 + 100, 3 * 65536 + 7, ...Array.from({ length: 4 }, () => 1 + Math.floor(Math.random() * 300_000))];

  it.each(lengths)('is AES-256-CTR(seed, counter block 0^128) on both paths (%i bytes)', (n) => {
    const seed = randomBytes(32);
    const zeros = new Uint8Array(n);
    const expected = bytesToHex(aes256CtrXor(seed, new Uint8Array(16), zeros));
    // OpenSSL directly, with the zero IV of the definition (independent of prg.ts's plumbing).
    expect(bytesToHex(nodeCrypto()!.createCipheriv('aes-256-ctr', seed, new Uint8Array(16)).update(zeros))).toBe(expected);
    expect(bytesToHex(prgBytes(seed, n, aes256CtrPortable))).toBe(expected);
    expect(bytesToHex(prgBytes(seed, n, aes256CtrNode))).toBe(expected);
  });

  it.each([1, 8, 13, 16, 20, 32])('addMask gives identical results on both AES paths (bits=%i), ± cancel, words are the keystream', (bits) => {
    const seed = randomBytes(32);
    const d = 70_000 + bits; // more than one 64 KiB slice for every word width
    const a = new Uint32Array(d);
    const b = new Uint32Array(d);
    addMask(a, seed, 1, bits, aes256CtrPortable);
    addMask(b, seed, 1, bits, aes256CtrNode);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    addMask(a, seed, -1, bits, aes256CtrNode);
    expect(a.every((v) => v === 0)).toBe(true);
    const w = maskWordBytes(bits);
    const ks = prgBytes(seed, d * w, aes256CtrNode);
    const view = new DataView(ks.buffer, ks.byteOffset);
    for (const i of [0, 1, 777, 40_000, d - 1]) {
      const word = w === 4 ? view.getUint32(i * 4, true) : w === 2 ? view.getUint16(i * 2, true) : ks[i];
      expect(b[i]).toBe(word);
    }
  });
});

describe('ChaCha20 in WebAssembly (the path without node:crypto)', () => {
  it('gives the same keystream as node:crypto and the portable code, across chunks and partial reads', () => {
    expect(chacha20Wasm).toBeDefined();
    for (const n of [1, 63, 64, 65, 1000, 64 * 1024, 3 * 64 * 1024 + 100]) {
      const seed = randomBytes(32);
      const expected = bytesToHex(prgBytes(seed, n, chacha20Node!));
      expect(bytesToHex(prgBytes(seed, n, chacha20Wasm!))).toBe(expected);
      expect(bytesToHex(prgBytes(seed, n, chacha20Portable))).toBe(expected);
    }
  });

  it('masks accumulate identically with interleaved readers (the shared output buffer is consumed per read)', () => {
    const terms = Array.from({ length: 5 }, (_, i) => ({ seed: randomBytes(32), sign: (i % 2 ? -1 : 1) as 1 | -1 }));
    const a = new Uint32Array(70_001);
    const b = new Uint32Array(70_001);
    addMasks(a, terms, 16, chacha20Wasm!);
    addMasks(b, terms, 16, chacha20Node!);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  });
});

describe('named mask PRGs', () => {
  it('prgFor picks node:crypto when present, portable on request, and rejects unknown names', () => {
    expect(MASK_PRG_NAMES).toEqual(['aes-256-ctr', 'chacha20']);
    expect(prgFor('aes-256-ctr')).toBe(aes256CtrNode);
    expect(prgFor('chacha20')).toBe(chacha20Node);
    expect(prgFor('aes-256-ctr', { portable: true })).toBe(aes256CtrPortable);
    expect(prgFor('chacha20', { portable: true })).toBe(chacha20Portable);
    for (const name of MASK_PRG_NAMES) {
      expect(prgFor(name).prg).toBe(name);
      expect(prgFor(name, { portable: true }).prg).toBe(name);
    }
    expect(() => prgFor('aes-128-ctr' as never)).toThrow(RangeError);
    expect(isMaskPrgName('chacha20')).toBe(true);
    expect(isMaskPrgName('aes-256-gcm')).toBe(false);
    expect(isMaskPrgName(undefined)).toBe(false);
  });

  it('keeps ChaCha20 as prgBytes’s default (rotation signs) and the historical aliases', () => {
    expect(defaultPrg).toBe(chacha20Node);
    expect(prgNode).toBe(chacha20Node);
    expect(prgPortable).toBe(chacha20Portable);
    const seed = randomBytes(32);
    expect(bytesToHex(prgBytes(seed, 100))).toBe(bytesToHex(chacha20Keystream(seed, new Uint8Array(12), 0, 100)));
  });

  it('the two PRGs give different masks for the same seed', () => {
    const seed = randomBytes(32);
    const aes = maskVector(seed, 1000, 16, aes256CtrNode);
    const chacha = maskVector(seed, 1000, 16, chacha20Node);
    expect(aes.some((x, i) => x !== chacha[i])).toBe(true);
    expect(Buffer.from(maskVector(seed, 1000, 16).buffer).equals(Buffer.from(aes.buffer))).toBe(true);
  });

  it.each([
    ['aes-256-ctr/node', aes256CtrNode, 16],
    ['aes-256-ctr/portable', aes256CtrPortable, 16],
    ['chacha20/node', chacha20Node, 64],
    ['chacha20/portable', chacha20Portable, 64],
    ['chacha20/wasm', chacha20Wasm!, 64],
  ] as [string, PrgImpl, number][])('%s: a read after a partial block throws; whole blocks continue the stream', (name, impl, block) => {
    expect(impl.name).toBe(name);
    const seed = randomBytes(32);
    const whole = prgBytes(seed, 4 * block, impl);
    const r = impl.open(seed);
    expect(bytesToHex(r.read(block))).toBe(bytesToHex(whole.subarray(0, block)));
    expect(bytesToHex(r.read(2 * block))).toBe(bytesToHex(whole.subarray(block, 3 * block)));
    expect(bytesToHex(r.read(block - 1))).toBe(bytesToHex(whole.subarray(3 * block, 4 * block - 1)));
    expect(() => r.read(block)).toThrow(/partial block/);
    expect(() => impl.open(seed).read(64 * 1024 + 16)).toThrow(RangeError);
    expect(() => impl.open(new Uint8Array(16))).toThrow(RangeError);
  });
});
