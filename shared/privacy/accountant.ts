/**
 * The RDP accountant: a pure function from DP events to an RDP curve, and from the curve to ε for δ.
 *
 * Composition (Mironov 2017, Proposition 1): RDP curves of mechanisms run in sequence add up, order by
 * order; `selfComposed(e, n)` multiplies e's curve by n.
 *
 * Supported events, following Google's dp_accounting `RdpAccountant`:
 * - `gaussian(z)` — either neighbouring relation.
 * - `distributedDiscreteGaussian` — either relation (the event carries its own sensitivities):
 *   KLS21's bound, ddgauss.ts; integer orders, a fractional order gets the value at max(2, ⌈α⌉).
 * - `poissonSampled(q, e)` — add-or-remove-one only; `e` must be a Gaussian or a composition of
 *   Gaussians, which is one Gaussian with z_eff = (Σ z_i^{-2})^{-1/2} (Mironov, Talwar, Zhang 2019, §3;
 *   this is how adaptive clipping's value and count queries are accounted together). If `e` contains a
 *   `distributedDiscreteGaussian`, `e` may be any composition of Gaussians and DDGauss events instead,
 *   and its summed curve is subsampled with Zhu & Wang 2019 Thm 5 (ddgauss.ts).
 * - `sampledWithoutReplacement(m, n, e)` — replace-one only (Wang, Balle, Kasiviswanathan 2019 Thm 27);
 *   same restriction on `e`.
 * - `selfComposed`, `composed` — anything built from the above.
 * Anything else (a sampled event inside a sampled event, a sampling event under the wrong relation)
 * throws CohortError UNSUPPORTED_EVENT rather than returning a number that does not mean anything.
 */
import { CohortError } from '../errors.ts';
import { type Conversion, type DeltaResult, type EpsilonResult, deltaFromRdp, epsilonFromRdp } from './conversion.ts';
import {
  type DpEvent,
  gaussianEvent,
  poissonSampledEvent,
  sampledWithoutReplacementEvent,
  selfComposedEvent,
} from './events.ts';
import { ddgaussRdpFunction, rdpDistributedDiscreteGaussian, rdpPoissonSubsampledCurve } from './ddgauss.ts';
import { type RdpOptions, checkOrders, gaussianRdp, rdpGaussian, rdpPoissonSubsampledGaussian } from './rdp.ts';
import { rdpSampledWithoutReplacementGaussian } from './rdp-without-replacement.ts';

function range(from: number, toInclusive: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= toInclusive; i++) out.push(i);
  return out;
}

/**
 * 1.1, 1.2, …, 10.9 (computed as 1 + x/10, the same doubles as Python's `1 + x / 10.0`), 11 … 63,
 * 128, 256, 512, 1024 — the default orders of dp_accounting's RdpAccountant (DEFAULT_RDP_ORDERS).
 */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...range(1, 99).map((x) => 1 + x / 10),
  ...range(11, 63),
  128,
  256,
  512,
  1024,
]);

/**
 * 2 … 64, 128, 256, 512, 1024: integer orders only. The integer formulas are closed-form sums (no series
 * truncation), which is what the ledger should prefer when it must be reproducible bit for bit by other
 * tools; the price is a slightly larger ε than DEFAULT_ORDERS (no orders between 1 and 2).
 */
export const INTEGER_ORDERS: readonly number[] = Object.freeze([...range(2, 64), 128, 256, 512, 1024]);

export type NeighboringRelation = 'addOrRemove' | 'replaceOne';

export interface AccountantOptions extends RdpOptions {
  /** Default 'addOrRemove' (Poisson cohorts). Fixed-size cohorts need 'replaceOne'. */
  readonly neighboringRelation?: NeighboringRelation;
}

function unsupported(message: string, event: DpEvent): CohortError {
  return new CohortError('UNSUPPORTED_EVENT', message, { event: event as unknown as Record<string, unknown> });
}

