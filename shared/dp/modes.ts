/**
 * Where the noise is added, as data: the DP modes of DESIGN.md §2 step 4 and §3, the job-config schema
 * that selects one, and the DP event each round appends to the privacy ledger.
 *
 * Throughout, z is the noise multiplier and C the clip norm of the job; the *aggregate* (the sum over the
 * cohort) must carry Gaussian noise of standard deviation σ = z·C (DP-FedAvg, McMahan et al. 2018).
 *
 * - off:         no clipping requirement, no noise, no accounting.
 * - central:     clients clip; the server adds N(0, σ²) to the sum (`centralNoisyMean`). Trusts the
 *                server with individual updates unless SecAgg hides them.
 * - local:       every client adds the full N(0, σ²) to its own clipped update. Needs no trust, costs
 *                m times the variance in the aggregate. Accounted as an unsampled Gaussian per attempt
 *                under replace-one adjacency: the server sees each noised update and who sent it, so
 *                what the noise hides is the update's content, whose L2 sensitivity is 2C (a clipped u
 *                replaced by a clipped u'), and sampling does not amplify privacy against it.
 * - distributed: every client adds noise of variance σ²/m_min (discrete Gaussian in the integer domain,
 *                `distributedNoiseStddev`), so the sum over any s ≥ m_min survivors carries variance
 *                s·σ²/m_min ≥ σ². Requires secure aggregation, otherwise each update is only protected
 *                by its own small share of noise. Accounted exactly like central mode at the worst case
 *                the round allows, s = m_min (a round with fewer survivors must be aborted, never
 *                released). Weak point: the sum of discrete Gaussians is not exactly a discrete Gaussian,
 *                and we account it as the continuous Gaussian of the same variance; Kairouz, Liu,
 *                Steinke 2021 ("The Distributed Discrete Gaussian Mechanism for Federated Learning with
 *                Secure Aggregation") bound the gap; it decays like exp(−π²σ_i²) in the per-client
 *                integer-domain σ_i (negligible from σ_i of a few units) but is not added to our ε.
 *                Rounding/modular-wrap effects of the integer encoding are not accounted here either
 *                (they are the SecAgg encoder's responsibility).
 */
import { z } from 'zod';
import { CohortError } from '../errors.ts';
import {
  type DpEvent,
  composedEvent,
  distributedDiscreteGaussianEvent,
  gaussianEvent,
  poissonSampledEvent,
  sampledWithoutReplacementEvent,
} from '../privacy/events.ts';
import { ADAPTIVE_CLIPPING_DEFAULTS, valueNoiseMultiplier } from './adaptive-clipping.ts';
import { checkClipNorm } from './clip.ts';

export const DP_MODES = ['off', 'central', 'local', 'distributed'] as const;
export type DpMode = (typeof DP_MODES)[number];

export interface DpModeSpec {
  readonly mode: DpMode;
  /** Who adds noise. */
  readonly noiseAddedBy: 'nobody' | 'server' | 'each client';
  /** Per-client share of the aggregate noise variance σ² (1 = the full σ², 1/m_min = split). */
  readonly noiseShare: 'none' | 'full' | 'split';
  readonly requiresSecureAggregation: boolean;
  /** Whether the privacy guarantee holds against the coordinator itself. */
  readonly protectsAgainstServer: boolean;
  /** Which DP event a round contributes (see `roundDpEvent`). */
  readonly accounting: string;
}

