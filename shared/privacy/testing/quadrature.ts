/**
 * Test support only (imported by *.test.ts, never by production code): the Rényi divergences of the
 * Poisson-subsampled Gaussian computed by numerical integration of the densities, independently of the
 * series in ../rdp.ts (no binomial series, no erfc, nothing imported from the accountant).
 *
 * With μ0 = N(0, σ²), μ1 = N(1, σ²) and μ = (1 − q)μ0 + qμ1 (Mironov, Talwar, Zhang 2019,
 * arXiv:1908.10530, §3), the two directions of the add-or-remove relation are
 *   A_α = E_{x~μ0}[(μ(x)/μ0(x))^α]   (D_α(μ ‖ μ0) = log A_α / (α − 1))
 *   B_α = E_{x~μ} [(μ0(x)/μ(x))^α]   (D_α(μ0 ‖ μ) = log B_α / (α − 1)).
 * Both are 1 + (something small) for small q, so we integrate that something directly, with an integrand
 * that is a sum of non-negative terms (no cancellation anywhere):
 *   A_α − 1 = ∫ μ0 · h(u),  u = μ/μ0 − 1 = q·(e^{(2x−1)/(2σ²)} − 1),
 *   B_α − 1 = ∫ μ  · h(v),  v = μ0/μ − 1 = −u/(1 + u),
 *   h(w) = (1 + w)^α − 1 − αw ≥ 0,
 * which holds because E_{μ0}[u] = 0 and E_μ[v] = 0. Writing β = α − 1 and ℓ = log(1 + w),
 *   h(w) = β·[(1 + w)ℓ − w] + (1 + w)·[e^{βℓ} − 1 − βℓ],
 * both brackets ≥ 0 (convexity), each evaluated by its Taylor series near 0 and directly elsewhere, and the
 * whole integrand is carried in log space (so α = 1024 does not overflow).
 *
 * The integral is taken by global adaptive Gauss–Kronrod (7–15 points; Kronrod 1965, nodes as in QUADPACK,
 * Piessens et al. 1983) on a finite range [lo, hi] split at the points where the integrand's mass sits
 * (0, ½, 1, 2, α, the crossing z0 where qμ1 = (1 − q)μ0, the maximiser, and a few σ either side); the
 * error estimate is Σ |K15 − G7| over the panels (pessimistic for these smooth integrands) plus explicit
 * bounds on both tails outside [lo, hi]:
 *   A, x < lo ≤ 0: u ∈ (−q, 0), h(u) ≤ h(−q), so the tail ≤ h(−q)·Φ(lo/σ);
 *   A, x > hi ≥ max(α, z0): h(u) ≤ (1 + u)^α and 1 + u = 1 − q + q·e^{(2x−1)/(2σ²)} ≤ 2q·e^{(2x−1)/(2σ²)}
 *     past z0, so the tail ≤ (2q)^α·e^{(α²−α)/(2σ²)}·Φ̄((hi − α)/σ);
 *   B, x < lo: v ∈ (0, q/(1−q)), μ ≤ μ0, tail ≤ h(q/(1−q))·Φ(lo/σ);
 *   B, x > hi ≥ 1: v ∈ (−1, 0), h(v) ≤ h(−1) = α − 1 and μ ≤ μ1, tail ≤ (α − 1)·Φ̄((hi − 1)/σ);
 * with the Mills-ratio bound Φ̄(z) ≤ e^{−z²/2}/(z√(2π)) for z > 0.
 */

/** Kronrod nodes (non-negative half, descending) and weights; the Gauss 7-point rule uses the odd nodes. */
const XGK = [
  0.991455371120812639206854697526329, 0.949107912342758524526189684047851, 0.864864423359769072789712788640926,
  0.741531185599394439863864773280788, 0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
  0.207784955007898467600689403773245, 0,
];
const WGK = [
  0.02293532201052922496373200805897, 0.063092092629978553290700663189204, 0.104790010322250183839876322541518,
  0.140653259715525918745189590510238, 0.16900472663926790282658342659855, 0.190350578064785409913256402421014,
  0.204432940075298892414161999234649, 0.209482141084727828012999174891714,
];
/** Gauss weights for XGK[1], XGK[3], XGK[5], XGK[7]. */
const WG = [0.129484966168869693270611432679082, 0.27970539148927666790146777142378, 0.381830050505118944950369775488975,
  0.417959183673469387755102040816327];

export interface Panel {
  readonly a: number;
  readonly b: number;
  readonly kronrod: number;
  readonly error: number;
}

/** One Gauss–Kronrod 7–15 panel of f on [a, b]. Exported for the rule's own test. */
export function gaussKronrod15(f: (x: number) => number, a: number, b: number): Panel {
  const c = 0.5 * (a + b);
  const h = 0.5 * (b - a);
  const fc = f(c);
  let k = WGK[7] * fc;
  let g = WG[3] * fc;
  for (let i = 0; i < 7; i++) {
    const dx = h * XGK[i];
    const s = f(c - dx) + f(c + dx);
    k += WGK[i] * s;
    if (i % 2 === 1) g += WG[(i - 1) / 2] * s;
  }
  return { a, b, kronrod: k * h, error: Math.abs((k - g) * h) };
}

