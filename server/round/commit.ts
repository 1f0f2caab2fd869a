/**
 * The job's durable model: global weights, server optimizer and privacy controller, loaded from the
 * store's latest checkpoint and ledger, and advanced only by `commit`, which writes the round row,
 * the checkpoint and (for DP jobs) the ledger row in one transaction before anything is published.
 */
import { CohortError } from '../../shared/errors.ts';
import { createServerOptimizer, type ServerOptimizer } from '../../shared/fl/index.ts';
import { isAllFinite } from '../../shared/fl/aggregate.ts';
import type { Logger } from '../../shared/log.ts';
import { gatherTrainable, layerOfWeight, modelLayers, pruneByMagnitude, scatterTrainable, sparsityAt, weightsChecksum, type TrainableSelection, type WeightManifest } from '../../shared/model/index.ts';
import type { CohortStore, JobRow, JobStatus, RoundRecord } from '../store/index.ts';
import type { Failpoint } from '../failpoints.ts';
import { configHash, JobConfigSchema, type JobConfig } from './config.ts';
import { PrivacyController, type RoundPlan } from './privacy.ts';
import type { RoundSummary } from './events.ts';
import type { SecAggRound } from './secagg.ts';
import type { TrainingRound } from './training.ts';
import { initialJobWeights, selectionOf } from './transfer.ts';

/**
 * Whether a stored config, written by an older build, is the given one once the current schema fills in
 * the fields added since (their defaults): then the job is the same and resumes. A stored config the
 * current schema refuses is not the same (the caller reports CONFIG_CHANGED).
 */
function sameUnderCurrentSchema(stored: unknown, hash: string): boolean {
  const r = JobConfigSchema.safeParse(stored);
  return r.success && configHash(r.data) === hash;
}

export class JobModel {
  private constructor(
    private readonly config: JobConfig,
    private readonly store: CohortStore,
    private readonly log: Logger,
    readonly job: JobRow,
    private weightsNow: Float32Array,
    private checksumNow: string,
    private committed: number,
    private readonly optimizer: ServerOptimizer,
    readonly privacy: PrivacyController,
    /** The trainable weights (all of them without `transfer`): updates, sums and the optimizer have this dimension. */
    readonly selection: TrainableSelection,
    private readonly manifest: WeightManifest,
  ) {}

  /** Loads (or creates) the job and its latest checkpoint; refuses a changed config or a corrupt checkpoint. */
  static load(config: JobConfig, store: CohortStore, log: Logger): JobModel {
    const id = config.id;
    const hash = configHash(config);
    let job = store.getJob(id);
    if (job && job.configHash !== hash && !sameUnderCurrentSchema(job.config, hash)) {
      throw new CohortError('CONFIG_CHANGED', `job ${id} exists in ${store.path} with a different config; use a new job id or the original config`);
    }
    if (!job) job = store.createJob({ id, config, configHash: hash });
    const checkpoint = store.latestCheckpoint(id);
    let weights: Float32Array;
    let round = 0;
    let optimizer: ServerOptimizer;
    const { manifest } = modelLayers(config.model);
    const selection = selectionOf(config, manifest);
    if (checkpoint) {
      weights = checkpoint.weights;
      round = checkpoint.round;
      optimizer = createServerOptimizer(config.optimizer, selection.dim);
      optimizer.importState(checkpoint.optimizerState);
      if (weightsChecksum(weights) !== checkpoint.checksum) {
        throw new CohortError('CORRUPT_CHECKPOINT', `checkpoint of round ${checkpoint.round} does not match its checksum`);
      }
      log.info({ round, checksum: checkpoint.checksum }, 'resumed from checkpoint');
    } else if (config.initFrom) {
      // A retraining job (a drift alert's): the other job's stored version, checked like a checkpoint.
      const from = store.checkpoint(config.initFrom.job, config.initFrom.round);
      if (!from) throw new CohortError('BAD_CONFIG', `initFrom: job ${config.initFrom.job} has no stored version ${config.initFrom.round}`);
      if (weightsChecksum(from.weights) !== from.checksum) throw new CohortError('CORRUPT_CHECKPOINT', `version ${config.initFrom.round} of job ${config.initFrom.job} does not match its checksum`);
      weights = from.weights.slice();
      optimizer = createServerOptimizer(config.optimizer, weights.length);
      log.info({ from: config.initFrom, checksum: from.checksum }, 'initialised global model from a stored version');
    } else {
      const initial = initialJobWeights(config, store);
      weights = initial.weights;
      optimizer = createServerOptimizer(config.optimizer, selection.dim);
      log.info(
        { params: weights.length, trainable: selection.dim, checksum: weightsChecksum(weights), ...(initial.from ? { base: initial.from, copied: initial.copied.length, frozen: selection.frozenLayers } : {}) },
        'initialised global model',
      );
    }
    const lastClipNormNext = store.listRounds(id).at(-1)?.metrics?.clipNormNext;
    const privacy = new PrivacyController(config, store.listLedger(id), lastClipNormNext);
    if (privacy.enabled) log.info({ epsilon: privacy.epsilonSpent, delta: privacy.delta, mode: config.dp.mode }, 'privacy ledger loaded');
    return new JobModel(config, store, log, job, weights, weightsChecksum(weights), round, optimizer, privacy, selection, manifest);
  }

  /**
   * What the stored job says to do on start: resume it paused (with its reason), serve a final state, or
   * run it (a created or queued job is marked running).
   */
  resumeAs(): { status: 'running' } | { status: 'paused'; reason: string } | { status: Exclude<JobStatus, 'created' | 'queued' | 'running' | 'paused'>; reason?: string } {
    const { status, reason } = this.job;
    if (status === 'paused') return { status, reason: reason ?? 'paused' };
    if (status === 'created' || status === 'running' || status === 'queued') {
      if (status !== 'running') this.store.setJobStatus(this.config.id, 'running');
      return { status: 'running' };
    }
    return { status, ...(reason ? { reason } : {}) };
  }

