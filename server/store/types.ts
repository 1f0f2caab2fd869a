/** Rows the store reads and writes. Times are ms since the Unix epoch. */
import type { HealthReport } from '../../shared/evaluation/index.ts';
import { DP_MODES as ALL_DP_MODES, type DpMode } from '../../shared/dp/modes.ts';

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
  /** Model health from the evaluators' additive statistics (schema v7), when they were asked for. */
  health?: HealthReport;
}

export interface RoundRow extends RoundRecord {
  round: number;
  /** The round's federated evaluation if there is one, else its server evaluation, else null. */
  evaluation: EvaluationRecord | null;
}

/**
 * The DP modes a ledger row can carry: shared/dp's DP_MODES (the one list) without 'off', since a job
 * without DP spends nothing and writes no ledger row.
 */
export type LedgerMode = Exclude<DpMode, 'off'>;
export const DP_MODES: readonly LedgerMode[] = ALL_DP_MODES.filter((m): m is LedgerMode => m !== 'off');

/** Whom a ledger ε is against (shared/dp: AUDIENCES). */
export type LedgerAudience = 'coordinator' | 'published';

/** What one release of a DP job (a committed round, or an attempt's release to the coordinator) spent, and under which assumptions. */
export interface LedgerEntry {
  mode: LedgerMode;
  /** Derived from the event: e.g. 'gaussian', 'distributed_discrete_gaussian'. */
  mechanism: string;
  sampling: 'poisson' | 'fixed';
  /** q: the Poisson rate, or cohort/population for fixed-size cohorts. */
  samplingRate: number;
  population: number;
  cohortSize: number;
  survivors: number;
  noiseMultiplier: number;
  clipNorm: number;
  /** The release to model consumers (shared/privacy event, JSON-able); null when nothing was published. */
  event: unknown;
  /** The release to the coordinator; null when the mode gives no guarantee against it (central). */
  coordinatorEvent: unknown;
  /** Probability that this round's Poisson draw would have been redrawn (shared/privacy/conditioning.ts); 0 otherwise. */
  shortDrawProbability: number;
  /** The audience `epsilon` (and the budget) is against. */
  audience: LedgerAudience;
  /** Cumulative ε at `delta` after this release, against `audience`. */
  epsilon: number;
  /** Cumulative ε against model consumers; null where there is no guarantee. */
  epsilonPublished: number | null;
  /** Cumulative ε against the coordinator; null where there is no guarantee (central mode). */
  epsilonCoordinator: number | null;
  delta: number;
  rdpOrder: number | null;
  /** The trust assumption the guarantee rests on, in words. */
  trust: string;
}

export interface LedgerRow extends LedgerEntry {
  /** Position in the job's ledger, 1, 2, … */
  seq: number;
  round: number;
  /** 'attempt': a release to the coordinator written ahead by an attempt (its attempt number is set), committed or not. */
  status: 'committed' | 'attempt' | 'evaluation';
  attempt: number | null;
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
  /** This job's `checkpoints.keep` (untagged checkpoints beyond it are pruned); default: the store's. */
  keepCheckpoints?: number;
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

/** An attempt's release to the coordinator, written ahead of it (see migrations v4). */
export interface AttemptReleaseInput {
  jobId: string;
  round: number;
  ledger: LedgerEntry;
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

/**
 * One round's participation as the dashboard charts it: the statuses of its last attempt (the committed
 * one, for a committed round), counted. Attempts are told apart by their rows' shared recorded_at.
 */
export interface RoundParticipation {
  round: number;
  completed: number;
  dropped: number;
  refused: number;
  rejected: number;
}

/** A client as one job saw it: its participation rows in that job (every attempt), counted by status. */
export interface JobClientRow {
  id: string;
  firstSeen: number;
  lastSeen: number;
  numExamples: number | null;
  /** Distinct rounds of this job in which its update was aggregated. */
  roundsCompleted: number;
  dropped: number;
  refused: number;
  rejected: number;
  /** The last round it was sampled for. */
  lastRound: number;
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

// ---- operations plane (schema v5): API tokens, the audit log, version tags ---------------------------------

/** What an API token may do, least to most; each role may do everything the ones before it may. */
export type Role = 'viewer' | 'operator' | 'admin';
export const ROLES: readonly Role[] = ['viewer', 'operator', 'admin'];

/** Whether `role` is at least `min` in ROLES' order. */
export function roleAtLeast(role: Role, min: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(min);
}

/** An API token as stored: never the token text, which exists only in what createToken returned. */
export interface TokenRow {
  /** `tok_` + 16 hex digits; not secret. */
  id: string;
  name: string;
  role: Role;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export const AUDIT_OUTCOMES = ['ok', 'denied', 'failed'] as const;

/** One action done, refused or failed, by whom (a token's name, or 'cli'), on what. */
export interface AuditEntry {
  actor: string;
  action: string;
  /** A job id, or `${jobId}/…` for something inside a job (listAudit's job filter matches both). */
  target?: string;
  outcome: (typeof AUDIT_OUTCOMES)[number];
  /** JSON-able; stored as canonical JSON (keys sorted), so it reads back with sorted keys. */
  details?: Record<string, unknown>;
}

/** An audit row: seq 1, 2, …; `hash` = sha256(prevHash ‖ canonical JSON of the row), prevHash of row 1 = 64 zeros. */
export interface AuditRow extends AuditEntry {
  seq: number;
  at: number;
  prevHash: string;
  hash: string;
}

export interface AuditFilter {
  actor?: string;
  action?: string;
  /** target === job or target starts with `${job}/`. */
  job?: string;
  /** at ≥ since (ms). */
  since?: number;
  /** The newest `limit` matching rows (default 1000, at most 10000), returned oldest first. */
  limit?: number;
}

export type AuditVerification = { ok: true; rows: number; head: string } | { ok: false; seq: number; reason: string };

/** A job's production tag: which committed round's model is the one to serve. */
export interface VersionTag {
  jobId: string;
  round: number;
  tag: 'production';
  taggedAt: number;
  actor: string;
  /** Set by the caller when it overrode a check of its own (e.g. a version that evaluated worse). */
  forced: boolean;
}
