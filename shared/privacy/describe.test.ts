import { describe, expect, it } from 'vitest';
import { describeEvent, mechanismOf } from './describe.ts';
import {
  composedEvent,
  distributedDiscreteGaussianEvent,
  gaussianEvent,
  poissonSampledEvent,
  sampledWithoutReplacementEvent,
} from './events.ts';

describe('events in words', () => {
  const ddg = distributedDiscreteGaussianEvent({ l2Sensitivity: 101.8, localStddev: 10, clients: 100, dimension: 1024 });

  it('names the noise an event is made of, through sampling and composition', () => {
    expect(mechanismOf(poissonSampledEvent(0.1, gaussianEvent(1)))).toBe('gaussian');
    expect(mechanismOf(poissonSampledEvent(0.1, ddg))).toBe('distributed_discrete_gaussian');
    expect(mechanismOf(composedEvent([gaussianEvent(1), ddg]))).toBe('gaussian+distributed_discrete_gaussian');
  });

  it('says which analysis applies: MTZ for a sampled Gaussian, Zhu–Wang for a sampled discrete-Gaussian sum, WBK without replacement', () => {
    expect(describeEvent(poissonSampledEvent(0.1, gaussianEvent(1.1)))).toBe('Poisson-sampled at q 0.1000 (MTZ 2019): Gaussian, noise multiplier 1.100 of the sensitivity');
    expect(describeEvent(poissonSampledEvent(0.01, ddg))).toMatch(/^Poisson-sampled at q 0\.01000 \(Zhu–Wang 2019 general bound\): sum of 100 discrete Gaussians \(σ 10 each/);
    expect(describeEvent(sampledWithoutReplacementEvent(4, 8, gaussianEvent(0.5)))).toMatch(/^4 of 8 sampled without replacement \(WBK 2019\)/);
  });
});
