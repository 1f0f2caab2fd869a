/**
 * A transfer-learning job's starting point (issue 19): its pretrained base, resolved to the job's flat
 * weight vector, and the trainable selection every update is cut to.
 *
 * The base is an earlier job's kept version in the same store, or a tfjs artifact on disk (model.json and
 * the weight files its manifest names; float32, float16 or our int8, shared/model/quantize.ts). Weights
 * are matched by name and shape; the rest keep the job's seeded initial values (a new head), and every
 * frozen weight must come from the base — a ConfigError says which does not.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError } from '../../shared/errors.ts';
import {
  decodeWeights,
  initialWeights,
  modelLayers,
  layerOfWeight,
  resolveFrozenLayers,
  trainableSelection,
  type ArtifactJson,
  type ModelSpec,
  type TrainableSelection,
  type WeightManifest,
} from '../../shared/model/index.ts';
import type { CohortStore } from '../store/index.ts';
import type { JobConfig } from './config.ts';

/** The job's trainable selection (every weight when it has no `transfer`). */
export function selectionOf(config: Pick<JobConfig, 'model' | 'transfer'>, manifest: WeightManifest): TrainableSelection {
  const frozen = config.transfer ? resolveFrozenLayers(config.model, config.transfer) : [];
  return trainableSelection(manifest, frozen);
}

interface BaseWeights {
  manifest: WeightManifest;
  weights: Float32Array;
  from: string;
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function fromArtifact(path: string): BaseWeights {
  let json: ArtifactJson;
  try {
    json = JSON.parse(readFileSync(path, 'utf8')) as ArtifactJson;
  } catch (err) {
    throw new ConfigError(`transfer.base.path: cannot read a tfjs model.json at ${path}: ${(err as Error).message}`);
  }
  if (!Array.isArray(json.weightsManifest)) throw new ConfigError(`transfer.base.path: ${path} has no weightsManifest`);
  const dir = dirname(path);
  const specs = json.weightsManifest.flatMap((g) => g.weights);
  const parts = json.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(join(dir, p))));
  const bytes = new Uint8Array(Buffer.concat(parts));
  return { manifest: specs.map(({ name, shape }) => ({ name, shape })), weights: decodeWeights(specs, bytes), from: path };
}

function fromJob(store: CohortStore, job: string, round: number | undefined): BaseWeights {
  const row = store.getJob(job);
  if (!row) throw new ConfigError(`transfer.base.job: no job '${job}' in ${store.path}`);
  const checkpoint = round === undefined ? store.latestCheckpoint(job) : store.checkpoint(job, round);
  if (!checkpoint) throw new ConfigError(`transfer.base: job '${job}' has no kept version ${round ?? '(none committed)'}; kept: ${store.checkpointRounds(job).join(', ') || 'none'}`);
  const model = (row.config as { model: ModelSpec }).model;
  return { manifest: modelLayers(model).manifest, weights: checkpoint.weights, from: `job ${job} version ${checkpoint.round}` };
}

/**
 * The job's initial weights: its seeded initialisation, overwritten by the base's weights of the same
 * name and shape. Refuses a base that lacks a frozen weight or has it in another shape.
 */
export function initialJobWeights(config: JobConfig, store: CohortStore): { weights: Float32Array; copied: string[]; from?: string } {
  const { weights, manifest } = initialWeights(config.model, config.seed);
  const base = config.transfer?.base;
  if (!base) return { weights, copied: [] };
  const b = 'path' in base ? fromArtifact(base.path) : fromJob(store, base.job, base.round);
  const offsets = new Map<string, { offset: number; shape: number[] }>();
  let at = 0;
  for (const e of b.manifest) {
    offsets.set(e.name, { offset: at, shape: e.shape });
    at += sizeOf(e.shape);
  }
  if (at !== b.weights.length) throw new ConfigError(`transfer.base: ${b.from} has ${b.weights.length} weights, its manifest describes ${at}`);
  const frozen = new Set(config.transfer?.freeze || config.transfer?.trainableFrom !== undefined ? resolveFrozenLayers(config.model, config.transfer) : []);
  const copied: string[] = [];
  let offset = 0;
  for (const e of manifest) {
    const n = sizeOf(e.shape);
    const src = offsets.get(e.name);
    const fits = src && src.shape.length === e.shape.length && src.shape.every((d, i) => d === e.shape[i]);
    if (fits) {
      weights.set(b.weights.subarray(src.offset, src.offset + n), offset);
      copied.push(e.name);
    } else if (frozen.has(layerOfWeight(e.name))) {
      throw new ConfigError(
        src
          ? `transfer.base: frozen weight ${e.name} is [${e.shape}] in the job's model but [${src.shape}] in ${b.from}`
          : `transfer.base: frozen weight ${e.name} is not in ${b.from} (it has ${b.manifest.map((m) => m.name).join(', ')})`,
      );
    }
    offset += n;
  }
  return { weights, copied, from: b.from };
}
