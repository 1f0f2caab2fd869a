import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.ts';
import { seededRng } from '../random.ts';
import { randomBytes } from '../crypto/bytes.ts';
import { setSimdEnabled } from '../crypto/simd.ts';
import { encodeKernel } from './encode-kernel.ts';
import {
  addPacked,
  checkModulus,
  decodeSum,
  encodeUpdate,
  fwht,
  fwhtReference,
  modulusReport,
  l2Norm,
  packBits,
  packedBytes,
  encodedDim,
  rotationBlock,
  rotate,
  roundedNormBound,
  unpackBits,
  unrotate,
  type EncodingParams,
} from './encoding.ts';

const gaussianVector = (n: number, seed: string, scale = 1): Float32Array => {
  const rng = seededRng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - rng.next();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
  }
  return out;
};

describe('randomized Hadamard rotation', () => {
  it('FWHT matches the Hadamard matrix of order 4 and is self-inverse up to n', () => {
    for (const f of [fwht, fwhtReference]) {
      const x = new Float64Array([1, 2, 3, 4]);
      f(x);
      expect([...x]).toEqual([10, -2, -4, 0]);
      f(x);
      expect([...x]).toEqual([4, 8, 12, 16]);
    }
  });

  it('the cache-blocked radix-4 FWHT equals the reference bit for bit', () => {
    const rng = seededRng('fwht');
    for (const n of [1, 2, 8, 4096, 8192, 32768, 65536]) {
      const x = new Float64Array(n).map(() => rng.next() - 0.5);
      const y = x.slice();
      fwht(x);
      fwhtReference(y);
      expect(Buffer.from(x.buffer).equals(Buffer.from(y.buffer))).toBe(true);
    }
  });

  it('is orthonormal and invertible, with one block (d = 2^m) or two overlapping blocks', () => {
    for (const d of [1, 2, 1024, 1000, 1537]) {
      const seed = randomBytes(32);
      const x = gaussianVector(d, `rot-${d}`);
      const y = rotate(x, seed);
      expect(y.length).toBe(d);
      expect(l2Norm(y)).toBeCloseTo(l2Norm(x), 6);
      const back = unrotate(y, seed);
      for (let i = 0; i < d; i++) expect(back[i]).toBeCloseTo(x[i], 9);
    }
    expect(rotationBlock(1000)).toBe(512);
    expect(rotationBlock(1024)).toBe(1024);
  });

  it('flattens a spike to magnitude ‖x‖/√B (exactly for one block, within sub-Gaussian range for two)', () => {
    const seed = randomBytes(32);
    const spike = new Float64Array(1024);
    spike[17] = 32;
    for (const v of rotate(spike, seed)) expect(Math.abs(v)).toBeCloseTo(1, 9); // 32/√1024
    for (const at of [0, 400, 700, 999]) {
      const x = new Float64Array(1000);
      x[at] = 1;
      const y = rotate(x, randomBytes(32));
      const max = Math.max(...y.map(Math.abs));
      // Every coordinate is sub-Gaussian with proxy 1/B, B = 512: |y_j| ≤ √(2 ln(2·1000/1e-6)/512) w.p. 1 − 1e-6.
      expect(max).toBeLessThanOrEqual(Math.sqrt((2 * Math.log(2e9)) / 512));
    }
  });
});

