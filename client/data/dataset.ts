/**
 * A client's local examples in memory: features row-major in one Float32Array, integer class labels.
 */
import { CohortError } from '../../shared/errors.ts';
import { seededRng, shuffleInPlace } from '../../shared/random.ts';

export interface Dataset {
  /** size × prod(featureShape) values, row-major. */
  features: Float32Array;
  /** Class indices in [0, numClasses). */
  labels: Int32Array;
  /** Shape of one example, e.g. [784] or [28, 28, 1]. */
  featureShape: number[];
  numClasses: number;
  size: number;
}

/** Input data that cannot become a Dataset; `details` says where (row, line, column). */
export class DataError extends CohortError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('BAD_DATA', message, details);
  }
}

export interface DatasetShapeOptions {
  /** Shape of one example; its product must equal the number of features per row. */
  featureShape?: number[];
  /** Number of classes; default max label + 1. */
  numClasses?: number;
}

export function featureLength(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Checks a requested feature shape against the row width; returns the shape to use. */
export function resolveFeatureShape(width: number, shape: number[] | undefined): number[] {
  if (!shape) return [width];
  if (shape.length === 0 || shape.some((d) => !Number.isInteger(d) || d < 1) || featureLength(shape) !== width) {
    throw new DataError(`featureShape [${shape}] does not fit rows of ${width} features`, { featureShape: shape, width });
  }
  return [...shape];
}

/** Default class count (max label + 1), or validates the given one against the labels. */
export function resolveNumClasses(labels: Int32Array, numClasses: number | undefined): number {
  let max = -1;
  for (const y of labels) if (y > max) max = y;
  if (numClasses === undefined) return Math.max(max + 1, 1);
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new DataError(`numClasses must be a positive integer, got ${numClasses}`);
  return numClasses;
}

function checkLabel(y: number, numClasses: number | undefined, row: number): void {
  if (!Number.isInteger(y) || y < 0 || (numClasses !== undefined && y >= numClasses)) {
    const range = numClasses === undefined ? 'a non-negative integer' : `an integer in [0, ${numClasses})`;
    throw new DataError(`row ${row}: label ${y} is not ${range}`, { row, label: y });
  }
}

function checkFinite(features: Float32Array, width: number, from = 0): void {
  for (let i = from; i < features.length; i++) {
    if (!Number.isFinite(features[i])) {
      const row = Math.floor(i / width);
      throw new DataError(`row ${row}: feature ${i % width} is not finite (${features[i]})`, { row, column: i % width });
    }
  }
}

function packRows(rows: ArrayLike<number>[], width: number): Float32Array {
  const out = new Float32Array(rows.length * width);
  rows.forEach((row, r) => {
    if (row.length !== width) {
      throw new DataError(`row ${r}: has ${row.length} features, expected ${width}`, { row: r, length: row.length, expected: width });
    }
    for (let j = 0; j < width; j++) out[r * width + j] = row[j];
  });
  return out;
}

/**
 * Builds a validated Dataset from rows (one array per example) or one flat row-major Float32Array.
 * Row numbers in errors are 0-based indices into the input.
 */
export function fromArrays(
  features: ArrayLike<number>[] | Float32Array,
  labels: ArrayLike<number>,
  opts: DatasetShapeOptions = {},
): Dataset {
  const size = labels.length;
  let flat: Float32Array;
  let width: number;
  if (features instanceof Float32Array) {
    width = opts.featureShape ? featureLength(opts.featureShape) : size > 0 ? features.length / size : 0;
    if (size === 0 ? features.length !== 0 : !Number.isInteger(width) || features.length !== size * width) {
      throw new DataError(`${features.length} feature values do not split into ${size} rows`, { values: features.length, rows: size });
    }
    flat = features;
  } else {
    if (features.length !== size) throw new DataError(`${features.length} feature rows but ${size} labels`);
    width = opts.featureShape ? featureLength(opts.featureShape) : size > 0 ? features[0].length : 0;
    flat = packRows(features, width);
  }
  const featureShape = resolveFeatureShape(width, opts.featureShape);
  if (opts.numClasses !== undefined) resolveNumClasses(new Int32Array(0), opts.numClasses);
  const labelArray = Int32Array.from({ length: size }, (_, i) => {
    checkLabel(labels[i], opts.numClasses, i);
    return labels[i];
  });
  checkFinite(flat, width);
  return { features: flat, labels: labelArray, featureShape, numClasses: resolveNumClasses(labelArray, opts.numClasses), size };
}

/** The examples at `indices`, copied, in that order. */
export function subset(ds: Dataset, indices: ArrayLike<number>): Dataset {
  const width = featureLength(ds.featureShape);
  const features = new Float32Array(indices.length * width);
  const labels = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= ds.size) throw new RangeError(`subset: index ${i} outside [0, ${ds.size})`);
    features.set(ds.features.subarray(i * width, (i + 1) * width), k * width);
    labels[k] = ds.labels[i];
  }
  return { features, labels, featureShape: [...ds.featureShape], numClasses: ds.numClasses, size: indices.length };
}

/** A seeded random permutation of 0..n-1. */
export function permutation(n: number, seed: number): Int32Array {
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  shuffleInPlace(idx, seededRng(seed));
  return idx;
}

/**
 * Random disjoint train/test split: round(size × testFraction) examples go to test. Deterministic for
 * a seed; each part keeps the original order of its examples.
 */
export function splitTrainTest(ds: Dataset, testFraction: number, seed: number): { train: Dataset; test: Dataset } {
  if (!(testFraction >= 0 && testFraction <= 1)) throw new RangeError(`testFraction must be in [0, 1], got ${testFraction}`);
  const perm = permutation(ds.size, seed);
  const testCount = Math.round(ds.size * testFraction);
  const test = perm.slice(0, testCount).sort();
  const train = perm.slice(testCount).sort();
  return { train: subset(ds, train), test: subset(ds, test) };
}
