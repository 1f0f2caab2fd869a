/** Winograd convolutions of the wasm kernels (see ../kernels.ts and ../winograd.ts). */
import * as tf from '@tensorflow/tfjs';
import { chooseTile, WINO_SIZES, type WinoTile } from '../winograd.ts';
import { Scratch, Wasm, eachPanelGroup } from './wasm-heap.ts';
import { type Padded, padImage, transpose } from './primitives.ts';

// Winograd (see winograd.ts): stride-1 convolutions with a K×K filter, K in WINO_SIZES, use n² GEMMs
// of the transformed tiles (n = 6 or 8, whichever needs fewer multiplications for the image size)
// instead of one K²-times-longer GEMM: F(m, K) with m = n + 1 − K for outputs and input gradients,
// F(K, m) for filter gradients. Channel counts must be multiples of 4 (SIMD over channels in the
// transforms) and at least 8 (below that the transforms cost more than they save).

export function winogradFits(info: tf.backend_util.Conv2DInfo, cin: number, cout: number): boolean {
  const K = info.filterHeight;
  return (
    info.strideHeight === 1 &&
    info.strideWidth === 1 &&
    info.filterWidth === K &&
    (WINO_SIZES as readonly number[]).includes(K) &&
    cin % 4 === 0 &&
    cout % 4 === 0 &&
    cin >= 8 &&
    cout >= 8
  );
}

interface Tiling {
  /** Tile size of the transforms, and n² = number of GEMMs. */
  n: WinoTile;
  XI: number;
  /** Outputs (or output-gradient values) per tile side. */
  m: number;
  TH: number;
  TW: number;
  T: number;
}

/** Tiles of m×m over an Ho×Wo output, m = n + 1 − K, for the cheapest n. */
function tiling(B: number, Ho: number, Wo: number, K: number): Tiling {
  const n = chooseTile(K, Ho, Wo);
  const m = n + 1 - K;
  const TH = Math.ceil(Ho / m);
  const TW = Math.ceil(Wo / m);
  return { n, XI: n * n, m, TH, TW, T: B * TH * TW };
}

/** 1 KiB of scratch for the transforms' intermediate rows (n·max(n, r) vectors). */
function winoTmp(s: Scratch): number {
  return s.alloc(256);
}

/** V[ξ][t][c] = (Bᵀ·d_t·B)[ξ] for the n×n patches d_t of xp at steps of m (tile t = (b, ty, tx)). */
function winoDataTransform(w: Wasm, s: Scratch, xp: Padded, B: number, t: Tiling): number {
  const C = xp.C;
  const V = s.alloc(t.XI * t.T * C);
  const px = C * 4;
  w.k[`winoData${t.n}`](xp.ptr, V, B, t.TH, t.TW, xp.H * xp.W * px, t.m * xp.W * px, t.m * px, t.TH * t.TW * px, t.TW * px, px, C / 4, xp.W * px, px, t.T * px, winoTmp(s));
  return V;
}

/**
 * Forward convolution, stride 1, K×K filter `filt` [K, K, C, Co], by F(m, K): y = conv(x padded by
 * (top, left)) of size [B, Ho, Wo, Co], written to `out`. With `exactZeros`, outputs whose receptive
 * field is entirely zero are set to exactly 0, as a direct convolution gives them (see zeroDeadOutputs).
 */
export function winoConv(w: Wasm, s: Scratch, x: number, B: number, H: number, W: number, C: number, filt: number, K: number, Co: number, Ho: number, Wo: number, top: number, left: number, out: number, exactZeros = false): void {
  const t = tiling(B, Ho, Wo, K);
  const { m, n, XI } = t;
  const xp = padImage(w, s, x, B, H, W, C, (t.TH - 1) * m + n, (t.TW - 1) * m + n, top, left);
  const V = winoDataTransform(w, s, xp, B, t);
  // U[ξ][c][co] = (G·F[:, :, c, co]·Gᵀ)[ξ]
  const U = s.alloc(XI * C * Co);
  w.k[`winoG${n}_${K}`](filt, U, C, 1, 1, Co * 4, 0, 0, Co * 4, 0, 0, Co / 4, K * C * Co * 4, C * Co * 4, C * Co * 4, winoTmp(s));
  // M[ξ] = V[ξ]·U[ξ]: [T, C]·[C, Co]
  const Mw = s.alloc(XI * t.T * Co);
  const rows = s.alloc(t.T);
  const I = w.I;
  for (let i = 0; i < t.T; i++) I[(rows >> 2) + i] = i * C * 4;
  for (let xi = 0; xi < XI; xi++) {
    const a = V + xi * t.T * C * 4;
    const b = U + xi * C * Co * 4;
    const c = Mw + xi * t.T * Co * 4;
    eachPanelGroup(Co, (nrv, col, count) => {
      w.k[`nnDrive${nrv}`](a, rows, t.T, b + col * 4, nrv * 16, Co * 4, C, 1, 0, 0, c + col * 4, Co * 4, count, 0);
    });
  }
  // y tile = Aᵀ·M·A, into `out` directly when the tiles cover it exactly.
  const exact = Ho === t.TH * m && Wo === t.TW * m;
  const Hy = t.TH * m;
  const Wy = t.TW * m;
  const y = exact ? out : s.alloc(B * Hy * Wy * Co);
  const px = Co * 4;
  w.k[`winoA${n}_${m}`](Mw, y, B, t.TH, t.TW, t.TH * t.TW * px, t.TW * px, px, Hy * Wy * px, m * Wy * px, m * px, Co / 4, t.T * px, Wy * px, px, winoTmp(s));
  if (!exact) {
    const F = w.F;
    for (let b = 0; b < B; b++) {
      for (let r = 0; r < Ho; r++) {
        const src = (y >> 2) + ((b * Hy + r) * Wy) * Co;
        F.copyWithin((out >> 2) + ((b * Ho + r) * Wo) * Co, src, src + Wo * Co);
      }
    }
  }
  if (exactZeros) zeroDeadOutputs(w, x, B, H, W, C, K, Co, Ho, Wo, top, left, out);
}

