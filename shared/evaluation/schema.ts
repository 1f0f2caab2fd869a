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
