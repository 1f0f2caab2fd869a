/**
 * Device identities (schema v6): which Ed25519 key each client id is bound to, one-time enrolment tokens
 * (stored only as SHA-256, compared in constant time like API tokens), and the certificates this
 * coordinator issued or accepted (by serial, for revocation). The decisions — who may bind, when a
 * certificate is good — are server/identity's; this is storage, each change one transaction.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type Database from 'better-sqlite3';
import { CohortError } from '../../shared/errors.ts';
import * as v from './validate.ts';

export const ENROL_TOKEN_PREFIX = 'cet_';
const ENROL_TOKEN_LENGTH = ENROL_TOKEN_PREFIX.length + 43;

export type BoundBy = 'first-use' | 'certificate' | 'enrolment';

export interface ClientIdentityRow {
  clientId: string;
  publicKey: string;
  boundAt: number;
  boundBy: BoundBy;
  revokedAt: number | null;
  revokedBy: string | null;
}

export interface EnrolmentRow {
  id: string;
  clientId: string;
  jobs: string[];
  createdAt: number;
  expiresAt: number;
  createdBy: string;
  usedAt: number | null;
  serial: string | null;
}

export interface CertificateRow {
  serial: string;
  clientId: string;
  publicKey: string;
  jobs: string[];
  notBefore: number;
  notAfter: number;
  seenAt: number;
  revokedAt: number | null;
}

interface IdentitySql {
  client_id: string;
  public_key: string;
  bound_at: number;
  bound_by: BoundBy;
  revoked_at: number | null;
  revoked_by: string | null;
}
interface EnrolmentSql {
  id: string;
  token_hash: string;
  client_id: string;
  jobs: string;
  created_at: number;
  expires_at: number;
  created_by: string;
  used_at: number | null;
  serial: string | null;
}
interface CertificateSql {
  serial: string;
  client_id: string;
  public_key: string;
  jobs: string;
  not_before: number;
  not_after: number;
  seen_at: number;
  revoked_at: number | null;
}

const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

function prepare(db: Database.Database) {
  return {
    identity: db.prepare<[string], IdentitySql>('SELECT * FROM client_identities WHERE client_id = ?'),
    identities: db.prepare<[], IdentitySql>('SELECT * FROM client_identities ORDER BY client_id'),
    bind: db.prepare<{ clientId: string; publicKey: string; now: number; by: BoundBy }>(
      `INSERT INTO client_identities (client_id, public_key, bound_at, bound_by) VALUES (@clientId, @publicKey, @now, @by)
       ON CONFLICT(client_id) DO UPDATE SET public_key = excluded.public_key, bound_at = excluded.bound_at,
         bound_by = excluded.bound_by, revoked_at = NULL, revoked_by = NULL`,
    ),
    bindIfNew: db.prepare<{ clientId: string; publicKey: string; now: number }>(
      `INSERT INTO client_identities (client_id, public_key, bound_at, bound_by) VALUES (@clientId, @publicKey, @now, 'first-use')
       ON CONFLICT(client_id) DO NOTHING`,
    ),
    revokeIdentity: db.prepare<[number, string, string]>('UPDATE client_identities SET revoked_at = COALESCE(revoked_at, ?), revoked_by = COALESCE(revoked_by, ?) WHERE client_id = ?'),
    insertEnrolment: db.prepare<[string, string, string, string, number, number, string]>(
      'INSERT INTO enrolment_tokens (id, token_hash, client_id, jobs, created_at, expires_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    enrolmentByHash: db.prepare<[string], EnrolmentSql>('SELECT * FROM enrolment_tokens WHERE token_hash = ?'),
    enrolments: db.prepare<[], EnrolmentSql>('SELECT * FROM enrolment_tokens ORDER BY created_at, id'),
    useEnrolment: db.prepare<[number, string, string]>('UPDATE enrolment_tokens SET used_at = ?, serial = ? WHERE id = ? AND used_at IS NULL'),
    certificate: db.prepare<[string], CertificateSql>('SELECT * FROM client_certificates WHERE serial = ?'),
    certificatesOf: db.prepare<[string], CertificateSql>('SELECT * FROM client_certificates WHERE client_id = ? ORDER BY seen_at'),
    insertCertificate: db.prepare<{ serial: string; clientId: string; publicKey: string; jobs: string; notBefore: number; notAfter: number; now: number }>(
      `INSERT INTO client_certificates (serial, client_id, public_key, jobs, not_before, not_after, seen_at)
       VALUES (@serial, @clientId, @publicKey, @jobs, @notBefore, @notAfter, @now) ON CONFLICT(serial) DO NOTHING`,
    ),
    revokeCertificates: db.prepare<[number, string]>('UPDATE client_certificates SET revoked_at = COALESCE(revoked_at, ?) WHERE client_id = ?'),
    revokedSerials: db.prepare<[], { serial: string }>('SELECT serial FROM client_certificates WHERE revoked_at IS NOT NULL'),
  };
}

const toIdentity = (r: IdentitySql): ClientIdentityRow => ({ clientId: r.client_id, publicKey: r.public_key, boundAt: r.bound_at, boundBy: r.bound_by, revokedAt: r.revoked_at, revokedBy: r.revoked_by });
const toEnrolment = (r: EnrolmentSql): EnrolmentRow => ({ id: r.id, clientId: r.client_id, jobs: JSON.parse(r.jobs) as string[], createdAt: r.created_at, expiresAt: r.expires_at, createdBy: r.created_by, usedAt: r.used_at, serial: r.serial });
const toCertificate = (r: CertificateSql): CertificateRow => ({ serial: r.serial, clientId: r.client_id, publicKey: r.public_key, jobs: JSON.parse(r.jobs) as string[], notBefore: r.not_before, notAfter: r.not_after, seenAt: r.seen_at, revokedAt: r.revoked_at });

export class IdentitiesRepository {
  private readonly st: ReturnType<typeof prepare>;
  private readonly redeemTx: Database.Transaction<(id: string, serial: string, bind: { clientId: string; publicKey: string }, cert: Omit<CertificateRow, 'seenAt' | 'revokedAt'>) => boolean>;
  private readonly revokeTx: Database.Transaction<(clientId: string, by: string) => boolean>;
  private readonly bindManyTx: Database.Transaction<(binds: [string, string][]) => void>;

  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
  ) {
    this.st = prepare(db);
    this.redeemTx = db.transaction((id, serial, bind, cert) => {
      // The token is spent only if nobody spent it first: the UPDATE's WHERE used_at IS NULL decides.
      if (this.st.useEnrolment.run(this.now(), serial, id).changes !== 1) return false;
      this.insertCertificate(cert);
      this.st.bind.run({ ...bind, now: this.now(), by: 'enrolment' });
      return true;
    });
    this.bindManyTx = db.transaction((binds) => {
      const now = this.now();
      for (const [clientId, publicKey] of binds) this.st.bindIfNew.run({ clientId, publicKey, now });
    });
    this.revokeTx = db.transaction((clientId, by) => {
      const known = this.st.identity.get(clientId) !== undefined;
      const now = this.now();
      if (known) this.st.revokeIdentity.run(now, by, clientId);
      const certs = this.st.revokeCertificates.run(now, clientId).changes;
      return known || certs > 0;
    });
  }

  identity(clientId: string): ClientIdentityRow | undefined {
    const r = this.st.identity.get(clientId);
    return r && toIdentity(r);
  }

  list(): ClientIdentityRow[] {
    return this.st.identities.all().map(toIdentity);
  }

  /** Binds an unknown id to a key (first use); false if the id was already bound (to any key). */
  bindFirstUse(clientId: string, publicKey: string): boolean {
    return this.st.bindIfNew.run({ clientId: v.nonEmptyString('clientId', clientId), publicKey, now: this.now() }).changes === 1;
  }

  /** Many first-use bindings in one transaction (one fsync); ids already bound keep their key. */
  bindFirstUseMany(binds: [clientId: string, publicKey: string][]): void {
    this.bindManyTx.immediate(binds);
  }

  /** Binds (or re-binds) an id on an operator's authority: a certificate from the CA. Clears a revocation. */
  bindCertified(clientId: string, publicKey: string): void {
    this.st.bind.run({ clientId: v.nonEmptyString('clientId', clientId), publicKey, now: this.now(), by: 'certificate' });
  }

  /** Revokes an id and all its certificates; false if the id is unknown. */
  revoke(clientId: string, by: string): boolean {
    return this.revokeTx.immediate(v.nonEmptyString('clientId', clientId), by);
  }

  /** A new one-time enrolment token (its text is returned once and stored nowhere). */
  createEnrolment(input: { clientId: string; jobs: string[]; ttlMs: number; createdBy: string }): { token: string; row: EnrolmentRow } {
    const clientId = v.nonEmptyString('clientId', input.clientId);
    if (!Array.isArray(input.jobs) || input.jobs.length === 0 || input.jobs.some((j) => typeof j !== 'string' || j.length === 0 || j.length > 200)) {
      throw new CohortError('BAD_INPUT', 'jobs: a non-empty list of job ids, or ["*"]');
    }
    if (!Number.isInteger(input.ttlMs) || input.ttlMs < 1000 || input.ttlMs > 366 * 86_400_000) throw new CohortError('BAD_INPUT', 'expires: between 1 s and 366 days');
    const token = ENROL_TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const id = 'enr_' + randomBytes(8).toString('hex');
    const now = this.now();
    this.st.insertEnrolment.run(id, sha256Hex(token), clientId, JSON.stringify(input.jobs), now, now + input.ttlMs, v.nonEmptyString('createdBy', input.createdBy));
    return { token, row: this.listEnrolments().find((r) => r.id === id)! };
  }

  /** The unspent enrolment behind a token text, compared in constant time; undefined if unknown. */
  findEnrolment(token: string): EnrolmentRow | undefined {
    if (typeof token !== 'string' || token.length !== ENROL_TOKEN_LENGTH || !token.startsWith(ENROL_TOKEN_PREFIX)) return undefined;
    const hash = sha256Hex(token);
    const row = this.st.enrolmentByHash.get(hash);
    if (!row || !timingSafeEqual(Buffer.from(row.token_hash, 'hex'), Buffer.from(hash, 'hex'))) return undefined;
    return toEnrolment(row);
  }

  /**
   * Spends an enrolment: marks it used, records the certificate issued for it and binds the id to its
   * key, in one transaction. False if it was spent meanwhile (nothing written).
   */
  redeem(enrolmentId: string, cert: Omit<CertificateRow, 'seenAt' | 'revokedAt'>): boolean {
    return this.redeemTx.immediate(enrolmentId, cert.serial, { clientId: cert.clientId, publicKey: cert.publicKey }, cert);
  }

  listEnrolments(): EnrolmentRow[] {
    return this.st.enrolments.all().map(toEnrolment);
  }

  /** Records a certificate seen at hello (idempotent by serial). */
  insertCertificate(cert: Omit<CertificateRow, 'seenAt' | 'revokedAt'>): void {
    this.st.insertCertificate.run({ ...cert, jobs: JSON.stringify(cert.jobs), now: this.now() });
  }

  certificate(serial: string): CertificateRow | undefined {
    const r = this.st.certificate.get(serial);
    return r && toCertificate(r);
  }

  certificatesOf(clientId: string): CertificateRow[] {
    return this.st.certificatesOf.all(clientId).map(toCertificate);
  }

  revokedSerials(): string[] {
    return this.st.revokedSerials.all().map((r) => r.serial);
  }
}
