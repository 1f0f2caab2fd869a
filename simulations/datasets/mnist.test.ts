import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Dataset } from '../../client/data/dataset.ts';
import { loadMnist, partitionIid } from './mnist.ts';

function rowHashes(ds: Dataset): string[] {
  const width = ds.features.length / ds.size;
  return Array.from({ length: ds.size }, (_, i) => {
    const row = ds.features.subarray(i * width, (i + 1) * width);
    return createHash('sha1').update(new Uint8Array(row.buffer, row.byteOffset, row.byteLength)).digest('hex');
  });
}

function classCounts(ds: Dataset): number[] {
  const counts = new Array<number>(ds.numClasses).fill(0);
  for (const y of ds.labels) counts[y]++;
  return counts;
}

describe('loadMnist', () => {
  const { train, test } = loadMnist({});

  it('has the default sizes and MNIST shapes', () => {
    expect(train.size).toBe(8000);
    expect(test.size).toBe(2000);
    for (const ds of [train, test]) {
      expect(ds.featureShape).toEqual([784]);
      expect(ds.numClasses).toBe(10);
      expect(ds.features.length).toBe(ds.size * 784);
      expect(ds.labels.length).toBe(ds.size);
    }
  });

  it('has pixel values in [0, 1] that actually use the range', () => {
    let min = Infinity;
    let max = -Infinity;
    for (const v of train.features) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    expect(min).toBe(0);
    expect(max).toBe(1);
  });

  it('has roughly balanced classes', () => {
    for (const [ds, n] of [[train, 8000], [test, 2000]] as const) {
      for (const c of classCounts(ds)) {
        expect(c).toBeGreaterThan(0.6 * (n / 10));
        expect(c).toBeLessThan(1.4 * (n / 10));
      }
    }
  });

  it('keeps train and test disjoint (no identical image in both)', () => {
    const trainSet = new Set(rowHashes(train));
    expect(trainSet.size).toBe(train.size);
    expect(rowHashes(test).filter((h) => trainSet.has(h))).toEqual([]);
  });

  it('is deterministic for a seed and different for another', () => {
    const again = loadMnist({ trainSize: 100, testSize: 50, seed: 1 });
    const other = loadMnist({ trainSize: 100, testSize: 50, seed: 2 });
    expect(Array.from(again.train.labels)).toEqual(Array.from(train.labels.subarray(0, 100)));
    expect(again.train.features).toEqual(train.features.subarray(0, 100 * 784));
    expect(rowHashes(other.train)).not.toEqual(rowHashes(again.train));
  });

  it('refuses more examples than the package has', () => {
    expect(() => loadMnist({ trainSize: 9000, testSize: 2000 })).toThrow(expect.objectContaining({ code: 'BAD_CONFIG' }));
    expect(() => loadMnist({ trainSize: -1 })).toThrow(expect.objectContaining({ code: 'BAD_CONFIG' }));
  });
});

describe('partitionIid', () => {
  const { train } = loadMnist({ trainSize: 1003, testSize: 0, seed: 4 });

  it('puts every example in exactly one near-equal shard, deterministically', () => {
    const shards = partitionIid(train, 10, 7);
    const sizes = shards.map((s) => s.size);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(1003);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    const all = shards.flatMap(rowHashes).sort();
    expect(all).toEqual(rowHashes(train).sort());
    expect(partitionIid(train, 10, 7).map(rowHashes)).toEqual(shards.map(rowHashes));
    expect(partitionIid(train, 10, 8).map(rowHashes)).not.toEqual(shards.map(rowHashes));
  });

  it('rejects impossible client counts', () => {
    expect(() => partitionIid(train, 0, 1)).toThrow(expect.objectContaining({ code: 'BAD_CONFIG' }));
    expect(() => partitionIid(train, 1004, 1)).toThrow(expect.objectContaining({ code: 'BAD_CONFIG' }));
  });
});
