/**
 * The coordinator's side of differential privacy for one job: which DP events a round adds, what ε the
 * job has spent and would spend against each audience, the budget stop, the noisy aggregate, adaptive
 * clipping, and the ledger row of each release.
 *
 * Two audiences, two accountants (shared/dp AUDIENCES): model consumers see published models only, so
 * Poisson sampling amplifies against them; the coordinator sees the cohort and what clients send it, so
 * nothing amplifies and what the noise hides is each update's content (replace-one). Central mode gives no
 * guarantee against the coordinator. The budget applies to the job's audience (`budgetAudience`).
 *
 * Every release is accounted when it happens: a committed round adds both events; an attempt that aborts
 * after the coordinator saw noised data (local mode: the clients' updates; distributed: the unmasked sum)
 * adds its coordinator event, in the same transaction as the attempt record; an attempt that aborts
 * before that released nothing. The accountants are rebuilt from the ledger on start, so a restarted
 * coordinator continues with exactly the ε it had. Poisson draws redrawn for falling short of minClients
 * are accounted by the coupling bound of shared/privacy/conditioning.ts (their probability enters δ).
 */
import {
  budgetAudience,
  centralNoiseStddev,
  centralNoisyMean,
  defaultCountNoiseStddev,
  DP_MODE_SPECS,
  distributedRoundEvents,
  fixedDenominatorEstimate,
  localNoiseStddev,
  nextClipNorm,
  roundDpPlan,
} from '../../shared/dp/index.ts';
import type { Audience, DistributedEncoding, DpConfig, DpMode } from '../../shared/dp/index.ts';
import { CohortError } from '../../shared/errors.ts';
import {
  DEFAULT_ORDERS,
  DpEventSchema,
  gaussianEvent,
  RdpAccountant,
  rdpOfEvent,
  type DpEvent,
  type NeighboringRelation,
} from '../../shared/privacy/index.ts';
import { epsilonWithShortDraws, shortDrawProbability } from '../../shared/privacy/conditioning.ts';
import { describeEvent, mechanismOf } from '../../shared/privacy/describe.ts';
import type { RoundPrivacy } from '../../shared/protocol/index.ts';
import { statsSensitivity } from '../../shared/evaluation/index.ts';
import type { Rng } from '../../shared/random.ts';
import type { LedgerEntry, LedgerRow } from '../store/index.ts';
import type { JobConfig } from './config.ts';

/** δ at which ε is reported when the job sets no budget. */
export const DEFAULT_REPORT_DELTA = 1e-5;

/** The share of δ that redrawing short Poisson draws may cost before the coordinator waits for more clients. */
const SHORT_DRAW_SHARE = 0.01;

const TRUST: Record<Exclude<DpMode, 'off'>, string> = {
  central:
    'trusted coordinator: it sees each clipped update and adds the noise itself; ε holds against anyone who sees only published models',
  local: 'no trust in the coordinator: each client noised its own clipped update (σ = z·C) before sending; no sampling amplification is claimed',
  distributed:
    'honest-but-curious coordinator and at most t−1 colluding clients per SecAgg neighbourhood; noise split across at least minSurvivors clients, ' +
    'each assumed to add its share (if only h of them do, the noise variance is h/minSurvivors of the accounted σ²); ' +
    'noise sampler: clients draw N_Z(0, σ²) from a 96-bit CDF table (shared/dp/discrete-gaussian-table.ts) when σ ≤ ~88,000 integer units, ' +
    'each coordinate within total variation tvBound < 2^−75 of exact (≈ 2^−80 at σ = 5,000), so a round is (ε, δ + (1 + e^ε)·clients·d·tvBound)-DP ' +
    'where exact noise gives (ε, δ); that additive δ term is not included in δ',
};

/**
 * The noise of one round, planned once from the same parameters as its DP event: whatever adds noise
 * (the coordinator in central mode, each client in local mode, each SecAgg encoding in distributed
 * mode) reads its σ here, and the ledger accounts the event these numbers came from.
 */
