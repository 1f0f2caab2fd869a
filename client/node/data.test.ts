import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fromArrays, splitTrainTest, subset, type Dataset } from '../data/index.ts';
import { loadCsv, loadDataset, loadJsonLines, splitCsvLine } from './index.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'cohort-data-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileNo = 0;
function file(ext: string, text: string): string {
  const p = path.join(dir, `f${fileNo++}${ext}`);
  writeFileSync(p, text);
  return p;
}

const rowsOf = (ds: Dataset): number[][] =>
  Array.from({ length: ds.size }, (_, i) => Array.from(ds.features.subarray(i * ds.features.length / ds.size, (i + 1) * ds.features.length / ds.size)));

describe('loadCsv', () => {
  it('reads a header with a label column in the middle', async () => {
    const ds = await loadCsv(file('.csv', 'a,label,b\n0.5,1,2\n-1,0,3.25\n'));
    expect(ds.size).toBe(2);
    expect(ds.featureShape).toEqual([2]);
    expect(rowsOf(ds)).toEqual([[0.5, 2], [-1, 3.25]]);
    expect(Array.from(ds.labels)).toEqual([1, 0]);
    expect(ds.numClasses).toBe(2);
  });

  it('without a header takes the last column as label', async () => {
    const ds = await loadCsv(file('.csv', '1,2,3\n4,5,0\n'));
    expect(rowsOf(ds)).toEqual([[1, 2], [4, 5]]);
    expect(Array.from(ds.labels)).toEqual([3, 0]);
    expect(ds.numClasses).toBe(4);
  });

  it('takes the label column by index (negative from the end) or by name', async () => {
    const text = 'y,p,q\n2,0.1,0.2\n0,0.3,0.4\n';
    const byName = await loadCsv(file('.csv', text), { labelColumn: 'y' });
    expect(Array.from(byName.labels)).toEqual([2, 0]);
    expect(rowsOf(byName)).toEqual([[Math.fround(0.1), Math.fround(0.2)], [Math.fround(0.3), Math.fround(0.4)]]);
    const byIndex = await loadCsv(file('.csv', '2,9,9\n0,9,9\n'), { labelColumn: 0 });
    expect(Array.from(byIndex.labels)).toEqual([2, 0]);
    const fromEnd = await loadCsv(file('.csv', '1,7,2\n0,7,3\n'), { labelColumn: -2, numClasses: 8 });
    expect(Array.from(fromEnd.labels)).toEqual([7, 7]);
    expect(fromEnd.numClasses).toBe(8);
    await expect(loadCsv(file('.csv', '1,2\n'), { labelColumn: 'y' })).rejects.toMatchObject({ code: 'BAD_CONFIG' });
    await expect(loadCsv(file('.csv', 'a,b\n1,2\n'), { labelColumn: 'y' })).rejects.toThrow(/not in the header/);
  });

  it('honours an explicit header flag, CRLF, blank lines, quotes and featureShape', async () => {
    const ds = await loadCsv(file('.csv', '"1","2",3,4,1\r\n\r\n5,6,7,8,0\r\n'), { header: false, featureShape: [2, 2] });
    expect(ds.featureShape).toEqual([2, 2]);
    expect(Array.from(ds.features)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    await expect(loadCsv(file('.csv', '1,2,3,0\n'), { featureShape: [2, 2] })).rejects.toMatchObject({ code: 'BAD_DATA' });
  });

  it('names the line and column of a bad cell', async () => {
    const p = file('.csv', 'a,b,label\n1,2,0\n\n3,x,1\n');
    await expect(loadCsv(p)).rejects.toMatchObject({
      code: 'BAD_DATA',
      message: expect.stringMatching(/:4: column 2: 'x' is not a finite number/),
      details: { line: 4 },
    });
  });

  it('rejects ragged rows, bad labels and labels outside numClasses, with line numbers', async () => {
    await expect(loadCsv(file('.csv', '1,2,0\n1,2\n'))).rejects.toThrow(/:2: 2 cells, expected 3/);
    await expect(loadCsv(file('.csv', '1,2,0\n1,2,1.5\n'))).rejects.toThrow(/:2: column 3: label 1.5/);
    await expect(loadCsv(file('.csv', '1,2,0\n1,2,-1\n'))).rejects.toThrow(/:2: .*label -1/);
    await expect(loadCsv(file('.csv', '1,2,0\n1,2,5\n'), { numClasses: 3 })).rejects.toThrow(/:2: .*label 5 is not below numClasses 3/);
    await expect(loadCsv(file('.csv', '1,,0\n'))).rejects.toThrow(/:1: column 2/);
    await expect(loadCsv(file('.csv', 'a,label\n'))).rejects.toThrow(/no data rows/);
  });

  it('splits quoted cells with commas and escaped quotes', () => {
    expect(splitCsvLine('1, "a,b" ,"say ""hi"""')).toEqual(['1', 'a,b', 'say "hi"']);
  });
});

describe('loadJsonLines', () => {
  it('reads x/y and features/label lines and infers a nested shape', async () => {
    const ds = await loadJsonLines(file('.jsonl', '{"x":[[1,2],[3,4]],"y":1}\n\n{"features":[[5,6],[7,8]],"label":0}\n'));
    expect(ds.size).toBe(2);
    expect(ds.featureShape).toEqual([2, 2]);
    expect(Array.from(ds.features)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(Array.from(ds.labels)).toEqual([1, 0]);
  });

  it('names the line of invalid JSON, missing keys, wrong widths and bad labels', async () => {
    await expect(loadJsonLines(file('.jsonl', '{"x":[1],"y":0}\n{"x":[1],"y":\n'))).rejects.toThrow(/:2: not valid JSON/);
    await expect(loadJsonLines(file('.jsonl', '{"x":[1],"y":0}\n{"z":[1],"y":0}\n'))).rejects.toThrow(/:2: expected keys/);
    await expect(loadJsonLines(file('.jsonl', '{"x":[1,2],"y":0}\n{"x":[1,2,3],"y":0}\n'))).rejects.toMatchObject({
      code: 'BAD_DATA',
      details: { line: 2 },
    });
    await expect(loadJsonLines(file('.jsonl', '{"x":[1,2],"y":0}\n{"x":[1,"a"],"y":0}\n'))).rejects.toThrow(/:2: features/);
    await expect(loadJsonLines(file('.jsonl', '{"x":[1],"y":"cat"}\n'))).rejects.toThrow(/:1: label "cat"/);
  });
});

describe('loadDataset', () => {
  it('dispatches by extension', async () => {
    expect((await loadDataset(file('.csv', '1,0\n'))).size).toBe(1);
    expect((await loadDataset(file('.ndjson', '{"x":[1],"y":0}\n'))).size).toBe(1);
    await expect(loadDataset(file('.parquet', ''))).rejects.toMatchObject({ code: 'BAD_CONFIG' });
  });
});

describe('fromArrays', () => {
  it('packs rows, or takes a flat Float32Array with a featureShape', () => {
    const ds = fromArrays([[1, 2], [3, 4], [5, 6]], [0, 2, 1]);
    expect(ds).toMatchObject({ size: 3, featureShape: [2], numClasses: 3 });
    expect(Array.from(ds.features)).toEqual([1, 2, 3, 4, 5, 6]);
    const flat = fromArrays(new Float32Array(8), [0, 1], { featureShape: [2, 2], numClasses: 5 });
    expect(flat).toMatchObject({ size: 2, featureShape: [2, 2], numClasses: 5 });
  });

  it('rejects NaN, ragged rows and bad labels, naming the row', () => {
    expect(() => fromArrays([[1, 2], [NaN, 3]], [0, 1])).toThrow(expect.objectContaining({ code: 'BAD_DATA', details: { row: 1, column: 0 } }));
    expect(() => fromArrays([[1, 2], [3]], [0, 1])).toThrow(expect.objectContaining({ code: 'BAD_DATA', details: expect.objectContaining({ row: 1 }) }));
    expect(() => fromArrays([[1], [2]], [0, 3], { numClasses: 3 })).toThrow(/row 1: label 3/);
    expect(() => fromArrays([[1], [2]], [0, 0.5])).toThrow(/row 1: label 0.5/);
    expect(() => fromArrays([[1], [2]], [0])).toThrow(expect.objectContaining({ code: 'BAD_DATA' }));
    expect(() => fromArrays(new Float32Array(5), [0, 1])).toThrow(expect.objectContaining({ code: 'BAD_DATA' }));
    expect(() => fromArrays(new Float32Array([1, Infinity]), [0, 1])).toThrow(/row 1/);
  });
});

describe('subset and splitTrainTest', () => {
  const ds = fromArrays(Array.from({ length: 50 }, (_, i) => [i, -i]), Array.from({ length: 50 }, (_, i) => i % 4));

  it('subset copies the chosen rows in order', () => {
    const s = subset(ds, [7, 3]);
    expect(rowsOf(s)).toEqual([[7, -7], [3, -3]]);
    expect(Array.from(s.labels)).toEqual([3, 3]);
    expect(s.numClasses).toBe(4);
    expect(() => subset(ds, [50])).toThrow(RangeError);
  });

  it('splits disjointly, covers everything, and is deterministic per seed', () => {
    const a = splitTrainTest(ds, 0.2, 1);
    const b = splitTrainTest(ds, 0.2, 1);
    const c = splitTrainTest(ds, 0.2, 2);
    expect(a.test.size).toBe(10);
    expect(a.train.size).toBe(40);
    const ids = (d: Dataset): number[] => rowsOf(d).map((r) => r[0]);
    expect(new Set([...ids(a.train), ...ids(a.test)]).size).toBe(50);
    expect(ids(a.train).filter((i) => ids(a.test).includes(i))).toEqual([]);
    expect(ids(b.test)).toEqual(ids(a.test));
    expect(ids(c.test)).not.toEqual(ids(a.test));
    expect(() => splitTrainTest(ds, 1.5, 1)).toThrow(RangeError);
  });
});
