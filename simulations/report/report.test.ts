import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lineChartSvg, niceTicks, svgToPng } from './plot.ts';
import { RunDir, toCsv } from './run-dir.ts';

describe('run directory and plots', () => {
  it('writes config, rounds as JSONL and CSV, and accuracy/epsilon plots as SVG and PNG', () => {
    const run = RunDir.create(mkdtempSync(join(tmpdir(), 'cohort-run-')), 'test', { rounds: 3 });
    for (const series of ['iid', 'shards']) {
      for (let round = 1; round <= 3; round++) {
        run.record({ series, round, accuracy: 0.5 + round / 10, epsilon: round * 0.3 });
      }
    }
    const files = run.finish('fedavg');
    expect(files).toEqual(['config.json', 'rounds.jsonl', 'rounds.csv', 'accuracy.svg', 'accuracy.png', 'epsilon.svg', 'epsilon.png']);
    expect(JSON.parse(readFileSync(join(run.path, 'config.json'), 'utf8'))).toEqual({ rounds: 3 });
    const jsonl = readFileSync(join(run.path, 'rounds.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(jsonl).toHaveLength(6);
    expect(readFileSync(join(run.path, 'rounds.csv'), 'utf8').split('\n')[0]).toBe('series,round,accuracy,epsilon');
    const png = readFileSync(join(run.path, 'accuracy.png'));
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const svg = readFileSync(join(run.path, 'accuracy.svg'), 'utf8');
    expect((svg.match(/<polyline/g) ?? []).length).toBe(2);
    expect(svg).toContain('shards');
  });

  it('skips a plot with no data (no epsilon without DP)', () => {
    const run = RunDir.create(mkdtempSync(join(tmpdir(), 'cohort-run-')), 'nodp', {});
    run.record({ series: 'a', round: 1, accuracy: 0.9 });
    run.finish('x');
    expect(existsSync(join(run.path, 'epsilon.svg'))).toBe(false);
  });

  it('places points inside the plot area and draws the curve where the data is', () => {
    const svg = lineChartSvg([{ name: 's', points: [{ x: 0, y: 0 }, { x: 10, y: 1 }] }], {
      title: 't', xLabel: 'x', yLabel: 'y', width: 400, height: 300, yRange: [0, 1],
    });
    // margins: left 70, right 20, top 40, bottom 55 → (0,0) at (70, 245), (10,1) at (380, 40)
    expect(svg).toContain('points="70.0,245.0 380.0,40.0"');
    const png = svgToPng(svg);
    expect(png.length).toBeGreaterThan(1000);
  });

  it('picks 1-2-5 ticks and quotes CSV cells', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0, 47)).toEqual([0, 10, 20, 30, 40]);
    expect(toCsv([{ series: 'a,b', round: 1 }])).toBe('series,round\n"a,b",1\n');
  });
});