export interface RoundNoise {
  /** z of the value query, as in the event (z_Δ > z with adaptive clipping: the count query takes part of the budget). */
  valueNoiseMultiplier: number;
  /** σ_b of the clipping-bit count, with adaptive clipping. */
  countNoiseStddev?: number;
  /** One client's L2 sensitivity: C, or SecAgg's rounded Δ₂γ when that is larger (KLS21 Thm 1). */
  sensitivity: number;
  /** Central mode: σ of the Gaussian the coordinator adds to the sum, z_value · sensitivity. */
  centralStddev?: number;
  /** Local: σ = z·C each client adds; distributed: each client's share, so the sum over minSurvivors carries z·sensitivity. */
  clientStddev?: number;
}

/** The noise of one evaluation's statistics and the event it is accounted as (one plan, both uses). */
export interface EvaluationNoisePlan {
  event: DpEvent;
  /** z = σ / Δ as configured (health.dp.noiseMultiplier). */
  noiseMultiplier: number;
  /** Δ: one client's L2 sensitivity of the weighted statistics (add or remove one client). */
  sensitivity: number;
  /** σ the coordinator adds to every coordinate of the weighted sum. */
  stddev: number;
  evaluators: number;
  population: number;
  maxExamples: number;
}

export interface RoundPlan {
  /** The release to model consumers if the round commits. */
  event: DpEvent;
  /** The release to the coordinator (null in central mode: no guarantee against it). */
  coordinatorEvent: DpEvent | null;
  /** Probability that this Poisson draw would have been redrawn for being short (conditioning.ts); 0 for fixed cohorts. */
  shortDrawProbability: number;
  /** Set once the coordinator event has been written ahead by the attempt (`attemptEntry`): the commit does not add it again. */
  coordinatorAccounted?: boolean;
  noise: RoundNoise;
  /** What clients are told (and check against their floor). */
  announce: RoundPrivacy;
  /** The fixed denominator qW: expected number of participants (uniform weights). */
  expectedWeight: number;
  population: number;
}

/** Cumulative ε at the job's δ against each audience; null where the mode gives no guarantee. */
export interface Epsilons {
  published: number | null;
  coordinator: number | null;
}

interface Projection extends Epsilons {
  /** ε against the budget's audience, and the RDP order that gives it. */
  epsilon: number;
  order: number;
}

export class PrivacyController {
  readonly dp: DpConfig;
  readonly delta: number;
  /** Whom the budget (and the ε clients are told) applies to. */
  readonly audience: Audience;
  private readonly published: RdpAccountant;
  private readonly coordinator: RdpAccountant | null;
  private readonly relation: NeighboringRelation;
  /** Σ of the committed rounds' short-draw probabilities (published audience only: the coordinator figure is unsampled). */
  private shortDrawMass = 0;
  private clipNorm: number;
  private spent: Epsilons = { published: 0, coordinator: 0 };

