import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { CohortError } from '../errors.ts';
import { seededRng } from '../random.ts';
import {
  buildModel,
  flattenWeights,
  glorotLimit,
  initialWeights,
  manifestOf,
  manifestSize,
  ModelSpecSchema,
  setFlatWeights,
  weightsChecksum,
  weightsChecksumPortable,
  type ModelSpec,
} from './index.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function bits(v: Float32Array): Uint32Array {
  return new Uint32Array(v.buffer, v.byteOffset, v.length);
}

function withModel<T>(spec: ModelSpec, f: (m: tf.LayersModel) => T): T {
  const model = buildModel(spec);
  try {
    return f(model);
  } finally {
    model.dispose();
  }
}

describe('zoo', () => {
  it.each([
    ['logreg', 7_850],
    ['mlp', 199_210],
    ['cnn', 1_663_370],
  ] as const)('%s has the published parameter count on MNIST shapes', (zoo, params) => {
    withModel({ zoo }, (model) => {
      expect(model.countParams()).toBe(params);
      expect(manifestSize(manifestOf(model))).toBe(params);
    });
  });

  it('names weights by layer, independent of how many models the process built', () => {
    const first = withModel({ zoo: 'mlp' }, manifestOf);
    const second = withModel({ zoo: 'mlp' }, manifestOf);
    expect(second).toEqual(first);
    expect(first.map((e) => e.name)).toEqual(['fc1/kernel', 'fc1/bias', 'fc2/kernel', 'fc2/bias', 'output/kernel', 'output/bias']);
  });

  it('flattens image input for the dense models and honours numClasses', () => {
    withModel({ zoo: 'logreg', inputShape: [4, 4, 1], numClasses: 3 }, (model) => {
      expect(manifestOf(model)).toEqual([
        { name: 'output/kernel', shape: [16, 3] },
        { name: 'output/bias', shape: [3] },
      ]);
    });
  });

  it('rejects a cnn with a flat input shape', () => {
    expect(() => buildModel({ zoo: 'cnn', inputShape: [784] })).toThrow(CohortError);
  });
});

describe('ModelSpecSchema', () => {
  it('normalises the shorthand string and fills zoo defaults', () => {
    expect(ModelSpecSchema.parse('mlp')).toEqual({ zoo: 'mlp', inputShape: [784], numClasses: 10 });
    expect(ModelSpecSchema.parse('cnn')).toEqual({ zoo: 'cnn', inputShape: [28, 28, 1], numClasses: 10 });
    expect(ModelSpecSchema.parse({ zoo: 'logreg', numClasses: 2 })).toEqual({ zoo: 'logreg', inputShape: [784], numClasses: 2 });
  });

  it('rejects unknown models, extra keys and bad shapes', () => {
    expect(ModelSpecSchema.safeParse('resnet').success).toBe(false);
    expect(ModelSpecSchema.safeParse({ zoo: 'mlp', hidden: 3 }).success).toBe(false);
    expect(ModelSpecSchema.safeParse({ zoo: 'mlp', inputShape: [0] }).success).toBe(false);
    expect(ModelSpecSchema.safeParse({ zoo: 'mlp', numClasses: 1.5 }).success).toBe(false);
    expect(ModelSpecSchema.safeParse({ layers: { foo: 1 } }).success).toBe(false);
  });

  it('passes a layers topology through unchanged', () => {
    const layers = withModel({ zoo: 'logreg' }, (m) => m.toJSON(null, false) as Record<string, unknown>);
    expect(ModelSpecSchema.parse({ layers })).toEqual({ layers });
  });
});

