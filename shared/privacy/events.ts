/**
 * DP events: what a mechanism did, as plain data.
 *
 * The shape follows Google's dp_accounting (`dp_event.py`): an event describes a mechanism and how it
 * was composed, and says nothing about how to analyse it. Accountants (here: `RdpAccountant`) are pure
 * functions of the events. The round engine appends one event per round to the privacy ledger as JSON,
 * so the whole privacy history of a job can be re-analysed later, by this accountant or a better one.
 *
 * Units. `noiseMultiplier` is the standard deviation of the Gaussian noise divided by the L2
 * sensitivity of the query it protects, under the neighbouring relation of the enclosing sampling
 * event:
 * - `poissonSampled` is analysed under add-or-remove-one (a client's whole data present or absent);
 *   the sensitivity of a sum of updates clipped to C is C, so z = σ / C.
 * - `sampledWithoutReplacement` (fixed-size cohorts) is analysed under replace-one; the sensitivity of
 *   the same sum is 2C, so the event must carry z = σ / (2C). `roundDpEvent` in `shared/dp/modes.ts`
 *   does this conversion.
 *
 * `distributedDiscreteGaussian` is the exception: it carries its own sensitivities (in the integer
 * domain of secure aggregation), so it means the same under either relation; the caller passes the
 * replace-one sensitivities (twice the add-or-remove ones) when that is the relation analysed.
 */
import { z } from 'zod';

export interface GaussianDpEvent {
  readonly kind: 'gaussian';
  /** σ / sensitivity; 0 means no noise (infinite privacy loss). */
  readonly noiseMultiplier: number;
}

export interface PoissonSampledDpEvent {
  readonly kind: 'poissonSampled';
  /** Each client takes part independently with this probability. */
  readonly samplingProbability: number;
  readonly event: DpEvent;
}

export interface SampledWithoutReplacementDpEvent {
  readonly kind: 'sampledWithoutReplacement';
  /** Cohort size m (fixed). */
  readonly sampleSize: number;
  /** Population size n the cohort is drawn from uniformly without replacement. */
  readonly sourceSize: number;
  readonly event: DpEvent;
}

export interface SelfComposedDpEvent {
  readonly kind: 'selfComposed';
  readonly event: DpEvent;
  readonly count: number;
}

export interface ComposedDpEvent {
  readonly kind: 'composed';
  readonly events: readonly DpEvent[];
}

/**
 * One release of the sum of n clients' integer vectors, each with its own N_Z(0, σ²)^d discrete
 * Gaussian noise, as secure aggregation delivers it: the distributed discrete Gaussian of Kairouz, Liu,
 * Steinke 2021 ("The Distributed Discrete Gaussian Mechanism for Federated Learning with Secure
 * Aggregation", ICML). Every field is in the integer domain, i.e. after scaling by 1/γ and
 * (conditional) randomized rounding; `ddgaussEpsilon` in ddgauss.ts converts from model units.
 */
export interface DistributedDiscreteGaussianDpEvent {
  readonly kind: 'distributedDiscreteGaussian';
  /** Δ₂: the L2 norm by which one client can move the integer sum (> 0). */
  readonly l2Sensitivity: number;
  /**
   * Δ₁, the L1 counterpart (> 0). Absent: Δ₂·min(√d, Δ₂), which holds for every integer vector of L2
   * norm ≤ Δ₂ (KLS21's released code, `rounded_l1_norm_bound`); present: the smaller of the two.
   */
  readonly l1Sensitivity?: number;
  /** σ of each client's N_Z(0, σ²), in integer units (> 0). */
  readonly localStddev: number;
  /** n ≥ 1: the number of noise shares the released sum is guaranteed to contain. */
  readonly clients: number;
  /** d ≥ 1: the (padded) dimension of the vectors. */
  readonly dimension: number;
}

export type DpEvent =
  | GaussianDpEvent
  | DistributedDiscreteGaussianDpEvent
  | PoissonSampledDpEvent
  | SampledWithoutReplacementDpEvent
  | SelfComposedDpEvent
  | ComposedDpEvent;

export type DpEventKind = DpEvent['kind'];

// ---------------------------------------------------------------------------------------------------------
// Constructors (plain objects, frozen so a ledger entry cannot be mutated after the fact).

export function gaussianEvent(noiseMultiplier: number): GaussianDpEvent {
  return Object.freeze({ kind: 'gaussian', noiseMultiplier });
}

export interface DistributedDiscreteGaussianParams {
  readonly l2Sensitivity: number;
  readonly l1Sensitivity?: number;
  readonly localStddev: number;
  readonly clients: number;
  readonly dimension: number;
}

