/**
 * The browser bench's Web Worker (bundled by bench/browser.ts, not shipped): trains the zoo's 2NN or
 * CNN with the browser client's stack — tfjs's wasm backend with Cohort's kernels, the same
 * LocalTrainer — and reports samples/s. Messages: {type:'train', model, batch, features, labels,
 * repeats, wasmBase} → {type:'result', samplesPerSec, runs, simd} | {type:'error', message}.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { selectBackend } from '../client/train/backend.ts';
import { LocalTrainer } from '../client/train/trainer.ts';
import { initialWeights, type ModelSpec } from '../shared/model/index.ts';
import { trainThroughput } from './browser.measure.ts';

interface TrainRequest {
  type: 'train';
  spec: ModelSpec;
  batch: number;
  features: Float32Array;
  labels: Int32Array;
  warmup: number;
  repeats: number;
  wasmBase: string;
}

const scope = globalThis as unknown as { postMessage(m: unknown): void; addEventListener(t: 'message', l: (e: MessageEvent<TrainRequest>) => void): void };

scope.addEventListener('message', (event) => {
  const req = event.data;
  void (async () => {
    try {
      setWasmPaths(req.wasmBase);
      await selectBackend({ prefer: 'wasm' });
      const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
      const trainer = new LocalTrainer(req.spec);
      const { weights } = initialWeights(req.spec, 1);
      const result = await trainThroughput(trainer, weights, req);
      trainer.dispose();
      scope.postMessage({ type: 'result', simd, ...result });
    } catch (err) {
      scope.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) });
    }
  })();
});
