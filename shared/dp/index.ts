export { type ClipResult, checkClipNorm, clipL2InPlace, l2Norm } from './clip.ts';
export { addGaussianNoise, checkNoiseStddev, gaussianPair, gaussianSample } from './gaussian.ts';
export {
  type BitSource,
  type Rational,
  bernoulliRational,
  isqrt,
  rational,
  rationalFromNumber,
  toRational,
  uniformBelow,
} from './rational.ts';
export {
  type DiscreteGaussianSampler,
  addDiscreteGaussianNoise,
  createDiscreteGaussianSampler,
  discreteGaussianNormalizer,
  discreteGaussianPmf,
  discreteGaussianVariance,
  sampleBernoulliExp,
  sampleDiscreteGaussian,
  sampleDiscreteLaplace,
} from './discrete-gaussian.ts';
export {
  TABLE_CDF_BITS,
  TABLE_MAX_ENTRIES,
  TABLE_TAIL_BITS,
  type TableDiscreteGaussian,
  addDiscreteGaussianNoiseFast,
  bitSourceFromWords,
  createTableDiscreteGaussian,
  deltaFromTotalVariation,
  discreteGaussianNoiseTvBound,
  tableDiscreteGaussianSupports,
} from './discrete-gaussian-table.ts';
/** The CSPRNG door lives in shared/random.ts; re-exported for the samplers' callers. */
export { type UniformWords, cryptoWords, wordsFromRng } from '../random.ts';
export {
  type CentralNoisyMeanParams,
  cappedClientWeight,
  centralNoisyMean,
  expectedCohortWeight,
  fixedDenominatorEstimate,
  sumSensitivity,
} from './fixed-denominator.ts';
export {
  ADAPTIVE_CLIPPING_DEFAULTS,
  type AdaptiveClippingParams,
  type ClipNormStep,
  clippingBit,
  defaultCountNoiseStddev,
  geometricClipUpdate,
  nextClipNorm,
  noisyUnclippedFraction,
  valueNoiseMultiplier,
} from './adaptive-clipping.ts';
export {
  AdaptiveClippingConfigSchema,
  AUDIENCES,
  type Audience,
  budgetAudience,
  type CohortSampling,
  DP_MODES,
  DP_MODE_SPECS,
  type DpConfig,
  type DpConfigInput,
  DpConfigSchema,
  type DpMode,
  type DpModeSpec,
  PrivacyBudgetSchema,
  type RoundEventParams,
  centralNoiseStddev,
  distributedNoiseStddev,
  distributedRoundEvents,
  type DistributedEncoding,
  localNoiseStddev,
  roundDpEvent,
  roundDpPlan,
  type RoundDpPlan,
} from './modes.ts';
