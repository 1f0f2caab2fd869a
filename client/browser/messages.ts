/**
 * What the page and the client's Web Worker say to each other (structured-clone messages). The page
 * side (index.ts) owns the public API and the keystore; the worker (worker.ts) owns the connection,
 * the protocol engine, training and secure aggregation, so nothing heavy runs on the page's thread.
 */
import type { PrivacyFloorInput } from '../engine/privacy-floor.ts';

/** The local examples: row-major features, integer labels, the shape of one example. */
export interface BrowserData {
  x: Float32Array;
  y: Int32Array;
  /** Shape of one example, e.g. [784] or [28, 28, 1]. */
  shape: number[];
  /** Default: the largest label + 1 (the model's class count is what training uses). */
  numClasses?: number;
}

/** Page → worker: start. */
export interface StartCommand {
  type: 'start';
  /** The coordinator's URL (http: or https:). */
  server: string;
  /** The job to join (namespace.ts finds where it lives); a welcome naming another job is an error. */
  job?: string;
  /** Default: derived from the identity's public key (random without an identity). */
  clientId?: string;
  data: BrowserData;
  /** Fraction of the examples held out for federated evaluation (0: evaluate on the training data). */
  testFraction: number;
  /** Directory URL (trailing slash) of the tfjs wasm binaries. */
  wasmBase: string;
  privacyFloor?: PrivacyFloorInput;
  /**
   * The device's long-term Ed25519 key: the IndexedDB record to use (created on first use) and the
   * certificate to store with it. The worker opens the keystore, so no key work runs on the page.
   */
  identity?: { name: string; certificate?: string; enrolToken?: string; caPublicKey?: string; maxRevocationAgeMs?: number };
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number; maxAttempts?: number };
  /**
   * Test-only: post each round's encoded (clipped, rounded, noised) but still unmasked input to the
   * page, so a test can check the coordinator's unmasked sum exactly. It never leaves the device.
   */
  exposeEncodedInputs?: boolean;
}

export type WorkerCommand = StartCommand | { type: 'leave' };

/** The round's privacy terms as announced with `train`. */
export interface RoundTerms {
  mode: 'central' | 'local' | 'distributed';
  noiseMultiplier: number;
  clipNorm: number;
  cohortSize: number;
  delta: number;
  epsilonSpent: number;
  epsilonAfterRound: number;
  secureAggregation: boolean;
}

/** Worker → page. */
export type WorkerEvent =
  | { type: 'ready'; backend: string; simd: boolean; numExamples: number; clientId: string; identityKey?: string }
  | { type: 'connected'; jobId: string; clientId: string }
  | { type: 'disconnected'; reason: string }
  | { type: 'sampled'; round: number; privacy?: RoundTerms }
  | { type: 'training'; round: number; phase: 'started' | 'finished'; ms?: number }
  | { type: 'uploaded'; round: number; numExamples: number; secureAggregation: boolean; ms: number }
  | { type: 'refused'; round: number; reason: string }
  | { type: 'evaluated'; round: number; numExamples: number; loss: number; accuracy: number }
  | { type: 'round'; round: number; outcome: 'committed' | 'aborted'; included: boolean }
  | { type: 'ended'; status: string; rounds: number }
  | { type: 'encoded'; round: number; bits: number; values: Uint32Array }
  | { type: 'error'; code: string; message: string; fatal: boolean }
  | { type: 'left' };
