/**
 * One aggregation run in its own process, so its peak RSS belongs to this cohort size alone.
 * Spawned by bench/aggregate.ts: `node --import tsx bench/aggregate.worker.ts <clients> <dim> <seed>`.
 * Prints one JSON line to stdout.
 *
 * Updates are generated one at a time into a single reused buffer, as if they arrived over the network
 * one by one and were dropped once folded into the sum: server memory must stay O(d), not O(n·d).
 */
import { WeightedSum } from '../shared/fl/aggregate.ts';
import { ServerOptimizerConfigSchema, createServerOptimizer } from '../shared/fl/optimizers.ts';
import { seededRng, type Rng } from '../shared/random.ts';

export interface AggregateResult {
  bench: 'aggregate';
  clients: number;
  dim: number;
  peakRssBytes: number;
  baselineRssBytes: number;
  /** Aggregation time: adds, mean, optimizer step (synthetic update generation excluded). */
  ms: number;
  /** Mean time of one WeightedSum.add. */
  msPerUpdate: number;
  /** Time spent generating synthetic updates (not part of ms). */
  generateMs: number;
}

/**
 * Fills `out` with a small pseudo-update in [-0.01, 0.01): xorshift32 (Marsaglia 2003) inlined and seeded
 * per update from the run's rng, so generating 200 × 1.66M values stays cheap next to the aggregation.
 */
function fillUpdate(out: Float32Array, rng: Rng): void {
  let x = rng.nextUint32() | 1;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = ((x >>> 0) / 4294967296 - 0.5) * 0.02;
  }
}

function aggregate(clients: number, dim: number, seed: number): AggregateResult {
  const baselineRssBytes = process.memoryUsage().rss;
  const rng = seededRng(seed);
  const weights = new Float32Array(dim);
  const sum = new WeightedSum(dim);
  const optimizer = createServerOptimizer(ServerOptimizerConfigSchema.parse({ name: 'fedavg' }), dim);
  const update = new Float32Array(dim);

  let addMs = 0;
  let generateMs = 0;
  for (let k = 0; k < clients; k++) {
    const t0 = performance.now();
    fillUpdate(update, rng);
    const t1 = performance.now();
    sum.add(update, 50 + (rng.nextUint32() % 451)); // 50..500 local examples
    addMs += performance.now() - t1;
    generateMs += t1 - t0;
  }
  const t2 = performance.now();
  optimizer.step(weights, sum.mean());
  const finishMs = performance.now() - t2;

  if (weights[0] - weights[0] !== 0) throw new Error('aggregate produced a non-finite weight');
  return {
    bench: 'aggregate',
    clients,
    dim,
    // maxRSS is in KiB (getrusage), peak over the process lifetime.
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    baselineRssBytes,
    ms: addMs + finishMs,
    msPerUpdate: addMs / clients,
    generateMs,
  };
}

function positiveInt(text: string | undefined, what: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`aggregate worker: bad ${what}: ${text}`);
  return n;
}

const [clientsArg, dimArg, seedArg] = process.argv.slice(2);
const result = aggregate(positiveInt(clientsArg, 'clients'), positiveInt(dimArg, 'dim'), Number(seedArg ?? 1) >>> 0);
process.stdout.write(`${JSON.stringify(result)}\n`);
