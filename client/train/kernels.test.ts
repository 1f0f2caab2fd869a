// Our kernels (kernels.ts) against tfjs's reference cpu kernels, on random shapes. Both backends live in
// this process: inputs are plain arrays, each op runs once on wasm (ours) and once on cpu (tfjs's own;
// this file never installs our cpu kernel), and the outputs are compared.
//
// Tolerance: max |ours − reference| ≤ 1e-4 · max(1, max |reference|). Float32 sums in a different
// order (and, for 3×3..5×5 stride-1 convolutions with ≥ 8 channels, Winograd's transforms) differ by
// a few ulps of the sum's magnitude, so the bound is relative to the output's scale.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { seededRng, type Rng } from '../../shared/random.ts';
import { selectBackend } from './backend.ts';
import { conv2dBackpropFilterJs, installWasmKernels, WASM_KERNELS } from './kernels.ts';

const TOLERANCE = 1e-4;

beforeAll(async () => {
  expect(await selectBackend({ prefer: 'wasm' })).toBe('wasm');
  expect(installWasmKernels()).toBe(true); // already installed by selectBackend: idempotent
});

function randomArray(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
}

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Runs `f` on wasm, then on cpu; returns both outputs (and checks wasm leaked no tensor). */
function onBoth(f: () => tf.Tensor): { ours: Float32Array; reference: Float32Array; shape: number[] } {
  tf.setBackend('wasm');
  const before = tf.memory().numTensors;
  const a = tf.tidy(f);
  const ours = a.dataSync() as Float32Array;
  const shape = a.shape;
  a.dispose();
  expect(tf.memory().numTensors).toBe(before);
  tf.setBackend('cpu');
  const b = tf.tidy(f);
  const reference = b.dataSync() as Float32Array;
  expect(b.shape).toEqual(shape);
  b.dispose();
  tf.setBackend('wasm');
  return { ours, reference, shape };
}

function expectClose(ours: Float32Array, reference: Float32Array): void {
  expect(ours.length).toBe(reference.length);
  let err = 0;
  let scale = 1;
  for (let i = 0; i < ours.length; i++) {
    err = Math.max(err, Math.abs(ours[i] - reference[i]));
    scale = Math.max(scale, Math.abs(reference[i]));
  }
  expect(err).toBeLessThanOrEqual(TOLERANCE * scale);
}

interface ConvCase {
  x: [number, number, number, number];
  f: [number, number, number, number];
  stride: number;
  pad: 'same' | 'valid';
}

/** Random convolution shapes: batch 1–3, 5–12 pixels, 1–16 channels, filters 1–5, strides 1–3. */
function randomConvCases(seed: number, n: number): ConvCase[] {
  const rng = seededRng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.next() * xs.length)];
  const cases: ConvCase[] = [];
  while (cases.length < n) {
    const k = pick([1, 2, 3, 4, 5]);
    const kw = rng.next() < 0.8 ? k : pick([1, 2, 3]);
    const h = 5 + Math.floor(rng.next() * 8);
    const w = 5 + Math.floor(rng.next() * 8);
    const c: ConvCase = {
      x: [pick([1, 2, 3]), h, w, pick([1, 3, 4, 8, 12, 16])],
      f: [k, kw, 0, pick([1, 4, 5, 8, 12])],
      stride: pick([1, 1, 2, 3]),
      pad: pick(['same', 'valid'] as const),
    };
    c.f[2] = c.x[3];
    if (c.pad === 'valid' && (k > h || kw > w)) continue;
    cases.push(c);
  }
  return cases;
}

// The zoo CNN's layers (batch 1, and 16 instead of 64 filters in the second: tfjs's cpu filter
// gradient, the reference, needs seconds for the full layer), Winograd F(2,5)/F(5,2) and
// F(4,3)/F(3,4) paths with partial tiles, and the strided / padded direct paths, besides the random
// shapes.
const CONV_CASES: ConvCase[] = [
  { x: [1, 28, 28, 1], f: [5, 5, 1, 32], stride: 1, pad: 'same' },
  { x: [1, 14, 14, 32], f: [5, 5, 32, 16], stride: 1, pad: 'same' },
  { x: [2, 9, 11, 8], f: [3, 3, 8, 12], stride: 1, pad: 'same' },
  { x: [3, 10, 7, 12], f: [4, 4, 12, 8], stride: 1, pad: 'valid' },
  { x: [2, 13, 12, 16], f: [5, 5, 16, 8], stride: 1, pad: 'same' },
  { x: [2, 9, 8, 4], f: [3, 3, 4, 6], stride: 2, pad: 'same' },
  ...randomConvCases(7, 14),
];

