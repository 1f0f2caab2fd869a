/**
 * The one error registry: every code Cohort raises on purpose is declared here once, with the part of
 * the system it belongs to, the HTTP status the admin API answers it with, and what it means. A
 * `CohortError` can only carry a declared code (the type checker refuses any other), so callers can
 * branch on codes and a new code is documented where it is born. After fastify's `lib/errors.js`.
 *
 * Codes sent to clients over the wire are the `protocol` ones (shared/protocol/errors.ts `ErrorCode`)
 * and the `secagg` ones (shared/secagg/errors.ts); the README lists them for client authors.
 */

export type ErrorArea = 'protocol' | 'secagg' | 'identity' | 'config' | 'store' | 'privacy' | 'fl' | 'model' | 'data' | 'training' | 'api' | 'transport' | 'internal';

export interface ErrorSpec {
  area: ErrorArea;
  /** HTTP status of the admin API's answer when this error reaches it. */
  status: number;
  summary: string;
}

export const ERRORS = {
  // ---- protocol: a client's message refused at the boundary (sent back as an `error` message) ----
  BAD_SCHEMA: { area: 'protocol', status: 400, summary: 'a field is missing, extra or mistyped, or the message does not fit the round' },
  UNKNOWN_TYPE: { area: 'protocol', status: 400, summary: 'not a message type the sender may send in this protocol version' },
  VERSION_MISMATCH: { area: 'protocol', status: 409, summary: 'the peer speaks another protocol or frame version' },
  WRONG_LENGTH: { area: 'protocol', status: 400, summary: "a vector whose length is not the model's" },
  NON_FINITE: { area: 'protocol', status: 400, summary: 'NaN or ±Infinity where a finite number is required' },
  OUT_OF_RANGE: { area: 'protocol', status: 400, summary: 'a finite number outside its documented range (job config limits)' },
  PAYLOAD_TOO_LARGE: { area: 'protocol', status: 413, summary: 'a vector, payload or header above its size limit' },
  BAD_FRAME: { area: 'protocol', status: 400, summary: 'broken chunk framing: unknown stream, out-of-order or mis-sized chunk, too many open streams' },
  NOT_REGISTERED: { area: 'protocol', status: 401, summary: 'a message before hello, or no hello before the handshake deadline' },
  NOT_IN_ROUND: { area: 'protocol', status: 409, summary: 'the sender is not a pending member of a collecting round (or evaluation) with that number' },
  DUPLICATE: { area: 'protocol', status: 409, summary: 'a second hello on a connection, or a second answer for a round' },
  UNKNOWN_JOB: { area: 'protocol', status: 404, summary: 'no such job (here, or in the store)' },
  UNAUTHORIZED: { area: 'protocol', status: 401, summary: 'refused by credentials or policy' },
  HELLO_RATE_LIMITED: { area: 'protocol', status: 429, summary: 'too many failed hellos from this address this minute; retry after it (not final)' },
  TOO_MANY_CONNECTIONS: { area: 'protocol', status: 429, summary: 'a connection refused at connect: per-address or unregistered caps' },
  INTERNAL: { area: 'internal', status: 500, summary: 'a fault of ours; the message was not applied and the attempt in flight was aborted' },

  // ---- secagg: the SecAgg+ state machines refused a message (shared/secagg/errors.ts) ------------
  SECAGG_WRONG_JOB: { area: 'secagg', status: 409, summary: 'a SecAgg message for another job' },
  SECAGG_WRONG_ROUND: { area: 'secagg', status: 409, summary: 'a SecAgg message for another round (e.g. a replay)' },
  SECAGG_WRONG_SESSION: { area: 'secagg', status: 409, summary: 'a SecAgg message from another attempt of this round' },
  SECAGG_BAD_MESSAGE: { area: 'secagg', status: 400, summary: 'a SecAgg message that does not match its schema or carries malformed fields' },
  SECAGG_UNEXPECTED: { area: 'secagg', status: 409, summary: 'a SecAgg message not expected in the current phase' },
  SECAGG_NOT_PARTICIPANT: { area: 'secagg', status: 409, summary: 'the sender is not (or no longer) a participant of this phase' },
  SECAGG_DUPLICATE: { area: 'secagg', status: 409, summary: "the sender already sent this phase's message" },
  SECAGG_BAD_SIGNATURE: { area: 'secagg', status: 400, summary: 'a signature does not verify' },
  SECAGG_BAD_CIPHERTEXT: { area: 'secagg', status: 400, summary: 'an encrypted share does not decrypt or has the wrong content' },
  SECAGG_UNKNOWN_IDENTITY: { area: 'secagg', status: 400, summary: 'the identity key is not the registered one' },
  SECAGG_BAD_ROSTER: { area: 'secagg', status: 400, summary: 'the advertisement list the graph is derived from omits or alters an advertisement' },
  SECAGG_UNSAFE_REQUEST: { area: 'secagg', status: 409, summary: 'a client refuses a request that would weaken its privacy' },
  SECAGG_ABORTED: { area: 'secagg', status: 409, summary: 'the SecAgg round has aborted' },
  // Not a wire code: raised by the encoding (shared/secagg/encoding), never sent as a refusal.
  ROUNDING_FAILED: { area: 'secagg', status: 500, summary: 'conditional randomized rounding kept exceeding the norm bound (clipNorm or γ too tight)' },

  // ---- identity: device keys, certificates, enrolment (shared/identity, server/identity) -------------
  // Not wire codes: a refused hello is answered UNAUTHORIZED, with the reason in its message.
  BAD_CERTIFICATE: { area: 'identity', status: 400, summary: 'not a well-formed client certificate (schema, key or signature length, encoding)' },
  ENROLMENT_REFUSED: { area: 'identity', status: 401, summary: 'an enrolment token that is unknown, used, expired, or for another client id or job' },
  CA_UNAVAILABLE: { area: 'identity', status: 409, summary: 'this coordinator holds only the CA public key (offline CA): it cannot issue certificates' },
  REVOCATION_LIST_REFUSED: { area: 'identity', status: 400, summary: 'the revocation list does not verify against the federation CA, or is not newer than the one held' },
  IDENTITY_FILE_UNSAFE: { area: 'identity', status: 400, summary: 'an identity or CA key file readable by group or others, or not a key file' },
  REVOKED: { area: 'identity', status: 401, summary: 'a client id, key or certificate revoked by an operator' },

  // ---- config --------------------------------------------------------------------------------
  BAD_CONFIG: { area: 'config', status: 400, summary: 'a job config, client config or CLI flag that does not validate' },
  CONFIG_CHANGED: { area: 'config', status: 409, summary: 'a job id that exists in the store with a different config' },

  // ---- store ---------------------------------------------------------------------------------
  BAD_INPUT: { area: 'store', status: 400, summary: 'a value refused at the store boundary (nothing was written)' },
  JOB_EXISTS: { area: 'store', status: 409, summary: 'a job with this id already exists' },
  ROUND_ORDER: { area: 'store', status: 409, summary: 'a round committed out of order' },
  DB_TOO_NEW: { area: 'store', status: 500, summary: 'the database was written by a newer schema than this build' },
  STORE_UNSUPPORTED: { area: 'store', status: 500, summary: 'the file system cannot give the store the journal mode it needs' },
  MIGRATION_FAILED: { area: 'store', status: 500, summary: 'a schema migration would break references; nothing was changed' },
  CORRUPT_CHECKPOINT: { area: 'store', status: 500, summary: 'a checkpoint does not match its checksum' },
  CORRUPT_LEDGER: { area: 'store', status: 500, summary: 'a privacy ledger row cannot be read' },
  NOT_FOUND: { area: 'store', status: 404, summary: 'no such stored record (an API token, or a round of a job)' },
  TOKEN_EXISTS: { area: 'store', status: 409, summary: 'an API token with this name already exists' },
  VERSION_PRUNED: { area: 'store', status: 409, summary: "a round whose checkpoint is no longer kept cannot be tagged (checkpoints.keep pruned it)" },

  // ---- privacy -------------------------------------------------------------------------------
  BAD_PRIVACY_PARAMETER: { area: 'privacy', status: 400, summary: 'a DP or accounting parameter out of its domain (noise multiplier, δ, orders, sampling rate, …)' },
  UNSUPPORTED_EVENT: { area: 'privacy', status: 400, summary: 'a DP event the accountant cannot analyse' },
  BAD_NOISE: { area: 'privacy', status: 400, summary: 'a noise sampler parameter out of its domain' },
  BAD_RATIONAL: { area: 'privacy', status: 400, summary: 'an exact rational parameter of the discrete Gaussian sampler out of its domain' },
  NOISE_OVERFLOW: { area: 'privacy', status: 500, summary: 'noise that would leave the representable range' },
  NOISE_TABLE_TOO_LARGE: { area: 'privacy', status: 400, summary: 'a discrete Gaussian too wide for the table sampler' },
  NOISE_SPLIT_IMPOSSIBLE: { area: 'privacy', status: 400, summary: 'adaptive clipping cannot split the noise between the value and the count (count noise too large for z)' },
  UNATTAINABLE_EPSILON: { area: 'privacy', status: 400, summary: 'no noise multiplier reaches the target ε within the search range' },

  // ---- fl: aggregation and server optimizers ---------------------------------------------------
  BAD_DIM: { area: 'fl', status: 400, summary: 'a dimension that is not a positive integer' },
  BAD_WEIGHT: { area: 'fl', status: 400, summary: 'a negative aggregation weight' },
  BAD_CLIP_NORM: { area: 'fl', status: 400, summary: 'a clip norm that is not positive and finite' },
  BAD_STATE: { area: 'fl', status: 500, summary: "a server optimizer's saved state does not fit it" },
  EMPTY: { area: 'fl', status: 409, summary: 'a mean of nothing' },
  TOO_FEW_UPDATES: { area: 'fl', status: 409, summary: 'a robust aggregator given fewer updates than its rule needs (Krum: 2f + 3, Bulyan: 4f + 3)' },

  // ---- model, data, training -------------------------------------------------------------------
  BAD_MODEL_SPEC: { area: 'model', status: 400, summary: 'a model spec that does not build' },
  BAD_DATA: { area: 'data', status: 400, summary: 'a data set that does not fit the model or cannot be read' },
  UNKNOWN_DATASET: { area: 'data', status: 404, summary: 'a data set name the simulations do not know' },
  BAD_CACHE: { area: 'data', status: 500, summary: 'a data set cache file that does not read back' },
  CORRUPT: { area: 'data', status: 500, summary: 'stored bytes that do not decode' },
  SHAPE_MISMATCH: { area: 'training', status: 400, summary: 'weights or data whose shape does not fit the model' },
  UNSUPPORTED_ON_BACKEND: { area: 'training', status: 501, summary: 'an operation the chosen tfjs backend cannot do' },
  BACKEND_UNAVAILABLE: { area: 'training', status: 503, summary: 'the requested tfjs backend cannot be loaded here' },
  POOL_CLOSED: { area: 'training', status: 503, summary: 'the training pool was closed' },
  WORKER_CRASHED: { area: 'training', status: 500, summary: 'a training worker thread exited while its pool was open' },

  // ---- api: the admin HTTP API (server/api) ------------------------------------------------------
  API_UNAUTHENTICATED: { area: 'api', status: 401, summary: 'no bearer token, or one that is unknown or revoked' },
  API_FORBIDDEN: { area: 'api', status: 403, summary: "the token's role may not do this" },
  API_NOT_FOUND: { area: 'api', status: 404, summary: 'no such route, job, version or token' },
  API_CONFLICT: { area: 'api', status: 409, summary: 'a transition the target cannot make now (resume a finished job, download a pruned version)' },
  API_BAD_REQUEST: { area: 'api', status: 400, summary: 'a request whose body or parameters do not validate' },
  API_TOO_LARGE: { area: 'api', status: 413, summary: 'a request body above the limit' },
  API_UNSUPPORTED_MEDIA: { area: 'api', status: 415, summary: 'a request body that is not application/json' },
  API_RATE_LIMITED: { area: 'api', status: 429, summary: 'too many failed authentications from this address; wait a minute' },
  API_STREAMS_FULL: { area: 'api', status: 503, summary: 'too many open event streams (GET /api/v1/events) on this coordinator; close one or retry later' },
  API_DASHBOARD_NOT_BUILT: { area: 'api', status: 503, summary: 'the dashboard has not been built into dist/web (npm run build:web)' },

  // ---- transport: a client's check of the server's TLS certificate (final: the client stops) ------
  TLS_UNTRUSTED: { area: 'transport', status: 502, summary: "the server's TLS certificate is not trusted: no chain to the CA file or system store, wrong host name, expired" },
  TLS_FINGERPRINT_MISMATCH: { area: 'transport', status: 502, summary: "the server's TLS certificate is not the pinned one (--server-fingerprint)" },

  // ---- platform --------------------------------------------------------------------------------
  UNSUPPORTED_PLATFORM: { area: 'internal', status: 500, summary: 'a platform Cohort cannot run on (it needs little-endian byte order; in a browser, Web Workers, WebAssembly and IndexedDB)' },
} as const satisfies Record<string, ErrorSpec>;

export type CohortErrorCode = keyof typeof ERRORS;

export function isCohortErrorCode(code: unknown): code is CohortErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/** The admin API's HTTP status for an error: its code's, or 500 for anything that is not a CohortError. */
export function httpStatus(err: unknown): number {
  return err instanceof CohortError ? ERRORS[err.code].status : 500;
}

/** Base class of every error Cohort raises on purpose: a stable, declared `code` callers can branch on. */
export class CohortError extends Error {
  constructor(
    readonly code: CohortErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A configuration (job file, client config, CLI flags) that does not validate. */
export class ConfigError extends CohortError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('BAD_CONFIG', message, details);
  }
}
