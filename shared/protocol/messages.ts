/**
 * The messages of protocol version 2 (v2 added the signed hello: `challenge`, and hello's key,
 * signature, certificate and enrolment token), as zod schemas. Each message is a JSON header plus, for the
 * messages that carry one, a single binary vector (`vector`, a Float32Array) that travels in chunks
 * (see framing.ts). Schemas are strict: unknown fields are a schema error, not silently ignored.
 */
import { z } from 'zod';
import { ModelSpecSchema } from '../model/spec.ts';
import { CertificateSchema } from '../identity/certificate.ts';
import { GroupsSchema, HealthReportSchema, HealthRequestSchema } from '../evaluation/schema.ts';
import { LocalOptimizerSchema } from '../fl/local-optimizers.ts';

const b64url = (bytes: number) => z.string().regex(new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((bytes * 4) / 3)}}$`), `${bytes} bytes, base64url`);

const finite = z.number().refine(Number.isFinite, 'must be finite');
const roundNo = z.number().int().min(1).max(1e9);
const count = z.number().int().min(0).max(2 ** 40);
const id = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:@-]+$/, 'letters, digits and . _ : @ - only');

export const TrainingParamsSchema = z
  .object({
    epochs: z.number().int().min(1).max(1000),
    batchSize: z.number().int().min(1).max(1 << 16),
    learningRate: finite.pipe(z.number().positive().max(100)),
    proxMu: finite.pipe(z.number().min(0).max(1e6)),
    /**
     * Transfer learning (issue 19): layers the client must not train. Its update then holds only the
     * other layers' weights, in manifest order (shared/model/transfer.ts), and has that length.
     */
    frozen: z.array(z.string().min(1).max(128)).max(1024).optional(),
    /** The local optimizer (shared/fl/local-optimizers.ts); absent means plain SGD (what older peers run). */
    optimizer: LocalOptimizerSchema.optional(),
    /**
     * q-FedAvg: also report `metrics.initialLoss`, the mean loss of the received model on the local
     * training data before training (F_k(w^t) of Li et al. 2020). Absent: not asked.
     */
    initialLoss: z.literal(true).optional(),
  })
  .strict();
export type TrainingParams = z.output<typeof TrainingParamsSchema>;

const Metrics = z.record(z.string().max(64), finite);

/**
 * The privacy parameters of a round, announced with `train` so a client can check them against its
 * own floor before it trains (and refuse, saying why).
 */
export const RoundPrivacySchema = z
  .object({
    mode: z.enum(['central', 'local', 'distributed']),
    noiseMultiplier: finite.pipe(z.number().min(0)),
    /** L2 clip norm C the client must apply to its update. */
    clipNorm: finite.pipe(z.number().positive()),
    sampling: z.enum(['poisson', 'fixed']),
    /** q: Poisson rate, or cohort / population for a fixed cohort. */
    samplingRate: finite.pipe(z.number().gt(0).max(1)),
    cohortSize: count,
    minSurvivors: count,
    delta: finite.pipe(z.number().gt(0).lt(1)),
    /** Cumulative ε at delta before this round, and what it will be if this round commits. */
    epsilonSpent: finite.pipe(z.number().min(0)),
    epsilonAfterRound: finite.pipe(z.number().min(0)),
    /** Whether the client must also report its clipping bit (Andrew et al. 2021). */
    adaptiveClipping: z.boolean(),
  })
  .strict();
export type RoundPrivacy = z.output<typeof RoundPrivacySchema>;

/** The SecAgg encoding parameters of a round, announced with `train` (base64url seed). */
export const RoundSecAggSchema = z
  .object({
    bits: z.number().int().min(1).max(32),
    gamma: finite.pipe(z.number().positive()),
    clipNorm: finite.pipe(z.number().positive()),
    rotationSeed: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
    /** Per-client noise standard deviation in model units (distributed DP), 0 without. */
    noiseStddev: finite.pipe(z.number().min(0)),
    minSurvivors: count,
  })
  .strict();
export type RoundSecAgg = z.output<typeof RoundSecAggSchema>;

// ---- client -> server -------------------------------------------------------------------------

/**
 * Hello answers the connection's `challenge`: the client's Ed25519 public key and its signature over the
 * hello transcript (shared/identity/transcript.ts), plus a certificate from the federation CA, or a
 * one-time enrolment token to get one (the server issues it in `welcome`).
 */
export const HelloSchema = z
  .object({
    type: z.literal('hello'),
    protocolVersion: z.number().int(),
    clientId: id,
    numExamples: count.optional(),
    backend: z.string().max(64).optional(),
    publicKey: b64url(32),
    signature: b64url(64),
    /** The server identity the client signed (its TLS view, or the challenge's `server`). */
    server: z.string().max(200),
    certificate: CertificateSchema.optional(),
    enrolToken: z.string().max(256).optional(),
  })
  .strict();

export const UpdateHeaderSchema = z
  .object({
    type: z.literal('update'),
    jobId: id,
    round: roundNo,
    numExamples: count.pipe(z.number().min(1)),
    metrics: Metrics,
    /** Adaptive clipping: 1[‖Δ‖ ≤ C] − 1/2 (Andrew et al. 2021), present iff the round asked for it. */
    clipBit: z.union([z.literal(0.5), z.literal(-0.5)]).optional(),
  })
  .strict();

export const EvalResultSchema = z
  .object({
    type: z.literal('eval_result'),
    jobId: id,
    round: roundNo,
    numExamples: count,
    loss: finite,
    accuracy: finite.pipe(z.number().min(0).max(1)),
    /** Additive evaluation statistics (shared/evaluation), present iff `evaluate.health` asked for them. */
    health: HealthReportSchema.optional(),
    /** The client's declared group attributes (fairness), e.g. { region: "eu" }. */
    groups: GroupsSchema.optional(),
  })
  .strict();

export const RefuseSchema = z
  .object({
    type: z.literal('refuse'),
    jobId: id,
    round: roundNo,
    reason: z.string().max(1024),
  })
  .strict();

// ---- server -> client -------------------------------------------------------------------------

/** Sent on every new connection, before anything else: what hello must sign. */
export const ChallengeSchema = z
  .object({
    type: z.literal('challenge'),
    protocolVersion: z.number().int(),
    jobId: id,
    /** 32 fresh random bytes for this connection. */
    nonce: b64url(32),
    /** The server's identity: its TLS certificate fingerprint (`sha256:…`), else `plaintext`. */
    server: z.string().max(200),
  })
  .strict();

export const WelcomeSchema = z
  .object({
    type: z.literal('welcome'),
    protocolVersion: z.number().int(),
    jobId: id,
    clientId: id,
    /** Issued at enrolment (a hello with an enrolment token): the client keeps it. */
    certificate: CertificateSchema.optional(),
    /** The CA public key (base64url) that signed `certificate`: the client pins it at enrolment. */
    caPublicKey: b64url(32).optional(),
    limits: z
      .object({
        maxPayloadBytes: z.number().int().positive(),
        chunkBytes: z.number().int().positive(),
        maxHeaderBytes: z.number().int().positive(),
        maxOpenStreams: z.number().int().positive(),
      })
      .strict(),
  })
  .strict();

export const TrainHeaderSchema = z
  .object({
    type: z.literal('train'),
    jobId: id,
    round: roundNo,
    modelChecksum: z.string().max(128),
    model: ModelSpecSchema,
    training: TrainingParamsSchema,
    timeoutMs: z.number().int().positive(),
    privacy: RoundPrivacySchema.optional(),
    /** Present when the update must go through secure aggregation instead of an `update` message. */
    secagg: RoundSecAggSchema.optional(),
  })
  .strict();

export const EvaluateHeaderSchema = z
  .object({
    type: z.literal('evaluate'),
    jobId: id,
    round: roundNo,
    modelChecksum: z.string().max(128),
    model: ModelSpecSchema,
    batchSize: z.number().int().min(1).max(1 << 16),
    timeoutMs: z.number().int().positive(),
    /** Ask for additive statistics (and temperature NLLs, a drift sketch) besides loss and accuracy. */
    health: HealthRequestSchema.optional(),
  })
  .strict();

export const ErrorMessageSchema = z
  .object({
    type: z.literal('error'),
    code: z.string().max(64),
    message: z.string().max(4096),
    ref: z
      .object({ type: z.string().max(64).optional(), round: z.number().int().optional() })
      .strict()
      .optional(),
  })
  .strict();

export const RoundResultSchema = z
  .object({
    type: z.literal('round_result'),
    jobId: id,
    round: roundNo,
    outcome: z.enum(['committed', 'aborted']),
    included: z.boolean(),
  })
  .strict();

/**
 * Secure aggregation traffic (shared/secagg). The frame layer checks the envelope; the round engine
 * and client engine validate `body` with the SecAgg message schemas before the state machines see it.
 * The masked input travels as an opaque binary `payload` (packed b-bit integers), never as JSON.
 */
export const SecAggUpSchema = z
  .object({
    type: z.literal('secagg_up'),
    jobId: id,
    round: roundNo,
    body: z.record(z.string(), z.unknown()),
  })
  .strict();

export const SecAggDownSchema = z
  .object({
    type: z.literal('secagg_down'),
    jobId: id,
    round: roundNo,
    body: z.record(z.string(), z.unknown()),
  })
  .strict();


export const JobEndSchema = z
  .object({
    type: z.literal('job_end'),
    jobId: id,
    status: z.string().max(64),
    rounds: count,
  })
  .strict();

type WithVector<T> = T & { vector: Float32Array };
type WithPayload<T> = T & { payload?: Uint8Array };

export type Hello = z.output<typeof HelloSchema>;
export type Update = WithVector<z.output<typeof UpdateHeaderSchema>>;
export type EvalResult = z.output<typeof EvalResultSchema>;
export type Refuse = z.output<typeof RefuseSchema>;
export type Welcome = z.output<typeof WelcomeSchema>;
export type Challenge = z.output<typeof ChallengeSchema>;
export type Train = WithVector<z.output<typeof TrainHeaderSchema>>;
export type Evaluate = WithVector<z.output<typeof EvaluateHeaderSchema>>;
export type ErrorMessage = z.output<typeof ErrorMessageSchema>;
export type RoundResult = z.output<typeof RoundResultSchema>;
export type JobEnd = z.output<typeof JobEndSchema>;
export type SecAggUp = WithPayload<z.output<typeof SecAggUpSchema>>;
export type SecAggDown = z.output<typeof SecAggDownSchema>;

export type ClientMessage = Hello | Update | EvalResult | Refuse | SecAggUp;
export type ServerMessage = Challenge | Welcome | Train | Evaluate | ErrorMessage | RoundResult | JobEnd | SecAggDown;
export type Message = ClientMessage | ServerMessage;

/**
 * What binary part a message carries: none; `vector`, a Float32Array that must be finite; or
 * `payload`, optional opaque bytes.
 */
export type BinaryKind = 'none' | 'f32' | 'bytes';

interface MessageKind {
  /** Schema of the JSON header (the message without its binary part). */
  header: z.ZodType;
  binary: BinaryKind;
  /** Who may send it. */
  from: 'client' | 'server';
}

/** Every message type of protocol v2. */
export const MESSAGE_KINDS: Record<Message['type'], MessageKind> = {
  hello: { header: HelloSchema, binary: 'none', from: 'client' },
  update: { header: UpdateHeaderSchema, binary: 'f32', from: 'client' },
  eval_result: { header: EvalResultSchema, binary: 'none', from: 'client' },
  refuse: { header: RefuseSchema, binary: 'none', from: 'client' },
  challenge: { header: ChallengeSchema, binary: 'none', from: 'server' },
  welcome: { header: WelcomeSchema, binary: 'none', from: 'server' },
  train: { header: TrainHeaderSchema, binary: 'f32', from: 'server' },
  evaluate: { header: EvaluateHeaderSchema, binary: 'f32', from: 'server' },
  error: { header: ErrorMessageSchema, binary: 'none', from: 'server' },
  round_result: { header: RoundResultSchema, binary: 'none', from: 'server' },
  job_end: { header: JobEndSchema, binary: 'none', from: 'server' },
  secagg_up: { header: SecAggUpSchema, binary: 'bytes', from: 'client' },
  secagg_down: { header: SecAggDownSchema, binary: 'none', from: 'server' },
};
