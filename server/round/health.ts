/**
 * Model health at federated evaluation (issue 18): what the coordinator asks evaluators for, how it sums
 * their statistics, and what it concludes across evaluations.
 *
 * - `HealthTally` is one evaluation's sums: the statistics (shared/evaluation), per declared group, the
 *   temperature NLLs, the drift sketch, and each client's accuracy (for the distribution across
 *   clients). Every result is checked first (ranges.ts `checkEvalHealth`) and the sums are kept inside
 *   float64's exact integer range: a result that would leave it is excluded with OUT_OF_RANGE.
 * - `HealthMonitor` spans the job: the temperature grid (coarse, then refined around the best — Guo et
 *   al. 2017's T minimising held-out NLL, found federatedly from summed NLLs), the drift reference
 *   window and its alerts, and the success criteria of each evaluation.
 */
import { CohortError } from '../../shared/errors.ts';
import {
  accuracyDistribution,
  addSketches,
  addStats,
  checkCriteria,
  cloneStats,
  driftScores,
  fairnessReport,
  FIXED_POINT,
  metricsOf,
  PER_EXAMPLE_MAX,
  type DriftReport,
  type DriftSketch,
  type EvalStats,
  type GroupTally,
  type HealthReport,
  type HealthRequest,
  type TemperatureReport,
} from '../../shared/evaluation/index.ts';
import { ErrorCode, type EvalResult } from '../../shared/protocol/index.ts';
import type { JobConfig } from './config.ts';

/** Coarse grid of the first temperature search; later evaluations refine around the best by ×2^(k/8). */
export const COARSE_TEMPERATURES = [0.5, 0.625, 0.75, 0.875, 1, 1.125, 1.25, 1.5, 1.75, 2, 2.5, 3, 4, 5];
const REFINE_STEPS = [-3, -2, -1, 0, 1, 2, 3].map((k) => 2 ** (k / 8));

/** Examples one evaluation may sum: beyond, NLL sums could leave float64's exact integers. */
export const MAX_EVALUATION_EXAMPLES = Math.floor(Number.MAX_SAFE_INTEGER / PER_EXAMPLE_MAX.nll);

export class HealthTally {
  private stats?: EvalStats;
  private calibrated?: EvalStats;
  private temperatureNll?: number[];
  private sketch?: DriftSketch;
  private readonly groups = new Map<string, GroupTally>();
  private readonly accuracies: number[] = [];
  private clients = 0;
  private examples = 0;

  constructor(readonly request: HealthRequest) {}

  /** Throws OUT_OF_RANGE (nothing summed) when the result would take a sum past the exact range. */
  add(msg: EvalResult): void {
    const h = msg.health;
    if (!h || h.stats.count === 0) return;
    if (this.stats && h.stats.numClasses !== this.stats.numClasses) {
      throw new CohortError(ErrorCode.OUT_OF_RANGE, `eval_result.health: ${h.stats.numClasses} classes, other evaluators reported ${this.stats.numClasses}`, { field: 'health' });
    }
    if (this.examples + h.stats.count > MAX_EVALUATION_EXAMPLES) {
      throw new CohortError(ErrorCode.OUT_OF_RANGE, `eval_result.health: the evaluation's sums would pass ${MAX_EVALUATION_EXAMPLES} examples, float64's exact range`, { field: 'health' });
    }
    this.examples += h.stats.count;
    this.clients++;
    this.stats = this.stats ? addStats(this.stats, h.stats, this.stats) : cloneStats(h.stats);
    if (h.calibrated) this.calibrated = this.calibrated ? addStats(this.calibrated, h.calibrated, this.calibrated) : cloneStats(h.calibrated);
    if (h.temperatureNll) {
      const t = (this.temperatureNll ??= h.temperatureNll.map(() => 0));
      h.temperatureNll.forEach((x, i) => (t[i] += x));
    }
    if (h.drift) this.sketch = this.sketch ? addSketches(this.sketch, h.drift) : structuredClone(h.drift);
    for (const [attribute, value] of Object.entries(msg.groups ?? {})) {
      const key = `${attribute}=${value}`;
      const g = this.groups.get(key);
      if (g) {
        addStats(g.stats, h.stats, g.stats);
        g.clients++;
      } else this.groups.set(key, { stats: cloneStats(h.stats), clients: 1 });
    }
    this.accuracies.push(metricsOf(h.stats)!.accuracy);
  }

  /** The evaluation's report before the monitor adds drift and criteria; undefined without statistics. */
  report(minGroupCount: number): HealthReport | undefined {
    const stats = this.stats;
    const metrics = stats && metricsOf(stats);
    if (!stats || !metrics) return undefined;
    const report: HealthReport = { stats, metrics, clients: this.clients };
    if (this.groups.size > 0) report.fairness = fairnessReport(this.groups, minGroupCount);
    const distribution = accuracyDistribution(this.accuracies);
    if (distribution) report.clientAccuracy = distribution;
    const temps = this.request.temperatures;
    if (temps && this.temperatureNll && this.temperatureNll.length === temps.length) {
      const nll = this.temperatureNll.map((x) => x / FIXED_POINT / stats.count);
      let best = 0;
      for (let i = 1; i < nll.length; i++) if (nll[i] < nll[best]) best = i;
      const t: TemperatureReport = { candidates: [...temps], nll, best: temps[best] };
      if (this.request.temperature !== undefined && this.calibrated) {
        t.applied = this.request.temperature;
        t.calibrated = metricsOf(this.calibrated);
      }
      report.temperature = t;
    }
    if (this.sketch) report.drift = { sketch: this.sketch, reference: { evaluations: 0, of: 0 } };
    return report;
  }
}

