/**
 * WebAssembly kernels for the client's encoding (encoding.ts): the randomized Hadamard rotation and
 * the randomized rounding of a d-dimensional update, the two O(d log d) and O(d) loops that dominated
 * a client's SecAgg cost in scalar JavaScript (~100 ms for the 1,663,370-parameter CNN).
 *
 * The module is generated at start-up by our assembler (shared/wasm/asm.ts) and runs on its own
 * memory, laid out per call for d values (d rounded up to a multiple of 4):
 *   X  f64[d]   the vector being rotated           at 0
 *   R  i32[d]   the f32 input, then the rounded    at 8d      (the input is dead once widened into X)
 *   U  u32[d]   uniform words for the rounding     at 12d
 *   S  u8[…]    the rotation's sign bits           at 16d
 *
 * Every kernel performs the same IEEE-754 operations, in the same order per element, as the scalar
 * code in encoding.ts (the transform's butterflies are vectorised across independent positions j,
 * never reassociated), so both paths give bit-identical rotations and — for the same uniform words —
 * identical roundings; tests check it. Where WebAssembly SIMD is unavailable, `encodeKernel()` returns
 * undefined and encoding.ts runs its scalar code.
 */
import {
  F64,
  Func,
  I32,
  instantiateOwnMemory,
  V128,
  add,
  and,
  dMul,
  f64ConvertF32,
  f64Load,
  f64Store,
  f32Load,
  forUp,
  get,
  i32,
  i32Load8U,
  ltS,
  ltU,
  mul,
  select,
  set,
  shl,
  shrU,
  v,
  whileLoop,
  type Code,
} from '../wasm/asm.ts';

const F = v.f64x2;

/** dst[i] ← f64(src[i]) · (sign bit (first + i) ? −s : s), src f32. */
function signedWiden(): Func {
  const fn = new Func('signedWiden', [I32, I32, I32, I32, I32, F64]);
  const [dst, src, n, bits, first, s] = [0, 1, 2, 3, 4, 5];
  const i = fn.local(I32);
  const k = fn.local(I32);
  fn.body = forUp(i, i32(0), get(n), [
    set(k, add(get(first), get(i))),
    f64Store(
      add(get(dst), shl(get(i), i32(3))),
      dMul(
        f64ConvertF32(f32Load(add(get(src), shl(get(i), i32(2))))),
        select([get(s), 0x9a], get(s), and(shrU(i32Load8U(add(get(bits), shrU(get(k), i32(3)))), and(get(k), i32(7))), i32(1))),
      ),
    ),
  ]);
  return fn;
}

/** dst[i] ← f64(src[i]) · s, src f32. */
function widen(): Func {
  const fn = new Func('widen', [I32, I32, I32, F64]);
  const [dst, src, n, s] = [0, 1, 2, 3];
  const i = fn.local(I32);
  fn.body = forUp(i, i32(0), get(n), f64Store(add(get(dst), shl(get(i), i32(3))), dMul(f64ConvertF32(f32Load(add(get(src), shl(get(i), i32(2))))), get(s))));
  return fn;
}

/** x[i] ← x[i] · (sign bit (first + i) ? −s : s), in place. */
function signs(): Func {
  const fn = new Func('signs', [I32, I32, I32, I32, F64]);
  const [x, n, bits, first, s] = [0, 1, 2, 3, 4];
  const i = fn.local(I32);
  const k = fn.local(I32);
  const p = fn.local(I32);
  fn.body = forUp(i, i32(0), get(n), [
    set(k, add(get(first), get(i))),
    set(p, add(get(x), shl(get(i), i32(3)))),
    f64Store(
      get(p),
      dMul(
        f64Load(get(p)),
        select([get(s), 0x9a], get(s), and(shrU(i32Load8U(add(get(bits), shrU(get(k), i32(3)))), and(get(k), i32(7))), i32(1))),
      ),
    ),
  ]);
  return fn;
}

// Vector sign application: y = (x·s) XOR (sign bit → bit 63). IEEE-754 multiplication takes the sign
// as the XOR of the operands' signs and the magnitude from |x|·|s|, so this is bit for bit x·(±s), the
// scalar code's expression. Eight elements per sign byte; byte-aligned sign positions only.
const BIT_OF_LANE = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
const SIGN_BIT64 = [0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x80];

