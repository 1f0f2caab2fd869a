/**
 * Our SIMD module bound to a tfjs-backend-wasm heap: the backend's internals we use, tensor pointers,
 * outputs and scratch buffers on that heap, and small shape helpers (see ../kernels.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { instantiateSimd, type SimdExports } from '../wasm-simd.ts';

/** The parts of tfjs-backend-wasm's BackendWasm we use (it does not export these types). */
export interface WasmBackend extends tf.KernelBackend {
  wasm: {
    _malloc(bytes: number): number;
    _free(ptr: number): void;
    asm: { memory: WebAssembly.Memory };
  };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  incRef(dataId: object): void;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

export type ConvPad = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;

/** Our module bound to one backend's memory, plus scratch allocation on that heap. */
export class Wasm {
  readonly k: SimdExports;
  private readonly memory: WebAssembly.Memory;
  private f32?: Float32Array;
  private i32?: Int32Array;

  constructor(readonly backend: WasmBackend) {
    this.memory = backend.wasm.asm.memory;
    this.k = instantiateSimd(this.memory);
  }

  /** Float32 view of the heap (renewed after the heap grew). */
  get F(): Float32Array {
    if (!this.f32 || this.f32.buffer !== this.memory.buffer) this.f32 = new Float32Array(this.memory.buffer);
    return this.f32;
  }

  get I(): Int32Array {
    if (!this.i32 || this.i32.buffer !== this.memory.buffer) this.i32 = new Int32Array(this.memory.buffer);
    return this.i32;
  }

  ptr(t: tf.TensorInfo): number {
    const data = this.backend.dataIdMap.get(t.dataId);
    if (!data) throw new Error('wasm kernels: tensor data not on the wasm backend');
    return data.memoryOffset;
  }

  output(shape: number[]): { info: tf.TensorInfo; ptr: number } {
    const info = this.backend.makeOutput(shape, 'float32');
    return { info, ptr: this.ptr(info) };
  }
}

/** Scratch buffers on the wasm heap, freed together. Sizes in floats; 16 bytes of slack each. */
export class Scratch {
  private readonly ptrs: number[] = [];
  constructor(private readonly w: Wasm) {}

  alloc(floats: number, zero = false): number {
    const ptr = this.w.backend.wasm._malloc(floats * 4 + 16);
    if (ptr === 0) throw new Error('wasm kernels: out of memory');
    this.ptrs.push(ptr);
    if (zero) this.w.F.fill(0, ptr >> 2, (ptr >> 2) + floats);
    return ptr;
  }

  free(): void {
    for (const p of this.ptrs) this.w.backend.wasm._free(p);
    this.ptrs.length = 0;
  }
}

export const roundUp4 = (n: number): number => (n + 3) & ~3;
export const prod = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/**
 * Column panels for N (a multiple of 4): panels of 8 columns (NRV = 2), then one of 4 if needed.
 * Calls `run(nrv, firstColumn, panelCount)`.
 */
export function eachPanelGroup(n4: number, run: (nrv: 1 | 2, col: number, count: number) => void): void {
  const wide = n4 >> 3;
  if (wide > 0) run(2, 0, wide);
  if (n4 & 4) run(1, wide * 8, 1);
}
