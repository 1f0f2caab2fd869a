/** The job config's strategy fields: local optimizers (training.optimizer) and what is sent to clients. */
import { describe, expect, it } from 'vitest';
import { trainingParams } from './cohort.ts';
import { parseJobConfig } from './config.ts';
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
    const sent = trainingParams(cfg.training);
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