export interface Integral {
  /** The integral. */
  readonly value: number;
  /** Estimated absolute error (Σ |K15 − G7| over the panels). */
  readonly error: number;
  readonly panels: number;
}

/**
 * ∫_{breaks[0]}^{breaks[last]} f by global adaptive Gauss–Kronrod: the panel with the largest error
 * estimate is halved until Σ error ≤ relTol·|Σ value| (or maxPanels is reached; the error then says so).
 */
export function integrate(
  f: (x: number) => number,
  breaks: readonly number[],
  relTol = 1e-14,
  maxPanels = 20_000,
): Integral {
  const panels: Panel[] = [];
  for (let i = 0; i + 1 < breaks.length; i++) {
    if (breaks[i + 1] > breaks[i]) panels.push(gaussKronrod15(f, breaks[i], breaks[i + 1]));
  }
  const totals = (): { value: number; error: number } => {
    let value = 0;
    let error = 0;
    for (const p of panels) {
      value += p.kronrod;
      error += p.error;
    }
    return { value, error };
  };
  let t = totals();
  while (t.error > relTol * Math.abs(t.value) && panels.length < maxPanels) {
    let worst = 0;
    for (let i = 1; i < panels.length; i++) if (panels[i].error > panels[worst].error) worst = i;
    const { a, b } = panels[worst];
    const m = 0.5 * (a + b);
    if (!(m > a && m < b)) break; // cannot split further in float64
    panels[worst] = gaussKronrod15(f, a, m);
    panels.push(gaussKronrod15(f, m, b));
    t = totals();
  }
  return { value: t.value, error: t.error, panels: panels.length };
}

// ---------------------------------------------------------------------------------------------------------
// The privacy-loss integrands.

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

function logAdd(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const hi = Math.max(a, b);
  return hi + Math.log1p(Math.exp(Math.min(a, b) - hi));
}

/** log[(1 + w)·log(1 + w) − w] ≥ … for w > −1, given w and ℓ = log(1 + w) (w may be +∞ when ℓ is huge). */
function logG1(w: number, ell: number): number {
  if (Math.abs(w) < 0.5) {
    // Σ_{k≥2} (−w)^k / (k(k−1)); terms shrink by ≥ 2 per step.
    let pow = w * w;
    let sum = 0;
    for (let k = 2; k < 200; k++) {
      const term = pow / (k * (k - 1));
      sum += term;
      if (Math.abs(term) < 1e-18 * Math.abs(sum)) break;
      pow *= -w;
    }
    return Math.log(sum);
  }
  if (w > 0) return ell + Math.log(ell + Math.expm1(-ell)); // (1+w)(ℓ − 1 + 1/(1+w)); ℓ + e^{−ℓ} − 1 ≥ 0.07
  return Math.log((1 + w) * ell - w); // w ≤ −1/2: −w ≥ 1/2 dominates (1+w)ℓ ∈ [−1/e, 0]
}

/** log(e^y − 1 − y), −∞ at y = 0. */
function logG2(y: number): number {
  if (y === 0) return -Infinity;
  if (Math.abs(y) < 0.5) {
    let term = (y * y) / 2;
    let sum = term;
    for (let k = 3; k < 200; k++) {
      term *= y / k;
      sum += term;
      if (Math.abs(term) < 1e-18 * Math.abs(sum)) break;
    }
    return Math.log(sum);
  }
  if (y > 30) return y + Math.log1p(-(1 + y) * Math.exp(-y));
  return Math.log(Math.expm1(y) - y);
}

/** log h(w) for h(w) = (1 + w)^α − 1 − αw, given w and ℓ = log(1 + w); −∞ when h = 0. */
export function logH(alpha: number, w: number, ell: number): number {
  const beta = alpha - 1;
  const first = beta === 0 ? -Infinity : Math.log(beta) + logG1(w, ell);
  return logAdd(first, ell + logG2(beta * ell));
}

export type Direction = 'A' | 'B';

export interface DivergenceIntegral {
  readonly direction: Direction;
  /** log(A_α − 1) or log(B_α − 1). */
  readonly logExcess: number;
  /** Relative error bound on the excess (quadrature estimate + both tail bounds). */
  readonly relativeError: number;
  /** log A_α / (α − 1) (or with B_α): the Rényi divergence of that direction. */
  readonly rdp: number;
  /** Bounds on `rdp` from `relativeError`. */
  readonly rdpLow: number;
  readonly rdpHigh: number;
  readonly panels: number;
}

/** log Φ̄(z) upper bound for z > 0 (Mills ratio), and log 1 = 0 otherwise. */
function logUpperTailBound(z: number): number {
  return z > 0 ? -0.5 * z * z - Math.log(z) - LOG_SQRT_2PI : 0;
}

