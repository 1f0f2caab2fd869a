/**
 * Output of the model-health experiments (drift, fairness): a run directory with the config, one JSON
 * line per measured point, SVG and PNG plots, and the summary object as the last line of stdout
 * (`--json`: nothing else on stdout but that line).
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lineChartSvg, svgToPng, type ChartOptions, type Series } from '../report/plot.ts';

export class HealthRun {
  readonly path: string;

  constructor(out: string, name: string, config: unknown) {
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    this.path = join(out, `${name}-${stamp}`);
    mkdirSync(this.path, { recursive: true });
    writeFileSync(join(this.path, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  }

  record(row: Record<string, unknown>): void {
    appendFileSync(join(this.path, 'points.jsonl'), `${JSON.stringify(row)}\n`);
  }

  plot(file: string, series: Series[], opts: ChartOptions): void {
    const svg = lineChartSvg(series, opts);
    writeFileSync(join(this.path, `${file}.svg`), svg);
    writeFileSync(join(this.path, `${file}.png`), svgToPng(svg));
  }

  finish(summary: Record<string, unknown>, json: boolean): void {
    writeFileSync(join(this.path, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
    if (!json) process.stdout.write(`run directory: ${this.path}\n`);
    process.stdout.write(`${JSON.stringify({ ...summary, runDir: this.path })}\n`);
  }
}
