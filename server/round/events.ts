/** What the round engine reports: a committed round, an aborted attempt, a pause, the job's end. */
import type { EvaluationRecord, JobStatus, RoundRecord } from '../store/index.ts';
import type { DriftAlert } from './health.ts';

export interface RoundSummary {
  round: number;
  record: RoundRecord;
  checksum: string;
  evaluation?: EvaluationRecord;
  /** Cumulative ε at the job's δ after this round (DP jobs), against the budget's audience. */
  epsilon?: number;
  /** The same against model consumers and against the coordinator; null where there is no guarantee. */
  epsilonPublished?: number | null;
  epsilonCoordinator?: number | null;
}

export interface JobSummary {
  jobId: string;
  status: JobStatus;
  rounds: number;
  checksum: string;
  reason?: string;
}

export interface RoundEngineEvents {
  /** A round committed (and, if due, was evaluated). */
  round: [RoundSummary];
  /** A round attempt ended without a commit. */
  aborted: [{ round: number; attempt: number; reason: string }];
  /** The job was paused (the store failed, or an operator asked); `resume()` continues it. */
  paused: [{ reason: string }];
  /** The job reached a final state. */
  finished: [JobSummary];
  /** Federated evaluation found drift above the job's thresholds (health.drift); `action` is the configured onDrift. */
  drift: [DriftAlert];
  /** A client was sent job_end (the number of distinct clients told so far). */
  endAnnounced: [number];
}
