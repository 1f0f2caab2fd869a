/**
 * Compressed weight encodings for on-device models (issue 19): float16, and int8 with a per-channel
 * affine map.
 *
 * - float16: IEEE 754 binary16, round to nearest even. tfjs's weights manifest has this form
 *   (`quantization: {dtype: 'float16'}`), so a stock `tf.loadLayersModel` dequantises it.
 * - int8: Jacob et al. 2018, "Quantization and Training of Neural Networks for Efficient
 *   Integer-Arithmetic-Only Inference" (CVPR), §2.1: r = S·(q − Z), one (S, Z) per output channel
 *   (the last axis of a kernel: Keras lays out dense kernels [in, out] and conv kernels [h, w, in, out]),
 *   q ∈ [−128, 127]. Each channel's range is widened to include 0 so that zero is exact (§2.1: padding,
 *   and here pruned weights, stay exactly zero). 1-D weights (biases) stay float32, as in the paper,
 *   where biases keep a wider type (§2.4).
 *
 *   tfjs's manifest knows only one (scale, min) per tensor for uint8/uint16. Per-channel entries are
 *   written with `quantization.dtype: 'int8'`, which a stock loader refuses loudly (it names the
 *   unsupported dtype) rather than misreading; `decodeArtifact` (or `artifactHandler`, an IOHandler for
 *   `tf.loadLayersModel`) dequantises every form, float32 and float16 included.
 */
import * as tf from '@tensorflow/tfjs';
import { CohortError } from '../errors.ts';
import type { WeightManifest } from './weights.ts';

export const EXPORT_FORMATS = ['float32', 'float16', 'int8'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** A weights-manifest entry as we write it (tfjs's own, plus the per-channel int8 form). */
export interface QuantizedWeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32';
  quantization?: { dtype: 'float16' } | { dtype: 'int8'; axis: number; scales: number[]; zeroPoints: number[] };
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

// ---- float16 -----------------------------------------------------------------------------------

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** binary32 → binary16 bits, round to nearest even; overflow → ±Inf, NaN stays NaN. */
export function float16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf, NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    // subnormal half (or zero): shift the implicit-one mantissa right, rounding to nearest even
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1))) m++;
    return sign | m;
  }
  let bits = sign | (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (bits & 1))) bits++; // carries into the exponent correctly
  return bits;
}

/** binary16 bits → number (exact). */
export function float16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

// ---- int8, per-channel affine ---------------------------------------------------------------------

export interface ChannelAffine {
  scales: Float32Array;
  zeroPoints: Int32Array;
}

/** (S, Z) per channel of the last axis, each channel's [min, max] widened to include 0 (Jacob et al. §2.1). */
export function channelAffine(values: Float32Array, channels: number): ChannelAffine {
  const lo = new Float64Array(channels);
  const hi = new Float64Array(channels);
  for (let i = 0; i < values.length; i++) {
    const c = i % channels;
    const v = values[i];
    if (v < lo[c]) lo[c] = v;
    if (v > hi[c]) hi[c] = v;
  }
  const scales = new Float32Array(channels);
  const zeroPoints = new Int32Array(channels);
  for (let c = 0; c < channels; c++) {
    const range = hi[c] - lo[c];
    const s = range > 0 ? Math.fround(range / 255) : 1;
    scales[c] = s;
    zeroPoints[c] = Math.min(127, Math.max(-128, Math.round(-128 - lo[c] / s)));
  }
  return { scales, zeroPoints };
}

/** q = clamp(round(r / S) + Z) per element. */
export function quantizeInt8(values: Float32Array, affine: ChannelAffine): Int8Array {
  const channels = affine.scales.length;
  const q = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const c = i % channels;
    q[i] = Math.min(127, Math.max(-128, Math.round(values[i] / affine.scales[c]) + affine.zeroPoints[c]));
  }
  return q;
}

/** r = S·(q − Z) per element, into `out`. */
export function dequantizeInt8(q: Int8Array, scales: ArrayLike<number>, zeroPoints: ArrayLike<number>, out: Float32Array): void {
  const channels = scales.length;
  for (let i = 0; i < q.length; i++) {
    const c = i % channels;
    out[i] = scales[c] * (q[i] - zeroPoints[c]);
  }
}

// ---- encode a flat weight vector ---------------------------------------------------------------------

export interface EncodedWeights {
  specs: QuantizedWeightSpec[];
  /** The weight bytes, little-endian, in manifest order. */
  bytes: Uint8Array;
}

function checkFinite(values: Float32Array, name: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new CohortError('NON_FINITE', `weight ${name} has a non-finite value at ${i}: it cannot be quantised`);
  }
}

/**
 * Lays out a flat weight vector (manifest order) in the given format. float32 is the bytes as they are
 * (little-endian); float16 every weight; int8 every weight of rank ≥ 2, per output channel.
 */
