/**
 * What one federated evaluation says about a model's health, as stored with the version (the
 * `evaluations.health` column) and served by the admin API: metrics from the summed statistics,
 * calibration before and after temperature scaling, fairness, drift, and the success criteria.
 */
import type { CriteriaReport } from './criteria.ts';
import type { DriftScores, DriftSketch } from './drift.ts';
import type { AccuracyDistribution, FairnessReport } from './fairness.ts';
import type { EvalMetrics, EvalStats } from './stats.ts';

export interface TemperatureReport {
  /** The candidate temperatures this evaluation measured, and the mean NLL at each. */
  candidates: number[];
  nll: number[];
  /** The candidate with the least summed NLL (Guo et al. 2017: T minimising held-out NLL). */
  best: number;
  /** The temperature the version is served with after this evaluation (applied: `calibrated` metrics). */
  applied?: number;
  /** Metrics of softmax(z / applied): ECE after temperature scaling. */
  calibrated?: EvalMetrics;
}

export interface DriftReport {
  /** This evaluation's summed sketch (the reference window's, while it is being built). */
  sketch: DriftSketch;
  /** Against the reference window, once there is one. */
  scores?: DriftScores;
  /** Federated accuracy now minus the reference window's. */
  accuracyDrop?: number;
  /** Why an alert was raised (a threshold crossed), if one was. */
  alert?: string;
  /** Evaluations in the reference window so far, and the window's size. */
  reference: { evaluations: number; of: number };
}

export interface HealthReport {
  stats: EvalStats;
  metrics: EvalMetrics;
  /** Clients whose statistics are summed. */
  clients: number;
  fairness?: FairnessReport;
  /** Accuracy across evaluating clients (not available when statistics are only summed, e.g. SecAgg). */
  clientAccuracy?: AccuracyDistribution;
  temperature?: TemperatureReport;
  drift?: DriftReport;
  criteria?: CriteriaReport;
  /**
   * A DP job's evaluation (health.dp): the statistics and metrics above are the noised ones; the noise
   * and its ledger row; which figures are withheld and why.
   */
  privacy?: { noiseMultiplier: number; sensitivity: number; stddev: number; maxExamples: number; withheld: string };
}