/** 8n elements: dst[i] ← x_i · (sign bit ? −s : s) with x_i = f64(src f32[i]) (`fromF32`) or dst[i] in place. */
function signs8(name: string, fromF32: boolean): Func {
  const fn = new Func(name, [I32, I32, I32, I32, F64]);
  const [dst, src, groups, bits, s] = [0, 1, 2, 3, 4];
  const [g, pd, ps, pb] = fn.locals32(4);
  const [m, sv, lanes, signBits] = Array.from({ length: 4 }, () => fn.local(V128));
  const pair: Code[] = [];
  for (let q = 0; q < 4; q++) {
    const x = fromF32 ? F.promoteLowF32(v.load64Zero(get(ps), 8 * q)) : v.load(get(pd), 16 * q);
    const mask = v.shuffle(get(m), get(m), [...new Array(8).fill(2 * q), ...new Array(8).fill(2 * q + 1)]);
    pair.push(v.store(get(pd), v.xor(F.mul(x, get(sv)), v.and(mask, get(signBits))), 16 * q));
  }
  fn.body = [
    set(sv, F.splat(get(s))),
    set(lanes, v.bytes(BIT_OF_LANE)),
    set(signBits, v.bytes(SIGN_BIT64)),
    set(pd, get(dst)),
    set(ps, get(src)),
    set(pb, get(bits)),
    forUp(g, i32(0), get(groups), [
      set(m, v.i8x16Eq(v.and(v.i8x16Splat(i32Load8U(get(pb))), get(lanes)), get(lanes))),
      pair,
      set(pd, add(get(pd), i32(64))),
      set(ps, add(get(ps), i32(32))),
      set(pb, add(get(pb), i32(1))),
    ]),
  ];
  return fn;
}

/** Σ x_i² over f32 x[0, n) (n even) with two accumulators, even and odd i — the order of l2Norm (shared/dp/clip.ts). */
function sumSquares(): Func {
  const fn = new Func('sumSquares', [I32, I32], [F64]);
  const [src, n] = [0, 1];
  const [p, end] = fn.locals32(2);
  const [acc, x] = [fn.local(V128), fn.local(V128)];
  fn.body = [
    set(acc, F.const(0)),
    set(p, get(src)),
    set(end, add(get(src), shl(get(n), i32(2)))),
    whileLoop(ltU(get(p), get(end)), [
      set(x, F.promoteLowF32(v.load64Zero(get(p)))),
      set(acc, F.add(get(acc), F.mul(get(x), get(x)))),
      set(p, add(get(p), i32(8))),
    ]),
    [F.lane(get(acc), 0), F.lane(get(acc), 1), 0xa0],
  ];
  return fn;
}

/** Levels 1 and 2 of the transform as 4-point transforms on consecutive elements of x[0, n). */
function fwht4(): Func {
  const fn = new Func('fwht4', [I32, I32]);
  const [x, n] = [0, 1];
  const [p, end] = fn.locals32(2);
  const [a, b, c, d, s0, d0, s1, d1] = Array.from({ length: 8 }, () => fn.local(F64));
  const dAdd = (l: Code, r: Code): Code => [l, r, 0xa0];
  const dSub = (l: Code, r: Code): Code => [l, r, 0xa1];
  fn.body = [
    set(p, get(x)),
    set(end, add(get(x), shl(get(n), i32(3)))),
    whileLoop(ltU(get(p), get(end)), [
      set(a, f64Load(get(p))),
      set(b, f64Load(get(p), 8)),
      set(c, f64Load(get(p), 16)),
      set(d, f64Load(get(p), 24)),
      set(s0, dAdd(get(a), get(b))),
      set(d0, dSub(get(a), get(b))),
      set(s1, dAdd(get(c), get(d))),
      set(d1, dSub(get(c), get(d))),
      f64Store(get(p), dAdd(get(s0), get(s1))),
      f64Store(get(p), dAdd(get(d0), get(d1)), 8),
      f64Store(get(p), dSub(get(s0), get(s1)), 16),
      f64Store(get(p), dSub(get(d0), get(d1)), 24),
      set(p, add(get(p), i32(32))),
    ]),
  ];
  return fn;
}

/**
 * Levels h0, 2·h0, … (< hEnd) over x[lo, hi) (element indices; h0 ≥ 2 and even): radix-4 passes
 * while two levels fit, then radix-2 — encoding.ts's fwhtLevels, two positions j per instruction.
 */
