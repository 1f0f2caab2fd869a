/**
 * Model export: a version's flat weights → model.json + weights.bin, served by a real node:http server
 * on 127.0.0.1 and loaded back with `tf.loadLayersModel` over HTTP (tfjs CPU backend, Node's fetch).
 * The loaded weights must be the exported vector bit for bit, in order, and the loaded model must
 * predict what the project's own model (buildModel + setFlatWeights) predicts with the same weights.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel, manifestSize, manifestOf, setFlatWeights, type ModelSpec } from '../../shared/model/index.ts';
import { seededRng } from '../../shared/random.ts';
import { exportVersion, WEIGHTS_FILE } from './export.ts';

let server: Server;
let base: string;
/** What the server serves, by path; each case puts its artifact under its own folder. */
const files = new Map<string, { body: Uint8Array | string; type: string }>();

beforeAll(async () => {
  await tf.setBackend('cpu');
  server = createServer((req, res) => {
    const file = files.get(req.url ?? '');
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': file.type }).end(file.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function randomWeights(spec: ModelSpec, seed: number): Float32Array {
  const model = buildModel(spec);
  const n = manifestSize(manifestOf(model));
  model.dispose();
  const rng = seededRng(seed);
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = (2 * rng.next() - 1) * 0.5;
  return w;
}

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

const logregTopology = (() => {
  const m = buildModel({ zoo: 'logreg', inputShape: [6], numClasses: 4 });
  const json = m.toJSON(null, false) as Record<string, unknown>;
  m.dispose();
  return json;
})();

const CASES: [string, ModelSpec, number[]][] = [
  ['logreg', { zoo: 'logreg', inputShape: [4], numClasses: 3 }, [4]],
  ['logreg on images (flatten)', { zoo: 'logreg', inputShape: [5, 5, 1], numClasses: 3 }, [5, 5, 1]],
  ['mlp', { zoo: 'mlp', inputShape: [20], numClasses: 5 }, [20]],
  ['cnn', { zoo: 'cnn', inputShape: [12, 12, 1], numClasses: 4 }, [12, 12, 1]],
  ['a layers spec', { layers: logregTopology }, [6]],
];

describe('exportVersion → tf.loadLayersModel over HTTP', () => {
  CASES.forEach(([name, spec, inputShape], k) => {
    it(`${name}: the loaded weights are the vector bit for bit; predictions match the project's model`, async () => {
      const weights = randomWeights(spec, 100 + k);
      const { modelJson, weightsBin, manifest } = exportVersion({ model: spec }, weights);
      expect(modelJson.format).toBe('layers-model');
      expect(modelJson.weightsManifest).toHaveLength(1);
      expect(modelJson.weightsManifest[0].paths).toEqual([WEIGHTS_FILE]);
      expect(modelJson.weightsManifest[0].weights.map((w) => w.name)).toEqual(manifest.map((m) => m.name));
      expect(weightsBin.byteLength).toBe(weights.length * 4);

      const dir = `/case${k}`;
      files.set(`${dir}/model.json`, { body: JSON.stringify(modelJson), type: 'application/json' });
      files.set(`${dir}/${WEIGHTS_FILE}`, { body: weightsBin, type: 'application/octet-stream' });
      const loaded = await tf.loadLayersModel(`${base}${dir}/model.json`);
      const own = buildModel(spec);
      setFlatWeights(own, weights);
      try {
        // (a) every weight, in the model's order, bit for bit.
        expect(loaded.weights.map((w) => w.originalName)).toEqual(manifest.map((m) => m.name));
        const values = loaded.weights.map((w) => w.read().dataSync() as Float32Array);
        const flat = new Float32Array(values.reduce((n, v) => n + v.length, 0));
        values.reduce((off, v) => (flat.set(v, off), off + v.length), 0);
        expect(flat.length).toBe(weights.length);
        expect(Buffer.from(bits(flat).buffer, bits(flat).byteOffset, flat.byteLength).equals(Buffer.from(weights.buffer, weights.byteOffset, weights.byteLength))).toBe(true);

        // (b) the same predictions on a fixed batch.
        const rng = seededRng(7);
        const batch = 8;
        const size = inputShape.reduce((a, b) => a * b, 1);
        const xs = tf.tensor(Float32Array.from({ length: batch * size }, () => rng.next()), [batch, ...inputShape]);
        const got = (loaded.predict(xs) as tf.Tensor).dataSync();
        const want = (own.predict(xs) as tf.Tensor).dataSync();
        expect(got.length).toBe(want.length);
        let maxDiff = 0;
        for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
        expect(maxDiff).toBeLessThanOrEqual(1e-6);
        xs.dispose();
      } finally {
        loaded.dispose();
        own.dispose();
      }
    });
  });

  it('refuses a vector of the wrong length', () => {
    expect(() => exportVersion({ model: { zoo: 'logreg', inputShape: [4], numClasses: 3 } }, new Float32Array(14))).toThrow(/14 values, the model has 15/);
  });
});