  constructor(
    private readonly config: JobConfig,
    ledger: LedgerRow[],
    lastClipNormNext?: number,
  ) {
    this.dp = config.dp;
    this.delta = config.dp.budget?.delta ?? DEFAULT_REPORT_DELTA;
    this.audience = budgetAudience(config.dp);
    // Poisson cohorts are analysed under add-or-remove, fixed-size cohorts under replace-one (events.ts,
    // modes.ts); the coordinator's events are unsampled and carry their replace-one multipliers.
    this.relation = config.sampling.mode === 'fixed' && config.dp.mode !== 'local' ? 'replaceOne' : 'addOrRemove';
    this.published = new RdpAccountant(DEFAULT_ORDERS, { neighboringRelation: this.relation });
    this.coordinator = config.dp.mode === 'central' ? null : new RdpAccountant(DEFAULT_ORDERS, { neighboringRelation: 'replaceOne' });
    const parse = (row: LedgerRow, which: string, json: unknown): DpEvent => {
      const parsed = DpEventSchema.safeParse(json);
      if (!parsed.success) {
        throw new CohortError('CORRUPT_LEDGER', `ledger row ${row.seq} (round ${row.round}) has an unreadable ${which} event`);
      }
      return parsed.data;
    };
    for (const row of ledger) {
      if (row.event !== null) {
        this.published.compose(parse(row, 'published', row.event));
        this.shortDrawMass += row.shortDrawProbability;
      }
      if (row.coordinatorEvent !== null && this.coordinator) this.coordinator.compose(parse(row, 'coordinator', row.coordinatorEvent));
    }
    if (ledger.length) this.spent = this.evaluate(this.published.rdp(), this.shortDrawMass, this.coordinator?.rdp() ?? null);
    const initial = this.dp.clipNorm === 'adaptive' ? this.dp.adaptiveClipping!.initialClipNorm : (this.dp.clipNorm ?? 1);
    this.clipNorm = lastClipNormNext ?? initial;
  }

  get enabled(): boolean {
    return this.dp.mode !== 'off';
  }

  get adaptive(): boolean {
    return this.dp.clipNorm === 'adaptive';
  }

  get currentClipNorm(): number {
    return this.clipNorm;
  }

  /** ε spent against the budget's audience. */
  get epsilonSpent(): number {
    return this.pick(this.spent);
  }

  /** ε spent against each audience. */
  get epsilons(): Epsilons {
    return { ...this.spent };
  }

  /**
   * The round's DP events and projected ε, before anything is sent. Returns a reason instead when the
   * round would take the job past its budget, or when its ε could not be bounded at all.
   */
  plan(cohortSize: number, population: number, minSurvivors: number): RoundPlan | { exhausted: string } {
    return this.checkBudget(this.draft(cohortSize, population, minSurvivors));
  }

  /**
   * ε against each audience if the next round commits, for an expected cohort from `population` (the
   * dashboard's and the API's projection; in distributed mode from the continuous-Gaussian draft, before
   * a SecAgg encoding exists — the discrete sum's ε is a little larger).
   */
  projectNext(population: number, minSurvivors: number): Epsilons & { epsilon: number } {
    const q = this.config.sampling.mode === 'poisson' ? this.config.sampling.rate : undefined;
    const cohort = q === undefined ? Math.min(population, (this.config.sampling as { cohortSize: number }).cohortSize) : Math.round(q * population);
    const { published, coordinator, epsilon } = this.project(this.draft(Math.max(1, cohort), Math.max(1, population), minSurvivors), true);
    return { published, coordinator, epsilon };
  }

  /**
   * Central DP with Poisson cohorts and no SecAgg: every draw is used as drawn — a short or empty cohort
   * still runs, and the round commits whatever survived (a dropout contributes a zero update, which the
   * clipping bound covers) — so the rounds are exactly the Poisson-subsampled Gaussian that is accounted,
   * with nothing conditioned. (With SecAgg a round needs enough members to mask and unmask; in distributed
   * mode enough noise shares: those redraw, and conditioning.ts accounts it. Local mode claims no
   * amplification, so redrawing costs nothing there.)
   */
  get unconditioned(): boolean {
    return this.dp.mode === 'central' && this.config.sampling.mode === 'poisson' && !this.config.secagg.enabled;
  }

  /** The short-draw probability a Poisson draw from `population` is accounted with (conditioning.ts). */
  private shortDraw(population: number): number {
    const sampling = this.config.sampling;
    if (sampling.mode !== 'poisson' || this.unconditioned || this.dp.mode === 'local') return 0;
    return shortDrawProbability(population, sampling.rate, this.config.minClients);
  }

