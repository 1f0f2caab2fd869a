/**
 * ChaCha20 keystream (RFC 8439 §2.3–§2.4) in WebAssembly SIMD: four blocks at a time, one per lane
 * (block counter c, c+1, c+2, c+3), written straight into the module's memory. It exists to make the
 * mask PRG allocation-free: node:crypto returns every 64 KiB of keystream in a freshly allocated
 * Buffer, and in a SecAgg client that expands k + 1 masks of d values the resulting external-memory
 * churn (76 MB per client at d = 1,663,370) cost as much garbage collection as the cipher itself.
 * It is also the fast path where node:crypto is absent (browsers).
 *
 * The module is generated at start-up by our assembler (shared/wasm/asm.ts). Memory: the 16-word
 * input state at byte 0 (constants, key, counter, nonce as in RFC 8439 §2.3), the output at byte 64.
 * Rotations by 16 and 8 are byte shuffles; by 12 and 7, shift–shift–or. After the 20 rounds and the
 * feed-forward, each 4×4 group of (word, block) is transposed with shuffles so every block's 64 bytes
 * are stored in order. Tests: RFC 8439 §2.4.2 and equality with the portable implementation
 * (chacha20.ts) for many lengths and counters.
 */
import { Func, I32, instantiateOwnMemory, V128, add, forUp, get, i32, i32Load, i32Store, set, v, type Code } from '../wasm/asm.ts';

const simdOp = (op: number): number[] => [0xfd, ...(op < 0x80 ? [op] : [(op & 0x7f) | 0x80, op >> 7])];
const add32 = (a: Code, b: Code): Code => [a, b, simdOp(0xae)];
const xor = (a: Code, b: Code): Code => [a, b, simdOp(0x51)];
const or = (a: Code, b: Code): Code => [a, b, simdOp(0x50)];
const shl = (a: Code, n: number): Code => [a, i32(n), simdOp(0xab)];
const shrU = (a: Code, n: number): Code => [a, i32(n), simdOp(0xad)];
const splat = (x: Code): Code => [x, simdOp(0x11)];
const replaceLane = (vec: Code, lane: number, x: Code): Code => [vec, x, simdOp(0x1c), lane];
const shuffle = (a: Code, b: Code, lanes: number[]): Code => [a, b, simdOp(0x0d), ...lanes];

/** Byte lanes for rotl 16 and rotl 8 of each little-endian 32-bit lane. */
const ROT16 = [2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13];
const ROT8 = [3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14];
const rotl = (x: Code, n: number): Code =>
  n === 16 ? shuffle(x, x, ROT16) : n === 8 ? shuffle(x, x, ROT8) : or(shl(x, n), shrU(x, 32 - n));

/** 32-bit lanes picked from a (0–3) and b (4–7), as byte indices for i8x16.shuffle. */
const lanes32 = (picks: number[]): number[] => picks.flatMap((p) => [4 * p, 4 * p + 1, 4 * p + 2, 4 * p + 3]);

