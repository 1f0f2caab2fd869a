/**
 * The browser client end to end, in real headless Chromium (Debian's, driven by playwright-core): a
 * coordinator on loopback runs a SecAgg + distributed-DP CNN job for 3 rounds with 2 browser clients
 * (one through the demo page at /client, clicked as a person would; one through the three lines a web
 * developer writes) and 2 Node clients. Checked: the job completes; the global model changes and its
 * accuracy on held-out digits rises; every round's unmasked sum equals, exactly, the sum mod 2^b of
 * the encoded (clipped, rounded, noised) inputs of the clients it included — those of the browsers
 * included; closing one page in the middle of round 3 is a dropout and round 3 still completes;
 * while the CNN trains, the demo page's main thread has no task over 50 ms (PerformanceObserver
 * 'longtask'; an 80 ms task of the page's own shows the observer works); the device key persists in
 * IndexedDB. Also: the bundle build refuses a Node built-in imported by our code; under `cohort serve`
 * a page joins a job by id (its namespace), an unknown job fails with UNKNOWN_JOB, leave() disconnects,
 * and /client serves only the built files, with a CSP that allows no inline script.
 *
 * COHORT_TEST_LOG=1 prints the coordinator's log, the pages' consoles, the held-out accuracies and
 * the demo page's long tasks and long animation frames (with the scripts that ran in them).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBrowser, DEMO_MNIST, DIST, noNodeBuiltins } from '../../scripts/build-browser.ts';
import { startService, type Service } from '../../server/service.ts';
import type { Dataset } from '../../client/data/dataset.ts';
import { selectBackend } from '../../client/train/backend.ts';
import { LocalTrainer } from '../../client/train/trainer.ts';
import { startCoordinator, type Coordinator } from '../../server/coordinator.ts';
import { parseJobConfig } from '../../server/round/config.ts';
import { createLogger } from '../../cli/log.ts';
import { initialWeights, type ModelSpec } from '../../shared/model/index.ts';
import { SecAggServer } from '../../shared/secagg/index.ts';
import { toBase64Url } from '../../shared/crypto/bytes.ts';
import { ROOT, spawnJsonLines, type JsonLinesChild } from './helpers.ts';

interface NodeClientLine {
  event: string;
  round?: number;
  values?: string;
  status?: string;
}

const JOB = 'browser-e2e';
const PIXELS = 784;
const MODEL: ModelSpec = { zoo: 'cnn', inputShape: [28, 28, 1], numClasses: 10 };

function chromiumPath(): string {
  for (const p of ['/usr/bin/chromium', '/usr/bin/chromium-browser']) if (existsSync(p)) return p;
  return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim();
}

/** Example k.. of the demo digits the build bundled (the same bytes the pages load). */
function digits(from: number, count: number): Dataset {
  const bytes = readFileSync(join(DIST, 'cohort-client.mnist.bin'));
  const features = new Float32Array(count * PIXELS);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const row = (from + i) * (PIXELS + 1);
    for (let p = 0; p < PIXELS; p++) features[i * PIXELS + p] = bytes[row + p] / 255;
    labels[i] = bytes[row + PIXELS];
  }
  return { features, labels, featureShape: [28, 28, 1], numClasses: 10, size: count };
}

/** What the coordinator unmasked, per round (last attempt), and which clients that sum includes. */
const sums = new Map<number, { sum: Uint32Array; included: string[]; bits: number }>();

function captureSums(): void {
  const result = SecAggServer.prototype.result;
  SecAggServer.prototype.result = function (this: SecAggServer) {
    const r = result.call(this);
    if (r.status === 'ok') sums.set(this.round, { sum: r.sum.slice(), included: [...r.included], bits: this.params.bits });
    return r;
  };
}

