/**
 * The dashboard (issue 16) as a person uses it, in real headless Chromium (test/support/chromium.ts)
 * against a real `cohort serve` (server/service.ts) on 127.0.0.1 with real Socket.IO clients and SQLite:
 * a wrong token is refused at the sign-in; a viewer watches a central-DP job of 5 rounds and 3 clients
 * commit live (no reload) and its ε chart holds the ledger's values; the viewer gets no lifecycle or
 * promote control; an operator promotes a version and finds the audit row; hostile text in an audit
 * actor, an audit detail and a client id renders as text; axe-core finds no serious or critical
 * violation on any page; the page runs under its CSP without a violation. Screenshots of each page go to
 * test/artifacts/ (gitignored).
 */
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientEngine, type ClientTask } from '../../client/engine/index.ts';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import { parseJobConfig } from '../../server/round/config.ts';
import { startService, type Service } from '../../server/service.ts';
import { buildWeb } from '../../scripts/build-web.ts';
import { launchChromium } from '../support/chromium.ts';
import { addPredictions, emptySketch, emptyStats, metricsOf } from '../../shared/evaluation/index.ts';

const ARTIFACTS = resolve(import.meta.dirname, '../artifacts');
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const JOB = 'dp5';
const HOSTILE_ACTOR = '<img src=x onerror="window.__xss=1">';
const HOSTILE_REASON = '</code><script>window.__xss=2</script>';
const HOSTILE_CLIENT = '<b onmouseover="window.__xss=3">client</b>';

/** Reports a loss that falls and an accuracy that rises round after round (the quality chart has a shape). */
class QuickTask implements ClientTask {
  readonly numExamples = 10;
  private fits = 0;
  constructor(private readonly value: number) {}
  async fit() {
    this.fits++;
    return { delta: new Float32Array(18).fill(this.value), numExamples: 10, metrics: { loss: 0.7 / (1 + 0.4 * this.fits) + this.value, accuracy: Math.min(0.95, 0.55 + 0.07 * this.fits + this.value) } };
  }
  async evaluate() {
    return { numExamples: 5, loss: 0.7, accuracy: 0.6 };
  }
}

const job = (id: string, rounds: number, extra: Record<string, unknown> = {}) =>
  parseJobConfig({
    id,
    model: { zoo: 'logreg', inputShape: [8], numClasses: 2 },
    rounds,
    sampling: { mode: 'fixed', cohortSize: 3 },
    minClients: 3,
    timeouts: { trainMs: 30_000, retryDelayMs: 50 },
    dp: { mode: 'central', noiseMultiplier: 2, clipNorm: 1, budget: { epsilon: 50, delta: 1e-5 } },
    ...extra,
  });

let service: Service;
let browser: Browser;
const tokens = { viewer: '', operator: '', hostile: '' };
const engines: ClientEngine[] = [];
const contexts: BrowserContext[] = [];
/** Console errors and CSP violations seen on any page. */
const pageErrors: string[] = [];

async function openPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  contexts.push(context);
  const page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && pageErrors.push(m.text()));
  page.on('pageerror', (e) => pageErrors.push(e.message));
  return page;
}

async function signIn(page: Page, token: string, hash = ''): Promise<void> {
  await page.goto(`${service.url}/${hash}`);
  await page.fill('#token', token);
  await page.click('form.signin button[type=submit]');
  await page.waitForSelector('[data-testid=whoami]');
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `dashboard-${name}.png`), fullPage: true });
}

