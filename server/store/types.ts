/** Rows the store reads and writes. Times are ms since the Unix epoch. */

export const JOB_STATUSES = ['created', 'queued', 'running', 'paused', 'completed', 'failed', 'stopped', 'budget_exhausted'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const PARTICIPATION_STATUSES = ['completed', 'dropped', 'refused', 'rejected'] as const;
export type ParticipationStatus = (typeof PARTICIPATION_STATUSES)[number];

/** One client's part in one round attempt. */
export interface ParticipationEntry {
  clientId: string;
  status: ParticipationStatus;
}

export const EVALUATION_KINDS = ['federated', 'server'] as const;
export type EvaluationKind = (typeof EVALUATION_KINDS)[number];

export interface JobRow {
  id: string;
  /** The job's config as stored (parsed JSON). */
  config: unknown;
  configHash: string;
  status: JobStatus;
  reason: string | null;
  /** Last committed round; 0 when none has committed. */
  currentRound: number;
  createdAt: number;
  updatedAt: number;
}

export interface RoundRecord {
  startedAt: number;
  endedAt: number;
  cohortSize: number;
  survivors: number;
  dropouts: number;
  numExamples: number;
  trainLoss: number | null;
  trainAccuracy: number | null;
  metrics?: Record<string, number>;
}

export interface EvaluationRecord {
  loss: number;
  accuracy: number;
  numExamples: number;
  clients: number;
  kind: EvaluationKind;
}

export interface RoundRow extends RoundRecord {
  round: number;
  /** The round's federated evaluation if there is one, else its server evaluation, else null. */
  evaluation: EvaluationRecord | null;
}

export const DP_MODES = ['central', 'local', 'distributed'] as const;
export type LedgerMode = (typeof DP_MODES)[number];

/** What one committed round of a DP job spent, and under which assumptions. */
export interface LedgerEntry {
  mode: LedgerMode;
  /** e.g. 'gaussian' (central/local), 'distributed_discrete_gaussian'. */
  mechanism: string;
  sampling: 'poisson' | 'fixed';
  /** q: the Poisson rate, or cohort/population for fixed-size cohorts. */
  samplingRate: number;
  population: number;
  cohortSize: number;
  survivors: number;
  noiseMultiplier: number;
  clipNorm: number;
  /** The round's DP event (shared/privacy), as JSON-able data. */
  event: unknown;
  /** Cumulative ε at `delta` after this round. */
  epsilon: number;
  delta: number;
  rdpOrder: number | null;
  /** The trust assumption the guarantee rests on, in words. */
  trust: string;
}

export interface LedgerRow extends LedgerEntry {
  round: number;
  recordedAt: number;
}

export interface CommitRoundInput {
  jobId: string;
  round: number;
  weights: Float32Array;
  optimizerState: Uint8Array;
  checksum: string;
  record: RoundRecord;
  /** Required for DP jobs: the round's privacy cost, committed atomically with the model. */
  ledger?: LedgerEntry;
}

export interface AbortedRoundInput {
  jobId: string;
  round: number;
  startedAt: number;
  endedAt: number;
  cohortSize: number;
  survivors: number;
  reason: string;
}

/** One aborted attempt at a round; attempts are numbered 1, 2, … per (job, round). */
export interface RoundAttemptRow extends Omit<AbortedRoundInput, 'jobId'> {
  attempt: number;
}

export interface Checkpoint {
  round: number;
  /** A fresh, aligned copy owned by the caller. */
  weights: Float32Array<ArrayBuffer>;
  optimizerState: Uint8Array<ArrayBuffer>;
  checksum: string;
}

export interface ClientRow {
  id: string;
  firstSeen: number;
  lastSeen: number;
  /** Last reported number of local examples, if any. */
  numExamples: number | null;
  /** Distinct (job, round) pairs in which the client's update was aggregated. */
  roundsCompleted: number;
}

export interface StoreOptions {
  /** How many of the newest checkpoints to keep per job (default 3). */
  keepCheckpoints?: number;
  /** Clock for created/updated timestamps (tests). Default Date.now. */
  now?: () => number;
  /** How long a write waits for another connection's lock before SQLITE_BUSY (default 5000 ms). */
  busyTimeoutMs?: number;
  /** Fault-injection hook called inside the commit transaction (server/failpoints.ts). */
  failpoint?: (name: 'commit:in-transaction', round: number) => void;
}
