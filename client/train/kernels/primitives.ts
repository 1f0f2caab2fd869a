/** Primitives of the wasm kernels (see ../kernels.ts): GEMMs, copies, transposes, padding, implicit-GEMM convolutions. */
import { Scratch, Wasm, eachPanelGroup } from './wasm-heap.ts';

/**
 * C[M, N] = A[M, K] · B[K, N] for row-major A (row stride lda floats), B (row stride ldb, N a multiple
 * of 4 and B readable up to column N), C (row stride ldc).
 */
export function gemmNN(w: Wasm, s: Scratch, a: number, lda: number, M: number, K: number, b: number, ldb: number, N4: number, c: number, ldc: number): void {
  const rows = s.alloc(M);
  const I = w.I;
  for (let i = 0; i < M; i++) I[(rows >> 2) + i] = i * lda * 4;
  // Blocks of KB rows of B: each block (KB contiguous rows) is read from memory once and then serves
  // every panel and row tile from cache; C accumulates across blocks (beta = 1).
  const KB = ldb * K * 4 > GEMM_B_BLOCK_BYTES ? Math.max(16, Math.floor(GEMM_B_BLOCK_BYTES / (ldb * 4))) : K;
  for (let k0 = 0; k0 < K; k0 += KB) {
    const kb = Math.min(KB, K - k0);
    eachPanelGroup(N4, (nrv, col, count) => {
      w.k[`nnDrive${nrv}`](a + k0 * 4, rows, M, b + (k0 * ldb + col) * 4, nrv * 16, ldb * 4, kb, 1, 0, 0, c + col * 4, ldc * 4, count, k0 > 0 ? 1 : 0);
    });
  }
}

/** Size of the row blocks of B in gemmNN: well inside the 1 MiB L2 of the machines we measured. */
const GEMM_B_BLOCK_BYTES = 192 * 1024;

/** C[M, N] = A[P, M]ᵀ · B[P, N] (rows strides lda, ldb; N a multiple of 4). */
export function gemmTN(w: Wasm, a: number, lda: number, M: number, P: number, b: number, ldb: number, N4: number, c: number, ldc: number): void {
  eachPanelGroup(N4, (nrv, col, count) => {
    w.k[`tnDrive${nrv}`](a, M, b + col * 4, nrv * 16, c + col * 4, ldc * 4, count, 1, 1, P, lda * 4, 0, 0, ldb * 4, 0, 0, 0);
  });
}

/** Copies a [rows, cols] block (source row stride lds) into a zeroed [rows, ldd] buffer. */
export function copyPadded(w: Wasm, src: number, lds: number, rows: number, cols: number, dst: number, ldd: number): void {
  const F = w.F;
  const s0 = src >> 2;
  const d0 = dst >> 2;
  F.fill(0, d0, d0 + rows * ldd);
  for (let r = 0; r < rows; r++) F.copyWithin(d0 + r * ldd, s0 + r * lds, s0 + r * lds + cols);
}

/** dst[j, i] = src[i, j] for a [rows, cols] src (row stride lds) into dst with row stride ldd. */
export function transpose(w: Wasm, src: number, lds: number, rows: number, cols: number, dst: number, ldd: number): void {
  const F = w.F;
  const s0 = src >> 2;
  const d0 = dst >> 2;
  const T = 32;
  for (let i0 = 0; i0 < rows; i0 += T) {
    for (let j0 = 0; j0 < cols; j0 += T) {
      const i1 = Math.min(rows, i0 + T);
      const j1 = Math.min(cols, j0 + T);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) F[d0 + j * ldd + i] = F[s0 + i * lds + j];
    }
  }
}

/** Geometry of a zero-padded (and, for input gradients, stride-dilated) copy of an NHWC image. */
export interface Padded {
  ptr: number;
  H: number;
  W: number;
  C: number;
}

/**
 * Copies x [B, H, W, C] into a zeroed [B, Hp, Wp, C] buffer with x[b, y, x] at
 * [top + y·dilate, left + x·dilate]; rows and columns that fall outside are dropped (they are never
 * read by the convolution that follows).
 */