describe('encode / decode (KLS21 Alg. 1 and 2)', () => {
  const params = (dim: number, over: Partial<EncodingParams> = {}): EncodingParams => ({
    dim,
    clipNorm: 1,
    gamma: 1e-3,
    bits: 20,
    rotationSeed: randomBytes(32),
    ...over,
  });

  it('decode(encode(x)) ≈ clip(x) within the rounding error bound γ√d', () => {
    const p = params(3000);
    const x = gaussianVector(3000, 'enc', 0.01); // norm ≈ 0.55 < c
    const { encoded, clipped, roundingAttempts } = encodeUpdate(x, p);
    expect(clipped).toBe(false);
    expect(roundingAttempts).toBeGreaterThanOrEqual(1);
    expect(encoded.length).toBe(encodedDim(3000));
    expect(encoded.length).toBe(3000);
    expect(encoded.every((v) => v < 2 ** 20)).toBe(true);
    const back = decodeSum(encoded, p);
    const err = l2Norm(back.map((v, i) => v - x[i]));
    expect(err).toBeLessThanOrEqual(p.gamma * Math.sqrt(3000));
    expect(err).toBeGreaterThan(0);
  });

  it('clips to clipNorm and the rounded vector respects Δ₂', () => {
    const p = params(500, { clipNorm: 0.5, gamma: 1e-2 });
    const x = gaussianVector(500, 'clip', 1); // norm ≈ 22 ≫ c
    const { encoded, clipped, norm } = encodeUpdate(x, p);
    expect(clipped).toBe(true);
    expect(norm).toBeCloseTo(l2Norm(x), 6);
    const m = 2 ** p.bits;
    const centred = Array.from(encoded, (v) => (v >= m / 2 ? v - m : v));
    expect(l2Norm(centred)).toBeLessThanOrEqual(roundedNormBound(0.5, 1e-2, 500));
    const back = decodeSum(encoded, p);
    expect(Math.abs(l2Norm(back) - 0.5)).toBeLessThan(p.gamma * Math.sqrt(500));
  });

  it('the sum of encodings mod 2^b decodes to the sum of the (clipped) updates, with noise', () => {
    const n = 20;
    const p = params(2000, { bits: 24, gamma: 1e-4 });
    const acc = new Uint32Array(2000);
    const truth = new Float64Array(2000);
    const noiseRng = seededRng('noise');
    for (let c = 0; c < n; c++) {
      const x = gaussianVector(2000, `client-${c}`, 0.01);
      for (let i = 0; i < 2000; i++) truth[i] += x[i];
      // A stand-in for the discrete Gaussian: small symmetric integer noise.
      const noise = (v: Int32Array) => {
        for (let i = 0; i < v.length; i++) v[i] += Math.floor(noiseRng.next() * 5) - 2;
      };
      const { encoded } = encodeUpdate(x, p, { noise });
      for (let i = 0; i < acc.length; i++) acc[i] += encoded[i];
    }
    const decoded = decodeSum(acc, p);
    const err = l2Norm(decoded.map((v, i) => v - truth[i]));
    // Rounding (< 1 per coordinate per client) plus noise (≤ 2 per coordinate per client), in γ units.
    expect(err).toBeLessThan(p.gamma * Math.sqrt(2000) * Math.sqrt(n) * 3);
    expect(err / l2Norm(truth)).toBeLessThan(0.05);
  });
});