/** axe-core's serious and critical violations on the page as it is now. */
async function axeViolations(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol, which the page's CSP does not govern (no inline <script>).
  await page.evaluate(AXE_SOURCE);
  const found = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: Document, opts: unknown): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, where: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  return found.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}) at ${v.where.join(', ')}`);
}

interface Notice {
  kind: string;
  data: Record<string, unknown>;
}

/**
 * GET /api/v1/events read from Node: `next()` is the next notice (heartbeats skipped), null once the
 * stream ended. On node:http with one socket per stream (agent: false), destroyed by `close()`: Node's
 * fetch (undici) re-opens a pooled connection for each stream it aborts and leaves it idle, and 64 idle
 * connections from 127.0.0.1 fill the server's per-address cap on opening connections
 * (server/transport/opening.ts) for a minute, refusing the Chromium pages that come after.
 */
async function openStream(token: string, query = '') {
  const req = httpGet(`${service.url}/api/v1/events${query}`, { headers: { authorization: `Bearer ${token}` }, agent: false });
  const res = await new Promise<IncomingMessage>((resolve, reject) => req.once('response', resolve).once('error', reject));
  const body = res.statusCode === 200 ? res[Symbol.asyncIterator]() : undefined;
  const decoder = new TextDecoder();
  let buffer = '';
  const next = async (): Promise<Notice | null> => {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const kind = /^event: (.*)$/m.exec(frame)?.[1];
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (kind && data) return { kind, data: JSON.parse(data) as Record<string, unknown> };
        continue;
      }
      const chunk = await body!.next().catch(() => ({ done: true as const, value: undefined }));
      if (chunk.done) return null;
      buffer += decoder.decode(chunk.value as Buffer, { stream: true });
    }
  };
  const json = async () => {
    let text = '';
    for await (const chunk of res) text += String(chunk);
    return JSON.parse(text) as { error: { code: string } };
  };
  return { status: res.statusCode ?? 0, contentType: res.headers['content-type'] ?? '', json, next, close: () => req.destroy() };
}

const post = (path: string, token: string, body: unknown = {}) =>
  fetch(`${service.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

function joinClients(ids: string[]): void {
  ids.forEach((clientId, i) => {
    const e = new ClientEngine({ clientId, task: new QuickTask(0.01 * (i + 1)), transport: new SocketIoClientTransport({ url: `${service.url}/jobs/${JOB}`, reconnect: { initialDelayMs: 100, maxDelayMs: 300 } }) });
    e.start();
    engines.push(e);
  });
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  await buildWeb(); // the test serves what the sources build now, whether or not dist/ existed
  service = await startService({ dataDir: mkdtempSync(join(tmpdir(), 'cohort-dashboard-')) });
  tokens.viewer = service.store.createToken({ name: 'vera-viewer', role: 'viewer' }).token;
  tokens.operator = service.store.createToken({ name: 'otto-operator', role: 'operator' }).token;
  tokens.hostile = service.store.createToken({ name: HOSTILE_ACTOR, role: 'operator' }).token;
  // A promotion gate that the last version (ε ≈ 12.3 after 5 rounds) fails and the ones before pass.
  await service.submit(job(JOB, 5, { promote: { maxEpsilon: 11 } }));
  await service.submit(job('waiting', 3)); // never gets clients: stays running, so it can be paused
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  // The service closes first, with dashboard pages still open and following the event stream: that
  // must not hold it open (server/api/app.ts ends the streams as the HTTP server closes).
  for (const e of engines) e.stop();
  const closing = Date.now();
  await service?.close();
  if (service) expect(Date.now() - closing).toBeLessThan(10_000);
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
});

