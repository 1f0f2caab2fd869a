/**
 * FedProx's Synthetic(α, β) (Li et al. 2020, "Federated Optimization in Heterogeneous Networks", §5.1):
 * per client k, u_k ~ N(0, α), B_k ~ N(0, β); model W_k ∈ R^{10×60}, b_k ∈ R^10 with entries
 * ~ N(u_k, 1); feature mean v_k with entries ~ N(B_k, 1); x ~ N(v_k, Σ), Σ = diag(j^{-1.2});
 * y = argmax(W_k x + b_k). α controls how much local models differ, β how much local feature
 * distributions differ. Client sizes follow a lognormal law (as in the paper's generator), ≥ minSize.
 */
import type { Dataset } from '../../client/data/dataset.ts';
import { ConfigError } from '../../shared/errors.ts';
import { seededRng, type Rng } from '../../shared/random.ts';
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

export function syntheticFedProx(opts: SyntheticOptions): { data: Dataset; partition: Partition } {
  const { alpha, beta, clients, seed, minSize = 50, logMean = 4, logSd = 2, maxSize = 2000 } = opts;
  if (!(alpha >= 0) || !(beta >= 0)) throw new ConfigError(`synthetic: alpha and beta must be ≥ 0, got ${alpha}, ${beta}`);
  if (!Number.isInteger(clients) || clients < 1) throw new ConfigError(`synthetic: clients must be a positive integer`);
  const rng = seededRng(seed);
  const d = SYNTHETIC_FEATURES;
  const c = SYNTHETIC_CLASSES;
  const sizes = Array.from({ length: clients }, () =>
    Math.min(maxSize, minSize + Math.floor(Math.exp(normal(rng, logMean, logSd)))),
  );
  const total = sizes.reduce((a, b) => a + b, 0);
  const features = new Float32Array(total * d);
  const labels = new Int32Array(total);
  const sigma = Float64Array.from({ length: d }, (_, j) => Math.sqrt(Math.pow(j + 1, -1.2)));
  const partition: Partition = [];
  let row = 0;
  const logits = new Float64Array(c);
  for (let k = 0; k < clients; k++) {
    const u = normal(rng, 0, Math.sqrt(alpha));
    const B = normal(rng, 0, Math.sqrt(beta));
    const W = Float64Array.from({ length: c * d }, () => normal(rng, u, 1));
    const b = Float64Array.from({ length: c }, () => normal(rng, u, 1));
    const v = Float64Array.from({ length: d }, () => normal(rng, B, 1));
    const idx = new Int32Array(sizes[k]);
    for (let n = 0; n < sizes[k]; n++, row++) {
      const x = features.subarray(row * d, (row + 1) * d);
      for (let j = 0; j < d; j++) x[j] = normal(rng, v[j], sigma[j]);
      let best = 0;
      for (let i = 0; i < c; i++) {
        let z = b[i];
        for (let j = 0; j < d; j++) z += W[i * d + j] * x[j];
        logits[i] = z;
        if (z > logits[best]) best = i;
      }
      labels[row] = best;
      idx[n] = row;
    }
    partition.push(idx);
  }
  return { data: { features, labels, featureShape: [d], numClasses: c, size: total }, partition };
}