export const DP_MODE_SPECS: Readonly<Record<DpMode, DpModeSpec>> = Object.freeze({
  off: {
    mode: 'off',
    noiseAddedBy: 'nobody',
    noiseShare: 'none',
    requiresSecureAggregation: false,
    protectsAgainstServer: false,
    accounting: 'none',
  },
  central: {
    mode: 'central',
    noiseAddedBy: 'server',
    noiseShare: 'full',
    requiresSecureAggregation: false,
    protectsAgainstServer: false,
    accounting: 'sampled Gaussian with z per round (Poisson: MTZ 2019; fixed cohort: WBK 2019, replace-one)',
  },
  local: {
    mode: 'local',
    noiseAddedBy: 'each client',
    noiseShare: 'full',
    requiresSecureAggregation: false,
    protectsAgainstServer: true,
    accounting: 'unsampled Gaussian per attempt, replace-one (sensitivity 2C, event z/2; no amplification: the server sees who took part)',
  },
  distributed: {
    mode: 'distributed',
    noiseAddedBy: 'each client',
    noiseShare: 'split',
    requiresSecureAggregation: true,
    protectsAgainstServer: true,
    accounting:
      'against the coordinator: the unsampled sum of m_min discrete Gaussians, replace-one (KLS21); against model consumers: ' +
      'the Poisson-subsampled sum (general subsampling bound, Zhu & Wang 2019)',
  },
});

function checkNoiseMultiplier(noiseMultiplier: number): void {
  if (!(noiseMultiplier >= 0) || !Number.isFinite(noiseMultiplier)) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `noise multiplier must be finite and ≥ 0, got ${noiseMultiplier}`);
  }
}

/** Central mode: the server adds N(0, σ²) to the sum, σ = z·C. */
export function centralNoiseStddev(noiseMultiplier: number, clipNorm: number): number {
  checkNoiseMultiplier(noiseMultiplier);
  checkClipNorm(clipNorm);
  return noiseMultiplier * clipNorm;
}

/** Local mode: each client adds N(0, σ²) to its own update, σ = z·C. */
export function localNoiseStddev(noiseMultiplier: number, clipNorm: number): number {
  return centralNoiseStddev(noiseMultiplier, clipNorm);
}

/**
 * Distributed mode: each client's noise standard deviation z·C/√m_min, so that the sum over at least
 * `minSurvivors` clients carries standard deviation ≥ z·C. (In the integer domain of SecAgg, after
 * scaling by s, the discrete Gaussian variance per client is (s·z·C)²/m_min.)
 */
export function distributedNoiseStddev(noiseMultiplier: number, clipNorm: number, minSurvivors: number): number {
  if (!Number.isInteger(minSurvivors) || minSurvivors < 1) {
    throw new CohortError('BAD_PRIVACY_PARAMETER', `minSurvivors must be an integer ≥ 1, got ${minSurvivors}`, { minSurvivors });
  }
  return centralNoiseStddev(noiseMultiplier, clipNorm) / Math.sqrt(minSurvivors);
}

// ---------------------------------------------------------------------------------------------------------
// Job configuration.

const positive = (name: string) =>
  z
    .number({ error: `${name} must be a number` })
    .positive({ error: `${name} must be > 0` })
    .finite({ error: `${name} must be finite` });

export const AdaptiveClippingConfigSchema = z
  .object({
    initialClipNorm: positive('dp.adaptiveClipping.initialClipNorm').default(ADAPTIVE_CLIPPING_DEFAULTS.initialClipNorm),
    targetQuantile: z
      .number({ error: 'dp.adaptiveClipping.targetQuantile must be a number' })
      .gt(0, { error: 'dp.adaptiveClipping.targetQuantile must be in (0, 1)' })
      .lt(1, { error: 'dp.adaptiveClipping.targetQuantile must be in (0, 1)' })
      .default(ADAPTIVE_CLIPPING_DEFAULTS.targetQuantile),
    learningRate: positive('dp.adaptiveClipping.learningRate').default(ADAPTIVE_CLIPPING_DEFAULTS.learningRate),
    /** σ_b; default (when absent) is expected cohort size / 20, decided at run time. */
    countNoiseStddev: z
      .number({ error: 'dp.adaptiveClipping.countNoiseStddev must be a number' })
      .min(0, { error: 'dp.adaptiveClipping.countNoiseStddev must be ≥ 0' })
      .finite({ error: 'dp.adaptiveClipping.countNoiseStddev must be finite' })
      .optional(),
  })
  .strict();