describe('WebAssembly encoding kernels (encode-kernel.ts)', () => {
  // Deterministic uniform words: the same stream for both paths (the kernel draws a few padding words more).
  // Each call restarts the stream (so a rejected rounding is redrawn differently, the call count is mixed in).
  const words = (seed: string) => {
    let calls = 0;
    return (out: Uint32Array) => {
      const rng = seededRng(`${seed}/${calls++}`);
      for (let i = 0; i < out.length; i++) out[i] = Math.floor(rng.next() * 4294967296);
    };
  };

  it('are available on this platform (Node 20 has WebAssembly SIMD)', () => {
    expect(encodeKernel()).toBeDefined();
  });

  for (const dim of [4, 5, 7, 64, 1000, 4096, 5000, 70000]) {
    it(`encode: the kernel path equals the scalar path bit for bit (d = ${dim}, with a second rounding attempt forced)`, () => {
      // A fixed rotation seed: with a random one the forced all-up rounding below was, rarely, within the bound.
      const p: EncodingParams = { dim, clipNorm: 1, gamma: 2e-3, bits: 16, rotationSeed: new Uint8Array(32).fill(dim % 251) };
      const x = gaussianVector(dim, `k-${dim}`, 2); // clipped
      const wasm = encodeUpdate(x, p, { random: words(`u-${dim}`) }); // Float32Array → kernel
      const js = encodeUpdate(Float64Array.from(x), p, { random: words(`u-${dim}`) }); // other types → scalar
      expect(wasm.clipped).toBe(true);
      expect(wasm.roundingAttempts).toBe(js.roundingAttempts);
      expect(Buffer.from(wasm.encoded.buffer).equals(Buffer.from(js.encoded.buffer))).toBe(true);
      // Both paths reject a rounding above the bound: with β near 1 and c/γ small, Δ₂² ≈ (c/γ)² + d/4, and rounding every
      // coordinate up adds about d/3 (fair rounding about d/6).
      if (dim >= 1000) {
        const pb = { ...p, beta: 0.999, gamma: 0.02 };
        const upThenFair = () => {
          let calls = 0;
          const fair = words(`v-${dim}`);
          return (out: Uint32Array) => (calls++ === 0 ? out.fill(0) : fair(out));
        };
        const a = encodeUpdate(x, pb, { random: upThenFair() });
        const b = encodeUpdate(Float64Array.from(x), pb, { random: upThenFair() });
        // The all-up draw is rejected (for this seed); the fair redraws may be rejected too (w.p. ≤ β each),
        // so the count is ≥ 2, and the same on both paths.
        expect(a.roundingAttempts).toBeGreaterThanOrEqual(2);
        expect(b.roundingAttempts).toBe(a.roundingAttempts);
        expect(Buffer.from(a.encoded.buffer).equals(Buffer.from(b.encoded.buffer))).toBe(true);
      }
    });
  }

  for (const dim of [4, 1000, 70000]) {
    it(`decode: the kernel path equals the scalar inverse rotation bit for bit (d = ${dim})`, () => {
      const p: EncodingParams = { dim, clipNorm: 1, gamma: 1e-3, bits: 20, rotationSeed: randomBytes(32) };
      const sum = new Uint32Array(dim);
      const rng = seededRng(`s-${dim}`);
      for (let i = 0; i < dim; i++) sum[i] = Math.floor(rng.next() * 2 ** 20);
      const y = new Float64Array(dim);
      for (let i = 0; i < dim; i++) y[i] = ((sum[i] << 12) >> 12) * p.gamma;
      const expected = unrotate(y, p.rotationSeed);
      const got = decodeSum(sum, p);
      expect(Buffer.from(got.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    });
  }

  it('refuses a gamma so fine that rounded values would not fit in 32-bit integers', () => {
    const p: EncodingParams = { dim: 16, clipNorm: 1, gamma: 1e-10, bits: 32, rotationSeed: randomBytes(32) };
    expect(() => encodeUpdate(new Float32Array(16), p)).toThrow(ConfigError);
    expect(() => encodeUpdate(new Float32Array(16), { ...p, gamma: 1e-9 })).not.toThrow(); // c/γ = 1e9 < 2^31
  });

  it('noise callbacks receive Int32 values and wrap mod 2^b correctly', () => {
    const p: EncodingParams = { dim: 100, clipNorm: 1, gamma: 1e-2, bits: 8, rotationSeed: randomBytes(32) };
    const x = new Float32Array(100);
    const { encoded } = encodeUpdate(x, p, { noise: (v) => v.fill(-3) });
    expect([...encoded].every((e) => e === 253)).toBe(true); // zero update rounds to 0; −3 mod 2^8
  });
});

describe('modulus check', () => {
  const base = { clients: 100, dim: 1_663_370, clipNorm: 1, gamma: 1e-3, noiseStddev: 0.1, failureProb: 1e-9 };

  it('accepts a sufficient b and reports the bound', () => {
    const r = checkModulus({ ...base, bits: 20 });
    expect(r.bound).toBeLessThanOrEqual(r.capacity);
    expect(r.minBits).toBeLessThanOrEqual(20);
    expect(() => checkModulus({ ...base, bits: r.minBits })).not.toThrow();
    expect(() => checkModulus({ ...base, bits: r.minBits - 1 })).toThrow(ConfigError);
  });

  it('refuses a too-small b with a message that says what to change', () => {
    let err: unknown;
    try {
      checkModulus({ ...base, bits: 12 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/12 bits cannot hold the sum of 100 clients/);
    expect(msg).toMatch(/bits ≥ \d+/);
    expect(msg).toMatch(/gamma ≥ [0-9.e-]+/);
    const minGamma = Number(/gamma ≥ ([0-9.e-]+)/.exec(msg)![1]);
    expect(() => checkModulus({ ...base, bits: 12, gamma: minGamma * 1.01 })).not.toThrow();
  });

  it('the bound holds empirically: n clients at the clip norm never wrap', () => {
    const n = 30;
    const dim = 1000;
    // The finest gamma the check accepts for 12 bits: the sum sits at the edge of the range.
    const gamma = 1.01 * modulusReport({ clients: n, dim, clipNorm: 1, gamma: 1, bits: 12, noiseStddev: 0, failureProb: 1e-6 }).minGamma;
    const p: EncodingParams = { dim, clipNorm: 1, gamma, bits: 12, rotationSeed: randomBytes(32) };
    const report = checkModulus({ clients: n, dim, clipNorm: 1, gamma: p.gamma, bits: p.bits, noiseStddev: 0, failureProb: 1e-6 });
    // Worst case for the rotation term: all clients send the same direction.
    const x = gaussianVector(dim, 'aligned');
    const acc = new Uint32Array(dim);
    for (let c = 0; c < n; c++) {
      const { encoded } = encodeUpdate(x, p);
      for (let i = 0; i < acc.length; i++) acc[i] += encoded[i];
    }
    const decoded = decodeSum(acc.map((v) => v % 2 ** p.bits), p);
    const scale = 1 / l2Norm(x);
    const err = l2Norm(decoded.map((v, i) => v - n * x[i] * scale));
    expect(err).toBeLessThan(n * p.gamma * Math.sqrt(dim));
    expect(report.bound).toBeLessThanOrEqual(report.capacity);
  });
});

describe('b-bit packing', () => {
  it.each([1, 5, 8, 13, 16, 20, 31, 32])('round trips at %i bits, ⌈d·b/8⌉ bytes', (bits) => {
    const rng = seededRng(`pack-${bits}`);
    for (const count of [0, 1, 7, 1001]) {
      const values = new Uint32Array(count).map(() => rng.nextUint32() % 2 ** bits);
      const packed = packBits(values, bits);
      expect(packed.length).toBe(packedBytes(count, bits));
      expect([...unpackBits(packed, bits, count)]).toEqual([...values]);
      // Unaligned input (as a network buffer slice may be).
      const shifted = new Uint8Array(packed.length + 1);
      shifted.set(packed, 1);
      expect([...unpackBits(shifted.subarray(1), bits, count)]).toEqual([...values]);
    }
  });

  it('addPacked: SIMD and scalar paths agree', () => {
    const rng = seededRng('simd-pack');
    for (const bits of [16, 32]) {
      for (const count of [1, 15, 16_384, 50_001]) {
        const values = new Uint32Array(count).map(() => rng.nextUint32() % 2 ** bits);
        const init = new Uint32Array(count).map(() => rng.nextUint32());
        const packed = packBits(values, bits);
        const a = init.slice();
        const b = init.slice();
        addPacked(a, packed, bits);
        setSimdEnabled(false);
        try {
          addPacked(b, packed, bits);
        } finally {
          setSimdEnabled(true);
        }
        expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
        for (let i = 0; i < count; i += 997) expect(a[i]).toBe((init[i] + values[i]) >>> 0);
      }
    }
  });

  it('addPacked accumulates mod 2^32 and checks the length', () => {
    const acc = new Uint32Array([0xffffffff, 5, 7]);
    addPacked(acc, packBits(new Uint32Array([1, 2, 3]), 13), 13);
    expect([...acc]).toEqual([0, 7, 10]);
    expect(() => addPacked(acc, new Uint8Array(3), 13)).toThrow(RangeError);
  });
});
