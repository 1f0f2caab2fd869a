/**
 * The coordinator's SecAgg driver and the SecAgg benchmark share one encoding plan
 * (shared/secagg/plan.ts): what a SecAggRound announces must be exactly what `planSecAggRound` gives
 * for the same job and cohort, or the bench would measure an encoding the coordinator never produces.
 */
import { describe, expect, it } from 'vitest';
import type { Logger } from '../../shared/log.ts';
import { planSecAggRound } from '../../shared/secagg/plan.ts';
import { SecAggConfigSchema, SecAggRound, type SecAggRoundOptions } from './secagg.ts';

const clock: SecAggRoundOptions['clock'] = { now: () => 0, setTimeout: () => 0, clearTimeout: () => undefined };
const log = { info: () => undefined, warn: () => undefined, debug: () => undefined, error: () => undefined } as unknown as Logger;

function driverPlan(n: number, jobMinSurvivors: number, dim: number, noiseMultiplier: number, secagg: Record<string, unknown> = {}) {
  const config = SecAggConfigSchema.parse({ enabled: true, ...secagg });
  const round = new SecAggRound({
    jobId: 'plan',
    round: 1,
    members: Array.from({ length: n }, (_, i) => ({ clientId: `c${i}`, connId: `k${i}` })),
    config,
    dim,
    clipNorm: 1,
    minSurvivors: jobMinSurvivors,
    noiseMultiplier,
    trainMs: 1000,
    clock,
    log,
    send: () => undefined,
    isConnected: () => true,
    onDone: () => undefined,
  });
  round.close();
  const shared = planSecAggRound({
    clients: n,
    jobMinSurvivors,
    dim,
    clipNorm: 1,
    bits: config.bits,
    wrapProbability: config.wrapProbability,
    noiseMultiplier,
    dropoutRate: config.dropoutRate,
    corruptRate: config.corruptRate,
  });
  return { round, shared };
}

describe('SecAgg encoding plan: one rule for the coordinator and the bench', () => {
  const cases: [string, number, number, number, number, Record<string, unknown>?][] = [
    ['the bench default (n = 100, 10% dropout, distributed DP)', 100, 90, 1_663_370, 1],
    ['a Poisson cohort far above the job floor', 119, 60, 199_210, 1],
    ['no DP', 30, 25, 105, 0],
    ['20 bits, a low floor', 40, 10, 5000, 1.1, { bits: 20, dropoutRate: 0.2 }],
  ];
  for (const [name, n, floor, dim, z, secagg] of cases) {
    it(name, () => {
      const { round, shared } = driverPlan(n, floor, dim, z, secagg);
      const { rotationSeed, ...announced } = round.announce;
      expect(rotationSeed).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(announced).toEqual({
        bits: shared.encoding.bits,
        gamma: shared.encoding.gamma,
        clipNorm: shared.encoding.clipNorm,
        noiseStddev: shared.encoding.noiseStddev,
        minSurvivors: shared.minSurvivors,
      });
      expect(round.sensitivity).toBe(shared.encoding.sensitivity);
      expect(round.server.params).toMatchObject({ neighbors: shared.graph.neighbors, threshold: shared.graph.threshold });
    });
  }
});