export function encodeWeights(flat: Float32Array, manifest: WeightManifest, format: ExportFormat): EncodedWeights {
  const parts: Uint8Array[] = [];
  const specs: QuantizedWeightSpec[] = [];
  let offset = 0;
  for (const { name, shape } of manifest) {
    const n = sizeOf(shape);
    const values = flat.subarray(offset, offset + n);
    offset += n;
    if (format === 'float32' || (format === 'int8' && shape.length < 2)) {
      const le = new DataView(new ArrayBuffer(n * 4));
      for (let i = 0; i < n; i++) le.setFloat32(i * 4, values[i], true);
      parts.push(new Uint8Array(le.buffer));
      specs.push({ name, shape: [...shape], dtype: 'float32' });
    } else if (format === 'float16') {
      const le = new DataView(new ArrayBuffer(n * 2));
      for (let i = 0; i < n; i++) le.setUint16(i * 2, float16Bits(values[i]), true);
      parts.push(new Uint8Array(le.buffer));
      specs.push({ name, shape: [...shape], dtype: 'float32', quantization: { dtype: 'float16' } });
    } else {
      checkFinite(values, name);
      const channels = shape[shape.length - 1];
      const affine = channelAffine(values, channels);
      const q = quantizeInt8(values, affine);
      parts.push(new Uint8Array(q.buffer));
      specs.push({
        name,
        shape: [...shape],
        dtype: 'float32',
        quantization: { dtype: 'int8', axis: shape.length - 1, scales: Array.from(affine.scales), zeroPoints: Array.from(affine.zeroPoints) },
      });
    }
  }
  if (offset !== flat.length) {
    throw new CohortError('WRONG_LENGTH', `weight vector has ${flat.length} values, the model has ${offset}`, { expected: offset, actual: flat.length });
  }
  const bytes = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  return { specs, bytes };
}

/** Bytes one entry takes in weights.bin. */
function entryBytes(spec: QuantizedWeightSpec): number {
  const n = sizeOf(spec.shape);
  const q = spec.quantization?.dtype;
  return q === 'int8' ? n : q === 'float16' ? 2 * n : 4 * n;
}

/** weights.bin → the flat float32 vector, in manifest order (the inverse of encodeWeights, up to its rounding). */
export function decodeWeights(specs: readonly QuantizedWeightSpec[], bytes: Uint8Array): Float32Array {
  const total = specs.reduce((s, spec) => s + sizeOf(spec.shape), 0);
  const expectedBytes = specs.reduce((s, spec) => s + entryBytes(spec), 0);
  if (bytes.length !== expectedBytes) {
    throw new CohortError('WRONG_LENGTH', `weights have ${bytes.length} bytes, the manifest describes ${expectedBytes}`, { expected: expectedBytes, actual: bytes.length });
  }
  const out = new Float32Array(total);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  let offset = 0;
  for (const spec of specs) {
    const n = sizeOf(spec.shape);
    const dst = out.subarray(offset, offset + n);
    const q = spec.quantization;
    if (!q) {
      for (let i = 0; i < n; i++) dst[i] = view.getFloat32(at + 4 * i, true);
    } else if (q.dtype === 'float16') {
      for (let i = 0; i < n; i++) dst[i] = float16Value(view.getUint16(at + 2 * i, true));
    } else {
      const channels = spec.shape[spec.shape.length - 1];
      if (q.axis !== spec.shape.length - 1 || q.scales.length !== channels || q.zeroPoints.length !== channels) {
        throw new CohortError('BAD_MODEL_SPEC', `weight ${spec.name}: int8 quantisation must have one scale and zero point per channel of the last axis`);
      }
      dequantizeInt8(new Int8Array(bytes.buffer, bytes.byteOffset + at, n), q.scales, q.zeroPoints, dst);
    }
    at += entryBytes(spec);
    offset += n;
  }
  return out;
}

// ---- loading into tfjs ----------------------------------------------------------------------------

/** A model.json whose weights manifest may carry our per-channel int8 entries. */
export interface ArtifactJson {
  modelTopology: unknown;
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  weightsManifest: { paths: string[]; weights: QuantizedWeightSpec[] }[];
}

/** model.json + weights.bin (any of our formats) → float32 ModelArtifacts tfjs loads as they are. */
export function decodeArtifact(modelJson: ArtifactJson, weightsBin: Uint8Array): tf.io.ModelArtifacts {
  const specs = modelJson.weightsManifest.flatMap((g) => g.weights);
  const flat = decodeWeights(specs, weightsBin);
  return {
    modelTopology: modelJson.modelTopology as tf.io.ModelArtifacts['modelTopology'],
    format: modelJson.format ?? 'layers-model',
    generatedBy: modelJson.generatedBy ?? 'cohort',
    convertedBy: modelJson.convertedBy ?? null,
    weightSpecs: specs.map(({ name, shape }) => ({ name, shape: [...shape], dtype: 'float32' })),
    weightData: flat.buffer.slice(flat.byteOffset, flat.byteOffset + flat.byteLength) as ArrayBuffer,
  };
}

/** An IOHandler for `tf.loadLayersModel(artifactHandler(json, bin))` that dequantises every format. */
export function artifactHandler(modelJson: ArtifactJson, weightsBin: Uint8Array): tf.io.IOHandler {
  return { load: async () => decodeArtifact(modelJson, weightsBin) };
}