/**
 * Winograd's transforms mix every input of a tile into every output of it, so an output whose own
 * receptive field is all zeros (the background of an MNIST digit, after a ReLU) comes out as ±1e-9
 * rounding noise instead of the exact 0 of a direct convolution. A following ReLU then passes
 * gradient where the direct convolution's blocks it, a difference of O(1) in the gradient, not of
 * rounding. So forward outputs with an all-zero receptive field are set to 0: a summed-area table of
 * "pixel has a non-zero channel" answers each receptive field in O(1).
 */
function zeroDeadOutputs(w: Wasm, x: number, B: number, H: number, W: number, C: number, K: number, Co: number, Ho: number, Wo: number, top: number, left: number, out: number): void {
  const F = w.F;
  const x0 = x >> 2;
  const o0 = out >> 2;
  const sat = new Int32Array((H + 1) * (W + 1));
  for (let b = 0; b < B; b++) {
    for (let r = 0; r < H; r++) {
      let rowSum = 0;
      for (let c = 0; c < W; c++) {
        const p = x0 + ((b * H + r) * W + c) * C;
        let live = 0;
        for (let k = 0; k < C; k++) {
          if (F[p + k] !== 0) {
            live = 1;
            break;
          }
        }
        rowSum += live;
        sat[(r + 1) * (W + 1) + c + 1] = sat[r * (W + 1) + c + 1] + rowSum;
      }
    }
    for (let oy = 0; oy < Ho; oy++) {
      const r0 = Math.max(0, oy - top);
      const r1 = Math.min(H, oy - top + K);
      for (let ox = 0; ox < Wo; ox++) {
        const c0 = Math.max(0, ox - left);
        const c1 = Math.min(W, ox - left + K);
        const live = r1 > r0 && c1 > c0 ? sat[r1 * (W + 1) + c1] - sat[r0 * (W + 1) + c1] - sat[r1 * (W + 1) + c0] + sat[r0 * (W + 1) + c0] : 0;
        if (live === 0) {
          const p = o0 + ((b * Ho + oy) * Wo + ox) * Co;
          F.fill(0, p, p + Co);
        }
      }
    }
  }
}

/**
 * Filter gradient by F(K, m): with m×m tiles of dY, each tile's contribution to dF is a K×K
 * correlation of an n×n patch of the padded input with the dY tile; summed over tiles (and the
 * batch) inside the Winograd domain: Ŵ[ξ] = V[ξ]ᵀ·Ĝ[ξ] ([C, T]·[T, Co]), then dF = Aᵀ·Ŵ·A.
 */
export function winoFilterGrad(w: Wasm, s: Scratch, x: number, dy: number, info: tf.backend_util.Conv2DInfo, out: number): void {
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo, outChannels: Co, filterHeight: K } = info;
  const t = tiling(B, Ho, Wo, K);
  const { m, n, XI } = t;
  const xp = padImage(w, s, x, B, H, W, C, (t.TH - 1) * m + n, (t.TW - 1) * m + n, info.padInfo.top, info.padInfo.left);
  const V = winoDataTransform(w, s, xp, B, t);
  const Hd = t.TH * m;
  const Wd = t.TW * m;
  const dyp = Hd === Ho && Wd === Wo ? dy : padImage(w, s, dy, B, Ho, Wo, Co, Hd, Wd, 0, 0).ptr;
  const px = Co * 4;
  const Gh = s.alloc(XI * t.T * Co);
  w.k[`winoG${n}_${m}`](dyp, Gh, B, t.TH, t.TW, Hd * Wd * px, m * Wd * px, m * px, t.TH * t.TW * px, t.TW * px, px, Co / 4, Wd * px, px, t.T * px, winoTmp(s));
  const What = s.alloc(XI * C * Co);
  for (let xi = 0; xi < XI; xi++) {
    const a = V + xi * t.T * C * 4;
    const b = Gh + xi * t.T * px;
    const c = What + xi * C * px;
    eachPanelGroup(Co, (nrv, col, count) => {
      w.k[`tnDrive${nrv}`](a, C, b + col * 4, nrv * 16, c + col * 4, px, count, 1, 1, t.T, C * 4, 0, 0, px, 0, 0, 0);
    });
  }
  w.k[`winoA${n}_${K}`](What, out, C, 1, 1, px, 0, 0, px, 0, 0, Co / 4, C * px, K * C * px, C * px, winoTmp(s));
}

/** F'[kh, kw, co, ci] = F[K−1−kh, K−1−kw, ci, co]: the filter of the input-gradient convolution. */
export function flipFilter(w: Wasm, s: Scratch, filt: number, KH: number, KW: number, Ci: number, Co: number, ci4: number): number {
  const flipped = s.alloc(KH * KW * Co * ci4, ci4 !== Ci);
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const src = filt + ((KH - 1 - kh) * KW + (KW - 1 - kw)) * Ci * Co * 4;
      transpose(w, src, Co, Ci, Co, flipped + (kh * KW + kw) * Co * ci4 * 4, ci4);
    }
  }
  return flipped;
}
