/**
 * FedProx's Synthetic(α, β) (Li et al. 2020, "Federated Optimization in Heterogeneous Networks", §5.1):
 * per client k, u_k ~ N(0, α), B_k ~ N(0, β); model W_k ∈ R^{10×60}, b_k ∈ R^10 with entries
 * ~ N(u_k, 1); feature mean v_k with entries ~ N(B_k, 1); x ~ N(v_k, Σ), Σ = diag(j^{-1.2});
 * y = argmax(W_k x + b_k). α controls how much local models differ, β how much local feature
 * distributions differ. Client sizes follow a lognormal law (as in the paper's generator), ≥ minSize.
 *
 * Each client is drawn from its own seeded stream (seed, k), so a population of any size is generated
 * on demand: `SyntheticPopulation.client(k)` makes client k's examples when it is sampled, and
 * nothing of the other clients exists. `syntheticFedProx` (the whole population at once) is the
 * concatenation of the same per-client draws, bit for bit.
 */
import type { Dataset } from '../../client/data/dataset.ts';
import { ConfigError } from '../../shared/errors.ts';
import { seededRng, seedFromString, type Rng } from '../../shared/random.ts';
import type { Partition } from './partition.ts';

export const SYNTHETIC_FEATURES = 60;
export const SYNTHETIC_CLASSES = 10;

export interface SyntheticOptions {
  alpha: number;
  beta: number;
  clients: number;
  seed: number;
  /** Smallest client (default 50). */
  minSize?: number;
  /** Lognormal size law: log-mean and log-sd (defaults 4 and 2, capped at maxSize). */
  logMean?: number;
  logSd?: number;
  maxSize?: number;
}

function normal(rng: Rng, mean = 0, sd = 1): number {
  const u = 1 - rng.next();
  const v = rng.next();
  return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

const SIGMA = Float64Array.from({ length: SYNTHETIC_FEATURES }, (_, j) => Math.sqrt(Math.pow(j + 1, -1.2)));

/** A Synthetic(α, β) population whose clients are generated one at a time, on demand. */
export class SyntheticPopulation {
  readonly size: number;
  private readonly opts: Required<SyntheticOptions>;
  private readonly base: number;

  constructor(opts: SyntheticOptions) {
    const { alpha, beta, clients } = opts;
    if (!(alpha >= 0) || !(beta >= 0)) throw new ConfigError(`synthetic: alpha and beta must be ≥ 0, got ${alpha}, ${beta}`);
    if (!Number.isInteger(clients) || clients < 1) throw new ConfigError(`synthetic: clients must be a positive integer`);
    this.size = clients;
    this.opts = { minSize: 50, logMean: 4, logSd: 2, maxSize: 2000, ...opts };
    this.base = seedFromString(`synthetic:${opts.seed}`);
  }

  private stream(k: number): Rng {
    if (!Number.isInteger(k) || k < 0 || k >= this.size) throw new ConfigError(`synthetic: no client ${k} in a population of ${this.size}`);
    // k ↦ base ^ (k+1)·φ is one-to-one on 32 bits (the multiplier is odd): no two clients share a stream.
    return seededRng((this.base ^ Math.imul(k + 1, 0x9e3779b1)) >>> 0);
  }

  private drawSize(rng: Rng): number {
    const { minSize, logMean, logSd, maxSize } = this.opts;
    return Math.min(maxSize, minSize + Math.floor(Math.exp(normal(rng, logMean, logSd))));
  }

  /** How many examples client k holds (its first draw; its data is not generated). */
  sizeOf(k: number): number {
    return this.drawSize(this.stream(k));
  }

  /** Client k's examples, generated now from its own stream. */
  client(k: number): Dataset {
    const rng = this.stream(k);
    const size = this.drawSize(rng);
    const features = new Float32Array(size * SYNTHETIC_FEATURES);
    const labels = new Int32Array(size);
    writeClient(rng, this.opts.alpha, this.opts.beta, features, labels);
    return { features, labels, featureShape: [SYNTHETIC_FEATURES], numClasses: SYNTHETIC_CLASSES, size };
  }
}

/** Fills `labels.length` rows of client data from `rng` (after its size draw). */
function writeClient(rng: Rng, alpha: number, beta: number, features: Float32Array, labels: Int32Array): void {
  const d = SYNTHETIC_FEATURES;
  const c = SYNTHETIC_CLASSES;
  const u = normal(rng, 0, Math.sqrt(alpha));
  const B = normal(rng, 0, Math.sqrt(beta));
  const W = Float64Array.from({ length: c * d }, () => normal(rng, u, 1));
  const b = Float64Array.from({ length: c }, () => normal(rng, u, 1));
  const v = Float64Array.from({ length: d }, () => normal(rng, B, 1));
  const logits = new Float64Array(c);
  for (let n = 0; n < labels.length; n++) {
    const x = features.subarray(n * d, (n + 1) * d);
    for (let j = 0; j < d; j++) x[j] = normal(rng, v[j], SIGMA[j]);
    let best = 0;
    for (let i = 0; i < c; i++) {
      let z = b[i];
      for (let j = 0; j < d; j++) z += W[i * d + j] * x[j];
      logits[i] = z;
      if (z > logits[best]) best = i;
    }
    labels[n] = best;
  }
}

/** The whole population in one data set (client k's rows contiguous, in order) and its partition. */
export function syntheticFedProx(opts: SyntheticOptions): { data: Dataset; partition: Partition } {
  const population = new SyntheticPopulation(opts);
  const sizes = Array.from({ length: population.size }, (_, k) => population.sizeOf(k));
  const total = sizes.reduce((a, b) => a + b, 0);
  const features = new Float32Array(total * SYNTHETIC_FEATURES);
  const labels = new Int32Array(total);
  const partition: Partition = [];
  let row = 0;
  for (let k = 0; k < population.size; k++) {
    const client = population.client(k);
    features.set(client.features, row * SYNTHETIC_FEATURES);
    labels.set(client.labels, row);
    partition.push(Int32Array.from({ length: client.size }, (_, n) => row + n));
    row += client.size;
  }
  return { data: { features, labels, featureShape: [SYNTHETIC_FEATURES], numClasses: SYNTHETIC_CLASSES, size: total }, partition };
}
