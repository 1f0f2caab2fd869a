import { randomUUID } from 'node:crypto';
import { loadClientConfig } from '../client/node/config.ts';
import { splitTrainTest } from '../client/data/dataset.ts';
import { loadDataset } from '../client/node/load.ts';
import { ClientEngine, privacyFloorPolicy } from '../client/engine/index.ts';
import { selectBackend } from '../client/train/backend.ts';
import { TfjsTask } from '../client/train/task.ts';
import { nodeCertificateCheck } from '../client/node/tls.ts';
import { SocketIoClientTransport } from '../client/transport/socketio.ts';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../shared/errors.ts';
import { fromBase64Url, toBase64Url } from '../shared/crypto/bytes.ts';
import { keyFingerprint, type Certificate } from '../shared/identity/index.ts';
import { defaultIdentityPath, loadIdentity, saveCertificate } from '../client/node/identity.ts';
import { checkServerUrl } from '../shared/transport-security.ts';
import { createLogger, type LogLevel } from './log.ts';

export interface ClientCommandOptions {
  server?: string;
  /** A job of a multi-job service (`cohort serve`): joins its namespace, /jobs/<id>. */
  job?: string;
  data?: string;
  config?: string;
  id?: string;
  backend?: string;
  /** The identity file (default: $COHORT_HOME/identities/<id>.json, created with mode 0600). */
  identity?: string;
  /** A one-time enrolment token from `cohort admin clients enroll`: exchanged for a certificate at the first hello. */
  enrolToken?: string;
  /** A certificate from `cohort ca sign` (offline CA) to keep in the identity file. */
  certificate?: string;
  /** The federation CA's public key file: SecAgg neighbours must show its certificates (pinned in the identity file). */
  caPublicKey?: string;
  /** With a pinned CA: require its revocation list, signed within this long (e.g. 1h), in every SecAgg round. */
  maxRevocationAge?: string;
  /** A PEM CA bundle that the server's certificate must chain to (instead of the default store). */
  caFile?: string;
  /** `sha256:<hex>`: accept only the server certificate with this fingerprint. */
  serverFingerprint?: string;
  /** Allow plaintext http:// to a host that is not loopback. */
  insecure?: boolean;
  logLevel: LogLevel;
}

/** The identity file of a client (created if missing), with a certificate imported from `--certificate`. */
function identityFor(opts: { identity?: string; id?: string; certificate?: string; caPublicKey?: string }, fallbackId: string) {
  const file = opts.identity ?? defaultIdentityPath(opts.id ?? fallbackId);
  if (opts.certificate !== undefined) {
    loadIdentity(file);
    let cert: Certificate;
    try {
      cert = JSON.parse(readFileSync(opts.certificate, 'utf8')) as Certificate;
    } catch (err) {
      throw new ConfigError(`cannot read the certificate ${opts.certificate}: ${(err as Error).message}`);
    }
    saveCertificate(file, cert, opts.caPublicKey ? caKeyFrom(opts.caPublicKey) : undefined);
  } else if (opts.caPublicKey) {
    const current = loadIdentity(file);
    if (!current.identity.certificate) throw new ConfigError('--ca-public-key pins the CA next to a certificate: enrol first, or pass --certificate too');
    saveCertificate(file, current.identity.certificate, caKeyFrom(opts.caPublicKey));
  }
  const loaded = loadIdentity(file);
  return { ...loaded, identity: { ...loaded.identity, ...(loaded.caPublicKey ? { caPublicKey: loaded.caPublicKey } : {}) } };
}

/** A CA public key file (ca.pub: base64url) → its base64url text, checked. */
function caKeyFrom(file: string): string {
  let key: Uint8Array;
  try {
    key = fromBase64Url(readFileSync(file, 'utf8').trim());
  } catch (err) {
    throw new ConfigError(`cannot read the CA public key ${file}: ${(err as Error).message}`);
  }
  if (key.length !== 32) throw new ConfigError(`${file} does not hold a 32-byte CA public key (base64url)`);
  return toBase64Url(key);
}

export interface IdentityCommandOptions {
  identity?: string;
  id?: string;
  certificate?: string;
  caPublicKey?: string;
  json?: boolean;
}

/** `cohort client identity`: the device's public key and fingerprint (the file is created if missing), and its certificate. */
export function identityCommand(opts: IdentityCommandOptions): number {
  if (!opts.identity && !opts.id) throw new ConfigError('pass --identity FILE or --id ID (the default file is per client id)');
  const loaded = identityFor(opts, opts.id ?? '');
  const publicKey = toBase64Url(loaded.identity.key.publicKey);
  const cert = loaded.identity.certificate;
  const out = {
    file: loaded.file,
    created: loaded.created,
    publicKey,
    fingerprint: keyFingerprint(loaded.identity.key.publicKey),
    certificate: cert ? { clientId: cert.clientId, jobs: cert.jobs, notAfter: new Date(cert.notAfter).toISOString(), serial: cert.serial, issuer: cert.issuer } : null,
    caPublicKey: loaded.caPublicKey ? { key: loaded.caPublicKey, fingerprint: keyFingerprint(fromBase64Url(loaded.caPublicKey)) } : null,
  };
  if (opts.json) process.stdout.write(`${JSON.stringify(out)}\n`);
  else {
    process.stdout.write(`identity    ${out.file}${out.created ? ' (created)' : ''}\npublic key  ${publicKey}\nfingerprint ${out.fingerprint}\n`);
    process.stdout.write(out.certificate ? `certificate ${out.certificate.clientId}, jobs ${out.certificate.jobs.join(',')}, until ${out.certificate.notAfter}, issuer ${out.certificate.issuer}\n` : 'certificate none (enrol with --enrol-token, or import one from `cohort ca sign` with --certificate)\n');
  }
  return 0;
}