function levels(): Func {
  const fn = new Func('levels', [I32, I32, I32, I32, I32]);
  const [x, lo, hi, h0, hEnd] = [0, 1, 2, 3, 4];
  const [h, hb, i, p, pEnd] = fn.locals32(5);
  const [a, b, c, d, s0, d0, s1, d1] = Array.from({ length: 8 }, () => fn.local(V128));
  const at = (k: number): Code => (k === 0 ? get(p) : add(get(p), k === 1 ? get(hb) : mul(get(hb), i32(k))));
  const radix4 = [
    set(a, v.load(at(0))),
    set(b, v.load(at(1))),
    set(c, v.load(at(2))),
    set(d, v.load(at(3))),
    set(s0, F.add(get(a), get(b))),
    set(d0, F.sub(get(a), get(b))),
    set(s1, F.add(get(c), get(d))),
    set(d1, F.sub(get(c), get(d))),
    v.store(at(0), F.add(get(s0), get(s1))),
    v.store(at(1), F.add(get(d0), get(d1))),
    v.store(at(2), F.sub(get(s0), get(s1))),
    v.store(at(3), F.sub(get(d0), get(d1))),
  ];
  const radix2 = [
    set(a, v.load(at(0))),
    set(b, v.load(at(1))),
    v.store(at(0), F.add(get(a), get(b))),
    v.store(at(1), F.sub(get(a), get(b))),
  ];
  const pass = (radix: number, body: Code): Code => [
    set(hb, shl(get(h), i32(3))),
    set(i, get(lo)),
    whileLoop(ltS(get(i), get(hi)), [
      set(p, add(get(x), shl(get(i), i32(3)))),
      set(pEnd, add(get(p), get(hb))),
      whileLoop(ltU(get(p), get(pEnd)), [body, set(p, add(get(p), i32(16)))]),
      set(i, add(get(i), mul(get(h), i32(radix)))),
    ]),
  ];
  fn.body = [
    set(h, get(h0)),
    whileLoop(ltS(mul(get(h), i32(4)), add(get(hEnd), i32(1))), [pass(4, radix4), set(h, mul(get(h), i32(4)))]),
    whileLoop(ltS(get(h), get(hEnd)), [pass(2, radix2), set(h, mul(get(h), i32(2)))]),
  ];
  return fn;
}

/**
 * Randomized rounding of x[0, n) (n even): out[i] ← ⌊x⌋ + [u_i < (x − ⌊x⌋)·2^32] as i32; returns
 * Σ out[i]² (as f64, from the rounded doubles, so a value beyond the i32 range still shows in it).
 */
function roundKernel(): Func {
  const fn = new Func('round', [I32, I32, I32, I32], [F64]);
  const [x, u, out, n] = [0, 1, 2, 3];
  const [p, end, q, o] = fn.locals32(4);
  const [acc, fl, xv, r] = Array.from({ length: 4 }, () => fn.local(V128));
  fn.body = [
    set(acc, F.const(0)),
    set(p, get(x)),
    set(q, get(u)),
    set(o, get(out)),
    set(end, add(get(x), shl(get(n), i32(3)))),
    whileLoop(ltU(get(p), get(end)), [
      set(xv, v.load(get(p))),
      set(fl, F.floor(get(xv))),
      set(
        r,
        F.add(
          get(fl),
          v.and(F.lt(F.convertLowU32(v.load64Zero(get(q))), F.mul(F.sub(get(xv), get(fl)), F.const(4294967296))), F.const(1)),
        ),
      ),
      set(acc, F.add(get(acc), F.mul(get(r), get(r)))),
      v.store64Lane0(get(o), F.truncSatI32Zero(get(r))),
      set(p, add(get(p), i32(16))),
      set(q, add(get(q), i32(8))),
      set(o, add(get(o), i32(8))),
    ]),
    [F.lane(get(acc), 0), F.lane(get(acc), 1), 0xa0],
  ];
  return fn;
}

/** w[i] ← w[i] & mask for i < n (n a multiple of 4). */
function maskWords(): Func {
  const fn = new Func('maskWords', [I32, I32, I32]);
  const [w, n, mask] = [0, 1, 2];
  const [p, end] = fn.locals32(2);
  const m = fn.local(V128);
  fn.body = [
    set(m, v.i32x4Splat(get(mask))),
    set(p, get(w)),
    set(end, add(get(w), shl(get(n), i32(2)))),
    whileLoop(ltU(get(p), get(end)), [v.store(get(p), v.and(v.load(get(p)), get(m))), set(p, add(get(p), i32(16)))]),
  ];
  return fn;
}

