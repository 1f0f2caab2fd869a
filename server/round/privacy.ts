/**
 * The coordinator's side of differential privacy for one job: which DP event a round adds, what ε the
 * job has spent and would spend, the budget stop, the noisy aggregate, adaptive clipping, and the
 * ledger row committed with each round.
 *
 * The accountant is rebuilt from the ledger on start, so a restarted coordinator continues with
 * exactly the ε it had; a round that did not commit adds nothing (it released nothing).
 */
import {
  centralNoiseStddev,
  centralNoisyMean,
  defaultCountNoiseStddev,
  DP_MODE_SPECS,
  fixedDenominatorEstimate,
  localNoiseStddev,
  nextClipNorm,
  roundDpPlan,
} from '../../shared/dp/index.ts';
import type { DpConfig, DpMode } from '../../shared/dp/index.ts';
import { CohortError } from '../../shared/errors.ts';
import {
  DEFAULT_ORDERS,
  DpEventSchema,
  epsilonFromRdp,
  RdpAccountant,
  rdpOfEvent,
  type DpEvent,
  type NeighboringRelation,
} from '../../shared/privacy/index.ts';
import type { RoundPrivacy } from '../../shared/protocol/index.ts';
import type { Rng } from '../../shared/random.ts';
import type { LedgerEntry, LedgerRow } from '../store/index.ts';
import type { JobConfig } from './config.ts';

/** δ at which ε is reported when the job sets no budget. */
export const DEFAULT_REPORT_DELTA = 1e-5;

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

export interface RoundPlan {
  event: DpEvent;
  noise: RoundNoise;
  /** What clients are told (and check against their floor). */
  announce: RoundPrivacy;
  /** The fixed denominator qW: expected number of participants (uniform weights). */
  expectedWeight: number;
  population: number;
}

export class PrivacyController {
  readonly dp: DpConfig;
  readonly delta: number;
  private readonly accountant: RdpAccountant;
  private readonly relation: NeighboringRelation;
  private clipNorm: number;
  private spent = 0;

  constructor(
    private readonly config: JobConfig,
    ledger: LedgerRow[],
    lastClipNormNext?: number,
  ) {
    this.dp = config.dp;
    this.delta = config.dp.budget?.delta ?? DEFAULT_REPORT_DELTA;
    // Poisson cohorts and local noise are analysed under add-or-remove; fixed-size cohorts under
    // replace-one (events.ts, modes.ts).
    this.relation = config.sampling.mode === 'fixed' && config.dp.mode !== 'local' ? 'replaceOne' : 'addOrRemove';
    this.accountant = new RdpAccountant(DEFAULT_ORDERS, { neighboringRelation: this.relation });
    for (const row of ledger) {
      const parsed = DpEventSchema.safeParse(row.event);
      if (!parsed.success) {
        throw new CohortError('CORRUPT_LEDGER', `ledger row of round ${row.round} has an unreadable DP event`);
      }
      this.accountant.compose(parsed.data);
    }
    if (ledger.length) this.spent = this.accountant.getEpsilon(this.delta).epsilon;
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

  get epsilonSpent(): number {
    return this.spent;
  }

  /**
   * The round's DP event and projected ε, before anything is sent. Returns a budget-exhaustion reason
   * instead when the round would take the job past its budget.
   */
  plan(cohortSize: number, population: number, minSurvivors: number): RoundPlan | { exhausted: string } {
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
    const event = dpPlan.event;
    const projected = this.projectedEpsilon(event);
    const budget = this.dp.budget;
    if (budget && projected.epsilon > budget.epsilon) {
      return {
        exhausted:
          `the next round would raise ε from ${this.spent.toFixed(4)} to ${projected.epsilon.toFixed(4)} ` +
          `(δ=${this.delta}), past the budget ε=${budget.epsilon}`,
      };
    }
    const samplingRate = sampling.mode === 'poisson' ? sampling.rate : cohortSize / population;
    const mode = this.dp.mode as Exclude<DpMode, 'off'>;
    return {
      event,
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
        mode: this.dp.mode as Exclude<DpMode, 'off'>,
        noiseMultiplier: this.dp.noiseMultiplier,
        clipNorm: this.clipNorm,
        sampling: sampling.mode,
        samplingRate,
        cohortSize,
        minSurvivors,
        delta: this.delta,
        epsilonSpent: this.spent,
        epsilonAfterRound: projected.epsilon,
        adaptiveClipping: this.adaptive,
      },
    };
  }

  /**
   * Binds the round's SecAgg encoding into its plan: randomized rounding inflates one client's
   * sensitivity to Δ₂·γ > C (Kairouz, Liu, Steinke 2021, Thm 1), so central noise must cover that,
   * and in distributed mode the encoding's per-client discrete Gaussian is the noise the event accounts.
   */
  bindSecAgg(plan: RoundPlan, encoding: { sensitivity: number; noiseStddev: number; minSurvivors: number }): void {
    const noise = plan.noise;
    noise.sensitivity = Math.max(this.clipNorm, encoding.sensitivity);
    if (noise.centralStddev !== undefined) noise.centralStddev = centralNoiseStddev(noise.valueNoiseMultiplier, noise.sensitivity);
    if (this.dp.mode === 'distributed') noise.clientStddev = encoding.noiseStddev;
    plan.announce.minSurvivors = encoding.minSurvivors;
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

  /** The ledger row for a round about to commit (cumulative ε includes this round). */
  ledgerEntry(plan: RoundPlan, survivors: number): LedgerEntry {
    const after = this.projectedEpsilon(plan.event);
    const mode = this.dp.mode as Exclude<DpMode, 'off'>;
    return {
      mode,
      mechanism: mode === 'distributed' ? 'distributed_discrete_gaussian' : 'gaussian',
      sampling: plan.announce.sampling,
      samplingRate: plan.announce.samplingRate,
      population: plan.population,
      cohortSize: plan.announce.cohortSize,
      survivors,
      noiseMultiplier: this.dp.noiseMultiplier,
      clipNorm: this.clipNorm,
      event: plan.event,
      epsilon: after.epsilon,
      delta: this.delta,
      rdpOrder: Number.isFinite(after.order) ? after.order : null,
      trust: `${TRUST[mode]}; accounting: ${DP_MODE_SPECS[mode].accounting}`,
    };
  }

  /** After a successful commit: the round's event is spent; adaptive clipping moves C. */
  committed(plan: RoundPlan, clipNormNext?: number): void {
    this.accountant.compose(plan.event);
    this.spent = this.accountant.getEpsilon(this.delta).epsilon;
    if (clipNormNext !== undefined) this.clipNorm = clipNormNext;
  }

  private projectedEpsilon(event: DpEvent): { epsilon: number; order: number } {
    const orders = this.accountant.orders();
    const curve = this.accountant.rdp();
    const added = rdpOfEvent(event, orders, { neighboringRelation: this.relation });
    for (let i = 0; i < curve.length; i++) curve[i] += added[i];
    return epsilonFromRdp(orders, curve, this.delta, 'improved');
  }

  private countNoiseStddev(cohortSize: number, population: number): number {
    const configured = this.dp.adaptiveClipping?.countNoiseStddev;
    if (configured !== undefined) return configured;
    const expected = this.config.sampling.mode === 'poisson' ? this.config.sampling.rate * population : cohortSize;
    return defaultCountNoiseStddev(Math.max(1, expected));
  }
}
