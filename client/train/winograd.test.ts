// The Winograd matrices (winograd.ts) and the assembler that turns our kernels into WebAssembly
// (shared/wasm/asm.ts): small, exact checks that need no tfjs backend.
import { describe, expect, it } from 'vitest';
import { seededRng } from '../../shared/random.ts';
import { F32, Func, I32, ModuleBuilder, add, call, f32Load, f32Store, fAdd, forUp, get, i32, mul, set, v } from '../../shared/wasm/asm.ts';
import { chooseTile, WINO_TILES, winoAT, winoBT, winoG } from './winograd.ts';

describe('Winograd matrices', () => {
  it('Bᵀ for n = 6 is the well-known input transform of F(4, 3)', () => {
    expect(winoBT(6)).toEqual([
      [4, 0, -5, 0, 1, 0],
      [0, -4, -4, 1, 1, 0],
      [0, 4, -4, -1, 1, 0],
      [0, -2, -1, 2, 1, 0],
      [0, 2, -1, -2, 1, 0],
      [0, 4, 0, -5, 0, 1],
    ]);
  });

  // y = Aᵀ[(G·g) ⊙ (Bᵀ·d)] must equal the correlation y_i = Σ_k g_k·d_{i+k}, for every split m + r = n + 1.
  const splits = WINO_TILES.flatMap((n) => Array.from({ length: n - 2 }, (_, i) => ({ n, r: i + 2, m: n - 1 - i })));
  it.each(splits)('F($m, $r) with n = $n computes the correlation', ({ n, m, r }) => {
    const rng = seededRng(`${n}-${m}`);
    const AT = winoAT(n, m);
    const G = winoG(n, r);
    const BT = winoBT(n);
    for (let trial = 0; trial < 20; trial++) {
      const d = Array.from({ length: n }, () => rng.next() - 0.5);
      const g = Array.from({ length: r }, () => rng.next() - 0.5);
      const Gg = G.map((row) => row.reduce((s, x, k) => s + x * g[k], 0));
      const Bd = BT.map((row) => row.reduce((s, x, l) => s + x * d[l], 0));
      for (let i = 0; i < m; i++) {
        const y = AT[i].reduce((s, x, j) => s + x * Gg[j] * Bd[j], 0);
        const reference = g.reduce((s, gk, k) => s + gk * d[i + k], 0);
        expect(Math.abs(y - reference)).toBeLessThan(1e-12);
      }
    }
  });

  it('picks the tile with fewer multiplications: 8 for the CNN 14×14 5×5 layer, 6 for 3×3 ties', () => {
    expect(chooseTile(5, 14, 14)).toBe(8); // 64·4·4 = 1024 < 36·7·7 = 1764
    expect(chooseTile(3, 16, 16)).toBe(6); // 36·4·4 = 576 = 64·3·3: the smaller tile
    expect(chooseTile(5, 2, 2)).toBe(6);
  });
});

describe('wasm-asm', () => {
  it('assembles a module that loops, calls, loads and stores scalars and SIMD vectors', () => {
    const m = new ModuleBuilder();
    // scale(ptr, n, k): x[i] *= k for i < n (vector loop, n a multiple of 4)
    const scale = new Func('scale', [I32, I32, F32]);
    const [p, n, k] = [0, 1, 2];
    const i = scale.local(I32);
    scale.body = forUp(i, i32(0), mul(get(n), i32(4)), v.store(add(get(p), get(i)), v.mul(v.load(add(get(p), get(i))), v.splat(get(k)))), i32(16));
    m.add(scale);
    // sum(ptr, n) -> f32, scalar loop
    const sum = new Func('sum', [I32, I32], [F32]);
    const [acc] = [sum.local(F32)];
    const j = sum.local(I32);
    sum.body = [forUp(j, i32(0), get(1), set(acc, fAdd(get(acc), f32Load(add(get(0), mul(get(j), i32(4))))))), get(acc)];
    m.add(sum);
    // twice(ptr): stores sum(ptr, 8) into ptr[8] through a call
    const twice = new Func('twice', [I32]);
    twice.body = f32Store(get(0), call(m.index('sum'), get(0), i32(8)), 32);
    m.add(twice);
    const memory = new WebAssembly.Memory({ initial: 1 });
    const exports = new WebAssembly.Instance(new WebAssembly.Module(m.encode()), { env: { memory } }).exports as Record<string, (...a: number[]) => number>;
    const heap = new Float32Array(memory.buffer);
    heap.set([1, 2, 3, 4, 5, 6, 7, 8], 0);
    exports.scale(0, 8, 0.5);
    expect(Array.from(heap.subarray(0, 8))).toEqual([0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4]);
    expect(exports.sum(0, 8)).toBe(18);
    exports.twice(0);
    expect(heap[8]).toBe(18);
  });
});