  /**
   * Why the coordinator should wait for more clients before a Poisson draw, or undefined: when the
   * budget is against model consumers, a draw from `population` may be made only once redrawing short
   * draws costs the whole job under 1% of δ: P·(1 + e^ε) ≤ δ/100, with P the short-draw mass after
   * every remaining round is drawn from this population and ε the consumers' ε after the last of them
   * (conditioning.ts: the mass is multiplied by e^ε of the final ε, so an early round from a small
   * population would poison the end of the job). Against the coordinator the consumers' figure may fall
   * back to the coordinator's (published models are functions of what it saw), so nothing waits.
   */
  waitForPopulation(population: number, minSurvivors: number, committedRounds: number): string | undefined {
    const rounds = this.config.rounds;
    const sampling = this.config.sampling;
    if (sampling.mode !== 'poisson' || this.audience !== 'published') return undefined;
    const m = this.config.minClients;
    const p = this.shortDraw(population);
    if (p === 0) return undefined;
    const waiting = () =>
      `a Poisson draw at q=${sampling.rate} from ${population} clients falls short of minClients ${m} with probability ` +
      `${p.toPrecision(3)}: waiting for more clients, until redrawing such draws costs under ${SHORT_DRAW_SHARE * 100}% of δ`;
    // The whole job's cost: every remaining round drawn from this population, ε after the last of them.
    const remaining = Math.max(1, rounds - committedRounds);
    const mass = this.shortDrawMass + remaining * p;
    if (2 * mass > SHORT_DRAW_SHARE * this.delta) return waiting(); // e^ε ≥ 1: no need to project
    const draft = this.draft(Math.max(m, Math.round(sampling.rate * population)), population, minSurvivors);
    const orders = this.published.orders();
    const curve = this.published.rdp();
    const added = rdpOfEvent(draft.event, orders, { neighboringRelation: this.relation });
    for (let i = 0; i < curve.length; i++) curve[i] += remaining * added[i];
    const eps = epsilonWithShortDraws(orders, curve, this.delta, mass).epsilon;
    return mass * (1 + Math.exp(eps)) <= SHORT_DRAW_SHARE * this.delta ? undefined : waiting();
  }

  /** The round's events and noise, not yet checked against the budget. */
  private draft(cohortSize: number, population: number, minSurvivors: number): RoundPlan {
    const sampling = this.config.sampling;
    const countNoiseStddev = this.adaptive ? this.countNoiseStddev(cohortSize, population) : undefined;
    const dpPlan = roundDpPlan({
      mode: this.dp.mode,
      noiseMultiplier: this.dp.noiseMultiplier,
      sampling:
        sampling.mode === 'poisson'
          ? { kind: 'poisson', q: sampling.rate }
          : { kind: 'fixed', sampleSize: cohortSize, populationSize: population },
      countNoiseStddev,
    })!;
    const shortDraw = this.shortDraw(population);
    const samplingRate = sampling.mode === 'poisson' ? sampling.rate : cohortSize / population;
    const mode = this.dp.mode as Exclude<DpMode, 'off'>;
    const plan: RoundPlan = {
      event: dpPlan.event,
      coordinatorEvent: dpPlan.coordinatorEvent,
      shortDrawProbability: shortDraw,
      noise: {
        valueNoiseMultiplier: dpPlan.valueNoiseMultiplier,
        ...(dpPlan.countNoiseStddev === undefined ? {} : { countNoiseStddev: dpPlan.countNoiseStddev }),
        sensitivity: this.clipNorm,
        ...(mode === 'central' ? { centralStddev: centralNoiseStddev(dpPlan.valueNoiseMultiplier, this.clipNorm) } : {}),
        ...(mode === 'local' ? { clientStddev: localNoiseStddev(this.dp.noiseMultiplier, this.clipNorm) } : {}),
      },
      population,
      expectedWeight: sampling.mode === 'poisson' ? sampling.rate * population : cohortSize,
      announce: {
        mode,
        noiseMultiplier: this.dp.noiseMultiplier,
        clipNorm: this.clipNorm,
        sampling: sampling.mode,
        samplingRate,
        cohortSize,
        minSurvivors,
        delta: this.delta,
        epsilonSpent: this.epsilonSpent,
        epsilonAfterRound: 0,
        adaptiveClipping: this.adaptive,
      },
    };
    return plan;
  }