/**
 * Whom a guarantee is against. `coordinator`: whoever runs (or breaks into) the coordinator, which sees
 * the cohort, every message and, in local mode, each noised update; sampling amplifies nothing against
 * it. `published`: anyone who sees only the published models, for whom Poisson sampling does amplify.
 */
export const AUDIENCES = ['coordinator', 'published'] as const;
export type Audience = (typeof AUDIENCES)[number];

export const PrivacyBudgetSchema = z
  .object({
    epsilon: positive('dp.budget.epsilon'),
    /**
     * The ε the budget applies to. Default: 'coordinator' in local and distributed mode (the stricter;
     * protecting against the coordinator is what those modes are for), 'published' in central mode
     * (which trusts the coordinator and offers no guarantee against it).
     */
    against: z.enum(AUDIENCES, { error: "dp.budget.against must be 'coordinator' or 'published'" }).optional(),
    delta: z
      .number({ error: 'dp.budget.delta must be a number' })
      .gt(0, { error: 'dp.budget.delta must be in (0, 1)' })
      .lt(1, { error: 'dp.budget.delta must be in (0, 1)' }),
  })
  .strict();

/**
 * The `dp` section of a job config. Output: `adaptiveClipping` is filled with its defaults exactly when
 * `clipNorm` is 'adaptive', and absent otherwise.
 */
export const DpConfigSchema = z
  .object({
    mode: z.enum(DP_MODES, { error: `dp.mode must be one of ${DP_MODES.map((m) => `'${m}'`).join(', ')}` }),
    noiseMultiplier: z
      .number({ error: 'dp.noiseMultiplier must be a number' })
      .min(0, { error: 'dp.noiseMultiplier must be ≥ 0' })
      .finite({ error: 'dp.noiseMultiplier must be finite' })
      .default(0),
    clipNorm: z
      .union([positive('dp.clipNorm'), z.literal('adaptive')], {
        error: "dp.clipNorm must be a number > 0 or 'adaptive'",
      })
      .optional(),
    adaptiveClipping: AdaptiveClippingConfigSchema.optional(),
    budget: PrivacyBudgetSchema.optional(),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const issue = (path: string, message: string): void => {
      ctx.addIssue({ code: 'custom', path: [path], message });
    };
    if (cfg.mode !== 'off') {
      if (cfg.clipNorm === undefined) issue('clipNorm', `dp.clipNorm is required when dp.mode is '${cfg.mode}'`);
      if (cfg.noiseMultiplier === 0) {
        issue('noiseMultiplier', `dp.noiseMultiplier must be > 0 when dp.mode is '${cfg.mode}' (0 gives no privacy; use mode 'off')`);
      }
    } else if (cfg.budget !== undefined) {
      issue('budget', "dp.budget needs a DP mode: it cannot be met with dp.mode 'off'");
    }
    if (cfg.adaptiveClipping !== undefined && cfg.clipNorm !== 'adaptive') {
      issue('adaptiveClipping', "dp.adaptiveClipping is only allowed when dp.clipNorm is 'adaptive'");
    }
    if (cfg.clipNorm === 'adaptive' && cfg.mode === 'local') {
      issue('clipNorm', "adaptive clipping is not supported in 'local' mode (the clipping-bit sum would need local noise too)");
    }
    if (cfg.clipNorm === 'adaptive' && cfg.mode === 'distributed') {
      issue(
        'clipNorm',
        "adaptive clipping is not supported in 'distributed' mode: each client's clipping bit would reach the coordinator un-noised, " +
          'outside secure aggregation, and distributed mode promises privacy against the coordinator',
      );
    }
    if (cfg.mode === 'central' && cfg.budget?.against === 'coordinator') {
      issue('budget', "dp.budget.against 'coordinator' cannot be met in 'central' mode: the coordinator sees every clipped update; use 'local' or 'distributed'");
    }
    const sigmaB = cfg.adaptiveClipping?.countNoiseStddev;
    if (cfg.clipNorm === 'adaptive' && sigmaB !== undefined && cfg.mode !== 'off' && 2 * sigmaB <= cfg.noiseMultiplier) {
      issue(
        'adaptiveClipping',
        `dp.adaptiveClipping.countNoiseStddev ${sigmaB} is too small for noiseMultiplier ${cfg.noiseMultiplier}: ` +
          `need countNoiseStddev > noiseMultiplier / 2 = ${cfg.noiseMultiplier / 2}`,
      );
    }
  })
  .transform((cfg) => ({
    ...cfg,
    adaptiveClipping: cfg.clipNorm === 'adaptive' ? (cfg.adaptiveClipping ?? AdaptiveClippingConfigSchema.parse({})) : undefined,
  }));