/** (state, out, groups): writes `groups` × 4 blocks (256 bytes each) from the state's counter on; advances it. */
function keystream(): Func {
  const fn = new Func('keystream', [I32, I32, I32]);
  const [state, out, groups] = [0, 1, 2];
  const [g, p, round] = fn.locals32(3);
  const x = Array.from({ length: 16 }, () => fn.local(V128));
  const [t0, t1, t2, t3] = Array.from({ length: 4 }, () => fn.local(V128));
  const word = (i: number): Code => i32Load(get(state), 4 * i);
  const qr = (a: number, b: number, c: number, d: number): Code => [
    set(x[a], add32(get(x[a]), get(x[b]))),
    set(x[d], xor(get(x[d]), get(x[a]))),
    set(x[d], rotl(get(x[d]), 16)),
    set(x[c], add32(get(x[c]), get(x[d]))),
    set(x[b], xor(get(x[b]), get(x[c]))),
    set(x[b], rotl(get(x[b]), 12)),
    set(x[a], add32(get(x[a]), get(x[b]))),
    set(x[d], xor(get(x[d]), get(x[a]))),
    set(x[d], rotl(get(x[d]), 8)),
    set(x[c], add32(get(x[c]), get(x[d]))),
    set(x[b], xor(get(x[b]), get(x[c]))),
    set(x[b], rotl(get(x[b]), 7)),
  ];
  // Transpose words i..i+3 of the four blocks and store them at out + 64·block + 4·i.
  const storeGroup = (i: number): Code => [
    // t0 = (a0 b0 a1 b1), t1 = (a2 b2 a3 b3), t2 = (c0 d0 c1 d1), t3 = (c2 d2 c3 d3); lane = block.
    set(t0, shuffle(get(x[i]), get(x[i + 1]), lanes32([0, 4, 1, 5]))),
    set(t1, shuffle(get(x[i]), get(x[i + 1]), lanes32([2, 6, 3, 7]))),
    set(t2, shuffle(get(x[i + 2]), get(x[i + 3]), lanes32([0, 4, 1, 5]))),
    set(t3, shuffle(get(x[i + 2]), get(x[i + 3]), lanes32([2, 6, 3, 7]))),
    v.store(get(p), shuffle(get(t0), get(t2), lanes32([0, 1, 4, 5])), 4 * i),
    v.store(get(p), shuffle(get(t0), get(t2), lanes32([2, 3, 6, 7])), 64 + 4 * i),
    v.store(get(p), shuffle(get(t1), get(t3), lanes32([0, 1, 4, 5])), 128 + 4 * i),
    v.store(get(p), shuffle(get(t1), get(t3), lanes32([2, 3, 6, 7])), 192 + 4 * i),
  ];
  const counterLanes = (base: Code): Code =>
    replaceLane(replaceLane(replaceLane(splat(base), 1, add(base, i32(1))), 2, add(base, i32(2))), 3, add(base, i32(3)));
  fn.body = [
    set(p, get(out)),
    forUp(g, i32(0), get(groups), [
      ...Array.from({ length: 16 }, (_, i) => set(x[i], i === 12 ? counterLanes(word(12)) : splat(word(i)))),
      forUp(round, i32(0), i32(10), [
        qr(0, 4, 8, 12),
        qr(1, 5, 9, 13),
        qr(2, 6, 10, 14),
        qr(3, 7, 11, 15),
        qr(0, 5, 10, 15),
        qr(1, 6, 11, 12),
        qr(2, 7, 8, 13),
        qr(3, 4, 9, 14),
      ]),
      // Feed-forward: the initial state again from memory (16 more live vectors would not fit in registers).
      ...Array.from({ length: 16 }, (_, i) => set(x[i], add32(get(x[i]), i === 12 ? counterLanes(word(12)) : splat(word(i))))),
      storeGroup(0),
      storeGroup(4),
      storeGroup(8),
      storeGroup(12),
      i32Store(get(state), add(word(12), i32(4)), 48),
      set(p, add(get(p), i32(256))),
    ]),
  ];
  return fn;
}

interface Exports {
  keystream(state: number, out: number, groups: number): void;
}

const STATE = 0;
const OUT = 64;
const PAGE = 65536;

/** The kernel: `generate(state, blocks)` returns a view of `blocks` × 64 keystream bytes (valid until the next call). */
export class ChaCha20Kernel {
  private readonly mem32: () => Uint32Array;

  constructor(
    private readonly fns: Exports,
    private readonly memory: WebAssembly.Memory,
  ) {
    this.mem32 = () => new Uint32Array(memory.buffer, STATE, 16);
  }

  /**
   * Keystream blocks state[12], state[12]+1, … for the 16-word RFC 8439 state (updated in place to
   * the next counter). `blocks` is rounded up to a multiple of 4; the returned view has blocks × 64 bytes.
   */
  generate(state: Uint32Array, blocks: number): Uint8Array {
    const groups = Math.ceil(blocks / 4);
    const need = OUT + 256 * groups;
    if (need > this.memory.buffer.byteLength) this.memory.grow(Math.ceil((need - this.memory.buffer.byteLength) / PAGE));
    const s = this.mem32();
    s.set(state);
    this.fns.keystream(STATE, OUT, groups);
    state[12] = (state[12] + blocks) >>> 0;
    return new Uint8Array(this.memory.buffer, OUT, 64 * blocks);
  }
}

let cached: ChaCha20Kernel | null | undefined;

/** The kernel, or undefined where WebAssembly SIMD is unavailable (or COHORT_SECAGG_WASM=0). */
export function chacha20Kernel(): ChaCha20Kernel | undefined {
  if (cached === undefined) {
    const built = instantiateOwnMemory<Exports>([keystream()], { disableEnv: 'COHORT_SECAGG_WASM', initialPages: 2 });
    cached = built ? new ChaCha20Kernel(built.exports, built.memory) : null;
  }
  return cached ?? undefined;
}
