/**
 * Winograd minimal-filtering matrices (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural
 * Networks", CVPR; the Toom-Cook construction), for tiles of n inputs.
 *
 * F(m, r) computes m outputs of the correlation y_i = Σ_{k<r} g_k·d_{i+k} from n = m + r − 1 inputs
 * with n multiplications: y = Aᵀ[(G·g) ⊙ (Bᵀ·d)], and in two dimensions
 * Y = Aᵀ[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]A: n² multiplications per m×m output tile instead of m²r². With
 * interpolation points p_0..p_{n−2} and ∞:
 * - Aᵀ (m×n) evaluates at the points: Aᵀ[i][j] = p_jⁱ, and the point at infinity selects the last output;
 * - G (n×r) evaluates g at the points, scaled by 1/Π_{l≠j}(p_j − p_l); the ∞ row selects g's last tap;
 * - Bᵀ (n×n) is then the unique matrix with Σ_j Aᵀ[i][j]·G[j][k]·Bᵀ[j][l] = [l = i + k] for all i, k, l,
 *   which we solve for (in float64; for n = 6 it is the well-known Bᵀ of F(4, 3)). For a fixed point
 *   set Bᵀ depends only on n, so every (m, r) with m + r = n + 1 shares it.
 * Points: n = 6 uses {0, ±1, ±2}, n = 8 adds ±1/2 (the usual low-error choices; float32 errors of both
 * stay within a few 1e-6 of the output's scale, see kernels.test.ts).
 *
 * A convolution layer uses F(m, K) for its output and input gradient (stride 1, K×K filter) and
 * F(K, m) for its filter gradient, where the roles of filter and data swap (the m×m tiles are then
 * tiles of the output gradient).
 */

export const WINO_TILES = [6, 8] as const;
export type WinoTile = (typeof WINO_TILES)[number];

const POINTS: Record<WinoTile, number[]> = {
  6: [0, 1, -1, 2, -2],
  8: [0, 1, -1, 2, -2, 0.5, -0.5],
};

function scales(points: number[]): number[] {
  return points.map((p, j) => 1 / points.reduce((acc, q, l) => (l === j ? acc : acc * (p - q)), 1));
}

/** G (n×r): filter transform of F(n+1−r, r). */
export function winoG(n: WinoTile, r: number): number[][] {
  const points = POINTS[n];
  const s = scales(points);
  return [
    ...points.map((p, j) => Array.from({ length: r }, (_, k) => p ** k * s[j])),
    Array.from({ length: r }, (_, k) => (k === r - 1 ? 1 : 0)),
  ];
}

/** Aᵀ (m×n): output transform of F(m, n+1−m). */
export function winoAT(n: WinoTile, m: number): number[][] {
  return Array.from({ length: m }, (_, i) => [...POINTS[n].map((p) => p ** i), i === m - 1 ? 1 : 0]);
}

/** Solves A·x = y (dense, partial pivoting; small systems only). */
function solve(A: number[][], y: number[]): number[] {
  const n = y.length;
  const M = A.map((row, i) => [...row, y[i]]);
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r][c]) > Math.abs(M[piv][c])) piv = r;
    [M[c], M[piv]] = [M[piv], M[c]];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const t = M[r][c] / M[c][c];
      for (let z = c; z <= n; z++) M[r][z] -= t * M[c][z];
    }
  }
  return M.map((row, i) => row[n] / row[i]);
}

const btCache = new Map<WinoTile, number[][]>();

/**
 * Bᵀ (n×n), solved from the defining identity with F(n−1, 2)'s Aᵀ and G (any split works) by least
 * squares over the m·r equations per column; entries are then snapped to the dyadic rationals they are.
 */
export function winoBT(n: WinoTile): number[][] {
  const cached = btCache.get(n);
  if (cached) return cached;
  const m = n - 1;
  const r = 2;
  const AT = winoAT(n, m);
  const G = winoG(n, r);
  const BT = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let l = 0; l < n; l++) {
    const rows: number[][] = [];
    const rhs: number[] = [];
    for (let i = 0; i < m; i++) {
      for (let k = 0; k < r; k++) {
        rows.push(Array.from({ length: n }, (_, j) => AT[i][j] * G[j][k]));
        rhs.push(l === i + k ? 1 : 0);
      }
    }
    const normal = Array.from({ length: n }, (_, a) => Array.from({ length: n }, (_, b) => rows.reduce((s, row) => s + row[a] * row[b], 0)));
    const y = Array.from({ length: n }, (_, a) => rows.reduce((s, row, q) => s + row[a] * rhs[q], 0));
    solve(normal, y).forEach((x, j) => {
      BT[j][l] = Math.round(x * 1024) / 1024 + 0; // (+ 0 turns −0 into 0)
    });
  }
  btCache.set(n, BT);
  return BT;
}

/** Filter sizes K (square, stride 1) for which we use Winograd. */
export const WINO_SIZES = [3, 4, 5] as const;

/**
 * The tile size that needs the fewest multiplications for an Ho×Wo output (or output gradient) and a
 * K×K filter: n² per tile, ⌈Ho/m⌉·⌈Wo/m⌉ tiles with m = n + 1 − K; ties go to the smaller tile.
 */
export function chooseTile(K: number, Ho: number, Wo: number): WinoTile {
  let best: WinoTile = WINO_TILES[0];
  let bestCost = Infinity;
  for (const n of WINO_TILES) {
    const m = n + 1 - K;
    const cost = n * n * Math.ceil(Ho / m) * Math.ceil(Wo / m);
    if (cost < bestCost) {
      best = n;
      bestCost = cost;
    }
  }
  return best;
}
