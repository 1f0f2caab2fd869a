/**
 * Distillation (Hinton et al. 2015) of a trained 2NN (199,210 weights) into a 784-32-10 student (25,450
 * weights, 7.8× smaller) on 1,000 unlabeled MNIST digits the coordinator holds (disjoint from the test
 * digits, labels never read): the student must come within 5 points of the teacher's accuracy on 500
 * held-out digits, and far above a student trained on nothing. Figures printed with COHORT_TEST_LOG=1.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel, flattenWeights, initialWeights, manifestOf, manifestSize, setFlatWeights, type ModelSpec } from '../../shared/model/index.ts';
import { loadMnist } from '../../simulations/datasets/mnist.ts';
import { distill } from './distill.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const TEACHER: ModelSpec = { zoo: 'mlp', inputShape: [784], numClasses: 10 };
const STUDENT: ModelSpec = {
  layers: tf
    .sequential({ name: 'student', layers: [tf.layers.dense({ inputShape: [784], units: 32, activation: 'relu', name: 's1' }), tf.layers.dense({ units: 10, activation: 'softmax', name: 'output' })] })
    .toJSON(null, false) as Record<string, unknown>,
};

function accuracy(spec: ModelSpec, weights: Float32Array, x: tf.Tensor, labels: Int32Array): number {
  const m = buildModel(spec);
  setFlatWeights(m, weights);
  const pred = tf.tidy(() => (m.predict(x) as tf.Tensor).argMax(-1).dataSync());
  m.dispose();
  return pred.filter((c, i) => c === labels[i]).length / labels.length;
}

describe('distill', () => {
  it('a 7.8× smaller student learns the teacher from unlabeled digits', async () => {
    const { train, test } = loadMnist({ trainSize: 2500, testSize: 500, seed: 23 });
    const teacherModel = buildModel(TEACHER);
    setFlatWeights(teacherModel, initialWeights(TEACHER, 1).weights);
    teacherModel.compile({ optimizer: tf.train.sgd(0.1), loss: 'sparseCategoricalCrossentropy' });
    const labelled = 1500;
    const xl = tf.tensor2d(train.features.subarray(0, labelled * 784), [labelled, 784]);
    const yl = tf.tensor1d(train.labels.subarray(0, labelled), 'float32');
    // no shuffling: the teacher (and so the test) is the same on every run
    await teacherModel.fit(xl, yl, { epochs: 5, batchSize: 50, verbose: 0, shuffle: false });
    tf.dispose([xl, yl]);
    const teacher = flattenWeights(teacherModel);
    const teacherSize = manifestSize(manifestOf(teacherModel));
    teacherModel.dispose();
    // the coordinator's unlabeled set: the other 1,000 training digits, labels unused
    const unlabeled = train.features.subarray(labelled * 784);
    const student = await distill({ teacher: { model: TEACHER, weights: teacher }, student: STUDENT, inputs: unlabeled, inputShape: [784], epochs: 5, batchSize: 50, seed: 2 });
    const xt = tf.tensor2d(test.features, [test.size, 784]);
    const accTeacher = accuracy(TEACHER, teacher, xt, test.labels);
    const accStudent = accuracy(STUDENT, student, xt, test.labels);
    const accUntrained = accuracy(STUDENT, initialWeights(STUDENT, 2).weights, xt, test.labels);
    xt.dispose();
    if (process.env.COHORT_TEST_LOG) console.log(JSON.stringify({ teacherSize, studentSize: student.length, accTeacher, accStudent, accUntrained }));
    expect(student.length).toBe(784 * 32 + 32 + 32 * 10 + 10);
    expect(teacherSize / student.length).toBeGreaterThan(7.8);
    expect(accTeacher).toBeGreaterThan(0.8);
    expect(accStudent).toBeGreaterThan(accTeacher - 0.05);
    expect(accStudent).toBeGreaterThan(accUntrained + 0.5);
  }, 300_000);
});
