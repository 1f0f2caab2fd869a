/**
 * A long simulation stops when asked (issue 20): a real `npm run sim` process, signalled while it
 * generates data or while its rounds run, exits with 128 + the signal's number and leaves a run
 * directory whose every file is valid and agrees with the others.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts a simulation; sends `signal` once stderr shows `when`; resolves with how it exited. */
function simulateUntil(args: string[], when: RegExp, signal: NodeJS.Signals): Promise<Exit> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'simulations/index.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let sent = false;
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
    if (!sent && when.test(stderr)) {
      sent = true;
      child.kill(signal);
    }
  });
  return new Promise((done) => child.on('exit', (code) => done({ code, stdout, stderr })));
}

const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean);

describe('stopping a simulation', () => {
  it('SIGTERM in the middle of the rounds: exit 143, the committed rounds in every file, the summary says stopped', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cohort-stop-'));
    const args = ['fedavg', '--dataset', 'synthetic', '--model', 'logreg', '--clients', '400', '--fraction', '0.05', '--rounds', '100000'];
    const exit = await simulateUntil([...args, '--eval-every', '0', '--workers', '1', '--backend', 'wasm', '--out', out], /fedavg 1\/100000/, 'SIGTERM');
    expect(exit.stderr).toContain('SIGTERM: stopping');
    expect(exit.code).toBe(143);
    const [dir] = readdirSync(out);
    const path = join(out, dir);
    const rows = lines(join(path, 'rounds.jsonl')).map((l) => JSON.parse(l) as { round: number; cohort: number });
    expect(rows.length).toBeGreaterThanOrEqual(1);
    expect(rows.length).toBeLessThan(100_000);
    expect(rows.map((r) => r.round)).toEqual(rows.map((_, i) => i + 1));
    expect(rows.every((r) => r.cohort === 20)).toBe(true);
    expect(lines(join(path, 'rounds.csv'))).toHaveLength(rows.length + 1);
    const summary = JSON.parse(readFileSync(join(path, 'summary.json'), 'utf8'));
    expect(summary).toMatchObject({ stopped: 'SIGTERM', series: [{ status: 'stopped', rounds: rows.length }] });
    expect(JSON.parse(lines(join(path, 'config.json')).join('\n')).flags.rounds).toBe('100000');
    // The last line printed is the same summary.
    expect(JSON.parse(exit.stdout.trim().split('\n').at(-1)!)).toEqual(summary);
  }, 120_000);

  it('SIGINT while the data is being generated: exit 130, and no round ran', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cohort-stop-'));
    const args = ['fedavg', '--dataset', 'synthetic', '--model', 'logreg', '--clients', '100000', '--fraction', '0.01', '--rounds', '100'];
    const exit = await simulateUntil([...args, '--workers', '1', '--backend', 'wasm', '--out', out], /generating the held-out rows/, 'SIGINT');
    expect(exit.code).toBe(130);
    expect(exit.stderr).toContain('SIGINT: stopping');
    expect(exit.stderr).not.toMatch(/fedavg 1\/100/);
    // Stopped before the run directory (its config) was written, or with a valid one that says so.
    for (const dir of readdirSync(out)) {
      expect(existsSync(join(out, dir, 'rounds.jsonl'))).toBe(false);
      expect(JSON.parse(readFileSync(join(out, dir, 'summary.json'), 'utf8')).stopped).toBe('SIGINT');
    }
  }, 120_000);
});
