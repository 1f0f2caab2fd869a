/**
 * Our WebAssembly SIMD module: the compute loops behind the training kernels in `kernels.ts`,
 * generated at start-up with our assembler (`shared/wasm/asm.ts`) and instantiated on the tfjs wasm backend's
 * own memory, so they read and write tensors where tfjs keeps them. (Node 20 runs wasm SIMD natively;
 * tfjs-backend-wasm itself loads its SIMD, non-threaded build in Node.)
 *
 * Two register-blocked matrix-multiply microkernels (the GotoBLAS/BLIS scheme: Goto & van de Geijn
 * 2008, "Anatomy of High-Performance Matrix Multiplication"; Van Zee & van de Geijn 2015, "BLIS"),
 * each keeping an MR × (4·NRV) tile of C in v128 registers:
 * - `nn`: C[i, :] (+)= Σ_k A_i[k] · B[k, :]. Row i of A is reached through its own pointer, so the
 *   same kernel serves a plain matrix product (rows at a fixed stride) and a convolution (row i is
 *   output pixel i's receptive field, read straight from the padded input: an "implicit im2col",
 *   as in XNNPACK's indirect GEMM; Dukhan 2019, "The Indirect Convolution Algorithm"). The reduction
 *   runs `kn` times over `jn` contiguous values, with a pointer jump in between (the receptive field
 *   is KH runs of KW·Cin contiguous floats).
 * - `tn`: C (+)= Σ_p A[p, i]ᵀ · B[p, :], an outer-product accumulation over rows p of A and B; it
 *   serves weight gradients (dW = Xᵀ·dY), with p walking (batch, row, column) of an image through
 *   three nested strided loops.
 * Drivers (`nnDrive*`, `tnDrive*`) tile M and the column panels of N in wasm, so a whole product is
 * one call from JS. N is handled in panels of 4·NRV columns; callers round N up (see kernels.ts).
 *
 * Also: the Winograd transforms (`winoData{n}`, `winoG{n}_{r}`, `winoA{n}_{m}`, straight-line code
 * generated from the matrices of winograd.ts), max-pooling gradients, column sums (bias gradients) and
 * the fused SGD + FedProx step. All SIMD loops run over 4 adjacent floats (channels, columns).
 */
import {
  F32, Func, I32, ModuleBuilder, V128, add, and, call, countDown, divS, eq, forUp, get, gtS, i32, i32Load, if_, inc, ltS, mul, remS,
  set, sub, v, fAdd, fMul, fSub, f32Load, f32Store, type Code,
} from '../../shared/wasm/asm.ts';
import { WINO_TILES, winoAT, winoBT, winoG } from './winograd.ts';

/** Rows of the `nn` tile; `nn` kernels exist for every height 1..NN_MR. */
export const NN_MR = 4;
/** Rows of the `tn` tile. */
export const TN_MR = 4;

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** acc (+)= splat · b for each column vector. */
const fma = (acc: number, s: Code, b: Code): Code => set(acc, v.add(get(acc), v.mul(s, b)));

function nnKernel(mr: number, nrv: number): Func {
  // (a_0..a_{mr-1}, b, bstep, jn, kn, ajump, bjump, c, ldc, beta)
  const f = new Func(`nn${mr}x${nrv}`, Func.i32s(mr + 9));
  const a = range(mr);
  const [b, bstep, jn, kn, ajump, bjump, c, ldc, beta] = range(9).map((k) => mr + k);
  const acc = a.map(() => range(nrv).map(() => f.local(V128)));
  const bv = range(nrv).map(() => f.local(V128));
  const s = f.local(V128);
  const [j, k, cp] = f.locals32(3);
  const rowsOfC = (per: (row: number[], i: number) => Code): Code => [
    set(cp, get(c)),
    acc.map((row, i) => [per(row, i), inc(cp, get(ldc))]),
  ];
  f.body = [
    if_(
      get(beta),
      rowsOfC((row) => row.map((r, q) => set(r, v.load(get(cp), 16 * q)))),
      acc.flat().map((r) => set(r, v.zero())),
    ),
    set(k, get(kn)),
    countDown(k, [
      set(j, get(jn)),
      countDown(j, [
        bv.map((r, q) => set(r, v.load(get(b), 16 * q))),
        a.map((ai, i) => [set(s, v.splatLoad(get(ai))), acc[i].map((r, q) => fma(r, get(s), get(bv[q])))]),
        a.map((ai) => inc(ai, i32(4))),
        inc(b, get(bstep)),
      ]),
      a.map((ai) => inc(ai, get(ajump))),
      inc(b, get(bjump)),
    ]),
    rowsOfC((row) => row.map((r, q) => v.store(get(cp), get(r), 16 * q))),
  ];
  return f;
}

