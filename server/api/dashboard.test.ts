/**
 * The dashboard's static serving (server/api/dashboard.ts) over real HTTP on 127.0.0.1: before a build
 * a typed 503 that says how to build it; after, the page and its assets with the security headers; a
 * name outside what the build wrote, or one that tries to leave the directory, is the API's JSON 404.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { CohortError, httpStatus } from '../../shared/errors.ts';
import { registerDashboard } from './dashboard.ts';

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

/** A fastify app with the dashboard routes and the admin API's error shape, listening on loopback. */
async function serve(dir: string): Promise<string> {
  const app = Fastify({ logger: false });
  apps.push(app);
  app.setErrorHandler((err: Error, _req, reply) =>
    err instanceof CohortError ? reply.status(httpStatus(err)).send({ error: { code: err.code, message: err.message } }) : reply.status(500).send({ error: { code: 'INTERNAL', message: 'internal error' } }),
  );
  app.setNotFoundHandler((_req, reply) => reply.status(404).send({ error: { code: 'API_NOT_FOUND', message: 'no route' } }));
  registerDashboard(app, { dir });
  return app.listen({ port: 0, host: '127.0.0.1' });
}

describe('dashboard static files', () => {
  it('answers 503 API_DASHBOARD_NOT_BUILT before the build, then serves the build once it exists', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'cohort-web-')), 'web');
    const url = await serve(dir);
    const before = await fetch(`${url}/`);
    expect(before.status).toBe(503);
    const body = (await before.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('API_DASHBOARD_NOT_BUILT');
    expect(body.error.message).toContain('npm run build:web');

    mkdirSync(join(dir, 'assets'), { recursive: true });
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>');
    writeFileSync(join(dir, 'assets', 'app.js'), 'console.log(1)');
    writeFileSync(join(dir, 'assets', 'notes.txt'), 'not a served type');
    writeFileSync(join(dir, 'secret.js'), 'outside assets');
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(page.headers.get('content-security-policy')).not.toMatch(/unsafe/);
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(await page.text()).toContain('<title>t</title>');
    const js = await fetch(`${url}/assets/app.js`);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await js.text()).toBe('console.log(1)');
    for (const path of ['/assets/notes.txt', '/assets/missing.js', '/assets/..%2Fsecret.js', '/assets/%2e%2e/secret.js', '/secret.js', '/index.html']) {
      const res = await fetch(`${url}${path}`);
      expect(res.status, path).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code, path).toBe('API_NOT_FOUND');
    }
  });
});
