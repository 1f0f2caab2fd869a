/**
 * The wasm training kernels (see ../kernels.ts): Conv2D and its two gradients, BatchMatMul, MaxPoolGrad,
 * leading-axis Sum, and the fused SGD + FedProx step.
 */
import * as tf from '@tensorflow/tfjs';
import { type ConvPad, Scratch, Wasm, prod, roundUp4 } from './wasm-heap.ts';
import { type Padded, compact, convFilterGrad, convForward, copyPadded, gemmNN, gemmTN, padImage, transpose } from './primitives.ts';
import { flipFilter, winoConv, winoFilterGrad, winogradFits } from './winograd-conv.ts';

export interface ConvAttrs {
  strides: number | [number, number];
  pad: ConvPad;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export function convInfo(
  xShape: number[],
  filterShape: number[],
  attrs: ConvAttrs,
): tf.backend_util.Conv2DInfo | undefined {
  if (attrs.dataFormat === 'NCHW') return undefined;
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return undefined;
  if (info.strideHeight !== info.strideWidth) return undefined;
  if (prod(info.inShape) === 0 || prod(info.outShape) === 0) return undefined;
  return info;
}

/** Pads x for a convolution: Xp has exactly the rows/columns the output pixels read. */
function padForConv(w: Wasm, s: Scratch, x: number, info: tf.backend_util.Conv2DInfo): Padded {
  const st = info.strideHeight;
  const Hp = (info.outHeight - 1) * st + info.filterHeight;
  const Wp = (info.outWidth - 1) * st + info.filterWidth;
  return padImage(w, s, x, info.batchSize, info.inHeight, info.inWidth, info.inChannels, Hp, Wp, info.padInfo.top, info.padInfo.left);
}

/** A filter [KH·KW·Cin, Cout] with Cout rounded up to 4 columns (copied only when needed). */
function filterRows(w: Wasm, s: Scratch, filt: number, rows: number, cout: number): { ptr: number; co4: number } {
  const co4 = roundUp4(cout);
  if (co4 === cout) return { ptr: filt, co4 };
  const ptr = s.alloc(rows * co4);
  copyPadded(w, filt, cout, rows, cout, ptr, co4);
  return { ptr, co4 };
}

/** Runs `body(out, ldo)` into the output directly when Cout is a multiple of 4, else via scratch. */
function withOutput(w: Wasm, s: Scratch, shape: number[], cout: number, body: (ptr: number, ld: number) => void): tf.TensorInfo {
  const out = w.output(shape);
  const rows = prod(shape) / cout;
  const co4 = roundUp4(cout);
  if (co4 === cout) {
    body(out.ptr, cout);
  } else {
    const tmp = s.alloc(rows * co4);
    body(tmp, co4);
    compact(w, tmp, co4, rows, cout, out.ptr);
  }
  return out.info;
}

/**
 * Conv2D: y = conv(x, F). Winograd F(m×m, r×r) for stride-1 convolutions with a square filter where it
 * pays (see winograd.ts); otherwise the implicit GEMM `convForward`.
 */
export function conv2d(w: Wasm, x: tf.TensorInfo, filter: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const s = new Scratch(w);
  try {
    const { batchSize: B, outHeight: Ho, outWidth: Wo, outChannels: Co, filterHeight: KH, filterWidth: KW, inChannels: Ci } = info;
    if (winogradFits(info, Ci, Co)) {
      const out = w.output(info.outShape);
      winoConv(w, s, w.ptr(x), B, info.inHeight, info.inWidth, Ci, w.ptr(filter), KH, Co, Ho, Wo, info.padInfo.top, info.padInfo.left, out.ptr, true);
      return out.info;
    }
    const xp = padForConv(w, s, w.ptr(x), info);
    const f = filterRows(w, s, w.ptr(filter), KH * KW * Ci, Co);
    return withOutput(w, s, info.outShape, Co, (out, ldo) => convForward(w, s, xp, B, info.strideHeight, KH, KW, f.ptr, f.co4, Ho, Wo, out, ldo));
  } finally {
    s.free();
  }
}

/**
 * Conv2DBackpropInput: dX = conv(dY dilated by the stride and padded, F flipped in space with in/out
 * channels swapped). From out[y] = Σ_k x[y·s + k − p]·F[k]: dX[i] = Σ_k dYd[i + p − k]·F[k], where dYd
 * holds dY[y] at y·s; substituting k' = K−1−k gives a stride-1 correlation of dYd (top padding
 * K−1−p) with F[K−1−k'], with F's [Cin, Cout] matrices transposed to [Cout, Cin].
 */
export function conv2dBackpropInput(w: Wasm, dy: tf.TensorInfo, filter: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const s = new Scratch(w);
  try {
    const { batchSize: B, inHeight: H, inWidth: W, inChannels: Ci, outHeight: Ho, outWidth: Wo, outChannels: Co } = info;
    const { filterHeight: KH, filterWidth: KW, strideHeight: st } = info;
    const ci4 = roundUp4(Ci);
    const flipped = flipFilter(w, s, w.ptr(filter), KH, KW, Ci, Co, ci4);
    if (winogradFits(info, Co, Ci)) {
      const out = w.output([B, H, W, Ci]);
      winoConv(w, s, w.ptr(dy), B, Ho, Wo, Co, flipped, KH, Ci, H, W, KH - 1 - info.padInfo.top, KW - 1 - info.padInfo.left, out.ptr);
      return out.info;
    }
    const dyd = padImage(w, s, w.ptr(dy), B, Ho, Wo, Co, H + KH - 1, W + KW - 1, KH - 1 - info.padInfo.top, KW - 1 - info.padInfo.left, st);
    return withOutput(w, s, [B, H, W, Ci], Ci, (out, ldo) => convForward(w, s, dyd, B, 1, KH, KW, flipped, ci4, H, W, out, ldo));
  } finally {
    s.free();
  }
}

/**
 * Conv2DBackpropFilter: dF[kh, kw, ci, co] = Σ_{b,y,x} X[b, y·s + kh − p, x·s + kw − p, ci]·dY[b, y, x, co]
 * (zero outside X): a correlation of X with dY, i.e. itself a convolution with batch and channels
 * swapped. Computed directly by `convFilterGrad`, or with Winograd F(r×r, m×m) for stride 1.
 */
export function conv2dBackpropFilter(w: Wasm, x: tf.TensorInfo, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const s = new Scratch(w);
  try {
    const { batchSize: B, inChannels: Ci, outHeight: Ho, outWidth: Wo, outChannels: Co, filterHeight: KH, filterWidth: KW } = info;
    if (winogradFits(info, Ci, Co)) {
      const out = w.output(info.filterShape);
      winoFilterGrad(w, s, w.ptr(x), w.ptr(dy), info, out.ptr);
      return out.info;
    }
    const xp = padForConv(w, s, w.ptr(x), info);
    const co4 = roundUp4(Co);
    let dyp = w.ptr(dy);
    if (co4 !== Co) {
      dyp = s.alloc(B * Ho * Wo * co4);
      copyPadded(w, w.ptr(dy), Co, B * Ho * Wo, Co, dyp, co4);
    }
    return withOutput(w, s, info.filterShape, Co, (out, ldo) => convFilterGrad(w, xp, B, info.strideHeight, KH, KW, dyp, co4, co4, Ho, Wo, out, ldo));
  } finally {
    s.free();
  }
}

interface MatMulOperands {
  batch: number;
  aStep: number;
  bStep: number;
  M: number;
  K: number;
  N: number;
}

export function matMulShape(a: tf.TensorInfo, b: tf.TensorInfo, ta: boolean, tb: boolean): MatMulOperands | undefined {
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return undefined;
  const [am, ak] = ta ? [a.shape[ra - 1], a.shape[ra - 2]] : [a.shape[ra - 2], a.shape[ra - 1]];
  const [bk, bn] = tb ? [b.shape[rb - 1], b.shape[rb - 2]] : [b.shape[rb - 2], b.shape[rb - 1]];
  const batchA = prod(a.shape.slice(0, -2));
  const batchB = prod(b.shape.slice(0, -2));
  if (ak !== bk || am * ak * bn === 0) return undefined;
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) return undefined;
  const batch = Math.max(batchA, batchB);
  return { batch, aStep: batchA === 1 ? 0 : am * ak, bStep: batchB === 1 ? 0 : ak * bn, M: am, K: ak, N: bn };
}

