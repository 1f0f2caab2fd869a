/**
 * The transfer experiment's quick mode end to end: a CNN base pretrained on MNIST digits, its head
 * fine-tuned federatedly on Fashion-MNIST vs the whole CNN from scratch. Checked: both series run every
 * round under the same DP accounting (equal ε per round), and the bytes the clients sent per round are
 * those of the trainable dimension — the head's updates (5,130 weights) cost under 1% of the full
 * model's (1,663,370).
 */
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from './transfer.ts';

describe('transfer experiment (--quick)', () => {
  it('fine-tunes the head of a pretrained base and from scratch; bytes follow the trainable dimension, ε does not', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cohort-transfer-sim-'));
    expect(await run(['--quick', '--workers', '1', '--out', out])).toBe(0);
    const [dir] = readdirSync(out);
    const rows = readFileSync(join(out, dir, 'rounds.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const head = rows.filter((r) => r.series.startsWith('transfer'));
    const scratch = rows.filter((r) => r.series === 'from scratch');
    expect(head.map((r) => r.round)).toEqual([1, 2, 3]);
    expect(scratch.map((r) => r.round)).toEqual([1, 2, 3]);
    head.forEach((r, i) => expect(r.epsilon).toBe(scratch[i].epsilon));
    const perRound = (s: { bytesUp: number }[]) => s[s.length - 1].bytesUp / s.length;
    // 5 clients per round: ≥ 5 × 4 × 5,130 bytes of head updates, and ≥ 5 × 4 × 1,663,370 from scratch
    expect(perRound(head)).toBeGreaterThanOrEqual(5 * 4 * 5130);
    expect(perRound(scratch)).toBeGreaterThanOrEqual(5 * 4 * 1_663_370);
    expect(perRound(head)).toBeLessThan(perRound(scratch) / 100);
    expect(readdirSync(join(out, dir))).toEqual(expect.arrayContaining(['accuracy.svg', 'epsilon.svg', 'target.json', 'base']));
  }, 400_000);
});
