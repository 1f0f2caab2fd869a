/**
 * Server-side knowledge distillation (issue 19): Hinton, Vinyals, Dean 2015, "Distilling the Knowledge
 * in a Neural Network". A smaller student learns the global model's (the teacher's) softened outputs on
 * unlabeled inputs the coordinator holds — public or synthetic data, never a client's — so it needs no
 * client data and spends no privacy budget (post-processing of a released model).
 *
 * Our zoo models end in a softmax, so the teacher's logits are log p (up to a constant, which a softmax
 * ignores): the soft targets are softmax(log p / T) = p^(1/T) / Σ p^(1/T), and the student's softened
 * output likewise. The loss is T² · cross-entropy(soft targets, student's softened output) (§2: the T²
 * keeps the gradients' scale as T changes).
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../../shared/errors.ts';
import { buildModel, flattenWeights, initialWeights, setFlatWeights, type ModelSpec } from '../../shared/model/index.ts';
import { seededRng, shuffleInPlace } from '../../shared/random.ts';

export interface DistillOptions {
  teacher: { model: ModelSpec; weights: Float32Array };
  student: ModelSpec;
  /** Unlabeled inputs, row-major: n × prod(inputShape). */
  inputs: Float32Array;
  inputShape: number[];
  /** Softmax temperature T (default 4). */
  temperature?: number;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  seed?: number;
}

const LOG_FLOOR = 1e-7;

/** Softened log-probabilities log softmax(log p / T) of a softmax output p. */
function softLog(p: tf.Tensor, t: number): tf.Tensor {
  return tf.logSoftmax(tf.div(tf.log(tf.clipByValue(p, LOG_FLOOR, 1)), t));
}

/** Trains the student on the teacher's softened outputs; returns its flat weights (manifest order). */
export async function distill(o: DistillOptions): Promise<Float32Array> {
  const T = o.temperature ?? 4;
  const epochs = o.epochs ?? 5;
  const batchSize = o.batchSize ?? 32;
  if (!(T > 0) || !Number.isInteger(epochs) || epochs < 1 || !Number.isInteger(batchSize) || batchSize < 1) {
    throw new ConfigError('distill: temperature > 0, epochs and batchSize positive integers');
  }
  const width = o.inputShape.reduce((a, b) => a * b, 1);
  if (o.inputs.length % width !== 0 || o.inputs.length === 0) throw new ConfigError(`distill: ${o.inputs.length} input values are not rows of ${width}`);
  const n = o.inputs.length / width;
  const teacher = buildModel(o.teacher.model);
  const student = buildModel(o.student);
  const optimizer = tf.train.adam(o.learningRate ?? 0.003);
  try {
    setFlatWeights(teacher, o.teacher.weights);
    setFlatWeights(student, initialWeights(o.student, o.seed ?? 0).weights);
    // The teacher's soft targets, once.
    const targets = tf.tidy(() => {
      const x = tf.tensor(o.inputs, [n, ...o.inputShape]);
      return tf.exp(softLog(teacher.predict(x) as tf.Tensor, T));
    });
    const x = tf.tensor(o.inputs, [n, ...o.inputShape]);
    const rng = seededRng(o.seed ?? 0);
    const vars = student.trainableWeights.map((w) => w.read() as tf.Variable);
    try {
      for (let epoch = 0; epoch < epochs; epoch++) {
        const order = Int32Array.from({ length: n }, (_, i) => i);
        shuffleInPlace(order, rng);
        for (let start = 0; start < n; start += batchSize) {
          const idx = tf.tensor1d(order.subarray(start, Math.min(n, start + batchSize)), 'int32');
          optimizer.minimize(
            () => {
              const xb = tf.gather(x, idx);
              const tb = tf.gather(targets, idx);
              const logq = softLog(student.apply(xb, { training: true }) as tf.Tensor, T);
              return tf.mul(tf.neg(tf.mean(tf.sum(tf.mul(tb, logq), -1))), T * T) as tf.Scalar;
            },
            false,
            vars,
          );
          idx.dispose();
        }
      }
    } finally {
      tf.dispose([x, targets]);
    }
    return flattenWeights(student);
  } finally {
    optimizer.dispose();
    teacher.dispose();
    student.dispose();
  }
}
