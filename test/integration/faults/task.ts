/** What the fault-matrix clients run (in the test process and in victim processes): no vitest here. */
import type { ClientTask } from '../../../client/engine/index.ts';

export const MODEL = { zoo: 'logreg', inputShape: [8], numClasses: 2 } as const;
/** Parameters of MODEL: 8 × 2 weights + 2 biases. */
export const DIM = 8 * 2 + 2;

/** A fixed, client-specific update after a short pause (long enough for SecAgg's key exchange to overlap). */
export class FixedTask implements ClientTask {
  readonly numExamples: number;
  constructor(
    readonly index: number,
    private readonly fitMs = 60,
  ) {
    this.numExamples = 10 + index;
  }
  async fit(..._args: Parameters<ClientTask['fit']>) {
    await new Promise((r) => setTimeout(r, this.fitMs));
    const delta = Float32Array.from({ length: DIM }, (_, j) => 0.02 * Math.cos(j * (this.index + 1)));
    return { delta, numExamples: this.numExamples, metrics: { loss: 1 / (1 + this.index), accuracy: 0.5 } };
  }
  async evaluate(..._args: Parameters<ClientTask['evaluate']>) {
    return { numExamples: this.numExamples, loss: 0.5, accuracy: 0.75 };
  }
}

/** Where a victim dies: inside fit, on receiving `evaluate`, or on receiving a SecAgg request (before answering). */
export type VictimDeath =
  | 'fit'
  | 'evaluate'
  | 'secagg_advertise_request'
  | 'secagg_share_keys_request'
  | 'secagg_masked_input_request'
  | 'secagg_consistency_request'
  | 'secagg_unmask_request';
