/**
 * q-FedAvg: Li, Sanjabi, Beirami, Smith 2020, "Fair Resource Allocation in Federated Learning" (ICLR),
 * Algorithm 2. It minimises the q-fair objective Σ_k p_k F_k^{q+1}(w)/(q+1), which weights clients with
 * a high loss more as q grows (q = 0: every client alike). Per round, from the global model w^t:
 *
 *   client k   F_k = F_k(w^t), its loss before training (it reports it: `metrics.initialLoss`);
 *              w̄_k its locally trained model; Δw_k = L (w^t − w̄_k), with L = 1/η (the paper's choice)
 *   coordinate Δ_k = F_k^q Δw_k,  h_k = q F_k^{q−1} ‖Δw_k‖² + L F_k^q,   w^{t+1} = w^t − Σ Δ_k / Σ h_k
 *
 * Our clients send δ_k = w̄_k − w^t = −Δw_k / L, so the step to add is
 *   L Σ F_k^q δ_k / Σ (q F_k^{q−1} L² ‖δ_k‖² + L F_k^q)  =  Σ a_k δ_k / Σ a_k (1 + q L ‖δ_k‖² / F_k)
 * with a_k = F_k^q. That is what `QFedAvgSum` streams: O(d) memory, one pass per update.
 *
 * Numbers from clients are untrusted but range-checked (|δ| ≤ maxUpdateValue, F ≤ maxMetricValue). To
 * keep everything finite whatever they are: F is floored at MIN_LOSS (q F^{q−1} with F → 0 would be
 * infinite), a_k is kept relative to the largest seen (a_k / max a, in log space, rescaling the running
 * sum when a larger one arrives), and a term whose weight underflows to 0 adds nothing. The result is a
 * convex combination of the δ_k shrunk by the denominator's extra terms, so it is never larger than the
 * largest δ_k — but it is not robust: a client that reports a huge loss gets nearly all the weight.
 */
import { CohortError } from '../errors.ts';

/** Losses are floored here (a loss of 0 would make F^{q−1} infinite for q < 1). */
export const MIN_LOSS = 1e-12;

export class QFedAvgSum {
  private readonly num: Float64Array;
  /** Σ a_k (1 + q L ‖δ_k‖²/F_k), with a_k relative to exp(logScale). */
  private den = 0;
  private logScale = -Infinity;
  private n = 0;

  constructor(
    readonly dim: number,
    readonly q: number,
    /** L = 1/η, the inverse of the clients' learning rate. */
    readonly lipschitz: number,
  ) {
    if (!(q >= 0 && Number.isFinite(q))) throw new CohortError('BAD_CONFIG', `q-FedAvg: q must be finite and ≥ 0, got ${q}`);
    if (!(lipschitz > 0 && Number.isFinite(lipschitz))) throw new CohortError('BAD_CONFIG', `q-FedAvg: L must be finite and > 0, got ${lipschitz}`);
    this.num = new Float64Array(dim);
  }

  get count(): number {
    return this.n;
  }

  /** Folds in one client's update δ_k = w̄_k − w^t and its loss F_k(w^t) before training. */
  add(delta: Float32Array, initialLoss: number): void {
    if (delta.length !== this.dim) {
      throw new CohortError('WRONG_LENGTH', `q-FedAvg: expected length ${this.dim}, got ${delta.length}`, { expected: this.dim, actual: delta.length });
    }
    if (!Number.isFinite(initialLoss)) throw new CohortError('NON_FINITE', `q-FedAvg: loss must be finite, got ${initialLoss}`);
    const F = Math.max(initialLoss, MIN_LOSS);
    const logA = this.q * Math.log(F);
    if (logA > this.logScale) {
      // Rescale what is summed so far to the new largest weight.
      const r = this.n === 0 ? 0 : Math.exp(this.logScale - logA);
      for (let j = 0; j < this.dim; j++) this.num[j] *= r;
      this.den *= r;
      this.logScale = logA;
    }
    const a = Math.exp(logA - this.logScale); // in (0, 1], or 0 on underflow
    this.n++;
    if (a === 0) return;
    let sq = 0;
    for (let j = 0; j < this.dim; j++) sq += delta[j] * delta[j];
    const extra = (this.q * this.lipschitz * sq) / F; // may be +Infinity for absurd inputs: the step then shrinks to 0
    this.den += a * (1 + extra);
    for (let j = 0; j < this.dim; j++) this.num[j] += a * delta[j];
  }

  /** The step to add to w^t: Σ a_k δ_k / Σ a_k (1 + q L ‖δ_k‖²/F_k). Throws EMPTY when nothing was added. */
  step(): Float32Array {
    if (this.n === 0) throw new CohortError('EMPTY', 'q-FedAvg: no updates');
    const out = new Float32Array(this.dim);
    if (!(this.den > 0) || !Number.isFinite(this.den)) return out; // every weight underflowed, or an infinite denominator: no step
    for (let j = 0; j < this.dim; j++) out[j] = this.num[j] / this.den;
    return out;
  }
}
