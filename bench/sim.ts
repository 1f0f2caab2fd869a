/**
 * `npm run bench -- sim [--json] [--populations 10000,100000] [--cohort 1000] [--rounds 3]
 *                       [--model mlp] [--workers N] [--backend wasm] [--max-rss-gb 4]`
 *
 * Simulations at population scale (issue 20): FedAvg over a Synthetic(1, 1) population generated on
 * demand (simulations/datasets/synthetic.ts), `--cohort` clients sampled per round (fixed size), the
 * real round engine and client engines (simulations/engine). Each population runs in a child process
 * of its own, so its resident memory is its own. Per population, one JSON line:
 *
 *   population, cohort, model, rounds, workers,
 *   connectMs        until every member had joined (signed hello, first-use binding) and parked,
 *   roundMs          median wall time of a round (sampling to commit), roundsMs all of them,
 *   connectCpuMs, roundCpuMs  the same in CPU time of the whole process (all threads): on a shared
 *                    machine the wall times stretch with others' load, CPU time much less,
 *   roundMainMs      median time per round the main thread was busy (event-loop utilisation: the
 *                    round engine, client engines, data generation, message validation),
 *   rssAfterJoinBytes  resident memory once every member had joined (after a GC), heapAfterJoinBytes
 *                    the live JS heap then (RSS keeps pages V8 has not returned; the heap is what lives),
 *   peakRssBytes     the process's peak resident memory (maxRSS, workers included),
 *   peakAwake        most client engines in memory at once (parked members have none),
 *   stateBytes       the members' compact state (keys, attempt counters),
 *   extrapolated100RoundsMin  connectMs + 100 · roundMs, in minutes,
 *   rssOk            peakRssBytes < --max-rss-gb.
 *
 * A last line compares the populations: bytesPerMember (heapBytesPerMember) = the growth of
 * rssAfterJoinBytes (heapAfterJoinBytes) per member between the smallest and the largest population (memory grows with the cohort, not the population:
 * what a member costs is its open connection on both ends, not a client). Written also to
 * bench/results/sim.json. The machine is shared: quote medians, and run few rounds.
 *
 * `--stop-latency` instead runs `npm run sim -- fedavg` on a synthetic population of the first
 * `--populations` size (logreg, 1% sampled) three times, signalling it (SIGTERM) once stderr shows a
 * stage: generating data, joining (a tenth of the members joined: populations ≥ 20,000), a round done.
 * One line per stage: {stage, population, stopMs (signal to exit), exitCode}.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseArgs, promisify } from 'node:util';
import { TrainingPool } from '../client/node/pool.ts';
import { parseJobConfig } from '../server/round/config.ts';
import { SYNTHETIC_CLASSES, SYNTHETIC_FEATURES, SyntheticPopulation } from '../simulations/datasets/synthetic.ts';
import { generatedData } from '../simulations/engine/population.ts';
import { runSimulation } from '../simulations/engine/simulation.ts';
import { flagReaders } from './args.ts';

const execFileAsync = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.join(here, 'results', 'sim.json');
const ENTRY = path.join(here, 'index.ts');
const flags = flagReaders('sim');

export interface SimBenchLine {
  population: number;
  cohort: number;
  model: string;
  rounds: number;
  workers: number;
  connectMs: number;
  roundMs: number;
  roundsMs: number[];
  connectCpuMs: number;
  roundCpuMs: number;
  roundMainMs: number;
  rssAfterJoinBytes: number;
  heapAfterJoinBytes: number;
  peakRssBytes: number;
  peakAwake: number;
  stateBytes: number;
  extrapolated100RoundsMin: number;
  rssOk?: boolean;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** One population, in this process (the child). */
async function measure(population: number, cohort: number, rounds: number, model: string, workers: number, backend?: string): Promise<SimBenchLine> {
  const clients = new SyntheticPopulation({ alpha: 1, beta: 1, clients: population, seed: 1 });
  const pool = new TrainingPool({ workers, ...(backend ? { backend } : {}) });
  const gc = (globalThis as { gc?: () => void }).gc;
  let rssAfterJoinBytes = 0;
  let heapAfterJoinBytes = 0;
  const roundsMs: number[] = [];
  const roundsCpuMs: number[] = [];
  const roundsMainMs: number[] = [];
  let elu = performance.eventLoopUtilization();
  const cpuMs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const cpuAtStart = cpuMs();
  let connectCpuMs = 0;
  let last = 0;
  let lastCpu = 0;
  try {
    const result = await runSimulation({
      config: parseJobConfig({
        id: 'sim-bench',
        model: { zoo: model as 'mlp', inputShape: [SYNTHETIC_FEATURES], numClasses: SYNTHETIC_CLASSES },
        rounds,
        sampling: { mode: 'fixed', cohortSize: cohort },
        minClients: 1,
        minSurvivors: 1,
        training: { epochs: 1, batchSize: 10, learningRate: 0.05 },
        evaluation: { every: 0 },
        timeouts: { trainMs: 3_600_000, retryDelayMs: 0 },
      }),
      clients: generatedData(clients),
      pool,
      seed: 1,
      onConnected: () => {
        gc?.();
        ({ rss: rssAfterJoinBytes, heapUsed: heapAfterJoinBytes } = process.memoryUsage());
        last = Date.now();
        lastCpu = cpuMs();
        connectCpuMs = lastCpu - cpuAtStart;
        elu = performance.eventLoopUtilization();
      },
      onRound: () => {
        roundsMs.push(Date.now() - last);
        roundsCpuMs.push(cpuMs() - lastCpu);
        roundsMainMs.push(performance.eventLoopUtilization(elu).active);
        elu = performance.eventLoopUtilization();
        last = Date.now();
        lastCpu = cpuMs();
      },
    });
    if (result.job.status !== 'completed') throw new Error(`bench sim: the job ended ${result.job.status}: ${result.job.reason ?? ''}`);
    const roundMs = median(roundsMs);
    return {
      population,
      cohort,
      model,
      rounds,
      workers,
      connectMs: result.connectMs,
      roundMs,
      roundsMs,
      connectCpuMs: Math.round(connectCpuMs),
      roundCpuMs: Math.round(median(roundsCpuMs)),
      roundMainMs: Math.round(median(roundsMainMs)),
      rssAfterJoinBytes,
      heapAfterJoinBytes,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      peakAwake: result.peakAwake,
      stateBytes: population * (32 + 32 + 1 + 4 + 2),
      extrapolated100RoundsMin: (result.connectMs + 100 * roundMs) / 60_000,
    };
  } finally {
    await pool.close();
  }
}

