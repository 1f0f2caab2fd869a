export {
  type ComposedDpEvent,
  type DpEvent,
  type DistributedDiscreteGaussianDpEvent,
  type DistributedDiscreteGaussianParams,
  type DpEventKind,
  DpEventSchema,
  type GaussianDpEvent,
  type PoissonSampledDpEvent,
  type SampledWithoutReplacementDpEvent,
  type SelfComposedDpEvent,
  composedEvent,
  distributedDiscreteGaussianEvent,
  gaussianEvent,
  poissonSampledEvent,
  sampledWithoutReplacementEvent,
  selfComposedEvent,
} from './events.ts';
export {
  type FractionalSeries,
  type RdpOptions,
  gaussianRdp,
  poissonSubsampledGaussianRdp,
  rdpGaussian,
  rdpPoissonSubsampledGaussian,
} from './rdp.ts';
export { WOR_EXACT_MAX_ORDER, rdpSampledWithoutReplacementGaussian } from './rdp-without-replacement.ts';
export {
  type Conversion,
  type DeltaResult,
  type EpsilonResult,
  deltaFromRdp,
  epsilonAtOrder,
  epsilonFromRdp,
} from './conversion.ts';
export {
  type AccountantOptions,
  type CalibrationParams,
  type CalibrationTarget,
  DEFAULT_ORDERS,
  type EpsilonForParams,
  INTEGER_ORDERS,
  type NeighboringRelation,
  RdpAccountant,
  calibrateNoiseMultiplier,
  calibrateNoiseMultiplierFor,
  calibrateNoiseMultiplierWithoutReplacement,
  effectiveNoiseMultiplier,
  epsilonFor,
  rdpOfEvent,
} from './accountant.ts';
export {
  DDGAUSS_ORDERS,
  type DdgaussEpsilonParams,
  checkDistributedDiscreteGaussian,
  ddgaussEpsilon,
  ddgaussEventFor,
  ddgaussRdpFunction,
  ddgaussTau,
  effectiveL1Sensitivity,
  rdpDistributedDiscreteGaussian,
  rdpPoissonSubsampledCurve,
} from './ddgauss.ts';
export { epsilonWithShortDraws, logBinomialBelow, shortDrawProbability } from './conditioning.ts';
export { describeEvent, mechanismOf } from './describe.ts';