  /**
   * Binds the round's SecAgg encoding into its plan: randomized rounding inflates one client's
   * sensitivity to Δ₂·γ > C (Kairouz, Liu, Steinke 2021, Thm 1), so central noise must cover that,
   * and in distributed mode the encoding's per-client discrete Gaussian is the noise the events account.
   * Returns a reason when the round, so encoded, would exceed the budget.
   */
  bindSecAgg(plan: RoundPlan, encoding: DistributedEncoding): { exhausted: string } | undefined {
    const noise = plan.noise;
    noise.sensitivity = Math.max(this.clipNorm, encoding.sensitivity);
    if (noise.centralStddev !== undefined) noise.centralStddev = centralNoiseStddev(noise.valueNoiseMultiplier, noise.sensitivity);
    if (this.dp.mode === 'distributed') {
      // The noise the clients add is the encoding's discrete Gaussian: account exactly that (KLS21).
      noise.clientStddev = encoding.noiseStddev;
      const sampling = this.config.sampling;
      const events = distributedRoundEvents(
        sampling.mode === 'poisson'
          ? { kind: 'poisson', q: sampling.rate }
          : { kind: 'fixed', sampleSize: plan.announce.cohortSize, populationSize: plan.population },
        encoding,
      );
      plan.event = events.event;
      plan.coordinatorEvent = events.coordinatorEvent;
    }
    plan.announce.minSurvivors = encoding.minSurvivors;
    const checked = this.checkBudget(plan);
    return 'exhausted' in checked ? checked : undefined;
  }

  /** The privatised mean of the round: fixed denominator, plus the coordinator's noise (plan.noise) in central mode. */
  noisyMean(sum: Float64Array, plan: RoundPlan, rng?: Rng): Float32Array {
    const sigma = plan.noise.centralStddev;
    if (sigma !== undefined) {
      return centralNoisyMean({ sum, clipNorm: plan.noise.sensitivity, noiseMultiplier: plan.noise.valueNoiseMultiplier, expectedWeight: plan.expectedWeight, rng });
    }
    // local: the clients already added the noise; distributed: SecAgg delivers the noised sum.
    return fixedDenominatorEstimate(sum, plan.expectedWeight);
  }

  /** Adaptive clipping: the clip norm for the next round from the survivors' clipping bits. */
  nextClipNorm(plan: RoundPlan, bitSum: number, rng?: Rng): number | undefined {
    if (!this.adaptive) return undefined;
    const a = this.dp.adaptiveClipping!;
    return nextClipNorm({
      clipNorm: this.clipNorm,
      bitSum,
      expectedCohortSize: plan.expectedWeight,
      targetQuantile: a.targetQuantile,
      learningRate: a.learningRate,
      countNoiseStddev: this.countNoiseStddev(plan.announce.cohortSize, plan.population),
      rng,
    }).clipNorm;
  }

  /**
   * When an attempt releases to the coordinator before (and whether or not) it commits, so that the
   * release must be written ahead (`attemptEntry`): in local mode when clients are asked to train (each
   * answers with its noised update), in distributed mode when the coordinator asks for the unmasking
   * shares (with them it can compute the noised sum). Central mode gives no guarantee against the
   * coordinator, and releases nothing to model consumers before the commit.
   */
  get releasesAhead(): 'train' | 'unmask' | undefined {
    if (this.dp.mode === 'local') return 'train';
    if (this.dp.mode === 'distributed') return 'unmask';
    return undefined;
  }