describe('layers spec', () => {
  it.each(['logreg', 'mlp', 'cnn'] as const)('a %s exported with toJSON rebuilds with the same manifest and config', async (zoo) => {
    const spec: ModelSpec = zoo === 'cnn' ? { zoo, inputShape: [12, 12, 1], numClasses: 4 } : { zoo, inputShape: [20], numClasses: 4 };
    const original = buildModel(spec);
    const layers = original.toJSON(null, false) as Record<string, unknown>;
    const rebuilt = buildModel({ layers });
    const reference = await tf.models.modelFromJSON(structuredClone(layers) as Parameters<typeof tf.models.modelFromJSON>[0]);
    try {
      expect(manifestOf(rebuilt)).toEqual(manifestOf(original));
      // Our synchronous deserializer must agree with tfjs's own loader.
      expect(rebuilt.getConfig()).toEqual(reference.getConfig());
      // And compute the same function once given the same weights.
      const { weights } = initialWeights(spec, 3);
      setFlatWeights(original, weights);
      setFlatWeights(rebuilt, weights);
      const x = tf.randomUniform([2, ...spec.inputShape!]);
      const [a, b] = [original.predict(x) as tf.Tensor, rebuilt.predict(x) as tf.Tensor];
      expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
      tf.dispose([x, a, b]);
    } finally {
      [original, rebuilt, reference].forEach((m) => m.dispose());
    }
  });

  it('rebuilds a functional model whose layer names contain underscores (kept verbatim in node lists)', async () => {
    const input = tf.input({ shape: [6], name: 'in_put' });
    const a = tf.layers.dense({ units: 4, activation: 'relu', name: 'branch_a' }).apply(input) as tf.SymbolicTensor;
    const b = tf.layers.dense({ units: 4, activation: 'tanh', name: 'branch_b' }).apply(input) as tf.SymbolicTensor;
    const joined = tf.layers.concatenate({ name: 'cat_ab' }).apply([a, b]) as tf.SymbolicTensor;
    const output = tf.layers.dense({ units: 3, activation: 'softmax', name: 'out_put' }).apply(joined) as tf.SymbolicTensor;
    const original = tf.model({ inputs: input, outputs: output, name: 'two_branch' });
    const layers = original.toJSON(null, false) as Record<string, unknown>;
    const rebuilt = buildModel({ layers });
    const reference = await tf.models.modelFromJSON(structuredClone(layers) as Parameters<typeof tf.models.modelFromJSON>[0]);
    try {
      expect(manifestOf(rebuilt).map((e) => e.name)).toEqual(['branch_a/kernel', 'branch_a/bias', 'branch_b/kernel', 'branch_b/bias', 'out_put/kernel', 'out_put/bias']);
      expect(rebuilt.getConfig()).toEqual(reference.getConfig());
    } finally {
      [original, rebuilt, reference].forEach((m) => m.dispose());
    }
  });

  it('reports a broken topology as BAD_MODEL_SPEC', () => {
    expect(() => buildModel({ layers: { class_name: 'NoSuchModel', config: {} } })).toThrow(
      expect.objectContaining({ code: 'BAD_MODEL_SPEC' }),
    );
    expect(() => buildModel({ layers: { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: {} }] } } })).toThrow(
      expect.objectContaining({ code: 'BAD_MODEL_SPEC' }),
    );
  });
});

describe('flat weights', () => {
  const spec: ModelSpec = { zoo: 'mlp', inputShape: [12], numClasses: 3 };

  it('round-trips bit-exactly, including -0, subnormals and extremes', () => {
    withModel(spec, (model) => {
      const n = manifestSize(manifestOf(model));
      const rng = seededRng(7);
      const v = new Float32Array(n).map(() => (rng.next() - 0.5) * 10);
      v.set([-0, 1e-45, -3.4e38, 3.4e38, 1.17549435e-38], 0);
      setFlatWeights(model, v);
      const back = flattenWeights(model);
      expect(back.length).toBe(n);
      expect(bits(back)).toEqual(bits(v));
    });
  });

  it('throws WRONG_LENGTH on a size mismatch and leaves the model untouched', () => {
    withModel(spec, (model) => {
      const before = flattenWeights(model);
      const tensors = tf.memory().numTensors;
      expect(() => setFlatWeights(model, new Float32Array(before.length - 1))).toThrow(
        expect.objectContaining({ code: 'WRONG_LENGTH', details: { expected: before.length, actual: before.length - 1 } }),
      );
      expect(bits(flattenWeights(model))).toEqual(bits(before));
      expect(tf.memory().numTensors).toBe(tensors);
    });
  });

  it('setFlatWeights disposes its temporaries', () => {
    withModel(spec, (model) => {
      const v = new Float32Array(manifestSize(manifestOf(model))).fill(0.5);
      setFlatWeights(model, v);
      const tensors = tf.memory().numTensors;
      setFlatWeights(model, v);
      setFlatWeights(model, v.map((x) => -x));
      expect(tf.memory().numTensors).toBe(tensors);
    });
  });
});

