/**
 * Partitioners: how a data set is split across virtual clients. Each returns, per client, the indices
 * of its examples (Int32Array), so shards are views of one shared data set rather than copies.
 *
 * - IID: a seeded shuffle cut into near-equal pieces.
 * - Dirichlet(α) over labels (Hsu, Qi, Brown 2019, "Measuring the Effects of Non-Identical Data
 *   Distribution for Federated Visual Classification"): for each class, client proportions
 *   p ~ Dir(α·1); small α gives few classes per client, large α approaches IID.
 * - Label shards (McMahan et al. 2017, §3, "pathological non-IID"): sort by label, cut into
 *   shardsPerClient·n shards of equal size, deal each client `shardsPerClient` random shards.
 */
import { ConfigError } from '../../shared/errors.ts';
import { randomInt, seededRng, shuffleInPlace, type Rng } from '../../shared/random.ts';

export type Partition = Int32Array[];

function checkClients(n: number, size: number, who: string): void {
  if (!Number.isInteger(n) || n < 1 || n > size) {
    throw new ConfigError(`${who}: number of clients must be an integer in [1, ${size}], got ${n}`);
  }
}

function range(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

export function iidPartition(size: number, numClients: number, seed: number): Partition {
  checkClients(numClients, size, 'iid partition');
  const order = range(size);
  shuffleInPlace(order, seededRng(seed));
  return Array.from({ length: numClients }, (_, k) =>
    order.slice(Math.floor((k * size) / numClients), Math.floor(((k + 1) * size) / numClients)),
  );
}

export function shardPartition(labels: Int32Array, numClients: number, seed: number, shardsPerClient = 2): Partition {
  checkClients(numClients, labels.length, 'shard partition');
  const shards = numClients * shardsPerClient;
  if (!Number.isInteger(shardsPerClient) || shardsPerClient < 1 || shards > labels.length) {
    throw new ConfigError(`shard partition: ${numClients} clients × ${shardsPerClient} shards exceed ${labels.length} examples`);
  }
  const rng = seededRng(seed);
  // Shuffle first so that ties (same label) are broken randomly, then a stable sort by label.
  const order = Array.from(range(labels.length));
  shuffleInPlace(order, rng);
  order.sort((a, b) => labels[a] - labels[b]);
  const shardIds = Array.from(range(shards));
  shuffleInPlace(shardIds, rng);
  return Array.from({ length: numClients }, (_, k) => {
    const mine = shardIds.slice(k * shardsPerClient, (k + 1) * shardsPerClient);
    const parts = mine.map((s) =>
      order.slice(Math.floor((s * labels.length) / shards), Math.floor(((s + 1) * labels.length) / shards)),
    );
    return Int32Array.from(parts.flat());
  });
}

/** Gamma(shape, 1) sample (Marsaglia & Tsang 2000; shape < 1 via the boost x·U^{1/shape}). */
export function sampleGamma(shape: number, rng: Rng): number {
  if (shape < 1) return sampleGamma(shape + 1, rng) * Math.pow(1 - rng.next(), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = standardNormal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - rng.next();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

function standardNormal(rng: Rng): number {
  // Box–Muller; simulations only (privacy noise uses shared/dp with a CSPRNG).
  const u = 1 - rng.next();
  const v = rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function sampleDirichlet(alpha: number, k: number, rng: Rng): Float64Array {
  const g = Float64Array.from({ length: k }, () => sampleGamma(alpha, rng));
  let total = g.reduce((a, b) => a + b, 0);
  if (!(total > 0)) {
    // All draws underflowed (tiny α): the mass goes to one uniformly chosen coordinate.
    g.fill(0);
    g[randomInt(rng, k)] = 1;
    total = 1;
  }
  return g.map((x) => x / total);
}

export interface DirichletOptions {
  /** Redraw until every client has at least this many examples (default 1). */
  minSize?: number;
  /** Give up after this many redraws (default 100). */
  maxAttempts?: number;
}

export function dirichletPartition(
  labels: Int32Array,
  numClasses: number,
  numClients: number,
  alpha: number,
  seed: number,
  opts: DirichletOptions = {},
): Partition {
  checkClients(numClients, labels.length, 'dirichlet partition');
  if (!(alpha > 0) || !Number.isFinite(alpha)) throw new ConfigError(`dirichlet partition: alpha must be > 0, got ${alpha}`);
  const { minSize = 1, maxAttempts = 100 } = opts;
  const rng = seededRng(seed);
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  labels.forEach((y, i) => byClass[y].push(i));
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const clients: number[][] = Array.from({ length: numClients }, () => []);
    for (const members of byClass) {
      const idx = members.slice();
      shuffleInPlace(idx, rng);
      const p = sampleDirichlet(alpha, numClients, rng);
      let start = 0;
      let cumulative = 0;
      for (let k = 0; k < numClients; k++) {
        cumulative += p[k];
        const end = k === numClients - 1 ? idx.length : Math.round(cumulative * idx.length);
        for (let j = start; j < end; j++) clients[k].push(idx[j]);
        start = Math.max(start, end);
      }
    }
    if (clients.every((c) => c.length >= minSize)) return clients.map((c) => Int32Array.from(c));
  }
  throw new ConfigError(
    `dirichlet partition: after ${maxAttempts} draws some client still had < ${minSize} examples; ` +
      `use fewer clients, a larger alpha, or a smaller minSize`,
  );
}

export interface LabelSkew {
  clients: number;
  /** Examples per client: min, median, max. */
  sizes: { min: number; median: number; max: number };
  /** Mean number of distinct labels a client holds. */
  meanClassesPerClient: number;
  /** Mean total-variation distance between a client's label distribution and the global one (0 = IID). */
  meanTotalVariation: number;
  /** Per client, count of each label. */
  counts: Int32Array[];
}

export function labelSkew(partition: Partition, labels: Int32Array, numClasses: number): LabelSkew {
  const global = new Float64Array(numClasses);
  labels.forEach((y) => global[y]++);
  global.forEach((c, y) => (global[y] = c / labels.length));
  const counts = partition.map((idx) => {
    const c = new Int32Array(numClasses);
    idx.forEach((i) => c[labels[i]]++);
    return c;
  });
  const nonEmpty = counts.filter((_, k) => partition[k].length > 0);
  let tv = 0;
  let classes = 0;
  nonEmpty.forEach((c) => {
    const n = c.reduce((a, b) => a + b, 0);
    let d = 0;
    c.forEach((x, y) => (d += Math.abs(x / n - global[y])));
    tv += d / 2;
    classes += c.filter((x) => x > 0).length;
  });
  const sizes = partition.map((p) => p.length).sort((a, b) => a - b);
  return {
    clients: partition.length,
    sizes: { min: sizes[0], median: sizes[Math.floor(sizes.length / 2)], max: sizes[sizes.length - 1] },
    meanClassesPerClient: classes / Math.max(1, nonEmpty.length),
    meanTotalVariation: tv / Math.max(1, nonEmpty.length),
    counts,
  };
}

/** One-line summary for logs and run directories. */
export function describeSkew(s: LabelSkew): string {
  return (
    `${s.clients} clients, examples min/median/max ${s.sizes.min}/${s.sizes.median}/${s.sizes.max}, ` +
    `${s.meanClassesPerClient.toFixed(2)} labels per client, mean TV distance to global ${s.meanTotalVariation.toFixed(3)}`
  );
}