function tnKernel(mr: number, nrv: number): Func {
  // (a, b, c, ldc, nb, nr, nc, acol, arowjump, abatchjump, bstep, browjump, bbatchjump, beta, npanels, panelStride)
  // Computes `npanels` adjacent column panels of one MR-row strip of C (one call per strip: the
  // reductions can be short, as in dense-layer weight gradients over a batch of 10 rows).
  const f = new Func(`tn${mr}x${nrv}`, Func.i32s(16));
  const [a0, b0, c0, ldc, nb, nr, nc, acol, arowjump, abatchjump, bstep, browjump, bbatchjump, beta, npanels, panelStride] = range(16);
  const acc = range(mr).map(() => range(nrv).map(() => f.local(V128)));
  const bv = range(nrv).map(() => f.local(V128));
  const s = f.local(V128);
  const [a, b, c, q, ib, ir, ic, cp] = f.locals32(8);
  const rowsOfC = (per: (row: number[]) => Code): Code => [set(cp, get(c)), acc.map((row) => [per(row), inc(cp, get(ldc))])];
  f.body = [
    set(c, get(c0)),
    set(q, get(npanels)),
    countDown(q, [
      set(a, get(a0)),
      set(b, add(get(b0), mul(sub(get(npanels), get(q)), get(panelStride)))),
      if_(
        get(beta),
        rowsOfC((row) => row.map((r, k) => set(r, v.load(get(cp), 16 * k)))),
        acc.flat().map((r) => set(r, v.zero())),
      ),
      set(ib, get(nb)),
      countDown(ib, [
        set(ir, get(nr)),
        countDown(ir, [
          set(ic, get(nc)),
          countDown(ic, [
            bv.map((r, k) => set(r, v.load(get(b), 16 * k))),
            acc.map((row, i) => [set(s, v.splatLoad(get(a), 4 * i)), row.map((r, k) => fma(r, get(s), get(bv[k])))]),
            inc(a, get(acol)),
            inc(b, get(bstep)),
          ]),
          inc(a, get(arowjump)),
          inc(b, get(browjump)),
        ]),
        inc(a, get(abatchjump)),
        inc(b, get(bbatchjump)),
      ]),
      rowsOfC((row) => row.map((r, k) => v.store(get(cp), get(r), 16 * k))),
      inc(c, i32(16 * nrv)),
    ]),
  ];
  return f;
}

function nnDriver(m: ModuleBuilder, nrv: number): Func {
  // (A, rowoff, M, B, panelStride, bstep, jn, kn, ajump, bjump, C, ldc, npanels, beta)
  const f = new Func(`nnDrive${nrv}`, Func.i32s(14));
  const [A, rowoff, M, B, panelStride, bstep, jn, kn, ajump, bjump, C, ldc, npanels, beta] = range(14);
  const [p0, rows, q, bq, cq] = f.locals32(5);
  const a = f.locals32(NN_MR);
  const kernels = range(NN_MR).map((i) => m.index(`nn${i + 1}x${nrv}`));
  const dispatch = (h: number): Code => {
    const args = [...a.slice(0, h).map(get), get(bq), get(bstep), get(jn), get(kn), get(ajump), get(bjump), get(cq), get(ldc), get(beta)];
    const callIt = call(kernels[h - 1], ...args);
    return h === 1 ? callIt : if_(eq(get(rows), i32(h)), callIt, dispatch(h - 1));
  };
  // Panels outer, rows inner: one panel of B (K × 4·NRV floats) stays in cache while every row tile
  // streams past it, so B is read from memory once however many rows A has.
  f.body = forUp(q, i32(0), get(npanels), [
    set(bq, add(get(B), mul(get(q), get(panelStride)))),
    forUp(
      p0,
      i32(0),
      get(M),
      [
        set(rows, sub(get(M), get(p0))),
        if_(gtS(get(rows), i32(NN_MR)), set(rows, i32(NN_MR))),
        a.map((ai, i) => if_(ltS(i32(i), get(rows)), set(ai, add(get(A), i32Load(add(get(rowoff), mul(add(get(p0), i32(i)), i32(4)))))))),
        set(cq, add(add(get(C), mul(get(p0), get(ldc))), mul(get(q), i32(16 * nrv)))),
        dispatch(NN_MR),
      ],
      i32(NN_MR),
    ),
  ]);
  return f;
}

