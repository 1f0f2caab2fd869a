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

export type DpEvent =
  | GaussianDpEvent
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
  PoissonSampledSchema,
  SampledWithoutReplacementSchema,
  SelfComposedSchema,
  ComposedSchema,
]);
