export { WeightedSum, isAllFinite, l2Norm } from './aggregate.ts';
export {
  ServerOptimizerConfigSchema,
  createServerOptimizer,
  type ServerOptimizer,
  type ServerOptimizerConfig,
  type ServerOptimizerConfigInput,
  type ServerOptimizerName,
} from './optimizers.ts';
export { LocalOptimizerSchema, type LocalOptimizer, type LocalOptimizerInput, type LocalOptimizerName } from './local-optimizers.ts';
export {
  AggregatorConfigSchema,
  isRobust,
  MAX_ROBUST_COHORT,
  minUpdatesFor,
  robustAggregate,
  robustMemoryBytes,
  type AggregatorConfig,
  type AggregatorConfigInput,
  type RobustAggregatorConfig,
} from './robust.ts';
export { MIN_LOSS, QFedAvgSum } from './qfedavg.ts';
export { clientFairness, type ClientFairness } from './fairness.ts';