/** `cohort client`: joins a coordinator, trains on local data each round, exits when the job ends. */
export async function clientCommand(opts: ClientCommandOptions): Promise<number> {
  const logger = createLogger(opts.logLevel);
  const cfg = loadClientConfig(opts.config);
  const base = opts.server ?? cfg.server;
  if (opts.job !== undefined && !/^[A-Za-z0-9._-]{1,128}$/.test(opts.job)) throw new ConfigError(`--job must be a job id, got ${JSON.stringify(opts.job)}`);
  const server = base && opts.job ? `${base.replace(/\/+$/, '')}/jobs/${opts.job}` : base;
  const dataPath = opts.data ?? cfg.data;
  if (!server) throw new ConfigError('no server: pass --server URL or set "server" in the client config');
  if (!dataPath) throw new ConfigError('no data: pass --data PATH or set "data" in the client config');
  // Checked before any data is read or a connection is tried: plaintext to a remote host, bad TLS flags.
  const insecure = opts.insecure ?? cfg.insecure;
  const caFile = opts.caFile ?? cfg.caFile;
  const serverFingerprint = opts.serverFingerprint ?? cfg.serverFingerprint;
  const { tls } = checkServerUrl(server, insecure);
  if (!tls && (caFile !== undefined || serverFingerprint !== undefined)) {
    throw new ConfigError('--ca-file and --server-fingerprint check a TLS server: use an https:// URL');
  }
  const certificateCheck = tls ? nodeCertificateCheck({ caFile, serverFingerprint }) : undefined;
  let clientId = opts.id ?? cfg.clientId ?? `client-${randomUUID().slice(0, 8)}`;
  const idFile = identityFor(opts, clientId);
  const certified = idFile.identity.certificate;
  if (certified && !opts.id && !cfg.clientId) clientId = certified.clientId;
  if (certified && certified.clientId !== clientId) throw new ConfigError(`the identity file ${idFile.file} holds a certificate for ${certified.clientId}, not ${clientId}`);
  let maxRevocationAgeMs: number | undefined;
  if (opts.maxRevocationAge !== undefined) {
    if (!idFile.identity.caPublicKey) throw new ConfigError('--max-revocation-age needs the federation CA pinned (--ca-public-key, or enrol first): the list is checked against it');
    maxRevocationAgeMs = (await import('./ca.ts')).parseDuration(opts.maxRevocationAge, '--max-revocation-age');
  }
  const identity = { ...idFile.identity, ...(opts.enrolToken && !certified ? { enrolToken: opts.enrolToken } : {}), ...(maxRevocationAgeMs !== undefined ? { maxRevocationAgeMs } : {}) };
  const backend = await selectBackend({ prefer: opts.backend ?? cfg.backend, logger });
  const data = await loadDataset(dataPath, {
    labelColumn: cfg.labelColumn,
    featureShape: cfg.featureShape,
    numClasses: cfg.numClasses,
  });
  const { train, test } = cfg.testFraction > 0 ? splitTrainTest(data, cfg.testFraction, cfg.seed) : { train: data, test: data };
  logger.info({ clientId, server, data: dataPath, train: train.size, test: test.size, backend, identity: idFile.file, fingerprint: keyFingerprint(identity.key.publicKey), certified: Boolean(certified) }, 'client starting');
  const transport = new SocketIoClientTransport({ url: server, reconnect: cfg.reconnect, logger, insecure, certificateCheck });
  const engine = new ClientEngine({
    clientId,
    task: new TfjsTask({ train, test, seed: cfg.seed }),
    transport,
    logger,
    backend,
    identity,
    ...(cfg.privacyFloor ? { policy: privacyFloorPolicy(cfg.privacyFloor) } : {}),
    ...(cfg.groups ? { groups: cfg.groups } : {}),
  });
  process.once('SIGINT', () => {
    engine.stop();
    process.exit(130);
  });
  engine.on('enrolled', ({ certificate, caPublicKey }) => {
    saveCertificate(idFile.file, certificate, caPublicKey);
    logger.info({ serial: certificate.serial, jobs: certificate.jobs, notAfter: new Date(certificate.notAfter).toISOString(), ca: keyFingerprint(fromBase64Url(caPublicKey)) }, 'enrolled: certificate kept in the identity file');
  });
  const refused = new Promise<string>((resolve) => engine.once('unauthorized', (msg) => resolve(msg.message)));
  engine.start();
  // A server certificate that fails the check ends the client with its typed error (exit 2); a refused
  // identity with exit 3.
  const outcome = await Promise.race([engine.whenJobEnds(), refused, transport.whenFailed()]);
  engine.stop();
  if (outcome instanceof Error) throw outcome;
  if (typeof outcome === 'string') {
    process.stderr.write(`cohort: the coordinator refused this client (UNAUTHORIZED): ${outcome}\n`);
    return 3;
  }
  return outcome.status === 'completed' ? 0 : 1;
}
