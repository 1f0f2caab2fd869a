/**
 * `npm run bench -- load [--json] [--clients 10000] [--minutes 10] [--cohort 1000] [--generators 4]
 *                        [--train-ms 1000] [--ramp 64] [--eval-every 0] [--per-address 500] [--seed 1]`
 *
 * Load on one coordinator: `--clients` concurrent Socket.IO clients, spread over `--generators`
 * load-generator child processes (bench/load.generator.ts: raw protocol clients, socket.io-client plus
 * the real framing, no tfjs), all on 127.0.0.1, connected to one coordinator that runs in this process
 * (RoundEngine + SocketIoServerTransport + CohortStore in a temporary data dir) so it can be measured.
 * All clients connect first (at most `--ramp` connecting at once per generator) while the engine is
 * held; then rounds of `--cohort` sampled clients (fixed cohort, logistic regression on 8 inputs, 18
 * parameters) run for `--minutes`. A sampled client answers `train` after `--train-ms` × U[0.5, 1.5)
 * ms of simulated training with a fixed small delta; `--train-ms 0` runs rounds back to back.
 *
 * Reported: connect time (all clients connected and welcomed: total, p50/p99 per client), round wall
 * time (round start to commit, p50/p99), the coordinator's event-loop lag p50/p99 (delay beyond the 10 ms
 * sampling interval of perf_hooks.monitorEventLoopDelay, during the rounds; the connect phase separately), its RSS sampled
 * every second and the least-squares slope in MB/min after warm-up (the later of 20% of the run and the
 * second committed round), disconnects seen by clients and by the server, rounds committed and aborted.
 * Goals on the 2-core machine: all clients held, RSS slope < 1 MB/min, lag p99 < 100 ms.
 *
 * File descriptors: the coordinator holds one socket per client, each generator one per client of its
 * share, plus a few hundred for Node, SQLite and IPC. All processes inherit one `ulimit -n`, so it must
 * be ≥ clients + FD_RESERVE (10,256 for 10,000 clients); the bench checks it first and says so.
 * Source addresses: client k binds to 127.0.0.(2 + floor(k / perAddress)) so no single loopback address
 * carries more than `--per-address` connections (per-IP connection limits, ephemeral ports);
 * `--per-address 0` connects everything from the OS's default source address (127.0.0.1).
 *
 * With --json, stdout carries one JSON line per figure group (connect, rounds, lag, rss, connections)
 * and a summary line with the goals; the same lines are written to bench/results/load.json.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseJobConfig } from '../server/round/config.ts';
import { RoundEngine } from '../server/round/engine.ts';
import { CohortStore } from '../server/store/index.ts';
import { SocketIoServerTransport } from '../server/transport/socketio.ts';
import { seededRng } from '../shared/random.ts';
import { bump, checkLimits, openFileLimit, quantile, slope } from './load.stats.ts';

export { FD_RESERVE, openFileLimit } from './load.stats.ts';
import type { CanaryReport } from './load.canary.ts';
import { forkGenerator, type GeneratorHandle } from './load.fleet.ts';
import type { GeneratorStats, LoadGeneratorCommand } from './load.generator.ts';
import { CountingTransport } from './load.transport.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const CANARY = path.join(here, 'load.canary.ts');
export const RESULTS = path.join(here, 'results', 'load.json');

export const GOALS = { rssSlopeMbPerMin: 1, lagP99Ms: 100 } as const;

export interface LoadOptions {
  clients: number;
  cohort: number;
  /** Length of the round phase, after all clients are connected. */
  durationMs: number;
  generators: number;
  ramp: number;
  trainMs: number;
  /** Federated evaluation every k rounds (0 = off). */
  evalEvery: number;
  /** Clients per loopback source address (0: all from the default address). */
  perAddress: number;
  seed: number;
  /** Give up waiting for all clients to be welcomed after this long (the run goes on with those connected). */
  connectTimeoutMs: number;
  sampleMs: number;
  /** Progress lines (stderr in the bench; silent in the test). */
  progress?: (line: string) => void;
}

