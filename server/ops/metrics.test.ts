/**
 * The metrics of a real small job: a RoundEngine over the in-memory transport (metered), real client
 * engines, a real SQLite store, central DP (so ε is recorded), run on a ManualClock. The Prometheus
 * text is parsed line by line and compared with the store (rounds, ledger) and the engine.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientEngine, type ClientTask, type FitResult } from '../../client/engine/index.ts';
import { ManualClock } from '../../shared/clock.ts';
import type { ServerMessage } from '../../shared/protocol/index.ts';
import { seededRng } from '../../shared/random.ts';
import { drive, settle } from '../../test/support/drive.ts';
import { parseJobConfig } from '../round/config.ts';
import { RoundEngine } from '../round/engine.ts';
import { CohortStore } from '../store/index.ts';
import { MemoryServerTransport } from '../transport/memory.ts';
import { abortReasonBucket, CohortMetrics, ROUND_DURATION_BUCKETS } from './metrics.ts';

const DIM = 15; // logreg on 4 inputs, 3 classes

class ConstantTask implements ClientTask {
  readonly numExamples = 10;
  async fit(): Promise<FitResult> {
    return { delta: new Float32Array(DIM).fill(0.01), numExamples: 10, metrics: { loss: 1, accuracy: 0.5 } };
  }
  async evaluate() {
    return { numExamples: 1, loss: 1, accuracy: 1 };
  }
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The exposition's samples (comment lines skipped); label values here never hold quotes or commas. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (m[2] ?? '').split(',').filter(Boolean)) {
      const [k, v] = pair.split('=');
      labels[k] = JSON.parse(v) as string;
    }
    samples.push({ name: m[1], labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return samples;
}

function pick(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = pick(samples, name, labels);
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0]?.value;
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe('CohortMetrics', () => {
  it('exposes a real job’s rounds, ε (= the ledger’s last row), round histogram, rejections, bytes and process metrics', async () => {
    const config = parseJobConfig({
      id: 'm',
      model: { zoo: 'logreg', inputShape: [4], numClasses: 3 },
      rounds: 3,
      sampling: { mode: 'fixed', cohortSize: 4 },
      minClients: 4,
      evaluation: { every: 0 },
      timeouts: { trainMs: 5_000, retryDelayMs: 5 },
      dp: { mode: 'central', noiseMultiplier: 1.1, clipNorm: 1, budget: { epsilon: 50, delta: 1e-5 } },
    });
    const store = CohortStore.open(mkdtempSync(join(tmpdir(), 'cohort-metrics-')));
    const inner = new MemoryServerTransport();
    const metrics = new CohortMetrics();
    const clock = new ManualClock();
    const engine = new RoundEngine({ config, store, transport: metrics.meteredTransport(inner, 'm'), rng: seededRng(5), clock });
    cleanup.push(() => store.close());
    cleanup.push(() => engine.shutdown());
    const detach = metrics.attach(engine, 'm', { config });
    cleanup.push(detach);
    await engine.start();

    // A connection that sends an update without saying hello: refused with a typed error.
    const rogueGot: ServerMessage[] = [];
    const rogue = inner.createClient();
    rogue.start({ onConnect() {}, onMessage: (m) => void rogueGot.push(m), onDisconnect() {} });
    await settle();
    rogue.send({ type: 'update', jobId: 'm', round: 1, numExamples: 1, vector: new Float32Array(DIM) } as never);
    await settle();
    const rejection = rogueGot.find((m) => m.type === 'error');
    expect(rejection).toBeDefined();
    rogue.close();

    for (let i = 0; i < 4; i++) new ClientEngine({ clientId: `c${i}`, task: new ConstantTask(), transport: inner.createClient() }).start();
    const summary = await drive(clock, engine.whenFinished());
    expect(summary.status).toBe('completed');
    await settle();

    const text = await metrics.metrics();
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const s = parseExposition(text);
    const job = { job: 'm' };

    // Rounds: as many as the store committed, none aborted.
    const rounds = store.listRounds('m');
    expect(rounds).toHaveLength(3);
    expect(value(s, 'cohort_rounds_committed_total', job)).toBe(3);
    for (const reason of ['survivors', 'secagg', 'internal', 'store', 'other']) expect(value(s, 'cohort_rounds_aborted_total', { ...job, reason })).toBe(0);
    const last = rounds[rounds.length - 1];
    expect(value(s, 'cohort_round_sampled', job)).toBe(last.cohortSize);
    expect(value(s, 'cohort_round_survived', job)).toBe(last.survivors);
    expect(value(s, 'cohort_round_dropped', job)).toBe(last.dropouts);

    // ε: the ledger's last row, per audience; central mode gives no guarantee against the coordinator.
    const ledger = store.listLedger('m');
    const row = ledger[ledger.length - 1];
    expect(row.epsilonPublished).toBeGreaterThan(0);
    expect(value(s, 'cohort_epsilon_spent', { ...job, audience: 'published' })).toBe(row.epsilonPublished);
    expect(row.epsilonCoordinator).toBeNull();
    expect(value(s, 'cohort_epsilon_spent', { ...job, audience: 'coordinator' })).toBeUndefined();
    expect(value(s, 'cohort_epsilon_budget', { ...job, audience: 'published' })).toBe(50);

    // The histogram: one observation per committed round, cumulative buckets ending in +Inf = count.
    const buckets = pick(s, 'cohort_round_duration_seconds_bucket', job);
    expect(buckets.map((b) => b.labels.le)).toEqual([...ROUND_DURATION_BUCKETS.map(String), '+Inf']);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i].value).toBeGreaterThanOrEqual(buckets[i - 1].value);
    expect(buckets[buckets.length - 1].value).toBe(3);
    expect(value(s, 'cohort_round_duration_seconds_count', job)).toBe(3);
    const seconds = rounds.reduce((sum, r) => sum + (r.endedAt - r.startedAt) / 1000, 0);
    expect(value(s, 'cohort_round_duration_seconds_sum', job)).toBeCloseTo(seconds, 9);

    // Connections polled on scrape; the end; rejections by code; bytes both ways.
    expect(value(s, 'cohort_clients_connected', job)).toBe(engine.connectedClients);
    expect(value(s, 'cohort_job_finished', { ...job, status: 'completed' })).toBe(1);
    const code = rejection!.type === 'error' ? rejection!.code : '';
    expect(code).not.toBe('');
    expect(value(s, 'cohort_messages_rejected_total', { ...job, code })).toBe(1);
    // 4 clients × 3 rounds of a 15-float update at least, and the model sent to each of them.
    expect(value(s, 'cohort_bytes_received_total', job)).toBeGreaterThan(4 * 3 * DIM * 4);
    expect(value(s, 'cohort_bytes_sent_total', job)).toBeGreaterThan(4 * 3 * DIM * 4);

    // Default process metrics, on this registry.
    expect(value(s, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(value(s, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(pick(s, 'nodejs_heap_size_used_bytes').length).toBe(1);
  });

  it('buckets the engine’s abort reasons', () => {
    expect(abortReasonBucket('2 survivors < minSurvivors 3')).toBe('survivors');
    expect(abortReasonBucket('secure aggregation aborted: deadline')).toBe('secagg');
    expect(abortReasonBucket('internal error: boom')).toBe('internal');
    expect(abortReasonBucket('internal error (update from c1): boom')).toBe('internal');
    expect(abortReasonBucket('store failure: SQLITE_FULL')).toBe('store');
    expect(abortReasonBucket('the aggregated model is not finite (server optimizer diverged?)')).toBe('other');
  });

  it('two instances do not share series (own registry, not the global one)', async () => {
    const a = new CohortMetrics({ defaultMetrics: false });
    const b = new CohortMetrics({ defaultMetrics: false });
    a.countRejected('j', 'BAD_MESSAGE');
    a.countBytesSent('j', 10);
    const sa = parseExposition(await a.metrics());
    const sb = parseExposition(await b.metrics());
    expect(value(sa, 'cohort_messages_rejected_total', { job: 'j', code: 'BAD_MESSAGE' })).toBe(1);
    expect(value(sa, 'cohort_bytes_sent_total', { job: 'j' })).toBe(10);
    expect(pick(sb, 'cohort_messages_rejected_total')).toHaveLength(0);
  });
});
