/**
 * The job configuration: one JSON file, validated in full before anything runs. Unknown keys are
 * errors (a typo must not silently fall back to a default).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../../shared/errors.ts';
import { DpConfigSchema } from '../../shared/dp/index.ts';
import { AggregatorConfigSchema, isRobust, LocalOptimizerSchema, minUpdatesFor, ServerOptimizerConfigSchema } from '../../shared/fl/index.ts';
import { ModelSpecSchema } from '../../shared/model/index.ts';
import { resolveFrozenLayers } from '../../shared/model/transfer.ts';
import { DEFAULT_LIMITS } from '../../shared/protocol/index.ts';
import { CriteriaSchema, DriftBinningSchema } from '../../shared/evaluation/index.ts';
import { SecAggConfigSchema } from './secagg.ts';
import { VALUE_LIMITS } from './ranges.ts';

const layerName = z.string().min(1).max(128);

/**
 * Transfer learning (issue 19): start from a pretrained base and train only some layers. `base` is an
 * earlier job's version in the same data dir (`{job, round?}`, default its latest kept version) or a tfjs
 * artifact (`{path}`: a model.json with its weights beside it, float32/float16/int8); its weights are
 * copied by name and shape, and every frozen weight must come from it. Only the trainable weights
 * travel, are clipped, noised, masked and aggregated (shared/model/transfer.ts).
 */
export const TransferSchema = z
  .object({
    base: z
      .union([
        z.object({ job: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/), round: z.number().int().min(1).optional() }).strict(),
        z.object({ path: z.string().min(1).max(4096) }).strict(),
      ])
      .optional(),
    freeze: z.array(layerName).min(1).max(1024).optional(),
    trainableFrom: layerName.optional(),
  })
  .strict();
export type TransferConfig = z.output<typeof TransferSchema>;

const positiveMs = z.number().int().min(1).max(7 * 24 * 3600 * 1000);

export const SamplingSchema = z.discriminatedUnion('mode', [
  z
    .object({
      mode: z.literal('poisson'),
      /** Each eligible client joins independently with this probability (what DP accounting assumes). */
      rate: z.number().gt(0).max(1),
    })
    .strict(),
  z
    .object({
      mode: z.literal('fixed'),
      /** Uniformly sampled without replacement; fewer if fewer are eligible (but at least minClients). */
      cohortSize: z.number().int().min(1).max(1_000_000),
    })
    .strict(),
]);
export type Sampling = z.output<typeof SamplingSchema>;