/** The `distributedDiscreteGaussian` event (no `l1Sensitivity` key when it is not given). */
export function distributedDiscreteGaussianEvent(params: DistributedDiscreteGaussianParams): DistributedDiscreteGaussianDpEvent {
  const { l2Sensitivity, l1Sensitivity, localStddev, clients, dimension } = params;
  return Object.freeze({
    kind: 'distributedDiscreteGaussian',
    l2Sensitivity,
    ...(l1Sensitivity === undefined ? {} : { l1Sensitivity }),
    localStddev,
    clients,
    dimension,
  });
}

export function poissonSampledEvent(samplingProbability: number, event: DpEvent): PoissonSampledDpEvent {
  return Object.freeze({ kind: 'poissonSampled', samplingProbability, event });
}

export function sampledWithoutReplacementEvent(
  sampleSize: number,
  sourceSize: number,
  event: DpEvent,
): SampledWithoutReplacementDpEvent {
  return Object.freeze({ kind: 'sampledWithoutReplacement', sampleSize, sourceSize, event });
}

export function selfComposedEvent(event: DpEvent, count: number): SelfComposedDpEvent {
  return Object.freeze({ kind: 'selfComposed', event, count });
}

export function composedEvent(events: readonly DpEvent[]): ComposedDpEvent {
  return Object.freeze({ kind: 'composed', events: Object.freeze(events.slice()) });
}

// ---------------------------------------------------------------------------------------------------------
// Schema (the ledger stores events as JSON; this is the check at that boundary).

const GaussianSchema = z
  .object({
    kind: z.literal('gaussian'),
    noiseMultiplier: z
      .number({ error: 'noiseMultiplier must be a number' })
      .min(0, { error: 'noiseMultiplier must be ≥ 0' })
      .finite({ error: 'noiseMultiplier must be finite' }),
  })
  .strict();

const positiveFinite = (name: string) =>
  z
    .number({ error: `${name} must be a number` })
    .positive({ error: `${name} must be > 0` })
    .finite({ error: `${name} must be finite` });

const DistributedDiscreteGaussianSchema = z
  .object({
    kind: z.literal('distributedDiscreteGaussian'),
    l2Sensitivity: positiveFinite('l2Sensitivity'),
    l1Sensitivity: positiveFinite('l1Sensitivity').optional(),
    localStddev: positiveFinite('localStddev'),
    clients: z.number().int({ error: 'clients must be an integer' }).min(1, { error: 'clients must be ≥ 1' }),
    dimension: z.number().int({ error: 'dimension must be an integer' }).min(1, { error: 'dimension must be ≥ 1' }),
  })
  .strict();

const PoissonSampledSchema = z
  .object({
    kind: z.literal('poissonSampled'),
    samplingProbability: z
      .number({ error: 'samplingProbability must be a number' })
      .min(0, { error: 'samplingProbability must be in [0, 1]' })
      .max(1, { error: 'samplingProbability must be in [0, 1]' }),
    get event() {
      return DpEventSchema;
    },
  })
  .strict();

const SampledWithoutReplacementSchema = z
  .object({
    kind: z.literal('sampledWithoutReplacement'),
    sampleSize: z.number().int({ error: 'sampleSize must be an integer' }).min(0, { error: 'sampleSize must be ≥ 0' }),
    sourceSize: z.number().int({ error: 'sourceSize must be an integer' }).min(1, { error: 'sourceSize must be ≥ 1' }),
    get event() {
      return DpEventSchema;
    },
  })
  .strict()
  .refine((e) => e.sampleSize <= e.sourceSize, { error: 'sampleSize must not exceed sourceSize', path: ['sampleSize'] });

const SelfComposedSchema = z
  .object({
    kind: z.literal('selfComposed'),
    count: z.number().int({ error: 'count must be an integer' }).min(0, { error: 'count must be ≥ 0' }),
    get event() {
      return DpEventSchema;
    },
  })
  .strict();

const ComposedSchema = z
  .object({
    kind: z.literal('composed'),
    get events() {
      return z.array(DpEventSchema);
    },
  })
  .strict();

/** Validates a DpEvent read from JSON (the ledger). Recursive. */
export const DpEventSchema: z.ZodType<DpEvent> = z.discriminatedUnion('kind', [
  GaussianSchema,
  DistributedDiscreteGaussianSchema,
  PoissonSampledSchema,
  SampledWithoutReplacementSchema,
  SelfComposedSchema,
  ComposedSchema,
]);
