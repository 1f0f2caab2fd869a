/**
 * TLS over real sockets on 127.0.0.1, with certificates made here by openssl: a federation CA, a
 * server certificate it signs for 127.0.0.1 and localhost, a self-signed server certificate and an
 * unrelated CA. A job runs to completion over HTTPS + WSS with `cohort client` processes verifying the
 * server by CA file and by pinned fingerprint; the admin API answers over HTTPS; a wrong CA or a wrong
 * pin ends the client at once with its typed error; the listening and plaintext rules refuse what
 * they must; half-open TLS connections are capped and timed out.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { io } from 'socket.io-client';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClientEngine, type ClientTask, type FitResult } from '../../client/engine/index.ts';
import { nodeCertificateCheck } from '../../client/node/tls.ts';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import { startCoordinator, type Coordinator } from '../../server/coordinator.ts';
import { parseJobConfig } from '../../server/round/config.ts';
import { startService } from '../../server/service.ts';
import { loadServerTls, secureListener, serverTls } from '../../server/transport/tls.ts';
import { CohortError, ConfigError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/log.ts';
import { seededRng } from '../../shared/random.ts';
import { checkListenAddress, checkServerUrl, isLoopbackHost, parseFingerprint } from '../../shared/transport-security.ts';
import { BIN, cohort, freePort, spawnJsonLines, startServer, type LogLine } from './helpers.ts';

const DIM = 18;

/** A client task without tfjs: a fixed small update (the in-process clients test the channel, not training). */
class FixedTask implements ClientTask {
  get numExamples() {
    return 10;
  }
  async fit(): Promise<FitResult> {
    return { delta: new Float32Array(DIM).fill(0.01), numExamples: 10, metrics: { loss: 1 } };
  }
  async evaluate() {
    return { numExamples: 1, loss: 1, accuracy: 1 };
  }
}

interface Pki {
  dir: string;
  caPem: string;
  otherCaPem: string;
  /** Signed by the CA, for IP 127.0.0.1 and DNS localhost. */
  serverCert: string;
  serverKey: string;
  /** Self-signed, for the pinned-fingerprint case. */
  selfCert: string;
  selfKey: string;
}

/** A CA, a server certificate it signs, a self-signed server certificate and an unrelated CA: openssl, EC P-256. */
function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-tls-'));
  const f = (name: string) => join(dir, name);
  const ossl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const ca = (name: string, cn: string) =>
    ossl('req', '-x509', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.pem`), '-days', '2', '-subj', `/CN=${cn}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  ca('ca', 'Cohort test CA');
  ca('other-ca', 'Unrelated test CA');
  writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
  ossl('req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost');
  ossl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('server.ext'));
  ossl('req', '-x509', ...ec, '-keyout', f('self.key'), '-out', f('self.pem'), '-days', '2', '-subj', '/CN=cohort self-signed',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost');
  const read = (name: string) => readFileSync(f(name), 'utf8');
  return { dir, caPem: f('ca.pem'), otherCaPem: f('other-ca.pem'), serverCert: read('server.pem'), serverKey: read('server.key'), selfCert: read('self.pem'), selfKey: read('self.key') };
}