  /** The ledger row for a round about to commit (cumulative ε includes this round). */
  ledgerEntry(plan: RoundPlan, survivors: number): LedgerEntry {
    const coordinatorEvent = plan.coordinatorAccounted ? null : plan.coordinatorEvent;
    return this.entry({ ...plan, coordinatorEvent }, survivors, this.project({ ...plan, coordinatorEvent }, true), true);
  }

  /** The ledger row an attempt writes before it releases to the coordinator (see releasesAhead). */
  attemptEntry(plan: RoundPlan, survivors: number): LedgerEntry {
    return this.entry(plan, survivors, this.project(plan, false), false);
  }

  /** After the attempt's row is written: its coordinator event is spent, whatever becomes of the attempt. */
  attemptReleased(plan: RoundPlan): void {
    if (!plan.coordinatorEvent || !this.coordinator || plan.coordinatorAccounted) return;
    this.coordinator.compose(plan.coordinatorEvent);
    plan.coordinatorAccounted = true;
    this.spent = this.evaluate(this.published.rdp(), this.shortDrawMass, this.coordinator.rdp());
  }

  /**
   * A DP job's evaluation statistics (health.dp, central mode): the Gaussian mechanism on the weighted
   * statistics vector (shared/evaluation/private-stats.ts), planned once — σ = z·Δ is what the
   * coordinator adds, and the event (z, or z/2 under replace-one, where one client's change is 2Δ) is
   * what the ledger accounts. Released to model consumers (the published metrics); the coordinator is
   * trusted in central mode. Evaluators are not sampled with an amplification claim: the event is
   * unsampled. Returns a reason instead when it would take the job past its budget.
   */
  evaluationPlan(noiseMultiplier: number, maxExamples: number, evaluators: number, population: number): EvaluationNoisePlan | { exhausted: string } {
    const sensitivity = statsSensitivity(maxExamples);
    const event = gaussianEvent(this.relation === 'replaceOne' ? noiseMultiplier / 2 : noiseMultiplier);
    const plan: EvaluationNoisePlan = { event, noiseMultiplier, sensitivity, stddev: noiseMultiplier * sensitivity, evaluators, population, maxExamples };
    const after = this.evaluate(this.withPublished(event), this.shortDrawMass, this.coordinator?.rdp() ?? null);
    if (!Number.isFinite(after.epsilon)) return { exhausted: 'the evaluation\'s ε cannot be bounded' };
    const budget = this.dp.budget;
    if (budget && after.epsilon > budget.epsilon) {
      return { exhausted: `noised evaluation statistics would raise ε from ${this.epsilonSpent.toFixed(4)} to ${after.epsilon.toFixed(4)}, past the budget ε=${budget.epsilon}` };
    }
    return plan;
  }

  /** The ledger row of an evaluation's noised statistics (cumulative ε includes it). */
  evaluationEntry(plan: EvaluationNoisePlan, responders: number): LedgerEntry {
    const after = this.evaluate(this.withPublished(plan.event), this.shortDrawMass, this.coordinator?.rdp() ?? null);
    const sampling = this.config.sampling;
    return {
      mode: this.dp.mode as Exclude<DpMode, 'off'>,
      mechanism: mechanismOf(plan.event),
      sampling: sampling.mode,
      samplingRate: Math.min(1, Math.max(plan.evaluators, 1) / Math.max(plan.population, 1)),
      population: Math.max(1, plan.population),
      cohortSize: plan.evaluators,
      survivors: responders,
      noiseMultiplier: plan.noiseMultiplier,
      clipNorm: plan.sensitivity,
      event: plan.event,
      coordinatorEvent: null,
      shortDrawProbability: 0,
      audience: this.audience,
      epsilon: after.epsilon,
      epsilonPublished: after.published,
      epsilonCoordinator: after.coordinator,
      delta: this.delta,
      rdpOrder: Number.isFinite(after.order) ? after.order : null,
      trust:
        `${TRUST.central}; evaluation statistics: each client's statistics count at most ${plan.maxExamples} examples, weighted so one client ` +
        `moves them by at most Δ = ${plan.sensitivity.toPrecision(6)} in L2 (the ledger's clip_norm column); the coordinator adds N(0, (z·Δ)²), ` +
        `z = ${plan.noiseMultiplier}, to their sum before anything is published; released to model consumers: ${describeEvent(plan.event)} ` +
        '(unsampled: no amplification claimed for the choice of evaluators); per-client and per-group figures are not published',
    };
  }

