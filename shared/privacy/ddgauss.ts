/**
 * Rényi DP of the distributed discrete Gaussian (DDGauss), unsampled and Poisson-subsampled.
 *
 * Mechanism (Kairouz, Liu, Steinke 2021, "The Distributed Discrete Gaussian Mechanism for Federated
 * Learning with Secure Aggregation", ICML; arXiv:2102.06387 — KLS21): each of n clients adds
 * N_Z(0, σ²)^d to its integer vector; secure aggregation releases only the sum. Neighbouring sums
 * differ by an integer vector Δ with ‖Δ‖₂ ≤ Δ₂ and ‖Δ‖₁ ≤ Δ₁.
 *
 * Unsampled curve. With τ = 10 · Σ_{k=1}^{n−1} exp(−2π²σ² · k/(k+1)) (KLS21 Thm 1) and the scales
 * s₂ = Δ₂/(√n σ), s₁ = Δ₁/(√n σ), the sum is (α, ε(α))-RDP with
 *   ε(α) = min{ α/2 · s₂² + τd,
 *               α/2 · (s₂² + 2 s₁ τ + τ² d),
 *               α/2 · (s₂ + τ√d)² }
 * (KLS21 Proposition 14 / Eq. 17 as cited by the authors' released accounting code,
 * google-research/federated `distributed_dp/accounting_utils.py`, `compute_rdp_dgaussian`; we
 * reproduce its numbers, see ddgauss.test.ts). For n = 1, τ = 0 and this is the discrete Gaussian's
 * α Δ₂²/(2σ²) (Canonne, Kamath, Steinke 2020). We could not check the paper's own statement of the
 * σ range; KLS21's sum-of-discrete-Gaussians results are stated for σ ≥ 1/2, so for n ≥ 2 and
 * σ < 1/2 we report +∞ (no claim) rather than extrapolate. (τ is then ≥ 2.9 per extra client: such a
 * curve is useless anyway.)
 *
 * Poisson subsampling (add-or-remove-one). Zhu & Wang 2019, "Poisson Subsampled Rényi Differential
 * Privacy" (ICML; PMLR 97 zhu19c), Theorem 5 — the general upper bound, valid for any mechanism with
 * RDP curve ε(·) — for integer α ≥ 2 and rate q:
 *   ε_q(α) ≤ 1/(α−1) · log( (1−q)^{α−1}(1 + (α−1)q)
 *                           + C(α,2) q² (1−q)^{α−2} e^{ε(2)}
 *                           + 3 Σ_{l=3}^{α} C(α,l) q^l (1−q)^{α−l} e^{(l−1)ε(l)} ).
 * This is what KLS21's released code applies to the curve above (`_compute_rdp_subsampled` with
 * `upper_bound=True`), and, like it, we take the minimum with the unsampled ε(α) (subsampling never
 * hurts under add-or-remove: the subsampled output distributions are mixtures whose Rényi divergence
 * is at most the unsampled one, by joint quasi-convexity).
 * Numerics: since Σ_{l=0}^{α} C(α,l) q^l (1−q)^{α−l} = 1 and the l = 0, 1 terms are exactly the first
 * summand, the argument of the log equals 1 + Σ_{l≥2} C(α,l) q^l (1−q)^{α−l} (c_l e^{(l−1)ε(l)} − 1)
 * with c_2 = 1, c_l = 3 — every term ≥ 0, summed in log space, then log1p. The same number as the
 * reference's direct logsumexp, without its loss of relative precision when q is tiny.
 *
 * Orders. Both formulas are for integer α (the reference floors its orders to integers; its default
 * list is 2…128 and 256). Rényi divergence is non-decreasing in its order (van Erven & Harremoës
 * 2014, "Rényi Divergence and Kullback–Leibler Divergence", Theorem 3), so at a fractional or unit
 * order α we report the value at max(2, ⌈α⌉): a valid, slightly loose bound. Since the RDP → ε
 * conversion at a fixed RDP value improves with the order, those orders never give a smaller ε on
 * their own; they only keep compositions with events that do have fractional-order curves (the
 * Gaussian) finite there. `DDGAUSS_ORDERS` = 2…256 is the list the convenience function uses.
 */
import { CohortError } from '../errors.ts';
import { roundedNormBound } from '../secagg/encoding/encode.ts';
import { distributedGaussianTau } from '../secagg/plan.ts';
import { type Conversion, type EpsilonResult, epsilonFromRdp } from './conversion.ts';
import { type DistributedDiscreteGaussianDpEvent, distributedDiscreteGaussianEvent } from './events.ts';
import { checkOrders, checkSamplingProbability } from './rdp.ts';
import { log1pExp, logExpm1, logSumExp } from './special.ts';

/** 2, 3, …, 256: the integer orders this module's conveniences use by default. */
export const DDGAUSS_ORDERS: readonly number[] = Object.freeze(Array.from({ length: 255 }, (_, i) => i + 2));

const LOG_3 = Math.log(3);

