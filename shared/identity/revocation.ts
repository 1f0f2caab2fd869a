/**
 * Revocation lists: the federation CA's Ed25519 signature over the serials of the certificates it has
 * revoked and the time it signed them. The coordinator relays the newest one to every SecAgg round
 * (ShareKeysRequest), and a client that knows the CA's key refuses a neighbour whose certificate is
 * on it — so a revoked device cannot be slipped back into a round by a coordinator, as long as the
 * client has seen a list that names it:
 * - a list is accepted only if the CA signed it (a coordinator cannot forge one);
 * - never an older one than the newest this client has accepted (no rollback to before a revocation);
 * - with `maxAgeMs`, a list is required and must be younger than that (a coordinator cannot withhold
 *   revocations for longer). Without it, a coordinator that never relays a list keeps the client at
 *   the last list it saw: the README states this.
 * Signed bytes are a length-prefixed encoding under their own domain-separation tag (frameFields), so
 * a list can never be read as a certificate or any other signed object of ours.
 *
 * Pure: no I/O, no clock (callers pass `now`).
 */
import { z } from 'zod';
import { frameFields, fromBase64Url, toBase64Url } from '../crypto/bytes.ts';
import { ed25519Sign, ed25519Verify, ED25519_PUBLIC_KEY_BYTES, type Ed25519KeyPair } from '../crypto/ed25519.ts';
import { CohortError } from '../errors.ts';
import { CLOCK_SKEW_MS, keyFingerprint } from './certificate.ts';

export const REVOCATION_LIST_VERSION = 1;
const TAG = 'cohort/revocation-list/v1';
/** Most serials one list may hold. */
export const MAX_REVOKED_SERIALS = 100_000;

const serial = z.string().regex(/^[A-Za-z0-9_-]{22}$/, '16 bytes, base64url');

export const RevocationListSchema = z
  .object({
    v: z.literal(REVOCATION_LIST_VERSION),
    /** Fingerprint of the CA public key that signed it. */
    issuer: z.string().regex(/^sha256:[0-9a-f]{64}$/),
    /** When the CA signed it (ms since the epoch): a newer list replaces an older one. */
    issuedAt: z.number().int().min(0),
    /** Revoked certificate serials, sorted, each once. */
    serials: z.array(serial).max(MAX_REVOKED_SERIALS),
    signature: z.string().regex(/^[A-Za-z0-9_-]{86}$/, '64 bytes, base64url'),
  })
  .strict();
export type RevocationList = z.output<typeof RevocationListSchema>;

function signedBytes(l: Omit<RevocationList, 'signature'>): Uint8Array {
  return frameFields(TAG, l.v, l.issuer, String(l.issuedAt), l.serials.length, ...l.serials.map((s) => fromBase64Url(s)));
}

/** The CA signs the list of `serials` revoked as of `issuedAt`. */
export function signRevocationList(ca: Ed25519KeyPair, serials: Iterable<string>, issuedAt: number): RevocationList {
  const unsigned = { v: REVOCATION_LIST_VERSION, issuer: keyFingerprint(ca.publicKey), issuedAt, serials: [...new Set(serials)].sort() } as const;
  const parsed = RevocationListSchema.omit({ signature: true }).safeParse(unsigned);
  if (!parsed.success) throw new CohortError('BAD_CERTIFICATE', `cannot sign the revocation list: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return { ...parsed.data, signature: toBase64Url(ed25519Sign(ca, signedBytes(parsed.data))) };
}

/**
 * Parses and verifies a list: schema, issuer, CA signature, serials sorted and distinct, not signed in
 * the future (beyond the clock skew). Throws BAD_CERTIFICATE (not a list) or UNAUTHORIZED (not the CA's).
 */
export function verifyRevocationList(input: unknown, caPublicKey: Uint8Array, now: number): RevocationList {
  const parsed = RevocationListSchema.safeParse(input);
  if (!parsed.success) throw new CohortError('BAD_CERTIFICATE', `malformed revocation list: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  const l = parsed.data;
  if (caPublicKey.length !== ED25519_PUBLIC_KEY_BYTES) throw new CohortError('BAD_CERTIFICATE', 'the CA public key must be 32 bytes');
  if (l.issuer !== keyFingerprint(caPublicKey)) throw new CohortError('UNAUTHORIZED', 'revocation list refused: signed by another CA');
  for (let i = 1; i < l.serials.length; i++) {
    if (l.serials[i - 1] >= l.serials[i]) throw new CohortError('BAD_CERTIFICATE', 'malformed revocation list: serials must be sorted and distinct');
  }
  const { signature, ...unsigned } = l;
  if (!ed25519Verify(caPublicKey, signedBytes(unsigned), fromBase64Url(signature))) throw new CohortError('UNAUTHORIZED', 'revocation list refused: bad CA signature');
  if (l.issuedAt > now + CLOCK_SKEW_MS) throw new CohortError('UNAUTHORIZED', `revocation list refused: signed in the future (${new Date(l.issuedAt).toISOString()})`);
  return l;
}

export interface RevocationPolicy {
  caPublicKey: Uint8Array;
  now: () => number;
  /** Require a list in every round, signed less than this long ago. */
  maxAgeMs?: number;
}

/**
 * What one client knows of the federation's revocations: the newest CA-signed list it has accepted.
 * Kept for the client's lifetime (across rounds and jobs), so a coordinator can never take it back.
 */
export class RevocationView {
  private newest?: RevocationList;
  private revoked = new Set<string>();

  constructor(private readonly policy: RevocationPolicy) {}

  /** When the newest accepted list was signed (undefined: none yet). */
  get issuedAt(): number | undefined {
    return this.newest?.issuedAt;
  }

  /**
   * Takes the list a round relays (or its absence): undefined if the round may go on, else why not. A
   * newer valid list replaces the one held; the same one is fine; an older one is refused.
   */
  accept(input: unknown): string | undefined {
    const now = this.policy.now();
    if (input === undefined) {
      if (this.policy.maxAgeMs === undefined) return undefined;
      if (this.newest && now - this.newest.issuedAt <= this.policy.maxAgeMs) return undefined;
      return `no revocation list from the CA younger than ${Math.round(this.policy.maxAgeMs / 1000)} s was relayed`;
    }
    let list: RevocationList;
    try {
      list = verifyRevocationList(input, this.policy.caPublicKey, now);
    } catch (err) {
      return err instanceof CohortError ? err.message : 'revocation list check failed';
    }
    if (this.newest && list.issuedAt < this.newest.issuedAt) {
      return `revocation list refused: signed ${new Date(list.issuedAt).toISOString()}, older than the one already seen (${new Date(this.newest.issuedAt).toISOString()})`;
    }
    if (this.policy.maxAgeMs !== undefined && now - list.issuedAt > this.policy.maxAgeMs) {
      return `revocation list refused: signed ${Math.round((now - list.issuedAt) / 1000)} s ago, more than ${Math.round(this.policy.maxAgeMs / 1000)} s`;
    }
    if (!this.newest || list.issuedAt > this.newest.issuedAt) {
      this.newest = list;
      this.revoked = new Set(list.serials);
    }
    return undefined;
  }

  isRevoked(serial: string): boolean {
    return this.revoked.has(serial);
  }
}