interface Exports {
  signedWiden(dst: number, src: number, n: number, bits: number, first: number, s: number): void;
  widen(dst: number, src: number, n: number, s: number): void;
  signs(x: number, n: number, bits: number, first: number, s: number): void;
  fwht4(x: number, n: number): void;
  levels(x: number, lo: number, hi: number, h0: number, hEnd: number): void;
  round(x: number, u: number, out: number, n: number): number;
  maskWords(w: number, n: number, mask: number): void;
  widenSigns8(dst: number, src: number, groups: number, bits: number, s: number): void;
  signs8(x: number, unused: number, groups: number, bits: number, s: number): void;
  sumSquares(src: number, n: number): number;
}

/**
 * Levels of the transform with span below this run block by block while the block (32 KiB) is in
 * cache — here and in encoding.ts's scalar fwht, which must share it to give the same results.
 */
export const FWHT_CACHE_BLOCK = 4096;
const PAGE = 65536;

/** The kernels with their memory, sized for one d at a time. */
export class EncodeKernel {
  constructor(
    private readonly fns: Exports,
    private readonly memory: WebAssembly.Memory,
  ) {}

  /** Lays the memory out for d values and `signBytes` sign bytes; returns the region offsets. */
  layout(dim: number, signBytes: number): { x: number; r: number; u: number; s: number; padded: number } {
    const padded = Math.ceil(dim / 4) * 4;
    const need = 16 * padded + signBytes;
    if (need > this.memory.buffer.byteLength) this.memory.grow(Math.ceil((need - this.memory.buffer.byteLength) / PAGE));
    return { x: 0, r: 8 * padded, u: 12 * padded, s: 16 * padded, padded };
  }

  get buffer(): ArrayBuffer {
    return this.memory.buffer;
  }

  get exports(): Exports {
    return this.fns;
  }

  /** In-place transform of n = 2^m doubles at byte offset `x` (n ≥ 4), same order of operations as encoding.ts's fwht. */
  fwht(x: number, n: number): void {
    const block = Math.min(n, FWHT_CACHE_BLOCK);
    for (let base = 0; base < n; base += block) {
      this.fns.fwht4(x + 8 * base, block);
      this.fns.levels(x, base, base + block, 4, block);
    }
    this.fns.levels(x, 0, n, block, n);
  }

  /** dst[i] ← f64(src f32[i]) · (sign bit (first + i) ? −s : s) for i < n (eight at a time from a byte-aligned `first`). */
  widenSigned(dst: number, src: number, n: number, bits: number, first: number, s: number): void {
    const n8 = first % 8 === 0 ? n - (n % 8) : 0;
    if (n8 > 0) this.fns.widenSigns8(dst, src, n8 / 8, bits + first / 8, s);
    if (n8 < n) this.fns.signedWiden(dst + 8 * n8, src + 4 * n8, n - n8, bits, first + n8, s);
  }

  /** x[i] ← x[i] · (sign bit (first + i) ? −s : s) for i < n, in place. */
  applySigns(x: number, n: number, bits: number, first: number, s: number): void {
    const n8 = first % 8 === 0 ? n - (n % 8) : 0;
    if (n8 > 0) this.fns.signs8(x, 0, n8 / 8, bits + first / 8, s);
    if (n8 < n) this.fns.signs(x + 8 * n8, n - n8, bits, first + n8, s);
  }
}

let cached: EncodeKernel | null | undefined;

/** The kernels, or undefined where WebAssembly SIMD is unavailable (or COHORT_SECAGG_WASM=0). */
export function encodeKernel(): EncodeKernel | undefined {
  if (cached === undefined) {
    const funcs = [signedWiden(), widen(), signs(), fwht4(), levels(), roundKernel(), maskWords(), signs8('widenSigns8', true), signs8('signs8', false), sumSquares()];
    const built = instantiateOwnMemory<Exports>(funcs, { disableEnv: 'COHORT_SECAGG_WASM' });
    cached = built ? new EncodeKernel(built.exports, built.memory) : null;
  }
  return cached ?? undefined;
}
