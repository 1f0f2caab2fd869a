/**
 * From an RDP curve to (ε, δ)-DP.
 *
 * - classic: Mironov 2017, "Rényi Differential Privacy", Proposition 3:
 *     ε = min_α  rdp(α) + log(1/δ) / (α − 1).
 *   This is what TF-Privacy's original `rdp_accountant.get_privacy_spent` computed.
 * - improved: Balle, Barthe, Gaboardi, Hsu, Sato 2020, "Hypothesis Testing Interpretations and Rényi
 *   Differential Privacy", Theorem 21; Canonne, Kamath, Steinke 2020, "The Discrete Gaussian for
 *   Differential Privacy", Proposition 12 (arXiv v4):
 *     ε = min_α  rdp(α) + log1p(−1/α) − (log δ + log α) / (α − 1),
 *   evaluated as dp_accounting's `compute_epsilon` does: orders ≤ 1.01 are skipped (the formula is
 *   unstable as α → 1), a curve value r with δ² + expm1(−r) > 0 gives ε = 0 (the KL bound
 *   δ ≤ sqrt(1 − e^{−r}) already holds, since r ≥ KL), and the result is clamped at 0.
 *   Opacus (≥ 1.0) uses the same formula.
 *
 * Ties go to the first order in the list (numpy `argmin` semantics), so the reported order matches the
 * libraries we test against.
 */
import { CohortError } from '../errors.ts';

export type Conversion = 'classic' | 'improved';

export interface EpsilonResult {
  readonly epsilon: number;
  /** The order at which the minimum is attained (NaN if every order gives +∞). */
  readonly order: number;
}

export interface DeltaResult {
  readonly delta: number;
  readonly order: number;
}

function checkCurve(orders: ArrayLike<number>, rdp: ArrayLike<number>): void {
  if (orders.length !== rdp.length) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `orders and RDP curve differ in length (${orders.length} vs ${rdp.length})`);
  }
  if (orders.length === 0) throw new CohortError('BAD_PRIVACY_PARAMETER', 'empty RDP curve');
  for (let i = 0; i < orders.length; i++) {
    if (!(orders[i] >= 1)) {
      throw new CohortError('BAD_PRIVACY_PARAMETER', `RDP orders must be ≥ 1, got ${orders[i]}`, { order: orders[i] });
    }
    if (Number.isNaN(rdp[i])) throw new CohortError('BAD_PRIVACY_PARAMETER', `RDP value at order ${orders[i]} is NaN`);
  }
}

/** ε at one order (+∞ where the conversion does not apply). */
export function epsilonAtOrder(order: number, rdp: number, delta: number, conversion: Conversion): number {
  if (rdp === Infinity || order === Infinity) return Infinity;
  if (conversion === 'classic') {
    if (order <= 1) return Infinity;
    return rdp - Math.log(delta) / (order - 1);
  }
  if (rdp <= 0) return 0;
  if (delta * delta + Math.expm1(-rdp) > 0) return 0;
  if (order <= 1.01) return Infinity;
  return rdp + Math.log1p(-1 / order) - Math.log(delta * order) / (order - 1);
}

/** Smallest ε for δ over the curve, and the order that attains it. */
export function epsilonFromRdp(
  orders: ArrayLike<number>,
  rdp: ArrayLike<number>,
  delta: number,
  conversion: Conversion = 'improved',
): EpsilonResult {
  checkCurve(orders, rdp);
  if (!(delta > 0 && delta < 1)) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `delta must be in (0, 1), got ${delta}`, { delta });
  }
  let best = Infinity;
  let bestOrder = NaN;
  for (let i = 0; i < orders.length; i++) {
    const eps = epsilonAtOrder(orders[i], rdp[i], delta, conversion);
    if (eps < best) {
      best = eps;
      bestOrder = orders[i];
    }
  }
  return { epsilon: Math.max(0, best), order: bestOrder };
}

/** log δ at one order for a given ε (+∞ means no bound; the result is later capped at δ = 1). */
function logDeltaAtOrder(order: number, rdp: number, epsilon: number, conversion: Conversion): number {
  if (rdp === Infinity || order === Infinity) return Infinity;
  if (conversion === 'classic') {
    if (order <= 1) return Infinity;
    return (rdp - epsilon) * (order - 1);
  }
  // dp_accounting `compute_delta`: min of the KL bound δ ≤ sqrt(1 − e^{−r}) and, for α > 1.01,
  // Balle et al. 2020 Theorem 21 solved for δ.
  let logDelta = rdp <= 0 ? -Infinity : 0.5 * Math.log1p(-Math.exp(-rdp));
  if (order > 1.01) {
    const bound = (order - 1) * (rdp - epsilon + Math.log1p(-1 / order)) - Math.log(order);
    logDelta = Math.min(logDelta, bound);
  }
  return logDelta;
}

/** Smallest δ for ε over the curve, and the order that attains it. */
export function deltaFromRdp(
  orders: ArrayLike<number>,
  rdp: ArrayLike<number>,
  epsilon: number,
  conversion: Conversion = 'improved',
): DeltaResult {
  checkCurve(orders, rdp);
  if (!(epsilon >= 0)) throw new CohortError('BAD_PRIVACY_PARAMETER', `epsilon must be ≥ 0, got ${epsilon}`, { epsilon });
  let best = Infinity;
  let bestOrder = NaN;
  for (let i = 0; i < orders.length; i++) {
    const logDelta = logDeltaAtOrder(orders[i], rdp[i], epsilon, conversion);
    if (logDelta < best) {
      best = logDelta;
      bestOrder = orders[i];
    }
  }
  return { delta: Math.min(Math.exp(best), 1), order: bestOrder };
}
