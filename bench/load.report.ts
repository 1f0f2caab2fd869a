/**
 * `npm run bench -- load`: flags, the JSON lines and the readable table of a load run (bench/load.ts
 * runs it).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { flagReaders } from './args.ts';
import { DEFAULT_LOAD_OPTIONS, GOALS, RESULTS, runLoad, type LoadOptions, type LoadResult } from './load.ts';
// ---- the command -----------------------------------------------------------------------------------

function parseOptions(args: string[]): { json: boolean; opts: LoadOptions } {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      json: { type: 'boolean', default: false },
      clients: { type: 'string', default: String(DEFAULT_LOAD_OPTIONS.clients) },
      minutes: { type: 'string', default: String(DEFAULT_LOAD_OPTIONS.durationMs / 60_000) },
      cohort: { type: 'string', default: String(DEFAULT_LOAD_OPTIONS.cohort) },
      generators: { type: 'string', default: String(DEFAULT_LOAD_OPTIONS.generators) },
      ramp: { type: 'string', default: String(DEFAULT_LOAD_OPTIONS.ramp) },
      'train-ms': { type: 'string', default: String(DEFAULT_LOAD_OPTIONS.trainMs) },
      'eval-every': { type: 'string', default: String(DEFAULT_LOAD_OPTIONS.evalEvery) },
      'per-address': { type: 'string', default: String(DEFAULT_LOAD_OPTIONS.perAddress) },
      seed: { type: 'string', default: String(DEFAULT_LOAD_OPTIONS.seed) },
    },
  });
  const { int, num } = flagReaders('load');
  const nonNegInt = (text: string, flag: string) => num(text, flag, (v) => Number.isSafeInteger(v) && v >= 0, 'a non-negative integer');
  const opts: LoadOptions = {
    ...DEFAULT_LOAD_OPTIONS,
    clients: int(values.clients, 'clients'),
    durationMs: Math.round(60_000 * num(values.minutes, 'minutes', (v) => v > 0 && v <= 24 * 60, 'a number of minutes in (0, 1440]')),
    cohort: int(values.cohort, 'cohort'),
    generators: int(values.generators, 'generators'),
    ramp: int(values.ramp, 'ramp'),
    trainMs: nonNegInt(values['train-ms'], 'train-ms'),
    evalEvery: nonNegInt(values['eval-every'], 'eval-every'),
    perAddress: nonNegInt(values['per-address'], 'per-address'),
    seed: int(values.seed, 'seed'),
    progress: (line) => process.stderr.write(`${line}\n`),
  };
  return { json: values.json, opts };
}

const r1 = (v: number | null) => (v === null || Number.isNaN(v) ? null : Math.round(v * 10) / 10);

/** The JSON lines: one per figure group, then the summary with the goals. */
export function resultLines(r: LoadResult): Record<string, unknown>[] {
  const { options: o } = r;
  const allHeld = r.connections.heldAtEnd === o.clients && r.connect.welcomed === o.clients && r.connections.serverDisconnects === 0;
  const slopeOk = r.rss.slopeMbPerMin !== null && r.rss.slopeMbPerMin < GOALS.rssSlopeMbPerMin;
  const lagOk = r.lag.p99Ms < GOALS.lagP99Ms;
  // A few dozen points of the RSS series for the JSON (the table prints fewer).
  const step = Math.max(1, Math.ceil(r.rss.samples.length / 60));
  const series = r.rss.samples.filter((_, i) => i % step === 0).map((s) => [r1(s.tS), r1(s.rssMb)]);
  return [
    {
      bench: 'load',
      figure: 'connect',
      clients: o.clients,
      generators: o.generators,
      welcomed: r.connect.welcomed,
      registered: r.connect.registered,
      totalMs: Math.round(r.connect.totalMs),
      p50Ms: r1(r.connect.p50Ms),
      p99Ms: r1(r.connect.p99Ms),
      maxMs: r1(r.connect.maxMs),
      connectErrors: r.connect.connectErrors,
      lagP50Ms: r1(r.connect.lagP50Ms),
      lagP99Ms: r1(r.connect.lagP99Ms),
      lagMaxMs: r1(r.connect.lagMaxMs),
    },
    {
      bench: 'load',
      figure: 'rounds',
      cohort: o.cohort,
      trainMs: o.trainMs,
      minutes: o.durationMs / 60_000,
      committed: r.rounds.committed,
      aborted: r.rounds.aborted,
      abortReasons: r.rounds.abortReasons,
      wallP50Ms: r1(r.rounds.wallP50Ms),
      wallP99Ms: r1(r.rounds.wallP99Ms),
      wallMaxMs: r1(r.rounds.wallMaxMs),
      intervalP50Ms: r1(r.rounds.intervalP50Ms),
      survivorsMin: r.rounds.survivorsMin,
      jobStatus: r.rounds.jobStatus,
    },
    {
      bench: 'load',
      figure: 'lag',
      p50Ms: r1(r.lag.p50Ms),
      p99Ms: r1(r.lag.p99Ms),
      maxMs: r1(r.lag.maxMs),
      meanMs: r1(r.lag.meanMs),
      canaryP50Ms: r1(r.canaryLag?.p50Ms ?? null),
      canaryP99Ms: r1(r.canaryLag?.p99Ms ?? null),
      canaryMaxMs: r1(r.canaryLag?.maxMs ?? null),
      loadAverage: os.loadavg().map((v) => Math.round(v * 10) / 10),
      sendBursts: r.sendBursts.count,
      burstSendsP50: r.sendBursts.sendsP50,
      burstP50Ms: r1(r.sendBursts.p50Ms),
      burstP99Ms: r1(r.sendBursts.p99Ms),
      burstMaxMs: r1(r.sendBursts.maxMs),
      burstMaxSends: r.sendBursts.maxSends,
    },
    {
      bench: 'load',
      figure: 'rss',
      startMb: r1(r.rss.startMb),
      endMb: r1(r.rss.endMb),
      peakMb: r1(r.rss.peakMb),
      slopeMbPerMin: r.rss.slopeMbPerMin === null ? null : Math.round(r.rss.slopeMbPerMin * 1000) / 1000,
      heapSlopeMbPerMin: r.rss.heapSlopeMbPerMin === null ? null : Math.round(r.rss.heapSlopeMbPerMin * 1000) / 1000,
      majorGcs: r.rss.afterGc.length,
      liveHeapSlopeMbPerMin: r.rss.liveHeapSlopeMbPerMin === null ? null : Math.round(r.rss.liveHeapSlopeMbPerMin * 1000) / 1000,
      rssAfterGcSlopeMbPerMin: r.rss.rssAfterGcSlopeMbPerMin === null ? null : Math.round(r.rss.rssAfterGcSlopeMbPerMin * 1000) / 1000,
      endHeapTotalMb: r1(r.rss.samples[r.rss.samples.length - 1].heapTotalMb),
      endExternalMb: r1(r.rss.samples[r.rss.samples.length - 1].externalMb),
      /** [t s, live heap MB, RSS MB] just after each major GC. */
      afterGc: r.rss.afterGc.map((s) => [r1(s.tS), r1(s.heapMb), r1(s.rssMb)]),
      warmupS: r1(r.rss.warmupS),
      samples: r.rss.samples.length,
      series,
    },
    {
      bench: 'load',
      figure: 'connections',
      ...r.connections,
      coordinatorCpuPct: r1(r.cpu.coordinatorPct),
      generatorsCpuPct: r1(r.cpu.generatorsPct),
      generatorRssMb: r1(r.cpu.generatorRssMb),
      ...r.messages,
      fdLimit: r.fdLimit,
    },
    {
      bench: 'load',
      summary: true,
      clients: o.clients,
      minutes: o.durationMs / 60_000,
      goals: {
        allHeld,
        rssSlope: { value: r.rss.slopeMbPerMin === null ? null : Math.round(r.rss.slopeMbPerMin * 1000) / 1000, limit: GOALS.rssSlopeMbPerMin, ok: slopeOk },
        lagP99: { value: r1(r.lag.p99Ms), limit: GOALS.lagP99Ms, ok: lagOk },
      },
      ok: allHeld && slopeOk && lagOk,
    },
  ];
}