function tnDriver(m: ModuleBuilder, nrv: number): Func {
  // (A, M, B, panelStride, C, ldc, npanels, nb, nr, nc, acol, arowjump, abatchjump, bstep, browjump, bbatchjump, beta)
  const f = new Func(`tnDrive${nrv}`, Func.i32s(17));
  const [A, M, B, panelStride, C, ldc, npanels, nb, nr, nc, acol, arowjump, abatchjump, bstep, browjump, bbatchjump, beta] = range(17);
  const [m0, rows] = f.locals32(2);
  const kernels = range(TN_MR).map((i) => m.index(`tn${i + 1}x${nrv}`));
  const dispatch = (h: number): Code => {
    const args = [
      add(get(A), mul(get(m0), i32(4))),
      get(B),
      add(get(C), mul(get(m0), get(ldc))),
      ...[ldc, nb, nr, nc, acol, arowjump, abatchjump, bstep, browjump, bbatchjump, beta, npanels, panelStride].map(get),
    ];
    const callIt = call(kernels[h - 1], ...args);
    return h === 1 ? callIt : if_(eq(get(rows), i32(h)), callIt, dispatch(h - 1));
  };
  f.body = forUp(
    m0,
    i32(0),
    get(M),
    [set(rows, sub(get(M), get(m0))), if_(gtS(get(rows), i32(TN_MR)), set(rows, i32(TN_MR))), dispatch(TN_MR)],
    i32(TN_MR),
  );
  return f;
}

/**
 * Max-pooling gradient, SIMD over channels (C a multiple of 4): each output pixel's gradient goes to
 * the first maximal input of its window in row-major order (tfjs's convention), added into dx, so
 * overlapping windows accumulate. dx must be zeroed by the caller.
 */
function maxPoolGrad(): Func {
  // (dy, x, dx, B, H, W, C, Ho, Wo, KH, KW, sh, sw, padTop, padLeft)
  const f = new Func('maxPoolGrad', Func.i32s(15));
  const [dy, x, dx, B, H, W, C, Ho, Wo, KH, KW, sh, sw, padTop, padLeft] = range(15);
  const [b, yo, xo, h, w, hs, he, ws, we, g, co, cb, addr, imgBase] = f.locals32(14);
  const [m, found, val, e, gv] = range(5).map(() => f.local(V128));
  const pixel = (hh: number, ww: number): Code => add(get(imgBase), mul(add(mul(get(hh), get(W)), get(ww)), get(cb)));
  const window = (body: Code): Code => forUp(h, get(hs), get(he), forUp(w, get(ws), get(we), [set(addr, add(pixel(h, w), get(co))), body]));
  const clampLow = (l: number, from: Code): Code => [set(l, from), if_(ltS(get(l), i32(0)), set(l, i32(0)))];
  const clampHigh = (l: number, to: Code, limit: number): Code => [set(l, to), if_(gtS(get(l), get(limit)), set(l, get(limit)))];
  f.body = [
    set(cb, mul(get(C), i32(4))),
    set(g, get(dy)),
    forUp(b, i32(0), get(B), [
      set(imgBase, mul(mul(mul(get(b), get(H)), get(W)), get(cb))),
      forUp(yo, i32(0), get(Ho), [
        clampLow(hs, sub(mul(get(yo), get(sh)), get(padTop))),
        clampHigh(he, add(sub(mul(get(yo), get(sh)), get(padTop)), get(KH)), H),
        forUp(xo, i32(0), get(Wo), [
          clampLow(ws, sub(mul(get(xo), get(sw)), get(padLeft))),
          clampHigh(we, add(sub(mul(get(xo), get(sw)), get(padLeft)), get(KW)), W),
          forUp(co, i32(0), get(cb), [
            set(m, v.f32x4(-Infinity)),
            window(set(m, v.max(get(m), v.load(add(get(x), get(addr)))))),
            set(found, v.zero()),
            set(gv, v.load(add(get(g), get(co)))),
            window([
              set(val, v.load(add(get(x), get(addr)))),
              set(e, v.andNot(v.eq(get(val), get(m)), get(found))),
              set(found, v.or(get(found), get(e))),
              v.store(add(get(dx), get(addr)), v.add(v.load(add(get(dx), get(addr))), v.and(get(gv), get(e)))),
            ]),
          ], i32(16)),
          inc(g, get(cb)),
        ]),
      ]),
    ]),
  ];
  return f;
}

