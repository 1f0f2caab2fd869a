/**
 * The dp-fedavg experiment's ε curve is the accountant's: for every round k, the recorded ε equals
 * `cohort privacy epsilon --q Q --noise Z --steps k --delta D` (the same function, and one CLI call
 * to tie them together).
 */
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { epsilonFor } from '../../shared/privacy/index.ts';
import { cohort } from '../../test/integration/helpers.ts';
import { run } from './dp-fedavg.ts';

describe('dp-fedavg experiment', () => {
  it('records per round the ε that `cohort privacy epsilon` computes for the same q, z and rounds', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cohort-dpsim-'));
    const code = await run([
      '--model', 'logreg', '--clients', '20', '--rounds', '3', '--fraction', '0.5', '--noise', '1.3',
      '--clip', '0.5', '--train-size', '600', '--test-size', '200', '--workers', '1', '--out', out,
    ]);
    expect(code).toBe(0);
    const [dir] = readdirSync(out);
    const rows = readFileSync(join(out, dir, 'rounds.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((r) => r.round)).toEqual([1, 2, 3]);
    rows.forEach((r) => expect(r.epsilon).toBeCloseTo(epsilonFor({ q: 0.5, noiseMultiplier: 1.3, steps: r.round, delta: 1e-5 }).epsilon, 10));
    const cli = await cohort(['privacy', 'epsilon', '--q', '0.5', '--noise', '1.3', '--steps', '3', '--delta', '1e-5', '--json']);
    expect(JSON.parse(cli.stdout).epsilon).toBeCloseTo(rows[2].epsilon, 10);
    expect(readdirSync(join(out, dir)).sort()).toEqual(
      ['accuracy.png', 'accuracy.svg', 'config.json', 'epsilon.png', 'epsilon.svg', 'rounds.csv', 'rounds.jsonl', 'summary.json'],
    );
  });
});
