/**
 * The built-in models. Layer names are fixed (not tfjs's process-global counters) so that weight names
 * in the manifest are the same on the coordinator and on every client.
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors.ts';
import type { ResolvedZooSpec, ZooName } from './spec.ts';

type ZooBuilder = (inputShape: number[], numClasses: number) => tf.LayersModel;

/** Multinomial logistic regression: (flatten) → dense(numClasses, softmax). */
function logreg(inputShape: number[], numClasses: number): tf.LayersModel {
  const layers: tf.layers.Layer[] = [];
  if (inputShape.length > 1) layers.push(tf.layers.flatten({ inputShape, name: 'flatten' }));
  layers.push(
    tf.layers.dense({
      ...(inputShape.length > 1 ? {} : { inputShape }),
      units: numClasses,
      activation: 'softmax',
      name: 'output',
    }),
  );
  return tf.sequential({ name: 'logreg', layers });
}

/**
 * The "2NN" of McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks from
 * Decentralized Data" (AISTATS): two fully connected ReLU layers of 200 units and a softmax output.
 * 199,210 parameters on a 784 input with 10 classes.
 */
function mlp(inputShape: number[], numClasses: number): tf.LayersModel {
  const layers: tf.layers.Layer[] = [];
  const flat = inputShape.length > 1;
  if (flat) layers.push(tf.layers.flatten({ inputShape, name: 'flatten' }));
  layers.push(
    tf.layers.dense({ ...(flat ? {} : { inputShape }), units: 200, activation: 'relu', name: 'fc1' }),
    tf.layers.dense({ units: 200, activation: 'relu', name: 'fc2' }),
    tf.layers.dense({ units: numClasses, activation: 'softmax', name: 'output' }),
  );
  return tf.sequential({ name: 'mlp', layers });
}

/**
 * The CNN of McMahan et al. 2017: two 5×5 convolutions (32 and 64 channels, ReLU, 'same' padding),
 * each followed by 2×2 max pooling, a 512-unit ReLU layer and a softmax output.
 * 1,663,370 parameters on 28×28×1 input with 10 classes.
 */
function cnn(inputShape: number[], numClasses: number): tf.LayersModel {
  if (inputShape.length !== 3) {
    throw new ConfigError(`model 'cnn' needs an image input shape [height, width, channels], got [${inputShape}]`);
  }
  const conv = (filters: number, name: string, first: boolean): tf.layers.Layer =>
    tf.layers.conv2d({
      ...(first ? { inputShape } : {}),
      filters,
      kernelSize: 5,
      padding: 'same',
      activation: 'relu',
      name,
    });
  const pool = (name: string): tf.layers.Layer => tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name });
  return tf.sequential({
    name: 'cnn',
    layers: [
      conv(32, 'conv1', true),
      pool('pool1'),
      conv(64, 'conv2', false),
      pool('pool2'),
      tf.layers.flatten({ name: 'flatten' }),
      tf.layers.dense({ units: 512, activation: 'relu', name: 'fc1' }),
      tf.layers.dense({ units: numClasses, activation: 'softmax', name: 'output' }),
    ],
  });
}

const ZOO: Record<ZooName, ZooBuilder> = { logreg, mlp, cnn };

/** Builds (does not compile) a zoo model. */
export function buildZooModel(spec: ResolvedZooSpec): tf.LayersModel {
  return ZOO[spec.zoo](spec.inputShape, spec.numClasses);
}
