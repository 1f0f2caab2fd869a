/**
 * The secagg-cost experiment runs both arms and measures bytes per client: with 16-bit SecAgg the
 * masked input plus key traffic is smaller than the float32 update of plain FedAvg (logreg, d = 7,850).
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from './secagg-cost.ts';

describe('secagg-cost experiment', () => {
  it('records round time and bytes per client with and without SecAgg, and plots them', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cohort-cost-'));
    const code = await run([
      '--model', 'logreg', '--cohorts', '6', '--dropouts', '0', '--rounds', '1',
      '--train-size', '600', '--test-size', '100', '--workers', '1', '--out', out,
    ]);
    expect(code).toBe(0);
    const [dir] = readdirSync(out);
    const rows = readFileSync(join(out, dir, 'rounds.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const summary = (name: string) => rows.find((r) => r.series === `${name} dropout=0 summary`);
    const plain = summary('plain');
    const secagg = summary('secagg');
    // plain: one float32 update of 7,850 values (+ a small header) per client per round
    expect(plain.bytesPerClientPerRound).toBeGreaterThan(7850 * 4);
    expect(plain.bytesPerClientPerRound).toBeLessThan(7850 * 4 * 1.05);
    expect(secagg.bytesPerClientPerRound).toBeLessThan(plain.bytesPerClientPerRound);
    expect(secagg.bytesPerClientPerRound).toBeGreaterThan(7850 * 2); // 16-bit packed input at least
    for (const f of ['round-time.svg', 'round-time.png', 'bytes.svg', 'bytes.png']) expect(existsSync(join(out, dir, f))).toBe(true);
  });
});
