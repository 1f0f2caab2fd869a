/** Cohort's kernels for the tfjs cpu backend (see ../kernels.ts): Conv2DBackpropFilter and CohortSgdStep. */
import * as tf from '@tensorflow/tfjs';
import { type ConvAttrs, SGD_STEP, type SgdStepAttrs } from './wasm-kernels.ts';
import { floats } from './wasm-install.ts';

/** The parts of tfjs-backend-cpu's MathBackendCPU we use. */
interface CpuBackend extends tf.KernelBackend {
  readSync(dataId: object): tf.backend_util.BackendValues;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): tf.TensorInfo;
}

/**
 * Conv2DBackpropFilter for the cpu backend, whose own kernel takes ~20 s per call on the McMahan CNN's
 * second layer. Same identity as on wasm, dF[kh, kw, ci, co] = Σ_{b,y,x} X[b, y·s+kh−p, x·s+kw−p, ci]·dY[b, y, x, co],
 * summed as rank-1 updates in an order that keeps the innermost loop on contiguous rows of dY and
 * dF (Cout values), and skips zero inputs (ReLU outputs are mostly zero). Exported for tests.
 */
export function conv2dBackpropFilterJs(X: Float32Array, D: Float32Array, info: tf.backend_util.Conv2DInfo): Float32Array {
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: Ci, outHeight: Ho, outWidth: Wo, outChannels: Co } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const dF = new Float32Array(KH * KW * Ci * Co);
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < Ho; y++) {
      for (let xo = 0; xo < Wo; xo++) {
        const d0 = ((b * Ho + y) * Wo + xo) * Co;
        for (let kh = 0; kh < KH; kh++) {
          const yy = y * sh + kh - top;
          if (yy < 0 || yy >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const xx = xo * sw + kw - left;
            if (xx < 0 || xx >= W) continue;
            const x0 = ((b * H + yy) * W + xx) * Ci;
            const f0 = (kh * KW + kw) * Ci * Co;
            for (let ci = 0; ci < Ci; ci++) {
              const a = X[x0 + ci];
              if (a === 0) continue;
              const r = f0 + ci * Co;
              for (let co = 0; co < Co; co++) dF[r + co] += a * D[d0 + co];
            }
          }
        }
      }
    }
  }
  return dF;
}

function cpuConv2dBackpropFilter(backend: CpuBackend, x: tf.TensorInfo, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const dF = conv2dBackpropFilterJs(backend.readSync(x.dataId) as Float32Array, backend.readSync(dy.dataId) as Float32Array, info);
  return backend.makeTensorInfo(info.filterShape, 'float32', dF);
}

/** The cpu SGD step: per element, the same float32 roundings as tfjs's cpu Sub, Multiply, Add. */
function cpuSgdStep(backend: CpuBackend, wt: tf.TensorInfo, gt: tf.TensorInfo, at: tf.TensorInfo | undefined, attrs: SgdStepAttrs): tf.TensorInfo {
  const w = backend.readSync(wt.dataId) as Float32Array;
  const g = backend.readSync(gt.dataId) as Float32Array;
  const a = at ? (backend.readSync(at.dataId) as Float32Array) : undefined;
  const f = Math.fround;
  const negLr = f(-attrs.learningRate);
  const mu = f(attrs.mu);
  const out = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const grad = a ? f(g[i] + f(f(w[i] - a[i]) * mu)) : g[i];
    out[i] = f(negLr * grad) + w[i];
  }
  return backend.makeTensorInfo(wt.shape, 'float32', out);
}

let cpuInstalled = false;

/** Registers our Conv2DBackpropFilter on the cpu backend, once per process. */
export function installCpuKernels(): boolean {
  if (cpuInstalled) return true;
  const original = tf.getKernel('Conv2DBackpropFilter', 'cpu');
  if (!original) return false;
  tf.unregisterKernel('Conv2DBackpropFilter', 'cpu');
  tf.registerKernel({
    ...original,
    kernelFunc: (args) => {
      const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
      const attrs = args.attrs as unknown as ConvAttrs & { filterShape: number[] };
      if (attrs.dataFormat === 'NCHW' || !floats(x, dy)) return original.kernelFunc(args);
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        attrs.filterShape as [number, number, number, number],
        attrs.strides,
        1,
        attrs.pad,
        attrs.dimRoundingMode,
        false,
        'channelsLast',
      );
      return cpuConv2dBackpropFilter(args.backend as CpuBackend, x, dy, info);
    },
  });
  tf.registerKernel({
    kernelName: SGD_STEP,
    backendName: 'cpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { w, g, anchor } = inputs as { w: tf.TensorInfo; g: tf.TensorInfo; anchor?: tf.TensorInfo };
      return cpuSgdStep(backend as CpuBackend, w, g, anchor, attrs as unknown as SgdStepAttrs);
    },
  });
  cpuInstalled = true;
  return true;
}

/** Kernels this module registers on the wasm backend. */
export const WASM_KERNELS = ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'BatchMatMul', 'MaxPoolGrad', 'Sum', 'Identity', 'Cast', SGD_STEP] as const;