export interface DriftAlert {
  round: number;
  reason: string;
  action: 'review' | 'retrain';
  drift: DriftReport;
}

/** The job-long side of model health: temperature search, drift reference and alerts, criteria. */
export class HealthMonitor {
  private bestTemperature?: number;
  private reference?: { sketch: DriftSketch; accuracySum: number; evaluations: number };
  /** An alert is raised when drift first crosses a threshold, and again only after it has fallen back. */
  private alerting = false;

  constructor(private readonly config: Pick<JobConfig, 'health' | 'criteria'>) {}

  /** What the next evaluation asks clients for (undefined: loss and accuracy only). */
  request(): HealthRequest | undefined {
    const h = this.config.health;
    if (!h.stats) return undefined;
    const req: HealthRequest = { stats: true };
    if (h.temperatureScaling) {
      req.temperatures = this.bestTemperature === undefined ? [...COARSE_TEMPERATURES] : REFINE_STEPS.map((s) => round6(this.bestTemperature! * s));
      if (this.bestTemperature !== undefined) req.temperature = this.bestTemperature;
    }
    if (h.drift) req.drift = h.drift.binning;
    return req;
  }

  /** The temperature the latest version is served with (undefined before the first search). */
  get temperature(): number | undefined {
    return this.bestTemperature;
  }

  /**
   * Completes an evaluation's report: temperature (the best so far), drift against the reference window
   * (or the window grown), criteria. Returns the drift alert to act on, if one was raised.
   */
  conclude(round: number, report: HealthReport, epsilon: number | null): DriftAlert | undefined {
    if (report.temperature) this.bestTemperature = report.temperature.best;
    let alert: DriftAlert | undefined;
    const cfg = this.config.health.drift;
    if (cfg && report.drift) {
      const drift = report.drift;
      const ref = this.reference;
      if (!ref || ref.evaluations < cfg.referenceEvaluations) {
        this.reference = ref
          ? { sketch: addSketches(ref.sketch, drift.sketch), accuracySum: ref.accuracySum + report.metrics.accuracy, evaluations: ref.evaluations + 1 }
          : { sketch: structuredClone(drift.sketch), accuracySum: report.metrics.accuracy, evaluations: 1 };
        drift.reference = { evaluations: this.reference.evaluations, of: cfg.referenceEvaluations };
      } else {
        drift.reference = { evaluations: ref.evaluations, of: cfg.referenceEvaluations };
        drift.scores = driftScores(ref.sketch, drift.sketch);
        drift.accuracyDrop = ref.accuracySum / ref.evaluations - report.metrics.accuracy;
        const reasons: string[] = [];
        const s = drift.scores;
        if (s.maxPsi > cfg.psiThreshold) reasons.push(`PSI ${s.maxPsi.toFixed(3)} on ${s.maxPsiOn} > ${cfg.psiThreshold}`);
        if (cfg.jsThreshold !== undefined) {
          const js = Math.max(s.labelJs, ...s.featureJs);
          if (js > cfg.jsThreshold) reasons.push(`JS divergence ${js.toFixed(3)} > ${cfg.jsThreshold}`);
        }
        if (cfg.accuracyDrop !== undefined && drift.accuracyDrop > cfg.accuracyDrop) {
          reasons.push(`accuracy ${drift.accuracyDrop.toFixed(3)} below the reference window's (> ${cfg.accuracyDrop})`);
        }
        if (reasons.length > 0 && !this.alerting) {
          drift.alert = reasons.join('; ');
          alert = { round, reason: drift.alert, action: cfg.onDrift, drift };
        }
        this.alerting = reasons.length > 0;
      }
    }
    if (this.config.criteria) {
      const t = report.temperature;
      report.criteria = checkCriteria(this.config.criteria, {
        accuracy: report.metrics.accuracy,
        ece: t?.calibrated?.ece ?? report.metrics.ece,
        groupGap: report.fairness?.accuracyGap ?? null,
        worstDecileAccuracy: report.clientAccuracy?.worstDecile ?? null,
        epsilon,
      });
    }
    return alert;
  }

  /** Rebuilds the job-long state from the stored reports, oldest first (a restarted coordinator). */
  restore(reports: readonly HealthReport[]): void {
    this.reference = undefined;
    this.alerting = false;
    for (const r of reports) {
      const copy = structuredClone(r);
      delete copy.criteria;
      this.conclude(0, copy, null);
    }
  }
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