function badParameter(message: string, details?: Record<string, unknown>): CohortError {
  return new CohortError('BAD_PRIVACY_PARAMETER', message, details);
}

/** Throws BAD_PRIVACY_PARAMETER unless the event's fields are in range (the schema's rules). */
export function checkDistributedDiscreteGaussian(event: DistributedDiscreteGaussianDpEvent): void {
  const positive = (name: string, v: number | undefined): void => {
    if (!(typeof v === 'number' && v > 0 && Number.isFinite(v))) throw badParameter(`${name} must be finite and > 0, got ${v}`, { [name]: v });
  };
  const count = (name: string, v: number): void => {
    if (!(Number.isInteger(v) && v >= 1)) throw badParameter(`${name} must be an integer ≥ 1, got ${v}`, { [name]: v });
  };
  positive('l2Sensitivity', event.l2Sensitivity);
  if (event.l1Sensitivity !== undefined) positive('l1Sensitivity', event.l1Sensitivity);
  positive('localStddev', event.localStddev);
  count('clients', event.clients);
  count('dimension', event.dimension);
}

/** τ of KLS21 Thm 1 for n clients of integer-unit σ (the project's one definition, shared/secagg/plan.ts). */
export function ddgaussTau(localStddev: number, clients: number): number {
  return distributedGaussianTau(localStddev, clients);
}

/** The Δ₁ the analysis uses: min(given Δ₁, Δ₂·min(√d, Δ₂)) (the second holds for any integer vector). */
export function effectiveL1Sensitivity(event: DistributedDiscreteGaussianDpEvent): number {
  const { l2Sensitivity: l2, dimension: d } = event;
  const generic = l2 * Math.min(Math.sqrt(d), l2);
  return event.l1Sensitivity === undefined ? generic : Math.min(event.l1Sensitivity, generic);
}

/**
 * The unsampled curve as a function of α (any real α ≥ 1 is accepted by the formula; the accountant
 * evaluates it at integers only, see the module comment). +∞ when n ≥ 2 and σ < 1/2.
 */
export function ddgaussRdpFunction(event: DistributedDiscreteGaussianDpEvent): (order: number) => number {
  checkDistributedDiscreteGaussian(event);
  const { l2Sensitivity, localStddev: sigma, clients: n, dimension: d } = event;
  if (n >= 2 && !(sigma >= 0.5)) return () => Infinity;
  const tau = ddgaussTau(sigma, n);
  const central = Math.sqrt(n) * sigma;
  const s2 = l2Sensitivity / central;
  const s1 = effectiveL1Sensitivity(event) / central;
  const a = s2 * s2;
  const b = s2 * s2 + 2 * s1 * tau + tau * tau * d;
  const c = (s2 + Math.sqrt(d) * tau) ** 2;
  const m = Math.min(b, c);
  return (order: number) => (order === Infinity ? Infinity : Math.min((order / 2) * a + tau * d, (order / 2) * m));
}

/** The order the integer formulas are evaluated at for a requested order: max(2, ⌈α⌉) (∞ stays ∞). */
function integerOrderFor(order: number): number {
  return order === Infinity ? Infinity : Math.max(2, Math.ceil(order));
}

/**
 * Zhu & Wang 2019 Thm 5 at one integer order α ≥ 2, for a base curve `eps` given at the integers
 * 2…α (eps[l] for l ≤ α), Poisson rate 0 < q < 1, minimised with the unsampled eps[α].
 */
function zhuWangAtOrder(alpha: number, q: number, eps: ArrayLike<number>): number {
  if (eps[alpha] === 0) return 0;
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const terms = new Float64Array(alpha - 1);
  let logBinom = Math.log(alpha); // log C(α, 1)
  for (let l = 2; l <= alpha; l++) {
    logBinom += Math.log((alpha - l + 1) / l);
    const x = (l - 1) * eps[l];
    // log(c_l e^x − 1): c_2 = 1 → log expm1(x); c_l = 3 → x + log(3 − e^{−x}) (≥ log 2, no cancellation).
    const logExcess = x === Infinity ? Infinity : l === 2 ? logExpm1(x) : x === 0 ? Math.log(2) : x + Math.log(3 - Math.exp(-x));
    terms[l - 2] = logBinom + l * logQ + (alpha - l) * log1mQ + logExcess;
  }
  const sampled = log1pExp(logSumExp(terms)) / (alpha - 1);
  return Math.min(sampled, eps[alpha]);
}

/**
 * RDP curve of one DDGauss release at `orders`, Poisson-subsampled at rate q (q = 1: unsampled).
 * Subsampling is analysed under add-or-remove-one; the event's sensitivities must be for that relation.
 */
export function rdpDistributedDiscreteGaussian(
  event: DistributedDiscreteGaussianDpEvent,
  orders: readonly number[],
  samplingProbability = 1,
): Float64Array<ArrayBuffer> {
  return rdpPoissonSubsampledCurve(ddgaussRdpFunction(event), orders, samplingProbability);
}

