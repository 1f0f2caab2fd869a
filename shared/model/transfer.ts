/**
 * Transfer learning with a frozen base (issue 19): which of a model's weights are trainable, and the
 * trainable slice of a flat weight vector.
 *
 * A job names frozen layers (`freeze: ["conv1", "conv2"]`) or the first trainable one (`trainableFrom:
 * "fc1"`: every layer before it, in model order, is frozen). Only the trainable weights travel and are
 * aggregated: a client's update, its clipping and noise, the SecAgg vector and the coordinator's sum all
 * have the trainable dimension, and the frozen part of the global model never changes (Yosinski et al.
 * 2014, "How transferable are features in deep neural networks?", for why the early layers transfer).
 *
 * A weight belongs to the layer its manifest name starts with (`fc1/kernel` → `fc1`): the layer-scoped
 * names shared/model/weights.ts fixes.
 */
import { ConfigError } from '../errors.ts';
import { buildModel } from './build.ts';
import type { ModelSpec } from './spec.ts';
import { manifestOf, type WeightManifest } from './weights.ts';

export interface FreezeSpec {
  freeze?: readonly string[];
  trainableFrom?: string;
}

/** Contiguous runs of trainable scalars in the flat vector, in order. */
export interface TrainableSelection {
  segments: { offset: number; length: number }[];
  /** Trainable scalars: the length of an update. */
  dim: number;
  /** All scalars of the model. */
  total: number;
  frozenLayers: string[];
}

export const layerOfWeight = (name: string): string => name.split('/')[0];

/** The model's layer names in order and its weight manifest (builds the model once). */
export function modelLayers(spec: ModelSpec): { layers: string[]; manifest: WeightManifest } {
  const model = buildModel(spec);
  try {
    return { layers: model.layers.map((l) => l.name), manifest: manifestOf(model) };
  } finally {
    model.dispose();
  }
}

/**
 * The frozen layer names a freeze spec means for a model, in model order. Unknown names, both forms at
 * once, or nothing left to train are ConfigErrors that name the model's layers.
 */
export function resolveFrozenLayers(spec: ModelSpec, freeze: FreezeSpec): string[] {
  const { layers, manifest } = modelLayers(spec);
  return frozenLayersOf(layers, manifest, freeze);
}

export function frozenLayersOf(layers: readonly string[], manifest: WeightManifest, freeze: FreezeSpec): string[] {
  const known = `the model's layers are ${layers.join(', ')}`;
  if (freeze.freeze && freeze.trainableFrom !== undefined) throw new ConfigError('transfer: give either freeze or trainableFrom, not both');
  let frozen: Set<string>;
  if (freeze.trainableFrom !== undefined) {
    const at = layers.indexOf(freeze.trainableFrom);
    if (at < 0) throw new ConfigError(`transfer.trainableFrom: no layer '${freeze.trainableFrom}'; ${known}`);
    frozen = new Set(layers.slice(0, at));
  } else {
    const unknown = (freeze.freeze ?? []).filter((n) => !layers.includes(n));
    if (unknown.length) throw new ConfigError(`transfer.freeze: no layer ${unknown.map((n) => `'${n}'`).join(', ')}; ${known}`);
    frozen = new Set(freeze.freeze ?? []);
  }
  if (manifest.every((w) => frozen.has(layerOfWeight(w.name)))) {
    throw new ConfigError(`transfer: every weight would be frozen (${[...frozen].join(', ')}); nothing is left to train`);
  }
  return layers.filter((l) => frozen.has(l));
}

/** The trainable slice of a manifest with the given layers frozen. */
export function trainableSelection(manifest: WeightManifest, frozenLayers: readonly string[]): TrainableSelection {
  const frozen = new Set(frozenLayers);
  const segments: TrainableSelection['segments'] = [];
  let offset = 0;
  let dim = 0;
  for (const w of manifest) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    if (!frozen.has(layerOfWeight(w.name))) {
      const last = segments.at(-1);
      if (last && last.offset + last.length === offset) last.length += n;
      else segments.push({ offset, length: n });
      dim += n;
    }
    offset += n;
  }
  return { segments, dim, total: offset, frozenLayers: [...frozenLayers] };
}

/** The trainable scalars of a full vector, concatenated. */
export function gatherTrainable(full: Float32Array, sel: TrainableSelection): Float32Array {
  if (full.length !== sel.total) throw new RangeError(`gatherTrainable: vector has ${full.length} values, the model ${sel.total}`);
  const out = new Float32Array(sel.dim);
  let at = 0;
  for (const s of sel.segments) {
    out.set(full.subarray(s.offset, s.offset + s.length), at);
    at += s.length;
  }
  return out;
}

/** Writes a trainable slice back into a full vector (in place); the frozen scalars are untouched. */
export function scatterTrainable(full: Float32Array, trainable: Float32Array, sel: TrainableSelection): void {
  if (full.length !== sel.total || trainable.length !== sel.dim) throw new RangeError('scatterTrainable: lengths do not match the selection');
  let at = 0;
  for (const s of sel.segments) {
    full.set(trainable.subarray(at, at + s.length), s.offset);
    at += s.length;
  }
}
