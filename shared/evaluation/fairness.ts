/**
 * Fairness from summed statistics: metrics per group of clients, the gaps between groups, and the
 * distribution of accuracy across clients.
 *
 * - Groups are client-declared attributes (`{ region: "eu" }`); each attribute value is a group
 *   (`region=eu`) whose statistics are the sum of its clients' statistics. A group with fewer than
 *   `minGroupCount` examples is suppressed: its metrics are withheld (small groups' metrics are both
 *   noisy and closer to identifying), and the report says why.
 * - Gaps: max − min accuracy over reported groups, and the equalised-odds difference (Hardt, Price,
 *   Srebro, NeurIPS 2016): for each class one-vs-rest, the larger of the spread of true-positive rates
 *   and of false-positive rates across groups; the maximum over classes (fairlearn's
 *   `equalized_odds_difference`, extended to K classes).
 * - Accuracy across clients: mean, variance and the worst decile (the mean of the lowest 10% of clients'
 *   accuracies), the figures q-FFL (Li, Sanjabi, Beirami, Smith, ICLR 2020) and Ditto (Li, Hu, Beirami,
 *   Smith, ICML 2021) report. Per-client accuracies are per-client releases: not available under SecAgg.
 */
import { metricsOf, type EvalMetrics, type EvalStats } from './stats.ts';

export interface GroupReport {
  group: string;
  count: number;
  clients: number;
  metrics?: EvalMetrics;
  /** Why the metrics are withheld (small group). */
  suppressed?: string;
}

export interface FairnessReport {
  groups: GroupReport[];
  /** max − min accuracy over reported groups (null with fewer than two). */
  accuracyGap: number | null;
  equalisedOddsDifference: number | null;
}

export interface GroupTally {
  stats: EvalStats;
  clients: number;
}

export function fairnessReport(groups: ReadonlyMap<string, GroupTally>, minGroupCount: number): FairnessReport {
  const reports: GroupReport[] = [];
  const shown: { stats: EvalStats; metrics: EvalMetrics }[] = [];
  for (const [group, { stats, clients }] of [...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (stats.count < minGroupCount) {
      reports.push({ group, count: stats.count, clients, suppressed: `${stats.count} examples, below evaluation.minGroupCount ${minGroupCount}` });
      continue;
    }
    const metrics = metricsOf(stats);
    if (!metrics) continue;
    reports.push({ group, count: stats.count, clients, metrics });
    shown.push({ stats, metrics });
  }
  if (shown.length < 2) return { groups: reports, accuracyGap: null, equalisedOddsDifference: null };
  const acc = shown.map((s) => s.metrics.accuracy);
  return { groups: reports, accuracyGap: Math.max(...acc) - Math.min(...acc), equalisedOddsDifference: equalisedOdds(shown.map((s) => s.stats)) };
}

/** Max over classes of max(TPR spread, FPR spread) across groups; classes a group lacks are skipped for it. */
export function equalisedOdds(groups: readonly EvalStats[]): number {
  const K = groups[0].numClasses;
  let worst = 0;
  for (let k = 0; k < K; k++) {
    const tpr: number[] = [];
    const fpr: number[] = [];
    for (const s of groups) {
      let pos = 0;
      let tp = 0;
      let predicted = 0;
      for (let j = 0; j < K; j++) {
        pos += s.confusion[k * K + j];
        predicted += s.confusion[j * K + k];
      }
      tp = s.confusion[k * K + k];
      const neg = s.count - pos;
      if (pos > 0) tpr.push(tp / pos);
      if (neg > 0) fpr.push((predicted - tp) / neg);
    }
    const spread = (xs: number[]) => (xs.length < 2 ? 0 : Math.max(...xs) - Math.min(...xs));
    worst = Math.max(worst, spread(tpr), spread(fpr));
  }
  return worst;
}

export interface AccuracyDistribution {
  clients: number;
  mean: number;
  variance: number;
  /** Mean accuracy of the worst ⌈10%⌉ of clients. */
  worstDecile: number;
}

export function accuracyDistribution(accuracies: readonly number[]): AccuracyDistribution | undefined {
  const n = accuracies.length;
  if (n === 0) return undefined;
  const mean = accuracies.reduce((a, b) => a + b, 0) / n;
  const variance = accuracies.reduce((a, x) => a + (x - mean) ** 2, 0) / n;
  const sorted = [...accuracies].sort((a, b) => a - b);
  const k = Math.max(1, Math.ceil(n / 10));
  const worstDecile = sorted.slice(0, k).reduce((a, b) => a + b, 0) / k;
  return { clients: n, mean, variance, worstDecile };
}
