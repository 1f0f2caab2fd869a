/**
 * Accumulates rows into growable typed arrays, so loaders never hold a file as JS arrays of numbers.
 */
import { resolveFeatureShape, resolveNumClasses, type Dataset, type DatasetShapeOptions } from './dataset.ts';

export class DatasetBuilder {
  private features = new Float32Array(1024);
  private labels = new Int32Array(64);
  private rows = 0;

  constructor(readonly width: number) {}

  get size(): number {
    return this.rows;
  }

  /** Space for one more row; returns the row's offset into the feature buffer. */
  private reserve(): number {
    if ((this.rows + 1) * this.width > this.features.length) {
      const grown = new Float32Array(Math.max(this.features.length * 2, (this.rows + 1) * this.width));
      grown.set(this.features);
      this.features = grown;
    }
    if (this.rows + 1 > this.labels.length) {
      const grown = new Int32Array(this.labels.length * 2);
      grown.set(this.labels);
      this.labels = grown;
    }
    return this.rows * this.width;
  }

  /** Appends a row whose features `fill` writes into `out` (length = width). */
  push(label: number, fill: (out: Float32Array) => void): void {
    const offset = this.reserve();
    fill(this.features.subarray(offset, offset + this.width));
    this.labels[this.rows] = label;
    this.rows++;
  }

  finish(opts: DatasetShapeOptions & { inferredShape?: number[] }): Dataset {
    const labels = this.labels.slice(0, this.rows);
    return {
      features: this.features.slice(0, this.rows * this.width),
      labels,
      featureShape: resolveFeatureShape(this.width, opts.featureShape ?? opts.inferredShape),
      numClasses: resolveNumClasses(labels, opts.numClasses),
      size: this.rows,
    };
  }
}

/** Checks a label value; returns an error message or undefined. */
export function labelProblem(y: number, numClasses: number | undefined): string | undefined {
  if (!Number.isInteger(y) || y < 0) return `label ${y} is not a non-negative integer`;
  if (numClasses !== undefined && y >= numClasses) return `label ${y} is not below numClasses ${numClasses}`;
  return undefined;
}