function printTable(r: LoadResult, lines: Record<string, unknown>[]): void {
  const o = r.options;
  const f = (v: number | null, digits = 1) => (v === null || Number.isNaN(v) ? '—' : v.toFixed(digits));
  const summary = lines[lines.length - 1] as { goals: { allHeld: boolean; rssSlope: { ok: boolean }; lagP99: { ok: boolean } } };
  const verdict = (ok: boolean) => (ok ? 'ok' : 'MISSED');
  const rows: [string, string][] = [
    ['clients / generators / cohort', `${o.clients} / ${o.generators} / ${o.cohort} (train ${o.trainMs} ms, ${f(o.durationMs / 60_000, 2)} min)`],
    ['connect: welcomed / registered', `${r.connect.welcomed} / ${r.connect.registered} (${r.connect.connectErrors} connect errors)`],
    ['connect: total', `${f(r.connect.totalMs / 1000)} s`],
    ['connect: per client p50 / p99 / max', `${f(r.connect.p50Ms)} / ${f(r.connect.p99Ms)} / ${f(r.connect.maxMs)} ms`],
    ['connect: event-loop lag p50 / p99 / max', `${f(r.connect.lagP50Ms)} / ${f(r.connect.lagP99Ms)} / ${f(r.connect.lagMaxMs)} ms`],
    ['rounds committed / aborted', `${r.rounds.committed} / ${r.rounds.aborted}${r.rounds.aborted ? ` ${JSON.stringify(r.rounds.abortReasons)}` : ''}`],
    ['round wall time p50 / p99 / max', `${f(r.rounds.wallP50Ms)} / ${f(r.rounds.wallP99Ms)} / ${f(r.rounds.wallMaxMs)} ms (commit to commit p50 ${f(r.rounds.intervalP50Ms)} ms)`],
    ['event-loop lag p50 / p99 / max', `${f(r.lag.p50Ms)} / ${f(r.lag.p99Ms)} / ${f(r.lag.maxMs)} ms (goal p99 < ${GOALS.lagP99Ms}: ${verdict(summary.goals.lagP99.ok)})`],
    ['idle canary process: lag p50 / p99 / max', `${f(r.canaryLag?.p50Ms ?? null)} / ${f(r.canaryLag?.p99Ms ?? null)} / ${f(r.canaryLag?.maxMs ?? null)} ms (machine noise; load average ${os.loadavg().map((v) => v.toFixed(1)).join(' ')})`],
    ['send bursts (≥ 100 sends in one turn)', `${r.sendBursts.count}, median ${f(r.sendBursts.sendsP50, 0)} sends: p50 / p99 / max ${f(r.sendBursts.p50Ms)} / ${f(r.sendBursts.p99Ms)} / ${f(r.sendBursts.maxMs)} ms`],
    ['RSS start / end / peak', `${f(r.rss.startMb)} / ${f(r.rss.endMb)} / ${f(r.rss.peakMb)} MB`],
    ['RSS slope after warm-up', `${f(r.rss.slopeMbPerMin, 3)} MB/min from t=${f(r.rss.warmupS)} s (heap ${f(r.rss.heapSlopeMbPerMin, 3)}, live heap after major GCs ${f(r.rss.liveHeapSlopeMbPerMin, 3)} and RSS after them ${f(r.rss.rssAfterGcSlopeMbPerMin, 3)}, ${r.rss.afterGc.length} GCs; goal < ${GOALS.rssSlopeMbPerMin}: ${verdict(summary.goals.rssSlope.ok)})`],
    ['held at end', `${r.connections.heldAtEnd} of ${o.clients} (${verdict(summary.goals.allHeld)})`],
    ['disconnects client / server side', `${r.connections.clientDisconnects} / ${r.connections.serverDisconnects} (reconnects ${r.connections.reconnects})`],
    ['server errors / protocol errors', `${JSON.stringify(r.connections.serverErrors)} / ${r.connections.protocolErrors}`],
    ['CPU coordinator / generators', `${f(r.cpu.coordinatorPct)}% / ${f(r.cpu.generatorsPct)}% of one core (generators' RSS ${f(r.cpu.generatorRssMb)} MB)`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
  const step = Math.max(1, Math.ceil(r.rss.samples.length / 12));
  console.log(`RSS over time (s: MB): ${r.rss.samples.filter((_, i) => i % step === 0).map((s) => `${s.tS.toFixed(0)}: ${s.rssMb.toFixed(0)}`).join(', ')}`);
}

export async function run(args: string[]): Promise<void> {
  const { json, opts } = parseOptions(args);
  const result = await runLoad(opts);
  const lines = resultLines(result);
  if (json) for (const l of lines) process.stdout.write(`${JSON.stringify(l)}\n`);
  else printTable(result, lines);
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(RESULTS, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
}
