/**
 * A stored model version → a tfjs LayersModel artifact (issue 14, item 6): `model.json` (topology,
 * format 'layers-model', one weights group in `weights.bin`) and `weights.bin` (the flat weights as
 * little-endian float32), loadable by `tf.loadLayersModel` from any URL that serves both files side by
 * side.
 *
 * The model is built by the project's own code (shared/model buildModel: the zoo or a layers spec) and
 * the weight specs come from its manifest (shared/model manifestOf: layer-scoped original names, the
 * order of model.getWeights(), which is the order of the flat vector). Those are the names tfjs writes
 * in its own `model.save` and matches on load, so nothing of the mapping is repeated here.
 */
import { gzipSync } from 'node:zlib';
import type * as tf from '@tensorflow/tfjs';
import { CohortError } from '../../shared/errors.ts';
import { buildModel, manifestOf, manifestSize, type WeightManifest } from '../../shared/model/index.ts';
import { encodeWeights, EXPORT_FORMATS, type ArtifactJson, type ExportFormat } from '../../shared/model/quantize.ts';
import type { JobConfig } from '../round/config.ts';

/** The name model.json's weights manifest points to. */
export const WEIGHTS_FILE = 'weights.bin';

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export interface ExportedModel {
  /** tfjs's ModelJSON: modelTopology, format, generatedBy, convertedBy, weightsManifest. */
  modelJson: tf.io.ModelJSON;
  weightsBin: Uint8Array;
  /** The manifest the weights were laid out by (name and shape, model weight order). */
  manifest: WeightManifest;
}

/**
 * Exports a version of a job's model (`weights`: a checkpoint's flat vector, `store.checkpoint(jobId, round).weights`).
 * `format` float16 and int8 are the compressed forms of shared/model/quantize.ts (issue 19): float16 is
 * tfjs's own manifest form; int8 (per-channel affine) needs shared/model's `artifactHandler` to load.
 */
export function exportVersion(
  config: Pick<JobConfig, 'model'>,
  weights: Float32Array,
  format: ExportFormat = 'float32',
  opts: { temperature?: number } = {},
): ExportedModel {
  const model = buildModel(config.model);
  let manifest: WeightManifest;
  let topology: tf.io.ModelJSON['modelTopology'];
  let output: { names: string[]; softmax: boolean };
  try {
    manifest = manifestOf(model);
    topology = model.toJSON(null, false) as tf.io.ModelJSON['modelTopology'];
    const last = model.layers[model.layers.length - 1];
    output = {
      names: last.weights.map((w) => w.originalName),
      softmax: last.getClassName() === 'Dense' && (last.getConfig() as { activation?: unknown }).activation === 'softmax',
    };
  } finally {
    model.dispose();
  }
  const expected = manifestSize(manifest);
  if (weights.length !== expected) {
    throw new CohortError('WRONG_LENGTH', `weight vector has ${weights.length} values, the model has ${expected}`, {
      expected,
      actual: weights.length,
    });
  }
  let metadata: { [key: string]: {} } | undefined;
  const T = opts.temperature;
  if (T !== undefined) {
    if (!(Number.isFinite(T) && T > 0)) throw new CohortError('OUT_OF_RANGE', `temperature must be a positive number, got ${T}`);
    if (output.softmax) {
      weights = foldTemperature(weights, manifest, output.names, T);
      metadata = { cohort: { temperature: T, applied: true, how: "the output layer's kernel and bias divided by T: softmax(z / T)" } };
    } else {
      metadata = { cohort: { temperature: T, applied: false, why: 'the last layer is not a Dense layer with a softmax activation; divide its logits by T before the softmax' } };
    }
  }
  let weightsBin: Uint8Array;
  let specs: tf.io.WeightsManifestEntry[];
  if (format === 'float32') {
    // The bytes as they are (bit for bit, NaN payloads included), swapped on a big-endian host.
    weightsBin = new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength).slice();
    if (!LITTLE_ENDIAN) for (let i = 0; i < weightsBin.length; i += 4) weightsBin.subarray(i, i + 4).reverse();
    specs = manifest.map(({ name, shape }) => ({ name, shape: [...shape], dtype: 'float32' as const }));
  } else {
    const encoded = encodeWeights(weights, manifest, format);
    weightsBin = encoded.bytes;
    // int8 entries carry a quantization dtype tfjs's type does not list (see quantize.ts).
    specs = encoded.specs as unknown as tf.io.WeightsManifestEntry[];
  }
  const modelJson: tf.io.ModelJSON = {
    modelTopology: topology,
    format: 'layers-model',
    generatedBy: 'cohort',
    convertedBy: null,
    weightsManifest: [
      {
        paths: [WEIGHTS_FILE],
        weights: specs,
      },
    ],
    ...(metadata ? { userDefinedMetadata: metadata } : {}),
  };
  return { modelJson, weightsBin, manifest };
}

/**
 * Temperature scaling (Guo et al. 2017) folded into the weights: for a last layer softmax(W·x + b),
 * softmax((W·x + b) / T) = softmax((W/T)·x + b/T), so dividing that layer's kernel and bias by T gives a
 * model that any tfjs runtime serves calibrated, with no extra layer. Returns a scaled copy.
 */
export function foldTemperature(weights: Float32Array, manifest: WeightManifest, names: readonly string[], T: number): Float32Array {
  const out = weights.slice();
  let offset = 0;
  for (const e of manifest) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    if (names.includes(e.name)) for (let i = offset; i < offset + n; i++) out[i] = out[i] / T;
    offset += n;
  }
  return out;
}

export interface ExportSize {
  format: ExportFormat;
  /** model.json + weights.bin, as served. */
  bytes: number;
  /** The same two files gzipped (level 9), as a CDN or HTTP compression would ship them. */
  gzipBytes: number;
  weightsBytes: number;
}

/** The sizes of a version's exports in every format, raw and gzipped. */
export function exportSizes(config: Pick<JobConfig, 'model'>, weights: Float32Array): ExportSize[] {
  return EXPORT_FORMATS.map((format) => sizeOf(exportVersion(config, weights, format), format));
}

export function sizeOf(e: Pick<ExportedModel, 'modelJson' | 'weightsBin'>, format: ExportFormat): ExportSize {
  const json = Buffer.from(JSON.stringify(e.modelJson));
  return {
    format,
    bytes: json.length + e.weightsBin.length,
    gzipBytes: gzipSync(json, { level: 9 }).length + gzipSync(e.weightsBin, { level: 9 }).length,
    weightsBytes: e.weightsBin.length,
  };
}

/** The exported model.json in the form shared/model's artifactHandler reads. */
export const asArtifactJson = (modelJson: tf.io.ModelJSON): ArtifactJson => modelJson as unknown as ArtifactJson;