function fromBase64(text: string): Uint32Array {
  const buf = Buffer.from(text, 'base64');
  return new Uint32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

async function accuracy(weights: Float32Array, data: Dataset): Promise<number> {
  const trainer = new LocalTrainer(MODEL);
  try {
    return (await trainer.evaluate(weights, data)).accuracy;
  } finally {
    trainer.dispose();
  }
}

/**
 * The page of the second browser client: a module script with the three lines of the README (plus
 * reading its shard and the test hooks). A string, so the test runner's transforms leave it alone.
 */
const SDK_PAGE_SCRIPT = (job: string, shardSize: number): string => `
const bytes = new Uint8Array(await (await fetch('/client/cohort-client.mnist.bin')).arrayBuffer());
const x = new Float32Array(${shardSize} * 784);
const y = new Int32Array(${shardSize});
for (let i = 0; i < ${shardSize}; i++) {
  const row = (${shardSize} + i) * 785; // shard 1
  for (let p = 0; p < 784; p++) x[i * 784 + p] = bytes[row + p] / 255;
  y[i] = bytes[row + 784];
}
window.encoded = {};
window.trainingStarted = [];

import { join } from '/client/cohort-client.browser.js';
const client = await join({ server: location.origin, job: ${JSON.stringify(job)}, data: { x, y, shape: [28, 28, 1] }, exposeEncodedInputs: true });
client.on('round', (r) => console.log('round', r.round, r.outcome));

client.on('training', (t) => t.phase === 'started' && window.trainingStarted.push(t.round));
client.on('encoded', (e) => {
  const b = new Uint8Array(e.values.buffer, e.values.byteOffset, e.values.byteLength);
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  window.encoded[e.round] = btoa(s);
});
window.joined = true;
`;

async function sdkClient(page: Page, url: string): Promise<void> {
  await page.goto(`${url}/client/cohort-client.files.json`);
  await page.addScriptTag({ type: 'module', content: SDK_PAGE_SCRIPT(JOB, DEMO_MNIST.shardSize) });
  await page.waitForFunction(() => (window as unknown as { joined?: boolean }).joined === true, undefined, { timeout: 60_000 });
}

describe('browser client in headless Chromium', () => {
  let coordinator: Coordinator | undefined;
  let browser: Browser | undefined;
  const nodeClients = new Map<string, JsonLinesChild<NodeClientLine>>();
  const services: Service[] = [];

  beforeAll(async () => {
    await buildBrowser();
    captureSums();
    await selectBackend({ prefer: 'wasm' });
    browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] });
  });

  afterAll(async () => {
    for (const c of nodeClients.values()) c.child.kill();
    await browser?.close();
    await coordinator?.close();
    for (const s of services) await s.close();
  });

  it('the bundle build fails on a Node built-in imported by our code', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cohort-builtin-'));
    const entry = join(dir, 'entry.ts');
    writeFileSync(entry, `import { readFileSync } from 'node:fs';\nexport const read = readFileSync;\n`);
    const attempt = (file: string) => build({ entryPoints: [file], bundle: true, write: false, format: 'esm', platform: 'browser', logLevel: 'silent', plugins: [noNodeBuiltins()] });
    await expect(attempt(entry)).rejects.toThrow(/Node built-in "node:fs" imported by/);
    // A Node-only module of ours (client/node) pulled into a browser entry fails the same way.
    writeFileSync(entry, `export { loadDataset } from ${JSON.stringify(join(ROOT, 'client/node/load.ts'))};\n`);
    await expect(attempt(entry)).rejects.toThrow(/Node built-in "node:[a-z_]+" imported by client\/node\//);
  });

  it('2 pages and 2 Node clients finish a SecAgg + distributed-DP job; exact sums; a closed tab is a dropout; no long tasks', async () => {
    const config = parseJobConfig({
      id: JOB,
      model: MODEL,
      rounds: 3,
      seed: 7,
      sampling: { mode: 'fixed', cohortSize: 4 },
      minClients: 4,
      minSurvivors: 3,
      training: { epochs: 1, batchSize: 10, learningRate: 0.05 },
      evaluation: { every: 0 },
      timeouts: { trainMs: 90_000 },
      dp: { mode: 'distributed', noiseMultiplier: 0.001, clipNorm: 2 },
      secagg: { enabled: true, bits: 20, phaseTimeoutMs: 30_000 },
    });
    const debug = process.env.COHORT_TEST_LOG === '1';
    coordinator = await startCoordinator({ config, dataDir: mkdtempSync(join(tmpdir(), 'cohort-browser-')), ...(debug ? { logger: createLogger('info', 2) } : {}) });
    const url = coordinator.url;

    // Browser client 1: the demo page, filled in and clicked.
    const demo = await (await browser!.newContext()).newPage();
    const watch = (page: Page, name: string): void => {
      if (!debug) return;
      page.on('console', (m) => process.stderr.write(`${name}: ${m.text()}\n`));
      page.on('pageerror', (e) => process.stderr.write(`${name} error: ${e.message}\n`));
    };
    watch(demo, 'demo');
    await demo.addInitScript(() => {
      const w = window as unknown as { longTasks: { start: number; duration: number }[] };
      w.longTasks = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) w.longTasks.push({ start: e.startTime, duration: e.duration });
      }).observe({ type: 'longtask', buffered: true });
      const loaf = ((window as unknown as { loaf: unknown[] }).loaf = [] as unknown[]);
      new PerformanceObserver((list) => {
        for (const e of list.getEntries() as unknown as { startTime: number; duration: number; blockingDuration: number; scripts: { sourceURL: string; sourceFunctionName: string; invoker: string; duration: number }[] }[]) {
          if (e.blockingDuration > 0) loaf.push({ start: e.startTime, duration: e.duration, blocking: e.blockingDuration, scripts: e.scripts.map((x) => `${x.invoker} ${x.sourceFunctionName}@${x.sourceURL.split('/').pop()} ${Math.round(x.duration)}ms`) });
        }
      }).observe({ type: 'long-animation-frame', buffered: true });
    });
    await demo.goto(`${url}/client?test-hooks=1`);
    await demo.fill('#job', JOB);
    await demo.selectOption('#shard', '0');
    await demo.fill('#max-epsilon', '1000000000');
    await demo.click('#join');

    // Browser client 2: a page that imports the bundle itself.
    const sdk = await (await browser!.newContext()).newPage();
    watch(sdk, 'sdk');
    await sdkClient(sdk, url);

    // Two Node clients on the other shards, each in its own process.
    for (const k of [2, 3]) {
      const args = { url, clientId: `node-${k}`, digits: join(DIST, 'cohort-client.mnist.bin'), from: k * DEMO_MNIST.shardSize, count: DEMO_MNIST.shardSize };
      nodeClients.set(`node-${k}`, spawnJsonLines<NodeClientLine>(['--import', 'tsx', join(ROOT, 'test/integration/browser-node-client.ts'), JSON.stringify(args)]));
    }

    // Round 3: once the SDK page has begun training, close it (a tab closed mid-round).
    await sdk.waitForFunction(() => ((window as unknown as { trainingStarted: number[] }).trainingStarted ?? []).includes(3), undefined, { timeout: 120_000, polling: 20 });
    const sdkInputs = await sdk.evaluate(() => (window as unknown as { encoded: Record<number, string> }).encoded);
    await sdk.context().close();

    const summary = await coordinator.engine.whenFinished();
    expect(summary).toMatchObject({ status: 'completed', rounds: 3 });
    for (const [id, c] of nodeClients) {
      const exit = await c.exit;
      const events = c.lines.map((l) => (l.event === 'encoded' ? `encoded ${l.round}` : JSON.stringify(l)));
      expect({ id, exit, events }, c.stderr().slice(-2000)).toMatchObject({ exit: { code: 0 }, events: expect.arrayContaining([JSON.stringify({ event: 'job_end', status: 'completed', rounds: 3 })]) });
    }

    // The demo page says what happened, as text.
    await demo.waitForFunction(() => document.getElementById('s-phase')?.textContent === 'ended', undefined, { timeout: 10_000 });
    expect(await demo.textContent('#s-rounds')).toBe('3');
    expect(await demo.textContent('#s-backend')).toBe('wasm (SIMD)');
    expect(await demo.textContent('#s-floor')).toContain('ε ≤ 1000000000');
    expect(await demo.textContent('#s-epsilon')).toMatch(/spent → [\d.]+ after this round \(δ = /);
    expect(await demo.textContent('#s-privacy')).toContain('distributed DP');

    // Rounds 1 and 2 had all four; in round 3 the closed tab is a dropout and the round completed.
    const rounds = coordinator.store.listRounds(JOB);
    expect(rounds.map((r) => [r.round, r.survivors, r.dropouts])).toEqual([
      [1, 4, 0],
      [2, 4, 0],
      [3, 3, 1],
    ]);

    // Exact sums: unmasked sum = Σ encoded inputs of the included clients, mod 2^bits, every coordinate.
    const demoId = (await demo.textContent('#s-client'))!;
    const sdkId = [...sums.get(1)!.included].find((id) => id.startsWith('web-') && id !== demoId)!;
    expect(sums.get(3)!.included.sort()).toEqual([demoId, 'node-2', 'node-3'].sort());
    for (const round of [1, 2, 3]) {
      const { sum, included, bits } = sums.get(round)!;
      const inputs = await Promise.all(
        included.map(async (id) => {
          if (id === demoId) return fromBase64((await demo.evaluate((r) => (window as unknown as { cohortDemo: { encodedBase64(r: number): string } }).cohortDemo.encodedBase64(r), round))!);
          if (id === sdkId) return fromBase64(sdkInputs[round]);
          const line = nodeClients.get(id)!.lines.filter((l) => l.event === 'encoded' && l.round === round).at(-1)!;
          return fromBase64(line.values!);
        }),
      );
      const mask = 2 ** bits;
      let mismatches = 0;
      for (let i = 0; i < sum.length; i++) {
        let s = 0;
        for (const v of inputs) s += v[i];
        if (s % mask !== sum[i]) mismatches++;
      }
      expect(inputs.every((v) => v.length === sum.length)).toBe(true);
      expect(mismatches, `round ${round}`).toBe(0);
    }

    // The model changed and learned: held-out digits (never a client's) before and after.
    const before = initialWeights(MODEL, 7).weights;
    const after = coordinator.store.checkpoint(JOB, 3)!.weights;
    expect(after.some((w, i) => w !== before[i])).toBe(true);
    const heldOut = digits(DEMO_MNIST.shards * DEMO_MNIST.shardSize, DEMO_MNIST.heldOut);
    const [accBefore, accAfter] = [await accuracy(before, heldOut), await accuracy(after, heldOut)];
    if (debug) process.stderr.write(`held-out accuracy ${accBefore.toFixed(3)} → ${accAfter.toFixed(3)}\n`);
    expect(accAfter).toBeGreaterThan(accBefore + 0.2);

    // The device identity persists in IndexedDB: another page of the same browser profile reads the key the client id came from.
    const again = await demo.context().newPage();
    await again.goto(`${url}/client/cohort-client.files.json`);
    const stored = await again.evaluate(`(async () => {
      const { IdentityKeystore } = await import('/client/cohort-client.browser.js');
      const store = await IdentityKeystore.open();
      const key = await store.get('demo-shard-0');
      store.close();
      return key && key.seed.length === 32 ? Array.from(key.publicKey.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join('') : null;
    })()`);
    expect(`web-${stored}`).toBe(demoId);
    await again.close();

    // No main-thread task over 50 ms on the demo page while its worker trained the CNN (or at all after joining).
    const { longTasks, trainingMs, windows } = await demo.evaluate(() => {
      const w = window as unknown as { longTasks: { start: number; duration: number }[]; cohortDemo: { events: { at: number; line: string }[] } };
      const starts = w.cohortDemo.events.filter((e) => /^training round/.test(e.line)).map((e) => e.at);
      const ends = w.cohortDemo.events.filter((e) => /^trained round/.test(e.line)).map((e) => e.at);
      return { longTasks: w.longTasks, trainingMs: ends.reduce((s, t, i) => s + t - starts[i], 0), windows: starts.map((s, i) => [s, ends[i]]) };
    });
    if (debug) process.stderr.write(`demo page: ${trainingMs.toFixed(0)} ms of CNN training, long tasks: ${JSON.stringify(longTasks)}; long animation frames: ${JSON.stringify(await demo.evaluate(() => (window as unknown as { loaf: unknown }).loaf), null, 1)}\n`);
    expect(windows).toHaveLength(3);
    expect(trainingMs).toBeGreaterThan(0);
    const duringTraining = longTasks.filter((t) => windows.some(([from, to]) => t.start < to && t.start + t.duration > from));
    expect(duringTraining).toEqual([]);
    // The observer works: an 80 ms task of the page's own (a timer callback) is seen.
    await demo.evaluate(
      () =>
        new Promise<void>((done) =>
          setTimeout(() => {
            const until = performance.now() + 80;
            while (performance.now() < until);
            done();
          }, 0),
        ),
    );
    await demo.waitForFunction(() => (window as unknown as { longTasks: { duration: number }[] }).longTasks.some((t) => t.duration >= 80), undefined, { timeout: 5_000 });
  });

  it('cohort serve: a page joins a job by its id (its namespace), takes part, and an unknown job fails with UNKNOWN_JOB', async () => {
    const service = await startService({ dataDir: mkdtempSync(join(tmpdir(), 'cohort-browser-serve-')) });
    services.push(service);
    await service.submit(
      parseJobConfig({
        id: 'digits',
        model: { zoo: 'mlp', inputShape: [784], numClasses: 10 },
        rounds: 2,
        sampling: { mode: 'fixed', cohortSize: 1 },
        minClients: 1,
        training: { epochs: 1, batchSize: 10, learningRate: 0.05 },
        evaluation: { every: 0 },
      }),
    );
    const page = await (await browser!.newContext()).newPage();
    await page.goto(`${service.url}/client/cohort-client.files.json`);
    // The page's device enrols with a one-time token: its certificate and the CA that signed it are kept.
    const { token: enrolToken } = service.federation.createEnrolment({ clientId: 'web-enrolled', jobs: ['digits'], ttlMs: 600_000, actor: 'test' });
    const outcome = (await page.evaluate(`(async () => {
      const { join } = await import('/client/cohort-client.browser.js');
      const bytes = new Uint8Array(await (await fetch('/client/cohort-client.mnist.bin')).arrayBuffer());
      const n = 100, x = new Float32Array(n * 784), y = new Int32Array(n);
      for (let i = 0; i < n; i++) { for (let p = 0; p < 784; p++) x[i * 784 + p] = bytes[i * 785 + p] / 255; y[i] = bytes[i * 785 + 784]; }
      const client = await join({ job: 'digits', clientId: 'web-enrolled', data: { x, y, shape: [784] }, identity: { name: 'serve-test', enrolToken: ${JSON.stringify(enrolToken)} } });
      const end = await client.done;
      const { IdentityKeystore } = await import('/client/cohort-client.browser.js');
      const store = await IdentityKeystore.open();
      const kept = await store.get('serve-test');
      store.close();
      const lost = await join({ job: 'no-such-job', data: { x, y, shape: [784] }, identity: false, reconnect: { maxAttempts: 0 } });
      const failure = await lost.done.then(() => 'resolved', (e) => e.code);
      return { end, progress: client.progress, failure, failedPhase: lost.progress.phase, pinned: kept.caPublicKey, certifiedAs: JSON.parse(kept.certificate).clientId };
    })()`)) as { end: { status: string; rounds: number }; progress: { roundsTakenPart: number; phase: string; jobId: string }; failure: string; failedPhase: string; pinned: string; certifiedAs: string };
    // Pinned at enrolment: SecAgg neighbours of this device must show the same CA's certificates from now on.
    expect(outcome.pinned).toBe(toBase64Url(service.federation.authority!.publicKey));
    expect(outcome.certifiedAs).toBe('web-enrolled');
    expect(outcome.end).toEqual({ status: 'completed', rounds: 2 });
    expect(outcome.progress).toMatchObject({ roundsTakenPart: 2, phase: 'ended', jobId: 'digits' });
    expect(outcome.failure).toBe('UNKNOWN_JOB');
    expect(outcome.failedPhase).toBe('failed');

    // leave(): the connection closes and the coordinator no longer counts the client.
    await service.submit(parseJobConfig({ id: 'waiting', model: { zoo: 'logreg', inputShape: [784], numClasses: 10 }, rounds: 1, minClients: 2, evaluation: { every: 0 } }));
    const waiting = service.jobs.get('waiting')!.engine;
    await page.evaluate(`(async () => {
      const { join } = await import('/client/cohort-client.browser.js');
      const x = new Float32Array(10 * 784), y = Int32Array.from({ length: 10 }, (_, i) => i);
      window.waiting = await join({ job: 'waiting', data: { x, y, shape: [784] }, identity: false });
      await new Promise((r) => window.waiting.once('connected', r));
    })()`);
    expect(waiting.connectedClients).toBe(1);
    expect(await page.evaluate(`window.waiting.leave().then(() => window.waiting.progress.phase)`)).toBe('left');
    await expect.poll(() => waiting.connectedClients, { timeout: 10_000 }).toBe(0);
    // The demo page and the bundle are served by cohort serve too; nothing else under /client.
    const pageRes = await fetch(`${service.url}/client`);
    expect(pageRes.status).toBe(200);
    const csp = pageRes.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(await pageRes.text()).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    const bundle = await fetch(`${service.url}/client/cohort-client.browser.js`);
    expect([bundle.status, bundle.headers.get('content-type'), bundle.headers.get('access-control-allow-origin')]).toEqual([200, 'text/javascript; charset=utf-8', '*']);
    expect((await fetch(`${service.url}/client/package.json`)).status).toBe(404);
    expect((await fetch(`${service.url}/client/..%2Fpackage.json`)).status).toBe(404);
  });
});