/** The fingerprint as an operator computes it with openssl, in canonical form. */
function opensslFingerprint(certFile: string): string {
  const out = execFileSync('openssl', ['x509', '-in', certFile, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' });
  return parseFingerprint(out.split('=')[1]);
}

function jobConfig(id: string, rounds = 2) {
  return parseJobConfig({
    id,
    model: { zoo: 'logreg', inputShape: [8], numClasses: 2 },
    rounds,
    sampling: { mode: 'fixed', cohortSize: 2 },
    minClients: 2,
    evaluation: { every: 0 },
    timeouts: { trainMs: 20_000, retryDelayMs: 20 },
  });
}

function writeCsv(path: string, rows: number, seed: number): void {
  const rng = seededRng(seed);
  const lines = ['f0,f1,f2,f3,label'];
  for (let r = 0; r < rows; r++) {
    const y = r % 2;
    lines.push([...[0, 1, 2, 3].map((j) => ((j % 2 === y ? 1.5 : 0) + rng.next() - 0.5).toFixed(4)), y].join(','));
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}

/** GET over HTTPS trusting `ca`; resolves with the status and body. */
function httpsGet(url: string, ca: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A logger that keeps warnings, for the checks that must warn. */
function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const logger: Logger & { warnings: string[] } = {
    warnings,
    debug() {},
    info() {},
    warn: (_obj, msg) => void warnings.push(msg ?? ''),
    error() {},
    child: () => logger,
  };
  return logger;
}

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

let pki: Pki;
beforeAll(() => {
  pki = makePki();
  writeCsv(join(pki.dir, 'a.csv'), 40, 1);
  writeCsv(join(pki.dir, 'b.csv'), 40, 2);
  writeFileSync(join(pki.dir, 'job.json'), JSON.stringify({
    id: 'tls-cli',
    model: { zoo: 'logreg', inputShape: [4], numClasses: 2 },
    rounds: 2,
    sampling: { mode: 'fixed', cohortSize: 2 },
    minClients: 2,
    training: { epochs: 1, batchSize: 4, learningRate: 0.2 },
    evaluation: { every: 0 },
  }));
});

/** A coordinator for one job on 127.0.0.1 with `cert`/`key`, closed after the test. */
async function tlsCoordinator(id: string, cert: string, key: string, extra: Partial<Parameters<typeof startCoordinator>[0]> = {}): Promise<Coordinator> {
  const c = await startCoordinator({ config: jobConfig(id), dataDir: mkdtempSync(join(tmpdir(), 'cohort-tls-data-')), tls: serverTls(cert, key), ...extra });
  cleanup.push(() => c.close());
  return c;
}

function client(url: string, check: ReturnType<typeof nodeCertificateCheck>, id: string) {
  const transport = new SocketIoClientTransport({ url, certificateCheck: check, reconnect: { initialDelayMs: 1, maxDelayMs: 1 } });
  const engine = new ClientEngine({ clientId: id, task: new FixedTask(), transport });
  cleanup.push(() => engine.stop());
  return { transport, engine };
}

describe('TLS: HTTPS and WSS on one port', () => {
  it('runs a job with `cohort server --tls-cert` and `cohort client` processes verifying by --ca-file and by a pinned fingerprint; the admin API answers over HTTPS', async () => {
    const dir = pki.dir;
    const port = await freePort();
    const server = startServer(['--config', join(dir, 'job.json'), '--port', String(port), '--data-dir', join(dir, 'cli-data'),
      '--tls-cert', join(dir, 'server.pem'), '--tls-key', join(dir, 'server.key'), '--linger-ms', '0']);
    cleanup.push(() => server.child.kill('SIGKILL'));
    const listening = await server.waitFor((l) => l.msg === 'coordinator listening');
    // The start line names the fingerprint an operator pins: the one openssl computes from the file.
    expect(listening.url).toBe(`https://127.0.0.1:${port}`);
    expect(listening.tls).toBe('on');
    expect(listening.fingerprint).toBe(opensslFingerprint(join(dir, 'server.pem')));

    const health = await httpsGet(`https://127.0.0.1:${port}/healthz`, readFileSync(pki.caPem, 'utf8'));
    expect(health.status).toBe(200);
    // No plaintext on the TLS port: an http:// request is not answered with HTTP.
    const plain = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status, (err: Error) => err.message);
    expect(plain).not.toBe(200);

    const url = `https://127.0.0.1:${port}`;
    const common = ['--backend', 'wasm', '--log-level', 'warn'];
    const [a, b] = await Promise.all([
      cohort(['client', '--server', url, '--data', join(dir, 'a.csv'), '--id', 'by-ca', '--ca-file', pki.caPem, ...common]),
      cohort(['client', '--server', url, '--data', join(dir, 'b.csv'), '--id', 'by-pin', '--server-fingerprint', String(listening.fingerprint), ...common]),
    ]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(await server.exited).toBe(0);
    expect(server.lines.filter((l) => l.msg === 'round committed').map((l) => l.round)).toEqual([1, 2]);
  });

  it('runs a job in process over a self-signed certificate pinned by fingerprint; the transport exposes the fingerprint it saw', async () => {
    const c = await tlsCoordinator('tls-pin', pki.selfCert, pki.selfKey);
    expect(c.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(c.serverFingerprint).toBe(parseFingerprint(new X509Certificate(pki.selfCert).fingerprint256));
    const clients = ['p1', 'p2'].map((id) => client(c.url, nodeCertificateCheck({ serverFingerprint: c.serverFingerprint }), id));
    for (const { engine } of clients) engine.start();
    const ends = await Promise.all(clients.map(({ engine }) => engine.whenJobEnds()));
    expect(ends.map((e) => e.status)).toEqual(['completed', 'completed']);
    for (const { transport } of clients) expect(transport.serverFingerprint).toBe(c.serverFingerprint);
    expect(c.store.listRounds('tls-pin').length).toBe(2);
  });

  it('`cohort serve --tls-cert --tls-key` logs its https URL and fingerprint, and answers over HTTPS', async () => {
    const port = await freePort();
    const serve = spawnJsonLines<LogLine>([BIN, 'serve', '--port', String(port), '--data-dir', join(pki.dir, 'serve-data'),
      '--tls-cert', join(pki.dir, 'server.pem'), '--tls-key', join(pki.dir, 'server.key')]);
    cleanup.push(() => serve.child.kill('SIGKILL'));
    const listening = await serve.waitFor((l) => l.msg === 'service listening');
    expect(listening.url).toBe(`https://127.0.0.1:${port}`);
    expect(listening.fingerprint).toBe(fingerprintOfFile(join(pki.dir, 'server.pem')));
    expect((await httpsGet(`https://localhost:${port}/healthz`, readFileSync(pki.caPem, 'utf8'))).status).toBe(200);
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toBe(0);
  });

  it('serves the admin API of `cohort serve` (startService) over HTTPS with its token auth', async () => {
    const svc = await startService({ dataDir: mkdtempSync(join(tmpdir(), 'cohort-tls-svc-')), tls: serverTls(pki.serverCert, pki.serverKey) });
    cleanup.push(() => svc.close());
    expect(svc.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(svc.serverFingerprint).toBe(parseFingerprint(new X509Certificate(pki.serverCert).fingerprint256));
    const ca = readFileSync(pki.caPem, 'utf8');
    const { token } = svc.store.createToken({ name: 'tls-viewer', role: 'viewer' });
    expect((await httpsGet(`${svc.url}/api/v1/jobs`, ca)).status).toBe(401);
    const jobs = await httpsGet(`${svc.url}/api/v1/jobs`, ca, { authorization: `Bearer ${token}` });
    expect(jobs.status).toBe(200);
    expect(JSON.parse(jobs.body)).toEqual([]);
  });

  it('`cohort admin` reaches a self-signed coordinator by its pinned fingerprint (or a CA file), and refuses a wrong pin', async () => {
    const svc = await startService({ dataDir: mkdtempSync(join(tmpdir(), 'cohort-tls-admin-')), tls: serverTls(pki.selfCert, pki.selfKey) });
    cleanup.push(() => svc.close());
    const { token } = svc.store.createToken({ name: 'tls-admin', role: 'viewer' });
    const pinned = await cohort(['admin', 'jobs', 'list', '--server', svc.url, '--token', token, '--server-fingerprint', String(svc.serverFingerprint), '--json']);
    expect(pinned.code, pinned.stderr).toBe(0);
    expect(pinned.stdout).toBe(''); // no jobs: one JSON line per job
    const wrong = `sha256:${'cd'.repeat(32)}`;
    const refused = await cohort(['admin', 'jobs', 'list', '--server', svc.url, '--token', token, '--server-fingerprint', wrong]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`TLS_FINGERPRINT_MISMATCH: the server at 127.0.0.1 presented a certificate with fingerprint ${svc.serverFingerprint}, expected ${wrong}`);
    // Without a pin the system store does not know a self-signed certificate.
    const unpinned = await cohort(['admin', 'jobs', 'list', '--server', svc.url, '--token', token]);
    expect(unpinned.code).not.toBe(0);
    // The CA route, against a certificate from the test CA.
    const viaCa = await startService({ dataDir: mkdtempSync(join(tmpdir(), 'cohort-tls-admin-ca-')), tls: serverTls(pki.serverCert, pki.serverKey) });
    cleanup.push(() => viaCa.close());
    const t2 = viaCa.store.createToken({ name: 'tls-admin-2', role: 'viewer' }).token;
    const byCa = await cohort(['admin', 'audit', '--server', viaCa.url, '--token', t2, '--ca-file', pki.caPem, '--json']);
    expect(byCa.code, byCa.stderr).toBe(0);
  });
});

describe('TLS: the client refuses a server it cannot verify, for good', () => {
  it('a CA file the server certificate does not chain to: `cohort client` exits 2 with TLS_UNTRUSTED at once', async () => {
    const c = await tlsCoordinator('tls-bad-ca', pki.serverCert, pki.serverKey);
    const t0 = Date.now();
    const r = await cohort(['client', '--server', c.url, '--data', join(pki.dir, 'a.csv'), '--ca-file', pki.otherCaPem, '--backend', 'cpu', '--log-level', 'error']);
    const seconds = (Date.now() - t0) / 1000;
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/TLS_UNTRUSTED: the server certificate at 127\.0\.0\.1 is not trusted \(UNABLE_TO_VERIFY_LEAF_SIGNATURE; checked against the --ca-file bundle\)/);
    // With reconnection (500 ms doubling to 30 s, forever) a retried failure would not end at all.
    expect(seconds).toBeLessThan(30);
    expect(c.engine.connectedClients).toBe(0);
  });

  it('a wrong pinned fingerprint: `cohort client` exits 2 with TLS_FINGERPRINT_MISMATCH, expected and got', async () => {
    const c = await tlsCoordinator('tls-bad-pin', pki.selfCert, pki.selfKey);
    const wrong = `sha256:${'ab'.repeat(32)}`;
    const r = await cohort(['client', '--server', c.url, '--data', join(pki.dir, 'a.csv'), '--server-fingerprint', wrong, '--backend', 'cpu', '--log-level', 'error']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`TLS_FINGERPRINT_MISMATCH: the server at 127.0.0.1 presented a certificate with fingerprint ${c.serverFingerprint}, expected ${wrong}`);
  });

  it('in process: whenFailed() gives the typed error, nothing reaches the server, and the transport does not retry', async () => {
    const c = await tlsCoordinator('tls-fail', pki.selfCert, pki.selfKey);
    let tcpConnections = 0;
    c.transport['http']!.on('connection', () => tcpConnections++);
    // The default trust store does not know a self-signed certificate.
    const untrusted = client(c.url, nodeCertificateCheck(), 'u');
    untrusted.engine.start();
    const err = await untrusted.transport.whenFailed();
    expect(err).toBeInstanceOf(CohortError);
    expect(err.code).toBe('TLS_UNTRUSTED');
    expect(err.details).toMatchObject({ reason: 'DEPTH_ZERO_SELF_SIGNED_CERT', fingerprint: c.serverFingerprint });
    expect(untrusted.transport.serverFingerprint).toBeUndefined(); // never connected
    const wrongPin = `sha256:${'0'.repeat(64)}`;
    const pinned = client(c.url, nodeCertificateCheck({ serverFingerprint: wrongPin }), 'w');
    pinned.engine.start();
    const mismatch = await pinned.transport.whenFailed();
    expect(mismatch.code).toBe('TLS_FINGERPRINT_MISMATCH');
    expect(mismatch.details).toEqual({ expected: wrongPin, got: c.serverFingerprint });
    // Both clients retry after 1 ms if they retry at all; a good client connecting and registering
    // takes many times that. Then exactly three TCP connections were made: one each.
    const good = client(c.url, nodeCertificateCheck({ serverFingerprint: c.serverFingerprint }), 'g');
    good.engine.start();
    await new Promise<void>((resolve) => {
      const poll = () => (c.engine.connectedClients === 1 ? resolve() : setImmediate(poll));
      poll();
    });
    expect(tcpConnections).toBe(3);
  });

  it('decides before any HTTP byte is sent: a server with the wrong certificate receives no request at all', async () => {
    // A bare TLS server that records every application byte it receives after the handshake.
    let received = 0;
    const impostor = createTlsServer({ cert: pki.selfCert, key: pki.selfKey }, (socket) => {
      socket.on('data', (d: Buffer) => (received += d.length));
    });
    impostor.on('tlsClientError', () => {});
    const tcpClosed: Promise<void>[] = [];
    impostor.on('connection', (raw: Socket) => tcpClosed.push(new Promise((resolve) => raw.once('close', () => resolve()))));
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => impostor.close(resolve)));
    const url = `https://127.0.0.1:${(impostor.address() as { port: number }).port}`;
    for (const check of [nodeCertificateCheck({ serverFingerprint: `sha256:${'1'.repeat(64)}` }), nodeCertificateCheck({ caFile: pki.caPem })]) {
      const t = client(url, check, 'leak');
      t.engine.start();
      expect(['TLS_FINGERPRINT_MISMATCH', 'TLS_UNTRUSTED']).toContain((await t.transport.whenFailed()).code);
    }
    expect(tcpClosed).toHaveLength(2);
    await Promise.all(tcpClosed); // everything the clients sent has been read by now
    expect(received).toBe(0); // not even the WebSocket upgrade request
  });

  it('a hostname the certificate does not name is untrusted even when the CA is right', async () => {
    // The certificate names 127.0.0.1 and localhost; 127.0.0.2 reaches the same listener (0.0.0.0 is
    // not used: loopback only) — here the coordinator binds 127.0.0.2 itself.
    const c = await tlsCoordinator('tls-host', pki.serverCert, pki.serverKey, { host: '127.0.0.2' });
    const t = client(c.url, nodeCertificateCheck({ caFile: pki.caPem }), 'h');
    t.engine.start();
    const err = await t.transport.whenFailed();
    expect(err.code).toBe('TLS_UNTRUSTED');
    expect(err.details?.reason).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });
});

describe('plaintext and listening rules', () => {
  it('knows loopback', () => {
    for (const h of ['127.0.0.1', '127.255.0.9', 'localhost', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '10.0.0.1', '128.0.0.1', '127.0.0.256', '::', 'example.com', 'localhost.example.com', '::ffff:10.0.0.1', '']) expect(isLoopbackHost(h), h).toBe(false);
  });

  it('the server refuses a non-loopback address without TLS unless --insecure, which warns', () => {
    expect(() => checkListenAddress('0.0.0.0', false)).toThrow(ConfigError);
    expect(() => checkListenAddress('192.0.2.10', false)).toThrow(/refusing to listen on 192\.0\.2\.10 without TLS/);
    expect(checkListenAddress('0.0.0.0', true)).toBe('tls');
    expect(checkListenAddress('127.0.0.1', false)).toBe('loopback');
    expect(checkListenAddress('::1', false)).toBe('loopback');
    const logger = recordingLogger();
    expect(secureListener({ host: '0.0.0.0', insecure: true, logger }).https).toBeUndefined();
    expect(logger.warnings).toEqual([expect.stringMatching(/plaintext .*non-loopback.*--insecure/)]);
    const quiet = recordingLogger();
    secureListener({ host: '127.0.0.1', logger: quiet });
    secureListener({ host: '0.0.0.0', tls: serverTls(pki.serverCert, pki.serverKey), logger: quiet });
    expect(quiet.warnings).toEqual([]);
  });

  it('startCoordinator and startService refuse 0.0.0.0 without TLS before opening anything', async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'cohort-tls-refuse-')), 'never');
    await expect(startCoordinator({ config: jobConfig('r'), dataDir, host: '0.0.0.0' })).rejects.toThrow(ConfigError);
    await expect(startService({ dataDir, host: '0.0.0.0' })).rejects.toThrow(ConfigError);
    expect(() => readFileSync(join(dataDir, 'cohort.db'))).toThrow(/ENOENT/);
  });

  it('`cohort server --host 0.0.0.0` without TLS exits 2 and says why; `cohort serve` too', async () => {
    writeFileSync(join(pki.dir, 'refuse.json'), JSON.stringify({ id: 'refuse', model: { zoo: 'logreg', inputShape: [4], numClasses: 2 }, rounds: 1 }));
    const r = await cohort(['server', '--config', join(pki.dir, 'refuse.json'), '--host', '0.0.0.0', '--port', '0', '--data-dir', join(pki.dir, 'refuse-data')]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/refusing to listen on 0\.0\.0\.0 without TLS.*--tls-cert FILE --tls-key FILE, or --insecure/);
    const s = await cohort(['serve', '--host', '0.0.0.0', '--port', '0', '--data-dir', join(pki.dir, 'refuse-data')]);
    expect(s.code, s.stderr).toBe(2);
    expect(s.stderr).toMatch(/refusing to listen on 0\.0\.0\.0 without TLS/);
  });

  it('bad TLS flags are config errors: one of cert/key, a key of another certificate, a CA file with no certificate', async () => {
    const serverPem = join(pki.dir, 'server.pem');
    const r = await cohort(['serve', '--tls-cert', serverPem, '--port', '0', '--data-dir', join(pki.dir, 'flags-data')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--tls-cert and --tls-key go together/);
    expect(() => loadServerTls(serverPem, join(pki.dir, 'self.key'))).toThrow(/is not the private key of/);
    expect(() => loadServerTls(join(pki.dir, 'job.json'), join(pki.dir, 'server.key'))).toThrow(/is not a PEM file/);
    expect(() => nodeCertificateCheck({ caFile: join(pki.dir, 'server.key') })).toThrow(/holds no PEM certificate/);
    expect(() => nodeCertificateCheck({ serverFingerprint: 'sha256:abc' })).toThrow(/64 hex digits/);
    expect(() => nodeCertificateCheck({ caFile: pki.caPem, serverFingerprint: `sha256:${'0'.repeat(64)}` })).toThrow(/not both/);
  });

  it('the client refuses plaintext to a host that is not loopback unless --insecure (checked before any connection)', async () => {
    expect(() => checkServerUrl('http://192.0.2.1:8080')).toThrow(/refusing plaintext http:\/\/ to 192\.0\.2\.1/);
    expect(() => checkServerUrl('ws://coordinator.example')).toThrow(ConfigError);
    expect(() => checkServerUrl('ftp://127.0.0.1')).toThrow(/must be https/);
    expect(checkServerUrl('http://192.0.2.1:8080', true).tls).toBe(false);
    expect(checkServerUrl('https://192.0.2.1:8080').tls).toBe(true);
    expect(checkServerUrl('http://localhost:8080').tls).toBe(false);
    expect(checkServerUrl('http://[::1]:8080').tls).toBe(false);
    // The transport constructor checks before anything connects (start() was never called).
    expect(() => new SocketIoClientTransport({ url: 'http://192.0.2.1:8080' })).toThrow(ConfigError);
    expect(new SocketIoClientTransport({ url: 'http://192.0.2.1:8080', insecure: true }).connected).toBe(false);
    // The CLI: refused before the data is read (the data file does not exist) or a socket opened.
    const r = await cohort(['client', '--server', 'http://192.0.2.1:8080', '--data', join(pki.dir, 'no-such.csv')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/refusing plaintext http:\/\/ to 192\.0\.2\.1, which is not loopback/);
    // The admin CLI sends a bearer token: the same rule, before any request.
    const admin = await cohort(['admin', 'jobs', 'list', '--server', 'http://192.0.2.1:8080', '--token', 'cht_x']);
    expect(admin.code).toBe(2);
    expect(admin.stderr).toMatch(/refusing plaintext http:\/\/ to 192\.0\.2\.1/);
    // The same from a client config file; and its caFile is read (here: a file that does not exist).
    writeFileSync(join(pki.dir, 'plain.json'), JSON.stringify({ server: 'http://192.0.2.1:8080', data: join(pki.dir, 'no-such.csv') }));
    const fromConfig = await cohort(['client', '--config', join(pki.dir, 'plain.json')]);
    expect(fromConfig.code).toBe(2);
    expect(fromConfig.stderr).toMatch(/refusing plaintext http:\/\/ to 192\.0\.2\.1/);
    writeFileSync(join(pki.dir, 'ca.json'), JSON.stringify({ server: 'https://127.0.0.1:9', caFile: join(pki.dir, 'no-such-ca.pem'), data: join(pki.dir, 'no-such.csv') }));
    const badCa = await cohort(['client', '--config', join(pki.dir, 'ca.json')]);
    expect(badCa.code).toBe(2);
    expect(badCa.stderr).toMatch(/--ca-file .*no-such-ca\.pem: ENOENT/);
    expect(fingerprintOfFile(join(pki.dir, 'server.pem'))).toBe(opensslFingerprint(join(pki.dir, 'server.pem')));
  });
});

