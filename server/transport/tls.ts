/**
 * The coordinator's TLS and listening rules: its certificate and key (PEM files, checked to belong
 * together), the certificate's fingerprint an operator pins on clients, the refusal to serve plaintext
 * on a non-loopback address without `--insecure`, and the bounds on connections still opening (TLS
 * handshake included: server/transport/opening.ts).
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { ConfigError } from '../../shared/errors.ts';
import { silentLogger, type Logger } from '../../shared/log.ts';
import { checkListenAddress, formatFingerprint } from '../../shared/transport-security.ts';
import { DEFAULT_OPENING_LIMITS, guardOpeningConnections, type OpeningGuard, type OpeningLimits } from './opening.ts';

/** What the HTTPS server is created with. */
export interface ServerTls {
  /** PEM: the server certificate first, then any intermediates. */
  cert: string;
  key: string;
  /** `sha256:<hex>` of the leaf certificate's DER. */
  fingerprint: string;
}

/** Reads and checks `--tls-cert` and `--tls-key`: both PEM, and the key is the certificate's. */
export function loadServerTls(certFile: string, keyFile: string): ServerTls {
  const cert = readPem(certFile, '--tls-cert');
  const key = readPem(keyFile, '--tls-key');
  return serverTls(cert, key, certFile, keyFile);
}

/** Checks a certificate and key given as PEM text (the files' names only label the errors). */
export function serverTls(cert: string, key: string, certName = 'the certificate', keyName = 'the key'): ServerTls {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new ConfigError(`${certName} is not a PEM certificate: ${(err as Error).message}`);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new ConfigError(`${keyName} is not a PEM private key (encrypted keys are not supported): ${(err as Error).message}`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new ConfigError(`${keyName} is not the private key of ${certName}`);
  const validTo = Date.parse(x509.validTo);
  if (Number.isFinite(validTo) && validTo < Date.now()) throw new ConfigError(`${certName} expired on ${x509.validTo}`);
  return { cert, key, fingerprint: certificateFingerprint(x509.raw) };
}

/** `sha256:<hex>` of a DER certificate. */
export function certificateFingerprint(der: Uint8Array): string {
  return formatFingerprint(createHash('sha256').update(der).digest());
}

function readPem(file: string, flag: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!text.includes('-----BEGIN ')) throw new ConfigError(`${flag} ${file} is not a PEM file`);
  return text;
}

export interface ListenerSecurityOptions {
  host: string;
  tls?: ServerTls;
  /** Bounds on opening connections; each cap is raised to at least the matching unregistered cap. */
  opening?: Partial<OpeningLimits>;
  /** The Socket.IO caps on connections that have not said hello (server/transport/socketio.ts). */
  unregistered?: { maxUnregistered?: number; maxUnregisteredPerIp?: number };
  /** Plaintext on a non-loopback address, allowed by the operator (`--insecure`). */
  insecure?: boolean;
  logger?: Logger;
}

/** How a coordinator's HTTP server is to be secured: decided before anything is opened. */
export interface ListenerSecurity {
  /** The admin API's `https` option (server/api/app.ts); undefined for plaintext. */
  https: { cert: string; key: string; handshakeTimeout: number } | undefined;
  fingerprint: string | undefined;
  /** Attaches the opening-connection bounds to the created server. */
  guard(server: HttpServer): OpeningGuard;
}

/**
 * The listening rules of `cohort server` and `cohort serve`: TLS when a certificate is given;
 * plaintext on loopback; plaintext elsewhere only with `insecure`, and then a warning in the log. A
 * refusal is a ConfigError (exit 2) thrown before the store or any socket is opened.
 */
export function secureListener(opts: ListenerSecurityOptions): ListenerSecurity {
  const log = opts.logger ?? silentLogger;
  const mode = checkListenAddress(opts.host, opts.tls !== undefined, opts.insecure);
  if (mode === 'insecure') {
    log.warn({ host: opts.host }, 'serving plaintext HTTP and WebSocket on a non-loopback address (--insecure): models, updates and API tokens cross the network unencrypted');
  }
  // An operator who raised the hello caps (a proxy, a NAT, a load test) has raised these too: a
  // connection must open before it can say hello.
  const limits = { ...DEFAULT_OPENING_LIMITS, ...opts.opening };
  limits.maxOpening = Math.max(limits.maxOpening, opts.unregistered?.maxUnregistered ?? 0);
  limits.maxOpeningPerIp = Math.max(limits.maxOpeningPerIp, opts.unregistered?.maxUnregisteredPerIp ?? 0);
  const tls = opts.tls;
  return {
    // node:tls's own handshake deadline (default 2 min) only backs up the guard's, which covers
    // plaintext and the time after the handshake too, so it is set later than the guard's.
    https: tls ? { cert: tls.cert, key: tls.key, handshakeTimeout: Math.min(limits.timeoutMs, 10_000) + 1000 } : undefined,
    fingerprint: tls?.fingerprint,
    guard: (server) => guardOpeningConnections(server, limits, log),
  };
}