const label = (c: ConvCase): string => `x [${c.x}] filter [${c.f}] stride ${c.stride} ${c.pad}`;

describe.each(CONV_CASES)('convolution kernels, $x, $f, stride $stride, $pad', (c) => {
  const rng = seededRng(label(c));
  const x = randomArray(rng, size(c.x));
  const f = randomArray(rng, size(c.f));
  const outShape = tf.backend_util.computeConv2DInfo(c.x, c.f, c.stride, 1, c.pad).outShape;
  const dy = randomArray(rng, size(outShape));

  it('Conv2D', () => {
    const { ours, reference } = onBoth(() => tf.conv2d(tf.tensor4d(x, c.x), tf.tensor4d(f, c.f), c.stride, c.pad));
    expectClose(ours, reference);
  });

  it('Conv2DBackpropInput', () => {
    const { ours, reference } = onBoth(() => tf.conv2dTranspose(tf.tensor4d(dy, outShape), tf.tensor4d(f, c.f), c.x, c.stride, c.pad));
    expectClose(ours, reference);
  });

  it('Conv2DBackpropFilter', () => {
    const attrs = { strides: [c.stride, c.stride], pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: c.f };
    const { ours, reference } = onBoth(
      () => tf.engine().runKernel('Conv2DBackpropFilter', { x: tf.tensor4d(x, c.x), dy: tf.tensor4d(dy, outShape) }, attrs as never) as tf.Tensor,
    );
    expectClose(ours, reference);
    // Our cpu kernel (a different summation order) against the same reference.
    const info = tf.backend_util.computeConv2DInfo(c.x, c.f, c.stride, 1, c.pad);
    expectClose(conv2dBackpropFilterJs(x, dy, info), reference);
  });
});

describe('Conv2D keeps exact zeros', () => {
  it('outputs whose receptive field is all zeros are exactly 0 (also through Winograd)', () => {
    // A 14×14×32 input that is zero outside a 5×6 block, as after conv1 + ReLU + pooling on a digit.
    const rng = seededRng(8);
    const shape: [number, number, number, number] = [2, 14, 14, 32];
    const x = new Float32Array(size(shape));
    for (let b = 0; b < 2; b++) {
      for (let r = 4; r < 9; r++) for (let c = 5; c < 11; c++) for (let k = 0; k < 32; k++) x[((b * 14 + r) * 14 + c) * 32 + k] = rng.next();
    }
    const f = randomArray(rng, 5 * 5 * 32 * 64);
    const { ours, reference } = onBoth(() => tf.conv2d(tf.tensor4d(x, shape), tf.tensor4d(f, [5, 5, 32, 64]), 1, 'same'));
    let zeros = 0;
    for (let i = 0; i < reference.length; i++) {
      if (reference[i] === 0) {
        zeros++;
        expect(ours[i]).toBe(0);
      }
    }
    expect(zeros).toBeGreaterThan(reference.length / 4);
    expectClose(ours, reference);
  });
});

describe('BatchMatMul', () => {
  const shapes: [number, number, number][] = [
    [10, 784, 200], // 2NN layer at batch 10
    [10, 200, 10],
    [1, 9, 3],
    [17, 6, 13],
    [5, 33, 8],
    [12, 40, 700], // B wide enough for the blocked path
  ];
  it.each(shapes.flatMap(([m, k, n]) => [false, true].flatMap((ta) => [false, true].map((tb) => ({ m, k, n, ta, tb })))))(
    '$m×$k×$n, transposeA $ta, transposeB $tb',
    ({ m, k, n, ta, tb }) => {
      const rng = seededRng(`${m}-${k}-${n}-${ta}-${tb}`);
      const a = randomArray(rng, m * k);
      const b = randomArray(rng, k * n);
      const { ours, reference } = onBoth(() => tf.matMul(tf.tensor2d(a, ta ? [k, m] : [m, k]), tf.tensor2d(b, tb ? [n, k] : [k, n]), ta, tb));
      expectClose(ours, reference);
    },
  );

  it('with batch dimensions, broadcast 1-vs-n', () => {
    const rng = seededRng(2);
    const a = randomArray(rng, 3 * 4 * 5);
    const b = randomArray(rng, 5 * 6);
    const c = randomArray(rng, 3 * 6 * 5);
    expectClose(...pair(onBoth(() => tf.matMul(tf.tensor3d(a, [3, 4, 5]), tf.tensor3d(b, [1, 5, 6])))));
    expectClose(...pair(onBoth(() => tf.matMul(tf.tensor3d(a, [3, 4, 5]), tf.tensor3d(c, [3, 6, 5]), false, true))));
    expectClose(...pair(onBoth(() => tf.matMul(tf.tensor3d(a, [3, 4, 5]), tf.tensor2d(b, [5, 6])))));
  });
});

