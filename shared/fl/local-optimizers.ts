/**
 * Client-side (local) optimizers: what a client runs for its E epochs of local training. The job config
 * names one (`training.optimizer`); the coordinator sends it with `train`; the client builds it fresh
 * for every round, so its state (momentum buffer, Adam moments) starts at zero each round — the
 * "local state reset" of Reddi et al. 2021 ("Adaptive Federated Optimization", §3: client optimizers
 * restart every round). Nothing persists across rounds on the device.
 *
 *   sgd       w ← w − η g
 *   momentum  v ← μ v + g;  w ← w − η v               (Polyak heavy ball; Nesterov: w ← w − η (g + μ v))
 *   adam      Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", Algorithm 1 (with bias
 *             correction), as tf.train.adam implements it
 *
 * The learning rate η is `training.learningRate`. FedProx's proximal gradient μ_prox (w − w_global) is
 * added to g before the optimizer sees it, so FedProx composes with each of them. Clipping and noise act
 * on the update Δ = w_local − w_global after training, so no optimizer changes the privacy guarantee.
 */
import { z } from 'zod';

const beta = (fallback: number) => z.number().min(0).lt(1).default(fallback);

export const LocalOptimizerSchema = z.discriminatedUnion('name', [
  z.object({ name: z.literal('sgd') }).strict(),
  z
    .object({
      name: z.literal('momentum'),
      /** μ ∈ [0, 1): how much of the previous step is kept. */
      momentum: beta(0.9),
      nesterov: z.boolean().default(false),
    })
    .strict(),
  z
    .object({
      name: z.literal('adam'),
      beta1: beta(0.9),
      beta2: beta(0.999),
      /** Added to √v̂ (Kingma & Ba's ε); tfjs's default is 1e-7, Keras's too. */
      epsilon: z.number().positive().max(1).default(1e-7),
    })
    .strict(),
]);

export type LocalOptimizer = z.output<typeof LocalOptimizerSchema>;
export type LocalOptimizerInput = z.input<typeof LocalOptimizerSchema>;
export type LocalOptimizerName = LocalOptimizer['name'];
