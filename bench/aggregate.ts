/**
 * `npm run bench -- aggregate [--json] [--dim 1663370] [--clients 10,200] [--seed 1] [--mode engine|sum]`
 *
 * Server memory while aggregating: for each cohort size n a fresh process runs one round of the real
 * round engine (mode `engine`: in-memory transport, client engines, SQLite commit) or folds n updates
 * into a bare WeightedSum (mode `sum`), and applies FedAvg. Streaming aggregation is O(d) in memory, so peak RSS should not
 * grow with n; the acceptance bound is RSS(n_max) ≤ 1.3 × RSS(n_min). The default d = 1,663,370 is the
 * parameter count of the CNN of McMahan et al. 2017 ("Communication-Efficient Learning of Deep Networks
 * from Decentralized Data", MNIST CNN).
 *
 * With --json, stdout carries exactly one JSON line per n, then {"bench":"aggregate","ratio":...}.
 * The same lines are written to bench/results/aggregate.json.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import type { AggregateResult } from './aggregate.worker.ts';
import { flagReaders } from './args.ts';

const execFileAsync = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const WORKER = path.join(here, 'aggregate.worker.ts');
const RESULTS = path.join(here, 'results', 'aggregate.json');

export const RSS_RATIO_LIMIT = 1.3;

interface Options {
  json: boolean;
  dim: number;
  clients: number[];
  seed: number;
  mode: 'engine' | 'sum';
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      json: { type: 'boolean', default: false },
      dim: { type: 'string', default: '1663370' },
      clients: { type: 'string', default: '10,200' },
      seed: { type: 'string', default: '1' },
      mode: { type: 'string', default: 'engine' },
    },
  });
  const { int, ints } = flagReaders('aggregate');
  return {
    json: values.json,
    dim: int(values.dim, 'dim'),
    clients: ints(values.clients, 'clients'),
    seed: int(values.seed, 'seed'),
    mode: parseMode(values.mode),
  };
}

function parseMode(text: string): 'engine' | 'sum' {
  if (text !== 'engine' && text !== 'sum') throw new Error(`bench aggregate: --mode must be engine or sum, got "${text}"`);
  return text;
}

async function runWorker(clients: number, dim: number, seed: number, mode: string): Promise<AggregateResult> {
  // Resolve tsx from here so the bench does not depend on the caller's working directory.
  const tsx = import.meta.resolve('tsx');
  const { stdout } = await execFileAsync(process.execPath, ['--import', tsx, WORKER, String(clients), String(dim), String(seed), mode], {
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim()) as AggregateResult;
}

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

function printTable(results: AggregateResult[], ratio: number | undefined): void {
  const rows = results.map((r) => [
    String(r.clients),
    String(r.dim),
    mib(r.baselineRssBytes),
    mib(r.peakRssBytes),
    mib(r.peakRssBytes - r.baselineRssBytes),
    r.ms.toFixed(0),
    r.msPerUpdate.toFixed(2),
  ]);
  const header = ['clients', 'dim', 'baseline MiB', 'peak RSS MiB', 'peak − baseline MiB', 'ms', 'ms/update'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
  if (ratio !== undefined) {
    const verdict = ratio <= RSS_RATIO_LIMIT ? 'ok' : 'FAIL';
    console.log(`peak RSS ratio (largest / smallest cohort): ${ratio.toFixed(3)} (limit ${RSS_RATIO_LIMIT}: ${verdict})`);
  }
}

export async function run(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  const results: AggregateResult[] = [];
  const lines: string[] = [];
  for (const n of opts.clients) {
    const r = await runWorker(n, opts.dim, opts.seed, opts.mode);
    results.push(r);
    lines.push(JSON.stringify(r));
    if (opts.json) process.stdout.write(`${lines[lines.length - 1]}\n`);
    else process.stderr.write(`clients=${n}: ${mib(r.peakRssBytes)} MiB peak, ${r.ms.toFixed(0)} ms\n`);
  }

  const byClients = [...results].sort((a, b) => a.clients - b.clients);
  const ratio =
    byClients.length >= 2 ? byClients[byClients.length - 1].peakRssBytes / byClients[0].peakRssBytes : undefined;
  if (ratio !== undefined) {
    const summary = JSON.stringify({
      bench: 'aggregate',
      ratio,
      clients: [byClients[0].clients, byClients[byClients.length - 1].clients],
    });
    lines.push(summary);
    if (opts.json) process.stdout.write(`${summary}\n`);
  }
  if (!opts.json) printTable(results, ratio);

  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(RESULTS, `${lines.join('\n')}\n`);
}
