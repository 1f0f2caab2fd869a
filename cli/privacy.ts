/**
 * `cohort privacy …`: the accountant from the command line, and the privacy ledger of a job.
 *   epsilon   --q Q --noise Z --steps T --delta D [--adjacency add-remove|replace-one] [--orders default|integer|LIST]
 *             [--conversion improved|classic] [--json]
 *   calibrate --epsilon E --delta D --q Q --steps T [--adjacency add-remove|replace-one] [--json]
 *
 * Adjacency: add-remove (one client's data present or absent) is what Poisson amplification is proven
 * for; replace-one (one client's update changed, L2 sensitivity 2C, so the Gaussian's multiplier is z/2) is
 * what local mode and every guarantee against the coordinator use, unsampled: it needs --q 1.
 *   ledger    --data-dir DIR --job ID [--json]
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CohortStore, DB_FILE } from '../server/store/index.ts';
import { ConfigError } from '../shared/errors.ts';
import {
  calibrateNoiseMultiplier,
  calibrateNoiseMultiplierFor,
  DEFAULT_ORDERS,
  epsilonFor,
  epsilonFromRdp,
  gaussianEvent,
  INTEGER_ORDERS,
  rdpOfEvent,
  selfComposedEvent,
  type Conversion,
} from '../shared/privacy/index.ts';

type Adjacency = 'add-remove' | 'replace-one';

/** The adjacency flag; replace-one is analysed unsampled only (the coordinator knows who took part). */
function adjacency(text: string | undefined, q: number): Adjacency {
  const a = text ?? 'add-remove';
  if (a !== 'add-remove' && a !== 'replace-one') throw new ConfigError(`--adjacency must be add-remove or replace-one, got ${text}`);
  if (a === 'replace-one' && q !== 1) {
    throw new ConfigError(
      `--adjacency replace-one is analysed without sampling amplification (it is the coordinator's view, or local mode): use --q 1, got --q ${q}`,
    );
  }
  return a;
}

/** T rounds of the unsampled Gaussian under replace-one: sensitivity 2C, so the event carries z/2. */
const replaceOneSchedule = (z: number, t: number) => selfComposedEvent(gaussianEvent(z / 2), t);

function number(value: string | undefined, flag: string, check: (x: number) => boolean, what: string): number {
  const x = Number(value);
  if (value === undefined || !Number.isFinite(x) || !check(x)) {
    throw new ConfigError(`--${flag} must be ${what}, got ${value ?? '(missing)'}`);
  }
  return x;
}

const probability = (v: string | undefined, flag: string) => number(v, flag, (x) => x > 0 && x <= 1, 'in (0, 1]');
const delta = (v: string | undefined) => number(v, 'delta', (x) => x > 0 && x < 1, 'in (0, 1)');
const steps = (v: string | undefined) => number(v, 'steps', (x) => Number.isInteger(x) && x >= 0, 'an integer ≥ 0');

export function parseOrders(text: string | undefined): readonly number[] {
  if (text === undefined || text === 'default') return DEFAULT_ORDERS;
  if (text === 'integer') return INTEGER_ORDERS;
  const list = text.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((a) => !Number.isFinite(a) || a <= 1)) {
    throw new ConfigError(`--orders must be default, integer, or a comma-separated list of orders > 1, got ${text}`);
  }
  return list;
}

function conversion(text: string | undefined): Conversion {
  if (text === undefined || text === 'improved' || text === 'classic') return text ?? 'improved';
  throw new ConfigError(`--conversion must be improved or classic, got ${text}`);
}

export interface EpsilonOptions {
  adjacency?: string;
  q?: string;
  noise?: string;
  steps?: string;
  delta?: string;
  orders?: string;
  conversion?: string;
  json?: boolean;
}

