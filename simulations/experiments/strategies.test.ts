/**
 * The poisoning and fairness experiments end to end on small MNIST runs (real engine, real tfjs in a
 * worker): the JSON summary's headline fields, the attack doing damage that the median undoes, and
 * q-FedAvg rounds committing through the whole stack (clients asked for, and reporting, their loss).
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fromArrays } from '../../client/data/dataset.ts';
import { adversaryFor, defenceJob, flipLabels, run as poisoning } from './poisoning.ts';
import { run as fairness } from './qfedavg-fairness.ts';
import { parseJobConfig } from '../../server/round/config.ts';
import { experimentSummary } from '../../test/support/experiment-output.ts';

const lastJson = experimentSummary;

afterEach(() => vi.restoreAllMocks());

describe('poisoning experiment', () => {
  it('attacks: labels flipped ℓ → C − 1 − ℓ; sign-flip sends −boost·Δ; defences build valid job configs', () => {
    const shard = fromArrays([[0], [1], [2]], [0, 3, 9], { numClasses: 10 });
    expect(Array.from(flipLabels(shard).labels)).toEqual([9, 6, 0]);
    const sign = adversaryFor('sign-flip', new Set([0]), 10);
    expect(Array.from(sign.update!(Float32Array.of(0.5, -1)))).toEqual([-5, 10]);
    expect(adversaryFor('label-flip', new Set([0]), 10).update).toBeUndefined();
    for (const d of ['mean', 'median', 'trimmed-mean', 'krum', 'multi-krum', 'bulyan', 'clip-dp'] as const) {
      const cfg = parseJobConfig({ sampling: { mode: 'fixed', cohortSize: 10 }, minClients: 10, ...defenceJob(d, 10, 2, 0.2, 1, 0.1) });
      expect(cfg.minClients).toBe(10);
    }
    // Bulyan's f is capped at what 10 updates allow (4f + 3 ≤ 10 → f ≤ 1).
    expect(defenceJob('bulyan', 10, 2, 0.2, 1, 0.1)).toMatchObject({ aggregator: { name: 'bulyan', f: 1 } });
  });

  it('a sign-flipping client wrecks FedAvg and the median resists; the summary says so', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cohort-poison-'));
    const summary = await lastJson(poisoning, [
      '--model', 'logreg', '--clients', '7', '--train-size', '700', '--test-size', '300', '--rounds', '3', '--partition', 'iid',
      '--attack', 'sign-flip', '--defences', 'mean,median', '--attack-fraction', '0.15', '--lr', '0.1', '--workers', '1', '--out', out, '--json',
    ]);
    expect(summary).toMatchObject({ experiment: 'poisoning', attackFraction: 0.15, bestRobust: 'median' });
    const fedavg = summary.fedavgAccuracy as number;
    const robust = summary.bestRobustAccuracy as number;
    const clean = summary.cleanAccuracy as number;
    expect(robust).toBeGreaterThan(fedavg + 0.2);
    expect(robust).toBeGreaterThan(clean - 0.15);
    const series = summary.series as { name: string; fairness: { clients: number } }[];
    expect(series.map((s) => s.name)).toEqual(['iid no-attack', 'iid sign-flip mean', 'iid sign-flip median']);
    expect(series[1].fairness.clients).toBe(6); // the attacker is not in the fairness figures
    expect(readdirSync(join(out, readdirSync(out)[0]))).toContain('accuracy.svg');
  });
});

describe('fairness experiment', () => {
  it('runs FedAvg and q-FedAvg through the whole stack and reports the fairness figures', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cohort-fair-'));
    const summary = await lastJson(fairness, [
      '--model', 'logreg', '--clients', '6', '--train-size', '600', '--test-size', '200', '--rounds', '2', '--fraction', '1',
      '--q', 'mean,0,1', '--workers', '1', '--out', out,
    ]);
    const figures = summary.fairness as Record<string, { accuracy: number; clients: number; worstDecile: number; variance: number; mean: number }>;
    expect(Object.keys(figures)).toEqual(['fedavg', 'qfedavg q=0', 'qfedavg q=1']);
    for (const f of Object.values(figures)) {
      expect(f.clients).toBe(6);
      expect(f.worstDecile).toBeLessThanOrEqual(f.mean);
      expect(f.variance).toBeGreaterThanOrEqual(0);
    }
    // FedAvg and q = 0 (the unweighted mean) learn; q = 1 takes the paper's smaller steps (1/L scaled
    // down by q‖Δw‖²/F) but still lowers the held-out loss from the initial model's ≈ ln 10.
    expect(figures.fedavg.accuracy).toBeGreaterThan(0.3);
    expect(figures['qfedavg q=0'].accuracy).toBeGreaterThan(0.25);
    const series = summary.series as { name: string; status: string; rounds: number; finalLoss: number }[];
    expect(series.every((s) => s.status === 'completed' && s.rounds === 2)).toBe(true);
    expect(series[2].finalLoss).toBeLessThan(Math.log(10) - 0.02);
  });
});
