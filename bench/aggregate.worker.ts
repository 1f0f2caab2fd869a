/**
 * One aggregation run in its own process, so its peak RSS belongs to this cohort size alone.
 * Spawned by bench/aggregate.ts:
 *   `node --import tsx bench/aggregate.worker.ts <clients> <dim> <seed> [engine|sum]`.
 * Prints one JSON line to stdout.
 *
 * Mode `engine` (default) runs the real coordinator: RoundEngine + in-memory transport + SQLite store,
 * with n client engines whose updates arrive one after another (as over a network) and are validated,
 * copied, folded into the running sum and dropped. Mode `sum` measures the WeightedSum alone. Either
 * way server memory must stay O(d), not O(n·d).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientEngine } from '../client/engine/index.ts';
import { parseJobConfig } from '../server/round/config.ts';
import { RoundEngine } from '../server/round/engine.ts';
import { CohortStore } from '../server/store/index.ts';
import { MemoryServerTransport } from '../server/transport/memory.ts';
import { WeightedSum } from '../shared/fl/aggregate.ts';
import { ServerOptimizerConfigSchema, createServerOptimizer } from '../shared/fl/optimizers.ts';
import { seededRng, type Rng } from '../shared/random.ts';

export interface AggregateResult {
  bench: 'aggregate';
  mode: 'engine' | 'sum';
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
  // (mode 'sum')
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
    mode: 'sum',
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

/**
 * The real coordinator aggregating one round. The model is a logistic regression sized to hit `dim`
 * exactly (inputs·10 + 10 = dim); its shape does not matter to aggregation, only d does.
 */
async function aggregateWithEngine(clients: number, dim: number, seed: number): Promise<AggregateResult> {
  if (dim % 10 !== 0 || dim < 20) throw new Error(`engine mode needs dim = 10·(inputs + 1), got ${dim}`);
  const dataDir = mkdtempSync(join(tmpdir(), 'cohort-bench-agg-'));
  const store = CohortStore.open(dataDir, { keepCheckpoints: 1 });
  const transport = new MemoryServerTransport({
    maxPayloadBytes: 2 ** 30,
    chunkBytes: 1 << 20,
    maxHeaderBytes: 1 << 20,
    maxOpenStreams: 4,
  });
  const config = parseJobConfig({
    id: 'bench',
    model: { zoo: 'logreg', inputShape: [dim / 10 - 1], numClasses: 10 },
    rounds: 1,
    sampling: { mode: 'fixed', cohortSize: clients },
    minClients: clients,
    evaluation: { every: 0 },
    timeouts: { trainMs: 3_600_000 },
    limits: { maxPayloadBytes: 2 ** 30 },
  });
  const engine = new RoundEngine({ config, store, transport, rng: seededRng(seed) });
  await engine.start();
  const rng = seededRng(seed);
  const update = new Float32Array(dim);
  let generateMs = 0;
  // Clients answer one at a time: each waits for the previous update to be delivered and folded.
  let turn: Promise<void> = Promise.resolve();
  const nextTurn = () => {
    const mine = turn.then(() => new Promise<void>((r) => setImmediate(r)));
    turn = mine;
    return mine;
  };
  const baselineRssBytes = process.memoryUsage().rss;
  const started = performance.now();
  const engines = Array.from({ length: clients }, (_, i) => {
    const client = new ClientEngine({
      clientId: `bench-${i}`,
      transport: transport.createClient(),
      task: {
        numExamples: 50 + (i % 451),
        async fit() {
          await nextTurn();
          const t0 = performance.now();
          fillUpdate(update, rng);
          generateMs += performance.now() - t0;
          return { delta: update, numExamples: 50 + (i % 451), metrics: { loss: 1 } };
        },
        async evaluate() {
          return { numExamples: 0, loss: 0, accuracy: 0 };
        },
      },
    });
    client.start();
    return client;
  });
  const summary = await engine.whenFinished();
  const ms = performance.now() - started - generateMs;
  if (summary.status !== 'completed') throw new Error(`bench round ended ${summary.status}: ${summary.reason}`);
  for (const c of engines) c.stop();
  await engine.shutdown();
  store.close();
  rmSync(dataDir, { recursive: true, force: true });
  return {
    bench: 'aggregate',
    mode: 'engine',
    clients,
    dim,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    baselineRssBytes,
    ms,
    msPerUpdate: ms / clients,
    generateMs,
  };
}

function positiveInt(text: string | undefined, what: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`aggregate worker: bad ${what}: ${text}`);
  return n;
}

const [clientsArg, dimArg, seedArg, modeArg = 'engine'] = process.argv.slice(2);
const clients = positiveInt(clientsArg, 'clients');
const dim = positiveInt(dimArg, 'dim');
const seed = Number(seedArg ?? 1) >>> 0;
if (modeArg !== 'engine' && modeArg !== 'sum') throw new Error(`aggregate worker: mode must be engine or sum, got ${modeArg}`);
const result = modeArg === 'sum' ? aggregate(clients, dim, seed) : await aggregateWithEngine(clients, dim, seed);
process.stdout.write(`${JSON.stringify(result)}\n`);
