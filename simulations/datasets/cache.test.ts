import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCache, toDataset, writeCache } from './cache.ts';

describe('binary data set cache', () => {
  const images = {
    labels: Uint8Array.from([3, 1, 4]),
    pixels: Uint8Array.from({ length: 12 }, (_, i) => i * 20),
    width: 4,
    numClasses: 5,
  };

  it('round-trips labels and pixels, and scales to [0, 1]', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'cohort-cache-')), 'sub', 'x.bin');
    writeCache(file, images);
    const back = readCache(file)!;
    expect([...back.labels]).toEqual([3, 1, 4]);
    expect([...back.pixels]).toEqual([...images.pixels]);
    expect(back.width).toBe(4);
    const ds = toDataset(back, [2, 2]);
    expect(ds.size).toBe(3);
    expect(ds.features[11]).toBeCloseTo(220 / 255, 6);
    expect([...ds.labels]).toEqual([3, 1, 4]);
  });

  it('says what to do with a truncated or foreign file, and returns undefined when absent', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cohort-cache-'));
    expect(readCache(join(dir, 'missing.bin'))).toBeUndefined();
    const file = join(dir, 'x.bin');
    writeCache(file, images);
    writeFileSync(file, readFileSync(file).subarray(0, 25));
    expect(() => readCache(file)).toThrow(/truncated; delete it/);
    writeFileSync(file, 'not a cache at all');
    expect(() => readCache(file)).toThrow(/not a Cohort data set cache/);
  });
});
