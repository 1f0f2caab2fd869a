/**
 * A simulation's run directory: `config.json` (everything needed to reproduce it), `rounds.jsonl`
 * (one JSON object per round, appended as the run goes, so a crashed run keeps what it did),
 * `rounds.csv`, plots of accuracy and ε against round as SVG and PNG, and `summary.json` (the outcome,
 * also printed last: a run stopped by a signal says `stopped`).
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { lineChartSvg, svgToPng, type Series } from './plot.ts';

export interface RoundRow {
  /** Which curve this row belongs to (e.g. "iid", "shards", "z=1.0"). */
  series: string;
  round: number;
  accuracy?: number;
  loss?: number;
  trainLoss?: number;
  epsilon?: number;
  cohort?: number;
  survivors?: number;
  durationMs?: number;
  [key: string]: string | number | undefined;
}

export class RunDir {
  readonly path: string;
  readonly rows: RoundRow[] = [];

  private constructor(path: string) {
    this.path = path;
  }

  /** Creates `<base>/<name>-<UTC timestamp>` and writes config.json. */
  static create(base: string, name: string, config: unknown): RunDir {
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const path = resolve(join(base, `${name}-${stamp}`));
    mkdirSync(path, { recursive: true });
    writeFileSync(join(path, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    return new RunDir(path);
  }

  record(row: RoundRow): void {
    this.rows.push(row);
    appendFileSync(join(this.path, 'rounds.jsonl'), `${JSON.stringify(row)}\n`);
  }

  /** Writes summary.json (the run's outcome, as printed last). */
  writeSummary(summary: unknown): void {
    writeFileSync(join(this.path, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  }

  /** Writes rounds.csv and the plots; returns the files written. */
  finish(title: string): string[] {
    const files = ['config.json', 'rounds.jsonl', 'rounds.csv'];
    writeFileSync(join(this.path, 'rounds.csv'), toCsv(this.rows));
    const plots: [string, keyof RoundRow, string, [number, number] | undefined][] = [
      ['accuracy', 'accuracy', 'test accuracy', [0, 1]],
      ['epsilon', 'epsilon', 'ε (cumulative)', undefined],
    ];
    for (const [file, key, label, yRange] of plots) {
      const series = seriesOf(this.rows, key);
      if (series.every((s) => s.points.length === 0)) continue;
      const svg = lineChartSvg(series, { title: `${title}: ${label} per round`, xLabel: 'round', yLabel: label, yRange });
      writeFileSync(join(this.path, `${file}.svg`), svg);
      writeFileSync(join(this.path, `${file}.png`), svgToPng(svg));
      files.push(`${file}.svg`, `${file}.png`);
    }
    return files;
  }
}

function seriesOf(rows: RoundRow[], key: keyof RoundRow): Series[] {
  const names = [...new Set(rows.map((r) => r.series))];
  return names.map((name) => ({
    name,
    points: rows
      .filter((r) => r.series === name && typeof r[key] === 'number')
      .map((r) => ({ x: r.round, y: r[key] as number })),
  }));
}

export function toCsv(rows: RoundRow[]): string {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown) => {
    if (v === undefined) return '';
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return `${[columns.join(','), ...rows.map((r) => columns.map((c) => cell(r[c])).join(','))].join('\n')}\n`;
}
