import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.ts';
import { randomBytes } from '../crypto/bytes.ts';
import { neighborGraph } from './graph.ts';
import { failureBounds, findGraphParams, toleratedDropouts } from './params.ts';
import { seededRng, sampleWithoutReplacement } from '../random.ts';

describe('SecAgg+ parameter finder', () => {
  it('chosen (k, t) satisfy the computed bounds and the majority threshold', () => {
    for (const n of [10, 50, 100, 300, 1000]) {
      for (const [dropoutRate, corruptRate] of [[0.1, 0.05], [0.2, 0.1], [0.05, 0]]) {
        const p = findGraphParams({ clients: n, dropoutRate, corruptRate });
        const b = failureBounds(n, p.neighbors, p.threshold, p.maxDropouts, p.assumedCorrupt);
        expect(b.log2Security).toBeLessThanOrEqual(-40);
        expect(b.log2Correctness).toBeLessThanOrEqual(-20);
        expect(p.log2SecurityFailure).toBe(b.log2Security);
        expect(p.threshold).toBeGreaterThan(p.neighbors / 2);
        expect(p.threshold).toBeLessThanOrEqual(p.neighbors);
        expect(p.maxDropouts).toBe(toleratedDropouts(n, dropoutRate));
        if (!p.complete) expect(p.neighbors % 2).toBe(0);
        // k is minimal: the next smaller even degree has no admissible t.
        const k2 = p.neighbors - 2;
        if (!p.complete && k2 >= 2) {
          for (let t = Math.floor(k2 / 2) + 1; t <= k2; t++) {
            const c = failureBounds(n, k2, t, p.maxDropouts, p.assumedCorrupt);
            expect(c.log2Security <= -40 && c.log2Correctness <= -20).toBe(false);
          }
        }
      }
    }
  });

  it('k grows with the dropout rate, the corrupt rate and (logarithmically) with n', () => {
    const k = (n: number, d: number, c: number) => findGraphParams({ clients: n, dropoutRate: d, corruptRate: c }).neighbors;
    let prev = 0;
    for (const d of [0, 0.05, 0.1, 0.2, 0.3]) {
      const v = k(1000, d, 0.05);
      expect(v).toBeGreaterThanOrEqual(prev);
      prev = v;
    }
    prev = 0;
    for (const c of [0, 0.05, 0.1, 0.2]) {
      const v = k(1000, 0.1, c);
      expect(v).toBeGreaterThanOrEqual(prev);
      prev = v;
    }
    expect(k(5000, 0.1, 0.05)).toBeLessThan(5000 / 20); // sparse for large n
    expect(k(5000, 0.1, 0.05)).toBeGreaterThanOrEqual(k(1000, 0.1, 0.05));
  });

  it('uses the complete graph for small cohorts that need it, and refuses impossible settings with advice', () => {
    const p = findGraphParams({ clients: 6, dropoutRate: 0.34, corruptRate: 0 });
    expect(p.complete).toBe(true);
    expect(p.neighbors).toBe(5);
    expect(() => findGraphParams({ clients: 20, dropoutRate: 0.6, corruptRate: 0.3 })).toThrow(ConfigError);
    expect(() => findGraphParams({ clients: 20, dropoutRate: 0.6, corruptRate: 0.3 })).toThrow(/Lower dropoutRate or corruptRate, or enlarge the cohort/);
    expect(() => findGraphParams({ clients: 20, dropoutRate: 1.2, corruptRate: 0 })).toThrow(ConfigError);
  });

  it('the bounds dominate simulated failure frequencies (small n, large probabilities)', () => {
    const rng = seededRng('params-mc');
    const n = 30;
    const k = 4;
    const t = 3;
    const removed = 10;
    const bounds = failureBounds(n, k, t, removed, 0);
    let neighbourhoodFailures = 0;
    let disconnected = 0;
    const trials = 400;
    const all = Array.from({ length: n }, (_, i) => i);
    for (let trial = 0; trial < trials; trial++) {
      const g = neighborGraph(n, k, randomBytes(32));
      const gone = new Set(sampleWithoutReplacement(all, removed, rng));
      if (all.some((u) => [...g.neighbors(u)].filter((v) => gone.has(v)).length >= k - t + 1)) neighbourhoodFailures++;
      // Connectivity of the remaining graph (BFS).
      const alive = all.filter((u) => !gone.has(u));
      const seen = new Set([alive[0]]);
      const queue = [alive[0]];
      while (queue.length) for (const v of g.neighbors(queue.pop()!)) if (!gone.has(v) && !seen.has(v)) (seen.add(v), queue.push(v));
      if (seen.size !== alive.length) disconnected++;
    }
    expect(neighbourhoodFailures / trials).toBeLessThanOrEqual(Math.min(1, 2 ** bounds.log2Correctness));
    const disconnectBound = failureBounds(n, k, k, 0, removed).log2Disconnection;
    expect(disconnected / trials).toBeLessThanOrEqual(Math.min(1, 2 ** disconnectBound));
    expect(disconnected).toBeGreaterThan(0); // the event is real at these sizes
  });
});
