/**
 * A speed fix for the wasm backend's matrix multiply.
 *
 * tfjs-backend-wasm 4.22 runs BatchMatMul through XNNPACK only when neither operand is transposed;
 * with `transposeA`/`transposeB` it falls back to a naive loop that is 5–10× slower. Backpropagation
 * through a dense layer needs exactly those products (dW = xᵀ·dy, dx = dy·Wᵀ), so they dominate a
 * training step. We re-register the wasm BatchMatMul kernel with a wrapper that materialises the
 * transposes with the backend's own Transpose kernel and calls the original kernel untransposed.
 * Same arithmetic, different memory layout; only the wasm backend is touched.
 */
import * as tf from '@tensorflow/tfjs';

let installed = false;

interface MatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

/** Installs the wrapper once per process; a no-op if the wasm kernels are not registered. */
export function installWasmMatMulFix(): boolean {
  if (installed) return true;
  const original = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!original || !transpose) return false;

  const swapLastTwo = (x: tf.TensorInfo, backend: tf.KernelBackend): tf.TensorInfo => {
    const rank = x.shape.length;
    const perm = [...Array(rank - 2).keys(), rank - 1, rank - 2];
    return transpose.kernelFunc({ inputs: { x }, backend, attrs: { perm } }) as tf.TensorInfo;
  };

  const kernelFunc: tf.KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
    const backend = anyBackend as tf.KernelBackend;
    const { transposeA, transposeB } = attrs as unknown as MatMulAttrs;
    if (!transposeA && !transposeB) return original.kernelFunc({ inputs, backend, attrs });
    const temps: tf.TensorInfo[] = [];
    const plain = (t: tf.TensorInfo, swap: boolean): tf.TensorInfo => {
      if (!swap) return t;
      const swapped = swapLastTwo(t, backend);
      temps.push(swapped);
      return swapped;
    };
    try {
      const a = plain(inputs.a as tf.TensorInfo, transposeA);
      const b = plain(inputs.b as tf.TensorInfo, transposeB);
      return original.kernelFunc({ inputs: { a, b }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };

  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({ ...original, kernelFunc });
  installed = true;
  return true;
}
