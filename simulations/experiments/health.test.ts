/**
 * The model-health experiments in their --quick form: they run to the end, write their plots, and the
 * last stdout line is the summary with the keys issue 18 names, holding numbers of the right kind.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { experimentSummary } from '../../test/support/experiment-output.ts';

const summaryOf = (run: (args: string[]) => Promise<number>, args: string[]) => experimentSummary(run, args, { onlyLine: true });

describe('model-health experiments (--quick --json)', () => {
  it('drift: detection delay, false-alarm rate and ε, with and without DP; a PSI plot', async () => {
    const { run } = await import('./drift.ts');
    const s = await summaryOf(run, ['--quick', '--json', '--out', mkdtempSync(join(tmpdir(), 'cohort-drift-'))]);
    expect(s).toMatchObject({ experiment: 'drift', clients: 200 });
    // Without noise the shift (half the clients: digits 0–4 only, rotated) is caught at once, every run, and nothing else is.
    expect(s.detectionDelayRounds).toBe(0);
    expect(s.detected).toBe(1);
    expect(s.falseAlarmRate).toBe(0);
    expect(s.epsilon as number).toBeGreaterThan(0);
    expect(Number.isFinite(s.epsilon)).toBe(true);
    expect(s.falseAlarmRateDp as number).toBeGreaterThanOrEqual(0);
    expect(readdirSync(s.runDir).sort()).toEqual(['config.json', 'points.jsonl', 'psi.png', 'psi.svg', 'summary.json']);
  }, 180_000);

  it('fairness: group gap before/after reweighting, ECE before/after temperature scaling, worst decile; plots', async () => {
    const { run } = await import('./fairness.ts');
    const s = await summaryOf(run, ['--quick', '--json', '--out', mkdtempSync(join(tmpdir(), 'cohort-fairness-'))]);
    for (const key of ['ece', 'eceAfterTemperature', 'groupAccuracyGap', 'groupAccuracyGapAfterReweighting', 'worstDecileAccuracy']) {
      expect(typeof s[key]).toBe('number');
      expect(s[key] as number).toBeGreaterThanOrEqual(0);
      expect(s[key] as number).toBeLessThanOrEqual(1);
    }
    // The temperature minimising the summed NLL lowers the ECE (an under-trained model here: under-confident).
    expect(s.eceAfterTemperature as number).toBeLessThan(s.ece as number);
    // Group B's low-quality images cost it accuracy.
    expect(s.groupAccuracyGap as number).toBeGreaterThan(0.05);
    expect(readdirSync(s.runDir).sort()).toEqual(['config.json', 'group-accuracy.png', 'group-accuracy.svg', 'points.jsonl', 'summary.json', 'temperature-nll.png', 'temperature-nll.svg']);
  }, 180_000);
});
