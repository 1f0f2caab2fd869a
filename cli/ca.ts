/**
 * `cohort ca init|sign`: the offline federation CA, on an admin's machine (not the coordinator's). `init`
 * writes a CA key (mode 0600) and its public key; `sign` issues a client certificate for a device's
 * public key (`cohort client identity` prints it), e.g. for devices provisioned by MDM. A coordinator
 * started with `--ca-public-key ca.pub` accepts these certificates and cannot mint any itself.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fromBase64Url, toBase64Url } from '../shared/crypto/bytes.ts';
import { randomBytes } from '../shared/random.ts';
import { ed25519KeyPair } from '../shared/crypto/ed25519.ts';
import { ConfigError } from '../shared/errors.ts';
import { keyFingerprint, verifyRevocationList } from '../shared/identity/index.ts';
import { authorityFromKey, caKeyText, readCaKey, writePrivateFile } from '../server/identity/authority.ts';

/** "90d", "24h", "30m", "45s" → milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+)\s*([smhd])$/.exec(text.trim());
  if (!m) throw new ConfigError(`${flag} must be a duration like 30m, 24h or 90d, got ${JSON.stringify(text)}`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

/** "a,b" → ["a","b"]; absent → ["*"]. */
export function parseJobs(text: string | undefined): string[] {
  if (text === undefined || text.trim() === '*') return ['*'];
  const jobs = text.split(',').map((j) => j.trim()).filter(Boolean);
  if (jobs.length === 0 || jobs.some((j) => !/^[A-Za-z0-9._-]{1,128}$/.test(j))) throw new ConfigError(`--jobs must be job ids separated by commas (or *), got ${JSON.stringify(text)}`);
  return jobs;
}

export function caInit(opts: { out?: string; json?: boolean }): number {
  if (!opts.out) throw new ConfigError('--out DIR is required (the CA key goes to DIR/ca.key, mode 0600; the public key to DIR/ca.pub)');
  const keyFile = path.join(opts.out, 'ca.key');
  if (fs.existsSync(keyFile)) throw new ConfigError(`${keyFile} exists: a CA key is never overwritten`);
  const key = ed25519KeyPair();
  writePrivateFile(keyFile, caKeyText(key));
  fs.writeFileSync(path.join(opts.out, 'ca.pub'), `${toBase64Url(key.publicKey)}\n`);
  const out = { key: keyFile, publicKey: toBase64Url(key.publicKey), fingerprint: keyFingerprint(key.publicKey), publicKeyFile: path.join(opts.out, 'ca.pub') };
  process.stdout.write(opts.json ? `${JSON.stringify(out)}\n` : `CA key      ${out.key} (keep it offline)\npublic key  ${out.publicKeyFile}: ${out.publicKey}\nfingerprint ${out.fingerprint}\n`);
  return 0;
}

export function caSign(opts: { caKey?: string; id?: string; publicKey?: string; jobs?: string; expires?: string; out?: string }): number {
  if (!opts.caKey) throw new ConfigError('--ca-key FILE is required');
  if (!opts.id || !/^[A-Za-z0-9._:@-]{1,128}$/.test(opts.id)) throw new ConfigError('--id NAME is required: a client id (letters, digits and . _ : @ -)');
  if (!opts.publicKey) throw new ConfigError("--public-key KEY is required: the device's key, as `cohort client identity` prints it");
  let publicKey: Uint8Array;
  try {
    publicKey = fromBase64Url(opts.publicKey.trim());
  } catch {
    publicKey = new Uint8Array(0);
  }
  if (publicKey.length !== 32) throw new ConfigError('--public-key must be a 32-byte Ed25519 public key in base64url (43 characters)');
  const ca = authorityFromKey(readCaKey(opts.caKey), 'offline');
  const now = Date.now();
  const certificate = ca.issue!({
    clientId: opts.id,
    publicKey: toBase64Url(publicKey),
    jobs: parseJobs(opts.jobs),
    notBefore: now,
    notAfter: now + parseDuration(opts.expires ?? '365d', '--expires'),
    serial: toBase64Url(randomBytes(16)),
  });
  const text = `${JSON.stringify(certificate, null, 2)}\n`;
  if (opts.out) fs.writeFileSync(opts.out, text);
  else process.stdout.write(text);
  return 0;
}

/**
 * `cohort ca revoke --ca-key FILE --serial S [--serial S2 …] --list FILE`: the list in FILE (if any,
 * checked against the CA key) plus the new serials, signed now and written back. A coordinator started
 * with `--revocation-list FILE` re-reads it and relays it to SecAgg rounds.
 */
export function caRevoke(opts: { caKey?: string; serial?: string[]; list?: string; json?: boolean }): number {
  if (!opts.caKey) throw new ConfigError('--ca-key FILE is required');
  if (!opts.list) throw new ConfigError('--list FILE is required: the revocation list to extend (created if missing)');
  const serials = opts.serial ?? [];
  if (serials.length === 0) throw new ConfigError('--serial SERIAL is required (repeatable): the serial of a certificate to revoke');
  for (const s of serials) if (!/^[A-Za-z0-9_-]{22}$/.test(s)) throw new ConfigError(`--serial must be a certificate serial (22 base64url characters), got ${JSON.stringify(s.slice(0, 40))}`);
  const key = readCaKey(opts.caKey);
  const ca = authorityFromKey(key, 'offline');
  let previous: string[] = [];
  let previousAt = 0;
  if (fs.existsSync(opts.list)) {
    let text: unknown;
    try {
      text = JSON.parse(fs.readFileSync(opts.list, 'utf8'));
    } catch (err) {
      throw new ConfigError(`${opts.list} is not JSON: ${(err as Error).message}`);
    }
    try {
      const list = verifyRevocationList(text, ca.publicKey, Date.now());
      previous = list.serials;
      previousAt = list.issuedAt;
    } catch (err) {
      throw new ConfigError(`${opts.list} is not a revocation list of this CA: ${(err as Error).message}`);
    }
  }
  // Strictly newer than the list it replaces, so coordinators and clients take it.
  const list = ca.signRevocations!([...previous, ...serials], Math.max(Date.now(), previousAt + 1));
  const text = `${JSON.stringify(list, null, 2)}\n`;
  const tmp = `${opts.list}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, opts.list); // a coordinator re-reading it never sees half a file
  if (opts.json) process.stdout.write(text);
  else process.stdout.write(`${opts.list}: ${list.serials.length} revoked serial(s), signed ${new Date(list.issuedAt).toISOString()} by ${keyFingerprint(ca.publicKey)}\n`);
  return 0;
}