/**
 * The same for 2×2 windows with stride 2 and no padding (every input in at most one window): the
 * four window positions are fixed offsets, and dx is written, not accumulated.
 */
function maxPoolGrad2x2(): Func {
  // (dy, x, dx, B, H, W, C, Ho, Wo)
  const f = new Func('maxPoolGrad2x2', Func.i32s(9));
  const [dy, x, dx, B, H, W, C, Ho, Wo] = range(9);
  const [row, xo, co, cb, rowBytes, base, end, g] = f.locals32(8);
  const [m, found, e, gv] = range(4).map(() => f.local(V128));
  const vals = range(4).map(() => f.local(V128));
  const offsets = (k: number): Code => [i32(0), get(cb), get(rowBytes), add(get(rowBytes), get(cb))][k];
  f.body = [
    set(cb, mul(get(C), i32(4))),
    set(rowBytes, mul(get(W), get(cb))),
    set(g, get(dy)),
    // (b, yo) pairs flattened: window rows 2·yo, 2·yo+1 of image b start at ((b·H) + 2·yo)·W·C.
    forUp(row, i32(0), mul(get(B), get(Ho)), [
      set(base, mul(add(mul(divS(get(row), get(Ho)), get(H)), mul(remS(get(row), get(Ho)), i32(2))), get(rowBytes))),
      forUp(xo, i32(0), get(Wo), [
        set(end, add(get(base), get(cb))),
        forUp(co, get(base), get(end), [
          vals.map((r, k) => set(r, v.load(add(add(get(x), get(co)), offsets(k))))),
          set(m, v.max(v.max(get(vals[0]), get(vals[1])), v.max(get(vals[2]), get(vals[3])))),
          set(gv, v.load(get(g))),
          set(found, v.zero()),
          vals.map((r, k) => [
            set(e, v.andNot(v.eq(get(r), get(m)), get(found))),
            k < 3 ? set(found, v.or(get(found), get(e))) : [],
            v.store(add(add(get(dx), get(co)), offsets(k)), v.and(get(gv), get(e))),
          ]),
          inc(g, i32(16)),
        ], i32(16)),
        inc(base, mul(get(cb), i32(2))),
      ]),
    ]),
  ];
  return f;
}

/**
 * One SGD step with the FedProx term, fused: out = (−lr)·(g + μ·(w − w₀)) + w, or (−lr)·g + w without
 * the term. The float32 operations and their order are exactly those of tfjs's SGD optimizer applied
 * to g + μ·(w − w₀), so results are bit-for-bit the same as the unfused ops.
 */
function sgdStep(): Func {
  // (w, g, anchor, out, n, negLr: f32, mu: f32, prox)
  const f = new Func('sgdStep', [I32, I32, I32, I32, I32, F32, F32, I32]);
  const [w, g, a, out, n, negLr, mu, prox] = range(8);
  const [i, end4, end] = f.locals32(3);
  const [vl, vm] = [f.local(V128), f.local(V128)];
  const vecStep = (withProx: boolean): Code => {
    const grad = withProx ? v.add(v.load(add(get(g), get(i))), v.mul(v.sub(v.load(add(get(w), get(i))), v.load(add(get(a), get(i)))), get(vm))) : v.load(add(get(g), get(i)));
    return v.store(add(get(out), get(i)), v.add(v.mul(get(vl), grad), v.load(add(get(w), get(i)))));
  };
  const scalarStep = (withProx: boolean): Code => {
    const grad = withProx ? fAdd(f32Load(add(get(g), get(i))), fMul(fSub(f32Load(add(get(w), get(i))), f32Load(add(get(a), get(i)))), get(mu))) : f32Load(add(get(g), get(i)));
    return f32Store(add(get(out), get(i)), fAdd(fMul(get(negLr), grad), f32Load(add(get(w), get(i)))));
  };
  const loops = (withProx: boolean): Code => [
    forUp(i, i32(0), get(end4), vecStep(withProx), i32(16)),
    forUp(i, get(end4), get(end), scalarStep(withProx), i32(4)),
  ];
  f.body = [
    set(end, mul(get(n), i32(4))),
    set(end4, mul(and(get(n), i32(-4)), i32(4))),
    set(vl, v.splat(get(negLr))),
    set(vm, v.splat(get(mu))),
    if_(get(prox), loops(true), loops(false)),
  ];
  return f;
}

