/**
 * Server optimizers over flat weight vectors.
 *
 * Reddi et al. 2021, "Adaptive Federated Optimization" (ICLR), Algorithm 2 (FedOpt), without bias
 * correction. Clients send Δ = w_local − w_global; the mean Δ̄ is the pseudo-gradient and already points
 * downhill, so every rule *adds* to the weights:
 *
 *   fedavg      w ← w + η Δ̄                                   (McMahan et al. 2017; η = 1 is plain FedAvg)
 *   fedavgm     v ← β v + Δ̄;  w ← w + η v                     (Hsu, Qi, Brown 2019, "Measuring the Effects
 *                                                              of Non-Identical Data Distribution ...")
 *   fedadagrad  m ← β1 m + (1−β1) Δ̄;  v ← v + Δ̄²;  w ← w + η m/(√v + τ)
 *   fedadam     m ← β1 m + (1−β1) Δ̄;  v ← β2 v + (1−β2) Δ̄²;  w ← w + η m/(√v + τ)
 *   fedyogi     m as Adam;  v ← v − (1−β2) Δ̄² sign(v − Δ̄²);  w ← w + η m/(√v + τ)
 *
 * Algorithm 2 gives FedAdagrad the same first-moment m as the others; our default β1 = 0 for it makes m = Δ̄,
 * i.e. classic Adagrad (w ← w + η Δ̄/(√v + τ)). Set beta1 to get the paper's momentum variant.
 *
 * Moments are float32 (like the weights); each coordinate's arithmetic runs in float64 and is rounded
 * once when stored. Updates are in place, with no allocation per step.
 */
import { z } from 'zod';
import { CohortError } from '../errors.ts';
import { isAllFinite } from './aggregate.ts';

const lr = (fallback: number) => z.number().positive().finite().default(fallback);
const beta = (fallback: number) => z.number().min(0).lt(1).default(fallback);

const FedAvgConfig = z.object({ name: z.literal('fedavg'), serverLr: lr(1.0) }).strict();
const FedAvgMConfig = z.object({ name: z.literal('fedavgm'), serverLr: lr(1.0), momentum: beta(0.9) }).strict();
const adaptiveFields = { serverLr: lr(0.01), beta2: beta(0.99), tau: z.number().positive().finite().default(1e-3) };
const FedAdagradConfig = z.object({ name: z.literal('fedadagrad'), ...adaptiveFields, beta1: beta(0) }).strict();
const FedAdamConfig = z.object({ name: z.literal('fedadam'), ...adaptiveFields, beta1: beta(0.9) }).strict();
const FedYogiConfig = z.object({ name: z.literal('fedyogi'), ...adaptiveFields, beta1: beta(0.9) }).strict();

export const ServerOptimizerConfigSchema = z.discriminatedUnion('name', [
  FedAvgConfig,
  FedAvgMConfig,
  FedAdagradConfig,
  FedAdamConfig,
  FedYogiConfig,
]);

export type ServerOptimizerConfig = z.output<typeof ServerOptimizerConfigSchema>;
export type ServerOptimizerConfigInput = z.input<typeof ServerOptimizerConfigSchema>;
export type ServerOptimizerName = ServerOptimizerConfig['name'];

export interface ServerOptimizer {
  readonly name: string;
  /** Applies one server step to `weights` in place. `pseudoGradient` (Δ̄) is not modified. */
  step(weights: Float32Array, pseudoGradient: Float32Array): void;
  /** Optimizer state as bytes (checkpoints); importState(exportState()) restores it exactly. */
  exportState(): Uint8Array;
  /** Replaces the state; throws CohortError BAD_STATE if the bytes do not belong to this optimizer. */
  importState(bytes: Uint8Array): void;
}

// ---------------------------------------------------------------------------------------------------------
// State serialisation: 12-byte header (magic "COPT", kind, dim as little-endian u32) followed by the
// moment vectors as little-endian float32, in a fixed order per optimizer. fedavg has no state: 0 bytes.

const MAGIC = 0x54504f43; // "COPT" read as a little-endian u32
const HEADER_BYTES = 12;
const KIND: Record<ServerOptimizerName, number> = { fedavg: 1, fedavgm: 2, fedadagrad: 3, fedadam: 4, fedyogi: 5 };
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function encodeState(name: ServerOptimizerName, dim: number, vectors: readonly Float32Array[]): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + vectors.length * dim * 4);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, KIND[name], true);
  view.setUint32(8, dim, true);
  let offset = HEADER_BYTES;
  for (const v of vectors) {
    if (LITTLE_ENDIAN) out.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), offset);
    else for (let i = 0; i < dim; i++) view.setFloat32(offset + 4 * i, v[i], true);
    offset += v.byteLength;
  }
  return out;
}

function badState(name: string, message: string, details: Record<string, unknown>): CohortError {
  return new CohortError('BAD_STATE', `${name}: ${message}`, details);
}

