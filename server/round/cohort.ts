/**
 * Selecting, configuring and telling a round's cohort: sampling it (fixed size or Poisson), configuring
 * its secure aggregation, the `train` message that starts the attempt and the `round_result` that ends
 * it. The engine decides when a round starts and how it ends, makes its privacy plan and owns the
 * attempt; this module only builds what the cohort is given.
 */
import type { Logger } from '../../shared/log.ts';
import type { ServerMessage, TrainingParams } from '../../shared/protocol/index.ts';
import { sampleWithoutReplacement, type Rng } from '../../shared/random.ts';
import type { Failpoint } from '../failpoints.ts';
import type { Clock } from './clock.ts';
import type { JobConfig } from './config.ts';
import type { PrivacyController, RoundPlan } from './privacy.ts';
import type { ConnectedClient } from './registry.ts';
import { secaggForRound, type SecAggOutcome, type SecAggRound } from './secagg.ts';
import type { RevocationList } from '../../shared/identity/index.ts';
import type { TrainingRound } from './training.ts';

export interface RoundStarterContext {
  jobId: string;
  config: JobConfig;
  /** The job's survivor floor (minSurvivors, else minClients). */
  minSurvivors: number;
  /** Cohort sampling randomness (the CSPRNG in deployment: DP accounting assumes true randomness). */
  rng: Rng;
  clock: Clock;
  log: Logger;
  failpoint: Failpoint;
  send: (connId: string, msg: ServerMessage) => void;
  /** The client is still registered on this connection. */
  isRegistered: (connId: string, clientId: string) => boolean;
  /** The federation CA's newest revocation list, relayed to every SecAgg round (server/identity). */
  revocations?: () => RevocationList | undefined;
}

export class RoundStarter {
  constructor(private readonly ctx: RoundStarterContext) {}

  /** The round's cohort among the eligible clients: `cohortSize` of them, or each with probability `rate`. */
  sample(eligible: ConnectedClient[]): ConnectedClient[] {
    const { sampling } = this.ctx.config;
    const rng = this.ctx.rng;
    if (sampling.mode === 'fixed') return sampleWithoutReplacement(eligible, sampling.cohortSize, rng);
    // Poisson sampling: each client joins independently with probability q.
    return eligible.filter(() => rng.next() < sampling.rate);
  }

  /**
   * The cohort of the next attempt, or why to wait: too few clients; a DP job whose population is too
   * small for redrawing short Poisson draws to cost little δ (privacy.ts `waitForPopulation`); or a short
   * draw, which is redrawn later — except in central DP with Poisson cohorts, which never redraws (a
   * short, even empty, draw runs as drawn: privacy.ts `unconditioned`).
   */
  draw(eligible: ConnectedClient[], privacy: PrivacyController, committedRounds: number): { cohort: ConnectedClient[]; wait?: string } {
    const m = this.ctx.config.minClients;
    if (eligible.length < m) return { cohort: [], wait: `fewer than ${m} clients` };
    const tooFew = privacy.enabled ? privacy.waitForPopulation(eligible.length, this.ctx.minSurvivors, committedRounds) : undefined;
    if (tooFew !== undefined) return { cohort: [], wait: tooFew };
    const cohort = this.sample(eligible);
    if (cohort.length < m && !privacy.unconditioned) return { cohort, wait: `the draw had fewer than ${m} clients` };
    return { cohort };
  }

  /** The round's SecAgg driver (throws if no encoding fits this cohort); `onDone` gets its outcome. */
  secagg(
    roundNo: number,
    cohort: ConnectedClient[],
    dim: number,
    plan: RoundPlan | undefined,
    onDone: (outcome: SecAggOutcome) => void,
    beforeUnmask?: () => void,
  ): SecAggRound {
    const { config, jobId } = this.ctx;
    const dp = config.dp;
    return secaggForRound({
      jobId,
      round: roundNo,
      cohort,
      config: config.secagg,
      dim,
      clipNorm: dp.mode !== 'off' ? (dp.clipNorm as number) : config.secagg.clipNorm!,
      minSurvivors: this.ctx.minSurvivors,
      // Only distributed DP puts noise into the encoding; central noise is added to the decoded sum.
      noiseMultiplier: plan && dp.mode === 'distributed' ? plan.noise.valueNoiseMultiplier : 0,
      trainMs: config.timeouts.trainMs,
      clock: this.ctx.clock,
      log: this.ctx.log,
      send: this.ctx.send,
      isRegistered: this.ctx.isRegistered,
      onDone,
      ...(beforeUnmask ? { beforeUnmask } : {}),
      ...(this.ctx.revocations ? { revocations: this.ctx.revocations() } : {}),
      failpoint: this.ctx.failpoint,
    });
  }

  /** Sends every member `train`: the model, the training config and the round's privacy and SecAgg parameters. */
  announce(round: TrainingRound, cohort: ConnectedClient[], model: { weights: Float32Array; checksum: string; frozenLayers: string[] }): void {
    const { model: spec, timeouts } = this.ctx.config;
    // A frozen base: clients train the other layers only, and send only their weights.
    const training = model.frozenLayers.length ? { ...this.ctx.config.training, frozen: model.frozenLayers } : this.ctx.config.training;
    for (const c of cohort) {
      this.ctx.send(c.connId, {
        type: 'train',
        jobId: this.ctx.jobId,
        round: round.round,
        modelChecksum: model.checksum,
        model: spec,
        training: trainingParams(training, this.ctx.config.aggregator),
        timeoutMs: timeouts.trainMs,
        ...(round.plan ? { privacy: round.plan.announce } : {}),
        ...(round.secagg ? { secagg: round.secagg.announce } : {}),
        vector: model.weights,
      });
    }
  }

  /** Tells every member still on its sampled connection how the attempt ended (and whether its update is in). */
  tellResult(round: TrainingRound, outcome: 'committed' | 'aborted'): void {
    for (const [clientId, m] of round.members) {
      if (!this.ctx.isRegistered(m.connId, clientId)) continue;
      this.ctx.send(m.connId, {
        type: 'round_result',
        jobId: this.ctx.jobId,
        round: round.round,
        outcome,
        included: outcome === 'committed' && m.status === 'completed',
      });
    }
  }
}

/**
 * The training parameters as sent: plain SGD is sent without an `optimizer` field, so clients that
 * predate local optimizers (their schema is strict) still accept every round they can run.
 */
export function trainingParams(training: JobConfig['training'], aggregator: JobConfig['aggregator'] = { name: 'mean' }): TrainingParams {
  const { optimizer, ...rest } = training;
  return {
    ...rest,
    ...(optimizer.name === 'sgd' ? {} : { optimizer }),
    // q-FedAvg needs each client's loss at the global model, before training (its F_k(w^t)).
    ...(aggregator.name === 'qfedavg' ? { initialLoss: true as const } : {}),
  };
}
