/**
 * `npm run bench -- browser [--json] [--models mlp,cnn] [--batch 10] [--repeats 3] [--mlp-examples 3000]
 *   [--cnn-examples 600]`
 *
 * The browser client's training speed next to Node's, in the same run, on the same real MNIST digits:
 * the zoo's 2NN (`mlp`) and CNN at batch B, one epoch at a time, in
 *   - headless Chromium (Debian's, via playwright-core): a module Web Worker running the client's
 *     stack — tfjs's wasm backend (SIMD binary where the browser has SIMD) with Cohort's kernels and
 *     the same LocalTrainer — as the browser client trains;
 *   - Node: this process, the wasm backend with Cohort's kernels, one thread.
 * Both are one core; the goal is browser ≥ 0.8 × Node per core. Then the bundle's sizes (raw
 * and gzip) as the coordinator serves them.
 *
 * With --json, stdout carries one JSON line per measurement:
 *   {"model","batch","runtime":"chromium-worker"|"node","backend":"wasm","simd","samplesPerSec","runs"}
 *   {"model","batch","browserOverNode"}
 *   {"file","bytes","gzipBytes"}
 * The same lines are written to bench/results/browser.json.
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs';
import { chromium } from 'playwright-core';
import { selectBackend } from '../client/train/backend.ts';
import { LocalTrainer } from '../client/train/trainer.ts';
import { initialWeights, type ModelSpec } from '../shared/model/index.ts';
import { buildBrowser, DIST, noNodeBuiltins, tfjsForTraining } from '../scripts/build-browser.ts';
import { loadMnist } from '../simulations/datasets/mnist.ts';
import { flagReaders } from './args.ts';
import { trainThroughput } from './browser.measure.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.join(here, 'results', 'browser.json');

const MODELS: Record<string, ModelSpec> = {
  mlp: { zoo: 'mlp', inputShape: [784], numClasses: 10 },
  cnn: { zoo: 'cnn', inputShape: [28, 28, 1], numClasses: 10 },
};

interface Options {
  json: boolean;
  models: string[];
  batch: number;
  repeats: number;
  examples: Record<string, number>;
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      json: { type: 'boolean', default: false },
      models: { type: 'string', default: 'mlp,cnn' },
      batch: { type: 'string', default: '10' },
      repeats: { type: 'string', default: '3' },
      'mlp-examples': { type: 'string', default: '3000' },
      'cnn-examples': { type: 'string', default: '600' },
    },
  });
  const { int, list } = flagReaders('browser');
  const models = list(values.models);
  for (const m of models) if (!MODELS[m]) throw new Error(`bench browser: unknown model "${m}" (known: ${Object.keys(MODELS).join(', ')})`);
  return {
    json: values.json,
    models,
    batch: int(values.batch, 'batch'),
    repeats: int(values.repeats, 'repeats'),
    examples: { mlp: int(values['mlp-examples'], 'mlp-examples'), cnn: int(values['cnn-examples'], 'cnn-examples') },
  };
}

function chromiumPath(): string {
  for (const p of ['/usr/bin/chromium', '/usr/bin/chromium-browser']) if (fs.existsSync(p)) return p;
  return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim();
}

/** Serves the bench page, its worker, the digits and tfjs's wasm binaries on 127.0.0.1 (a secure context). */
async function serve(files: Record<string, { body: Buffer | string; type: string }>): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const file = files[(req.url ?? '/').split('?')[0]];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(file.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

const asBuffer = (a: Float32Array | Int32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** The page's side: load the digits, hand them to the worker, return its answer. A string, run as is. */
const PAGE_SCRIPT = (model: string, spec: ModelSpec, batch: number, examples: number, repeats: number): string => `(async () => {
  const features = new Float32Array(await (await fetch('/features.bin')).arrayBuffer()).subarray(0, ${examples} * 784);
  const labels = new Int32Array(await (await fetch('/labels.bin')).arrayBuffer()).subarray(0, ${examples});
  const worker = new Worker('/worker.js', { type: 'module' });
  const answer = await new Promise((resolve) => {
    worker.onmessage = (e) => resolve(e.data);
    worker.onerror = (e) => resolve({ type: 'error', message: e.message });
    worker.postMessage({ type: 'train', spec: ${JSON.stringify(spec)}, batch: ${batch}, features, labels, warmup: ${Math.min(examples, 5 * batch)}, repeats: ${repeats}, wasmBase: location.origin + '/wasm/' });
  });
  worker.terminate();
  return answer;
})()`;

interface Line {
  [k: string]: unknown;
}

export async function run(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  const lines: Line[] = [];
  const emit = (l: Line): void => {
    lines.push(l);
    if (opts.json) process.stdout.write(`${JSON.stringify(l)}\n`);
  };
  process.stderr.write('building the browser client…\n');
  const { files: built } = await buildBrowser();
  const workerDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cohort-bench-browser-'));
  await build({
    entryPoints: [path.join(here, 'browser.worker.ts')],
    outfile: path.join(workerDir, 'worker.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    minify: true,
    logLevel: 'silent',
    plugins: [noNodeBuiltins(), tfjsForTraining()],
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const largest = Math.max(...opts.models.map((m) => opts.examples[m]));
  const { train } = loadMnist({ trainSize: largest, testSize: 0, seed: 3 });
  const wasmFiles = Object.keys(built).filter((f) => f.endsWith('.wasm'));
  const { server, url } = await serve({
    '/': { body: '<!doctype html><title>cohort browser bench</title>', type: 'text/html' },
    '/worker.js': { body: fs.readFileSync(path.join(workerDir, 'worker.js')), type: 'text/javascript' },
    '/features.bin': { body: asBuffer(train.features), type: 'application/octet-stream' },
    '/labels.bin': { body: asBuffer(train.labels), type: 'application/octet-stream' },
    ...Object.fromEntries(wasmFiles.map((f) => [`/wasm/${f}`, { body: fs.readFileSync(path.join(DIST, f)), type: 'application/wasm' }])),
  });
  const browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] });
  await selectBackend({ prefer: 'wasm' });
  const nodeSimd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  try {
    for (const model of opts.models) {
      const spec = MODELS[model];
      const examples = opts.examples[model];
      // Node: this process, one thread.
      const trainer = new LocalTrainer(spec);
      const node = await trainThroughput(trainer, initialWeights(spec, 1).weights, {
        spec,
        batch: opts.batch,
        features: train.features.subarray(0, examples * 784),
        labels: train.labels.subarray(0, examples),
        warmup: Math.min(examples, 5 * opts.batch),
        repeats: opts.repeats,
      });
      trainer.dispose();
      // Chromium: a fresh page and worker per model.
      const page = await browser.newPage();
      await page.goto(`${url}/`);
      const answer = (await page.evaluate(PAGE_SCRIPT(model, spec, opts.batch, examples, opts.repeats))) as { type: string; message?: string; samplesPerSec: number; runs: number[]; simd: boolean };
      await page.close();
      if (answer.type !== 'result') throw new Error(`bench browser: the worker failed on ${model}: ${answer.message}`);
      const round = (x: number): number => Math.round(x * 10) / 10;
      emit({ model, batch: opts.batch, runtime: 'chromium-worker', backend: 'wasm', simd: answer.simd, samplesPerSec: round(answer.samplesPerSec), runs: answer.runs.map(round) });
      emit({ model, batch: opts.batch, runtime: 'node', backend: 'wasm', simd: nodeSimd, samplesPerSec: round(node.samplesPerSec), runs: node.runs.map(round) });
      emit({ model, batch: opts.batch, browserOverNode: Math.round((answer.samplesPerSec / node.samplesPerSec) * 100) / 100 });
      process.stderr.write(`  ${model} B=${opts.batch}: Chromium worker ${answer.samplesPerSec.toFixed(0)} samples/s, Node ${node.samplesPerSec.toFixed(0)} samples/s\n`);
    }
  } finally {
    await browser.close();
    server.close();
    fs.rmSync(workerDir, { recursive: true, force: true });
  }
  for (const file of ['cohort-client.browser.js', 'cohort-client.worker.js', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm.wasm']) {
    const body = fs.readFileSync(path.join(DIST, file));
    emit({ file, bytes: body.length, gzipBytes: gzipSync(body, { level: 9 }).length });
  }
  if (!opts.json) {
    for (const l of lines) {
      if ('samplesPerSec' in l) console.log(`${String(l.model).padEnd(4)} B=${l.batch}  ${String(l.runtime).padEnd(16)} ${String(l.samplesPerSec).padStart(8)} samples/s`);
      else if ('browserOverNode' in l) console.log(`${String(l.model).padEnd(4)} B=${l.batch}  browser / Node   ${String(l.browserOverNode).padStart(8)}`);
      else console.log(`${String(l.file).padEnd(30)} ${(Number(l.bytes) / 1024).toFixed(0).padStart(6)} KiB  (gzip ${(Number(l.gzipBytes) / 1024).toFixed(0)} KiB)`);
    }
  }
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(RESULTS, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
}