export type DpConfig = z.output<typeof DpConfigSchema>;

/** The audience the job's budget (and the ε it reports first) applies to; see PrivacyBudgetSchema. */
export function budgetAudience(dp: Pick<DpConfig, 'mode' | 'budget'>): Audience {
  if (dp.mode === 'central' || dp.mode === 'off') return 'published';
  return dp.budget?.against ?? 'coordinator';
}
export type DpConfigInput = z.input<typeof DpConfigSchema>;

// ---------------------------------------------------------------------------------------------------------
// Accounting: the DP event of one round.

export type CohortSampling =
  /** Each eligible client independently with probability q. */
  | { readonly kind: 'poisson'; readonly q: number }
  /** Exactly `sampleSize` of `populationSize` clients, uniformly without replacement. */
  | { readonly kind: 'fixed'; readonly sampleSize: number; readonly populationSize: number };

export interface RoundEventParams {
  readonly mode: DpMode;
  /** The job's total z (value query and, with adaptive clipping, count query together). */
  readonly noiseMultiplier: number;
  readonly sampling: CohortSampling;
  /** Present when the round also ran the adaptive-clipping count query with this σ_b. */
  readonly countNoiseStddev?: number;
}

/**
 * The DP event one round adds to the ledger; null for mode 'off'.
 *
 * Noise multipliers in the event are relative to the sensitivity under the event's neighbouring
 * relation (events.ts): under add-or-remove (Poisson) the value sum has sensitivity C and the centred
 * clipping-bit sum 1/2, so the event carries z_Δ and 2σ_b; under replace-one (fixed cohorts) both
 * sensitivities double, so it carries z_Δ/2 and σ_b. Without adaptive clipping z_Δ = z.
 */
export function roundDpEvent(params: RoundEventParams): DpEvent | null {
  return roundDpPlan(params)?.event ?? null;
}

/** A round's DP events together with the noise they account: the one source both the noise and the ledger read. */
export interface RoundDpPlan {
  /** What a committed round releases to anyone who sees the published models. */
  event: DpEvent;
  /**
   * What the coordinator sees, accounted against it (unsampled, replace-one); null in central mode,
   * which trusts the coordinator and gives no guarantee against it.
   */
  coordinatorEvent: DpEvent | null;
  /** z of the value query: z, or z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2) > z with adaptive clipping (Andrew et al. 2021, Thm 1). */
  valueNoiseMultiplier: number;
  /** σ_b of the clipping-bit count query, with adaptive clipping. */
  countNoiseStddev?: number;
}