  /** After the evaluation's row is written: its event is spent. */
  evaluationReleased(plan: EvaluationNoisePlan): void {
    this.published.compose(plan.event);
    this.spent = this.evaluate(this.published.rdp(), this.shortDrawMass, this.coordinator?.rdp() ?? null);
  }

  private withPublished(event: DpEvent): Float64Array {
    const curve = this.published.rdp();
    const added = rdpOfEvent(event, this.published.orders(), { neighboringRelation: this.relation });
    for (let i = 0; i < curve.length; i++) curve[i] += added[i];
    return curve;
  }

  /** After a successful commit: the round's events are spent; adaptive clipping moves C. */
  committed(plan: RoundPlan, clipNormNext?: number): void {
    this.published.compose(plan.event);
    this.shortDrawMass += plan.shortDrawProbability;
    if (plan.coordinatorEvent && this.coordinator && !plan.coordinatorAccounted) this.coordinator.compose(plan.coordinatorEvent);
    plan.coordinatorAccounted = true;
    this.spent = this.evaluate(this.published.rdp(), this.shortDrawMass, this.coordinator?.rdp() ?? null);
    if (clipNormNext !== undefined) this.clipNorm = clipNormNext;
  }

  private entry(plan: RoundPlan, survivors: number, after: Projection, published: boolean): LedgerEntry {
    const mode = this.dp.mode as Exclude<DpMode, 'off'>;
    const budgetEvent = this.audience === 'coordinator' || !published ? plan.coordinatorEvent : plan.event;
    return {
      mode,
      mechanism: mechanismOf(budgetEvent ?? plan.coordinatorEvent ?? plan.event),
      sampling: plan.announce.sampling,
      samplingRate: plan.announce.samplingRate,
      population: plan.population,
      cohortSize: plan.announce.cohortSize,
      survivors,
      noiseMultiplier: this.dp.noiseMultiplier,
      clipNorm: this.clipNorm,
      event: published ? plan.event : null,
      coordinatorEvent: plan.coordinatorEvent,
      shortDrawProbability: published ? plan.shortDrawProbability : 0,
      audience: this.audience,
      epsilon: after.epsilon,
      epsilonPublished: after.published,
      epsilonCoordinator: after.coordinator,
      delta: this.delta,
      rdpOrder: Number.isFinite(after.order) ? after.order : null,
      trust: this.trustText(plan, published),
    };
  }

  private trustText(plan: RoundPlan, published: boolean): string {
    const mode = this.dp.mode as Exclude<DpMode, 'off'>;
    const parts = [TRUST[mode], `accounting: ${DP_MODE_SPECS[mode].accounting}`];
    parts.push(published ? `released to model consumers: ${describeEvent(plan.event)}` : 'released to model consumers: nothing (an attempt)');
    if (plan.coordinatorEvent) parts.push(`released to the coordinator: ${describeEvent(plan.coordinatorEvent)}`);
    parts.push(`budget against ${this.audience === 'coordinator' ? 'the coordinator' : 'model consumers'}`);
    if (this.unconditioned) {
      parts.push('every Poisson draw is used as drawn (short and empty cohorts included, dropouts count as zero updates): nothing is conditioned');
    } else if (this.config.sampling.mode === 'poisson' && mode !== 'local') {
      parts.push(
        `Poisson draws short of minClients ${this.config.minClients} are redrawn; each draw's chance of that ` +
          `(${plan.shortDrawProbability.toExponential(2)} this round) is added to δ with the coupling bound of ` +
          'shared/privacy/conditioning.ts; attempts aborted for too few survivors are assumed independent of any one client\'s data',
      );
    }
    return parts.join('; ');
  }