/**
 * Zhu–Wang Poisson subsampling of an arbitrary base RDP curve `base` (a function of the integer order,
 * non-decreasing), at `orders` (fractional ones rounded up, see the module comment). Exposed for
 * compositions inside one sampled step (the accountant sums the inner curves first).
 */
export function rdpPoissonSubsampledCurve(
  base: (order: number) => number,
  orders: readonly number[],
  samplingProbability: number,
): Float64Array<ArrayBuffer> {
  checkOrders(orders);
  checkSamplingProbability(samplingProbability);
  const q = samplingProbability;
  const out = new Float64Array(orders.length);
  let maxInteger = 2;
  for (const o of orders) {
    const k = integerOrderFor(o);
    if (k !== Infinity && k > maxInteger) maxInteger = k;
  }
  const eps = new Float64Array(maxInteger + 1);
  for (let l = 2; l <= maxInteger; l++) eps[l] = base(l);
  for (let i = 0; i < orders.length; i++) {
    const k = integerOrderFor(orders[i]);
    if (q === 0) out[i] = 0;
    else if (k === Infinity) out[i] = Infinity;
    else if (q === 1) out[i] = eps[k];
    else out[i] = zhuWangAtOrder(k, q, eps);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// The reference's convenience: from model-unit parameters to ε (google-research/federated
// distributed_dp/accounting_utils.py, `ddgauss_epsilon`).

export interface DdgaussEpsilonParams {
  /** Quantisation granularity γ > 0 (one integer step = γ model units). */
  readonly gamma: number;
  /** Each client's discrete-Gaussian σ in model units (σ/γ integer steps). */
  readonly localStddev: number;
  /** n: clients whose noise the sum is guaranteed to contain. */
  readonly clients: number;
  /** L2 sensitivity in model units (the clipping norm c under add-or-remove). */
  readonly l2Sensitivity: number;
  /** Conditional-rounding parameter β ∈ [0, 1) (KLS21 Thm 1 / Prop 22; 0: unconditional rounding). */
  readonly beta: number;
  /** d: the padded dimension. */
  readonly dimension: number;
  /** Poisson sampling rate per step. */
  readonly q: number;
  readonly steps: number;
  readonly delta: number;
  /** L1 sensitivity in model units; used only when `rounding` is false (rounding can change L1). */
  readonly l1Sensitivity?: number;
  /** Default true: inflate Δ₂ for the rounding (`roundedNormBound`, KLS21 Thm 1). */
  readonly rounding?: boolean;
  readonly orders?: readonly number[];
  /** Default 'improved' (what the reference's tensorflow_privacy `get_privacy_spent` computes). */
  readonly conversion?: Conversion;
}

/** The integer-domain event the parameters describe (rounded Δ₂ when `rounding`). */
export function ddgaussEventFor(p: DdgaussEpsilonParams): DistributedDiscreteGaussianDpEvent {
  const { gamma, localStddev, clients, l2Sensitivity, beta, dimension } = p;
  if (!(gamma > 0 && Number.isFinite(gamma))) throw badParameter(`gamma must be finite and > 0, got ${gamma}`, { gamma });
  if (!(beta >= 0 && beta < 1)) throw badParameter(`beta must be in [0, 1), got ${beta}`, { beta });
  if (!(l2Sensitivity > 0 && Number.isFinite(l2Sensitivity))) {
    throw badParameter(`l2Sensitivity must be finite and > 0, got ${l2Sensitivity}`, { l2Sensitivity });
  }
  if (!(Number.isInteger(dimension) && dimension >= 1)) throw badParameter(`dimension must be an integer ≥ 1, got ${dimension}`, { dimension });
  const rounding = p.rounding ?? true;
  const event = distributedDiscreteGaussianEvent({
    l2Sensitivity: rounding ? roundedNormBound(l2Sensitivity, gamma, dimension, beta) : l2Sensitivity / gamma,
    ...(rounding || p.l1Sensitivity === undefined ? {} : { l1Sensitivity: p.l1Sensitivity / gamma }),
    localStddev: localStddev / gamma,
    clients,
    dimension,
  });
  checkDistributedDiscreteGaussian(event);
  return event;
}

/** ε (and the order attaining it) after `steps` Poisson-sampled DDGauss releases. */
export function ddgaussEpsilon(p: DdgaussEpsilonParams): EpsilonResult {
  const { q, steps, delta } = p;
  if (!(Number.isInteger(steps) && steps >= 0)) throw badParameter(`steps must be a non-negative integer, got ${steps}`, { steps });
  const orders = p.orders ?? DDGAUSS_ORDERS;
  const curve = rdpDistributedDiscreteGaussian(ddgaussEventFor(p), orders, q);
  for (let i = 0; i < curve.length; i++) curve[i] = steps === 0 ? 0 : steps * curve[i];
  return epsilonFromRdp(orders, curve, delta, p.conversion ?? 'improved');
}
