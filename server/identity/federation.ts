/**
 * The federation's client identities, as the coordinator enforces them (DESIGN.md §4): the check at
 * hello, enrolment, revocation. One per process, shared by every job it runs.
 *
 * At hello a client proves it holds the private key of the public key it presents, by signing the
 * connection's challenge (shared/identity/transcript.ts). Then which key may speak for which id:
 * - `certificate` mode: only a certificate from the federation CA (or an enrolment token, exchanged for
 *   one) binds an id to a key — the mode for devices the operator does not control;
 * - `first-use` mode (loopback, the demo, simulations: zero set-up): an unknown id is bound to the first
 *   key it presents; a certificate is still honoured. Either way an id, once bound, is never re-bound
 *   to another key without an operator's action (a CA certificate, an enrolment token): a connection
 *   claiming a bound id with another key is UNAUTHORIZED and learns nothing.
 * A revoked id is refused until an operator re-admits it (a certificate issued after the revocation, or
 * a new enrolment token). Every refusal is audited, up to `maxFailuresPerMinute` per address a minute.
 * Past that the address is limited for the rest of its minute: its hellos are refused as
 * HELLO_RATE_LIMITED before any signature or certificate is checked (a flood of bad hellos costs the
 * coordinator a map lookup each, and the audit log one row saying so). That includes good hellos from
 * the same address (a device behind the same NAT as a misbehaving one waits for the window to pass: its
 * reconnect backoff retries; the refusal is not final, unlike UNAUTHORIZED). Loopback addresses are
 * never limited (a reverse proxy on this host would put every client behind one): only their audit rows
 * are capped.
 *
 * First-use bindings are written in one transaction per 100 ms, not one fsync per hello (the load bench
 * measured hello fsyncs as most of connecting); a binding lost in a crash is re-made by the same key.
 */
import { toBase64Url } from '../../shared/crypto/bytes.ts';
import { isLoopbackHost } from '../../shared/transport-security.ts';
import { CohortError } from '../../shared/errors.ts';
import { randomBytes } from '../../shared/random.ts';
import { silentLogger, type Logger } from '../../shared/log.ts';
import { boundText, type Hello } from '../../shared/protocol/index.ts';
import { verifyCertificate, verifyHello, verifyRevocationList, type Certificate, type RevocationList } from '../../shared/identity/index.ts';
import fs from 'node:fs';
import type { CohortStore, EnrolmentRow } from '../store/index.ts';
import type { CertificateAuthority } from './authority.ts';

export type ClientAuthMode = 'first-use' | 'certificate';

/** What the round engine asks of the federation at hello (server/round/registry.ts). */
export interface ClientAuthenticator {
  authenticate(hello: Hello, ctx: HelloContext): Admission;
  /** The CA-signed list of revoked certificate serials to relay to SecAgg rounds, when there is one. */
  revocationList?(): RevocationList | undefined;
}

export interface HelloContext {
  jobId: string;
  /** The connection's challenge (base64url). */
  nonce: string;
  /** The server identity the challenge announced. */
  server: string;
  address?: string;
}

/** A hello that passed: how the id was admitted, and what `welcome` carries back (a new certificate). */
export interface Admission {
  via: 'first-use' | 'known-key' | 'certificate' | 'enrolment';
  certificate?: Certificate;
  caPublicKey?: string;
}

export interface FederationOptions {
  store: CohortStore;
  mode: ClientAuthMode;
  /** Required in certificate mode; with a private key it also issues certificates at enrolment. */
  authority?: CertificateAuthority;
  now?: () => number;
  logger?: Logger;
  /** Validity of certificates issued at enrolment (default 365 days). */
  certificateTtlMs?: number;
  /** Failed hellos per address per minute (default 20); past it the address is refused until its minute ends. */
  maxFailuresPerMinute?: number;
  /**
   * With the CA key here: a revocation list relayed to SecAgg rounds is re-signed when it is older than
   * this (default 10 min), and at once after a revocation, so clients requiring a fresh list get one.
   */
  revocationListTtlMs?: number;
  /**
   * With an offline CA: a file holding the CA-signed revocation list (`cohort ca revoke`), re-read when
   * it changes. Without it, an offline-CA coordinator relays no list until one is uploaded.
   */
  revocationListFile?: string;
}

const DAY = 86_400_000;

export class Federation implements ClientAuthenticator {
  readonly mode: ClientAuthMode;
  readonly authority?: CertificateAuthority;
  private readonly store: CohortStore;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly failures = new Map<string, { windowStart: number; count: number; noted: boolean }>();
  private readonly pendingBinds = new Map<string, string>();
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly revokedListeners = new Set<(clientId: string) => void>();
  /** The revocation list relayed to SecAgg rounds: signed here, or the offline CA's (file or upload). */
  private relayed?: RevocationList;
  private relayedStale = true;
  private listFileStamp?: string;