/** dst[s] += Σ_r src[r, s] for a row-major [R, S] matrix (S a multiple of 4). */
function columnSum(): Func {
  // (src, R, S, dst)
  const f = new Func('columnSum', Func.i32s(4));
  const [src, R, S, dst] = range(4);
  const [r, c, sb] = f.locals32(3);
  f.body = [
    set(sb, mul(get(S), i32(4))),
    forUp(r, i32(0), get(R), [
      forUp(c, i32(0), get(sb), v.store(add(get(dst), get(c)), v.add(v.load(add(get(dst), get(c))), v.load(add(get(src), get(c))))), i32(16)),
      inc(src, get(sb)),
    ]),
  ];
  return f;
}

/** Σ_k coef_k · x_k as straight-line SIMD code, skipping zeros and multiplications by ±1. */
function linear(terms: [number, Code][]): Code {
  const live = terms.filter(([c]) => c !== 0).sort((a, b) => Number(b[0] > 0) - Number(a[0] > 0));
  if (live.length === 0) return v.zero();
  const [[c0, x0], ...rest] = live;
  let acc: Code = c0 === 1 ? x0 : v.mul(x0, v.f32x4(c0));
  for (const [c, x] of rest) {
    const mag = Math.abs(c);
    const term = mag === 1 ? x : v.mul(x, v.f32x4(mag));
    acc = c > 0 ? v.add(acc, term) : v.sub(acc, term);
  }
  return acc;
}

/**
 * Shared skeleton of the Winograd transforms: three nested tile loops (strides s1..s3 into src and
 * d1..d3 into dst, in bytes) and, innermost, `nc` vectors of 4 channels (16 bytes apart on both sides).
 * Params: (src, dst, n1, n2, n3, s1, s2, s3, d1, d2, d3, nc, x, y, z, tmp) where x, y, z are the
 * transform's own strides and tmp is 1 KiB of scratch; `body` gets the tile's source and destination
 * addresses as locals.
 */
function tileTransform(fnName: string, body: (f: Func, sb: number, db: number, x: number, y: number, z: number, tmp: number) => Code): Func {
  const f = new Func(fnName, Func.i32s(16));
  const [src, dst, n1, n2, n3, s1, s2, s3, d1, d2, d3, nc, x, y, z, tmp] = range(16);
  const [i1, i2, i3, c, sb, db] = f.locals32(6);
  const inner = body(f, sb, db, x, y, z, tmp);
  f.body = forUp(i1, i32(0), get(n1), forUp(i2, i32(0), get(n2), forUp(i3, i32(0), get(n3), [
    set(sb, add(add(add(get(src), mul(get(i1), get(s1))), mul(get(i2), get(s2))), mul(get(i3), get(s3)))),
    set(db, add(add(add(get(dst), mul(get(i1), get(d1))), mul(get(i2), get(d2))), mul(get(i3), get(d3)))),
    forUp(c, i32(0), get(nc), [inner, inc(sb, i32(16)), inc(db, i32(16))]),
  ])));
  return f;
}

/**
 * Both transforms are two one-dimensional passes, P·X·Qᵀ = P·(X·Qᵀ): the first pass transforms each
 * column of X (loaded straight from its source) and parks the intermediate rows in `tmp` (L1), the
 * second transforms each intermediate row. At most ~n vectors are live at a time; computing the n² (or
 * n·r) intermediates at once would spill most of them to the stack.
 */

/**
 * Into the Winograd domain: out = L·g·Lᵀ (n×n) for an r×r block g read at sb + i·rowStride + j·colStride,
 * written as n² vectors at db + ξ·xiStride. L (n×r) = Bᵀ (data tiles, r = n) or G (filters; or
 * output-gradient tiles in the filter gradient).
 */
