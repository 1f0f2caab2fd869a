export { CohortStore, DB_FILE } from './store.ts';
export { SCHEMA_VERSION } from './migrations.ts';
export {
  EVALUATION_KINDS,
  JOB_STATUSES,
  PARTICIPATION_STATUSES,
  type AbortedRoundInput,
  type Checkpoint,
  type ClientRow,
  type CommitRoundInput,
  type EvaluationKind,
  type EvaluationRecord,
  type JobRow,
  type JobStatus,
  type ParticipationEntry,
  type ParticipationStatus,
  type RoundAttemptRow,
  type RoundRecord,
  type RoundRow,
  type StoreOptions,
} from './types.ts';
