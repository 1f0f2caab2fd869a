/**
 * The Node client's check of the coordinator's TLS certificate (`cohort client --ca-file FILE` or
 * `--server-fingerprint sha256:…`; by default Node's trust store). It is an https.Agent whose
 * connections decide, when the TLS handshake completes and before any HTTP byte is sent, whether the
 * server is the one meant:
 *   - pinned: the leaf certificate's SHA-256 must equal the pin (a self-signed certificate is fine:
 *     the pin, not a CA, vouches for it);
 *   - otherwise: the chain must verify against the CA bundle (or the default store) and the
 *     certificate must name the host in the URL.
 * A failure is recorded as a typed error (TLS_FINGERPRINT_MISMATCH, TLS_UNTRUSTED) that the transport
 * (client/transport/socketio.ts) treats as final. Every handshake's fingerprint is recorded too: the
 * transport exposes it as `serverFingerprint`.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import type { Duplex } from 'node:stream';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { CohortError, ConfigError } from '../../shared/errors.ts';
import { formatFingerprint, parseFingerprint } from '../../shared/transport-security.ts';
import type { ServerCertificateCheck } from '../transport/socketio.ts';

export interface NodeTlsOptions {
  /** A PEM CA bundle to trust instead of the default store. */
  caFile?: string;
  /** The same as PEM text. */
  ca?: string;
  /** `sha256:<hex>` of the server's certificate; only that certificate is accepted. */
  serverFingerprint?: string;
}

/** The check for socket.io-client: pass it as the transport's `certificateCheck`. */
export function nodeCertificateCheck(opts: NodeTlsOptions = {}): ServerCertificateCheck {
  if ((opts.caFile !== undefined || opts.ca !== undefined) && opts.serverFingerprint !== undefined) {
    throw new ConfigError('pass --ca-file or --server-fingerprint, not both: a pinned certificate needs no CA');
  }
  const pin = opts.serverFingerprint === undefined ? undefined : parseFingerprint(opts.serverFingerprint);
  const ca = opts.ca ?? (opts.caFile === undefined ? undefined : readCaFile(opts.caFile));
  return new VerifyingAgent(pin, ca).check;
}

function readCaFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`--ca-file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    new X509Certificate(text);
  } catch {
    throw new ConfigError(`--ca-file ${file} holds no PEM certificate`);
  }
  return text;
}

/** `sha256:<hex>` of a DER certificate. */
function fingerprintOf(der: Buffer): string {
  return formatFingerprint(createHash('sha256').update(der).digest());
}

class VerifyingAgent extends Agent {
  private observed: string | undefined;
  private failure: CohortError | undefined;
  readonly check: ServerCertificateCheck;

  constructor(
    private readonly pin: string | undefined,
    private readonly ca: string | undefined,
  ) {
    // One connection per WebSocket, never reused: every attempt makes a full handshake.
    super({ keepAlive: false, maxCachedSessions: 0 });
    const agent = this;
    this.check = {
      socketOptions: { agent: this },
      get observedFingerprint() {
        return agent.observed;
      },
      get failure() {
        return agent.failure;
      },
    };
  }

  /**
   * Called by http.Agent for each new connection; the request is written to the socket only once
   * `done` hands it over, i.e. after the certificate passed.
   */
  override createConnection(options: ConnectionOptions, done: (err: Error | null, socket?: Duplex) => void): undefined {
    this.failure = undefined;
    // rejectUnauthorized: false lets the handshake finish so that the decision below is ours: the
    // pin replaces the chain check, and a refused chain becomes a typed, final error.
    const socket = connect({ ...options, ...(this.ca === undefined ? {} : { ca: this.ca }), rejectUnauthorized: false });
    const onError = (err: Error) => done(err);
    socket.once('error', onError);
    socket.once('secureConnect', () => {
      socket.off('error', onError);
      const failure = this.verify(socket, options.host ?? '');
      if (failure) {
        this.failure = failure;
        socket.destroy();
        return done(failure);
      }
      done(null, socket);
    });
    return undefined;
  }

  private verify(socket: TLSSocket, host: string): CohortError | undefined {
    const cert = socket.getPeerCertificate();
    this.observed = cert?.raw ? fingerprintOf(cert.raw) : undefined;
    if (this.pin !== undefined) {
      if (this.observed === this.pin) return undefined;
      return new CohortError('TLS_FINGERPRINT_MISMATCH', `TLS_FINGERPRINT_MISMATCH: the server at ${host} presented a certificate with fingerprint ${this.observed ?? 'none'}, expected ${this.pin} (--server-fingerprint)`, {
        expected: this.pin,
        got: this.observed ?? null,
      });
    }
    if (socket.authorized) return undefined;
    const reason = String(socket.authorizationError);
    const trusted = this.ca === undefined ? 'the default trust store' : 'the --ca-file bundle';
    return new CohortError('TLS_UNTRUSTED', `TLS_UNTRUSTED: the server certificate at ${host} is not trusted (${reason}; checked against ${trusted})`, {
      reason,
      fingerprint: this.observed ?? null,
    });
  }
}
