/**
 * The browser client, served by the coordinator on its HTTP port (`cohort server` and `cohort serve`):
 *
 *   GET /client          the demo page: pick an MNIST shard (or a CSV), join a job, watch it train
 *   GET /client/<file>   the bundle scripts/build-browser.ts wrote to dist/: cohort-client.browser.js
 *                        (what pages import), its worker, tfjs's wasm binaries, the demo's files
 *
 * Only the files the build listed in dist/cohort-client.files.json are served, so no other path of
 * the disk is reachable. They are public code (no token): any page may import the client, across
 * origins too (CORS). The demo page carries a Content-Security-Policy without inline scripts; the
 * worker's own policy allows WebAssembly compilation, which tfjs and Cohort's kernels need.
 */
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BROWSER_DIST = path.join(ROOT, 'dist');
const MANIFEST = 'cohort-client.files.json';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
  '.json': 'application/json; charset=utf-8',
};

/** The page's policy: scripts and styles from here only; sockets to here; the worker from here (or a blob across origins). */
const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self' ws: wss:",
  "worker-src 'self' blob:",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
/** The worker's policy (a worker's CSP comes from its own response): wasm compilation, fetches and sockets to here. */
const WORKER_CSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' ws: wss:";

const DEMO_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cohort — browser client</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/client/cohort-client.demo.css">
<script type="module" src="/client/cohort-client.demo.js"></script>
</head>
<body>
<main>
<h1>Cohort browser client</h1>
<p>This page trains on digits in your browser and sends only a clipped, noised and masked update.</p>
<form id="join-form">
  <fieldset>
    <legend>Job</legend>
    <label>Job id <input id="job" name="job" required maxlength="128" pattern="[A-Za-z0-9._\\-]+" autocomplete="off"></label>
  </fieldset>
  <fieldset>
    <legend>Data</legend>
    <label><input type="radio" name="source" value="shard" checked> MNIST demo shard
      <select id="shard" name="shard"></select></label>
    <label><input type="radio" name="source" value="csv"> CSV file (label column <code>label</code> or the last)
      <input id="csv" type="file" accept=".csv,text/csv"></label>
    <label>Example shape <input id="shape" name="shape" value="784" size="10"></label>
  </fieldset>
  <fieldset>
    <legend>Privacy floor</legend>
    <label><input id="require-dp" type="checkbox" checked> require differential privacy</label>
    <label><input id="forbid-central" type="checkbox"> refuse central DP</label>
    <label>largest ε <input id="max-epsilon" type="number" min="0" step="any" placeholder="none"></label>
    <label>smallest noise multiplier <input id="min-noise" type="number" min="0" step="any" placeholder="none"></label>
  </fieldset>
  <button id="join" type="submit">Join</button>
  <button id="leave" type="button" disabled>Leave</button>
</form>
<section aria-labelledby="status-title">
  <h2 id="status-title">Status</h2>
  <dl id="status">
    <dt>Phase</dt><dd id="s-phase">not joined</dd>
    <dt>Client</dt><dd id="s-client">—</dd>
    <dt>Training backend</dt><dd id="s-backend">—</dd>
    <dt>Examples</dt><dd id="s-examples">—</dd>
    <dt>Round</dt><dd id="s-round">—</dd>
    <dt>Rounds taken part in</dt><dd id="s-rounds">0</dd>
    <dt>Rounds refused</dt><dd id="s-refused">0</dd>
    <dt>Privacy floor</dt><dd id="s-floor">—</dd>
    <dt>Round privacy</dt><dd id="s-privacy">—</dd>
    <dt>ε announced</dt><dd id="s-epsilon">—</dd>
    <dt>Last evaluation</dt><dd id="s-eval">—</dd>
  </dl>
  <progress id="s-progress" max="1" value="0"></progress>
</section>
<section aria-labelledby="log-title">
  <h2 id="log-title">Events</h2>
  <ol id="log" aria-live="polite"></ol>
</section>
</main>
</body>
</html>
`;

function manifest(dist: string): Set<string> | undefined {
  const file = path.join(dist, MANIFEST);
  if (!existsSync(file)) return undefined;
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { files?: Record<string, number> };
  return new Set([MANIFEST, ...Object.keys(parsed.files ?? {})]);
}

function notBuilt(reply: FastifyReply): FastifyReply {
  return reply
    .status(404)
    .type('application/json')
    .send({ error: { code: 'API_NOT_FOUND', message: 'the browser client is not built on this coordinator: run `npm run build:browser`' } });
}

/** Registers /client and /client/<file> on the admin API's fastify app. */
export function registerBrowserClient(app: FastifyInstance, opts: { dist?: string } = {}): void {
  const dist = opts.dist ?? BROWSER_DIST;
  let files: Set<string> | undefined;
  const served = (): Set<string> | undefined => (files ??= manifest(dist));

  app.get('/client', (_req, reply) => {
    if (!served()) return notBuilt(reply);
    return reply
      .header('content-security-policy', PAGE_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', 'no-cache')
      .type('text/html; charset=utf-8')
      .send(DEMO_HTML);
  });

  app.get('/client/:file', (req, reply) => {
    const name = (req.params as { file: string }).file;
    const known = served();
    if (!known) return notBuilt(reply);
    if (!known.has(name)) {
      return reply.status(404).type('application/json').send({ error: { code: 'API_NOT_FOUND', message: `no file /client/${name.slice(0, 200)}` } });
    }
    const file = path.join(dist, name);
    const type = TYPES[path.extname(name)] ?? 'application/octet-stream';
    reply
      .header('access-control-allow-origin', '*')
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', 'no-cache')
      .header('content-length', statSync(file).size)
      .type(type);
    if (name === 'cohort-client.worker.js') reply.header('content-security-policy', WORKER_CSP);
    return reply.send(createReadStream(file));
  });
}