/** The integrand's log at x, for one direction. */
function logIntegrand(q: number, sigma: number, alpha: number, direction: Direction): (x: number) => number {
  const s2 = sigma * sigma;
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const logNorm = Math.log(sigma) + LOG_SQRT_2PI;
  return (x: number): number => {
    const t = (2 * x - 1) / (2 * s2); // log μ1(x)/μ0(x)
    const logMu0 = (-x * x) / (2 * s2) - logNorm;
    let u: number;
    let ell: number; // log(1 + u) = log μ/μ0
    if (t < 700) {
      u = q * Math.expm1(t);
      ell = Math.log1p(u);
    } else {
      u = Infinity;
      ell = logAdd(log1mQ, logQ + t);
    }
    if (direction === 'A') return logMu0 + logH(alpha, u, ell);
    const v = u === Infinity ? Math.expm1(-ell) : -u / (1 + u);
    return logMu0 + ell + logH(alpha, v, -ell);
  };
}

/**
 * D_α of one direction of the Poisson-subsampled Gaussian (0 < q < 1, σ > 0, α > 1) by quadrature, with
 * an error bound (module comment).
 */
export function subsampledGaussianDivergence(
  q: number,
  sigma: number,
  alpha: number,
  direction: Direction,
  relTol = 1e-14,
): DivergenceIntegral {
  if (!(q > 0 && q < 1 && sigma > 0 && alpha > 1)) throw new Error(`bad parameters q=${q} σ=${sigma} α=${alpha}`);
  const logF = logIntegrand(q, sigma, alpha, direction);
  const z0 = sigma * sigma * (Math.log1p(-q) - Math.log(q)) + 0.5;
  const centres = [0, 0.5, 1, 2, alpha, z0];
  // Locate the maximiser on a grid of σ/8 around the centres' span.
  const spanLo = Math.min(...centres) - 12 * sigma;
  const spanHi = Math.max(...centres) + 12 * sigma;
  let argmax = 0;
  let shift = -Infinity;
  const step = sigma / 8;
  for (let x = spanLo; x <= spanHi; x += step) {
    const y = logF(x);
    if (y > shift) {
      shift = y;
      argmax = x;
    }
  }
  centres.push(argmax);
  const lo = Math.min(...centres) - 40 * sigma;
  const hi = Math.max(...centres) + 40 * sigma;
  const breaks = new Set<number>([lo, hi]);
  for (const c of centres) for (const d of [0, -1, 1, -2, 2, -4, 4, -8, 8, -16, 16]) breaks.add(c + d * sigma);
  const sorted = [...breaks].filter((x) => x >= lo && x <= hi).sort((a, b) => a - b);

  const result = integrate((x) => Math.exp(logF(x) - shift), sorted, relTol);
  const logExcess = shift + Math.log(result.value);

  // Tail bounds (module comment), in log space, relative to the excess.
  const logNormalLowerTail = logUpperTailBound(-lo / sigma); // Φ(lo/σ) = Φ̄(−lo/σ)
  let logTails: number;
  if (direction === 'A') {
    const left = logH(alpha, -q, Math.log1p(-q)) + logNormalLowerTail;
    const right =
      alpha * Math.log(2 * q) + (alpha * alpha - alpha) / (2 * sigma * sigma) + logUpperTailBound((hi - alpha) / sigma);
    logTails = logAdd(left, right);
  } else {
    const vMax = q / (1 - q);
    const left = logH(alpha, vMax, -Math.log1p(-q)) + logNormalLowerTail;
    const right = Math.log(alpha - 1) + logUpperTailBound((hi - 1) / sigma);
    logTails = logAdd(left, right);
  }
  const relativeError = result.error / Math.abs(result.value) + Math.exp(logTails - logExcess);

  // log A = log(1 + e^{logExcess}), and its bounds.
  const log1pExp = (y: number): number => (y > 36 ? y + Math.log1p(Math.exp(-y)) : Math.log1p(Math.exp(y)));
  const at = (factor: number): number => log1pExp(logExcess + Math.log(factor)) / (alpha - 1);
  return {
    direction,
    logExcess,
    relativeError,
    rdp: at(1),
    rdpLow: at(Math.max(0, 1 - relativeError)),
    rdpHigh: at(1 + relativeError),
    panels: result.panels,
  };
}

/** max over both directions: the RDP of one step under add-or-remove (MTZ 2019, §3). */
export function subsampledGaussianRdpByQuadrature(
  q: number,
  sigma: number,
  alpha: number,
): { readonly rdp: number; readonly rdpLow: number; readonly rdpHigh: number; readonly a: DivergenceIntegral; readonly b: DivergenceIntegral } {
  const a = subsampledGaussianDivergence(q, sigma, alpha, 'A');
  const b = subsampledGaussianDivergence(q, sigma, alpha, 'B');
  return { rdp: Math.max(a.rdp, b.rdp), rdpLow: Math.max(a.rdpLow, b.rdpLow), rdpHigh: Math.max(a.rdpHigh, b.rdpHigh), a, b };
}