/**
 * z of the single Gaussian equivalent to a Gaussian or a (self-)composition of Gaussians:
 * z_eff = (Σ z_i^{-2})^{-1/2}; 0 if any z_i is 0. Throws UNSUPPORTED_EVENT for anything else.
 */
export function effectiveNoiseMultiplier(event: DpEvent): number {
  const inverseSquareSum = (e: DpEvent): number => {
    switch (e.kind) {
      case 'gaussian':
        return e.noiseMultiplier === 0 ? Infinity : 1 / (e.noiseMultiplier * e.noiseMultiplier);
      case 'selfComposed':
        return e.count === 0 ? 0 : e.count * inverseSquareSum(e.event);
      case 'composed':
        return e.events.reduce((acc, inner) => acc + inverseSquareSum(inner), 0);
      default:
        throw unsupported(`a sampled event may only contain Gaussian events, found '${e.kind}'`, e);
    }
  };
  const s = inverseSquareSum(event);
  return s === Infinity ? 0 : 1 / Math.sqrt(s);
}

/** Whether `event` has a distributedDiscreteGaussian anywhere inside it. */
function containsDistributedDiscreteGaussian(event: DpEvent): boolean {
  switch (event.kind) {
    case 'distributedDiscreteGaussian':
      return true;
    case 'gaussian':
      return false;
    case 'selfComposed':
    case 'poissonSampled':
    case 'sampledWithoutReplacement':
      return containsDistributedDiscreteGaussian(event.event);
    case 'composed':
      return event.events.some(containsDistributedDiscreteGaussian);
  }
}

/**
 * The unsampled RDP curve (a function of the order) of a composition of Gaussians and DDGauss events,
 * the base curve Zhu–Wang subsampling needs. Throws UNSUPPORTED_EVENT for a sampled event inside.
 */
function unsampledCurve(event: DpEvent): (order: number) => number {
  switch (event.kind) {
    case 'gaussian':
      return (order) => gaussianRdp(event.noiseMultiplier, order);
    case 'distributedDiscreteGaussian':
      return ddgaussRdpFunction(event);
    case 'selfComposed': {
      checkCount(event.count);
      if (event.count === 0) return () => 0;
      const inner = unsampledCurve(event.event);
      return (order) => event.count * inner(order);
    }
    case 'composed': {
      const inner = event.events.map(unsampledCurve);
      return (order) => inner.reduce((acc, f) => acc + f(order), 0);
    }
    default:
      throw unsupported(`a sampled event may only contain Gaussian and distributed discrete Gaussian events, found '${event.kind}'`, event);
  }
}

function checkCount(count: number): void {
  if (!Number.isInteger(count) || count < 0) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `composition count must be a non-negative integer, got ${count}`, { count });
  }
}

/** Adds count × RDP(event) into `acc` (count = 0 adds nothing, even for an infinite curve). */
function accumulate(
  acc: Float64Array,
  event: DpEvent,
  count: number,
  orders: readonly number[],
  options: AccountantOptions,
): void {
  checkCount(count);
  const relation = options.neighboringRelation ?? 'addOrRemove';
  const add = (curve: Float64Array): void => {
    if (count === 0) return;
    for (let i = 0; i < acc.length; i++) acc[i] += count * curve[i];
  };
  switch (event.kind) {
    case 'gaussian':
      add(rdpGaussian(event.noiseMultiplier, orders));
      return;
    case 'distributedDiscreteGaussian':
      add(rdpDistributedDiscreteGaussian(event, orders));
      return;
    case 'poissonSampled':
      if (relation !== 'addOrRemove') {
        throw unsupported("Poisson sampling is analysed under the 'addOrRemove' neighbouring relation", event);
      }
      if (containsDistributedDiscreteGaussian(event.event)) {
        add(rdpPoissonSubsampledCurve(unsampledCurve(event.event), orders, event.samplingProbability));
        return;
      }
      add(rdpPoissonSubsampledGaussian(event.samplingProbability, effectiveNoiseMultiplier(event.event), orders, options));
      return;
    case 'sampledWithoutReplacement':
      if (relation !== 'replaceOne') {
        throw unsupported("sampling without replacement is analysed under the 'replaceOne' neighbouring relation", event);
      }
      add(rdpSampledWithoutReplacementGaussian(event.sampleSize, event.sourceSize, effectiveNoiseMultiplier(event.event), orders));
      return;
    case 'selfComposed':
      checkCount(event.count);
      accumulate(acc, event.event, count * event.count, orders, options);
      return;
    case 'composed':
      for (const inner of event.events) accumulate(acc, inner, count, orders, options);
      return;
    default: {
      const never: never = event;
      throw unsupported(`unknown DP event ${JSON.stringify(never)}`, event);
    }
  }
}

