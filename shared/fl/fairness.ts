/**
 * Fairness of a model across clients, from each client's own evaluation accuracy — the figures of Li et
 * al. 2020 ("Fair Resource Allocation in Federated Learning", Table 1 and §5): the average, the worst 10%
 * (the mean accuracy of the ⌈n/10⌉ clients with the lowest accuracy) and the variance across clients
 * (population variance, in accuracy², as that paper reports it). Small and self-contained on purpose: the
 * full model-health metrics (group gaps, calibration) live elsewhere; this is what q-FedAvg is judged by.
 */
import { CohortError } from '../errors.ts';

export interface ClientFairness {
  clients: number;
  mean: number;
  /** Mean accuracy of the worst ⌈n/10⌉ clients. */
  worstDecile: number;
  /** Population variance of the accuracies across clients. */
  variance: number;
}

export function clientFairness(accuracies: readonly number[]): ClientFairness {
  const n = accuracies.length;
  if (n === 0) throw new CohortError('EMPTY', 'fairness of no clients');
  for (const a of accuracies) {
    if (!(a >= 0 && a <= 1)) throw new CohortError('OUT_OF_RANGE', `an accuracy must be in [0, 1], got ${a}`);
  }
  const sorted = [...accuracies].sort((a, b) => a - b);
  const mean = sorted.reduce((s, a) => s + a, 0) / n;
  const worst = Math.ceil(n / 10);
  const worstDecile = sorted.slice(0, worst).reduce((s, a) => s + a, 0) / worst;
  const variance = sorted.reduce((s, a) => s + (a - mean) ** 2, 0) / n;
  return { clients: n, mean, worstDecile, variance };
}
