/**
 * The job config's strategy fields: local optimizers (training.optimizer) and what is sent to clients;
 * robust aggregators (aggregator) and what they refuse (SecAgg, central DP, unbounded cohorts, f beyond
 * what the survivors allow), and why local DP's accounting is unchanged by them.
 */
import { describe, expect, it } from 'vitest';
import { trainingParams } from './cohort.ts';
import { parseJobConfig, type JobConfigInput } from './config.ts';
import { PrivacyController } from './privacy.ts';
import { TrainingParamsSchema } from '../../shared/protocol/index.ts';

const problems = (raw: unknown): string => {
  try {
    parseJobConfig(raw);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('config was accepted');
};

describe('training.optimizer', () => {
  it('defaults to sgd, which is sent without an optimizer field (older clients accept it)', () => {
    const cfg = parseJobConfig({});
    expect(cfg.training.optimizer).toEqual({ name: 'sgd' });
    const sent = trainingParams(cfg.training, cfg.aggregator);
    expect('optimizer' in sent).toBe(false);
    expect(TrainingParamsSchema.parse(sent)).toEqual(sent);
  });

  it('fills the hyperparameters of adam and momentum and sends them', () => {
    const adam = parseJobConfig({ training: { optimizer: { name: 'adam' } } });
    expect(adam.training.optimizer).toEqual({ name: 'adam', beta1: 0.9, beta2: 0.999, epsilon: 1e-7 });
    expect(TrainingParamsSchema.parse(trainingParams(adam.training)).optimizer).toEqual(adam.training.optimizer);
    const mom = parseJobConfig({ training: { optimizer: { name: 'momentum', momentum: 0.5 } } });
    expect(mom.training.optimizer).toEqual({ name: 'momentum', momentum: 0.5, nesterov: false });
  });

  it('refuses bad values, unknown names and unknown keys with the field path', () => {
    expect(problems({ training: { optimizer: { name: 'adam', beta1: 1 } } })).toMatch(/training\.optimizer\.beta1/);
    expect(problems({ training: { optimizer: { name: 'momentum', momentum: -0.1 } } })).toMatch(/training\.optimizer\.momentum/);
    expect(problems({ training: { optimizer: { name: 'rmsprop' } } })).toMatch(/training\.optimizer\.name/);
    expect(problems({ training: { optimizer: { name: 'sgd', momentum: 0.9 } } })).toMatch(/training\.optimizer.*momentum/);
  });
});

describe('aggregator', () => {
  const robust = (over: Partial<JobConfigInput>): JobConfigInput => ({
    sampling: { mode: 'fixed', cohortSize: 10 },
    minClients: 7,
    aggregator: { name: 'krum', f: 2 },
    ...over,
  });

  it("defaults to the streaming mean; a robust rule fills its defaults (maxCohort 100, Multi-Krum's m = 1)", () => {
    expect(parseJobConfig({}).aggregator).toEqual({ name: 'mean' });
    expect(parseJobConfig(robust({})).aggregator).toEqual({ name: 'krum', f: 2, m: 1, maxCohort: 100 });
    expect(parseJobConfig(robust({ aggregator: { name: 'trimmed-mean', beta: 0.1 } })).aggregator).toEqual({ name: 'trimmed-mean', beta: 0.1, maxCohort: 100 });
  });

  it('refuses secure aggregation: the coordinator would see only the sum', () => {
    expect(problems(robust({ secagg: { enabled: true, clipNorm: 1 } }))).toMatch(/aggregator\.name: 'krum' needs each client's update, but with secure aggregation the coordinator sees only their sum/);
  });

  it('refuses central DP (the accountant assumes the clipped mean) and accepts local DP', () => {
    const central = { mode: 'central', noiseMultiplier: 1, clipNorm: 1, budget: { epsilon: 10, delta: 1e-5 } } as const;
    expect(problems(robust({ dp: central }))).toMatch(/'krum' with central DP is refused: the noise and the accountant assume the clipped mean/);
    expect(problems(robust({ aggregator: { name: 'median' }, dp: central }))).toMatch(/central DP is refused/);
    expect(parseJobConfig(robust({ dp: { ...central, mode: 'local' } })).aggregator.name).toBe('krum');
  });

  it('under local DP a robust rule is post-processing: the round plan and both events are those of the mean', () => {
    const dp = { mode: 'local', noiseMultiplier: 1.5, clipNorm: 0.5, budget: { epsilon: 1e6, delta: 1e-5 } } as const;
    const planOf = (aggregator: JobConfigInput['aggregator']) => {
      const p = new PrivacyController(parseJobConfig(robust({ dp, aggregator })), []).plan(10, 50, 7);
      if ('exhausted' in p) throw new Error('budget');
      return { event: p.event, coordinator: p.coordinatorEvent, noise: p.noise, announce: p.announce };
    };
    const mean = planOf({ name: 'mean' });
    for (const rule of [{ name: 'median' }, { name: 'krum', f: 2 }, { name: 'bulyan', f: 1 }, { name: 'trimmed-mean', beta: 0.2 }] as const) {
      expect(planOf(rule)).toEqual(mean);
    }
  });

  it('refuses Poisson sampling and cohorts above maxCohort (every update is held in memory)', () => {
    expect(problems(robust({ sampling: { mode: 'poisson', rate: 0.1 } }))).toMatch(/sampling\.mode: 'krum' holds every update of a round in memory/);
    expect(problems(robust({ sampling: { mode: 'fixed', cohortSize: 101 } }))).toMatch(/cohortSize 101 > aggregator\.maxCohort 100/);
    expect(problems(robust({ aggregator: { name: 'median', maxCohort: 1001 } }))).toMatch(/aggregator\.maxCohort/);
  });

  it('refuses f beyond what the round guarantees: Krum needs 2f + 3 survivors, Bulyan 4f + 3', () => {
    expect(parseJobConfig(robust({ minClients: 7 })).minClients).toBe(7); // f = 2 at its bound
    expect(problems(robust({ minClients: 6 }))).toMatch(/minClients: 'krum' with f = 2 needs at least 7 updates per round: set minClients ≥ 7/);
    expect(problems(robust({ minClients: 10, minSurvivors: 6 }))).toMatch(/minSurvivors: .* set minSurvivors ≥ 7/);
    expect(problems(robust({ aggregator: { name: 'bulyan', f: 2 } }))).toMatch(/needs at least 11 updates/);
    expect(problems(robust({ aggregator: { name: 'krum', f: 0, m: 8 } }))).toMatch(/needs at least 8 updates/);
    expect(problems(robust({ aggregator: { name: 'trimmed-mean', beta: 0.5 } }))).toMatch(/aggregator\.beta/);
  });
});

describe('aggregator qfedavg', () => {
  it('streams (no cohort bound), asks clients for their initial loss, and refuses DP and SecAgg', () => {
    const cfg = parseJobConfig({ sampling: { mode: 'poisson', rate: 0.5 }, aggregator: { name: 'qfedavg' } });
    expect(cfg.aggregator).toEqual({ name: 'qfedavg', q: 1 });
    const sent = TrainingParamsSchema.parse(trainingParams(cfg.training, cfg.aggregator));
    expect(sent.initialLoss).toBe(true);
    expect('initialLoss' in trainingParams(cfg.training)).toBe(false);
    expect(problems({ aggregator: { name: 'qfedavg', q: 11 } })).toMatch(/aggregator\.q/);
    expect(problems({ aggregator: { name: 'qfedavg' }, dp: { mode: 'local', noiseMultiplier: 1, clipNorm: 1 } })).toMatch(/'qfedavg' with DP is refused/);
    expect(problems({ aggregator: { name: 'qfedavg' }, secagg: { enabled: true, clipNorm: 1 } })).toMatch(/'qfedavg' .* not possible under secure aggregation/);
  });
});
