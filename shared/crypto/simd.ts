/**
 * WebAssembly SIMD kernels for the hot loop of secure aggregation: acc[i] ← acc[i] ± w[i] (mod 2^32)
 * over a slice of an Int32 accumulator, with w little-endian unsigned 16- or 32-bit words (mask
 * keystream, packed inputs). Four lanes per instruction instead of one; V8 runs the scalar JS loop at
 * about one element per 2–5 ns on our CI machines, which made these adds, not the ChaCha20 keystream,
 * the largest cost of masking and unmasking.
 *
 * The module is ~200 bytes, assembled below from the WebAssembly binary format (core spec §5; SIMD
 * opcodes from the fixed-width SIMD proposal, merged in Wasm 2.0): one exported memory (acc slice at
 * byte 0, source words at byte 65536) and four functions (acc, src, n) → (): add32, sub32, add16,
 * sub16 (n elements, rounded up to a multiple of 8 — the memory beyond the slice is scratch).
 * Where WebAssembly SIMD is unavailable, `sliceAccumulator()` returns undefined and callers use their
 * scalar loops; a test checks that both give identical results.
 */

export const SLICE_WORDS = 16384; // 64 KiB of accumulator per slice
const ACC_OFFSET = 0;
const SRC_OFFSET = 65536;
const PAGES = 3;

// ---- assembling the module ------------------------------------------------------------------

const I32 = 0x7f;
const V128 = 0x7b;
const op = {
  block: 0x02,
  loop: 0x03,
  br: 0x0c,
  brIf: 0x0d,
  end: 0x0b,
  localGet: 0x20,
  localSet: 0x21,
  i32Const: 0x41,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32Shl: 0x74,
  simd: 0xfd,
} as const;
// SIMD opcodes (u32 LEB128 after the 0xfd prefix).
const simdOp = {
  v128Load: 0x00,
  v128Store: 0x0b,
  i32x4ExtendLowI16x8U: 0xa9,
  i32x4ExtendHighI16x8U: 0xaa,
  i32x4Add: 0xae,
  i32x4Sub: 0xb1,
} as const;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}
/** Signed LEB128 of a constant in [0, 64): a single byte. */
function sleb(n: number): number[] {
  if (!Number.isInteger(n) || n < 0 || n >= 64) throw new RangeError('sleb: only small constants are used');
  return [n];
}
const simd = (code: number, ...imm: number[]): number[] => [op.simd, ...uleb(code), ...imm];
/** memarg: alignment exponent 0 (no alignment promise), offset. */
const memarg = (offset: number): number[] => [0, ...uleb(offset)];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];

/** Locals: 0 acc pointer, 1 src pointer, 2 n, 3 end pointer (i32), 4 a v128 temporary. */
function loopBody(accStep: number, srcStep: number, elementShift: number, inner: number[]): number[] {
  return [
    // end = acc + (n << 2), n rounded up to a multiple of 8 by the caller
    op.localGet, 0, op.localGet, 2, op.i32Const, ...sleb(elementShift), op.i32Shl, op.i32Add, op.localSet, 3,
    op.block, 0x40,
    op.loop, 0x40,
    op.localGet, 0, op.localGet, 3, op.i32GeU, op.brIf, 1,
    ...inner,
    op.localGet, 0, op.i32Const, ...sleb(accStep), op.i32Add, op.localSet, 0,
    op.localGet, 1, op.i32Const, ...sleb(srcStep), op.i32Add, op.localSet, 1,
    op.br, 0,
    op.end,
    op.end,
  ];
}

function words32(arith: number): number[] {
  // 4 elements: acc[0..4) = acc[0..4) ± src[0..4)
  return loopBody(16, 16, 2, [
    op.localGet, 0,
    op.localGet, 0, ...simd(simdOp.v128Load, ...memarg(0)),
    op.localGet, 1, ...simd(simdOp.v128Load, ...memarg(0)),
    ...simd(arith),
    ...simd(simdOp.v128Store, ...memarg(0)),
  ]);
}

