/**
 * The server's running sum (accumulator.ts): the WebAssembly accumulator (b = 16, 32) must give the
 * same sums as the plain path — encoding.ts `addPacked` plus prg.ts `addMasks` on a Uint32Array —
 * for dims around the kernels' 8-element and 16384-word slice boundaries, with both mask PRGs.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from '../crypto/bytes.ts';
import { addMasks, prgFor, reduceModPow2, type MaskTerm } from '../crypto/prg.ts';
import { setSimdEnabled } from '../crypto/simd.ts';
import { SumAccumulator } from './accumulator.ts';
import { addPacked, packBits } from './encoding.ts';

function randomValues(d: number, bits: number): Uint32Array {
  const v = new Uint32Array(d);
  const bytes = randomBytes(4 * d);
  v.set(new Uint32Array(bytes.buffer, 0, d));
  if (bits < 32) for (let i = 0; i < d; i++) v[i] &= 2 ** bits - 1;
  return v;
}

/** Σ inputs + Σ masks mod 2^bits the straightforward way. */
function reference(inputs: Uint32Array[], terms: MaskTerm[], bits: number, prg: 'aes-256-ctr' | 'chacha20'): Uint32Array {
  const acc = new Uint32Array(inputs[0].length);
  for (const x of inputs) addPacked(acc, packBits(x, bits), bits);
  addMasks(acc, terms, bits, prgFor(prg));
  reduceModPow2(acc, bits);
  return acc;
}

const terms = (): MaskTerm[] => Array.from({ length: 5 }, (_, i) => ({ seed: randomBytes(32), sign: (i % 3 === 1 ? 1 : -1) as 1 | -1 }));

describe('SumAccumulator', () => {
  it.each([
    [16, 1],
    [16, 13],
    [16, 16_384],
    [16, 16_384 * 2 + 5],
    [32, 7],
    [32, 40_003],
  ])('b=%i, d=%i: the WebAssembly accumulator equals addPacked + addMasks (both PRGs)', (bits, d) => {
    for (const prg of ['aes-256-ctr', 'chacha20'] as const) {
      const inputs = [randomValues(d, bits), randomValues(d, bits), randomValues(d, bits)];
      const t = terms();
      const acc = new SumAccumulator(d, bits);
      expect(acc.inWasm).toBe(true);
      for (const x of inputs) acc.addPacked(packBits(x, bits));
      acc.addMasks(t, prgFor(prg));
      const sum = acc.finish();
      expect(sum.length).toBe(d);
      expect(Buffer.from(sum.buffer).equals(Buffer.from(reference(inputs, t, bits, prg).buffer))).toBe(true);
    }
  });

  it.each([8, 12, 20, 31])('b=%i uses the plain path with the same result', (bits) => {
    const d = 20_001;
    const inputs = [randomValues(d, bits), randomValues(d, bits)];
    const t = terms();
    const acc = new SumAccumulator(d, bits);
    expect(acc.inWasm).toBe(false);
    for (const x of inputs) acc.addPacked(packBits(x, bits));
    acc.addMasks(t, prgFor('aes-256-ctr'));
    expect(Buffer.from(acc.finish().buffer).equals(Buffer.from(reference(inputs, t, bits, 'aes-256-ctr').buffer))).toBe(true);
  });

  it('without WebAssembly SIMD it falls back to the plain path, same result', () => {
    const d = 33_333;
    const inputs = [randomValues(d, 16), randomValues(d, 16)];
    const t = terms();
    setSimdEnabled(false);
    let sum: Uint32Array;
    try {
      const acc = new SumAccumulator(d, 16);
      expect(acc.inWasm).toBe(false);
      for (const x of inputs) acc.addPacked(packBits(x, 16));
      acc.addMasks(t, prgFor('aes-256-ctr'));
      sum = acc.finish();
    } finally {
      setSimdEnabled(true);
    }
    expect(Buffer.from(sum.buffer).equals(Buffer.from(reference(inputs, t, 16, 'aes-256-ctr').buffer))).toBe(true);
  });

  it('masks and their negations cancel; inputs of the wrong size and use after finish are refused', () => {
    const d = 50_000;
    const x = randomValues(d, 16);
    const acc = new SumAccumulator(d, 16);
    acc.addPacked(packBits(x, 16));
    const t = terms();
    acc.addMasks(t, prgFor('aes-256-ctr'));
    acc.addMasks(t.map((m) => ({ seed: m.seed, sign: (-m.sign) as 1 | -1 })), prgFor('aes-256-ctr'));
    expect(() => acc.addPacked(new Uint8Array(2 * d - 2))).toThrow(RangeError);
    expect(Buffer.from(acc.finish().buffer).equals(Buffer.from(x.buffer))).toBe(true);
    expect(() => acc.finish()).toThrow(/already finished/);
    expect(() => acc.addPacked(packBits(x, 16))).toThrow(/already finished/);
  });
});
