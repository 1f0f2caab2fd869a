import { CohortError, type CohortErrorCode } from '../errors.ts';
import type { ErrorMessage } from './messages.ts';

/**
 * The protocol version spoken by this build. A peer speaking another version is refused at hello.
 * 2: signed hellos (challenge, certificates). 3: SecAgg derives the neighbour graph from the signed
 * advertisements (a nonce in AdvertiseRequest, the advertisement list in ShareKeysRequest).
 */
export const PROTOCOL_VERSION = 3;

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
  /**
   * A finite number outside its documented range (job config `limits`: examples per client, metric
   * magnitude, update element magnitude). The message is not applied; a round member that sent it is
   * excluded from the round and counted as a dropout.
   */
  OUT_OF_RANGE: 'OUT_OF_RANGE',
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
  /** A connection was refused at connect: too many from this address, or too many that have not said hello. */
  TOO_MANY_CONNECTIONS: 'TOO_MANY_CONNECTIONS',
  /** Something failed on our side; the message was not applied. */
  INTERNAL: 'INTERNAL',
} as const satisfies Record<string, CohortErrorCode>;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * Longest `message` of an `error` the server sends (the schema admits 4,096): error texts quote parts
 * of the offending input, and an attacker must not be able to make our replies (or logs) large.
 */
export const MAX_ERROR_MESSAGE_CHARS = 1024;

/** `text` cut to `max` characters, saying how much was cut. */
export function boundText(text: string, max = MAX_ERROR_MESSAGE_CHARS): string {
  if (text.length <= max) return text;
  const note = (kept: number) => `… (${text.length - kept} more characters)`;
  // The note's length depends on the count it prints; two passes reach the fixed point.
  let kept = Math.max(0, max - note(max).length);
  kept = Math.max(0, max - note(kept).length);
  return text.slice(0, kept) + note(kept);
}

/** A message rejected at the protocol boundary; `code` travels back to the sender. Messages are bounded. */
export class ProtocolError extends CohortError {
  constructor(
    override readonly code: ErrorCode,
    message: string,
    details?: Record<string, unknown>,
  ) {
    super(code, boundText(message), details);
  }
}

/** An `error` message for the peer, its text bounded (every server reply goes through here). */
export function errorMessage(code: string, message: string, ref?: { type: string; round?: number }): ErrorMessage {
  return {
    type: 'error',
    code: code.slice(0, 64),
    message: boundText(message),
    ...(ref ? { ref: { type: ref.type.slice(0, 64), ...(typeof ref.round === 'number' && Number.isInteger(ref.round) ? { round: ref.round } : {}) } } : {}),
  };
}
