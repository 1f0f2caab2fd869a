/**
 * `cohort demo` as a user runs it (small sizes): progress lines, a JSON last line, and with central
 * DP the ε of each progress line equals the ledger that `cohort privacy ledger` prints.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cohort } from './helpers.ts';

describe('cohort demo', () => {
  it('with --dp central prints ε per round, matching the ledger', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cohort-demo-dp-'));
    const r = await cohort([
      'demo', '--rounds', '3', '--clients', '3', '--train-size', '900', '--test-size', '300',
      '--dp', 'central', '--noise', '0.8', '--clip', '0.5', '--data-dir', dir,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const summary = JSON.parse(lines.at(-1)!);
    expect(summary).toMatchObject({ rounds: 3, clients: 3, delta: 1e-5, status: 'completed' });
    expect(summary.accuracy).toBeGreaterThan(0);
    const printed = lines.filter((l) => l.startsWith('round ')).map((l) => Number(/ε ([\d.]+)/.exec(l)![1]));
    expect(printed).toHaveLength(3);
    const ledger = await cohort(['privacy', 'ledger', '--data-dir', dir, '--job', 'demo', '--json']);
    const eps = ledger.stdout.trim().split('\n').map((l) => JSON.parse(l).epsilon as number);
    expect(eps.map((e) => e.toFixed(4)).map(Number)).toEqual(printed);
    expect(summary.epsilon).toBe(eps[2]);
    expect(eps[0]).toBeLessThan(eps[1]);
  });

  it('refuses a DP mode it cannot run, saying why', async () => {
    const r = await cohort(['demo', '--dp', 'distributed']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/needs secure aggregation: add --secagg/);
  });
});
