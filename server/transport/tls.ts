/**
 * The coordinator's TLS: its certificate and key (PEM files, checked to belong together), the
 * certificate's fingerprint an operator pins on clients, and the bounds on TLS handshakes that have
 * not finished — a connection that never completes one is closed after `handshakeTimeoutMs`
 * (node:tls `handshakeTimeout`), and only so many may be pending at once, in all and per address,
 * so a flood of half-open TLS connections cannot exhaust the coordinator before Socket.IO's own caps
 * (server/transport/socketio.ts) even see them.
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { Server as TlsServer, type TLSSocket } from 'node:tls';
import { CohortError, ConfigError } from '../../shared/errors.ts';
import { silentLogger, type Logger } from '../../shared/log.ts';
import { checkListenAddress, formatFingerprint } from '../../shared/transport-security.ts';

/** What the HTTPS server is created with. */
export interface ServerTls {
  /** PEM: the server certificate first, then any intermediates. */
  cert: string;
  key: string;
  /** `sha256:<hex>` of the leaf certificate's DER. */
  fingerprint: string;
}

export interface TlsHandshakeLimits {
  /** A TCP connection whose TLS handshake has not finished by then is closed. */
  handshakeTimeoutMs: number;
  /** Connections still in their TLS handshake, in all; more are closed at once. */
  maxPending: number;
  /** Connections still in their TLS handshake from one address. */
  maxPendingPerIp: number;
}

export const DEFAULT_TLS_HANDSHAKE_LIMITS: TlsHandshakeLimits = {
  handshakeTimeoutMs: 10_000,
  maxPending: 1024,
  maxPendingPerIp: 64,
};

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

/** Counts of the handshake guard (tests, metrics). */
export interface TlsHandshakeGuard {
  readonly pending: number;
  /** Connections closed because a cap was full. */
  readonly refused: number;
  /** Connections closed because their handshake took longer than the timeout. */
  readonly timedOut: number;
}

/**
 * Caps the connections of `server` that are still in their TLS handshake (the timeout itself is the
 * server's `handshakeTimeout`, set when it is created). A connection is pending from its TCP accept
 * until its handshake completes or it closes; one over a cap is closed at once, before any TLS work.
 */
export function guardTlsHandshakes(server: TlsServer, limits: TlsHandshakeLimits, logger: Logger = silentLogger): TlsHandshakeGuard {
  const log = logger.child({ component: 'tls' });
  /** Pending connections by `address|port` (the TLS socket of a raw one has the same pair). */
  const pending = new Map<string, Socket>();
  const perIp = new Map<string, number>();
  const counts = { refused: 0, timedOut: 0 };
  const key = (s: { remoteAddress?: string; remotePort?: number }) => `${s.remoteAddress}|${s.remotePort}`;
  const settle = (k: string, raw: Socket) => {
    if (pending.get(k) !== raw) return;
    pending.delete(k);
    const ip = raw.remoteAddress ?? '';
    const n = (perIp.get(ip) ?? 1) - 1;
    if (n <= 0) perIp.delete(ip);
    else perIp.set(ip, n);
  };
  let lastWarning = 0;
  server.on('connection', (raw: Socket) => {
    const ip = raw.remoteAddress ?? '';
    const over =
      pending.size >= limits.maxPending
        ? `more than ${limits.maxPending} TLS handshakes pending`
        : (perIp.get(ip) ?? 0) >= limits.maxPendingPerIp
          ? `more than ${limits.maxPendingPerIp} TLS handshakes pending from ${ip}`
          : undefined;
    if (over !== undefined) {
      counts.refused++;
      // One line a second at most: a flood must not turn into a flood of log lines.
      if (Date.now() - lastWarning > 1000) {
        lastWarning = Date.now();
        log.warn({ ip, reason: over, refused: counts.refused }, 'connection refused');
      }
      raw.destroy();
      return;
    }
    const k = key(raw);
    pending.set(k, raw);
    perIp.set(ip, (perIp.get(ip) ?? 0) + 1);
    raw.once('close', () => settle(k, raw));
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    const k = key(socket);
    const raw = pending.get(k);
    if (raw) settle(k, raw);
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') counts.timedOut++;
    else log.debug({ code: err.code, err: err.message }, 'TLS handshake failed');
  });
  return {
    get pending() {
      return pending.size;
    },
    get refused() {
      return counts.refused;
    },
    get timedOut() {
      return counts.timedOut;
    },
  };
}

export interface ListenerSecurityOptions {
  host: string;
  tls?: ServerTls;
  limits?: Partial<TlsHandshakeLimits>;
  /** Plaintext on a non-loopback address, allowed by the operator (`--insecure`). */
  insecure?: boolean;
  logger?: Logger;
}

/** How a coordinator's HTTP server is to be secured: decided before anything is opened. */
export interface ListenerSecurity {
  /** The admin API's `https` option (server/api/app.ts); undefined for plaintext. */
  https: { cert: string; key: string; handshakeTimeout: number } | undefined;
  fingerprint: string | undefined;
  /** Attaches the pending-handshake caps to the created server (nothing without TLS). */
  guard(server: object): TlsHandshakeGuard | undefined;
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
  const tls = opts.tls;
  if (!tls) return { https: undefined, fingerprint: undefined, guard: () => undefined };
  const limits = { ...DEFAULT_TLS_HANDSHAKE_LIMITS, ...opts.limits };
  return {
    https: { cert: tls.cert, key: tls.key, handshakeTimeout: limits.handshakeTimeoutMs },
    fingerprint: tls.fingerprint,
    guard: (server) => {
      if (!(server instanceof TlsServer)) throw new CohortError('INTERNAL', 'the admin API was created without its https option');
      return guardTlsHandshakes(server, limits, log);
    },
  };
}