/** Broadcast batch dimensions of a matmul, or undefined for broadcasts we do not flatten. */
export function batchDims(a: number[], b: number[]): number[] | undefined {
  const la = a.slice(0, -2);
  const lb = b.slice(0, -2);
  if (la.length === lb.length) {
    const lead = la.map((d, i) => Math.max(d, lb[i]));
    return prod(la) === 1 || prod(lb) === 1 || la.every((d, i) => d === lb[i]) ? lead : undefined;
  }
  const [long, short] = la.length > lb.length ? [la, lb] : [lb, la];
  return prod(short) === 1 ? long : undefined;
}

/**
 * BatchMatMul, for each batch entry C = op(A)·op(B):
 * - A·B: `gemmNN` (B's columns padded to a multiple of 4 through scratch when needed);
 * - Aᵀ·B: `gemmTN`, an outer-product accumulation over the shared rows;
 * - A·Bᵀ: (A·Bᵀ)ᵀ = B·Aᵀ, so with the smaller operand transposed into scratch either C = A·(Bᵀ) or
 *   Cᵀ = B·(Aᵀ) followed by a transpose of C — dense-layer input gradients (dY·Wᵀ with a few rows in
 *   dY) never transpose the weight matrix;
 * - Aᵀ·Bᵀ = (B·A)ᵀ.
 */