/** SHA-256 of the DER, computed here independently of the code under test. */
function fingerprintOfFile(file: string): string {
  return `sha256:${createHash('sha256').update(new X509Certificate(readFileSync(file)).raw).digest('hex')}`;
}

describe('connection hygiene', () => {
  /** A raw TCP connection to `port` from `localAddress` that sends nothing, and when it closed. */
  const opener = (port: number) => (localAddress: string) =>
    new Promise<{ socket: Socket; closedAt: Promise<number> }>((resolve) => {
      const socket = netConnect({ port, host: '127.0.0.1', localAddress }, () => resolve({ socket, closedAt }));
      const closedAt = new Promise<number>((done) => socket.once('close', () => done(Date.now())));
      socket.on('error', () => {});
      cleanup.push(() => socket.destroy());
    });
  const until = (probe: () => boolean) =>
    new Promise<void>((resolve) => {
      const poll = () => (probe() ? resolve() : setTimeout(poll, 5));
      poll();
    });

  it('caps connections still in their TLS handshake per address, closes them at the deadline, and another address still gets through', async () => {
    const timeoutMs = 2000;
    const c = await tlsCoordinator('tls-hygiene', pki.serverCert, pki.serverKey, { opening: { timeoutMs, maxOpening: 100, maxOpeningPerIp: 3 } });
    const open = opener(Number(new URL(c.url).port));
    const t0 = Date.now();
    const silent = await Promise.all([open('127.0.0.1'), open('127.0.0.1'), open('127.0.0.1')]);
    let silentOpen = 3;
    for (const s of silent) void s.closedAt.then(() => silentOpen--);
    await until(() => c.openingConnections.opening === 3);
    // The fourth from the same address is closed at once, while the three are still open.
    const fourth = await open('127.0.0.1');
    await fourth.closedAt;
    expect(silentOpen).toBe(3);
    expect(c.openingConnections.refused).toBe(1);
    // A TLS client from 127.0.0.2 completes its handshake.
    const raw = await open('127.0.0.2');
    const other = tlsConnect({ socket: raw.socket, ca: readFileSync(pki.caPem, 'utf8'), servername: 'localhost' });
    other.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      other.once('secureConnect', resolve);
      other.once('close', () => reject(new Error('closed before its handshake completed')));
    });
    expect(other.authorized).toBe(true);
    // The silent three are closed by the server at the deadline, not before; so is the TLS client,
    // which finished its handshake but never sent a request.
    for (const at of await Promise.all(silent.map((s) => s.closedAt))) expect(at - t0).toBeGreaterThanOrEqual(timeoutMs - 20);
    await raw.closedAt;
    await until(() => c.openingConnections.opening === 0);
    expect(c.openingConnections.timedOut).toBe(4);
    expect(c.openingConnections.refused).toBe(1);
  });

  it('on a plaintext (loopback) coordinator, a connection that sends no request is closed at the deadline; a raised hello cap raises the opening cap', async () => {
    const timeoutMs = 1000;
    const c = await startCoordinator({
      config: jobConfig('plain-hygiene'),
      dataDir: mkdtempSync(join(tmpdir(), 'cohort-tls-data-')),
      opening: { timeoutMs, maxOpeningPerIp: 2 },
      connections: { maxUnregisteredPerIp: 4 },
    });
    cleanup.push(() => c.close());
    expect(c.url).toMatch(/^http:\/\//);
    const open = opener(Number(new URL(c.url).port));
    const t0 = Date.now();
    const four = await Promise.all([1, 2, 3, 4].map(() => open('127.0.0.1')));
    let fourOpen = 4;
    for (const s of four) void s.closedAt.then(() => fourOpen--);
    await until(() => c.openingConnections.opening === 4);
    await (await open('127.0.0.1')).closedAt;
    expect(fourOpen).toBe(4);
    expect(c.openingConnections.refused).toBe(1);
    for (const at of await Promise.all(four.map((s) => s.closedAt))) expect(at - t0).toBeGreaterThanOrEqual(timeoutMs - 20);
    await until(() => c.openingConnections.opening === 0);
    expect(c.openingConnections.timedOut).toBe(4);
    // A connection that makes its request in time is not touched: the admin API answers on it.
    const health = await fetch(`${c.url}/healthz`);
    expect(health.status).toBe(200);
  });

  it('over WSS, a connection that never says hello is closed at timeouts.helloMs', async () => {
    const config = parseJobConfig({ ...jobConfig('tls-hello'), timeouts: { trainMs: 20_000, helloMs: 2000 } });
    // The opening deadline (1 s) is shorter than the hello deadline: an upgraded connection is no longer opening.
    const c = await startCoordinator({ config, dataDir: mkdtempSync(join(tmpdir(), 'cohort-tls-data-')), tls: serverTls(pki.selfCert, pki.selfKey), opening: { timeoutMs: 1000 } });
    cleanup.push(() => c.close());
    const socket = io(c.url, { transports: ['websocket'], reconnection: false, forceNew: true, ...nodeCertificateCheck({ serverFingerprint: c.serverFingerprint }).socketOptions });
    cleanup.push(() => socket.close());
    const t0 = Date.now();
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    expect(c.transport.connectionCounts.unregistered).toBe(1);
    const reason = await new Promise<string>((resolve) => socket.once('disconnect', resolve));
    expect(reason).toBe('io server disconnect');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2000 - 20);
    expect(c.transport.connectionCounts.unregistered).toBe(0);
    expect(c.openingConnections.timedOut).toBe(0);
  });
});
