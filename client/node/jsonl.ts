/**
 * JSON-lines loader: one example per line, `{"x": [...], "y": 3}` (or `features` / `label`). `x` may be
 * nested (e.g. 28×28); the first example's nesting gives the feature shape.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { DatasetBuilder, labelProblem } from '../data/builder.ts';
import { DataError, type Dataset, type DatasetShapeOptions } from '../data/dataset.ts';

export type JsonLinesOptions = DatasetShapeOptions;

/** Shape of a nested numeric array (by its first elements). */
function nestedShape(x: unknown): number[] {
  const shape: number[] = [];
  let level: unknown = x;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0];
  }
  return shape;
}

/** Writes the flattened numbers of `x` into `out`; returns how many were written, or -1 on a non-number. */
function flattenInto(x: unknown, out: Float32Array, offset: number): number {
  if (typeof x === 'number') {
    if (!Number.isFinite(x) || offset >= out.length) return -1;
    out[offset] = x;
    return 1;
  }
  if (!Array.isArray(x)) return -1;
  let n = 0;
  for (const item of x) {
    const k = flattenInto(item, out, offset + n);
    if (k < 0) return -1;
    n += k;
  }
  return n;
}

function parseLine(raw: string, where: string): { x: unknown; y: unknown } {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new DataError(`${where}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new DataError(`${where}: expected a JSON object`);
  const obj = value as Record<string, unknown>;
  const x = obj.x ?? obj.features;
  const y = obj.y ?? obj.label;
  if (x === undefined || y === undefined) throw new DataError(`${where}: expected keys x and y (or features and label)`);
  return { x, y };
}

export async function loadJsonLines(path: string, opts: JsonLinesOptions = {}): Promise<Dataset> {
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let builder: DatasetBuilder | undefined;
  let inferredShape: number[] | undefined;
  let lineNo = 0;
  try {
    for await (const raw of lines) {
      lineNo++;
      if (raw.trim() === '') continue;
      const where = `${path}:${lineNo}`;
      const details = { path, line: lineNo };
      const { x, y } = parseLine(raw, where);
      if (!builder) {
        inferredShape = nestedShape(x);
        const width = inferredShape.reduce((a, b) => a * b, 1);
        if (inferredShape.length === 0 || width === 0) throw new DataError(`${where}: x must be a non-empty array`, details);
        builder = new DatasetBuilder(width);
      }
      const problem = typeof y === 'number' ? labelProblem(y, opts.numClasses) : `label ${JSON.stringify(y)} is not a number`;
      if (problem) throw new DataError(`${where}: ${problem}`, details);
      const width = builder.width;
      builder.push(y as number, (out) => {
        if (flattenInto(x, out, 0) !== width) {
          throw new DataError(`${where}: features must be ${width} finite numbers shaped [${inferredShape}]`, details);
        }
      });
    }
  } finally {
    lines.close();
  }
  if (!builder) throw new DataError(`${path}: no data`, { path });
  return builder.finish({ ...opts, inferredShape });
}
