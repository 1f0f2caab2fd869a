/**
 * The SecAgg+ communication graph (Bell et al., "Secure Single-Server Aggregation with (Poly)Logarithmic
 * Overhead", CCS 2020, §3): instead of every pair of clients sharing keys (Bonawitz et al. 2017), each
 * client shares masks and secret shares only with its k neighbours in a sparse k-regular graph.
 *
 * Construction (as in the deployed SecAgg+ implementations): the Harary graph H_{k,n} on positions
 * 0..n−1 — position p is adjacent to p ± 1, …, p ± k/2 (mod n), k even — with clients assigned to
 * positions by a uniformly random permutation. Everyone derives the same graph from (seed, n, k):
 *   key       = HKDF-SHA256(ikm = seed, salt = "", info = "cohort/secagg/v1/graph" ‖ n ‖ k)
 *   stream    = ChaCha20(key, nonce 0^12, counter 0) read as little-endian uint32 words
 *   positions = Fisher–Yates shuffle of [0, n) driven by uniform integers drawn from the stream by
 *               rejection (no modulo bias).
 * When k ≥ n − 1 the graph is complete (classic SecAgg) and k is n − 1.
 *
 * Properties used by params.ts: H_{k,n} is k-regular, and its vertex-induced subgraph on the
 * positions that remain after removing a set R is disconnected only if R contains two disjoint
 * runs of k/2 consecutive positions (every edge spans at most k/2 positions along the cycle).
 */
import { frameFields } from '../crypto/bytes.ts';
import { chacha20KeystreamWords, chacha20Words } from '../crypto/chacha20.ts';
import { hkdf } from '../crypto/hkdf.ts';

export interface NeighborGraph {
  /** Number of clients n; clients are cohort indices 0..n−1. */
  readonly size: number;
  /** Neighbours per client: k, or n − 1 for the complete graph. */
  readonly degree: number;
  readonly complete: boolean;
  /** Client i's neighbours, ascending (never i itself). */
  neighbors(i: number): Int32Array;
  isNeighbor(i: number, j: number): boolean;
  /** Position of client i on the Harary cycle (tests, analysis). */
  position(i: number): number;
}

/** Uniform uint32 stream from a 32-byte key (ChaCha20, nonce 0). */
function wordStream(key: Uint8Array): () => number {
  const { key: k, nonce } = chacha20Words(key, new Uint8Array(12));
  const buf = new Uint32Array(16 * 16);
  let counter = 0;
  let pos = buf.length;
  return () => {
    if (pos === buf.length) {
      counter = chacha20KeystreamWords(k, nonce, counter, buf);
      pos = 0;
    }
    return buf[pos++];
  };
}

/** Uniform integer in [0, bound) by rejection sampling on 32-bit words. */
function uniformBelow(next: () => number, bound: number): number {
  const limit = 2 ** 32 - (2 ** 32 % bound);
  for (;;) {
    const x = next();
    if (x < limit) return x % bound;
  }
}

/** The deterministic random permutation: positions[i] = cycle position of client i. */
export function graphPositions(seed: Uint8Array, n: number, k: number): Int32Array {
  if (seed.length !== 32) throw new RangeError('graph: seed must be 32 bytes');
  const key = hkdf(seed, new Uint8Array(0), frameFields('cohort/secagg/v1/graph', n, k), 32);
  const next = wordStream(key);
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = uniformBelow(next, i + 1);
    const tmp = perm[i];
    perm[i] = perm[j];
    perm[j] = tmp;
  }
  return perm;
}

/**
 * The SecAgg+ graph on n clients with (even) degree k from a shared 32-byte seed; complete when
 * k ≥ n − 1. Throws RangeError on an odd k < n − 1 (Harary graphs with odd k need n even and a
 * diameter edge; we do not use them).
 */
export function neighborGraph(n: number, k: number, seed: Uint8Array): NeighborGraph {
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`graph: need at least 2 clients, got ${n}`);
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`graph: bad degree ${k}`);
  const complete = k >= n - 1;
  if (!complete && k % 2 !== 0) throw new RangeError(`graph: degree ${k} must be even (or ≥ n − 1 = ${n - 1})`);
  const degree = complete ? n - 1 : k;
  const half = degree / 2;
  const positions = complete ? Int32Array.from({ length: n }, (_, i) => i) : graphPositions(seed, n, k);
  const clientAt = new Int32Array(n);
  for (let i = 0; i < n; i++) clientAt[positions[i]] = i;
  const cache = new Map<number, Int32Array>();

  const isNeighbor = (i: number, j: number): boolean => {
    if (i === j || i < 0 || j < 0 || i >= n || j >= n) return false;
    if (complete) return true;
    const d = Math.abs(positions[i] - positions[j]);
    return Math.min(d, n - d) <= half;
  };

  const neighbors = (i: number): Int32Array => {
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new RangeError(`graph: no client ${i}`);
    let list = cache.get(i);
    if (!list) {
      list = new Int32Array(degree);
      if (complete) {
        for (let j = 0, o = 0; j < n; j++) if (j !== i) list[o++] = j;
      } else {
        const p = positions[i];
        for (let s = 1, o = 0; s <= half; s++) {
          list[o++] = clientAt[(p + s) % n];
          list[o++] = clientAt[(p - s + n) % n];
        }
        list.sort();
      }
      cache.set(i, list);
    }
    return list;
  };

  return { size: n, degree, complete, neighbors, isNeighbor, position: (i) => positions[i] };
}