export function batchMatMul(w: Wasm, a: tf.TensorInfo, b: tf.TensorInfo, ta: boolean, tb: boolean, outShape: number[], op: MatMulOperands): tf.TensorInfo {
  const s = new Scratch(w);
  try {
    const { batch, aStep, bStep, M, K, N } = op;
    const out = w.output(outShape);
    const n4 = roundUp4(N);
    const m4 = roundUp4(M);
    const cTmp = n4 !== N || (!ta && tb && M * K < N * K) || (ta && tb) ? s.alloc(Math.max(M * n4, N * m4)) : 0;
    const bPad = n4 !== N && !tb ? s.alloc(K * n4) : 0;
    const tmpT = tb ? s.alloc(Math.max(M, N) * K + 4 * K) : 0;
    for (let i = 0; i < batch; i++) {
      const A = w.ptr(a) + i * aStep * 4;
      const B = w.ptr(b) + i * bStep * 4;
      const C = out.ptr + i * M * N * 4;
      if (!tb) {
        let bp = B;
        if (n4 !== N) {
          copyPadded(w, B, N, K, N, bPad, n4);
          bp = bPad;
        }
        const target = n4 !== N ? cTmp : C;
        if (ta) gemmTN(w, A, M, M, K, bp, n4, n4, target, n4);
        else gemmNN(w, s, A, K, M, K, bp, n4, n4, target, n4);
        if (n4 !== N) compact(w, cTmp, n4, M, N, C);
        continue;
      }
      // B is stored [N, K].
      if (!ta && N * K <= M * K) {
        // C = A·(Bᵀ): transpose B into [K, n4].
        w.F.fill(0, tmpT >> 2, (tmpT >> 2) + K * n4);
        transpose(w, B, K, N, K, tmpT, n4);
        const target = n4 !== N ? cTmp : C;
        gemmNN(w, s, A, K, M, K, tmpT, n4, n4, target, n4);
        if (n4 !== N) compact(w, cTmp, n4, M, N, C);
        continue;
      }
      // Cᵀ[N, M] = B[N, K]·op(A)ᵀ with op(A)ᵀ laid out [K, m4]: Aᵀ for plain A, A itself for ta.
      w.F.fill(0, tmpT >> 2, (tmpT >> 2) + K * m4);
      if (ta) copyPadded(w, A, M, K, M, tmpT, m4);
      else transpose(w, A, K, M, K, tmpT, m4);
      gemmNN(w, s, B, K, N, K, tmpT, m4, m4, cTmp, m4);
      transpose(w, cTmp, m4, N, M, C, N);
    }
    return out.info;
  } finally {
    s.free();
  }
}

