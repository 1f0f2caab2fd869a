/**
 * The client's privacy floor: the weakest round parameters this client accepts. A round announced
 * with weaker ones is refused before any training, and the refusal says which requirement failed.
 */
import { z } from 'zod';
import type { RoundPolicy } from './engine.ts';

export const PrivacyFloorSchema = z
  .object({
    /** Refuse rounds without differential privacy. Implied by any other field. */
    requireDp: z.boolean().default(false),
    /** Refuse `central` mode (a server that sees individual updates): only `local`/`distributed`. */
    forbidCentral: z.boolean().default(false),
    minNoiseMultiplier: z.number().min(0).optional(),
    maxClipNorm: z.number().positive().optional(),
    minCohort: z.number().int().min(1).optional(),
    /** Refuse a round after which the job's cumulative ε would exceed this. */
    maxEpsilon: z.number().positive().optional(),
  })
  .strict();
export type PrivacyFloor = z.output<typeof PrivacyFloorSchema>;
export type PrivacyFloorInput = z.input<typeof PrivacyFloorSchema>;

export function privacyFloorPolicy(floor: PrivacyFloor): RoundPolicy {
  const demandsDp =
    floor.requireDp ||
    floor.forbidCentral ||
    floor.minNoiseMultiplier !== undefined ||
    floor.maxClipNorm !== undefined ||
    floor.minCohort !== undefined ||
    floor.maxEpsilon !== undefined;
  return (train) => {
    const p = train.privacy;
    if (!p) return demandsDp ? 'the round has no differential privacy and this client requires it' : undefined;
    if (floor.forbidCentral && p.mode === 'central') {
      return 'central DP lets the server see individual updates; this client accepts only local or distributed DP';
    }
    if (floor.minNoiseMultiplier !== undefined && p.noiseMultiplier < floor.minNoiseMultiplier) {
      return `noise multiplier ${p.noiseMultiplier} is below this client's minimum ${floor.minNoiseMultiplier}`;
    }
    if (floor.maxClipNorm !== undefined && p.clipNorm > floor.maxClipNorm) {
      return `clip norm ${p.clipNorm} is above this client's maximum ${floor.maxClipNorm}`;
    }
    if (floor.minCohort !== undefined && p.cohortSize < floor.minCohort) {
      return `cohort of ${p.cohortSize} is below this client's minimum ${floor.minCohort}`;
    }
    if (floor.maxEpsilon !== undefined && p.epsilonAfterRound > floor.maxEpsilon) {
      return `ε after this round would be ${p.epsilonAfterRound.toFixed(4)} (δ=${p.delta}), above this client's maximum ${floor.maxEpsilon}`;
    }
    return undefined;
  };
}