describe('dashboard in headless Chromium', () => {
  it('serves the page with a CSP without inline scripts, and keeps JSON not-found answers for the API', async () => {
    const res = await fetch(`${service.url}/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    expect(html).not.toMatch(/<script>(?!<\/script>)|<script(?![^>]*\bsrc=)[^>]*>[^<]/); // no inline script body
    const missing = await fetch(`${service.url}/api/v1/nope`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('API_NOT_FOUND');
    expect((await fetch(`${service.url}/assets/../../package.json`)).status).toBe(404);
    // The live feed needs a token like every other route.
    expect((await fetch(`${service.url}/api/v1/events`)).status).toBe(401);
  });

  it('refuses a wrong token at the sign-in with a clear message', async () => {
    const page = await openPage();
    await page.goto(`${service.url}/`);
    await page.fill('#token', 'cht_not-a-real-token');
    await page.click('form.signin button[type=submit]');
    await expect.poll(() => page.textContent('#signin-error'), { timeout: 5000 }).toMatch(/unknown or revoked/);
    expect(await page.evaluate(() => sessionStorage.getItem('cohort.token'))).toBeNull();
    await shot(page, 'signin');
    expect(await axeViolations(page)).toEqual([]);
  });

  it('shows a viewer the rounds committing live, an ε chart equal to the ledger, and no lifecycle or promote control', async () => {
    const page = await openPage();
    await signIn(page, tokens.viewer, `#/jobs/${JOB}`);
    expect(await page.textContent('[data-testid=whoami]')).toContain('viewer');
    await page.waitForSelector(`article.job[data-committed-round="0"]`);
    // A marker a reload would lose.
    await page.evaluate(() => ((window as unknown as { __marker: number }).__marker = 42));
    const committedAt: number[] = [];
    service.jobs.get(JOB)!.engine.on('round', () => committedAt.push(Date.now()));
    joinClients(['alice', 'bob', 'carol']);
    // Round 1 shows up within 2 s of its commit, without a reload.
    await page.waitForSelector('article.job:not([data-committed-round="0"])', { timeout: 20_000 });
    const finished = await service.jobs.get(JOB)!.engine.whenFinished();
    expect(finished.status).toBe('completed');
    const lastCommit = committedAt[committedAt.length - 1];
    await page.waitForSelector('article.job[data-committed-round="5"][data-status="completed"]', { timeout: 2000 });
    const seenAfter = Date.now() - lastCommit;
    expect(seenAfter).toBeLessThan(2000);
    console.log(`dashboard: the last round showed ${seenAfter} ms after its commit`);
    expect(await page.evaluate(() => (window as unknown as { __marker?: number }).__marker)).toBe(42);

    // The ε chart's five points are the ledger's committed rows.
    const ledger = service.store.listLedger(JOB).filter((r) => r.status === 'committed');
    expect(ledger).toHaveLength(5);
    await expect.poll(async () => JSON.parse((await page.getAttribute('[data-testid=epsilon-chart]', 'data-points')) ?? '[]'), { timeout: 2000 }).toHaveLength(5);
    const points = JSON.parse((await page.getAttribute('[data-testid=epsilon-chart]', 'data-points'))!) as [number, number][];
    expect(points).toEqual(ledger.map((r) => [r.round, r.epsilon]));
    expect(Number(await page.getAttribute('[data-testid=epsilon-chart]', 'data-budget'))).toBe(50);
    // Participation: every round's three sampled clients survived, as the store recorded them.
    const counts = JSON.parse((await page.getAttribute('[data-testid=participation-chart]', 'data-counts'))!) as { round: number; completed: number; dropped: number }[];
    expect(counts).toEqual(service.store.roundParticipation(JOB));
    expect(counts.map((c) => [c.round, c.completed, c.dropped])).toEqual([1, 2, 3, 4, 5].map((r) => [r, 3, 0]));
    // The job's clients, each in all five rounds, none dropped.
    const clientRows = await page.$$eval('[data-testid=clients-table] tbody tr', (trs) => trs.map((tr) => [tr.getAttribute('data-client'), tr.children[2].textContent, tr.children[3].textContent]));
    expect(clientRows).toHaveLength(3);
    expect(clientRows).toEqual(expect.arrayContaining(['alice', 'bob', 'carol'].map((id) => [id, '5', '0'])));
    // Each one's identity: its id bound to its key on first use (loopback), active.
    const identities = await page.$$eval('[data-testid=clients-table] tbody tr [data-identity]', (spans) => spans.map((s) => s.textContent));
    expect(identities).toEqual(['active (first-use)', 'active (first-use)', 'active (first-use)']);
    // Hovering the chart shows that round's ledger row.
    const over = (await page.$('[data-testid=epsilon-chart] .u-over'))!;
    const box = (await over.boundingBox())!;
    await page.mouse.move(box.x + 2, box.y + box.height / 2);
    await expect.poll(() => page.getAttribute('[data-testid=ledger-readout]', 'data-round')).toBe('1');
    expect(await page.textContent('[data-testid=ledger-readout]')).toContain(ledger[0].trust);
    await page.mouse.move(box.x + box.width * 0.75, box.y + box.height / 2);
    await expect.poll(() => page.getAttribute('[data-testid=ledger-readout]', 'data-round')).toBe('4');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-readme.png') }); // the README's (docs/dashboard.png)

    // The ledger table sorts; its CSV holds every row.
    await page.click('[data-testid=ledger-table] button[data-sort=epsilon]');
    expect(await page.getAttribute('[data-testid=ledger-table] th:has(button[data-sort=epsilon])', 'aria-sort')).toBe('ascending');
    const [csv] = await Promise.all([page.waitForEvent('download'), page.click('button[data-action=ledger-csv]')]);
    const lines = readFileSync((await csv.path())!, 'utf8').trim().split(/\r\n/);
    expect(lines).toHaveLength(1 + service.store.listLedger(JOB).length);
    expect(lines[0].split(',')).toContain('noiseMultiplier');

    // No lifecycle or promote control for a viewer, here or on the overview.
    expect(await page.$$('button[data-action=pause], button[data-action=resume], button[data-action=stop], button[data-action=promote], button[data-action=rollback]')).toHaveLength(0);
    await page.mouse.move(0, 0);
    await shot(page, 'job');
    expect(await axeViolations(page)).toEqual([]);
    await page.click('nav a[href="#/"]');
    await page.waitForSelector(`[data-testid=jobs-table] tr[data-job="${JOB}"]`);
    expect(await page.$$('button[data-action=pause], button[data-action=resume], button[data-action=stop]')).toHaveLength(0);
    expect(await page.textContent(`[data-testid=jobs-table] tr[data-job="${JOB}"]`)).toContain('5 of 5');
    await shot(page, 'jobs');
    expect(await axeViolations(page)).toEqual([]);
    // The API refuses the viewer too (the page only hides what the server enforces).
    const denied = (await fetch(`${service.url}/api/v1/jobs/${JOB}/versions/5/promote`, { method: 'POST', headers: { authorization: `Bearer ${tokens.viewer}`, 'content-type': 'application/json' }, body: '{}' })).status;
    expect(denied).toBe(403);
  }, 60_000);

  it('marks a drift alert on the quality chart and lists it under the chart', async () => {
    // The store holds what the round engine writes when an evaluation crosses a drift threshold
    // (test/integration/model-health.test.ts raises one over Socket.IO); this test is about the page.
    const stats = addPredictions(emptyStats(2), [0.9, 0.1, 0.2, 0.8], [0, 1]);
    const REASON = 'PSI 0.412 on band 1 > 0.25 <i>not markup</i>';
    service.store.recordEvaluation(JOB, 3, {
      loss: 0.2,
      accuracy: 1,
      numExamples: 2,
      clients: 3,
      kind: 'federated',
      health: { stats, metrics: metricsOf(stats)!, clients: 3, drift: { sketch: emptySketch(2, { features: 1, bins: 2, lo: 0, hi: 1 }), alert: REASON, reference: { evaluations: 2, of: 2 } } },
    });
    const page = await openPage();
    await signIn(page, tokens.viewer, `#/jobs/${JOB}`);
    await page.waitForSelector('[data-testid=drift-alerts] li');
    expect(JSON.parse((await page.getAttribute('[data-testid=quality-chart]', 'data-drift-rounds'))!)).toEqual([3]);
    expect(await page.textContent('[data-testid=drift-alerts]')).toBe(`Drift alert at round 3: ${REASON}`);
    expect(await page.getAttribute('[data-testid=quality-chart] [role=img]', 'aria-label')).toContain(`drift alert at round 3: ${REASON}`);
    expect(await page.$('[data-testid=drift-alerts] i')).toBeNull();
    // The marker is drawn: the canvas has the marker's colour (#c2185b) in the column of round 3.
    const marked = await page.$eval('[data-testid=quality-chart] canvas', (c) => {
      const canvas = c as HTMLCanvasElement;
      const g = canvas.getContext('2d')!;
      const { data } = g.getImageData(0, 0, canvas.width, canvas.height);
      let n = 0;
      for (let i = 0; i < data.length; i += 4) if (Math.abs(data[i] - 0xc2) < 8 && Math.abs(data[i + 1] - 0x18) < 8 && Math.abs(data[i + 2] - 0x5b) < 8) n++;
      return n;
    });
    expect(marked).toBeGreaterThan(50);
    expect(await axeViolations(page)).toEqual([]);
    await page.close();
  }, 60_000);

  it('lets an operator promote a version (confirmed), pause and resume a job, and find the audit rows', async () => {
    const page = await openPage();
    await signIn(page, tokens.operator, `#/jobs/${JOB}`);
    await page.waitForSelector('[data-testid=versions-table] tr[data-round="4"] button[data-action=promote]');
    // The gates column: version 5 fails maxEpsilon, version 4 passes.
    expect(await page.textContent('[data-testid=versions-table] tr[data-round="5"] td:nth-child(6)')).toBe('failed: maxEpsilon');
    expect(await page.textContent('[data-testid=versions-table] tr[data-round="4"] td:nth-child(6)')).toBe('passed');
    // Cancelling the confirmation changes nothing.
    await page.click('[data-testid=versions-table] tr[data-round="4"] button[data-action=promote]');
    await page.click('dialog[open] button[data-action=cancel]');
    expect(service.store.productionTag(JOB)).toBeUndefined();
    await page.click('[data-testid=versions-table] tr[data-round="4"] button[data-action=promote]');
    await page.click('dialog[open] button[data-action=confirm]');
    await page.waitForSelector('[data-testid=versions-table] tr[data-round="4"] .badge-production');
    expect(service.store.productionTag(JOB)).toMatchObject({ round: 4, actor: 'otto-operator' });
    await page.click('[data-testid=versions-table] tr[data-round="4"] button[data-action=card]');
    expect(await page.textContent('[data-testid=model-card]')).toMatch(/ε|epsilon/i);
    await shot(page, 'job-operator');
    // Pause and resume a running job from the overview.
    await page.click('nav a[href="#/"]');
    const waiting = '[data-testid=jobs-table] tr[data-job="waiting"]';
    await page.click(`${waiting} button[data-action=pause]`);
    await page.waitForSelector(`${waiting} .badge-paused`);
    expect(service.jobs.get('waiting')!.engine.status).toBe('paused');
    expect(await page.isDisabled(`${waiting} button[data-action=pause]`)).toBe(true);
    await page.click(`${waiting} button[data-action=resume]`);
    await page.waitForSelector(`${waiting} .badge-running`);
    expect(service.jobs.get('waiting')!.engine.status).not.toBe('paused');
    await shot(page, 'jobs-operator');
    await page.click('nav a[href="#/audit"]');
    const row = page.locator('[data-testid=audit-table] tr[data-action="version.promote"]', { hasText: 'otto-operator' });
    await row.first().waitFor({ timeout: 5000 });
    expect(await row.first().textContent()).toContain(`${JOB}/4`);
    for (const action of ['job.pause', 'job.resume']) await page.locator(`[data-testid=audit-table] tr[data-action="${action}"]`, { hasText: 'otto-operator' }).first().waitFor({ timeout: 5000 });
    // The filters narrow the log.
    await page.fill('#audit-actor', 'otto-operator');
    await page.click('form.filters button[type=submit]');
    await expect.poll(async () => (await page.$$eval('[data-testid=audit-table] tbody tr td:nth-child(3)', (tds) => [...new Set(tds.map((t) => t.textContent))]))).toEqual(['otto-operator']);
    await shot(page, 'audit');
    expect(await axeViolations(page)).toEqual([]);
  }, 60_000);

  it('streams live notices while the token is valid, filtered by job on request, and caps open streams', async () => {
    const reader = service.store.createToken({ name: 'stream-reader', role: 'viewer' });
    const all = await openStream(reader.token);
    expect(all.status).toBe(200);
    expect(all.contentType).toMatch(/^text\/event-stream/);
    expect(await all.next()).toMatchObject({ kind: 'hello', data: { jobs: expect.arrayContaining([JOB, 'waiting']) } });
    const onlyDp5 = await openStream(reader.token, `?job=${JOB}`);
    expect(await onlyDp5.next()).toMatchObject({ kind: 'hello', data: { job: JOB } });

    // An operator pauses 'waiting': the engine's pause and the API's lifecycle change both arrive.
    expect((await post('/api/v1/jobs/waiting/pause', tokens.operator)).status).toBe(200);
    const two = [await all.next(), await all.next()];
    expect(two.map((n) => `${n?.kind}:${String(n?.data.job)}`).sort()).toEqual(['lifecycle:waiting', 'paused:waiting']);
    // The dp5 stream skipped both: the first notice it gets is dp5's promotion.
    expect((await post(`/api/v1/jobs/${JOB}/versions/3/promote`, tokens.operator)).status).toBe(200);
    expect(await onlyDp5.next()).toMatchObject({ kind: 'version', data: { job: JOB, action: 'promote', round: 3, actor: 'otto-operator' } });
    expect(await all.next()).toMatchObject({ kind: 'version', data: { job: JOB } });

    // Revoked: both streams end at the next notice instead of receiving it.
    service.store.revokeToken('stream-reader');
    expect((await post('/api/v1/jobs/waiting/resume', tokens.operator)).status).toBe(200);
    expect(await all.next()).toBeNull();
    expect(await onlyDp5.next()).toBeNull();

    // At most 64 streams at once; the next is refused with a typed error until one closes.
    const open: Awaited<ReturnType<typeof openStream>>[] = [];
    let refused: Awaited<ReturnType<typeof openStream>> | undefined;
    for (let i = 0; i < 65 && !refused; i++) {
      const s = await openStream(tokens.viewer);
      if (s.status === 200) open.push(s);
      else refused = s;
    }
    expect(refused?.status).toBe(503);
    expect((await refused!.json()).error.code).toBe('API_STREAMS_FULL');
    for (const s of open) s.close();
    await expect.poll(async () => {
      const s = await openStream(tokens.viewer);
      s.close();
      return s.status;
    }, { timeout: 5000 }).toBe(200);
  });

  it('renders hostile text (an audit actor and detail, a client id) as text', async () => {
    // A token named like markup pauses a job with a reason that closes a tag and opens a script.
    const res = await fetch(`${service.url}/api/v1/jobs/waiting/pause`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.hostile}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: HOSTILE_REASON }),
    });
    expect(res.status).toBe(200);
    // The wire protocol refuses such a client id (letters, digits, . _ : @ -), so its participation is
    // written to the store directly: a stand-in for a hostile or legacy row the page must show as text.
    service.store.recordParticipation('waiting', 1, [{ clientId: HOSTILE_CLIENT, status: 'dropped' }]);
    const page = await openPage();
    await signIn(page, tokens.operator, '#/audit');
    const cell = page.locator('[data-testid=audit-table] td', { hasText: 'onerror' });
    await cell.first().waitFor();
    expect(await cell.first().textContent()).toBe(HOSTILE_ACTOR);
    expect(await page.locator('[data-testid=audit-table] code.details', { hasText: 'window.__xss=2' }).first().textContent()).toContain(HOSTILE_REASON);
    await page.goto(`${service.url}/#/jobs/waiting`);
    await page.waitForSelector('[data-testid=clients-table]');
    expect(await page.locator('[data-testid=clients-table] td span.mono', { hasText: 'onmouseover' }).first().textContent()).toBe(HOSTILE_CLIENT);
    expect(await page.textContent('article.job .reason')).toContain(HOSTILE_REASON);
    // A job that has not committed yet still shows what its first round would cost, as the API projects it.
    const projected = ((await (await fetch(`${service.url}/api/v1/jobs/waiting/ledger`, { headers: { authorization: `Bearer ${tokens.viewer}` } })).json()) as { nextRound: { epsilon: number } }).nextRound.epsilon;
    expect(projected).toBeGreaterThan(0);
    expect(Number(await page.getAttribute('[data-testid=epsilon-chart]', 'data-projected'))).toBe(projected);
    expect(await page.getAttribute('[data-testid=epsilon-chart]', 'data-points')).toBe('[]');
    expect(await page.$$('main img, main script, main b')).toHaveLength(0);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    await shot(page, 'job-paused');
    expect(await axeViolations(page)).toEqual([]);
  }, 60_000);

  it('returns an open page to the sign-in when its token is revoked', async () => {
    const shortLived = service.store.createToken({ name: 'short-lived', role: 'viewer' });
    const page = await openPage();
    await signIn(page, shortLived.token, `#/jobs/${JOB}`);
    await page.waitForSelector('article.job[data-committed-round="5"]');
    service.store.revokeToken('short-lived');
    // The next notice ends the revoked token's stream; the page's reconnection is refused.
    expect((await post('/api/v1/jobs/waiting/resume', tokens.operator)).status).toBe(200);
    await page.waitForSelector('form.signin', { timeout: 10_000 });
    expect(await page.textContent('#signin-error')).toMatch(/revoked/);
    expect(await page.evaluate(() => sessionStorage.getItem('cohort.token'))).toBeNull();
  });

  it('signs out to the sign-in and forgets the token; nothing broke the CSP on any page', async () => {
    const page = await openPage();
    await signIn(page, tokens.viewer);
    await page.click('button[data-action=sign-out]');
    await page.waitForSelector('form.signin');
    expect(await page.evaluate(() => sessionStorage.getItem('cohort.token'))).toBeNull();
    expect(pageErrors.filter((e) => !/401 \(Unauthorized\)/.test(e))).toEqual([]);
  });
});
