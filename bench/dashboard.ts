/**
 * `npm run bench -- dashboard [--rounds 1000] [--loads 5] [--json]`
 *
 * The dashboard's speed (issue 16: first load < 1 s on loopback for a job of 1,000 rounds; bundle
 * < 300 KB gzipped). Builds the bundle (scripts/build-web.ts) and reports its size; starts a real
 * `cohort serve` on 127.0.0.1, runs a central-DP job of --rounds rounds with 3 in-process Socket.IO
 * clients to completion (real commits, ledger rows and checkpoints in SQLite), then opens the job's page
 * in headless Chromium (Debian's chromium through playwright-core) with a viewer token already in the
 * tab's sessionStorage, --loads times, each in a fresh browser context (cold cache).
 *
 * First load: from navigation start to the page showing every round (the job's article carries the
 * last committed round and its three charts are drawn), measured in the page with performance.now().
 *
 * Prints one JSON line (also written to bench/results/dashboard.json):
 *   rounds, ledgerRows, jsBytes, jsGzipBytes, cssBytes,
 *   firstLoadMs (the first, cold), firstLoadMedianMs, firstLoadMaxMs over --loads,
 *   overviewLoadMs (the jobs page, cold), apiBytes (JSON the job page fetched), setupMs (running the job),
 *   bundleGoalMet (< 300 KB gzipped), firstLoadGoalMet (the first load < 1 s).
 */
import fs from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { ClientEngine, type ClientTask } from '../client/engine/index.ts';
import { SocketIoClientTransport } from '../client/transport/socketio.ts';
import { parseJobConfig } from '../server/round/config.ts';
import { startService } from '../server/service.ts';
import { buildWeb } from '../scripts/build-web.ts';
import { launchChromium } from '../test/support/chromium.ts';
import { flagReaders } from './args.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.join(here, 'results', 'dashboard.json');

class QuickTask implements ClientTask {
  readonly numExamples = 10;
  constructor(private readonly value: number) {}
  async fit() {
    return { delta: new Float32Array(18).fill(this.value), numExamples: 10, metrics: { loss: 0.5 + this.value, accuracy: 0.7 } };
  }
  async evaluate() {
    return { numExamples: 5, loss: 0.6, accuracy: 0.7 };
  }
}

/** Opens `hash` with the token in sessionStorage; ms from navigation start until `ready` matches. */
async function load(browser: Browser, url: string, token: string, hash: string, ready: string): Promise<{ ms: number; apiBytes: number }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    await context.addInitScript((t) => sessionStorage.setItem('cohort.token', t), token);
    const page: Page = await context.newPage();
    let apiBytes = 0;
    page.on('response', (res) => {
      if (res.url().includes('/api/v1/') && !res.url().endsWith('/events')) void res.body().then((b) => (apiBytes += b.length)).catch(() => {});
    });
    await page.goto(`${url}/${hash}`, { waitUntil: 'commit' });
    await page.waitForSelector(ready, { timeout: 30_000 });
    const ms = await page.evaluate(() => performance.now());
    return { ms, apiBytes };
  } finally {
    await context.close();
  }
}

export async function run(args: string[]): Promise<void> {
  const flags = flagReaders('dashboard');
  const { values } = parseArgs({
    args,
    options: { rounds: { type: 'string', default: '1000' }, loads: { type: 'string', default: '5' }, json: { type: 'boolean', default: false } },
  });
  const rounds = flags.int(values.rounds!, 'rounds');
  const loads = flags.int(values.loads!, 'loads');
  const bundle = await buildWeb();

  const service = await startService({ dataDir: mkdtempSync(path.join(tmpdir(), 'cohort-bench-dashboard-')) });
  const engines: ClientEngine[] = [];
  let browser: Browser | undefined;
  try {
    const token = service.store.createToken({ name: 'bench', role: 'viewer' }).token;
    const config = parseJobConfig({
      id: 'bench',
      model: { zoo: 'logreg', inputShape: [8], numClasses: 2 },
      rounds,
      sampling: { mode: 'fixed', cohortSize: 3 },
      minClients: 3,
      timeouts: { trainMs: 30_000, retryDelayMs: 10 },
      dp: { mode: 'central', noiseMultiplier: 5, clipNorm: 1, budget: { epsilon: 1e6, delta: 1e-5 } },
    });
    const setupStart = performance.now();
    await service.submit(config);
    for (let i = 0; i < 3; i++) {
      const e = new ClientEngine({ clientId: `c${i}`, task: new QuickTask(0.01 * (i + 1)), transport: new SocketIoClientTransport({ url: `${service.url}/jobs/bench` }) });
      e.start();
      engines.push(e);
    }
    const done = await service.jobs.get('bench')!.engine.whenFinished();
    if (done.rounds !== rounds) throw new Error(`bench dashboard: the job ended ${done.status} after ${done.rounds} of ${rounds} rounds`);
    const setupMs = performance.now() - setupStart;
    for (const e of engines.splice(0)) e.stop();

    browser = await launchChromium();
    const jobReady = `article.job[data-committed-round="${rounds}"] [data-testid=epsilon-chart] canvas`;
    const times: number[] = [];
    let apiBytes = 0;
    for (let i = 0; i < loads; i++) {
      const r = await load(browser, service.url, token, '#/jobs/bench', `${jobReady}`);
      times.push(r.ms);
      apiBytes = r.apiBytes;
    }
    const overview = await load(browser, service.url, token, '#/', '[data-testid=jobs-table] tr[data-job="bench"]');
    const sorted = [...times].sort((a, b) => a - b);
    const result = {
      bench: 'dashboard',
      rounds,
      ledgerRows: service.store.listLedger('bench').length,
      jsBytes: bundle.jsBytes,
      jsGzipBytes: bundle.jsGzipBytes,
      cssBytes: bundle.cssBytes,
      firstLoadMs: Math.round(times[0]),
      loadsMs: times.map((t) => Math.round(t)),
      firstLoadMedianMs: Math.round(sorted[Math.floor(sorted.length / 2)]),
      firstLoadMaxMs: Math.round(sorted[sorted.length - 1]),
      loads,
      overviewLoadMs: Math.round(overview.ms),
      apiBytes,
      setupMs: Math.round(setupMs),
      // The goals: a bundle under 300 KB gzipped, a first load under 1 s.
      bundleGoalMet: bundle.jsGzipBytes < 300 * 1024,
      firstLoadGoalMet: times[0] < 1000,
    };
    const line = JSON.stringify(result);
    fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
    fs.writeFileSync(RESULTS, `${line}\n`);
    if (values.json) process.stdout.write(`${line}\n`);
    else for (const [k, v] of Object.entries(result)) console.log(`${k.padEnd(20)} ${v}`);
  } finally {
    for (const e of engines) e.stop();
    await browser?.close();
    await service.close();
  }
}
