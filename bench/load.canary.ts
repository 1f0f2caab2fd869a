/**
 * The load bench's control: an idle process that only measures its own event-loop lag, the same way
 * the coordinator's is measured. On a shared machine its lag is the scheduling noise every process
 * there suffers (CPU contention, steal), which the coordinator's figures include too.
 * Forked by bench/load.ts; replies to `stop` with one CanaryReport.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface CanaryReport {
  type: 'canary';
  /** Delay beyond the 10 ms sampling interval, as for the coordinator. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

const RESOLUTION_MS = 10;
const lag = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
const ms = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS);
process.on('message', (cmd: { type: string }) => {
  if (cmd.type === 'reset') lag.reset();
  else if (cmd.type === 'stop') {
    lag.disable();
    const report: CanaryReport = { type: 'canary', p50Ms: ms(lag.percentile(50)), p99Ms: ms(lag.percentile(99)), maxMs: ms(lag.max) };
    // The parent disconnects once it has this; then we leave (below).
    process.send?.(report);
  }
});
process.on('disconnect', () => process.exit(0));
lag.enable();
process.send?.({ type: 'ready' });
