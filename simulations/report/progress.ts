/**
 * Progress for long runs: a redrawn bar with ETA on a terminal, plain lines otherwise (CI logs,
 * pipes). Writes to stderr so stdout stays for results.
 */
export class Progress {
  private readonly started = Date.now();
  private done = 0;
  private lastPlain = 0;

  constructor(
    private readonly total: number,
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  tick(step = 1, note = ''): void {
    this.done = Math.min(this.total, this.done + step);
    const elapsed = Date.now() - this.started;
    const eta = this.done > 0 ? (elapsed / this.done) * (this.total - this.done) : NaN;
    const pct = Math.floor((100 * this.done) / this.total);
    if (this.stream.isTTY) {
      const width = 28;
      const filled = Math.round((width * this.done) / this.total);
      const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
      this.stream.write(`\r${this.label} ${bar} ${this.done}/${this.total} ${pct}% ETA ${formatDuration(eta)} ${note}`.padEnd(100));
      if (this.done === this.total) this.stream.write('\n');
    } else if (this.done === this.total || Date.now() - this.lastPlain > 2000 || this.done === 1) {
      this.lastPlain = Date.now();
      this.stream.write(`${this.label} ${this.done}/${this.total} (${pct}%), elapsed ${formatDuration(elapsed)}, ETA ${formatDuration(eta)} ${note}\n`);
    }
  }
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
