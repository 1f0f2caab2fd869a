import { describe, expect, it } from 'vitest';
import { randomBytes } from '../crypto/bytes.ts';
import { graphPositions, neighborGraph } from './graph.ts';

describe('SecAgg+ neighbour graph (permuted Harary)', () => {
  it('is k-regular, symmetric, loop-free, and isNeighbor agrees with neighbours()', () => {
    for (const [n, k] of [[10, 2], [50, 12], [101, 22], [200, 40]]) {
      const g = neighborGraph(n, k, randomBytes(32));
      expect(g.degree).toBe(k);
      for (let i = 0; i < n; i++) {
        const nb = g.neighbors(i);
        expect(nb.length).toBe(k);
        expect(new Set(nb).size).toBe(k);
        expect([...nb]).not.toContain(i);
        for (const j of nb) expect(g.neighbors(j)).toContain(i);
        let count = 0;
        for (let j = 0; j < n; j++) if (g.isNeighbor(i, j)) count++;
        expect(count).toBe(k);
      }
    }
  });

  it('is the same for everyone with the same seed and differs across seeds', () => {
    const seed = randomBytes(32);
    const a = neighborGraph(60, 10, seed);
    const b = neighborGraph(60, 10, seed.slice());
    const c = neighborGraph(60, 10, randomBytes(32));
    let differs = false;
    for (let i = 0; i < 60; i++) {
      expect([...a.neighbors(i)]).toEqual([...b.neighbors(i)]);
      if (a.neighbors(i).join() !== c.neighbors(i).join()) differs = true;
    }
    expect(differs).toBe(true);
    const pos = graphPositions(seed, 60, 10);
    expect([...pos].sort((x, y) => x - y)).toEqual(Array.from({ length: 60 }, (_, i) => i));
  });

  it('positions are a uniform-looking permutation (client 0 lands everywhere)', () => {
    const hits = new Array<number>(8).fill(0);
    for (let s = 0; s < 800; s++) hits[graphPositions(randomBytes(32), 8, 2)[0]]++;
    for (const h of hits) expect(h).toBeGreaterThan(60);
  });

  it('falls back to the complete graph when k ≥ n − 1 and rejects odd k', () => {
    const g = neighborGraph(7, 6, randomBytes(32));
    expect(g.complete).toBe(true);
    expect(g.degree).toBe(6);
    expect(g.neighbors(3).length).toBe(6);
    const h = neighborGraph(8, 20, randomBytes(32));
    expect(h.complete).toBe(true);
    expect(h.degree).toBe(7);
    expect(() => neighborGraph(20, 5, randomBytes(32))).toThrow(/even/);
  });
});