  /** Checks the plan against the budget (and against an unbounded ε); fills the announced ε. */
  private checkBudget(plan: RoundPlan): RoundPlan | { exhausted: string } {
    const projected = this.project(plan, true);
    plan.announce.epsilonAfterRound = Number.isFinite(projected.epsilon) ? projected.epsilon : 0;
    const who = this.audience === 'coordinator' ? 'against the coordinator' : 'against model consumers';
    if (!Number.isFinite(projected.epsilon)) {
      const conditioning =
        plan.shortDrawProbability > 0
          ? `: each Poisson draw at q=${plan.announce.samplingRate} from ${plan.population} clients falls short of minClients ` +
            `${this.config.minClients} with probability ${plan.shortDrawProbability.toPrecision(3)}, and redrawing it conditions the ` +
            `sample in a way no δ=${this.delta} can absorb; lower minClients or raise the sampling rate`
          : '';
      return { exhausted: `the next round's ε ${who} cannot be bounded${conditioning}` };
    }
    const budget = this.dp.budget;
    if (budget && projected.epsilon > budget.epsilon) {
      return {
        exhausted:
          `the next round would raise ε ${who} from ${this.epsilonSpent.toFixed(4)} to ${projected.epsilon.toFixed(4)} ` +
          `(δ=${this.delta}), past the budget ε=${budget.epsilon}`,
      };
    }
    return plan;
  }

  /** Both audiences' ε after `plan` (its published event only if the round `publishes`). */
  private project(plan: RoundPlan, publishes: boolean): Projection {
    const orders = this.published.orders();
    const add = (acc: RdpAccountant, event: DpEvent, relation: NeighboringRelation) => {
      const curve = acc.rdp();
      const added = rdpOfEvent(event, orders, { neighboringRelation: relation });
      for (let i = 0; i < curve.length; i++) curve[i] += added[i];
      return curve;
    };
    const published = publishes ? add(this.published, plan.event, this.relation) : this.published.rdp();
    const mass = this.shortDrawMass + (publishes ? plan.shortDrawProbability : 0);
    const pending = plan.coordinatorAccounted ? null : plan.coordinatorEvent;
    const coordinator = this.coordinator === null ? null : pending ? add(this.coordinator, pending, 'replaceOne') : this.coordinator.rdp();
    return this.evaluate(published, mass, coordinator);
  }

  private evaluate(published: Float64Array, mass: number, coordinator: Float64Array | null): Projection {
    const orders = this.published.orders();
    let pub = epsilonWithShortDraws(orders, published, this.delta, mass);
    const coord = coordinator === null ? null : epsilonWithShortDraws(orders, coordinator, this.delta, 0);
    // Published models are functions of what the coordinator saw: they are never less private than that.
    if (coord && coord.epsilon < pub.epsilon) pub = coord;
    const budget = this.audience === 'coordinator' && coord ? coord : pub;
    return { published: pub.epsilon, coordinator: coord?.epsilon ?? null, epsilon: budget.epsilon, order: budget.order };
  }

  private pick(e: Epsilons): number {
    return (this.audience === 'coordinator' ? e.coordinator : e.published) ?? 0;
  }

  private countNoiseStddev(cohortSize: number, population: number): number {
    const configured = this.dp.adaptiveClipping?.countNoiseStddev;
    if (configured !== undefined) return configured;
    const expected = this.config.sampling.mode === 'poisson' ? this.config.sampling.rate * population : cohortSize;
    return defaultCountNoiseStddev(Math.max(1, expected));
  }
}

