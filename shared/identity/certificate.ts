/**
 * Client certificates: a federation CA's Ed25519 signature over (client id, the device's Ed25519 public
 * key, the jobs it may join, validity, serial). Not X.509: a small, fixed record whose signed bytes are
 * an unambiguous length-prefixed encoding (`frameFields`) under a domain-separation tag, so no other
 * signed object of ours (hello transcripts, SecAgg advertisements) can be read as a certificate.
 *
 * Pure: no I/O, no clock (callers pass `now`), the same code in Node, a browser and simulations.
 */
import { z } from 'zod';
import { bytesToHex, frameFields, fromBase64Url, toBase64Url } from '../crypto/bytes.ts';
import { ed25519Sign, ed25519Verify, ED25519_PUBLIC_KEY_BYTES, type Ed25519KeyPair } from '../crypto/ed25519.ts';
import { sha256 } from '../crypto/sha256.ts';
import { CohortError } from '../errors.ts';

export const CERTIFICATE_VERSION = 1;
const CERT_TAG = 'cohort/client-certificate/v1';
/** How far a certificate's notBefore may lie in the future of the verifier's clock (clock skew). */
export const CLOCK_SKEW_MS = 5 * 60_000;

const b64 = (bytes: number) => z.string().regex(new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((bytes * 4) / 3)}}$`), `${bytes} bytes, base64url`);
const clientId = z.string().min(1).max(200);

export const CertificateSchema = z
  .object({
    v: z.literal(CERTIFICATE_VERSION),
    clientId,
    /** The device's Ed25519 public key. */
    publicKey: b64(32),
    /** Job ids it may join, or ['*'] for any. */
    jobs: z.array(z.string().min(1).max(200)).min(1).max(100),
    notBefore: z.number().int().min(0),
    notAfter: z.number().int().min(0),
    /** 128 random bits: what a revocation names. */
    serial: b64(16),
    /** Fingerprint of the CA public key that signed it (keyFingerprint). */
    issuer: z.string().regex(/^sha256:[0-9a-f]{64}$/),
    signature: b64(64),
  })
  .strict();
export type Certificate = z.output<typeof CertificateSchema>;
export type CertificateFields = Omit<Certificate, 'v' | 'issuer' | 'signature'>;

/** `sha256:<hex>` of a raw Ed25519 public key: how people and certificates name a key. */
export function keyFingerprint(publicKey: Uint8Array): string {
  return `sha256:${bytesToHex(sha256(publicKey))}`;
}

function signedBytes(c: Omit<Certificate, 'signature'>): Uint8Array {
  return frameFields(CERT_TAG, c.v, c.clientId, fromBase64Url(c.publicKey), c.jobs.length, ...c.jobs, String(c.notBefore), String(c.notAfter), fromBase64Url(c.serial), c.issuer);
}

/** The CA signs a certificate. */
export function signCertificate(ca: Ed25519KeyPair, fields: CertificateFields): Certificate {
  const unsigned = { v: CERTIFICATE_VERSION, ...fields, issuer: keyFingerprint(ca.publicKey) } as const;
  const parsed = CertificateSchema.omit({ signature: true }).safeParse(unsigned);
  if (!parsed.success) throw new CohortError('BAD_CERTIFICATE', `cannot sign: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  if (fields.notAfter <= fields.notBefore) throw new CohortError('BAD_CERTIFICATE', 'cannot sign: notAfter must be after notBefore');
  return { ...parsed.data, signature: toBase64Url(ed25519Sign(ca, signedBytes(parsed.data))) };
}

export interface CertificateCheck {
  /** The CA public key the verifier trusts. */
  caPublicKey: Uint8Array;
  now: number;
  /** When given: the certificate must allow this job. */
  jobId?: string;
  /** When given: the certificate must be for this client id and key. */
  clientId?: string;
  publicKey?: Uint8Array;
  /** Serials revoked by the federation. */
  isRevoked?: (serial: string) => boolean;
}

/**
 * Parses and verifies a certificate: schema, issuer, CA signature, validity (notBefore may be up to
 * CLOCK_SKEW_MS ahead), job, subject, revocation. Throws UNAUTHORIZED (a certificate that is not ours to
 * accept) or BAD_CERTIFICATE (not a certificate at all), with a bounded message saying which check failed.
 */
export function verifyCertificate(input: unknown, check: CertificateCheck): Certificate {
  const parsed = CertificateSchema.safeParse(input);
  if (!parsed.success) throw new CohortError('BAD_CERTIFICATE', `malformed certificate: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  const c = parsed.data;
  const refuse = (why: string) => new CohortError('UNAUTHORIZED', `certificate of ${c.clientId.slice(0, 200)} refused: ${why}`);
  if (check.caPublicKey.length !== ED25519_PUBLIC_KEY_BYTES) throw new CohortError('BAD_CERTIFICATE', 'the CA public key must be 32 bytes');
  if (c.issuer !== keyFingerprint(check.caPublicKey)) throw refuse('issued by another CA');
  const { signature, ...unsigned } = c;
  let bytes: Uint8Array;
  let sig: Uint8Array;
  try {
    bytes = signedBytes(unsigned);
    sig = fromBase64Url(signature);
  } catch (err) {
    throw new CohortError('BAD_CERTIFICATE', `malformed certificate: ${(err as Error).message}`);
  }
  if (!ed25519Verify(check.caPublicKey, bytes, sig)) throw refuse('bad CA signature');
  if (c.notBefore > check.now + CLOCK_SKEW_MS) throw refuse(`not valid before ${new Date(c.notBefore).toISOString()} (clock skew beyond ${CLOCK_SKEW_MS / 60_000} min)`);
  if (c.notAfter <= check.now) throw refuse(`expired at ${new Date(c.notAfter).toISOString()}`);
  if (check.jobId !== undefined && !c.jobs.includes('*') && !c.jobs.includes(check.jobId)) throw refuse(`not valid for job ${check.jobId.slice(0, 200)}`);
  if (check.clientId !== undefined && c.clientId !== check.clientId) throw refuse(`issued to ${c.clientId.slice(0, 200)}, presented as ${check.clientId.slice(0, 200)}`);
  if (check.publicKey !== undefined && c.publicKey !== toBase64Url(check.publicKey)) throw refuse('issued for another key');
  if (check.isRevoked?.(c.serial)) throw refuse('revoked');
  return c;
}

/**
 * A SecAgg neighbour check (shared/secagg SecAggClientOptions.checkPeer): the neighbour must show a
 * certificate from the CA, valid now and for the job, for its id and for the identity key that signed its
 * round keys, and not revoked on the newest list this client has accepted (`isRevoked`, revocation.ts).
 * Returns why not, or undefined.
 */
export function certifiedPeerCheck(caPublicKey: Uint8Array, jobId: string, now: () => number, isRevoked?: (serial: string) => boolean) {
  return (peer: { clientId: string; identityKey: Uint8Array; certificate?: Certificate }): string | undefined => {
    if (!peer.certificate) return 'no certificate from the federation CA';
    try {
      verifyCertificate(peer.certificate, { caPublicKey, now: now(), jobId, clientId: peer.clientId, publicKey: peer.identityKey, ...(isRevoked ? { isRevoked } : {}) });
      return undefined;
    } catch (err) {
      return err instanceof CohortError ? err.message : 'certificate check failed';
    }
  };
}
