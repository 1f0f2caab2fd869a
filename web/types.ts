/** What the admin API answers (server/api/app.ts), as the dashboard reads it. Times are ms since the epoch. */

export type Role = 'viewer' | 'operator' | 'admin';

export interface Session {
  id: string;
  name: string;
  role: Role;
}

export interface JobSummary {
  id: string;
  status: string;
  state: string;
  reason: string | null;
  round: number;
  rounds: number;
  connected: number;
  dp: string;
  epsilon: { published: number | null; coordinator: number | null; budget: number | null; against: 'published' | 'coordinator'; delta: number } | null;
  production: number | null;
}

export interface LedgerRow {
  seq: number;
  round: number;
  status: 'committed' | 'attempt' | 'evaluation';
  attempt: number | null;
  recordedAt: number;
  mode: string;
  mechanism: string;
  sampling: 'poisson' | 'fixed';
  samplingRate: number;
  population: number;
  cohortSize: number;
  survivors: number;
  noiseMultiplier: number;
  clipNorm: number;
  shortDrawProbability: number;
  audience: 'published' | 'coordinator';
  epsilon: number;
  epsilonPublished: number | null;
  epsilonCoordinator: number | null;
  delta: number;
  rdpOrder: number | null;
  trust: string;
}

export interface Ledger {
  rows: LedgerRow[];
  spent: { published: number | null; coordinator: number | null } | null;
  against?: 'published' | 'coordinator';
  delta?: number;
  budget?: number | null;
  nextRound?: { published: number | null; coordinator: number | null; epsilon: number } | null;
}

export interface Evaluation {
  loss: number;
  accuracy: number;
  numExamples: number;
  clients: number;
  kind: 'federated' | 'server';
}

export interface RoundRow {
  round: number;
  startedAt: number;
  endedAt: number;
  cohortSize: number;
  survivors: number;
  dropouts: number;
  numExamples: number;
  trainLoss: number | null;
  trainAccuracy: number | null;
  evaluation: Evaluation | null;
}

export interface AttemptRow {
  round: number;
  attempt: number;
  startedAt: number;
  endedAt: number;
  cohortSize: number;
  survivors: number;
  reason: string;
}

/** An evaluation whose drift scores crossed a threshold (issue 18): the quality chart marks its round. */
export interface DriftAlertRow {
  round: number;
  reason: string;
  action: 'review' | 'retrain' | null;
}

export interface Rounds {
  rounds: RoundRow[];
  attempts: AttemptRow[];
  driftAlerts: DriftAlertRow[];
}

export interface Version {
  round: number;
  sha256: string;
  epsilon: { published: number | null; coordinator: number | null; delta: number } | null;
  evaluation: Evaluation | null;
  production: boolean;
  /** The job's promotion gates checked against this version (none set: passed, no results). */
  gates: { passed: boolean; results: { gate: string; limit: number; value: number | null; passed: boolean }[] };
}

export interface ClientRow {
  id: string;
  firstSeen: number;
  lastSeen: number;
  numExamples: number | null;
  roundsCompleted: number;
}

/** A round's last attempt, its clients counted by outcome (GET /api/v1/jobs/:id/participation). */
export interface RoundParticipation {
  round: number;
  completed: number;
  dropped: number;
  refused: number;
  rejected: number;
}

/** A client in one job (GET /api/v1/jobs/:id/clients). */
export interface JobClientRow {
  id: string;
  firstSeen: number;
  lastSeen: number;
  numExamples: number | null;
  roundsCompleted: number;
  dropped: number;
  refused: number;
  rejected: number;
  lastRound: number;
  /** The key its id is bound to (server/identity), if any. */
  identity: { fingerprint: string; boundBy: string; status: 'active' | 'revoked'; revokedAt: number | null } | null;
}

export interface AuditRow {
  seq: number;
  at: number;
  actor: string;
  action: string;
  target?: string;
  outcome: 'ok' | 'denied' | 'failed';
  details?: Record<string, unknown>;
}

/** A notice of GET /api/v1/events (server/api/events.ts). */
export interface LiveNotice {
  kind: string;
  job: string | null;
  [key: string]: unknown;
}
