import * as tf from '@tensorflow/tfjs';
import { beforeAll, expect, it } from 'vitest';
import { seededRng } from '../../shared/random.ts';
import { selectBackend } from './backend.ts';
import { installWasmMatMulFix } from './wasm-kernels.ts';

beforeAll(async () => {
  expect(await selectBackend({ prefer: 'wasm' })).toBe('wasm');
  expect(installWasmMatMulFix()).toBe(true); // already installed by selectBackend: idempotent
});

/** Naive batched matmul on nested arrays: [batch][rows][cols]. */
function reference(a: number[][][], b: number[][][], ta: boolean, tb: boolean): number[][][] {
  const t = (m: number[][]): number[][] => m[0].map((_, j) => m.map((row) => row[j]));
  const batch = Math.max(a.length, b.length);
  return Array.from({ length: batch }, (_, i) => {
    const x = ta ? t(a[a.length === 1 ? 0 : i]) : a[a.length === 1 ? 0 : i];
    const y = tb ? t(b[b.length === 1 ? 0 : i]) : b[b.length === 1 ? 0 : i];
    return x.map((row) => y[0].map((_, j) => row.reduce((s, v, k) => s + v * y[k][j], 0)));
  });
}

it.each([
  [false, false],
  [true, false],
  [false, true],
  [true, true],
])('wasm BatchMatMul with transposeA=%s transposeB=%s matches a naive product, batched and broadcast', (ta, tb) => {
  const rng = seededRng(1);
  const rand = (shape: number[]): tf.Tensor3D => tf.tensor3d(Array.from({ length: shape[0] * shape[1] * shape[2] }, () => rng.next() - 0.5), shape as [number, number, number]);
  const a = rand(ta ? [3, 5, 4] : [3, 4, 5]);
  const b = rand(tb ? [1, 6, 5] : [1, 5, 6]);
  const before = tf.memory().numTensors;
  const out = tf.matMul(a, b, ta, tb);
  expect(out.shape).toEqual([3, 4, 6]);
  const expected = reference(a.arraySync(), b.arraySync(), ta, tb).flat(2);
  const got = Array.from(out.dataSync());
  got.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
  out.dispose();
  expect(tf.memory().numTensors).toBe(before);
  tf.dispose([a, b]);
});
