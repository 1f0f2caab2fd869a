/**
 * SecAgg protocol messages (Bonawitz et al. CCS 2017, §4, Rounds 0–4, on the SecAgg+ graph of Bell
 * et al. CCS 2020) as plain objects with zod schemas. Small binary fields are base64url strings
 * (RFC 4648 §5, unpadded) of fixed length, so headers are JSON; the one large field, the masked
 * input, is a Uint8Array of ⌈d·b/8⌉ bytes (b-bit packed, encoding.ts) for the binary framing.
 * Every message carries (jobId, round) and `session`, the first 12 bytes of the hash of the round's
 * configuration (keys.ts), which differs between attempts of the same round number (fresh nonce);
 * the state machines reject messages for another job, round or attempt (replays).
 *
 * Round  server → client                      client → server
 *   0    secagg_advertise_request              secagg_advertise_keys
 *   1    secagg_share_keys_request             secagg_share_keys
 *   2    secagg_masked_input_request           secagg_masked_input
 *   3    secagg_consistency_request            secagg_consistency_signature
 *   4    secagg_unmask_request                 secagg_unmask
 */
import { z } from 'zod';
import { AEAD_OVERHEAD } from '../crypto/aead.ts';
import { MASK_PRG_NAMES } from '../crypto/prg.ts';
import { SHARE_VALUE_BYTES } from '../crypto/shamir.ts';
import { SecAggError, SecAggErrorCode } from './errors.ts';
import { ADVERTISEMENT_DIGEST_BYTES, SHARE_PLAINTEXT_BYTES } from './keys.ts';
import { CertificateSchema } from '../identity/certificate.ts';
import { RevocationListSchema } from '../identity/revocation.ts';

/** Largest cohort a SecAgg round accepts. */
export const MAX_COHORT = 100_000;
export const SHARE_CIPHERTEXT_BYTES = SHARE_PLAINTEXT_BYTES + AEAD_OVERHEAD;

/** base64url (unpadded) of exactly `bytes` bytes. */
const b64 = (bytes: number) =>
  z
    .string()
    .length(Math.ceil((bytes * 4) / 3))
    .regex(/^[A-Za-z0-9_-]*$/, 'base64url');

const id = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:@-]+$/, 'letters, digits and . _ : @ - only');
const roundNo = z.number().int().min(0).max(1e9);
/** First 12 bytes of the round-config hash (keys.ts): distinguishes attempts of one round number. */
const session = b64(12);
const head = { jobId: id, round: roundNo, session };
const key32 = b64(32);
const signature = b64(64);
const shareValue = b64(SHARE_VALUE_BYTES);
const ciphertext = b64(SHARE_CIPHERTEXT_BYTES);
const list = <T extends z.ZodType>(item: T) => z.array(item).max(MAX_COHORT);
/** A member bitmap over the cohort (keys.ts encodeMembers), base64url. */
const bitmap = z.string().max(Math.ceil(MAX_COHORT / 6) + 4).regex(/^[A-Za-z0-9_-]*$/, 'base64url');

// ---- server → client -------------------------------------------------------------------------

/** Round 0 request: the round configuration (the graph is derived later, from the advertisements). */
export const AdvertiseRequestSchema = z
  .object({
    type: z.literal('secagg_advertise_request'),
    ...head,
    /** The cohort in protocol order; a client's index is its position here. */
    cohort: z.array(id).min(2).max(MAX_COHORT),
    /** Fresh per attempt; part of the config hash. The graph seed is derived from Round 0 (keys.ts). */
    nonce: key32,
    neighbors: z.number().int().min(1).max(MAX_COHORT),
    threshold: z.number().int().min(1).max(MAX_COHORT),
    bits: z.number().int().min(1).max(32),
    dim: z.number().int().min(1).max(2 ** 30),
    /** The round aborts below this many survivors; clients refuse to unmask a smaller set. */
    minSurvivors: z.number().int().min(1).max(MAX_COHORT),
    /** The mask PRG (crypto/prg.ts); absent means 'aes-256-ctr'. Part of the config hash. */
    prg: z.enum(MASK_PRG_NAMES).optional(),
  })
  .strict();

/**
 * Round 1 request: who advertised (bitmap over the cohort) and every advertisement's digest, from
 * which each client derives the graph seed (keys.ts), then the signed keys of the client's
 * neighbours that advertised.
 */
export const ShareKeysRequestSchema = z
  .object({
    type: z.literal('secagg_share_keys_request'),
    ...head,
    advertised: bitmap,
    /** The 32-byte digests of the advertisements in `advertised`, concatenated in cohort order. */
    digests: z
      .string()
      .max(Math.ceil((MAX_COHORT * ADVERTISEMENT_DIGEST_BYTES * 4) / 3))
      .regex(/^[A-Za-z0-9_-]*$/, 'base64url'),
    /** The federation CA's newest revocation list, when the coordinator has one (identity/revocation.ts). */
    revocations: RevocationListSchema.optional(),
    peers: list(
      z.object({ clientId: id, identityKey: key32, cPk: key32, sPk: key32, signature, certificate: CertificateSchema.optional() }).strict(),
    ),
  })
  .strict();

/** Round 2 request: the encrypted shares the client's neighbours sent it. */
export const MaskedInputRequestSchema = z
  .object({
    type: z.literal('secagg_masked_input_request'),
    ...head,
    shares: list(z.object({ from: id, ciphertext }).strict()),
  })
  .strict();

