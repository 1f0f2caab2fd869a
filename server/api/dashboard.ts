/**
 * The dashboard's static files on the admin API's port (issue 16): `GET /` is web/index.html and
 * `GET /assets/<file>` the bundle that scripts/build-web.ts wrote into dist/web (at `npm install` /
 * `npm run build`). Only files the build wrote are served (names checked against the directory, so no
 * path leaves it); every other path keeps the API's JSON not-found answer.
 *
 * Every answer carries a Content-Security-Policy that allows scripts, styles and connections from this
 * origin only (no inline script, no eval, no framing), nosniff and no referrer. The page itself holds
 * no data: it reads the admin API with the user's bearer token (web/api.ts).
 */
import { readdir, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { CohortError } from '../../shared/errors.ts';

/** Where scripts/build-web.ts writes the dashboard. */
export const DASHBOARD_DIR = resolve(import.meta.dirname, '../../dist/web');

export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

interface StaticFile {
  type: string;
  bytes: Buffer;
}

/** The built files, read once (a rebuild is served after a restart). */
async function readBuild(dir: string): Promise<Map<string, StaticFile>> {
  const files = new Map<string, StaticFile>();
  const add = async (urlPath: string, file: string) => {
    const ext = file.slice(file.lastIndexOf('.'));
    const type = TYPES[ext];
    if (type) files.set(urlPath, { type, bytes: await readFile(file) });
  };
  await add('/', resolve(dir, 'index.html'));
  for (const name of await readdir(resolve(dir, 'assets')).catch(() => [] as string[])) {
    if (/^[A-Za-z0-9._-]+$/.test(name)) await add(`/assets/${name}`, resolve(dir, 'assets', name));
  }
  return files;
}

function secured(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', DASHBOARD_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cache-control', 'no-cache');
}

/** Registers `GET /` and `GET /assets/:file` on the admin API (buildAdminApi calls it). */
export function registerDashboard(app: FastifyInstance, opts: { dir?: string } = {}): void {
  const dir = opts.dir ?? DASHBOARD_DIR;
  let build: Promise<Map<string, StaticFile>> | undefined;
  const serve = async (path: string, reply: FastifyReply) => {
    build ??= readBuild(dir).catch((err: NodeJS.ErrnoException) => {
      build = undefined; // not built yet: look again on the next request
      if (err.code === 'ENOENT') throw new CohortError('API_DASHBOARD_NOT_BUILT', `the dashboard is not built (no ${dir}/index.html): run npm run build:web`);
      throw err;
    });
    const file = (await build).get(path);
    if (!file) throw new CohortError('API_NOT_FOUND', `no route GET ${path.slice(0, 200)}`);
    return secured(reply).type(file.type).send(file.bytes);
  };
  app.get('/', (_req, reply) => serve('/', reply));
  app.get<{ Params: { file: string } }>('/assets/:file', (req, reply) => serve(`/assets/${req.params.file}`, reply));
}
