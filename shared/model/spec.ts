/**
 * What model a job trains. Two forms:
 * - a zoo name (`logreg`, `mlp`, `cnn`) with optional input shape and class count, or
 * - `{ layers }`: a tfjs Layers model topology in Keras JSON form, exactly what
 *   `model.toJSON(null, false)` returns (or the `modelTopology` field of a saved model).
 *
 * The wire form also accepts the shorthand string `"mlp"`; the schema normalises it to `{ zoo: 'mlp' }`
 * and fills in the zoo defaults, so every consumer sees one complete shape.
 */
import { z } from 'zod';

export const ZOO_NAMES = ['logreg', 'mlp', 'cnn'] as const;
export type ZooName = (typeof ZOO_NAMES)[number];

export interface ZooSpec {
  zoo: ZooName;
  inputShape?: number[];
  numClasses?: number;
}
export interface LayersSpec {
  layers: Record<string, unknown>;
}
export type ModelSpec = ZooSpec | LayersSpec;

/** A zoo spec with every default filled in. */
export interface ResolvedZooSpec {
  zoo: ZooName;
  inputShape: number[];
  numClasses: number;
}

export const DEFAULT_NUM_CLASSES = 10;

/** MNIST-shaped defaults: flat 784 vectors for the dense models, 28×28×1 images for the CNN. */
export function defaultInputShape(zoo: ZooName): number[] {
  return zoo === 'cnn' ? [28, 28, 1] : [784];
}

export function isZooSpec(spec: ModelSpec): spec is ZooSpec {
  return 'zoo' in spec;
}

/** Fills in the defaults of a zoo spec (does not validate: the schema does that). */
export function resolveZooSpec(spec: ZooSpec): ResolvedZooSpec {
  return {
    zoo: spec.zoo,
    inputShape: spec.inputShape ? [...spec.inputShape] : defaultInputShape(spec.zoo),
    numClasses: spec.numClasses ?? DEFAULT_NUM_CLASSES,
  };
}

const dim = z.number().int().min(1).max(1 << 20);

const ZooSpecSchema = z
  .object({
    zoo: z.enum(ZOO_NAMES),
    inputShape: z.array(dim).min(1).max(4).optional(),
    numClasses: z.number().int().min(2).max(100_000).optional(),
  })
  .strict()
  .transform((spec): ZooSpec => resolveZooSpec(spec));

const LayersSpecSchema = z
  .object({
    layers: z
      .record(z.string(), z.unknown())
      .refine((t) => typeof t.class_name === 'string' || typeof t.model_config === 'object', {
        message: 'expected a tfjs Layers topology (an object with class_name, or a model_config)',
      }),
  })
  .strict();

/** Validates a model spec from a job file or the wire; output is always the object form. */
export const ModelSpecSchema = z.preprocess(
  (value) => (typeof value === 'string' ? { zoo: value } : value),
  z.union([ZooSpecSchema, LayersSpecSchema]),
);

// Compile-time check that the schema's output is a ModelSpec.
const _outputIsModelSpec: (v: z.output<typeof ModelSpecSchema>) => ModelSpec = (v) => v;
void _outputIsModelSpec;