export function padImage(w: Wasm, s: Scratch, x: number, B: number, H: number, W: number, C: number, Hp: number, Wp: number, top: number, left: number, dilate = 1): Padded {
  const ptr = s.alloc(B * Hp * Wp * C, true);
  const F = w.F;
  const x0 = x >> 2;
  const p0 = ptr >> 2;
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < H; y++) {
      const py = top + y * dilate;
      if (py < 0 || py >= Hp) continue;
      const src = x0 + (b * H + y) * W * C;
      const dstRow = p0 + (b * Hp + py) * Wp * C;
      if (dilate === 1) {
        const from = Math.max(0, -left);
        const to = Math.min(W, Wp - left);
        if (to > from) F.copyWithin(dstRow + (left + from) * C, src + from * C, src + to * C);
      } else {
        for (let xx = 0; xx < W; xx++) {
          const px = left + xx * dilate;
          if (px >= 0 && px < Wp) F.copyWithin(dstRow + px * C, src + xx * C, src + (xx + 1) * C);
        }
      }
    }
  }
  return { ptr, H: Hp, W: Wp, C };
}

/**
 * Direct convolution as an implicit GEMM (Dukhan 2019, "The Indirect Convolution Algorithm"):
 *   out[b, y, x, co] = Σ_{kh, kw, ci} Xp[b, y·s + kh, x·s + kw, ci] · F[kh, kw, ci, co]
 * on an already padded input Xp. For a fixed output pixel and kh, the (kw, ci) values it needs are
 * KW·Cin contiguous floats of Xp, and the matching filter rows F[kh, :, :, :] are contiguous too, so
 * each pixel is a GEMM row reached through a pointer: no im2col buffer. `filt` has Co4 (≥ Cout,
 * multiple of 4) columns; `out` has row stride ldo.
 */
export function convForward(w: Wasm, s: Scratch, xp: Padded, B: number, stride: number, KH: number, KW: number, filt: number, Co4: number, Ho: number, Wo: number, out: number, ldo: number): void {
  const P = B * Ho * Wo;
  const rows = s.alloc(P);
  const I = w.I;
  const r0 = rows >> 2;
  const C = xp.C;
  let p = 0;
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < Ho; y++) {
      const rowBase = (b * xp.H + y * stride) * xp.W;
      for (let x = 0; x < Wo; x++) I[r0 + p++] = (rowBase + x * stride) * C * 4;
    }
  }
  const ajump = (xp.W - KW) * C * 4;
  eachPanelGroup(Co4, (nrv, col, count) => {
    w.k[`nnDrive${nrv}`](xp.ptr, rows, P, filt + col * 4, nrv * 16, Co4 * 4, KW * C, KH, ajump, 0, out + col * 4, ldo * 4, count, 0);
  });
}

/**
 * Weight gradient of a convolution, direct:
 *   dF[kh, kw, ci, co] = Σ_{b, y, x} Xp[b, y·s + kh, x·s + kw, ci] · dY[b, y, x, co]
 * For fixed kh this is Aᵀ·dY where row p = (b, y, x) of A is the KW·Cin contiguous floats of Xp at
 * (b, y·s + kh, x·s): an outer-product accumulation over output pixels, with A's rows walked by
 * three nested strides in the microkernel. dY has Co4 columns (row stride ldy).
 */
export function convFilterGrad(w: Wasm, xp: Padded, B: number, stride: number, KH: number, KW: number, dy: number, ldy: number, Co4: number, Ho: number, Wo: number, out: number, ldo: number): void {
  const C = xp.C;
  const acol = stride * C * 4;
  const rowStep = stride * xp.W * C * 4;
  const arowjump = rowStep - Wo * acol;
  const abatchjump = xp.H * xp.W * C * 4 - Ho * rowStep;
  for (let kh = 0; kh < KH; kh++) {
    const a = xp.ptr + kh * xp.W * C * 4;
    const c = out + kh * KW * C * ldo * 4;
    eachPanelGroup(Co4, (nrv, col, count) => {
      w.k[`tnDrive${nrv}`](a, KW * C, dy + col * 4, nrv * 16, c + col * 4, ldo * 4, count, B, Ho, Wo, acol, arowjump, abatchjump, ldy * 4, 0, 0, 0);
    });
  }
}

/** Copies the first `cols` of each row of a [rows, ld] buffer into a dense [rows, cols] one. */
export function compact(w: Wasm, src: number, ld: number, rows: number, cols: number, dst: number): void {
  const F = w.F;
  const s0 = src >> 2;
  const d0 = dst >> 2;
  for (let r = 0; r < rows; r++) F.copyWithin(d0 + r * cols, s0 + r * ld, s0 + r * ld + cols);
}
