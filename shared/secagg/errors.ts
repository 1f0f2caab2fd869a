/** Typed errors of the SecAgg state machines. `code` is stable: the engine maps it to wire error codes. */
import { CohortError } from '../errors.ts';

export const SecAggErrorCode = {
  /** The message names another job. */
  WRONG_JOB: 'SECAGG_WRONG_JOB',
  /** The message names another round (e.g. a replay from an earlier round). */
  WRONG_ROUND: 'SECAGG_WRONG_ROUND',
  /** The message belongs to another attempt of this round (a replay from an aborted attempt). */
  WRONG_SESSION: 'SECAGG_WRONG_SESSION',
  /** The message does not match its schema or carries malformed fields. */
  BAD_MESSAGE: 'SECAGG_BAD_MESSAGE',
  /** The message is not expected in the current phase (too late, too early, or repeated). */
  UNEXPECTED: 'SECAGG_UNEXPECTED',
  /** The sender is not (or no longer) a participant of this phase. */
  NOT_PARTICIPANT: 'SECAGG_NOT_PARTICIPANT',
  /** The sender already sent this phase's message. */
  DUPLICATE: 'SECAGG_DUPLICATE',
  /** A signature does not verify. */
  BAD_SIGNATURE: 'SECAGG_BAD_SIGNATURE',
  /** An encrypted share does not decrypt/authenticate or has the wrong content. */
  BAD_CIPHERTEXT: 'SECAGG_BAD_CIPHERTEXT',
  /** The identity key is not the registered one. */
  UNKNOWN_IDENTITY: 'SECAGG_UNKNOWN_IDENTITY',
  /**
   * The list of advertisements the neighbour graph is derived from (ShareKeysRequest) omits or alters
   * this client's own advertisement or a neighbour's: the coordinator tried to steer the graph.
   */
  BAD_ROSTER: 'SECAGG_BAD_ROSTER',
  /** A client refuses a request that would weaken its privacy (too few survivors, inconsistent sets, …). */
  UNSAFE_REQUEST: 'SECAGG_UNSAFE_REQUEST',
  /** The state machine has aborted. */
  ABORTED: 'SECAGG_ABORTED',
} as const;
export type SecAggErrorCode = (typeof SecAggErrorCode)[keyof typeof SecAggErrorCode];

export class SecAggError extends CohortError {
  constructor(
    override readonly code: SecAggErrorCode,
    message: string,
    details?: Record<string, unknown>,
  ) {
    super(code, message, details);
  }
}