const JobConfigBase = z
  .object({
    /** Job id: a job with this id in the data dir is resumed, not restarted. */
    id: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, . _ - (1-64 chars)')
      .default('default'),
    model: ModelSpecSchema.prefault('mlp'),
    /** Seed of the initial global model. */
    seed: z.number().int().min(0).max(2 ** 32 - 1).default(0),
    rounds: z.number().int().min(1).max(1_000_000).default(10),
    sampling: SamplingSchema.prefault({ mode: 'fixed', cohortSize: 10 }),
    /** A round starts only with at least this many sampled clients. */
    minClients: z.number().int().min(1).default(2),
    /** A round commits only with at least this many survivors (default: minClients). */
    minSurvivors: z.number().int().min(1).optional(),
    training: z
      .object({
        epochs: z.number().int().min(1).max(1000).default(1),
        batchSize: z.number().int().min(1).max(65536).default(10),
        learningRate: z.number().positive().max(100).default(0.05),
        /** FedProx proximal term μ (Li et al. 2020); 0 = plain FedAvg local training. */
        proxMu: z.number().min(0).max(1e6).default(0),
        /**
         * The clients' local optimizer (shared/fl/local-optimizers.ts): sgd, momentum or adam, built fresh
         * each round (its state resets). It acts before the update is formed, so clipping and noise are unchanged.
         */
        optimizer: LocalOptimizerSchema.prefault({ name: 'sgd' }),
      })
      .strict()
      .prefault({}),
    optimizer: ServerOptimizerConfigSchema.prefault({ name: 'fedavg' }),
    transfer: TransferSchema.optional(),
    /**
     * Magnitude pruning of the global model (shared/model/prune.ts, Han et al. 2015) on the gradual
     * schedule of Zhu & Gupta 2017: each trainable kernel reaches `sparsity` at `endRound`; later rounds
     * fine-tune the survivors. Post-processing of the released model: no privacy cost.
     */
    prune: z
      .object({
        sparsity: z.number().min(0).lt(1),
        startRound: z.number().int().min(1).default(1),
        endRound: z.number().int().min(1),
      })
      .strict()
      .optional(),
    /**
     * How the round's updates become its pseudo-gradient (shared/fl/robust.ts): the streaming `mean`
     * (FedAvg), or a Byzantine-robust rule — median, trimmed-mean (β), krum (f, m), bulyan (f) — which
     * holds every update of the round (cohort bounded by `maxCohort`), so only without SecAgg and central DP.
     */
    aggregator: AggregatorConfigSchema.prefault({ name: 'mean' }),
    /** Differential privacy (shared/dp): mode, noise multiplier z, clip norm C, budget (ε, δ). */
    dp: DpConfigSchema.prefault({ mode: 'off' }),
    /** Secure aggregation (SecAgg+): the coordinator learns only the sum of the cohort's updates. */
    secagg: SecAggConfigSchema.prefault({}),
    evaluation: z
      .object({
        /**
         * Federated evaluation after every k-th committed round; 0 = never. Default 1, or 0 in a DP job:
         * clients report their loss and accuracy to the coordinator un-noised, a release the privacy
         * ledger cannot account, so a DP job evaluates only when `unaccountedMetrics` says so.
         */
        every: z.number().int().min(0).optional(),
        /** A DP job's explicit acknowledgement that evaluation metrics are released outside ε (e.g. public held-out data). */
        unaccountedMetrics: z.boolean().default(false),
        /** Fraction of connected idle clients asked to evaluate. */
        fraction: z.number().gt(0).max(1).default(1),
        batchSize: z.number().int().min(1).max(65536).default(100),
      })
      .strict()
      .prefault({}),
    /**
     * Model health (shared/evaluation): what federated evaluation asks clients for besides loss and
     * accuracy — additive statistics (calibration, confusion, Brier, NLL), per-group metrics, federated
     * temperature scaling, drift sketches — and what the coordinator does with them.
     */
    health: z
      .object({
        /** Ask evaluators for additive statistics. */
        stats: z.boolean().default(true),
        /** Groups with fewer examples than this are suppressed in fairness reports (metrics withheld, reason given). */
        minGroupCount: z.number().int().min(1).max(1e9).default(20),
        /** Federated temperature scaling (Guo et al. 2017): NLL sums over a grid of T, refined around the best. */
        temperatureScaling: z.boolean().default(false),
        /**
         * Group reweighting in FedAvg: a client whose declared group attribute matches `attribute=value`
         * has its update weighted by this factor (default 1). A fairness lever; its effect is measured by
         * `npm run sim -- fairness`.
         */
        groupWeights: z.record(z.string().regex(/^[A-Za-z0-9._-]{1,64}=[A-Za-z0-9._-]{1,64}$/, 'attribute=value'), z.number().positive().max(1000)).optional(),
        /**
         * A DP job's evaluation statistics, noised by the coordinator (central mode) with the Gaussian
         * mechanism and accounted in the ledger (shared/evaluation/private-stats.ts): z = σ / Δ, with
         * Δ = maxExamples·√7 the sensitivity of one client's weighted statistics.
         */
        dp: z
          .object({
            noiseMultiplier: z.number().positive().max(1e6),
            /** Each client's statistics count at most this many examples. */
            maxExamples: z.number().int().min(1).max(1e7).default(1000),
          })
          .strict()
          .optional(),
        drift: z
          .object({
            /** How clients summarise their data (band means of each example, fixed bins over [lo, hi]). */
            binning: DriftBinningSchema,
            /** Evaluations whose summed sketches form the reference window (the training data's). */
            referenceEvaluations: z.number().int().min(1).max(1000).default(2),
            /** Alert when the PSI of the labels or of any feature exceeds this (0.25: the usual "significant shift"). */
            psiThreshold: z.number().positive().max(100).default(0.25),
            /** Alert when the JS divergence (base 2) of labels or any feature exceeds this. */
            jsThreshold: z.number().positive().max(1).optional(),
            /** Alert when federated accuracy falls this far below the reference window's. */
            accuracyDrop: z.number().positive().max(1).optional(),
            /** On an alert: hold the production version for human review, or submit a retraining job from the version. */
            onDrift: z.enum(['review', 'retrain']).default('review'),
          })
          .strict()
          .optional(),
      })
      .strict()
      .prefault({}),
    /** Success criteria (shared/evaluation/criteria.ts), checked at each evaluation and by the promotion gates. */
    criteria: CriteriaSchema.optional(),
    /** Start from another job's stored version instead of the seed (a retraining job submitted on drift). */
    initFrom: z
      .object({ job: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/), round: z.number().int().min(1) })
      .strict()
      .optional(),
    timeouts: z
      .object({
        /** Give up (job failed) if too few clients for this long; 0 = wait forever. */
        waitForClientsMs: z.number().int().min(0).default(0),
        trainMs: positiveMs.default(120_000),
        evaluateMs: positiveMs.default(60_000),
        /** A connection that has not completed hello by then is closed. */
        helloMs: positiveMs.default(10_000),
        /** Pause before retrying a round that could not start or was aborted. */
        retryDelayMs: z.number().int().min(0).max(3_600_000).default(1_000),
      })
      .strict()
      .prefault({}),
    /** The job fails after this many aborted attempts at the same round. */
    maxAttemptsPerRound: z.number().int().min(1).default(5),
    limits: z
      .object({
        maxPayloadBytes: z.number().int().min(1024).max(2 ** 31).default(DEFAULT_LIMITS.maxPayloadBytes),
        chunkBytes: z.number().int().min(4096).max(16 * 1024 * 1024).default(DEFAULT_LIMITS.chunkBytes),
        /**
         * Range checks on what clients report (server/round/ranges.ts): a message outside them is
         * refused with OUT_OF_RANGE and its sender excluded from the round. Bounded inputs keep every
         * aggregate finite: Σ over a cohort of ≤ 10^6 of (≤ 10^7 examples × ≤ 10^6) stays far below 10^308.
         */
        maxExamplesPerClient: z.number().int().min(1).max(2 ** 40).default(VALUE_LIMITS.maxExamplesPerClient),
        /** Largest |loss| or |metric| a client may report. */
        maxMetricValue: z.number().positive().max(1e12).default(VALUE_LIMITS.maxMetricValue),
        /** Largest |element| of a plain update vector (a delta of the model's weights). */
        maxUpdateValue: z.number().positive().max(1e12).default(VALUE_LIMITS.maxUpdateValue),
      })
      .strict()
      .prefault({}),
    checkpoints: z
      .object({ keep: z.number().int().min(1).default(3) })
      .strict()
      .prefault({}),
    /**
     * Promotion gates (server/ops/gates.ts): a version becomes `production` automatically (`auto`) only
     * when it passes every gate set here; a manual promotion that fails one needs `force`, audited.
     */
    promote: z
      .object({
        auto: z.boolean().default(false),
        minAccuracy: z.number().min(0).max(1).optional(),
        maxLoss: z.number().positive().finite().optional(),
        maxEpsilon: z.number().positive().finite().optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export const JobConfigSchema = JobConfigBase
  .superRefine((cfg, ctx) => {
    if (cfg.minSurvivors !== undefined && cfg.minSurvivors > cfg.minClients) {
      ctx.addIssue({ code: 'custom', path: ['minSurvivors'], message: `must be ≤ minClients (${cfg.minClients})` });
    }
    if (cfg.dp.mode === 'distributed' && !cfg.secagg.enabled) {
      ctx.addIssue({
        code: 'custom',
        path: ['dp', 'mode'],
        message: "'distributed' DP needs secure aggregation: set secagg.enabled to true (or use 'central' or 'local')",
      });
    }
    if (cfg.secagg.enabled) {
      if (cfg.dp.clipNorm === 'adaptive') {
        ctx.addIssue({ code: 'custom', path: ['dp', 'clipNorm'], message: 'adaptive clipping is not supported with secure aggregation yet: use a number' });
      }
      if (cfg.dp.mode === 'off' && cfg.secagg.clipNorm === undefined) {
        ctx.addIssue({ code: 'custom', path: ['secagg', 'clipNorm'], message: 'secure aggregation encodes clipped updates: set secagg.clipNorm (or a DP mode with dp.clipNorm)' });
      }
      if (cfg.dp.mode === 'local') {
        // The SecAgg client encodes noise only for distributed DP; local noise inside a masked sum would
        // be both redundant and, here, missing. Refuse rather than ledger a guarantee nobody provides.
        ctx.addIssue({ code: 'custom', path: ['dp', 'mode'], message: "'local' DP with secure aggregation is not supported: use 'distributed' (noise split across the cohort) or turn secagg off" });
      }
      if (cfg.minClients < 2) {
        ctx.addIssue({ code: 'custom', path: ['minClients'], message: 'secure aggregation needs at least 2 clients per round' });
      }
    }
    if (cfg.prune && (cfg.prune.endRound < cfg.prune.startRound || cfg.prune.endRound > cfg.rounds)) {
      ctx.addIssue({ code: 'custom', path: ['prune', 'endRound'], message: `must be in [startRound (${cfg.prune.startRound}), rounds (${cfg.rounds})]` });
    }
    if (cfg.transfer) {
      const t = cfg.transfer;
      if ((t.freeze || t.trainableFrom !== undefined) && !t.base) {
        ctx.addIssue({ code: 'custom', path: ['transfer', 'base'], message: 'frozen layers need a pretrained base (transfer.base): frozen random weights would never learn' });
      }
      try {
        resolveFrozenLayers(cfg.model, t);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['transfer', t.trainableFrom !== undefined ? 'trainableFrom' : 'freeze'], message: (err as Error).message });
      }
    }
    robustAggregatorIssues(cfg, ctx);
    if (cfg.sampling.mode === 'fixed' && cfg.sampling.cohortSize < cfg.minClients) {
      ctx.addIssue({
        code: 'custom',
        path: ['sampling', 'cohortSize'],
        message: `cohortSize ${cfg.sampling.cohortSize} < minClients ${cfg.minClients}: no round could ever start`,
      });
    }
    if (cfg.health.drift && !cfg.health.stats) {
      ctx.addIssue({ code: 'custom', path: ['health', 'drift'], message: 'drift monitoring needs health.stats: true (sketches travel with the statistics)' });
    }
    if ((cfg.health.drift || cfg.health.temperatureScaling) && (cfg.evaluation.every ?? (cfg.dp.mode === 'off' ? 1 : 0)) === 0) {
      ctx.addIssue({ code: 'custom', path: ['evaluation', 'every'], message: 'drift monitoring and temperature scaling run at federated evaluations: set evaluation.every ≥ 1' });
    }
    if (cfg.health.groupWeights && cfg.dp.mode !== 'off') {
      ctx.addIssue({ code: 'custom', path: ['health', 'groupWeights'], message: 'group reweighting changes a client\'s sensitivity (weight × clip norm), which the DP accounting does not cover: not supported with DP' });
    }
    if (cfg.health.groupWeights && cfg.secagg.enabled) {
      ctx.addIssue({ code: 'custom', path: ['health', 'groupWeights'], message: 'group reweighting needs per-client weights, which secure aggregation hides: not supported with secagg' });
    }
    if (cfg.health.dp) {
      const issue = (path: string[], message: string) => ctx.addIssue({ code: 'custom', path, message });
      if (cfg.dp.mode !== 'central') issue(['health', 'dp'], "noised evaluation statistics are implemented for 'central' DP only (the coordinator adds the noise)");
      if (!cfg.health.stats) issue(['health', 'stats'], 'health.dp noises the evaluation statistics: set health.stats to true');
      if (cfg.health.drift || cfg.health.temperatureScaling) {
        issue(['health', 'dp'], 'drift sketches and temperature NLLs are not noised or accounted yet: turn health.drift and health.temperatureScaling off with health.dp');
      }
    }
    if (cfg.dp.mode !== 'off' && (cfg.evaluation.every ?? 0) > 0 && !cfg.evaluation.unaccountedMetrics && !(cfg.health.dp && cfg.dp.mode === 'central')) {
      ctx.addIssue({
        code: 'custom',
        path: ['evaluation', 'every'],
        message:
          'federated evaluation in a DP job sends each client\'s loss and accuracy to the coordinator un-noised, outside the ' +
          'privacy ledger: in central mode set health.dp (noised statistics, accounted), or evaluation.unaccountedMetrics to true to accept that ' +
          '(e.g. clients evaluate on public data), or evaluation.every to 0',
      });
    }
  })
  .transform((cfg) => ({ ...cfg, evaluation: { ...cfg.evaluation, every: cfg.evaluation.every ?? (cfg.dp.mode === 'off' ? 1 : 0) } }));

/**
 * What a robust aggregator (shared/fl/robust.ts) needs of the rest of the job:
 * - each client's update, which secure aggregation hides (the coordinator sees only the masked sum);
 * - not central DP: the accountant and the coordinator's noise assume the clipped mean, whose sensitivity
 *   to one client is C over the fixed denominator. A robust rule of clipped updates is not that: Krum
 *   outputs one client's update, which replacing one client can move by 2C (n times the mean's), and a
 *   coordinate-wise median or trimmed mean can move in every coordinate at once. Calibrating noise to
 *   those bounds would make the aggregate useless, and calibrating it to the mean's would understate ε,
 *   so the combination is refused. Local DP is allowed: each client's update is noised before it leaves
 *   the device and what the coordinator computes from the noised updates is post-processing (ε unchanged);
 * - a bounded cohort it can hold in memory (fixed sampling, cohortSize ≤ maxCohort);
 * - at least as many survivors as the rule needs (Krum n ≥ 2f + 3, Bulyan n ≥ 4f + 3).
 */
function robustAggregatorIssues(cfg: z.output<typeof JobConfigBase>, ctx: z.RefinementCtx): void {
  const agg = cfg.aggregator;
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  if (agg.name === 'qfedavg') {
    // q-FedAvg weights each update by the client's own, un-noised loss: no DP accounting covers that
    // release or that weighting, and SecAgg would hide the per-client updates it weights.
    if (cfg.secagg.enabled) issue(['aggregator', 'name'], "'qfedavg' weights each client's update by its loss: not possible under secure aggregation (the coordinator sees only the sum)");
    if (cfg.dp.mode !== 'off') issue(['aggregator', 'name'], "'qfedavg' with DP is refused: clients report their loss un-noised and it weights their update, which the accountant's clipped mean does not cover");
    return;
  }
  if (!isRobust(agg)) return;
  if (cfg.secagg.enabled) {
    issue(['aggregator', 'name'], `'${agg.name}' needs each client's update, but with secure aggregation the coordinator sees only their sum: turn secagg off, or keep aggregator 'mean' (secagg.clipNorm bounds each client's influence)`);
  }
  if (cfg.dp.mode === 'central') {
    issue(['aggregator', 'name'], `'${agg.name}' with central DP is refused: the noise and the accountant assume the clipped mean (sensitivity C/n), and a robust rule of clipped updates can move further when one client changes (Krum: up to 2C) — use aggregator 'mean', or 'local' DP (robust aggregation of noised updates is post-processing)`);
  }
  if (cfg.sampling.mode !== 'fixed') {
    issue(['sampling', 'mode'], `'${agg.name}' holds every update of a round in memory: use sampling.mode 'fixed' with cohortSize ≤ aggregator.maxCohort (${agg.maxCohort})`);
  } else if (cfg.sampling.cohortSize > agg.maxCohort) {
    issue(['sampling', 'cohortSize'], `cohortSize ${cfg.sampling.cohortSize} > aggregator.maxCohort ${agg.maxCohort}: '${agg.name}' holds every update of a round in memory (raise maxCohort, at most 1000, or lower cohortSize)`);
  }
  const need = minUpdatesFor(agg);
  const survivors = cfg.minSurvivors ?? cfg.minClients;
  if (survivors < need) {
    issue([cfg.minSurvivors === undefined ? 'minClients' : 'minSurvivors'], `'${agg.name}'${'f' in agg ? ` with f = ${agg.f}` : ''} needs at least ${need} updates per round: set ${cfg.minSurvivors === undefined ? 'minClients' : 'minSurvivors'} ≥ ${need}`);
  }
}

export type JobConfig = z.output<typeof JobConfigSchema>;
export type JobConfigInput = z.input<typeof JobConfigSchema>;

/** Validates a job config; every problem is listed with its path. */
export function parseJobConfig(raw: unknown, source = 'job config'): JobConfig {
  const parsed = JobConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  - ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`${source} is invalid:\n${problems.join('\n')}`, { issues: parsed.error.issues });
  }
  return parsed.data;
}

export function loadJobConfig(path: string): JobConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read job config ${path}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`job config ${path} is not valid JSON: ${(err as Error).message}`);
  }
  return parseJobConfig(raw, path);
}

/** Canonical JSON (sorted keys) of the validated config, hashed: detects a changed config on resume. */
export function configHash(cfg: JobConfig): string {
  return createHash('sha256').update(canonicalJson(cfg)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
