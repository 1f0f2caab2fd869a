/**
 * The server's running sum of a SecAgg round: Σ masked inputs, then minus the masks, mod 2^b, in one
 * d-long accumulator (O(d) memory whatever the cohort size).
 *
 * For b = 16 and b = 32 — packed inputs are then plain little-endian 16/32-bit words and mask words
 * have the same width (prg.ts, maskWordBytes) — the accumulator lives in the memory of its own
 * instance of the WebAssembly SIMD kernels of crypto/simd.ts, grown to hold all d words. Each input
 * chunk and keystream chunk is then copied once into the kernel's scratch area and added in place:
 * no per-slice copy of the accumulator in and out of wasm memory, and no 64 KiB allocation per slice,
 * which is what `addPacked` / `addMasks` on a JS Uint32Array cost (about half the server's
 * input-collection time with n = 100, d = 1.66M). Masks are still applied chunk-major (every stream
 * over one 64 KiB slice of the accumulator before the next), so the slice stays in cache.
 * Other b, no WebAssembly SIMD, or a d too large for wasm32 memory: a plain Uint32Array with
 * encoding.ts's `addPacked` and prg.ts's `addMasks` (identical results, checked by the tests).
 */
import { addMasks, maskWordBytes, reduceModPow2, type MaskTerm, type PrgImpl } from '../crypto/prg.ts';
import { assembleKernels, SLICE_WORDS, sliceAccumulator } from '../crypto/simd.ts';
import { addPacked, packedBytes } from './encoding.ts';

type Kernel = (acc: number, src: number, n: number) => void;
interface Kernels {
  mem: WebAssembly.Memory;
  add32: Kernel;
  sub32: Kernel;
  add16: Kernel;
  sub16: Kernel;
}

const PAGE = 65536;
/** Scratch for one source chunk (≤ 64 KiB) plus the kernels' round-up to 8 elements. */
const SRC = 0;
const ACC = 2 * PAGE;

export class SumAccumulator {
  readonly dim: number;
  readonly bits: number;
  private wasm?: { k: Kernels; mem8: Uint8Array; w: 2 | 4 };
  private plain?: Uint32Array;
  private finished = false;

  constructor(dim: number, bits: number) {
    if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`accumulator: bad dim ${dim}`);
    maskWordBytes(bits); // validates bits
    this.dim = dim;
    this.bits = bits;
    if (bits === 16 || bits === 32) this.wasm = instantiate(dim, bits === 16 ? 2 : 4);
    if (!this.wasm) this.plain = new Uint32Array(dim);
  }

  /** Whether the WebAssembly accumulator is in use (tests, benchmarks). */
  get inWasm(): boolean {
    return this.wasm !== undefined;
  }

  /** acc += the b-bit packed vector `packed` (⌈d·b/8⌉ bytes, encoding.ts packBits). */
  addPacked(packed: Uint8Array): void {
    this.check();
    const want = packedBytes(this.dim, this.bits);
    if (packed.length !== want) throw new RangeError(`accumulator: ${packed.length} bytes, expected ${want}`);
    if (!this.wasm) return addPacked(this.plain!, packed, this.bits);
    const { k, mem8, w } = this.wasm;
    const add = w === 4 ? k.add32 : k.add16;
    for (let start = 0; start < this.dim; start += SLICE_WORDS) {
      const count = Math.min(SLICE_WORDS, this.dim - start);
      mem8.set(packed.subarray(start * w, (start + count) * w), SRC);
      add(ACC + 4 * start, SRC, (count + 7) & ~7);
    }
  }

  /** acc += Σ sign · PRG(seed) over `terms`, chunk-major (prg.ts addMasks, same result). */
  addMasks(terms: readonly MaskTerm[], impl: PrgImpl): void {
    this.check();
    if (!this.wasm) return addMasks(this.plain!, terms, this.bits, impl);
    const { k, mem8, w } = this.wasm;
    const readers = terms.map((t) => impl.open(t.seed));
    const add = w === 4 ? k.add32 : k.add16;
    const sub = w === 4 ? k.sub32 : k.sub16;
    for (let start = 0; start < this.dim; start += SLICE_WORDS) {
      const count = Math.min(SLICE_WORDS, this.dim - start);
      const n = (count + 7) & ~7;
      for (let m = 0; m < terms.length; m++) {
        mem8.set(readers[m].read(count * w), SRC);
        (terms[m].sign === 1 ? add : sub)(ACC + 4 * start, SRC, n);
      }
    }
  }

  /** The sum mod 2^bits (a fresh array); the accumulator is spent afterwards. */
  finish(): Uint32Array {
    this.check();
    this.finished = true;
    let out: Uint32Array;
    if (this.wasm) {
      // Words beyond dim (up to the kernels' multiple of 8) are scratch and not part of the sum.
      out = new Uint32Array(this.wasm.k.mem.buffer, ACC, this.dim).slice();
      this.wasm = undefined;
    } else {
      out = this.plain!;
      this.plain = undefined;
    }
    reduceModPow2(out, this.bits);
    return out;
  }

  private check(): void {
    if (this.finished) throw new Error('accumulator: already finished');
  }
}

/** A private instance of the SIMD kernels with room for d words, or undefined if unavailable. */
function instantiate(dim: number, w: 2 | 4): { k: Kernels; mem8: Uint8Array; w: 2 | 4 } | undefined {
  // sliceAccumulator() is undefined where WebAssembly SIMD is missing or disabled (simd.ts).
  if (!sliceAccumulator()) return undefined;
  const bytes = ACC + 4 * ((dim + 7) & ~7);
  if (bytes > 2 ** 31) return undefined;
  try {
    const inst = new WebAssembly.Instance(new WebAssembly.Module(assembleKernels()), {});
    const k = inst.exports as unknown as Kernels;
    const have = k.mem.buffer.byteLength;
    if (bytes > have) k.mem.grow(Math.ceil((bytes - have) / PAGE));
    // A fresh, grown wasm memory is zero-filled: the accumulator starts at 0.
    return { k, mem8: new Uint8Array(k.mem.buffer), w };
  } catch {
    return undefined;
  }
}
