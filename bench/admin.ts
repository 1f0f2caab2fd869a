/**
 * `npm run bench -- admin [--jobs 3] [--clients 50] [--rounds 20] [--rps 200] [--ledger-rounds 1000]
 *                         [--train-ms 100] [--dim 7850] [--passes 2]`
 *
 * Does reading the admin API slow the jobs down, and how fast does it answer while they run? Starts a
 * real `cohort serve` in a child process on 127.0.0.1 (its own SQLite store in a temp dir), then:
 *   0. runs a central-DP job of --ledger-rounds rounds (3 clients) so a 1,000-row ledger exists;
 *   1. runs --jobs jobs × --clients clients for --rounds rounds with no API load (baseline);
 *   2. runs as many fresh jobs again, the same way, while a load generator (a forked process,
 *      bench/admin.loader.ts, so it shares no event loop with the clients) sends
 *      --rps requests per second (open loop: sent on schedule whatever the answers' latency), half
 *      `GET /api/v1/jobs`, half `GET /api/v1/jobs/<history>/ledger` (the 1,000-round ledger).
 * Clients are in this process (Socket.IO clients, a --train-ms sleep standing in for local training, a
 * --dim-float update); round wall time is the coordinator's (first train sent → commit, from the
 * rounds table). Prints JSON lines: one per phase, one per endpoint under load (p50/p99 ms, n), and a
 * summary with `roundSlowdown` = median round under load / median round without (target ≤ 1.10) and
 * the p99 targets (< 50 ms). Steps 1 and 2 alternate --passes times and the summary pools them, so
 * both conditions see the same drift of a shared machine. Also written to bench/results/admin.json.
 * Medians, not means. The ledger answer is gzipped (fetch accepts it), as a browser or curl
 * --compressed would get it.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ClientEngine, type ClientTask } from '../client/engine/index.ts';
import { SocketIoClientTransport } from '../client/transport/socketio.ts';
import { CohortStore } from '../server/store/index.ts';
import { flagReaders } from './args.ts';
import type { LoaderReport } from './admin.loader.ts';
import { quantile } from './load.stats.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(here, '..', 'bin', 'cohort.mjs');
const RESULTS = path.join(here, 'results', 'admin.json');
const flags = flagReaders('admin');
/** The API load runs this long before the jobs' clients join, and is not measured meanwhile. */
const WARMUP_MS = 1500;

class SleepTask implements ClientTask {
  readonly numExamples = 10;
  constructor(
    private readonly dim: number,
    private readonly ms: number,
  ) {}
  async fit() {
    if (this.ms > 0) await new Promise((r) => setTimeout(r, this.ms));
    return { delta: new Float32Array(this.dim).fill(0.001), numExamples: 10, metrics: { loss: 1 } };
  }
  async evaluate() {
    return { numExamples: 1, loss: 1, accuracy: 1 };
  }
}

interface Service {
  child: ChildProcess;
  url: string;
}

async function startServe(dataDir: string): Promise<Service> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', dataDir, '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  // The port is chosen by the OS: read it from the 'service listening' log line (info level; the same
  // logging runs in both phases, so it does not skew the comparison).
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (l) => {
      try {
        const j = JSON.parse(l) as { msg?: string; url?: string };
        if (j.msg === 'service listening' && j.url) resolve(j.url);
      } catch {
        // not a log line
      }
    });
    child.once('exit', (code) => reject(new Error(`cohort serve exited (${code}): ${stderr}`)));
  });
  return { child, url };
}

