/**
 * The device's identity file (Node): its long-term Ed25519 key, and, once enrolled, its certificate and
 * the CA public key it pinned. JSON, created with mode 0600; a file that group or others can read is
 * refused (IDENTITY_FILE_UNSAFE) — whoever reads it can speak for this client. The default lives under
 * the client's home (`$COHORT_HOME`, else `~/.cohort`), one file per client id.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fromBase64Url, toBase64Url } from '../../shared/crypto/bytes.ts';
import { ed25519KeyPair } from '../../shared/crypto/ed25519.ts';
import { CohortError } from '../../shared/errors.ts';
import { CertificateSchema, keyFingerprint, type Certificate } from '../../shared/identity/index.ts';
import type { ClientIdentity } from '../engine/engine.ts';

export interface IdentityFile {
  file: string;
  identity: ClientIdentity;
  /** The CA key pinned at enrolment (base64url), if any. */
  caPublicKey?: string;
  /** Whether this call created the file. */
  created: boolean;
}

interface Stored {
  v: 1;
  kind: 'cohort-identity';
  seed: string;
  publicKey: string;
  certificate?: Certificate;
  caPublicKey?: string;
}

export function cohortHome(): string {
  return process.env.COHORT_HOME ?? path.join(os.homedir(), '.cohort');
}

export function defaultIdentityPath(clientId: string): string {
  return path.join(cohortHome(), 'identities', `${clientId.replace(/[^A-Za-z0-9._@-]/g, '_')}.json`);
}

function refuseIfShared(file: string): void {
  if (process.platform === 'win32') return;
  const mode = fs.statSync(file).mode & 0o777;
  if (mode & 0o077) {
    throw new CohortError('IDENTITY_FILE_UNSAFE', `identity file ${file} is readable by group or others (mode ${mode.toString(8).padStart(3, '0')}): anyone who reads it can speak for this client. Run: chmod 600 ${file}`);
  }
}

function write(file: string, stored: Stored, create: boolean): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const text = `${JSON.stringify(stored, null, 2)}\n`;
  if (create) {
    fs.writeFileSync(file, text, { mode: 0o600, flag: 'wx' });
    return;
  }
  // Replace atomically: a crash leaves the old file or the new one, never half of one.
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** Reads the identity file, creating it (a new key, mode 0600) if it does not exist. */
export function loadIdentity(file: string, opts: { create?: boolean } = {}): IdentityFile {
  if (!fs.existsSync(file)) {
    if (opts.create === false) throw new CohortError('IDENTITY_FILE_UNSAFE', `no identity file at ${file}`);
    const key = ed25519KeyPair();
    try {
      write(file, { v: 1, kind: 'cohort-identity', seed: toBase64Url(key.seed), publicKey: toBase64Url(key.publicKey) }, true);
      return { file, identity: { key }, created: true };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Another process created it meanwhile: read theirs.
    }
  }
  refuseIfShared(file);
  let stored: Partial<Stored>;
  try {
    stored = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<Stored>;
  } catch (err) {
    throw new CohortError('IDENTITY_FILE_UNSAFE', `${file} is not an identity file: ${(err as Error).message}`);
  }
  if (stored.kind !== 'cohort-identity' || typeof stored.seed !== 'string') throw new CohortError('IDENTITY_FILE_UNSAFE', `${file} is not an identity file (kind cohort-identity)`);
  const key = ed25519KeyPair(fromBase64Url(stored.seed));
  if (stored.publicKey !== undefined && stored.publicKey !== toBase64Url(key.publicKey)) throw new CohortError('IDENTITY_FILE_UNSAFE', `${file}: its public key does not match its private key`);
  const certificate = stored.certificate === undefined ? undefined : CertificateSchema.parse(stored.certificate);
  return { file, identity: { key, ...(certificate ? { certificate } : {}) }, ...(stored.caPublicKey ? { caPublicKey: stored.caPublicKey } : {}), created: false };
}

/** Keeps a certificate (from enrolment, or from `cohort ca sign`) and the CA key it chains to, in the identity file. */
export function saveCertificate(file: string, certificate: Certificate, caPublicKey?: string): void {
  const current = loadIdentity(file, { create: false });
  if (certificate.publicKey !== toBase64Url(current.identity.key.publicKey)) {
    throw new CohortError('BAD_CERTIFICATE', `the certificate is for key ${keyFingerprint(fromBase64Url(certificate.publicKey))}, not this identity's`);
  }
  write(
    file,
    {
      v: 1,
      kind: 'cohort-identity',
      seed: toBase64Url(current.identity.key.seed),
      publicKey: toBase64Url(current.identity.key.publicKey),
      certificate,
      ...((caPublicKey ?? current.caPublicKey) ? { caPublicKey: caPublicKey ?? current.caPublicKey } : {}),
    },
    false,
  );
}
