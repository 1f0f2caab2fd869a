/**
 * The standard client task: train and evaluate a tfjs model on local datasets. One LocalTrainer per
 * model spec, reused across rounds (the model graph is built once).
 */
import type { ModelSpec } from '../../shared/model/index.ts';
import type { TrainingParams } from '../../shared/protocol/index.ts';
import type { HealthRequest } from '../../shared/evaluation/index.ts';
import type { ClientTask, EvaluationResult, FitResult } from '../engine/index.ts';
import type { Dataset } from '../data/dataset.ts';
import { LocalTrainer } from './trainer.ts';

export interface TfjsTaskOptions {
  train: Dataset;
  /** Held-out local data for federated evaluation (defaults to the training data). */
  test?: Dataset;
  /** Seed for local shuffling; each round uses seed + round, so runs are reproducible. */
  seed?: number;
}

export class TfjsTask implements ClientTask {
  private trainer?: LocalTrainer;
  private trainerKey = '';

  constructor(private readonly opts: TfjsTaskOptions) {}

  get numExamples(): number {
    return this.opts.train.size;
  }

  async fit(weights: Float32Array, model: ModelSpec, training: TrainingParams, round: number): Promise<FitResult> {
    const seed = this.opts.seed === undefined ? undefined : this.opts.seed + round;
    const result = await this.trainerFor(model).train(weights, this.opts.train, { ...training, seed });
    return { delta: result.delta, numExamples: result.numExamples, metrics: result.metrics };
  }

  async evaluate(weights: Float32Array, model: ModelSpec, batchSize: number, health?: HealthRequest): Promise<EvaluationResult> {
    return this.trainerFor(model).evaluate(weights, this.opts.test ?? this.opts.train, batchSize, health);
  }

  dispose(): void {
    this.trainer?.dispose();
    this.trainer = undefined;
  }

  private trainerFor(model: ModelSpec): LocalTrainer {
    const key = JSON.stringify(model);
    if (!this.trainer || key !== this.trainerKey) {
      this.trainer?.dispose();
      this.trainer = new LocalTrainer(model);
      this.trainerKey = key;
    }
    return this.trainer;
  }
}