describe('initialWeights', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const a = initialWeights({ zoo: 'mlp' }, 11);
    const b = initialWeights({ zoo: 'mlp' }, 11);
    const c = initialWeights({ zoo: 'mlp' }, 12);
    expect(bits(b.weights)).toEqual(bits(a.weights));
    expect(b.manifest).toEqual(a.manifest);
    const same = a.weights.filter((x, i) => x === c.weights[i] && x !== 0).length;
    expect(same).toBeLessThan(10);
  });

  it('does not depend on tfjs random state', () => {
    const a = initialWeights({ zoo: 'logreg' }, 5);
    tf.dispose(tf.randomNormal([1000]));
    const b = initialWeights({ zoo: 'logreg' }, 5);
    expect(bits(b.weights)).toEqual(bits(a.weights));
  });

  it('draws kernels Glorot-uniform (conv fans include the receptive field) and zeroes biases', () => {
    const { weights, manifest } = initialWeights({ zoo: 'cnn' }, 1);
    let offset = 0;
    for (const { name, shape } of manifest) {
      const n = shape.reduce((p, d) => p * d, 1);
      const w = weights.subarray(offset, offset + n);
      offset += n;
      if (shape.length === 1) {
        expect(w.every((x) => x === 0), name).toBe(true);
        continue;
      }
      const limit = glorotLimit(shape);
      let max = 0;
      let sum = 0;
      let sumSq = 0;
      for (const x of w) {
        max = Math.max(max, Math.abs(x));
        sum += x;
        sumSq += x * x;
      }
      expect(max, name).toBeLessThanOrEqual(Math.fround(limit));
      expect(max, name).toBeGreaterThan(0.95 * limit);
      expect(Math.abs(sum / n), name).toBeLessThan(0.1 * limit);
      // Uniform(-L, L) has variance L²/3.
      expect(sumSq / n / ((limit * limit) / 3), name).toBeCloseTo(1, 1);
    }
    expect(offset).toBe(weights.length);
    // conv1 kernel [5,5,1,32]: fanIn 25, fanOut 800.
    expect(glorotLimit([5, 5, 1, 32])).toBeCloseTo(Math.sqrt(6 / 825), 12);
  });
});

describe('weightsChecksum', () => {
  it('is SHA-512 of the little-endian float bytes, truncated to 64 hex chars', () => {
    const v = new Float32Array([1, -2.5, 3e-8, 0]);
    const expected = createHash('sha512').update(Buffer.from(v.buffer)).digest('hex').slice(0, 64);
    expect(weightsChecksum(v)).toBe(expected);
    expect(weightsChecksum(v)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('gives the same answer through the native and the portable (tweetnacl) SHA-512', () => {
    const v = new Float32Array(12_345).map((_, i) => Math.cos(i) * 1e3);
    expect(weightsChecksumPortable(v)).toBe(weightsChecksum(v));
    expect(weightsChecksumPortable(v.subarray(7, 5000))).toBe(weightsChecksum(v.subarray(7, 5000)));
  });

  it('is stable, respects byteOffset, and changes when one float changes by one ulp', () => {
    const big = new Float32Array(1000).map((_, i) => Math.sin(i));
    const view = big.subarray(100, 900);
    const copy = view.slice();
    expect(weightsChecksum(view)).toBe(weightsChecksum(copy));
    expect(weightsChecksum(copy)).toBe(weightsChecksum(copy.slice()));
    const bumped = copy.slice();
    new Uint32Array(bumped.buffer)[400] += 1;
    expect(weightsChecksum(bumped)).not.toBe(weightsChecksum(copy));
  });
});
