/**
 * The federation CA (DESIGN.md §4): an Ed25519 key that signs client certificates. Two places it may live:
 * - in the service's data dir (`<data-dir>/ca/ca.key`, created on first need, mode 0600): simple — the
 *   coordinator can issue certificates at enrolment, and whoever controls the coordinator can mint
 *   identities;
 * - offline, on an admin's machine (`cohort ca init`, `cohort ca sign`): the coordinator gets only the
 *   public key (`--ca-public-key FILE`) and cannot mint identities.
 * Key files are JSON `{ "v": 1, "kind": "cohort-ca", "seed", "publicKey" }` (base64url); a key file
 * readable by group or others is refused (IDENTITY_FILE_UNSAFE).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fromBase64Url, toBase64Url } from '../../shared/crypto/bytes.ts';
import { ed25519KeyPair, type Ed25519KeyPair } from '../../shared/crypto/ed25519.ts';
import { CohortError } from '../../shared/errors.ts';
import { keyFingerprint, signCertificate, signRevocationList, type Certificate, type CertificateFields, type RevocationList } from '../../shared/identity/index.ts';

export interface CertificateAuthority {
  readonly publicKey: Uint8Array;
  /** `sha256:<hex>` of the public key. */
  readonly fingerprint: string;
  /** Present only when this process holds the private key. */
  readonly issue?: (fields: CertificateFields) => Certificate;
  /** Present only when this process holds the private key: signs a revocation list. */
  readonly signRevocations?: (serials: Iterable<string>, issuedAt: number) => RevocationList;
  /** Where the key came from, for logs and the README's trust statement. */
  readonly where: 'data-dir' | 'offline' | 'memory';
}

export function authorityFromKey(key: Ed25519KeyPair, where: CertificateAuthority['where']): CertificateAuthority {
  return {
    publicKey: key.publicKey,
    fingerprint: keyFingerprint(key.publicKey),
    issue: (fields) => signCertificate(key, fields),
    signRevocations: (serials, issuedAt) => signRevocationList(key, serials, issuedAt),
    where,
  };
}

export function authorityFromPublicKey(publicKey: Uint8Array): CertificateAuthority {
  if (publicKey.length !== 32) throw new CohortError('IDENTITY_FILE_UNSAFE', 'a CA public key is 32 bytes');
  return { publicKey, fingerprint: keyFingerprint(publicKey), where: 'offline' };
}

/** Refuses a secret file that group or others may read (POSIX modes; skipped where there are none). */
export function checkPrivateFile(file: string): void {
  if (process.platform === 'win32') return;
  const mode = fs.statSync(file).mode & 0o777;
  if (mode & 0o077) {
    throw new CohortError('IDENTITY_FILE_UNSAFE', `${file} is readable by group or others (mode ${mode.toString(8).padStart(3, '0')}); run: chmod 600 ${file}`);
  }
}

/** Writes a new secret file with mode 0600 (never over an existing one). */
export function writePrivateFile(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, text, { mode: 0o600, flag: 'wx' });
}

export function caKeyText(key: Ed25519KeyPair): string {
  return `${JSON.stringify({ v: 1, kind: 'cohort-ca', seed: toBase64Url(key.seed), publicKey: toBase64Url(key.publicKey) }, null, 2)}\n`;
}

/** Reads a CA private key file (checked private). */
export function readCaKey(file: string): Ed25519KeyPair {
  checkPrivateFile(file);
  let parsed: { kind?: unknown; seed?: unknown };
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof parsed;
  } catch (err) {
    throw new CohortError('IDENTITY_FILE_UNSAFE', `${file} is not a CA key file: ${(err as Error).message}`);
  }
  if (parsed.kind !== 'cohort-ca' || typeof parsed.seed !== 'string') throw new CohortError('IDENTITY_FILE_UNSAFE', `${file} is not a CA key file (kind cohort-ca)`);
  return ed25519KeyPair(fromBase64Url(parsed.seed));
}

/** Reads a CA public key: a file holding the key in base64url (what `cohort ca init` writes as ca.pub), or a CA key file's publicKey. */
export function readCaPublicKey(file: string): Uint8Array {
  const text = fs.readFileSync(file, 'utf8').trim();
  try {
    const key = text.startsWith('{') ? fromBase64Url(String((JSON.parse(text) as { publicKey?: unknown }).publicKey)) : fromBase64Url(text);
    if (key.length === 32) return key;
  } catch {
    // fall through
  }
  throw new CohortError('IDENTITY_FILE_UNSAFE', `${file} does not hold a CA public key (32 bytes, base64url)`);
}

/** The data-dir CA: `<dataDir>/ca/ca.key` (and ca.pub), created on first call. */
export function dataDirAuthority(dataDir: string): CertificateAuthority {
  const file = path.join(dataDir, 'ca', 'ca.key');
  if (!fs.existsSync(file)) {
    const key = ed25519KeyPair();
    try {
      writePrivateFile(file, caKeyText(key));
      fs.writeFileSync(path.join(dataDir, 'ca', 'ca.pub'), `${toBase64Url(key.publicKey)}\n`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return authorityFromKey(readCaKey(file), 'data-dir');
}