  constructor(private readonly opts: FederationOptions) {
    this.mode = opts.mode;
    this.authority = opts.authority;
    this.store = opts.store;
    this.now = opts.now ?? Date.now;
    this.log = (opts.logger ?? silentLogger).child({ component: 'identity' });
    if (opts.mode === 'certificate' && !opts.authority) throw new CohortError('BAD_CONFIG', 'certificate mode needs the federation CA (its public key at least)');
  }

  authenticate(hello: Hello, ctx: HelloContext): Admission {
    const address = ctx.address ?? 'unknown';
    const limitedFor = this.limitedFor(address);
    if (limitedFor > 0) {
      throw new CohortError('HELLO_RATE_LIMITED', `too many failed hellos from this address; try again in ${Math.ceil(limitedFor / 1000)} s`);
    }
    try {
      return this.check(hello, ctx);
    } catch (err) {
      const reason = err instanceof CohortError ? err.message : 'internal error';
      // Failures within the per-address allowance are audited one by one; the one that exceeds it
      // writes a single row saying the address is limited (a flood cannot flood the audit log).
      if (this.noteFailure(address)) {
        this.audit('anonymous', 'client.auth.denied', hello.clientId, 'denied', { job: ctx.jobId, ip: address, code: err instanceof CohortError ? err.code : 'INTERNAL', reason: boundText(reason, 300) });
      }
      this.log.info({ client: hello.clientId, ip: address, reason }, 'hello refused');
      if (err instanceof CohortError && err.code === 'UNAUTHORIZED') throw err;
      throw new CohortError('UNAUTHORIZED', reason);
    }
  }

  private check(hello: Hello, ctx: HelloContext): Admission {
    if (hello.server !== ctx.server) throw new CohortError('UNAUTHORIZED', `the hello was signed for server ${hello.server.slice(0, 100)}, this is ${ctx.server.slice(0, 100)}`);
    const transcript = { nonce: ctx.nonce, server: ctx.server, jobId: ctx.jobId, protocolVersion: hello.protocolVersion, clientId: hello.clientId, publicKey: hello.publicKey };
    if (!verifyHello(transcript, hello.signature)) throw new CohortError('UNAUTHORIZED', 'bad hello signature (wrong key, challenge, server or job)');
    const bound = this.store.identities.identity(hello.clientId);
    if (hello.enrolToken !== undefined) return this.enrol(hello, ctx);
    if (hello.certificate !== undefined) {
      if (!this.authority) throw new CohortError('UNAUTHORIZED', 'this coordinator has no federation CA configured; it cannot check certificates');
      const revokedSerials = new Set(this.store.identities.revokedSerials());
      const cert = verifyCertificate(hello.certificate, {
        caPublicKey: this.authority.publicKey,
        now: this.now(),
        jobId: ctx.jobId,
        clientId: hello.clientId,
        publicKey: undefined,
        isRevoked: (serial) => revokedSerials.has(serial),
      });
      if (cert.publicKey !== hello.publicKey) throw new CohortError('UNAUTHORIZED', 'the certificate is for another key');
      if (bound?.revokedAt != null && cert.notBefore <= bound.revokedAt) throw new CohortError('UNAUTHORIZED', `client ${hello.clientId} was revoked; this certificate predates the revocation`);
      if (!bound || bound.publicKey !== cert.publicKey || bound.revokedAt != null) {
        // A certificate from the CA is an operator's word: it binds (or re-binds, rotating the key).
        this.store.identities.insertCertificate({ serial: cert.serial, clientId: cert.clientId, publicKey: cert.publicKey, jobs: cert.jobs, notBefore: cert.notBefore, notAfter: cert.notAfter });
        this.store.identities.bindCertified(hello.clientId, hello.publicKey);
      } else if (!this.store.identities.certificate(cert.serial)) {
        this.store.identities.insertCertificate({ serial: cert.serial, clientId: cert.clientId, publicKey: cert.publicKey, jobs: cert.jobs, notBefore: cert.notBefore, notAfter: cert.notAfter });
      }
      return { via: 'certificate' };
    }
    if (this.mode === 'certificate') throw new CohortError('UNAUTHORIZED', `client ${hello.clientId} is not enrolled: present a certificate from the federation CA or an enrolment token`);
    if (bound?.revokedAt != null) throw new CohortError('UNAUTHORIZED', `client ${hello.clientId} was revoked`);
    const key = bound?.publicKey ?? this.pendingBinds.get(hello.clientId);
    if (key === undefined) {
      this.bindLater(hello.clientId, hello.publicKey);
      return { via: 'first-use' };
    }
    if (key !== hello.publicKey) throw new CohortError('UNAUTHORIZED', `client id ${hello.clientId} is bound to another key`);
    return { via: 'known-key' };
  }

