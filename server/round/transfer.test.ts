/**
 * A transfer job's config and base (issue 19): bad freeze names are a ConfigError naming the model's
 * layers; a base from a tfjs artifact on disk (here our own int8 export) fills the layers it has by name
 * and shape, a new head keeps its seeded values, and a frozen layer the base lacks is refused.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../shared/errors.ts';
import { decodeWeights, initialWeights } from '../../shared/model/index.ts';
import { exportVersion } from '../ops/export.ts';
import { CohortStore } from '../store/index.ts';
import { parseJobConfig } from './config.ts';
import { initialJobWeights, selectionOf } from './transfer.ts';
import { modelLayers } from '../../shared/model/index.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const CNN = { zoo: 'cnn' as const, inputShape: [12, 12, 1], numClasses: 4 };

describe('transfer config', () => {
  it('refuses unknown freeze or trainableFrom names with a ConfigError that lists the layers', () => {
    const bad = () => parseJobConfig({ model: CNN, transfer: { base: { job: 'x' }, freeze: ['conv1', 'conv3'] } });
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(/transfer\.freeze: .*no layer 'conv3'; the model's layers are conv1, pool1, conv2, pool2, flatten, fc1, output/);
    expect(() => parseJobConfig({ model: CNN, transfer: { base: { job: 'x' }, trainableFrom: 'fc9' } })).toThrow(/trainableFrom: no layer 'fc9'/);
    expect(() => parseJobConfig({ model: CNN, transfer: { base: { job: 'x' }, freeze: ['conv1'], trainableFrom: 'fc1' } })).toThrow(/either freeze or trainableFrom/);
    expect(() => parseJobConfig({ model: CNN, transfer: { freeze: ['conv1'] } })).toThrow(/need a pretrained base/);
    expect(() => parseJobConfig({ model: CNN, transfer: { base: { job: 'x' }, freeze: ['conv1', 'conv2', 'fc1', 'output'] } })).toThrow(/nothing is left to train/);
  });

  it('trainableFrom freezes every layer before it; the selection is the rest, in manifest order', () => {
    const config = parseJobConfig({ model: CNN, transfer: { base: { job: 'x' }, trainableFrom: 'fc1' } });
    const sel = selectionOf(config, modelLayers(CNN).manifest);
    expect(sel.frozenLayers).toEqual(['conv1', 'pool1', 'conv2', 'pool2', 'flatten']);
    const convs = 5 * 5 * 1 * 32 + 32 + 5 * 5 * 32 * 64 + 64;
    expect(sel.segments).toEqual([{ offset: convs, length: sel.total - convs }]);
  });
});

describe('transfer base from a tfjs artifact', () => {
  it('copies matching weights (dequantised int8), keeps a resized head seeded, refuses a frozen layer it lacks', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cohort-base-'));
    const baseSpec = { zoo: 'mlp' as const, inputShape: [16], numClasses: 10 };
    const base = initialWeights(baseSpec, 7).weights;
    const e = exportVersion({ model: baseSpec }, base, 'int8');
    writeFileSync(join(dir, 'model.json'), JSON.stringify(e.modelJson));
    writeFileSync(join(dir, 'weights.bin'), e.weightsBin);
    const store = CohortStore.open(join(dir, 'data'));
    try {
      // a 3-class head on the 10-class base's features
      const config = parseJobConfig({ model: { zoo: 'mlp', inputShape: [16], numClasses: 3 }, seed: 9, transfer: { base: { path: join(dir, 'model.json') }, freeze: ['fc1', 'fc2'] } });
      const { weights, copied } = initialJobWeights(config, store);
      expect(copied).toEqual(['fc1/kernel', 'fc1/bias', 'fc2/kernel', 'fc2/bias']);
      const body = 16 * 200 + 200 + 200 * 200 + 200;
      const dequantised = decodeWeights(e.modelJson.weightsManifest[0].weights as never, e.weightsBin);
      expect(weights.subarray(0, body)).toEqual(dequantised.subarray(0, body));
      expect(weights.subarray(body)).toEqual(initialWeights(config.model, 9).weights.subarray(body));
      const frozenHead = parseJobConfig({ model: { zoo: 'mlp', inputShape: [16], numClasses: 3 }, transfer: { base: { path: join(dir, 'model.json') }, freeze: ['fc1', 'output'] } });
      expect(() => initialJobWeights(frozenHead, store)).toThrow(/frozen weight output\/kernel is \[200,3\] in the job's model but \[200,10\]/);
      const missingJob = parseJobConfig({ model: CNN, transfer: { base: { job: 'nope' }, freeze: ['conv1'] } });
      expect(() => initialJobWeights(missingJob, store)).toThrow(/no job 'nope'/);
    } finally {
      store.close();
    }
  });
});