export const DEFAULT_LOAD_OPTIONS: LoadOptions = {
  clients: 10_000,
  cohort: 1_000,
  durationMs: 10 * 60_000,
  generators: 4,
  ramp: 64,
  trainMs: 1_000,
  evalEvery: 0,
  perAddress: 500,
  seed: 1,
  connectTimeoutMs: 300_000,
  sampleMs: 1_000,
};

export interface LoadResult {
  options: Omit<LoadOptions, 'progress'>;
  connect: {
    clients: number;
    /** Clients whose first welcome arrived (generator side). */
    welcomed: number;
    /** Clients registered with the engine when the rounds began (server side). */
    registered: number;
    totalMs: number;
    p50Ms: number;
    p99Ms: number;
    maxMs: number;
    connectErrors: number;
    lagP50Ms: number;
    lagP99Ms: number;
    lagMaxMs: number;
  };
  rounds: {
    committed: number;
    aborted: number;
    abortReasons: Record<string, number>;
    /** Round start to commit. */
    wallP50Ms: number;
    wallP99Ms: number;
    wallMaxMs: number;
    /** Commit to commit. */
    intervalP50Ms: number;
    survivorsMin: number;
    jobStatus: string;
  };
  lag: { p50Ms: number; p99Ms: number; maxMs: number; meanMs: number };
  /** The same lag measured in an idle process on the same machine over the same rounds (scheduling noise). */
  canaryLag?: { p50Ms: number; p99Ms: number; maxMs: number };
  /**
   * Loop turns in which the engine sent ≥ BURST_MIN_SENDS (bench/load.transport.ts) messages (a round's
   * trains, round results):
   * how long those send() calls took together, i.e. how long they held the event loop.
   */
  sendBursts: { count: number; sendsP50: number; p50Ms: number; p99Ms: number; maxMs: number; maxSends: number };
  rss: {
    samples: { tS: number; rssMb: number; heapMb: number; heapTotalMb: number; externalMb: number }[];
    startMb: number;
    endMb: number;
    peakMb: number;
    /** Least squares over the samples from `warmupS` on, MB per minute (null: too few samples). */
    slopeMbPerMin: number | null;
    heapSlopeMbPerMin: number | null;
    /** Heap used just after each major (mark-compact) GC: the live heap, without garbage awaiting collection. */
    afterGc: { tS: number; heapMb: number; rssMb: number }[];
    /** Slope of `afterGc` after warm-up, MB per minute (null: fewer than 3 major GCs). */
    liveHeapSlopeMbPerMin: number | null;
    /** Slope of the RSS taken just after major GCs (the same points as `afterGc`), MB per minute. */
    rssAfterGcSlopeMbPerMin: number | null;
    warmupS: number;
  };
  connections: {
    /** Registered with the engine when the run ended. */
    heldAtEnd: number;
    clientDisconnects: number;
    clientDisconnectReasons: Record<string, number>;
    serverDisconnects: number;
    serverDisconnectReasons: Record<string, number>;
    reconnects: number;
    serverErrors: Record<string, number>;
    frameErrors: Record<string, number>;
    protocolErrors: number;
  };
  cpu: { coordinatorPct: number; generatorsPct: number; generatorRssMb: number };
  messages: { trains: number; updates: number; evaluates: number; evalResults: number; roundResults: number };
  fdLimit: number;
}

const MB = 1e6;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `p`, or undefined after `ms` (the timer is cleared either way, so it never holds the process open). */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)));
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}

/**
 * monitorEventLoopDelay records the interval between its timer's firings, which is at least the
 * resolution; the lag is what exceeds it.
 */
const LAG_RESOLUTION_MS = 10;
const lagMs = (ns: number) => Math.max(0, ns / 1e6 - LAG_RESOLUTION_MS);