function words16(arith: number): number[] {
  // 8 elements: v = 8 × u16 from src; acc[0..4) ±= zext(low 4), acc[4..8) ±= zext(high 4)
  return loopBody(32, 16, 2, [
    op.localGet, 1, ...simd(simdOp.v128Load, ...memarg(0)), op.localSet, 4,
    op.localGet, 0,
    op.localGet, 0, ...simd(simdOp.v128Load, ...memarg(0)),
    op.localGet, 4, ...simd(simdOp.i32x4ExtendLowI16x8U),
    ...simd(arith),
    ...simd(simdOp.v128Store, ...memarg(0)),
    op.localGet, 0,
    op.localGet, 0, ...simd(simdOp.v128Load, ...memarg(16)),
    op.localGet, 4, ...simd(simdOp.i32x4ExtendHighI16x8U),
    ...simd(arith),
    ...simd(simdOp.v128Store, ...memarg(16)),
  ]);
}

function functionBody(code: number[]): number[] {
  const locals = vec([[1, I32], [1, V128]]);
  const body = [...locals, ...code, op.end];
  return [...uleb(body.length), ...body];
}

export function assembleKernels(): Uint8Array<ArrayBuffer> {
  const funcs = [words32(simdOp.i32x4Add), words32(simdOp.i32x4Sub), words16(simdOp.i32x4Add), words16(simdOp.i32x4Sub)];
  const exports = ['add32', 'sub32', 'add16', 'sub16'];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32]]), 0x00]])), // type 0: (i32 i32 i32) -> ()
    ...section(3, vec(funcs.map(() => [0]))), // every function has type 0
    ...section(5, vec([[0x00, ...uleb(PAGES)]])), // one memory, min PAGES pages, no max
    ...section(7, vec([[...name('mem'), 0x02, 0], ...exports.map((e, i) => [...name(e), 0x00, i])])),
    ...section(10, vec(funcs.map(functionBody))),
  ];
  return new Uint8Array(bytes);
}

// ---- the accumulator ------------------------------------------------------------------------

type Kernel = (acc: number, src: number, n: number) => void;

/** Holds one accumulator slice in wasm memory while sources are added into it. */
export interface SliceAccumulator {
  /** Copies acc[start, start+count) into the kernel's memory (count ≤ SLICE_WORDS). */
  load(acc: Int32Array, start: number, count: number): void;
  /** slice ±= words, `bytes` = count little-endian words of w bytes. */
  add(bytes: Uint8Array, w: 2 | 4, sign: 1 | -1): void;
  /** Copies the slice back to acc[start, start+count). */
  store(acc: Int32Array, start: number, count: number): void;
}

let instance: SliceAccumulator | null | undefined;
let enabled = true;

function instantiate(): SliceAccumulator | null {
  const wasm = (globalThis as { WebAssembly?: typeof WebAssembly }).WebAssembly;
  if (!wasm) return null;
  try {
    const bytes = assembleKernels();
    if (!wasm.validate(bytes)) return null;
    const inst = new wasm.Instance(new wasm.Module(bytes), {});
    const e = inst.exports as { mem: WebAssembly.Memory; add32: Kernel; sub32: Kernel; add16: Kernel; sub16: Kernel };
    const mem8 = new Uint8Array(e.mem.buffer);
    const mem32 = new Int32Array(e.mem.buffer);
    let n = 0;
    return {
      load(acc, start, count) {
        n = (count + 7) & ~7;
        mem32.set(acc.subarray(start, start + count), ACC_OFFSET / 4);
      },
      add(bytes, w, sign) {
        mem8.set(bytes, SRC_OFFSET);
        const f = w === 4 ? (sign === 1 ? e.add32 : e.sub32) : sign === 1 ? e.add16 : e.sub16;
        f(ACC_OFFSET, SRC_OFFSET, n);
      },
      store(acc, start, count) {
        // V8 copies out of wasm memory much faster with slice() than with set(subarray) (≈3×).
        acc.set(mem32.slice(ACC_OFFSET / 4, ACC_OFFSET / 4 + count), start);
      },
    };
  } catch {
    return null;
  }
}

/** The SIMD accumulator, or undefined where WebAssembly SIMD is unavailable (or disabled). */
export function sliceAccumulator(): SliceAccumulator | undefined {
  if (!enabled) return undefined;
  if (instance === undefined) instance = instantiate();
  return instance ?? undefined;
}

/** Turns the SIMD path off or on (tests compare both; benchmarks measure both). */
export function setSimdEnabled(on: boolean): void {
  enabled = on;
}
