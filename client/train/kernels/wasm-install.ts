/** Registration of the wasm kernels over tfjs-backend-wasm's own (see ../kernels.ts). */
import * as tf from '@tensorflow/tfjs';
import { type ConvPad, Wasm, type WasmBackend, prod } from './wasm-heap.ts';
import {
  type ConvAttrs,
  SGD_STEP,
  type SgdStepAttrs,
  batchDims,
  batchMatMul,
  conv2d,
  conv2dBackpropFilter,
  conv2dBackpropInput,
  convInfo,
  leadingReduction,
  matMulShape,
  maxPoolGrad,
  sumLeading,
} from './wasm-kernels.ts';

let installed = false;
let context: Wasm | undefined;

function wasmOf(backend: unknown): Wasm {
  const b = backend as WasmBackend;
  if (!context || context.backend !== b) context = new Wasm(b);
  return context;
}

type AnyAttrs = Record<string, unknown>;

function override(name: string, make: (original: tf.KernelConfig) => tf.KernelFunc): void {
  const original = tf.getKernel(name, 'wasm');
  // Where tfjs-backend-wasm has no such kernel, inputs we do not cover fail as tfjs reports a missing
  // kernel (the trainer turns that message into UNSUPPORTED_ON_BACKEND).
  const missing = (): never => {
    throw new Error(`Kernel '${name}' not registered for backend 'wasm' (Cohort's kernel does not cover these inputs)`);
  };
  const config: tf.KernelConfig = original ?? { kernelName: name, backendName: 'wasm', kernelFunc: missing };
  const kernelFunc = make(config);
  if (original) tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({ kernelName: name, backendName: 'wasm', setupFunc: original?.setupFunc, disposeFunc: original?.disposeFunc, kernelFunc });
}

function shareData(backend: WasmBackend, x: tf.TensorInfo): tf.TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

export function floats(...ts: tf.TensorInfo[]): boolean {
  return ts.every((t) => t.dtype === 'float32');
}

/**
 * Registers our kernels on the wasm backend, once per process. Returns false when the wasm backend
 * is not registered (nothing to do). Kernels whose inputs we do not cover call the original.
 */
export function installWasmKernels(): boolean {
  if (installed) return true;
  if (!tf.getKernel('BatchMatMul', 'wasm')) return false;

  override('Conv2D', (original) => (args) => {
    const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const info = floats(x, filter) ? convInfo(x.shape, filter.shape, args.attrs as unknown as ConvAttrs) : undefined;
    if (!info) return original.kernelFunc(args);
    return conv2d(wasmOf(args.backend), x, filter, info);
  });

  override('Conv2DBackpropInput', (original) => (args) => {
    const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const attrs = args.attrs as unknown as ConvAttrs & { inputShape: number[] };
    const info = floats(dy, filter) ? convInfo(attrs.inputShape, filter.shape, attrs) : undefined;
    if (!info) return original.kernelFunc(args);
    return conv2dBackpropInput(wasmOf(args.backend), dy, filter, info);
  });

  override('Conv2DBackpropFilter', (original) => (args) => {
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const attrs = args.attrs as unknown as ConvAttrs & { filterShape: number[] };
    const info = floats(x, dy) ? convInfo(x.shape, attrs.filterShape, attrs) : undefined;
    if (!info) return original.kernelFunc(args);
    return conv2dBackpropFilter(wasmOf(args.backend), x, dy, info);
  });

  override('BatchMatMul', (original) => (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as AnyAttrs as { transposeA: boolean; transposeB: boolean };
    const op = floats(a, b) ? matMulShape(a, b, transposeA, transposeB) : undefined;
    if (!op) return original.kernelFunc(args);
    const lead = batchDims(a.shape, b.shape);
    if (!lead) return original.kernelFunc(args);
    return batchMatMul(wasmOf(args.backend), a, b, transposeA, transposeB, [...lead, op.M, op.N], op);
  });

  override('MaxPoolGrad', (original) => (args) => {
    const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
    const attrs = args.attrs as unknown as { filterSize: number | [number, number]; strides: number | [number, number]; pad: ConvPad; dimRoundingMode?: 'floor' | 'round' | 'ceil' };
    if (!floats(dy, input) || input.shape.length !== 4 || prod(input.shape) === 0) return original.kernelFunc(args);
    const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
    return maxPoolGrad(wasmOf(args.backend), dy, input, info);
  });

  override('Sum', (original) => (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const plan = x.dtype === 'float32' ? leadingReduction(x.shape, axis) : undefined;
    if (!plan) return original.kernelFunc(args);
    const outShape = keepDims ? [...x.shape.slice(0, x.shape.length - plan.outShape.length).map(() => 1), ...plan.outShape] : plan.outShape;
    return sumLeading(wasmOf(args.backend), x, plan.R, plan.S, outShape);
  });

  // Identity (and a Cast to the same dtype) share the input's data instead of copying it, as the cpu
  // backend does: tensor data is immutable, the backend reference-counts it. Backpropagation passes
  // gradients through Identity dozens of times per step, some of them megabytes.
  override('Identity', () => (args) => shareData(args.backend as WasmBackend, (args.inputs as { x: tf.TensorInfo }).x));
  override('Cast', (original) => (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { dtype } = args.attrs as unknown as { dtype: tf.DataType };
    return x.dtype === dtype && dtype !== 'string' ? shareData(args.backend as WasmBackend, x) : original.kernelFunc(args);
  });

  tf.registerKernel({
    kernelName: SGD_STEP,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { w: wt, g, anchor } = inputs as { w: tf.TensorInfo; g: tf.TensorInfo; anchor?: tf.TensorInfo };
      const { learningRate, mu } = attrs as unknown as SgdStepAttrs;
      const w = wasmOf(backend);
      const out = w.output(wt.shape);
      w.k.sgdStep(w.ptr(wt), w.ptr(g), anchor ? w.ptr(anchor) : 0, out.ptr, prod(wt.shape), -learningRate, mu, anchor ? 1 : 0);
      return out.info;
    },
  });

  installed = true;
  return true;
}