/** Milliseconds from SIGTERM (sent when stderr matches `when`) to the simulation's exit. */
function stopLatency(population: number, when: RegExp): Promise<{ stopMs: number; exitCode: number | null }> {
  const args = ['--import', 'tsx', path.join(here, '../simulations/index.ts'), 'fedavg', '--dataset', 'synthetic', '--model', 'logreg'];
  const child = spawn(process.execPath, [...args, '--clients', String(population), '--fraction', '0.01', '--rounds', '1000', '--eval-every', '0', '--out', fs.mkdtempSync(path.join(os.tmpdir(), 'cohort-stop-'))], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let sentAt = 0;
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
    if (!sentAt && when.test(stderr)) {
      sentAt = performance.now();
      child.kill('SIGTERM');
    }
  });
  return new Promise((done) => child.on('exit', (exitCode) => done({ stopMs: Math.round(performance.now() - sentAt), exitCode })));
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: 'boolean', default: false },
      populations: { type: 'string', default: '10000,100000' },
      cohort: { type: 'string', default: '1000' },
      rounds: { type: 'string', default: '3' },
      model: { type: 'string', default: 'mlp' },
      workers: { type: 'string' },
      backend: { type: 'string' },
      'max-rss-gb': { type: 'string', default: '4' },
      child: { type: 'string' },
      'stop-latency': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const cohort = flags.int(values.cohort as string, 'cohort');
  const rounds = flags.int(values.rounds as string, 'rounds');
  const model = values.model as string;
  if (model !== 'mlp' && model !== 'logreg') throw new Error(`bench sim: --model must be mlp or logreg, got ${model}`);
  const workers = values.workers === undefined ? os.availableParallelism() : flags.int(values.workers as string, 'workers');
  const backend = values.backend as string | undefined;
  if (values.child !== undefined) {
    const line = await measure(flags.int(values.child as string, 'child'), cohort, rounds, model, workers, backend);
    process.stdout.write(`${JSON.stringify(line)}\n`);
    return;
  }
  if (values['stop-latency']) {
    const population = flags.ints(values.populations as string, 'populations')[0];
    const stages: [string, RegExp][] = [['generating data', /generating the held-out rows/], ['joining', /clients joined\n/], ['rounds', /fedavg 1\/1000/]];
    for (const [stage, when] of stages) {
      if (stage === 'joining' && population < 20_000) continue;
      const line = { stage, population, ...(await stopLatency(population, when)) };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
    return;
  }
  const maxRss = flags.num(values['max-rss-gb'] as string, 'max-rss-gb', (v) => v > 0, 'a positive number') * 2 ** 30;
  const lines: SimBenchLine[] = [];
  for (const population of flags.ints(values.populations as string, 'populations')) {
    const childArgs = ['--expose-gc', '--import', 'tsx', ENTRY, 'sim', '--child', String(population), '--cohort', String(cohort), '--rounds', String(rounds), '--model', model, '--workers', String(workers), ...(backend ? ['--backend', backend] : [])];
    const { stdout } = await execFileAsync(process.execPath, childArgs, { maxBuffer: 1 << 24 });
    const line = JSON.parse(stdout.trim().split('\n').at(-1) as string) as SimBenchLine;
    line.rssOk = line.peakRssBytes < maxRss;
    lines.push(line);
    process.stdout.write(values.json ? `${JSON.stringify(line)}\n` : `population ${population}: joined in ${(line.connectMs / 1000).toFixed(1)} s, round ${(line.roundMs / 1000).toFixed(1)} s (median of ${rounds}), RSS ${(line.rssAfterJoinBytes / 2 ** 20).toFixed(0)} MiB after joining, peak ${(line.peakRssBytes / 2 ** 20).toFixed(0)} MiB, ≤ ${line.peakAwake} engines awake\n`);
  }
  const out: object[] = [...lines];
  if (lines.length >= 2) {
    const [a, b] = [lines[0], lines.at(-1) as SimBenchLine];
    const comparison = {
      populations: [a.population, b.population],
      bytesPerMember: Math.round((b.rssAfterJoinBytes - a.rssAfterJoinBytes) / (b.population - a.population)),
      heapBytesPerMember: Math.round((b.heapAfterJoinBytes - a.heapAfterJoinBytes) / (b.population - a.population)),
      peakAwake: [a.peakAwake, b.peakAwake],
    };
    out.push(comparison);
    process.stdout.write(values.json ? `${JSON.stringify(comparison)}\n` : `a member costs ${comparison.bytesPerMember} bytes of resident memory (population ${a.population} → ${b.population})\n`);
  }
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(RESULTS, `${out.map((l) => JSON.stringify(l)).join('\n')}\n`);
}