/** The RDP curve of `event` composed `count` times, at `orders`. Pure. */
export function rdpOfEvent(
  event: DpEvent,
  orders: readonly number[] = DEFAULT_ORDERS,
  options: AccountantOptions = {},
  count = 1,
): Float64Array<ArrayBuffer> {
  checkOrders(orders);
  const acc = new Float64Array(orders.length);
  accumulate(acc, event, count, orders, options);
  return acc;
}

/** Stateful convenience over `rdpOfEvent`: compose events one by one, ask for ε at any time. */
export class RdpAccountant {
  private readonly orderList: readonly number[];
  private readonly curve: Float64Array;
  private readonly options: AccountantOptions;

  constructor(orders: readonly number[] = DEFAULT_ORDERS, options: AccountantOptions = {}) {
    checkOrders(orders);
    this.orderList = Object.freeze(orders.slice());
    this.curve = new Float64Array(orders.length);
    this.options = { ...options };
  }

  /** Adds `count` runs of `event`. Atomic: on error the curve is unchanged. */
  compose(event: DpEvent, count = 1): this {
    const delta = rdpOfEvent(event, this.orderList, this.options, count);
    for (let i = 0; i < this.curve.length; i++) this.curve[i] += delta[i];
    return this;
  }

  getEpsilon(delta: number, conversion: Conversion = 'improved'): EpsilonResult {
    return epsilonFromRdp(this.orderList, this.curve, delta, conversion);
  }

  getDelta(epsilon: number, conversion: Conversion = 'improved'): DeltaResult {
    return deltaFromRdp(this.orderList, this.curve, epsilon, conversion);
  }

  /** A copy of the current RDP curve (one value per order). */
  rdp(): Float64Array<ArrayBuffer> {
    return this.curve.slice();
  }

