import { CohortError } from '../errors.ts';

/** The protocol version spoken by this build. A peer speaking another version is refused at hello. */
export const PROTOCOL_VERSION = 1;

/**
 * Error codes sent back to the peer in an `error` message. Stable strings: clients branch on them.
 */
export const ErrorCode = {
  /** The message does not match its schema (missing/extra/mistyped fields). */
  BAD_SCHEMA: 'BAD_SCHEMA',
  /** The message type is not one this protocol version knows. */
  UNKNOWN_TYPE: 'UNKNOWN_TYPE',
  /** The peer speaks another protocol version. */
  VERSION_MISMATCH: 'VERSION_MISMATCH',
  /** A vector does not have the length the round expects. */
  WRONG_LENGTH: 'WRONG_LENGTH',
  /** A vector or number is NaN or infinite. */
  NON_FINITE: 'NON_FINITE',
  /** A payload exceeds the negotiated size limit. */
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** Chunk framing is broken: unknown stream, out-of-order or mis-sized chunk. */
  BAD_FRAME: 'BAD_FRAME',
  /** The sender has not completed the hello handshake. */
  NOT_REGISTERED: 'NOT_REGISTERED',
  /** The sender is not a member of the round it sent for, or the round is not collecting. */
  NOT_IN_ROUND: 'NOT_IN_ROUND',
  /** The sender already delivered this message for this round (replay/duplicate). */
  DUPLICATE: 'DUPLICATE',
  /** The job this message refers to is not the one running. */
  UNKNOWN_JOB: 'UNKNOWN_JOB',
  /** The client refused by credentials or policy. */
  UNAUTHORIZED: 'UNAUTHORIZED',
  /** Something failed on our side; the message was not applied. */
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** A message rejected at the protocol boundary; `code` travels back to the sender. */
export class ProtocolError extends CohortError {
  constructor(
    override readonly code: ErrorCode,
    message: string,
    details?: Record<string, unknown>,
  ) {
    super(code, message, details);
  }
}