/** Round 3 request: U3, the clients whose masked inputs are in the sum (bitmap over the cohort). */
export const ConsistencyRequestSchema = z
  .object({
    type: z.literal('secagg_consistency_request'),
    ...head,
    survivors: bitmap,
  })
  .strict();

/** Round 4 request: the consistency signatures of the client's neighbours in U4. */
export const UnmaskRequestSchema = z
  .object({
    type: z.literal('secagg_unmask_request'),
    ...head,
    signatures: list(z.object({ clientId: id, signature }).strict()),
  })
  .strict();

// ---- client → server -------------------------------------------------------------------------

export const AdvertiseKeysSchema = z
  .object({
    type: z.literal('secagg_advertise_keys'),
    ...head,
    identityKey: key32,
    cPk: key32,
    sPk: key32,
    signature,
    /** The client's certificate from the federation CA, relayed to its neighbours, who check it. */
    certificate: CertificateSchema.optional(),
  })
  .strict();

export const ShareKeysSchema = z
  .object({ type: z.literal('secagg_share_keys'), ...head, shares: list(z.object({ to: id, ciphertext }).strict()) })
  .strict();

export const MaskedInputSchema = z
  .object({
    type: z.literal('secagg_masked_input'),
    ...head,
    /** ⌈d·b/8⌉ bytes: the masked vector mod 2^b, b-bit packed. */
    payload: z.instanceof(Uint8Array),
  })
  .strict();

export const ConsistencySignatureSchema = z
  .object({ type: z.literal('secagg_consistency_signature'), ...head, signature })
  .strict();

export const UnmaskSchema = z
  .object({
    type: z.literal('secagg_unmask'),
    ...head,
    /** Shares of b_v for neighbours v in U3. */
    selfShares: list(z.object({ of: id, share: shareValue }).strict()),
    /** Shares of s_v^SK for neighbours v in U2 \ U3. */
    keyShares: list(z.object({ of: id, share: shareValue }).strict()),
  })
  .strict();

export type AdvertiseRequest = z.output<typeof AdvertiseRequestSchema>;
export type ShareKeysRequest = z.output<typeof ShareKeysRequestSchema>;
export type MaskedInputRequest = z.output<typeof MaskedInputRequestSchema>;
export type ConsistencyRequest = z.output<typeof ConsistencyRequestSchema>;
export type UnmaskRequest = z.output<typeof UnmaskRequestSchema>;
export type AdvertiseKeys = z.output<typeof AdvertiseKeysSchema>;
export type ShareKeys = z.output<typeof ShareKeysSchema>;
export type MaskedInput = z.output<typeof MaskedInputSchema>;
export type ConsistencySignature = z.output<typeof ConsistencySignatureSchema>;
export type Unmask = z.output<typeof UnmaskSchema>;

export type SecAggServerMessage = AdvertiseRequest | ShareKeysRequest | MaskedInputRequest | ConsistencyRequest | UnmaskRequest;
export type SecAggClientMessage = AdvertiseKeys | ShareKeys | MaskedInput | ConsistencySignature | Unmask;
export type SecAggMessage = SecAggServerMessage | SecAggClientMessage;

export const SecAggServerMessageSchema = z.discriminatedUnion('type', [
  AdvertiseRequestSchema,
  ShareKeysRequestSchema,
  MaskedInputRequestSchema,
  ConsistencyRequestSchema,
  UnmaskRequestSchema,
]);
export const SecAggClientMessageSchema = z.discriminatedUnion('type', [
  AdvertiseKeysSchema,
  ShareKeysSchema,
  MaskedInputSchema,
  ConsistencySignatureSchema,
  UnmaskSchema,
]);

/** Every SecAgg message type, who sends it, and whether it carries the binary payload. */
export const SECAGG_MESSAGE_KINDS = {
  secagg_advertise_request: { from: 'server', schema: AdvertiseRequestSchema, binary: false },
  secagg_share_keys_request: { from: 'server', schema: ShareKeysRequestSchema, binary: false },
  secagg_masked_input_request: { from: 'server', schema: MaskedInputRequestSchema, binary: false },
  secagg_consistency_request: { from: 'server', schema: ConsistencyRequestSchema, binary: false },
  secagg_unmask_request: { from: 'server', schema: UnmaskRequestSchema, binary: false },
  secagg_advertise_keys: { from: 'client', schema: AdvertiseKeysSchema, binary: false },
  secagg_share_keys: { from: 'client', schema: ShareKeysSchema, binary: false },
  secagg_masked_input: { from: 'client', schema: MaskedInputSchema, binary: true },
  secagg_consistency_signature: { from: 'client', schema: ConsistencySignatureSchema, binary: false },
  secagg_unmask: { from: 'client', schema: UnmaskSchema, binary: false },
} as const satisfies Record<SecAggMessage['type'], { from: 'server' | 'client'; schema: z.ZodType; binary: boolean }>;

function parseWith<T>(schema: z.ZodType<T>, raw: unknown): T {
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new SecAggError(SecAggErrorCode.BAD_MESSAGE, `bad secagg message: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return r.data;
}

/** Validates a message a client sent (throws SecAggError BAD_MESSAGE). */
export function parseClientMessage(raw: unknown): SecAggClientMessage {
  return parseWith(SecAggClientMessageSchema, raw);
}

/** Validates a message the server sent (throws SecAggError BAD_MESSAGE). */
export function parseServerMessage(raw: unknown): SecAggServerMessage {
  return parseWith(SecAggServerMessageSchema, raw);
}
