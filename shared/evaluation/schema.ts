/**
 * The wire form of evaluation statistics (`eval_result.stats`) and of a client's declared groups: every
 * number and array a client sends is bounded here (class count, array lengths, non-negative safe
 * integers); `inconsistency` (stats.ts) and the job's limits (server/round/ranges.ts) check the rest.
 */
import { z } from 'zod';
import { CALIBRATION_BINS, MAX_EVAL_CLASSES } from './stats.ts';

const tally = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const bins = z.array(tally).length(CALIBRATION_BINS);

export const EvalStatsSchema = z
  .object({
    numClasses: z.number().int().min(1).max(MAX_EVAL_CLASSES),
    count: tally,
    confusion: z.array(tally).max(MAX_EVAL_CLASSES * MAX_EVAL_CLASSES),
    binCount: bins,
    binCorrect: bins,
    binConfidence: bins,
    brier: tally,
    nll: tally,
  })
  .strict()
  .refine((s) => s.confusion.length === s.numClasses * s.numClasses, { message: 'confusion must have numClasses² entries', path: ['confusion'] });

const label = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits and . _ - only');

/** At most 8 attributes, e.g. { region: "eu", device: "low-end" }. */
export const MAX_GROUP_ATTRIBUTES = 8;
export const GroupsSchema = z.record(label, label).refine((g) => Object.keys(g).length <= MAX_GROUP_ATTRIBUTES, {
  message: `at most ${MAX_GROUP_ATTRIBUTES} group attributes`,
});
export type Groups = z.output<typeof GroupsSchema>;

const positive = z.number().refine(Number.isFinite, 'must be finite').pipe(z.number().gt(0).max(100));

/** At most 64 features of at most 64 bins each, and labels of at most MAX_EVAL_CLASSES classes. */
export const MAX_DRIFT_FEATURES = 64;
export const MAX_DRIFT_BINS = 64;

/** How clients summarise their data for drift: `bands` band means of each example, `bins` equal bins over [lo, hi]. */
export const DriftBinningSchema = z
  .object({
    bands: z.number().int().min(1).max(MAX_DRIFT_FEATURES),
    bins: z.number().int().min(2).max(MAX_DRIFT_BINS),
    lo: z.number().min(-1e6).max(1e6),
    hi: z.number().min(-1e6).max(1e6),
  })
  .strict()
  .refine((b) => b.hi > b.lo, { message: 'hi must be above lo', path: ['hi'] });
export type DriftBinning = z.output<typeof DriftBinningSchema>;

/**
 * What the coordinator asks of an evaluation besides loss and accuracy (`evaluate.health`): additive
 * statistics, NLL sums at candidate temperatures (federated temperature scaling), a drift sketch.
 */
export const HealthRequestSchema = z
  .object({
    stats: z.literal(true),
    /** Temperatures T at which to report Σ −ln softmax(z/T)_y (fixed point), at most 64. */
    temperatures: z.array(positive).max(64).optional(),
    /** A calibrated temperature: the client also reports the statistics of softmax(z / T) (`calibrated`). */
    temperature: positive.optional(),
    drift: DriftBinningSchema.optional(),
    /** DP evaluation: count at most this many examples in the statistics (it bounds one client's sensitivity). */
    maxExamples: z.number().int().min(1).max(2 ** 40).optional(),
  })
  .strict();
export type HealthRequest = z.output<typeof HealthRequestSchema>;

export const DriftSketchSchema = z
  .object({
    labels: z.array(tally).min(1).max(MAX_EVAL_CLASSES),
    features: z.array(z.array(tally).min(2).max(MAX_DRIFT_BINS)).max(MAX_DRIFT_FEATURES),
  })
  .strict();

/** A client's answer to a health request (`eval_result.health`). */
export const HealthReportSchema = z
  .object({
    stats: EvalStatsSchema,
    calibrated: EvalStatsSchema.optional(),
    temperatureNll: z.array(tally).max(64).optional(),
    drift: DriftSketchSchema.optional(),
  })
  .strict();
export type ClientHealthReport = z.output<typeof HealthReportSchema>;
