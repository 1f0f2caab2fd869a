/**
 * ModelSpec → tf.LayersModel, synchronously.
 *
 * tfjs only offers an async loader for topology JSON (`tf.models.modelFromJSON`, async because it may
 * fetch weights). We never ship weights inside the spec, so we deserialize synchronously: convert the
 * Keras-style JSON (snake_case) to tfjs's internal config form (camelCase) and call the registered
 * class's `fromConfig`, which is what tfjs does internally once the weights question is out of the way.
 * A test checks the result against `modelFromJSON`.
 */
import * as tf from '@tensorflow/tfjs';
import { CohortError } from '../errors.ts';
import { buildZooModel } from './zoo.ts';
import { isZooSpec, resolveZooSpec, type ModelSpec } from './spec.ts';

/** A model spec that does not describe a buildable model. */
export class ModelSpecError extends CohortError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('BAD_MODEL_SPEC', message, details);
  }
}

/** Builds a fresh, uncompiled model. Weights are tfjs's initial values: callers set their own. */
export function buildModel(spec: ModelSpec): tf.LayersModel {
  if (isZooSpec(spec)) return buildZooModel(resolveZooSpec(spec));
  return modelFromTopology(spec.layers);
}

// Keys under which the first item of an array is a layer name, which must not be renamed.
const LAYER_NAME_KEYS = new Set(['inboundNodes', 'inputLayers', 'outputLayers']);

/** snake_case → camelCase, leaving identifiers without underscores as they are. */
function camel(identifier: string): string {
  if (identifier.length <= 1 || !identifier.includes('_')) return identifier;
  return identifier.replace(/_+(\w|$)/g, (_match, next: string) => next.toUpperCase());
}

/**
 * Keras JSON → tfjs ConfigDict: keys and string values to camelCase, except `name` values and layer
 * names in node lists (tfjs's config convention, see tf.serialization.ConfigDict).
 */
function toTfjsConfig(value: unknown, key?: string): tf.serialization.ConfigDictValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return camel(value);
  if (typeof value === 'number' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) {
    return value.map((item, i) =>
      key !== undefined && LAYER_NAME_KEYS.has(key) && i === 0 && typeof item === 'string'
        ? item
        : toTfjsConfig(item, key),
    ) as tf.serialization.ConfigDictArray;
  }
  const out: tf.serialization.ConfigDict = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k === 'name' && typeof v === 'string') {
      out[k] = v;
    } else {
      const ck = camel(k);
      out[ck] = toTfjsConfig(v, ck);
    }
  }
  return out;
}

function modelFromTopology(topology: Record<string, unknown>): tf.LayersModel {
  const modelConfig = (topology.model_config ?? topology) as Record<string, unknown>;
  const className = modelConfig.class_name;
  if (typeof className !== 'string' || typeof modelConfig.config !== 'object') {
    throw new ModelSpecError('layers spec: expected {class_name, config} (the output of model.toJSON(null, false))');
  }
  const registered = tf.serialization.SerializationMap.getMap().classNameMap[className];
  if (!registered) throw new ModelSpecError(`layers spec: unknown model class '${className}'`);
  const [cls, fromConfig] = registered;
  let model: tf.serialization.Serializable;
  try {
    model = fromConfig(cls, toTfjsConfig(modelConfig.config) as tf.serialization.ConfigDict);
  } catch (err) {
    throw new ModelSpecError(`layers spec does not build: ${(err as Error).message}`, { className });
  }
  if (!(model instanceof tf.LayersModel)) {
    throw new ModelSpecError(`layers spec: class '${className}' is not a model`);
  }
  return model;
}
