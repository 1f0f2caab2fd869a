/**
 * Secure aggregation: SecAgg (Bonawitz et al. CCS 2017) on the SecAgg+ neighbour graph (Bell et al.
 * CCS 2020), with the integer encoding of distributed DP (Kairouz, Liu, Steinke ICML 2021).
 */
export { SecAggClient, type SecAggClientOptions, type SecAggClientPhase } from './client.ts';
export {
  SecAggServer,
  type SecAggResult,
  type SecAggRoundParams,
  type SecAggServerOptions,
  type SecAggServerPhase,
  type SecAggSets,
} from './server.ts';
export * from './messages.ts';
export { SecAggError, SecAggErrorCode } from './errors.ts';
export { findGraphParams, failureBounds, toleratedDropouts, type GraphParams, type GraphParamsInput, type FailureBounds } from './params.ts';
export { neighborGraph, type NeighborGraph } from './graph.ts';
export {
  addPacked,
  checkModulus,
  decodeSum,
  DEFAULT_BETA,
  encodeUpdate,
  modulusReport,
  packBits,
  packedBytes,
  encodedDim,
  rotationBlock,
  perClientNoiseStddev,
  roundedNormBound,
  unpackBits,
  type EncodeOptions,
  type EncodeResult,
  type EncodingParams,
  type IntegerNoise,
  type ModulusCheckInput,
  type ModulusReport,
} from './encoding.ts';
export { type UniformWords } from '../random.ts';
export {
  chooseEncoding,
  distributedGaussianTau,
  planSecAggRound,
  tolerantGraph,
  type EncodingPlan,
  type SecAggRoundPlan,
} from './plan.ts';
export { ed25519KeyPair, ed25519Sign, ed25519Verify, type Ed25519KeyPair } from '../crypto/ed25519.ts';
export { randomBytes, toBase64Url, fromBase64Url } from '../crypto/bytes.ts';