  orders(): readonly number[] {
    return this.orderList;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Conveniences for DP-FedAvg: `steps` rounds of the Poisson-subsampled Gaussian.

export interface EpsilonForParams {
  /** Poisson sampling probability of a client per round. */
  readonly q: number;
  readonly noiseMultiplier: number;
  /** Number of rounds. */
  readonly steps: number;
  readonly delta: number;
  readonly orders?: readonly number[];
  readonly conversion?: Conversion;
  readonly fractionalSeries?: RdpOptions['fractionalSeries'];
}

/** ε after `steps` rounds of the Poisson-subsampled Gaussian with rate q and noise multiplier z. */
export function epsilonFor(params: EpsilonForParams): EpsilonResult {
  const orders = params.orders ?? DEFAULT_ORDERS;
  const event = selfComposedEvent(poissonSampledEvent(params.q, gaussianEvent(params.noiseMultiplier)), params.steps);
  const curve = rdpOfEvent(event, orders, { fractionalSeries: params.fractionalSeries });
  return epsilonFromRdp(orders, curve, params.delta, params.conversion ?? 'improved');
}

export interface CalibrationTarget {
  readonly targetEpsilon: number;
  readonly delta: number;
  readonly orders?: readonly number[];
  readonly conversion?: Conversion;
  readonly fractionalSeries?: RdpOptions['fractionalSeries'];
  /** Stop when the bracket is narrower than this fraction of its upper end. Default 1e-6. */
  readonly relativeTolerance?: number;
}

const MAX_NOISE_MULTIPLIER = 2 ** 20;

/**
 * Smallest noise multiplier z (to `relativeTolerance`) for which `makeEvent(z)` meets the ε target;
 * the returned z always meets it (it is the upper end of the final bracket). ε is non-increasing in z
 * for every event this accountant supports, so bisection is sound. Throws CohortError
 * UNATTAINABLE_EPSILON when even z = 2^20 does not reach the target (the conversion has a floor > 0
 * that depends on δ and the largest order).
 */
export function calibrateNoiseMultiplierFor(
  makeEvent: (noiseMultiplier: number) => DpEvent,
  target: CalibrationTarget,
  options: AccountantOptions = {},
): number {
  const { targetEpsilon, delta } = target;
  if (!(targetEpsilon > 0) || !Number.isFinite(targetEpsilon)) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `target epsilon must be finite and > 0, got ${targetEpsilon}`, {
      targetEpsilon,
    });
  }
  const orders = target.orders ?? DEFAULT_ORDERS;
  const conversion = target.conversion ?? 'improved';
  const tolerance = target.relativeTolerance ?? 1e-6;
  if (!(tolerance > 0 && tolerance < 1)) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `relativeTolerance must be in (0, 1), got ${tolerance}`);
  }
  const rdpOptions: AccountantOptions = { ...options, fractionalSeries: target.fractionalSeries ?? options.fractionalSeries };
  const epsilonAt = (z: number): number =>
    epsilonFromRdp(orders, rdpOfEvent(makeEvent(z), orders, rdpOptions), delta, conversion).epsilon;
  const meets = (z: number): boolean => epsilonAt(z) <= targetEpsilon;

  if (meets(0)) return 0; // nothing is sampled or composed: no noise needed
  let hi = 1;
  let lo = 0;
  if (meets(hi)) {
    lo = hi / 2;
    while (meets(lo)) {
      hi = lo;
      lo /= 2;
      if (lo < 1e-12) return hi;
    }
  } else {
    while (!meets(hi)) {
      lo = hi;
      hi *= 2;
      if (hi > MAX_NOISE_MULTIPLIER) {
        throw new CohortError(
          'UNATTAINABLE_EPSILON',
          `epsilon ${targetEpsilon} at delta ${delta} is not attainable: even noise multiplier ${MAX_NOISE_MULTIPLIER} gives ` +
            `epsilon ${epsilonAt(MAX_NOISE_MULTIPLIER)} (raise the target, raise delta, or add larger orders)`,
          { targetEpsilon, delta, floor: epsilonAt(MAX_NOISE_MULTIPLIER) },
        );
      }
    }
  }
  while (hi - lo > tolerance * hi) {
    const mid = 0.5 * (lo + hi);
    if (meets(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

export interface CalibrationParams extends CalibrationTarget {
  /** Poisson sampling probability of a client per round. */
  readonly q: number;
  /** Number of rounds. */
  readonly steps: number;
}

/** Smallest z such that `steps` rounds of the Poisson-subsampled Gaussian at rate q stay within ε. */
export function calibrateNoiseMultiplier(params: CalibrationParams): number {
  const { q, steps } = params;
  return calibrateNoiseMultiplierFor((z) => selfComposedEvent(poissonSampledEvent(q, gaussianEvent(z)), steps), params);
}

/**
 * Same for fixed-size cohorts of `sampleSize` out of `sourceSize` (replace-one relation; the event's z is
 * relative to the replace-one sensitivity, see events.ts).
 */
export function calibrateNoiseMultiplierWithoutReplacement(
  params: CalibrationTarget & { readonly sampleSize: number; readonly sourceSize: number; readonly steps: number },
): number {
  const { sampleSize, sourceSize, steps } = params;
  return calibrateNoiseMultiplierFor(
    (z) => selfComposedEvent(sampledWithoutReplacementEvent(sampleSize, sourceSize, gaussianEvent(z)), steps),
    params,
    { neighboringRelation: 'replaceOne' },
  );
}