/** The round's event and the noise multipliers in it (in add-or-remove units); null for mode 'off'. */
export function roundDpPlan(params: RoundEventParams): RoundDpPlan | null {
  const { mode, noiseMultiplier, sampling, countNoiseStddev } = params;
  if (mode === 'off') return null;
  checkNoiseMultiplier(noiseMultiplier);
  if (mode === 'local') {
    if (countNoiseStddev !== undefined) {
      throw new CohortError('UNSUPPORTED_EVENT', "adaptive clipping is not supported in 'local' mode");
    }
    // Replace-one: a client's noised update differs by at most 2C when its content changes, so the event
    // carries σ/(2C) = z/2. The coordinator sees exactly this; published models are functions of it.
    const event = gaussianEvent(noiseMultiplier / 2);
    return { event, coordinatorEvent: event, valueNoiseMultiplier: noiseMultiplier };
  }
  if (mode === 'distributed' && countNoiseStddev !== undefined) {
    throw new CohortError('UNSUPPORTED_EVENT', "adaptive clipping is not supported in 'distributed' mode");
  }
  const valueZ = countNoiseStddev === undefined ? noiseMultiplier : valueNoiseMultiplier(noiseMultiplier, countNoiseStddev);
  const inner = (relationFactor: number): DpEvent =>
    countNoiseStddev === undefined
      ? gaussianEvent(valueZ / relationFactor)
      : composedEvent([gaussianEvent(valueZ / relationFactor), gaussianEvent((2 * countNoiseStddev) / relationFactor)]);
  const event =
    sampling.kind === 'poisson'
      ? poissonSampledEvent(sampling.q, inner(1))
      : sampledWithoutReplacementEvent(sampling.sampleSize, sampling.populationSize, inner(2));
  // Distributed mode, before the SecAgg encoding is known: the continuous Gaussian of the same variance
  // against the coordinator (unsampled, replace-one). `distributedRoundEvents` replaces both events with
  // the discrete-Gaussian ones once the round's encoding is fixed.
  const coordinatorEvent = mode === 'distributed' ? gaussianEvent(valueZ / 2) : null;
  return { event, coordinatorEvent, valueNoiseMultiplier: valueZ, ...(countNoiseStddev === undefined ? {} : { countNoiseStddev }) };
}

/** A distributed round's SecAgg encoding, as the events need it. */
export interface DistributedEncoding {
  /** Quantisation step γ (model units per integer step). */
  readonly gamma: number;
  /** Δ₂·γ: one client's rounded L2 sensitivity, model units (KLS21 Thm 1). */
  readonly sensitivity: number;
  /** Each client's discrete-Gaussian σ, model units. */
  readonly noiseStddev: number;
  /** Survivors the round needs: the sum holds at least this many noise shares. */
  readonly minSurvivors: number;
  /** Coordinates per update. */
  readonly dimension: number;
}

/**
 * The events of a distributed round once its encoding is fixed: the sum of at least `minSurvivors`
 * per-client discrete Gaussians (KLS21), in SecAgg's integer units.
 * - Against the coordinator: unsampled, replace-one (it knows the cohort; a client's rounded update
 *   changes by at most 2Δ₂ in L2, and the L1 bound follows from it, shared/privacy/ddgauss.ts).
 * - Against model consumers: Poisson-subsampled under add-or-remove (sensitivity Δ₂), by the general
 *   subsampling bound of Zhu & Wang 2019 — the Gaussian-specific analysis of MTZ 2019 is not proven for a
 *   sum of discrete Gaussians. Fixed-size cohorts claim no amplification (no analysis of sampling without
 *   replacement for this mechanism is implemented): their published event is the coordinator's.
 */
export function distributedRoundEvents(sampling: CohortSampling, enc: DistributedEncoding): { event: DpEvent; coordinatorEvent: DpEvent } {
  const l2Sensitivity = enc.sensitivity / enc.gamma;
  const base = { localStddev: enc.noiseStddev / enc.gamma, clients: enc.minSurvivors, dimension: enc.dimension };
  const coordinatorEvent = distributedDiscreteGaussianEvent({ ...base, l2Sensitivity: 2 * l2Sensitivity });
  const event =
    sampling.kind === 'poisson' ? poissonSampledEvent(sampling.q, distributedDiscreteGaussianEvent({ ...base, l2Sensitivity })) : coordinatorEvent;
  return { event, coordinatorEvent };
}