/** Runs the whole load experiment and returns its figures. */
export async function runLoad(input: Partial<LoadOptions> = {}): Promise<LoadResult> {
  const opts: LoadOptions = { ...DEFAULT_LOAD_OPTIONS, ...input };
  const say = opts.progress ?? (() => {});
  if (opts.cohort > opts.clients) throw new Error(`bench load: --cohort ${opts.cohort} > --clients ${opts.clients}`);
  const fdLimit = openFileLimit();
  checkLimits(opts, fdLimit);

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cohort-bench-load-'));
  const config = parseJobConfig({
    id: 'load',
    model: { zoo: 'logreg', inputShape: [8], numClasses: 2 },
    rounds: 1_000_000,
    sampling: { mode: 'fixed', cohortSize: opts.cohort },
    minClients: opts.cohort,
    minSurvivors: Math.max(1, Math.ceil(opts.cohort / 2)),
    evaluation: { every: opts.evalEvery, fraction: Math.min(1, opts.cohort / opts.clients) },
    timeouts: { trainMs: Math.max(30_000, 10 * opts.trainMs), evaluateMs: 30_000, retryDelayMs: 500 },
    // A bench observes aborts; it should not end the job over them.
    maxAttemptsPerRound: 1_000_000,
  });
  const store = CohortStore.open(dataDir, { keepCheckpoints: config.checkpoints.keep });
  const headroom = opts.clients + 1_024;
  // Connection limits (per IP, unregistered): raised above --clients so the bench measures the load and
  // not the guard. Passed as a plain object so older transports without the option simply ignore it.
  const transportOptions = {
    host: '127.0.0.1',
    port: 0,
    limits: { maxHeaderBytes: 256 * 1024, maxOpenStreams: 4, ...config.limits },
    connections: { maxPerIp: headroom, maxUnregistered: headroom, maxUnregisteredPerIp: headroom },
  };
  const socketTransport = new SocketIoServerTransport(transportOptions);
  const transport = new CountingTransport(socketTransport);
  const engine = new RoundEngine({ config, store, transport, held: true, rng: seededRng(opts.seed) });

  const generators: GeneratorHandle[] = [];
  let canary: ChildProcess | undefined;
  const lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  const samples: LoadResult['rss']['samples'] = [];
  const afterGc: LoadResult['rss']['afterGc'] = [];
  let sampler: NodeJS.Timeout | undefined;
  let gcObserver: PerformanceObserver | undefined;
  try {
    await engine.start();
    lag.enable();
    const t0 = performance.now();
    const sample = () => {
      const m = process.memoryUsage();
      samples.push({ tS: (performance.now() - t0) / 1000, rssMb: m.rss / MB, heapMb: m.heapUsed / MB, heapTotalMb: m.heapTotal / MB, externalMb: m.external / MB });
    };
    sample();
    sampler = setInterval(sample, opts.sampleMs);
    gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if ((e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) {
          const m = process.memoryUsage();
          afterGc.push({ tS: (performance.now() - t0) / 1000, heapMb: m.heapUsed / MB, rssMb: m.rss / MB });
        }
      }
    });
    gcObserver.observe({ entryTypes: ['gc'] });

    // ---- generators and the connect phase ----
    const share = (g: number) => Math.floor(opts.clients / opts.generators) + (g < opts.clients % opts.generators ? 1 : 0);
    let lastReport = 0;
    const onProgress = () => {
      const n = generators.reduce((a, h) => a + h.welcomed, 0);
      if (n - lastReport >= opts.clients / 10 || n === opts.clients) {
        lastReport = n;
        say(`load: ${n}/${opts.clients} welcomed after ${((performance.now() - connectStart) / 1000).toFixed(1)} s`);
      }
    };
    const readies: Promise<void>[] = [];
    for (let g = 0; g < opts.generators; g++) {
      const { handle, ready } = forkGenerator(share(g), onProgress);
      generators.push(handle);
      readies.push(ready);
    }
    const tsx = import.meta.resolve('tsx');
    canary = fork(CANARY, [], { execArgv: ['--import', tsx], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const canaryChild = canary;
    const canaryReady = new Promise<void>((r) => canaryChild.once('message', () => r()));
    const canaryReport = new Promise<CanaryReport>((r) =>
      canaryChild.on('message', (m: { type: string }) => {
        if (m.type !== 'canary') return;
        r(m as CanaryReport);
        canaryChild.disconnect();
      }),
    );
    await Promise.all([...readies, canaryReady]);
    const addresses =
      opts.perAddress > 0 ? Array.from({ length: Math.ceil(opts.clients / opts.perAddress) }, (_, k) => `127.0.0.${k + 2}`) : [];
    say(`load: ${opts.generators} generators ready; connecting ${opts.clients} clients to ${transport.url}`);
    const connectStart = performance.now();
    let first = 0;
    for (const h of generators) {
      const cmd: LoadGeneratorCommand = {
        type: 'start',
        url: transport.url,
        first,
        count: h.count,
        ramp: opts.ramp,
        trainMs: opts.trainMs,
        seed: opts.seed,
        addresses,
        perAddress: opts.perAddress,
      };
      h.child.send(cmd);
      first += h.count;
    }
    const allIn = await withTimeout(
      Promise.all(generators.map((h) => h.allWelcomed)).then(() => true),
      opts.connectTimeoutMs,
    );
    const connectMs = performance.now() - connectStart;
    if (!allIn) say(`load: only ${generators.reduce((a, h) => a + h.welcomed, 0)} welcomed after ${opts.connectTimeoutMs} ms; going on`);
    const connectLag = { p50: lagMs(lag.percentile(50)), p99: lagMs(lag.percentile(99)), max: lagMs(lag.max) };
    const registered = engine.connectedClients;

    // ---- rounds ----
    lag.reset();
    canary.send({ type: 'reset' });
    const cpu0 = process.cpuUsage();
    const roundStart = performance.now();
    const steadyStartS = (roundStart - t0) / 1000;
    const walls: number[] = [];
    const commits: number[] = [];
    let survivorsMin = Infinity;
    let secondCommitS = Infinity;
    let aborted = 0;
    const abortReasons: Record<string, number> = {};
    let stopped = false;
    engine.on('round', (s) => {
      if (stopped) return;
      const now = performance.now();
      walls.push(Date.now() - s.record.startedAt);
      commits.push(now);
      survivorsMin = Math.min(survivorsMin, s.record.survivors);
      if (commits.length === 2) secondCommitS = (now - t0) / 1000;
      if (commits.length % 50 === 0) say(`load: ${commits.length} rounds committed, ${engine.connectedClients} clients held`);
    });
    engine.on('aborted', (a) => {
      if (stopped) return;
      aborted++;
      bump(abortReasons, a.reason.replace(/\d+/g, 'N'));
    });
    say(`load: ${registered} clients registered; running rounds of ${opts.cohort} for ${(opts.durationMs / 60_000).toFixed(2)} min`);
    engine.release();
    await sleep(opts.durationMs);

    // ---- stop and collect ----
    stopped = true;
    const steadyMs = performance.now() - roundStart;
    const cpu = process.cpuUsage(cpu0);
    sample();
    clearInterval(sampler);
    sampler = undefined;
    gcObserver.disconnect();
    lag.disable();
    transport.counting = false;
    const heldAtEnd = engine.connectedClients;
    const jobStatus = engine.status;
    canary.send({ type: 'stop' });
    const canaryLag = await withTimeout(canaryReport, 10_000);
    for (const h of generators) h.child.send({ type: 'stop' } satisfies LoadGeneratorCommand);
    const stats = (await Promise.all(generators.map((h) => withTimeout(h.stats.catch(() => undefined), 30_000)))).filter(
      (s): s is GeneratorStats => !!s,
    );
    if (stats.length < generators.length) say(`load: ${generators.length - stats.length} generators did not report`);

    // ---- figures ----
    const sum = (f: (s: GeneratorStats) => number) => stats.reduce((a, s) => a + f(s), 0);
    const merge = (f: (s: GeneratorStats) => Record<string, number>) => {
      const out: Record<string, number> = {};
      for (const s of stats) for (const [k, v] of Object.entries(f(s))) bump(out, k, v);
      return out;
    };
    const perClient = stats.flatMap((s) => s.connectMs);
    const warmupS = Math.max(steadyStartS + 0.2 * (steadyMs / 1000), Number.isFinite(secondCommitS) ? secondCommitS : steadyStartS);
    const late = samples.filter((s) => s.tS >= warmupS);
    const lateGc = afterGc.filter((s) => s.tS >= warmupS);
    const perMin = (v: number | null) => (v === null ? null : v * 60);
    const intervals = commits.slice(1).map((t, i) => t - commits[i]);
    const genCpuMs = sum((s) => s.cpuUserMs + s.cpuSystemMs);
    return {
      options: { ...opts, progress: undefined } as Omit<LoadOptions, 'progress'>,
      connect: {
        clients: opts.clients,
        welcomed: sum((s) => s.welcomed),
        registered,
        totalMs: connectMs,
        p50Ms: quantile(perClient, 0.5),
        p99Ms: quantile(perClient, 0.99),
        maxMs: perClient.length ? Math.max(...perClient) : Number.NaN,
        connectErrors: sum((s) => s.connectErrors),
        lagP50Ms: connectLag.p50,
        lagP99Ms: connectLag.p99,
        lagMaxMs: connectLag.max,
      },
      rounds: {
        committed: commits.length,
        aborted,
        abortReasons,
        wallP50Ms: quantile(walls, 0.5),
        wallP99Ms: quantile(walls, 0.99),
        wallMaxMs: walls.length ? Math.max(...walls) : Number.NaN,
        intervalP50Ms: quantile(intervals, 0.5),
        survivorsMin: Number.isFinite(survivorsMin) ? survivorsMin : 0,
        jobStatus,
      },
      lag: { p50Ms: lagMs(lag.percentile(50)), p99Ms: lagMs(lag.percentile(99)), maxMs: lagMs(lag.max), meanMs: lagMs(lag.mean) },
      ...(canaryLag ? { canaryLag: { p50Ms: canaryLag.p50Ms, p99Ms: canaryLag.p99Ms, maxMs: canaryLag.maxMs } } : {}),
      sendBursts: {
        count: transport.bursts.length,
        sendsP50: quantile(transport.bursts.map((b) => b.sends), 0.5),
        p50Ms: quantile(transport.bursts.map((b) => b.ms), 0.5),
        p99Ms: quantile(transport.bursts.map((b) => b.ms), 0.99),
        maxMs: transport.bursts.length ? Math.max(...transport.bursts.map((b) => b.ms)) : Number.NaN,
        maxSends: transport.bursts.length ? Math.max(...transport.bursts.map((b) => b.sends)) : 0,
      },
      rss: {
        samples,
        startMb: samples[0].rssMb,
        endMb: samples[samples.length - 1].rssMb,
        peakMb: Math.max(...samples.map((s) => s.rssMb)),
        slopeMbPerMin: perMin(slope(late.map((s) => s.tS), late.map((s) => s.rssMb))),
        heapSlopeMbPerMin: perMin(slope(late.map((s) => s.tS), late.map((s) => s.heapMb))),
        afterGc,
        liveHeapSlopeMbPerMin: perMin(slope(lateGc.map((s) => s.tS), lateGc.map((s) => s.heapMb))),
        rssAfterGcSlopeMbPerMin: perMin(slope(lateGc.map((s) => s.tS), lateGc.map((s) => s.rssMb))),
        warmupS,
      },
      connections: {
        heldAtEnd,
        clientDisconnects: sum((s) => s.disconnects),
        clientDisconnectReasons: merge((s) => s.disconnectReasons),
        serverDisconnects: transport.disconnects,
        serverDisconnectReasons: transport.disconnectReasons,
        reconnects: sum((s) => s.reconnects),
        serverErrors: merge((s) => s.serverErrors),
        frameErrors: merge((s) => s.frameErrors),
        protocolErrors: transport.protocolErrors,
      },
      cpu: {
        coordinatorPct: (100 * (cpu.user + cpu.system)) / 1000 / steadyMs,
        // Over the generators' whole life (connect phase included).
        generatorsPct: (100 * genCpuMs) / (performance.now() - connectStart),
        generatorRssMb: sum((s) => s.rssBytes) / MB,
      },
      messages: {
        trains: sum((s) => s.trains),
        updates: sum((s) => s.updates),
        evaluates: sum((s) => s.evaluates),
        evalResults: sum((s) => s.evalResults),
        roundResults: sum((s) => s.roundResults),
      },
      fdLimit,
    };
  } finally {
    if (sampler) clearInterval(sampler);
    gcObserver?.disconnect();
    lag.disable();
    await Promise.all(generators.map((h) => withTimeout(h.exited, 5_000)));
    for (const h of generators) if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill('SIGKILL');
    if (canary && canary.exitCode === null && canary.signalCode === null) canary.kill('SIGKILL');
    await engine.shutdown().catch(() => {});
    store.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