/** Validates `bytes` and copies the moment vectors into `targets` (all of length dim). */
function decodeState(name: ServerOptimizerName, dim: number, bytes: Uint8Array, targets: readonly Float32Array[]): void {
  const expected = HEADER_BYTES + targets.length * dim * 4;
  if (bytes.length !== expected) {
    throw badState(name, `state has ${bytes.length} bytes, expected ${expected}`, { expected, actual: bytes.length });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, true);
  const kind = view.getUint32(4, true);
  const stateDim = view.getUint32(8, true);
  if (magic !== MAGIC || kind !== KIND[name] || stateDim !== dim) {
    throw badState(name, 'state header does not match this optimizer', { magic, kind, dim: stateDim });
  }
  let offset = HEADER_BYTES;
  for (const t of targets) {
    // Copying byte-wise handles unaligned input (e.g. a Buffer slice from SQLite).
    if (LITTLE_ENDIAN) new Uint8Array(t.buffer, t.byteOffset, t.byteLength).set(bytes.subarray(offset, offset + t.byteLength));
    else for (let i = 0; i < dim; i++) t[i] = view.getFloat32(offset + 4 * i, true);
    offset += t.byteLength;
  }
}

function checkStepInputs(name: string, dim: number, weights: Float32Array, g: Float32Array): void {
  if (weights.length !== dim || g.length !== dim) {
    throw new CohortError('WRONG_LENGTH', `${name}: expected vectors of length ${dim}`, {
      dim,
      weights: weights.length,
      pseudoGradient: g.length,
    });
  }
  // Reject before touching any state: one NaN would poison every later step.
  if (!isAllFinite(g)) throw new CohortError('NON_FINITE', `${name}: pseudo-gradient has non-finite values`);
}

// ---------------------------------------------------------------------------------------------------------

class FedAvg implements ServerOptimizer {
  readonly name = 'fedavg';
  constructor(
    private readonly dim: number,
    private readonly lr: number,
  ) {}

  step(w: Float32Array, g: Float32Array): void {
    checkStepInputs(this.name, this.dim, w, g);
    const lr = this.lr;
    for (let i = 0; i < w.length; i++) w[i] += lr * g[i];
  }

  exportState(): Uint8Array {
    return new Uint8Array(0);
  }

  importState(bytes: Uint8Array): void {
    if (bytes.length !== 0) throw badState(this.name, 'fedavg has no state', { actual: bytes.length });
  }
}

class FedAvgM implements ServerOptimizer {
  readonly name = 'fedavgm';
  private readonly v: Float32Array;
  constructor(
    private readonly dim: number,
    private readonly lr: number,
    private readonly momentum: number,
  ) {
    this.v = new Float32Array(dim);
  }

  step(w: Float32Array, g: Float32Array): void {
    checkStepInputs(this.name, this.dim, w, g);
    const { v, lr, momentum } = this;
    for (let i = 0; i < w.length; i++) {
      v[i] = momentum * v[i] + g[i];
      w[i] += lr * v[i];
    }
  }

  exportState(): Uint8Array {
    return encodeState('fedavgm', this.dim, [this.v]);
  }

  importState(bytes: Uint8Array): void {
    decodeState('fedavgm', this.dim, bytes, [this.v]);
  }
}

type AdaptiveName = 'fedadagrad' | 'fedadam' | 'fedyogi';
interface AdaptiveParams {
  serverLr: number;
  beta1: number;
  beta2: number;
  tau: number;
}

/** The three adaptive rules differ only in how v is updated (Reddi et al. 2021, Algorithm 2). */
class Adaptive implements ServerOptimizer {
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  constructor(
    readonly name: AdaptiveName,
    private readonly dim: number,
    private readonly p: AdaptiveParams,
  ) {
    this.m = new Float32Array(dim);
    // Reddi et al. 2021, Algorithm 2 initialises v_{-1} ≥ τ²; we start at exactly τ² (m_{-1} = 0).
    this.v = new Float32Array(dim).fill(p.tau * p.tau);
  }

  step(w: Float32Array, g: Float32Array): void {
    checkStepInputs(this.name, this.dim, w, g);
    const { m, v } = this;
    const { serverLr: lr, beta1: b1, beta2: b2, tau } = this.p;
    const rule = this.name === 'fedadagrad' ? 0 : this.name === 'fedadam' ? 1 : 2;
    for (let i = 0; i < w.length; i++) {
      const gi = g[i];
      const g2 = gi * gi;
      const mi = b1 * m[i] + (1 - b1) * gi;
      const vPrev = v[i];
      let vi: number;
      if (rule === 0) vi = vPrev + g2;
      else if (rule === 1) vi = b2 * vPrev + (1 - b2) * g2;
      else vi = vPrev - (1 - b2) * g2 * Math.sign(vPrev - g2);
      m[i] = mi;
      v[i] = vi;
      w[i] += (lr * mi) / (Math.sqrt(vi) + tau);
    }
  }

  exportState(): Uint8Array {
    return encodeState(this.name, this.dim, [this.m, this.v]);
  }

  importState(bytes: Uint8Array): void {
    decodeState(this.name, this.dim, bytes, [this.m, this.v]);
  }
}

export function createServerOptimizer(cfg: ServerOptimizerConfig, dim: number): ServerOptimizer {
  if (!Number.isInteger(dim) || dim <= 0) {
    throw new CohortError('BAD_DIM', `createServerOptimizer: dimension must be a positive integer, got ${dim}`, { dim });
  }
  switch (cfg.name) {
    case 'fedavg':
      return new FedAvg(dim, cfg.serverLr);
    case 'fedavgm':
      return new FedAvgM(dim, cfg.serverLr, cfg.momentum);
    case 'fedadagrad':
    case 'fedadam':
    case 'fedyogi':
      return new Adaptive(cfg.name, dim, cfg);
  }
}