  private enrol(hello: Hello, ctx: HelloContext): Admission {
    const issue = this.authority?.issue;
    if (!issue || !this.authority) throw new CohortError('CA_UNAVAILABLE', 'this coordinator holds only the CA public key (offline CA): enrol with a certificate from `cohort ca sign`');
    const row = this.store.identities.findEnrolment(hello.enrolToken!);
    const now = this.now();
    if (!row) throw new CohortError('ENROLMENT_REFUSED', 'unknown enrolment token');
    if (row.usedAt !== null) throw new CohortError('ENROLMENT_REFUSED', `enrolment token ${row.id} was already used`);
    if (row.expiresAt <= now) throw new CohortError('ENROLMENT_REFUSED', `enrolment token ${row.id} expired at ${new Date(row.expiresAt).toISOString()}`);
    if (row.clientId !== hello.clientId) throw new CohortError('ENROLMENT_REFUSED', `enrolment token ${row.id} is for another client id`);
    if (!row.jobs.includes('*') && !row.jobs.includes(ctx.jobId)) throw new CohortError('ENROLMENT_REFUSED', `enrolment token ${row.id} is not for job ${ctx.jobId}`);
    const certificate = issue({
      clientId: row.clientId,
      publicKey: hello.publicKey,
      jobs: row.jobs,
      notBefore: now,
      notAfter: now + (this.opts.certificateTtlMs ?? 365 * DAY),
      serial: toBase64Url(randomBytes(16)),
    });
    const stored = { serial: certificate.serial, clientId: certificate.clientId, publicKey: certificate.publicKey, jobs: certificate.jobs, notBefore: certificate.notBefore, notAfter: certificate.notAfter };
    if (!this.store.identities.redeem(row.id, stored)) throw new CohortError('ENROLMENT_REFUSED', `enrolment token ${row.id} was already used`);
    this.pendingBinds.delete(hello.clientId);
    this.audit(hello.clientId, 'client.enrolled', hello.clientId, 'ok', { job: ctx.jobId, enrolment: row.id, serial: certificate.serial, ip: ctx.address ?? null });
    return { via: 'enrolment', certificate, caPublicKey: toBase64Url(this.authority.publicKey) };
  }

  /** A one-time enrolment token for `clientId` (audited as `actor`). */
  createEnrolment(input: { clientId: string; jobs: string[]; ttlMs: number; actor: string }): { token: string; row: EnrolmentRow } {
    if (!this.authority?.issue) throw new CohortError('CA_UNAVAILABLE', 'this coordinator holds only the CA public key (offline CA): sign certificates with `cohort ca sign` instead');
    const made = this.store.identities.createEnrolment({ clientId: input.clientId, jobs: input.jobs, ttlMs: input.ttlMs, createdBy: input.actor });
    this.audit(input.actor, 'client.enrol', input.clientId, 'ok', { enrolment: made.row.id, jobs: made.row.jobs, expiresAt: made.row.expiresAt });
    return made;
  }

  /** Revokes a client id and its certificates, and closes its connections (listeners); NOT_FOUND if unknown. */
  revoke(clientId: string, actor: string): void {
    this.flush();
    if (!this.store.identities.revoke(clientId, actor)) {
      this.audit(actor, 'client.revoke', clientId, 'failed', { error: 'NOT_FOUND' });
      throw new CohortError('NOT_FOUND', `no client ${clientId} is known to this coordinator`);
    }
    this.audit(actor, 'client.revoke', clientId, 'ok');
    this.relayedStale = true;
    for (const listener of this.revokedListeners) listener(clientId);
  }

  /**
   * The CA-signed revocation list SecAgg rounds relay (clients that know the CA refuse neighbours on it,
   * shared/identity/revocation.ts): with the CA key here, a list signed now of every revoked serial
   * (re-signed after each revocation and every `revocationListTtlMs`); with an offline CA, the newest
   * list from `revocationListFile` or `setRevocationList`; none in first-use mode without a CA.
   */
  revocationList(): RevocationList | undefined {
    const now = this.now();
    const sign = this.authority?.signRevocations;
    if (sign) {
      const ttl = this.opts.revocationListTtlMs ?? 10 * 60_000;
      if (this.relayedStale || !this.relayed || now - this.relayed.issuedAt >= ttl) {
        this.relayed = sign(this.store.identities.revokedSerials(), now);
        this.relayedStale = false;
      }
      return this.relayed;
    }
    if (this.opts.revocationListFile) this.readListFile();
    return this.relayed;
  }