function pair(r: { ours: Float32Array; reference: Float32Array }): [Float32Array, Float32Array] {
  return [r.ours, r.reference];
}

describe('MaxPoolGrad', () => {
  const cases: { x: [number, number, number, number]; k: number; s: number; pad: 'same' | 'valid' }[] = [
    { x: [2, 28, 28, 32], k: 2, s: 2, pad: 'valid' }, // the CNN's pooling (fixed-offset path)
    { x: [2, 9, 9, 8], k: 2, s: 2, pad: 'valid' },
    { x: [3, 9, 7, 8], k: 3, s: 2, pad: 'same' }, // overlapping windows accumulate
    { x: [2, 6, 6, 4], k: 3, s: 1, pad: 'valid' },
    { x: [1, 7, 5, 3], k: 2, s: 2, pad: 'same' }, // channels not a multiple of 4 (padded to 4 lanes)
  ];
  it.each(cases)('$x, window $k, stride $s, $pad (ties go to the first maximum)', ({ x: shape, k, s, pad }) => {
    const rng = seededRng(`${shape}-${k}-${s}-${pad}`);
    // Coarse values so that windows often hold equal maxima.
    const x = Float32Array.from({ length: size(shape) }, () => Math.round(rng.next() * 6) / 2);
    const outShape = tf.backend_util.computePool2DInfo(shape, k, s, 1, pad).outShape;
    const dy = randomArray(rng, size(outShape));
    const { ours, reference } = onBoth(() =>
      tf.grad((t: tf.Tensor) => tf.mul(tf.maxPool(t as tf.Tensor4D, k, s, pad), tf.tensor4d(dy, outShape)))(tf.tensor4d(x, shape)),
    );
    expectClose(ours, reference);
  });
});

describe('Sum over leading axes', () => {
  const cases: { shape: number[]; axes: number[] }[] = [
    { shape: [10, 28, 28, 32], axes: [0, 1, 2] }, // a conv bias gradient
    { shape: [10, 512], axes: [0] }, // a dense bias gradient
    { shape: [3, 5, 8], axes: [0] },
    { shape: [3, 5, 8], axes: [1, 0] },
    { shape: [4, 6], axes: [0, 1] }, // all axes: the stock kernel
    { shape: [5, 6], axes: [1] }, // trailing axis: the stock kernel
  ];
  it.each(cases)('$shape over $axes, with and without keepDims', ({ shape, axes }) => {
    const x = randomArray(seededRng(`${shape}`), size(shape));
    for (const keep of [false, true]) {
      const { ours, reference } = onBoth(() => tf.sum(tf.tensor(x, shape), axes, keep));
      expectClose(ours, reference);
    }
  });
});

describe('registration', () => {
  it('replaces exactly the kernels it lists on the wasm backend', () => {
    for (const name of WASM_KERNELS) expect(tf.getKernel(name, 'wasm')).toBeDefined();
  });

  it('falls back to the stock kernel for shapes it does not cover (dilated convolution)', () => {
    const rng = seededRng(5);
    const x = randomArray(rng, 2 * 9 * 9 * 4);
    const f = randomArray(rng, 3 * 3 * 4 * 8);
    const { ours, reference } = onBoth(() => tf.conv2d(tf.tensor4d(x, [2, 9, 9, 4]), tf.tensor4d(f, [3, 3, 4, 8]), 1, 'same', 'NHWC', 2));
    expectClose(ours, reference);
  });

  it('frees its scratch memory: the wasm heap stops growing once warm', () => {
    const rng = seededRng(6);
    const x = tf.tensor4d(randomArray(rng, 4 * 14 * 14 * 32), [4, 14, 14, 32]);
    const f = tf.tensor4d(randomArray(rng, 5 * 5 * 32 * 64), [5, 5, 32, 64]);
    const heap = (): number => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
    const step = (): void => {
      tf.tidy(() => {
        const y = tf.conv2d(x, f, 1, 'same');
        tf.conv2dTranspose(y, f, x.shape, 1, 'same').dataSync();
      });
    };
    step();
    const warm = heap();
    for (let i = 0; i < 20; i++) step();
    expect(heap()).toBe(warm);
    tf.dispose([x, f]);
  });
});