function toWino(fnName: string, L: readonly number[][]): Func {
  const n = L.length;
  const r = L[0].length;
  return tileTransform(fnName, (f, sb, db, rowStride, colStride, xiStride, tmp) => {
    const g = range(r).map(() => f.local(V128));
    const row = range(r).map(() => f.local(I32));
    const [col, po] = f.locals32(2);
    // Pass 1, per column j of g: t[a][j] = Σ_i L[a][i]·g[i][j] → tmp[a·r + j].
    const pass1 = range(r).map((j) => [
      g.map((x, i) => set(x, v.load(add(get(row[i]), get(col))))),
      range(n).map((a) => v.store(get(tmp), linear(range(r).map((i) => [L[a][i], get(g[i])])), (a * r + j) * 16)),
      inc(col, get(colStride)),
    ]);
    // Pass 2, per row a of t: out[a][b] = Σ_j t[a][j]·L[b][j].
    const pass2 = range(n).map((a) => [
      g.map((x, j) => set(x, v.load(get(tmp), (a * r + j) * 16))),
      range(n).map((b) => [v.store(get(po), linear(range(r).map((j) => [L[b][j], get(g[j])]))), inc(po, get(xiStride))]),
    ]);
    return [
      row.map((x, i) => set(x, add(get(sb), mul(i32(i), get(rowStride))))),
      set(col, i32(0)),
      pass1,
      set(po, get(db)),
      pass2,
    ];
  });
}

/** Out of the Winograd domain: Y = Aᵀ·M·A (m×m) from n² vectors at sb + ξ·xiStride. */
function fromWino(fnName: string, AT: readonly number[][]): Func {
  const m = AT.length;
  const n = AT[0].length;
  return tileTransform(fnName, (f, sb, db, xiStride, rowStride, colStride, tmp) => {
    const x = range(n).map(() => f.local(V128));
    const [pi, col, po] = f.locals32(3);
    // Pass 1, per column b of M: t[i][b] = Σ_a Aᵀ[i][a]·M[a][b] → tmp[i·n + b].
    const pass1 = range(n).map((b) => [
      set(pi, get(col)),
      x.map((r) => [set(r, v.load(get(pi))), inc(pi, mul(i32(n), get(xiStride)))]),
      range(m).map((i) => v.store(get(tmp), linear(range(n).map((a) => [AT[i][a], get(x[a])])), (i * n + b) * 16)),
      inc(col, get(xiStride)),
    ]);
    // Pass 2, per row i of t: Y[i][j] = Σ_b t[i][b]·Aᵀ[j][b].
    const pass2 = range(m).map((i) => [
      x.map((r, b) => set(r, v.load(get(tmp), (i * n + b) * 16))),
      set(po, add(get(db), mul(i32(i), get(rowStride)))),
      range(m).map((j) => [v.store(get(po), linear(range(n).map((b) => [AT[j][b], get(x[b])]))), inc(po, get(colStride))]),
    ]);
    return [set(col, get(sb)), pass1, pass2];
  });
}

/** Exported functions of the module, all taking byte addresses into the shared memory. */
export interface SimdExports {
  nnDrive1(...args: number[]): void;
  nnDrive2(...args: number[]): void;
  tnDrive1(...args: number[]): void;
  tnDrive2(...args: number[]): void;
  [name: string]: (...args: number[]) => unknown;
}

/** Builds the module's binary (deterministic; a few kilobytes). */
export function buildSimdModule(): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder();
  for (const nrv of [1, 2]) {
    for (let h = 1; h <= NN_MR; h++) m.add(nnKernel(h, nrv));
    for (let h = 1; h <= TN_MR; h++) m.add(tnKernel(h, nrv));
  }
  for (const nrv of [1, 2]) {
    m.add(nnDriver(m, nrv));
    m.add(tnDriver(m, nrv));
  }
  // Winograd transforms for every split m + r = n + 1 with 2 ≤ m, r ≤ n − 1 of each tile size n:
  // winoData{n}, winoG{n}_{r}, winoA{n}_{m}.
  for (const n of WINO_TILES) {
    m.add(toWino(`winoData${n}`, winoBT(n)));
    for (let r = 2; r < n; r++) {
      m.add(toWino(`winoG${n}_${r}`, winoG(n, r)));
      m.add(fromWino(`winoA${n}_${r}`, winoAT(n, r)));
    }
  }
  m.add(maxPoolGrad());
  m.add(maxPoolGrad2x2());
  m.add(columnSum());
  m.add(sgdStep());
  return m.encode();
}

/** Instantiates the module on `memory` (the tfjs wasm backend's heap). */
export function instantiateSimd(memory: WebAssembly.Memory): SimdExports {
  const module = new WebAssembly.Module(buildSimdModule());
  return new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as SimdExports;
}