export function privacyEpsilon(o: EpsilonOptions): number {
  const q = probability(o.q, 'q');
  const adj = adjacency(o.adjacency, q);
  const noiseMultiplier = number(o.noise, 'noise', (x) => x >= 0, '≥ 0');
  const orders = parseOrders(o.orders);
  const params = { q, noiseMultiplier, steps: steps(o.steps), delta: delta(o.delta), orders, conversion: conversion(o.conversion) };
  const result =
    adj === 'add-remove'
      ? epsilonFor(params)
      : epsilonFromRdp(orders, rdpOfEvent(replaceOneSchedule(noiseMultiplier, params.steps), orders), params.delta, params.conversion);
  if (o.json) process.stdout.write(`${JSON.stringify({ epsilon: result.epsilon, order: result.order, adjacency: adj })}\n`);
  else process.stdout.write(`ε = ${result.epsilon} at δ = ${o.delta} (${adj}, optimal RDP order ${result.order})\n`);
  return 0;
}

export interface CalibrateOptions {
  adjacency?: string;
  epsilon?: string;
  delta?: string;
  q?: string;
  steps?: string;
  json?: boolean;
}

export function privacyCalibrate(o: CalibrateOptions): number {
  const q = probability(o.q, 'q');
  const adj = adjacency(o.adjacency, q);
  const target = { targetEpsilon: number(o.epsilon, 'epsilon', (x) => x > 0, '> 0'), delta: delta(o.delta) };
  const t = steps(o.steps);
  const noiseMultiplier =
    adj === 'add-remove' ? calibrateNoiseMultiplier({ ...target, q, steps: t }) : calibrateNoiseMultiplierFor((z) => replaceOneSchedule(z, t), target);
  if (o.json) process.stdout.write(`${JSON.stringify({ noiseMultiplier })}\n`);
  else process.stdout.write(`noise multiplier z = ${noiseMultiplier} meets ε = ${o.epsilon} at δ = ${o.delta}\n`);
  return 0;
}

export interface LedgerOptions {
  dataDir?: string;
  job?: string;
  json?: boolean;
}

export function privacyLedger(o: LedgerOptions): number {
  if (!o.dataDir) throw new ConfigError('--data-dir is required');
  if (!o.job) throw new ConfigError('--job is required');
  const dir = resolve(o.dataDir);
  if (!existsSync(join(dir, DB_FILE))) throw new ConfigError(`no Cohort store in ${dir} (expected ${DB_FILE})`);
  const store = CohortStore.open(dir);
  try {
    const job = store.getJob(o.job);
    if (!job) throw new ConfigError(`no job ${o.job} in ${dir}; jobs: ${store.listJobs().map((j) => j.id).join(', ') || '(none)'}`);
    const rows = store.listLedger(o.job);
    if (o.json) {
      for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
      return 0;
    }
    const budget = (job.config as { dp?: { budget?: { epsilon: number; delta: number } } }).dp?.budget;
    process.stdout.write(
      `job ${o.job}: status ${job.status}${job.reason ? ` (${job.reason})` : ''}; ` +
        `budget ${budget ? `ε=${budget.epsilon} at δ=${budget.delta}` : 'none'}\n`,
    );
    const eps = (x: number | null) => (x === null ? 'none' : x.toFixed(6));
    const header = ['round', 'release', 'mode', 'sampling', 'q', 'population', 'cohort', 'survivors', 'z', 'C', 'ε consumers', 'ε coordinator', 'δ', 'order'];
    const table = rows.map((r) => [
      String(r.round),
      r.status === 'attempt' ? `attempt ${r.attempt}` : r.status,
      r.mode,
      r.sampling,
      r.samplingRate.toPrecision(4),
      String(r.population),
      String(r.cohortSize),
      String(r.survivors),
      String(r.noiseMultiplier),
      r.clipNorm.toPrecision(4),
      eps(r.epsilonPublished),
      eps(r.epsilonCoordinator),
      String(r.delta),
      String(r.rdpOrder ?? '-'),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
    process.stdout.write(`${line(header)}\n`);
    for (const row of table) process.stdout.write(`${line(row)}\n`);
    if (rows.length) {
      const last = rows.at(-1)!;
      process.stdout.write(
        'ε consumers: against anyone who sees only the published models. ε coordinator: against whoever runs the ' +
          "coordinator (it sees the cohort and what clients send it); 'none' means no guarantee against it.\n" +
          `the budget applies to ε ${last.audience === 'coordinator' ? 'coordinator' : 'consumers'}.\n`,
      );
      process.stdout.write(`trust: ${last.trust}\n`);
    }
    return 0;
  } finally {
    store.close();
  }
}
