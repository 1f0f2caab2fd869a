/**
 * A small WebAssembly assembler: enough of the binary format (WebAssembly Core Specification 2.0,
 * §5 "Binary Format", with the fixed-width SIMD proposal's opcodes) to build our training kernels
 * at start-up from TypeScript, without a toolchain and without a committed binary.
 *
 * Code is written as nested arrays of bytes: every helper returns the bytes of one instruction
 * sequence that leaves its value on the operand stack, so `add(get(a), i32(4))` reads like the
 * expression it computes. Control flow helpers (`loop`, `forUp`, `if_`) manage block nesting so that
 * callers never count branch depths. The module imports one memory (the tfjs wasm backend's own
 * heap, so kernels read and write tensors in place) and exports every function it defines.
 */

export type Code = number | Code[];

/** Value types (spec §5.3.1). */
export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof F64 | typeof V128;

function uleb(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  let v = n | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

function flatten(code: Code, out: number[] = []): number[] {
  if (typeof code === 'number') out.push(code);
  else for (const c of code) flatten(c, out);
  return out;
}

function name(text: string): number[] {
  const bytes = [...new TextEncoder().encode(text)];
  return [...uleb(bytes.length), ...bytes];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

// ---------------------------------------------------------------------------------------------
// Instructions. Memory arguments are (alignment log2, byte offset); offsets must be non-negative.

const memarg = (align: number, offset: number): number[] => [...uleb(align), ...uleb(offset)];
const simd = (op: number): number[] => [0xfd, ...uleb(op)];

export const nop: Code = [];
export const get = (local: number): Code => [0x20, ...uleb(local)];
export const set = (local: number, value: Code): Code => [value, 0x21, ...uleb(local)];
export const tee = (local: number, value: Code): Code => [value, 0x22, ...uleb(local)];
export const drop = (value: Code): Code => [value, 0x1a];
export const call = (fn: number, ...args: Code[]): Code => [args, 0x10, ...uleb(fn)];
export const select = (a: Code, b: Code, cond: Code): Code => [a, b, cond, 0x1b];

export const i32 = (n: number): Code => [0x41, ...sleb(n)];
const bin = (op: number) => (a: Code, b: Code): Code => [a, b, op];
export const eqz = (a: Code): Code => [a, 0x45];
export const eq = bin(0x46);
export const ne = bin(0x47);
export const ltS = bin(0x48);
export const ltU = bin(0x49);
export const gtS = bin(0x4a);
export const leS = bin(0x4c);
export const geS = bin(0x4e);
export const add = bin(0x6a);
export const sub = bin(0x6b);
export const mul = bin(0x6c);
export const divS = bin(0x6d);
export const remS = bin(0x6f);
export const and = bin(0x71);
export const or = bin(0x72);
export const shl = bin(0x74);
export const shrS = bin(0x75);
export const shrU = bin(0x76);
export const geU = bin(0x4f);
/** local += delta */
export const inc = (local: number, delta: Code): Code => set(local, add(get(local), delta));

export const f32 = (x: number): Code => {
  const b = new Uint8Array(new Float32Array([x]).buffer);
  return [0x43, ...b];
};
export const f32Load = (addr: Code, offset = 0): Code => [addr, 0x2a, ...memarg(2, offset)];
export const f32Store = (addr: Code, value: Code, offset = 0): Code => [addr, value, 0x38, ...memarg(2, offset)];
export const i32Load = (addr: Code, offset = 0): Code => [addr, 0x28, ...memarg(2, offset)];
export const i32Store = (addr: Code, value: Code, offset = 0): Code => [addr, value, 0x36, ...memarg(2, offset)];
export const fAdd = bin(0x92);
export const fSub = bin(0x93);
export const fMul = bin(0x94);
export const fMax = bin(0x97);
export const fGt = bin(0x5e);

/** f64 scalar instructions. */
export const f64 = (x: number): Code => [0x44, ...new Uint8Array(new Float64Array([x]).buffer)];
export const f64Load = (addr: Code, offset = 0): Code => [addr, 0x2b, ...memarg(3, offset)];
export const f64Store = (addr: Code, value: Code, offset = 0): Code => [addr, value, 0x39, ...memarg(3, offset)];
export const i32Load8U = (addr: Code, offset = 0): Code => [addr, 0x2d, ...memarg(0, offset)];
export const dMul = bin(0xa2);
export const dAdd = bin(0xa0);
export const f64ConvertF32 = (a: Code): Code => [a, 0xbb]; // f64.promote_f32

/** v128 instructions (SIMD proposal opcode numbers). Loads/stores assume 4-byte alignment. */
export const v = {
  load: (addr: Code, offset = 0): Code => [addr, simd(0x00), ...memarg(2, offset)],
  store: (addr: Code, value: Code, offset = 0): Code => [addr, value, simd(0x0b), ...memarg(2, offset)],
  /** Loads one f32 and broadcasts it to all four lanes. */
  splatLoad: (addr: Code, offset = 0): Code => [addr, simd(0x09), ...memarg(2, offset)],
  splat: (x: Code): Code => [x, simd(0x13)],
  zero: (): Code => [simd(0x0c), ...new Array(16).fill(0)],
  lane: (x: Code, lane: number): Code => [x, simd(0x1f), lane],
  add: (a: Code, b: Code): Code => [a, b, simd(0xe4)],
  sub: (a: Code, b: Code): Code => [a, b, simd(0xe5)],
  mul: (a: Code, b: Code): Code => [a, b, simd(0xe6)],
  max: (a: Code, b: Code): Code => [a, b, simd(0xe9)],
  gt: (a: Code, b: Code): Code => [a, b, simd(0x44)],
  eq: (a: Code, b: Code): Code => [a, b, simd(0x41)],
  and: (a: Code, b: Code): Code => [a, b, simd(0x4e)],
  /** a & ~b */
  andNot: (a: Code, b: Code): Code => [a, b, simd(0x4f)],
  or: (a: Code, b: Code): Code => [a, b, simd(0x50)],
  /** A constant with all four lanes equal to x. */
  f32x4: (x: number): Code => [simd(0x0c), ...[0, 1, 2, 3].flatMap(() => [...new Uint8Array(new Float32Array([x]).buffer)])],
  /** Loads 8 bytes into the low half, zeroes the high half. */
  load64Zero: (addr: Code, offset = 0): Code => [addr, simd(0x5d), ...memarg(0, offset)],
  /** Stores the low 8 bytes of a vector. */
  store64Lane0: (addr: Code, value: Code, offset = 0): Code => [addr, value, simd(0x5b), ...memarg(0, offset), 0],
  i32x4Splat: (x: Code): Code => [x, simd(0x11)],
  i8x16Splat: (x: Code): Code => [x, simd(0x0f)],
  i8x16Eq: (a: Code, b: Code): Code => [a, b, simd(0x23)],
  xor: (a: Code, b: Code): Code => [a, b, simd(0x51)],
  /** A constant from 16 bytes. */
  bytes: (b: number[]): Code => [simd(0x0c), ...b],
  i32x4Add: (a: Code, b: Code): Code => [a, b, simd(0xae)],
  /** Bytes of a and b (32 lanes) picked by 16 lane indices. */
  shuffle: (a: Code, b: Code, lanes: number[]): Code => [a, b, simd(0x0d), ...lanes],
  /** f64x2 lanes (two doubles per vector). */
  f64x2: {
    const: (x: number): Code => [simd(0x0c), ...[0, 1].flatMap(() => [...new Uint8Array(new Float64Array([x]).buffer)])],
    splat: (x: Code): Code => [x, simd(0x14)],
    add: (a: Code, b: Code): Code => [a, b, simd(0xf0)],
    sub: (a: Code, b: Code): Code => [a, b, simd(0xf1)],
    mul: (a: Code, b: Code): Code => [a, b, simd(0xf2)],
    lt: (a: Code, b: Code): Code => [a, b, simd(0x49)],
    floor: (a: Code): Code => [a, simd(0x75)],
    lane: (x: Code, lane: number): Code => [x, simd(0x21), lane],
    /** The two low u32 lanes as doubles. */
    convertLowU32: (a: Code): Code => [a, simd(0xff)],
    /** The two low f32 lanes as doubles. */
    promoteLowF32: (a: Code): Code => [a, simd(0x5f)],
    /** Both lanes truncated to i32 (saturating) in the two low lanes, high lanes zero. */
    truncSatI32Zero: (a: Code): Code => [a, simd(0xfc)],
  },
  /** Lanes of `a` where `mask` is all ones, of `b` elsewhere. */
  bitselect: (a: Code, b: Code, mask: Code): Code => [a, b, mask, simd(0x52)],
};

// ---------------------------------------------------------------------------------------------
// Structured control flow. Bodies never branch out by depth themselves.

const EMPTY_BLOCK = 0x40;

/** `if (cond) then else otherwise` (statements, no value). */
export const if_ = (cond: Code, then: Code, otherwise?: Code): Code =>
  otherwise === undefined ? [cond, 0x04, EMPTY_BLOCK, then, 0x0b] : [cond, 0x04, EMPTY_BLOCK, then, 0x05, otherwise, 0x0b];

/** `while (cond) body` */
export const whileLoop = (cond: Code, body: Code): Code => [
  0x02, EMPTY_BLOCK, 0x03, EMPTY_BLOCK,
  eqz(cond), 0x0d, 1, // br_if out of the block
  body,
  0x0c, 0, // br to the loop head
  0x0b, 0x0b,
];

/** `for (local = from; local < to; local += step) body` (signed compare). */
export const forUp = (local: number, from: Code, to: Code, body: Code, step: Code = i32(1)): Code => [
  set(local, from),
  whileLoop(ltS(get(local), to), [body, inc(local, step)]),
];

/** `do body while (--local > 0)`: runs `body` `local` times; `local` must be ≥ 1. */
export const countDown = (local: number, body: Code): Code => [
  0x03, EMPTY_BLOCK,
  body,
  tee(local, sub(get(local), i32(1))),
  0x0d, 0,
  0x0b,
];

// ---------------------------------------------------------------------------------------------

/** One function under construction: declare locals, then set `body`. */
export class Func {
  readonly locals: ValType[] = [];
  body: Code = [];

  constructor(
    readonly name: string,
    readonly params: ValType[],
    readonly results: ValType[] = [],
    readonly exported = true,
  ) {}

  /** Index of parameter `i`. */
  param(i: number): number {
    if (i < 0 || i >= this.params.length) throw new Error(`${this.name}: no parameter ${i}`);
    return i;
  }

  /** Declares a local and returns its index. */
  local(type: ValType): number {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }

  /** n parameter/local types of i32 (for Func's constructor). */
  static i32s(n: number): ValType[] {
    return Array.from({ length: n }, (): ValType => I32);
  }

  locals32(n: number): number[] {
    return Array.from({ length: n }, () => this.local(I32));
  }

  encode(): number[] {
    // Locals run-length encoded by type (spec §5.5.13).
    const groups: number[][] = [];
    for (const t of this.locals) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    const bytes = [...vec(groups.map(([n, t]) => [...uleb(n), t])), ...flatten(this.body), 0x0b];
    return [...uleb(bytes.length), ...bytes];
  }
}

/** A module that imports `env.memory` and defines functions; `index(name)` resolves calls. */
export class ModuleBuilder {
  private readonly funcs: Func[] = [];

  add(fn: Func): number {
    if (this.funcs.some((f) => f.name === fn.name)) throw new Error(`duplicate function ${fn.name}`);
    this.funcs.push(fn);
    return this.funcs.length - 1;
  }

  /** Reserves an index for a function defined later (for calls between generated functions). */
  index(fnName: string): number {
    const i = this.funcs.findIndex((f) => f.name === fnName);
    if (i < 0) throw new Error(`unknown function ${fnName}`);
    return i;
  }

  encode(): Uint8Array<ArrayBuffer> {
    const sigKey = (f: Func): string => `${f.params.join(',')}->${f.results.join(',')}`;
    const sigs: Func[] = [];
    const sigIndex = new Map<string, number>();
    for (const f of this.funcs) {
      if (!sigIndex.has(sigKey(f))) {
        sigIndex.set(sigKey(f), sigs.length);
        sigs.push(f);
      }
    }
    const section = (id: number, payload: number[]): number[] => [id, ...uleb(payload.length), ...payload];
    const types = vec(sigs.map((f) => [0x60, ...vec(f.params.map((t) => [t])), ...vec(f.results.map((t) => [t]))]));
    // Memory import with limits {min: 1 page, no max}: matches any non-shared memory.
    const imports = vec([[...name('env'), ...name('memory'), 0x02, 0x00, 1]]);
    const functions = vec(this.funcs.map((f) => uleb(sigIndex.get(sigKey(f)) as number)));
    const exports = vec(
      this.funcs.flatMap((f, i) => (f.exported ? [[...name(f.name), 0x00, ...uleb(i)]] : [])),
    );
    const code = vec(this.funcs.map((f) => f.encode()));
    return new Uint8Array([
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
      ...section(1, types),
      ...section(2, imports),
      ...section(3, functions),
      ...section(7, exports),
      ...section(10, code),
    ]);
  }
}

/**
 * Assembles `funcs` into a module on a fresh memory of `initialPages` and instantiates it. Undefined
 * where WebAssembly (or an instruction the functions use, e.g. SIMD) is unavailable, or when the
 * environment variable `disableEnv` is "0" (to force callers onto their scalar code).
 */
export function instantiateOwnMemory<T>(funcs: Func[], opts: { disableEnv?: string; initialPages?: number } = {}): { exports: T; memory: WebAssembly.Memory } | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  if (opts.disableEnv && env?.[opts.disableEnv] === '0') return undefined;
  try {
    const builder = new ModuleBuilder();
    for (const fn of funcs) builder.add(fn);
    const bytes = builder.encode();
    if (typeof WebAssembly === 'undefined' || !WebAssembly.validate(bytes)) return undefined;
    const memory = new WebAssembly.Memory({ initial: opts.initialPages ?? 1 });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
    return { exports: instance.exports as unknown as T, memory };
  } catch {
    return undefined;
  }
}