  /**
   * An offline CA's revocation list, uploaded by an operator: it must verify against the CA key and be
   * newer than the one held (REVOCATION_LIST_REFUSED otherwise). Audited either way.
   */
  setRevocationList(input: unknown, actor: string): RevocationList {
    try {
      if (!this.authority) throw new CohortError('REVOCATION_LIST_REFUSED', 'this coordinator has no federation CA configured');
      if (this.authority.signRevocations) throw new CohortError('API_CONFLICT', 'this coordinator holds the CA key and signs its own revocation list (revoke clients instead)');
      let list: RevocationList;
      try {
        list = verifyRevocationList(input, this.authority.publicKey, this.now());
      } catch (err) {
        throw new CohortError('REVOCATION_LIST_REFUSED', err instanceof CohortError ? err.message : 'not a revocation list');
      }
      if (this.relayed && list.issuedAt <= this.relayed.issuedAt) {
        throw new CohortError('REVOCATION_LIST_REFUSED', `the list is not newer than the one held (signed ${new Date(this.relayed.issuedAt).toISOString()})`);
      }
      this.relayed = list;
      this.audit(actor, 'client.revocation-list', 'federation', 'ok', { issuedAt: list.issuedAt, serials: list.serials.length });
      return list;
    } catch (err) {
      this.audit(actor, 'client.revocation-list', 'federation', 'failed', { error: err instanceof CohortError ? err.code : 'INTERNAL', reason: boundText(err instanceof Error ? err.message : String(err), 300) });
      throw err;
    }
  }

  private readListFile(): void {
    const file = this.opts.revocationListFile!;
    let stamp: string;
    try {
      const st = fs.statSync(file);
      stamp = `${st.mtimeMs}/${st.size}`;
    } catch {
      return; // no file yet: nothing to relay, or keep the last one read
    }
    if (stamp === this.listFileStamp) return;
    this.listFileStamp = stamp;
    try {
      const text = fs.readFileSync(file, 'utf8');
      if (this.relayed && (JSON.parse(text) as { issuedAt?: unknown }).issuedAt === this.relayed.issuedAt) return;
      this.setRevocationList(JSON.parse(text), 'system');
      this.log.info({ file, issuedAt: this.relayed?.issuedAt }, 'revocation list loaded');
    } catch (err) {
      this.log.warn({ file, err: (err as Error).message }, 'revocation list file refused; keeping the previous list');
    }
  }

  /** Called with each revoked client id (the service closes its connections in every job). */
  onRevoked(listener: (clientId: string) => void): () => void {
    this.revokedListeners.add(listener);
    return () => this.revokedListeners.delete(listener);
  }

  /** Writes pending first-use bindings now (also on close). */
  flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pendingBinds.size === 0) return;
    const binds = [...this.pendingBinds];
    this.pendingBinds.clear();
    try {
      this.store.identities.bindFirstUseMany(binds);
    } catch (err) {
      this.log.error({ err, count: binds.length }, 'cannot write first-use bindings; they will be made again at the next hello');
    }
  }

  close(): void {
    this.flush();
  }

  private bindLater(clientId: string, publicKey: string): void {
    this.pendingBinds.set(clientId, publicKey);
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => this.flush(), 100);
      this.flushTimer.unref?.();
    }
  }

  /** Milliseconds the address stays limited (0: not limited). */
  private limitedFor(address: string): number {
    // Loopback is every client behind a reverse proxy on this host (and every local test client):
    // limiting it would lock all of them out, so it is only audited with the cap, never blocked.
    if (isLoopbackHost(address)) return 0;
    const f = this.failures.get(address);
    if (!f) return 0;
    const left = f.windowStart + 60_000 - this.now();
    if (left <= 0) {
      this.failures.delete(address);
      return 0;
    }
    return f.count > (this.opts.maxFailuresPerMinute ?? 20) ? left : 0;
  }

  /** Counts a failed hello; true while the address is within its allowance this minute. */
  private noteFailure(address: string): boolean {
    const now = this.now();
    const limit = this.opts.maxFailuresPerMinute ?? 20;
    let f = this.failures.get(address);
    if (!f || now - f.windowStart >= 60_000) {
      if (this.failures.size >= 10_000) this.failures.clear(); // bounded memory under a spray of addresses
      f = { windowStart: now, count: 0, noted: false };
      this.failures.set(address, f);
    }
    f.count++;
    if (f.count <= limit) return true;
    if (!f.noted) {
      f.noted = true;
      this.audit('anonymous', 'client.auth.rate_limited', address, 'denied', { ip: address, failures: f.count, note: `more than ${limit} failed hellos this minute: every hello from this address is refused (HELLO_RATE_LIMITED, not audited one by one) until the minute ends` });
    }
    return false;
  }

  private audit(actor: string, action: string, target: string, outcome: 'ok' | 'denied' | 'failed', details?: Record<string, unknown>): void {
    try {
      this.store.appendAudit({ actor, action, target: target.slice(0, 200), outcome, ...(details ? { details } : {}) });
    } catch (err) {
      this.log.error({ err, action }, 'cannot append to the audit log');
    }
  }
}