  // ---- the privacy of an attempt (privacy.ts plans, the store records) -------------------------------

  /** The attempt's privacy plan (undefined without DP), or why the budget forbids it. */
  planAttempt(cohortSize: number, population: number, minSurvivors: number): RoundPlan | undefined | { exhausted: string } {
    return this.privacy.enabled ? this.privacy.plan(cohortSize, population, minSurvivors) : undefined;
  }

  /** Binds the attempt's SecAgg encoding into its plan; the budget reason if the events it implies exceed it. */
  bindSecAgg(plan: RoundPlan | undefined, secagg: SecAggRound): { exhausted: string } | undefined {
    const a = secagg.announce;
    return plan && this.privacy.bindSecAgg(plan, { sensitivity: secagg.sensitivity, noiseStddev: a.noiseStddev, minSurvivors: a.minSurvivors, gamma: a.gamma, dimension: this.dim });
  }

  /** The attempt's release to the coordinator, into the ledger (fsynced) before it is made; then spent. */
  writeAhead(round: TrainingRound, plan: RoundPlan): void {
    this.store.recordAttemptRelease({ jobId: this.config.id, round: round.round, ledger: this.privacy.attemptEntry(plan, round.members.size) });
    this.privacy.attemptReleased(plan);
  }

  /** ε spent so far, against the budget's audience and against each. */
  epsilons(): Pick<RoundSummary, 'epsilon' | 'epsilonPublished' | 'epsilonCoordinator'> {
    const { published, coordinator } = this.privacy.epsilons;
    return { epsilon: this.privacy.epsilonSpent, epsilonPublished: published, epsilonCoordinator: coordinator };
  }

  /** The published global model (never mutated: each commit makes a new array). */
  get weights(): Float32Array {
    return this.weightsNow;
  }

  get checksum(): string {
    return this.checksumNow;
  }

  get committedRound(): number {
    return this.committed;
  }

  /** The length of an update: the trainable dimension (SecAgg's vector and the DP sensitivity's space). */
  get dim(): number {
    return this.selection.dim;
  }

  /** Layers clients must not train (empty without `transfer`). */
  get frozenLayers(): string[] {
    return this.selection.frozenLayers;
  }

  /**
   * Applies the server optimizer to the round's pseudo-gradient and commits round + checkpoint (+
   * ledger row) atomically. Returns false, changing nothing, if the new model is not finite (the
   * server optimizer diverged: client inputs are range-checked). Store failures propagate, with the
   * optimizer state restored.
   */
  commit(round: TrainingRound, record: RoundRecord, failpoint: Failpoint): boolean {
    const stateBefore = this.optimizer.exportState();
    const next = this.weightsNow.slice();
    const plan = round.plan;
    const whole = this.selection.dim === this.selection.total;
    const trainable = whole ? next : gatherTrainable(next, this.selection);
    // FedAvg: the example-weighted mean of the deltas is the pseudo-gradient (McMahan et al. 2017);
    // DP-FedAvg: the noisy fixed-denominator mean (McMahan et al. 2018). With a frozen base only the
    // trainable weights move; the frozen ones are copied bit for bit.
    this.optimizer.step(trainable, round.pseudoGradient(this.privacy));
    if (!isAllFinite(trainable)) {
      this.optimizer.importState(stateBefore);
      return false;
    }
    if (!whole) scatterTrainable(next, trainable, this.selection);
    const prune = this.config.prune;
    if (prune && round.round >= prune.startRound) {
      // Magnitude pruning of the trainable kernels (post-processing: no privacy cost); zeros stay zero.
      const frozen = new Set(this.selection.frozenLayers);
      const layers = new Set(this.manifest.map((w) => layerOfWeight(w.name)).filter((l) => !frozen.has(l)));
      const { zeros, size } = pruneByMagnitude(next, this.manifest, sparsityAt(prune, round.round), layers);
      this.log.info({ round: round.round, sparsity: size ? zeros / size : 0 }, 'pruned');
    }
    const checksum = weightsChecksum(next);
    const clipNormNext = plan ? this.privacy.nextClipNorm(plan, round.bitSum) : undefined;
    if (plan) record.metrics = { clipNorm: plan.announce.clipNorm, ...(clipNormNext === undefined ? {} : { clipNormNext }) };
    failpoint('commit:before', round.round);
    try {
      this.store.commitRound({
        jobId: this.config.id,
        round: round.round,
        weights: next,
        optimizerState: this.optimizer.exportState(),
        checksum,
        record,
        keepCheckpoints: this.config.checkpoints.keep,
        // A model whose privacy cost is not recorded is never published: same transaction.
        ...(plan ? { ledger: this.privacy.ledgerEntry(plan, record.survivors) } : {}),
      });
    } catch (err) {
      this.optimizer.importState(stateBefore);
      throw err;
    }
    this.weightsNow = next;
    this.checksumNow = checksum;
    this.committed = round.round;
    if (plan) this.privacy.committed(plan, clipNormNext);
    failpoint('commit:after', round.round);
    this.log.info(
      {
        round: round.round,
        survivors: record.survivors,
        cohort: record.cohortSize,
        examples: record.numExamples,
        loss: record.trainLoss,
        checksum,
        ...(plan ? { epsilon: this.privacy.epsilonSpent, delta: this.privacy.delta, clipNorm: plan.announce.clipNorm } : {}),
      },
      'round committed',
    );
    return true;
  }
}