/** Forks the load generator (bench/admin.loader.ts): its own process, so its reads do not slow our clients. */
function startLoader(url: string, token: string, rps: number, paths: string[]): { stop(): Promise<LoaderReport> } {
  const child = fork(path.join(here, 'admin.loader.ts'), [], { execArgv: ['--import', import.meta.resolve('tsx')], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const report = new Promise<LoaderReport>((resolve, reject) => {
    child.once('message', (m: LoaderReport) => resolve(m));
    child.once('exit', (code) => reject(new Error(`the API load generator exited (${code}) before reporting`)));
  });
  report.catch(() => {});
  child.send({ type: 'start', url, token, rps, paths, warmupMs: WARMUP_MS });
  return {
    stop: () => {
      child.send({ type: 'stop' });
      return report;
    },
  };
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      jobs: { type: 'string', default: '3' },
      clients: { type: 'string', default: '50' },
      rounds: { type: 'string', default: '20' },
      rps: { type: 'string', default: '200' },
      'ledger-rounds': { type: 'string', default: '1000' },
      'train-ms': { type: 'string', default: '100' },
      dim: { type: 'string', default: '7850' },
      passes: { type: 'string', default: '2' },
      json: { type: 'boolean', default: true },
    },
    strict: true,
  });
  const nJobs = flags.int(values.jobs!, 'jobs');
  const nClients = flags.int(values.clients!, 'clients');
  const rounds = flags.int(values.rounds!, 'rounds');
  const rps = flags.int(values.rps!, 'rps');
  const ledgerRounds = flags.int(values['ledger-rounds']!, 'ledger-rounds');
  const trainMs = flags.num(values['train-ms']!, 'train-ms', (v) => Number.isFinite(v) && v >= 0, 'a number ≥ 0');
  const dim = flags.int(values.dim!, 'dim');
  const passes = flags.int(values.passes!, 'passes');
  // logreg over inputShape [f] with k classes has f·k + k weights: pick k = 10 and f from --dim.
  const features = Math.max(1, Math.round((dim - 10) / 10));
  const modelDim = features * 10 + 10;

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cohort-bench-admin-'));
  const seed = CohortStore.open(dataDir);
  const token = seed.createToken({ name: 'bench', role: 'admin' }).token;
  seed.close();
  const svc = await startServe(dataDir);
  const engines: ClientEngine[] = [];
  const lines: Record<string, unknown>[] = [];
  const emit = (line: Record<string, unknown>) => {
    lines.push(line);
    process.stdout.write(`${JSON.stringify(line)}\n`);
  };
  const headers = { authorization: `Bearer ${token}` };
  const api = async (method: 'GET' | 'POST', p: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(`${svc.url}${p}`, { method, headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text.slice(0, 300)}`);
    return JSON.parse(text);
  };
  const job = (id: string, n: number, r: number, extra: Record<string, unknown> = {}) => ({
    id,
    model: { zoo: 'logreg', inputShape: [features], numClasses: 10 },
    rounds: r,
    sampling: { mode: 'fixed', cohortSize: n },
    minClients: n,
    evaluation: { every: 0 },
    timeouts: { trainMs: 60_000, retryDelayMs: 20 },
    ...extra,
  });
  const joinClients = (id: string, n: number, ms: number) => {
    for (let i = 0; i < n; i++) {
      const transport = new SocketIoClientTransport({ url: `${svc.url}/jobs/${id}`, reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } });
      const e = new ClientEngine({ clientId: `${id}-${i}`, task: new SleepTask(modelDim, ms), transport });
      e.start();
      engines.push(e);
    }
  };
  const untilDone = async (ids: string[]) => {
    for (;;) {
      const list = (await api('GET', '/api/v1/jobs')) as Array<{ id: string; status: string; round: number }>;
      const mine = list.filter((j) => ids.includes(j.id));
      const bad = mine.find((j) => !['created', 'queued', 'running', 'completed'].includes(j.status));
      if (bad) throw new Error(`job ${bad.id} ended ${bad.status}`);
      if (mine.length === ids.length && mine.every((j) => j.status === 'completed')) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const stopClients = () => {
    for (const e of engines.splice(0)) e.stop();
  };
  const roundTimes = (ids: string[]): number[] => {
    const store = CohortStore.open(dataDir);
    try {
      return ids.flatMap((id) => store.listRounds(id).map((r) => r.endedAt - r.startedAt));
    } finally {
      store.close();
    }
  };

  try {
    // 0. The 1,000-round ledger.
    let t0 = performance.now();
    await api('POST', '/api/v1/jobs', job('history', 3, ledgerRounds, { dp: { mode: 'central', noiseMultiplier: 1, clipNorm: 1 } }));
    joinClients('history', 3, 0);
    await untilDone(['history']);
    stopClients();
    const ledger = (await api('GET', '/api/v1/jobs/history/ledger')) as { rows: unknown[] };
    emit({ bench: 'admin', phase: 'history', ledgerRows: ledger.rows.length, wallMs: Math.round(performance.now() - t0) });

    // 1 and 2: the same jobs without, then with, API load (--passes times, interleaved).
    const phase = async (name: 'noLoad' | 'load', pass: number) => {
      const ids = Array.from({ length: nJobs }, (_, i) => `${name}-${pass}-${i}`);
      for (const id of ids) await api('POST', '/api/v1/jobs', job(id, nClients, rounds));
      const paths = { jobs: '/api/v1/jobs', ledger: '/api/v1/jobs/history/ledger' };
      const loader = name === 'load' ? startLoader(svc.url, token, rps, [paths.jobs, paths.ledger]) : undefined;
      if (loader) await new Promise((r) => setTimeout(r, WARMUP_MS));
      t0 = performance.now();
      for (const id of ids) joinClients(id, nClients, trainMs);
      await untilDone(ids);
      const wallMs = performance.now() - t0;
      const report = loader ? await loader.stop() : undefined;
      stopClients();
      const times = roundTimes(ids);
      emit({ bench: 'admin', phase: name, pass, jobs: nJobs, clients: nClients, rounds, dim: modelDim, trainMs, roundMsMedian: quantile(times, 0.5), roundMsP90: quantile(times, 0.9), wallMs: Math.round(wallMs), ...(report ? { rpsTarget: rps, rpsAchieved: Math.round(report.rpsAchieved), requests: report.sent, failed: report.failed } : {}) });
      const latencies = { jobs: report?.latencies[paths.jobs] ?? [], ledger: report?.latencies[paths.ledger] ?? [] };
      if (report) {
        for (const [endpoint, xs] of Object.entries(latencies)) {
          emit({ bench: 'admin', pass, endpoint: endpoint === 'jobs' ? 'GET /api/v1/jobs' : `GET /api/v1/jobs/:id/ledger (${ledger.rows.length} rows)`, n: xs.length, p50Ms: quantile(xs, 0.5), p99Ms: quantile(xs, 0.99), maxMs: Math.max(...xs) });
        }
      }
      return { times, latencies };
    };
    // Interleaved passes (without, with, without, with, …): the machine is shared, so both conditions
    // see the same drift; the summary pools every pass.
    const base = { times: [] as number[] };
    const loaded = { times: [] as number[], latencies: { jobs: [] as number[], ledger: [] as number[] } };
    for (let pass = 1; pass <= passes; pass++) {
      base.times.push(...(await phase('noLoad', pass)).times);
      const l = await phase('load', pass);
      loaded.times.push(...l.times);
      loaded.latencies.jobs.push(...l.latencies.jobs);
      loaded.latencies.ledger.push(...l.latencies.ledger);
    }
    const p99Jobs = quantile(loaded.latencies.jobs, 0.99);
    const p99Ledger = quantile(loaded.latencies.ledger, 0.99);
    const slowdown = quantile(loaded.times, 0.5) / quantile(base.times, 0.5);
    emit({
      bench: 'admin',
      summary: true,
      passes,
      roundMsMedianNoLoad: quantile(base.times, 0.5),
      roundMsMedianLoad: quantile(loaded.times, 0.5),
      roundSlowdown: slowdown,
      roundWithin10pct: slowdown <= 1.1,
      p50JobsMs: quantile(loaded.latencies.jobs, 0.5),
      p50LedgerMs: quantile(loaded.latencies.ledger, 0.5),
      p99JobsMs: p99Jobs,
      p99LedgerMs: p99Ledger,
      p99Under50ms: p99Jobs < 50 && p99Ledger < 50,
    });
    fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
    fs.writeFileSync(RESULTS, `${JSON.stringify(lines, null, 2)}\n`);
  } finally {
    stopClients();
    svc.child.kill('SIGTERM');
    await new Promise((r) => svc.child.once('exit', r));
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
