/**
 * `npm run build:web` (also run by `npm run build` and so by `npm install` / `npm ci` through
 * `prepare`): bundles the dashboard (web/) with esbuild into dist/web — index.html, assets/app.js (one
 * minified ES module: our code and uPlot) and assets/app.css (ours and uPlot's). No CDN: the coordinator
 * serves these files itself (server/api/dashboard.ts), so the dashboard works offline.
 *
 * `buildWeb()` is also called by the dashboard tests and bench when dist/web is missing or stale.
 */
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const ROOT = resolve(import.meta.dirname, '..');
export const WEB_SRC = resolve(ROOT, 'web');
export const WEB_OUT = resolve(ROOT, 'dist/web');

export interface WebBuild {
  outDir: string;
  /** Bytes of the JavaScript bundle, raw and gzipped (level 9). */
  jsBytes: number;
  jsGzipBytes: number;
  cssBytes: number;
}

export async function buildWeb(opts: { outDir?: string } = {}): Promise<WebBuild> {
  const outDir = opts.outDir ?? WEB_OUT;
  await rm(outDir, { recursive: true, force: true });
  await mkdir(resolve(outDir, 'assets'), { recursive: true });
  await build({
    entryPoints: { app: resolve(WEB_SRC, 'main.ts') },
    outdir: resolve(outDir, 'assets'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
    minify: true,
    sourcemap: false,
    legalComments: 'eof',
    logLevel: 'silent',
  });
  await build({
    entryPoints: { app: resolve(WEB_SRC, 'app.css') },
    outdir: resolve(outDir, 'assets'),
    bundle: true,
    minify: true,
    logLevel: 'silent',
  });
  await copyFile(resolve(WEB_SRC, 'index.html'), resolve(outDir, 'index.html'));
  const js = await readFile(resolve(outDir, 'assets/app.js'));
  const css = await readFile(resolve(outDir, 'assets/app.css'));
  return { outDir, jsBytes: js.length, jsGzipBytes: gzipSync(js, { level: 9 }).length, cssBytes: css.length };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await buildWeb();
  console.log(`dashboard built into ${out.outDir}: app.js ${(out.jsBytes / 1024).toFixed(1)} KB (${(out.jsGzipBytes / 1024).toFixed(1)} KB gzipped), app.css ${(out.cssBytes / 1024).toFixed(1)} KB`);
}