/**
 * MaxPoolGrad: dX[p] = Σ over windows w whose first maximal input (row-major scan, tfjs's tie rule)
 * is p of dY[w]. SIMD over channels in our module. (The stock wasm kernel disagrees with the cpu
 * reference, e.g. on 3-channel inputs; ours replaces it for every shape.)
 */
export function maxPoolGrad(w: Wasm, dy: tf.TensorInfo, x: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): tf.TensorInfo {
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw, padInfo } = info;
  const out = w.output(x.shape);
  const s = new Scratch(w);
  try {
    // Channels are SIMD lanes: with C not a multiple of 4, work on channel-padded copies.
    const c4 = roundUp4(C);
    const pad = (ptr: number, rows: number): number => {
      if (c4 === C) return ptr;
      const p = s.alloc(rows * c4);
      copyPadded(w, ptr, C, rows, C, p, c4);
      return p;
    };
    const xp = pad(w.ptr(x), B * H * W);
    const dyp = pad(w.ptr(dy), B * Ho * Wo);
    const dx = c4 === C ? out.ptr : s.alloc(B * H * W * c4);
    w.F.fill(0, dx >> 2, (dx >> 2) + B * H * W * c4);
    // 2×2 windows at stride 2 lying inside the image (padding only past the last row/column is fine:
    // no window reaches it) use the fixed-offset kernel.
    if (KH === 2 && KW === 2 && sh === 2 && sw === 2 && padInfo.top === 0 && padInfo.left === 0 && 2 * Ho <= H && 2 * Wo <= W) {
      w.k.maxPoolGrad2x2(dyp, xp, dx, B, H, W, c4, Ho, Wo);
    } else {
      w.k.maxPoolGrad(dyp, xp, dx, B, H, W, c4, Ho, Wo, KH, KW, sh, sw, padInfo.top, padInfo.left);
    }
    if (c4 !== C) compact(w, dx, c4, B * H * W, C, out.ptr);
    return out.info;
  } finally {
    s.free();
  }
}

/**
 * Sum over the leading axes (the bias gradient of a conv or dense layer: Σ over batch and pixels):
 * viewing x as [R, S], out[s] = Σ_r x[r, s], one pass over x. Needs S a multiple of 4.
 */
export function sumLeading(w: Wasm, x: tf.TensorInfo, R: number, S: number, outShape: number[]): tf.TensorInfo {
  const out = w.output(outShape);
  w.F.fill(0, out.ptr >> 2, (out.ptr >> 2) + S);
  w.k.columnSum(w.ptr(x), R, S, out.ptr);
  return out.info;
}

/** For Sum over `axis` of x: [R, S] when the axes are exactly the leading ones, else undefined. */
export function leadingReduction(shape: number[], axis: number | number[]): { R: number; S: number; outShape: number[] } | undefined {
  const rank = shape.length;
  const axes = [...new Set((Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
  if (axes.length === 0 || axes.length >= rank || axes.some((a, i) => a !== i)) return undefined;
  const R = prod(shape.slice(0, axes.length));
  const S = prod(shape.slice(axes.length));
  return S % 4 === 0 && R > 0 ? { R, S, outShape: shape.slice(axes.length) } : undefined;
}

/**
 * `CohortSgdStep`, a kernel of our own (wasm and cpu): one SGD step with the FedProx proximal term
 * (Li et al. 2020), w' = w − lr·(g + μ·(w − w_global)), in one pass instead of five elementwise ops.
 * Same float32 operations in the same order as tfjs's SGD optimizer on the summed gradient, so the
 * result is bitwise identical to the unfused ops. Inputs {w, g, anchor?}; without `anchor`, plain SGD.
 */
export const SGD_STEP = 'CohortSgdStep';

export interface SgdStepAttrs {
  learningRate: number;
  mu: number;
}
