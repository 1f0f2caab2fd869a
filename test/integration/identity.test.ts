/**
 * Client identity over real Socket.IO on 127.0.0.1 (issue 15): signed hellos against a per-connection
 * challenge, ids bound to keys, certificates from the federation CA, one-time enrolment tokens,
 * revocation mid-round, the offline CA. Hostile connections are raw socket.io clients speaking the real
 * framing; honest ones are the real client engine.
 */
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientEngine, type ClientTask } from '../../client/engine/index.ts';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import { startCoordinator, type Coordinator } from '../../server/coordinator.ts';
import { caKeyText, writePrivateFile } from '../../server/identity/authority.ts';
import { parseJobConfig, type JobConfigInput } from '../../server/round/config.ts';
import { toBase64Url } from '../../shared/crypto/bytes.ts';
import { ed25519KeyPair, type Ed25519KeyPair } from '../../shared/crypto/ed25519.ts';
import { signCertificate, signedHello, type Certificate } from '../../shared/identity/index.ts';
import { emitFrames, type Challenge, type ServerMessage } from '../../shared/protocol/index.ts';
import { randomBytes } from '../../shared/random.ts';
import { cohort, TEST_HOME } from './helpers.ts';

const DIM = 18; // logreg 8 → 2

class QuickTask implements ClientTask {
  readonly numExamples = 10;
  constructor(private readonly ms = 0) {}
  async fit() {
    if (this.ms) await new Promise((r) => setTimeout(r, this.ms));
    return { delta: new Float32Array(DIM).fill(0.01), numExamples: 10, metrics: { loss: 1 } };
  }
  async evaluate() {
    return { numExamples: 1, loss: 1, accuracy: 1 };
  }
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function job(id: string, over: Partial<JobConfigInput> = {}) {
  return parseJobConfig({
    id,
    model: { zoo: 'logreg', inputShape: [8], numClasses: 2 },
    rounds: 3,
    sampling: { mode: 'fixed', cohortSize: 2 },
    minClients: 2,
    evaluation: { every: 0 },
    timeouts: { trainMs: 20_000, retryDelayMs: 20 },
    ...over,
  });
}

async function coordinator(config: ReturnType<typeof job>, opts: Partial<Parameters<typeof startCoordinator>[0]> = {}): Promise<Coordinator> {
  const c = await startCoordinator({ config, dataDir: mkdtempSync(join(tmpdir(), 'cohort-identity-')), ...opts });
  cleanup.push(() => c.close());
  return c;
}

function honest(url: string, clientId: string, identity?: ConstructorParameters<typeof ClientEngine>[0]['identity'], ms = 0): ClientEngine {
  const engine = new ClientEngine({ clientId, task: new QuickTask(ms), transport: new SocketIoClientTransport({ url, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } }), ...(identity ? { identity } : {}) });
  engine.start();
  cleanup.push(() => engine.stop());
  return engine;
}

/** A raw socket.io connection speaking the real framing: what a hostile device can do. */
interface Raw {
  socket: Socket;
  inbox: ServerMessage[];
  challenge: Promise<Challenge>;
  next(type: ServerMessage['type']): Promise<ServerMessage>;
  closed: Promise<string>;
}

function raw(url: string): Raw {
  const socket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true });
  cleanup.push(() => void socket.close());
  const inbox: ServerMessage[] = [];
  const waiters: { type: string; resolve: (m: ServerMessage) => void }[] = [];
  socket.on('head', (h: { msg: ServerMessage }) => {
    inbox.push(h.msg);
    for (const w of waiters.filter((w) => w.type === h.msg.type)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(h.msg);
    }
  });
  const next = (type: ServerMessage['type']) =>
    new Promise<ServerMessage>((resolve) => {
      const seen = inbox.find((m) => m.type === type);
      if (seen) resolve(seen);
      else waiters.push({ type, resolve });
    });
  return { socket, inbox, next, challenge: next('challenge') as Promise<Challenge>, closed: new Promise((r) => socket.once('disconnect', (reason) => r(reason))) };
}

const send = (r: Raw, msg: object) => emitFrames(r.socket, msg as never, 0, 256 * 1024);

describe('client identity (first use, loopback)', () => {
  it('refuses an impostor with a connected client’s id; the real client keeps its connection and finishes the job', async () => {
    const c = await coordinator(job('impostor', { rounds: 4, timeouts: { trainMs: 20_000, retryDelayMs: 20 } }));
    const victim = honest(c.url, 'victim', undefined, 150);
    honest(c.url, 'other', undefined, 150);
    await new Promise<void>((resolve) => c.engine.once('round', () => resolve()));
    let victimDisconnects = 0;
    victim.on('disconnected', () => victimDisconnects++);

    const impostor = raw(c.url);
    send(impostor, signedHello(ed25519KeyPair(), await impostor.challenge, 'victim', { numExamples: 10 }));
    const refusal = (await impostor.next('error')) as ServerMessage & { code: string; message: string };
    expect(refusal.code).toBe('UNAUTHORIZED');
    expect(refusal.message).toMatch(/bound to another key/);
    await impostor.closed; // the server closes it
    // It learned nothing: no welcome, no model.
    expect(impostor.inbox.map((m) => m.type)).toEqual(['challenge', 'error']);

    const end = await victim.whenJobEnds();
    expect(end.status).toBe('completed');
    expect(victimDisconnects).toBe(0);
    expect(c.store.listRounds('impostor')).toHaveLength(4);
    const denied = c.store.listAudit({ action: 'client.auth.denied' });
    expect(denied.map((r) => r.target)).toEqual(['victim']);
    expect(denied[0].details).toMatchObject({ job: 'impostor', ip: expect.stringMatching(/127\.0\.0\.1/) });
  }, 60_000);

  it('refuses a replayed hello (the challenge is per connection) and a hello signed for another server or job', async () => {
    const c = await coordinator(job('replay', { rounds: 1000 }));
    const key = ed25519KeyPair();
    const first = raw(c.url);
    const hello = signedHello(key, await first.challenge, 'dev', { numExamples: 10 });
    send(first, hello);
    expect((await first.next('welcome')).type).toBe('welcome');

    // The same bytes on a new connection (a recorded hello): refused.
    const replay = raw(c.url);
    await replay.challenge;
    send(replay, hello);
    expect(await replay.next('error')).toMatchObject({ code: 'UNAUTHORIZED', message: expect.stringMatching(/bad hello signature/) });
    // Signed for another server identity, or another job: refused.
    const wrongServer = raw(c.url);
    const ch = await wrongServer.challenge;
    send(wrongServer, signedHello(key, { ...ch, server: 'sha256:' + '0'.repeat(64) }, 'dev'));
    expect(await wrongServer.next('error')).toMatchObject({ code: 'UNAUTHORIZED', message: expect.stringMatching(/signed for server/) });
    const wrongJob = raw(c.url);
    const ch2 = await wrongJob.challenge;
    send(wrongJob, { ...signedHello(key, { ...ch2, jobId: 'other-job' }, 'dev'), server: ch2.server });
    expect(await wrongJob.next('error')).toMatchObject({ code: 'UNAUTHORIZED' });
    // The genuine connection was never displaced.
    expect(c.engine.connectedClients).toBe(1);
    expect(first.socket.connected).toBe(true);
  }, 60_000);

  it('keeps a client id bound across a coordinator restart: the same key rejoins, another is refused', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cohort-identity-restart-'));
    const key = ed25519KeyPair();
    const one = await startCoordinator({ config: job('bound', { rounds: 1000 }), dataDir });
    const a = raw(one.url);
    send(a, signedHello(key, await a.challenge, 'dev'));
    await a.next('welcome');
    a.socket.close();
    await one.close();
    const two = await coordinator(job('bound', { rounds: 1000 }), { dataDir });
    const same = raw(two.url);
    send(same, signedHello(key, await same.challenge, 'dev'));
    expect((await same.next('welcome')).type).toBe('welcome');
    const other = raw(two.url);
    send(other, signedHello(ed25519KeyPair(), await other.challenge, 'dev'));
    expect(await other.next('error')).toMatchObject({ code: 'UNAUTHORIZED' });
    expect(two.store.identities.identity('dev')).toMatchObject({ publicKey: toBase64Url(key.publicKey), boundBy: 'first-use' });
  }, 60_000);
});

describe('client identity (certificates)', () => {
  const certificate = (ca: Ed25519KeyPair, key: Ed25519KeyPair, clientId: string, over: Partial<Certificate> = {}): Certificate => {
    const now = Date.now();
    return signCertificate(ca, { clientId, publicKey: toBase64Url(key.publicKey), jobs: ['*'], notBefore: now - 1000, notAfter: now + 3_600_000, serial: toBase64Url(randomBytes(16)), ...over });
  };

  it('admits only certified devices: unenrolled, expired, wrong-job, foreign-CA and not-yet-valid certificates are refused and audited', async () => {
    // The data-dir CA, with a key the test holds (put where the coordinator keeps it).
    const caKey = ed25519KeyPair();
    const dataDir = mkdtempSync(join(tmpdir(), 'cohort-identity-ca-'));
    writePrivateFile(join(dataDir, 'ca', 'ca.key'), caKeyText(caKey));
    const c = await coordinator(job('certs', { rounds: 1000 }), { clientAuth: 'certificate', dataDir });
    expect(c.federation.authority!.publicKey).toEqual(caKey.publicKey);
    const tryHello = async (clientId: string, key: Ed25519KeyPair, cert?: Certificate) => {
      const r = raw(c.url);
      send(r, { ...signedHello(key, await r.challenge, clientId), ...(cert ? { certificate: cert } : {}) });
      return Promise.race([r.next('welcome'), r.next('error')]);
    };
    const key = ed25519KeyPair();
    expect(await tryHello('d1', key)).toMatchObject({ code: 'UNAUTHORIZED', message: expect.stringMatching(/not enrolled/) });
    expect(await tryHello('d1', key, certificate(caKey, key, 'd1', { notBefore: Date.now() - 7_200_000, notAfter: Date.now() - 3_600_000 }))).toMatchObject({ code: 'UNAUTHORIZED', message: expect.stringMatching(/expired/) });
    expect(await tryHello('d1', key, certificate(caKey, key, 'd1', { jobs: ['elsewhere'] }))).toMatchObject({ message: expect.stringMatching(/not valid for job certs/) });
    expect(await tryHello('d1', key, certificate(ed25519KeyPair(), key, 'd1'))).toMatchObject({ message: expect.stringMatching(/another CA/) });
    expect(await tryHello('d1', key, certificate(caKey, key, 'd1', { notBefore: Date.now() + 3_600_000, notAfter: Date.now() + 7_200_000 }))).toMatchObject({ message: expect.stringMatching(/clock skew/) });
    expect(await tryHello('d1', key, certificate(caKey, ed25519KeyPair(), 'd1'))).toMatchObject({ message: expect.stringMatching(/another key/) });
    expect(await tryHello('d1', key, certificate(caKey, key, 'd2'))).toMatchObject({ message: expect.stringMatching(/issued to d2/) });
    const forged = { ...certificate(caKey, key, 'd1'), jobs: ['*', 'extra'] };
    expect(await tryHello('d1', key, forged)).toMatchObject({ message: expect.stringMatching(/bad CA signature/) });
    expect(c.store.listAudit({ action: 'client.auth.denied' })).toHaveLength(8);
    // A good one is welcomed, and binds the id to the key.
    expect(await tryHello('d1', key, certificate(caKey, key, 'd1'))).toMatchObject({ type: 'welcome' });
    expect(c.store.identities.identity('d1')).toMatchObject({ boundBy: 'certificate', publicKey: toBase64Url(key.publicKey) });
  }, 60_000);

  it('enrols a device with a one-time token over the API; the token cannot be used twice; the certificate rejoins', async () => {
    const c = await coordinator(job('enrol', { rounds: 3 }), { clientAuth: 'certificate' });
    const op = c.store.createToken({ name: 'op', role: 'operator' }).token;
    const enrol = async (clientId: string) => {
      const res = await fetch(`${c.url}/api/v1/clients/enrolments`, { method: 'POST', headers: { authorization: `Bearer ${op}`, 'content-type': 'application/json' }, body: JSON.stringify({ clientId, jobs: ['enrol'], expiresInSeconds: 600 }) });
      expect(res.status).toBe(200);
      return ((await res.json()) as { token: string }).token;
    };
    const t1 = await enrol('phone-1');
    const key = ed25519KeyPair();
    const device = honest(c.url, 'phone-1', { key, enrolToken: t1 });
    const enrolled = await new Promise<{ certificate: Certificate; caPublicKey: string }>((resolve) => device.once('enrolled', resolve));
    expect(enrolled.certificate).toMatchObject({ clientId: 'phone-1', publicKey: toBase64Url(key.publicKey), jobs: ['enrol'] });
    expect(enrolled.caPublicKey).toBe(toBase64Url(c.federation.authority!.publicKey));

    // The same token again, by anyone: refused.
    const thief = raw(c.url);
    send(thief, { ...signedHello(ed25519KeyPair(), await thief.challenge, 'phone-1'), enrolToken: t1 });
    expect(await thief.next('error')).toMatchObject({ code: 'UNAUTHORIZED', message: expect.stringMatching(/already used/) });
    // A token for another id, and an unknown token: refused.
    const t2 = await enrol('phone-2');
    const wrongId = raw(c.url);
    send(wrongId, { ...signedHello(ed25519KeyPair(), await wrongId.challenge, 'phone-3'), enrolToken: t2 });
    expect(await wrongId.next('error')).toMatchObject({ message: expect.stringMatching(/another client id/) });
    honest(c.url, 'phone-2', { key: ed25519KeyPair(), enrolToken: t2 });
    expect((await device.whenJobEnds()).status).toBe('completed');
    const actions = c.store.listAudit({ limit: 1000 }).map((r) => `${r.actor}:${r.action}:${r.outcome}`);
    expect(actions).toEqual(expect.arrayContaining(['op:client.enrol:ok', 'phone-1:client.enrolled:ok', 'anonymous:client.auth.denied:denied']));
    // Nothing in the store holds the token text.
    expect(JSON.stringify(c.store.identities.listEnrolments())).not.toContain(t1.slice(4));
  }, 60_000);

  it('runs a SecAgg round among enrolled devices: each signs its round keys with its certified key, checks its neighbours’ certificates, and requires a fresh CA-signed revocation list', async () => {
    const c = await coordinator(
      job('sa-certs', {
        rounds: 2,
        sampling: { mode: 'fixed', cohortSize: 4 },
        minClients: 4,
        minSurvivors: 3,
        dp: { mode: 'distributed', noiseMultiplier: 0.8, clipNorm: 1 },
        secagg: { enabled: true, bits: 20, phaseTimeoutMs: 10_000 },
      }),
      { clientAuth: 'certificate' },
    );
    const devices = [0, 1, 2, 3].map((i) => {
      const { token } = c.federation.createEnrolment({ clientId: `sa-${i}`, jobs: ['sa-certs'], ttlMs: 600_000, actor: 'test' });
      // Each device requires the CA's revocation list, signed within the last minute, in every round.
      return honest(c.url, `sa-${i}`, { key: ed25519KeyPair(), enrolToken: token, maxRevocationAgeMs: 60_000 });
    });
    const enrolled = await Promise.all(devices.map((d) => new Promise<{ certificate: Certificate; caPublicKey: string }>((resolve) => d.once('enrolled', resolve))));
    expect(new Set(enrolled.map((e) => e.caPublicKey))).toEqual(new Set([toBase64Url(c.federation.authority!.publicKey)]));
    const aborted: string[] = [];
    c.engine.on('aborted', (a: { reason: string }) => aborted.push(a.reason));
    expect((await devices[0].whenJobEnds()).status).toBe('completed');
    expect(aborted).toEqual([]);
    expect(c.store.listRounds('sa-certs').map((r) => r.survivors)).toEqual([4, 4]);
    // The list the rounds relayed: signed by the data-dir CA, shown over the API.
    const viewer = c.store.createToken({ name: 'v', role: 'viewer' }).token;
    const shown = (await (await fetch(`${c.url}/api/v1/clients/revocation-list`, { headers: { authorization: `Bearer ${viewer}` } })).json()) as { revocationList: { issuer: string; serials: string[] } };
    expect(shown.revocationList.issuer).toBe(c.federation.authority!.fingerprint);
    expect(shown.revocationList.serials).toEqual([]);
    // A revocation re-signs the list at once, with the revoked device's certificate on it.
    c.federation.revoke('sa-3', 'test');
    expect(c.federation.revocationList()!.serials).toEqual([enrolled[3].certificate.serial]);
  }, 90_000);

  it('revokes a client mid-round: its connection closes within 1 s, the round completes without it, and it cannot rejoin', async () => {
    const c = await coordinator(job('revoke', { rounds: 1000, sampling: { mode: 'fixed', cohortSize: 3 }, minClients: 3, minSurvivors: 2, timeouts: { trainMs: 20_000, retryDelayMs: 20 } }));
    const op = c.store.createToken({ name: 'op', role: 'operator' }).token;
    const slowKey = ed25519KeyPair();
    const slow = honest(c.url, 'slow', { key: slowKey }, 1500); // still training when revoked
    honest(c.url, 'b');
    honest(c.url, 'c');
    // Revoke while `slow` is training in a round (every round samples all three).
    await expect.poll(() => slow.status, { timeout: 20_000, interval: 10 }).toBe('training');
    const inFlight = c.engine.lastCommittedRound + 1;
    const started = performance.now();
    const gone = new Promise<number>((resolve) => slow.once('disconnected', () => resolve(performance.now() - started)));
    const res = await fetch(`${c.url}/api/v1/clients/slow/revoke`, { method: 'POST', headers: { authorization: `Bearer ${op}`, 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(200);
    expect(await gone).toBeLessThan(1000);
    // The device coming back with its key is refused: revoked.
    const back = honest(c.url, 'slow', { key: slowKey });
    expect(await new Promise<string>((resolve) => back.once('unauthorized', (m) => resolve(m.message)))).toMatch(/revoked/);
    // The round in flight completes without it: a dropout.
    await expect.poll(() => c.engine.lastCommittedRound, { timeout: 20_000 }).toBeGreaterThanOrEqual(inFlight);
    expect(c.store.listRounds('revoke').find((r) => r.round === inFlight)).toMatchObject({ cohortSize: 3, survivors: 2, dropouts: 1 });
    // The next rounds commit without it.
    // Later rounds (a fourth device joins) never sample it: it cannot connect.
    honest(c.url, 'd');
    await expect.poll(() => c.engine.lastCommittedRound, { timeout: 20_000 }).toBeGreaterThanOrEqual(inFlight + 2);
    const rows = c.store.listRounds('revoke').filter((r) => r.round > inFlight);
    expect(rows.every((r) => r.cohortSize === 3 && r.survivors === 3)).toBe(true);
    expect(c.engine.connectedClients).toBe(3);
    expect(c.store.listAudit({ action: 'client.revoke' })).toMatchObject([{ actor: 'op', target: 'slow', outcome: 'ok' }]);
    const clients = (await (await fetch(`${c.url}/api/v1/clients`, { headers: { authorization: `Bearer ${op}` } })).json()) as Array<{ id: string; identity: { status: string } | null }>;
    expect(clients.find((x) => x.id === 'slow')?.identity?.status).toBe('revoked');
  }, 60_000);
});

describe('a hostile coordinator (offline CA) cannot add a client of its own making to a SecAgg round', () => {
  it('admits an uncertified Sybil and samples it with three certified devices: every honest device detects it and aborts the round', async () => {
    // The federation's CA is offline: the devices hold certificates from it and have its key pinned.
    const ca = ed25519KeyPair();
    const dir = mkdtempSync(join(tmpdir(), 'cohort-hostile-ca-'));
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'ca.pub'), `${toBase64Url(ca.publicKey)}\n`);
    // The hostile part: this coordinator admits any unknown id on first use next to the CA's
    // certificates, so a client it runs itself (no certificate) joins and is sampled.
    const c = await coordinator(
      job('hostile', {
        rounds: 1,
        sampling: { mode: 'fixed', cohortSize: 4 },
        minClients: 4,
        minSurvivors: 3,
        dp: { mode: 'distributed', noiseMultiplier: 0.8, clipNorm: 1 },
        secagg: { enabled: true, bits: 20, phaseTimeoutMs: 10_000 },
        timeouts: { trainMs: 20_000, retryDelayMs: 20 },
      }),
      { clientAuth: 'first-use', caPublicKeyFile: join(dir, 'ca.pub') },
    );
    const now = Date.now();
    const devices = [0, 1, 2].map((i) => {
      const key = ed25519KeyPair();
      const certificate = signCertificate(ca, { clientId: `dev-${i}`, publicKey: toBase64Url(key.publicKey), jobs: ['hostile'], notBefore: now - 1000, notAfter: now + 3_600_000, serial: toBase64Url(randomBytes(16)) });
      return honest(c.url, `dev-${i}`, { key, certificate, caPublicKey: toBase64Url(ca.publicKey) });
    });
    const detected = devices.map((d) => new Promise<{ round: number; code: string; message: string }>((resolve) => d.once('secaggAborted', resolve)));
    honest(c.url, 'sybil', { key: ed25519KeyPair() });
    const seen = await Promise.all(detected);
    for (const d of seen) {
      expect(d.code).toBe('SECAGG_UNKNOWN_IDENTITY');
      expect(d.message).toMatch(/sybil: no certificate from the federation CA/);
    }
    // Nothing was released: the round cannot complete without the honest devices.
    expect(c.store.listRounds('hostile')).toEqual([]);
  }, 90_000);
});

describe('client identity from the command line', () => {
  it('enrols a real `cohort client` process with a token from `cohort admin clients enroll`; the identity file is private and keeps the certificate', async () => {
    const c = await coordinator(job('cli-enrol', { rounds: 2, sampling: { mode: 'fixed', cohortSize: 1 }, minClients: 1 }), { clientAuth: 'certificate' });
    const op = c.store.createToken({ name: 'op', role: 'operator' }).token;
    const made = await cohort(['admin', 'clients', 'enroll', 'laptop', '--jobs', 'cli-enrol', '--expires', '1h', '--server', c.url, '--token', op, '--json']);
    expect(made.code, made.stderr).toBe(0);
    const token = (JSON.parse(made.stdout) as { token: string }).token;
    const identityFile = join(mkdtempSync(join(TEST_HOME, 'dev-')), 'id.json');
    const data = join(mkdtempSync(join(tmpdir(), 'cohort-data-')), 'local.csv');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(data, ['f0,f1,f2,f3,f4,f5,f6,f7,label', ...Array.from({ length: 20 }, (_, i) => `${Array.from({ length: 8 }, (_, j) => ((i * 7 + j) % 5) / 5).join(',')},${i % 2}`)].join('\n'));
    const run = await cohort(['client', '--server', c.url, '--id', 'laptop', '--data', data, '--identity', identityFile, '--enrol-token', token, '--log-level', 'warn']);
    expect(run.code, run.stderr).toBe(0);
    expect(statSync(identityFile).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(readFileSync(identityFile, 'utf8')) as { certificate: Certificate; caPublicKey: string };
    expect(stored.certificate).toMatchObject({ clientId: 'laptop', jobs: ['cli-enrol'] });
    expect(stored.caPublicKey).toBe(toBase64Url(c.federation.authority!.publicKey));
    const shown = await cohort(['client', 'identity', '--identity', identityFile, '--json']);
    expect(JSON.parse(shown.stdout)).toMatchObject({ publicKey: stored.certificate.publicKey, certificate: { clientId: 'laptop' } });

    // The spent token does not admit another process; an unenrolled one is told why and exits 3.
    const again = await cohort(['client', '--server', c.url, '--id', 'laptop', '--data', data, '--identity', join(TEST_HOME, 'other-laptop.json'), '--enrol-token', token, '--log-level', 'warn']);
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/UNAUTHORIZED.*(already used|finished)/s);
  }, 90_000);

  it('accepts certificates of an offline CA (cohort ca init / sign, serve --ca-public-key) and cannot mint any itself', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cohort-offline-ca-'));
    const init = await cohort(['ca', 'init', '--out', dir, '--json']);
    expect(init.code, init.stderr).toBe(0);
    expect(statSync(join(dir, 'ca.key')).mode & 0o777).toBe(0o600);
    const crl = join(dir, 'revoked.json');
    const c = await coordinator(job('offline', { rounds: 2, sampling: { mode: 'fixed', cohortSize: 1 }, minClients: 1 }), { clientAuth: 'certificate', caPublicKeyFile: join(dir, 'ca.pub'), revocationListFile: crl });
    const op = c.store.createToken({ name: 'op', role: 'operator' }).token;
    const res = await fetch(`${c.url}/api/v1/clients/enrolments`, { method: 'POST', headers: { authorization: `Bearer ${op}`, 'content-type': 'application/json' }, body: JSON.stringify({ clientId: 'x' }) });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('CA_UNAVAILABLE');

    const identityFile = join(TEST_HOME, 'mdm-device.json');
    const shown = JSON.parse((await cohort(['client', 'identity', '--identity', identityFile, '--json'])).stdout) as { publicKey: string };
    const certFile = join(dir, 'device.cert.json');
    const signed = await cohort(['ca', 'sign', '--ca-key', join(dir, 'ca.key'), '--id', 'mdm-device', '--public-key', shown.publicKey, '--jobs', 'offline', '--expires', '30d', '--out', certFile]);
    expect(signed.code, signed.stderr).toBe(0);
    const data = join(dir, 'local.csv');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(data, ['a,b,c,d,e,f,g,h,label', ...Array.from({ length: 10 }, (_, i) => `${Array.from({ length: 8 }, (_, j) => (i + j) % 3).join(',')},${i % 2}`)].join('\n'));
    const run = await cohort(['client', '--server', c.url, '--data', data, '--identity', identityFile, '--certificate', certFile, '--log-level', 'warn']);
    expect(run.code, run.stderr).toBe(0);
    expect(c.store.identities.identity('mdm-device')).toMatchObject({ boundBy: 'certificate', publicKey: shown.publicKey });

    // Revoking it offline: `cohort ca revoke` writes the CA-signed list the coordinator relays.
    expect(c.federation.revocationList()).toBeUndefined();
    const serial = (JSON.parse(readFileSync(certFile, 'utf8')) as Certificate).serial;
    const revoked = await cohort(['ca', 'revoke', '--ca-key', join(dir, 'ca.key'), '--serial', serial, '--list', crl]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(c.federation.revocationList()?.serials).toEqual([serial]);
    // A list that is not newer is refused over the API (admin only), and so is a tampered one; both audited.
    const admin = c.store.createToken({ name: 'root', role: 'admin' }).token;
    const upload = (body: unknown) => fetch(`${c.url}/api/v1/clients/revocation-list`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const current = JSON.parse(readFileSync(crl, 'utf8')) as { serials: string[] };
    const stale = await upload(current);
    expect(stale.status).toBe(400);
    expect(((await stale.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'REVOCATION_LIST_REFUSED', message: expect.stringMatching(/not newer/) });
    const forged = await upload({ ...current, serials: [], issuedAt: Date.now() + 1000 });
    expect(forged.status).toBe(400);
    expect(((await forged.json()) as { error: { message: string } }).error.message).toMatch(/bad CA signature/);
    expect(c.federation.revocationList()?.serials).toEqual([serial]);
    expect(c.store.listAudit({ action: 'client.revocation-list' }).map((r) => `${r.actor}:${r.outcome}`)).toEqual(expect.arrayContaining(['system:ok', 'root:failed']));
  }, 90_000);

  it('refuses an identity file that group or others can read', async () => {
    const file = join(TEST_HOME, 'shared-perms.json');
    expect((await cohort(['client', 'identity', '--identity', file])).code).toBe(0);
    const { chmodSync } = await import('node:fs');
    chmodSync(file, 0o640);
    const refused = await cohort(['client', 'identity', '--identity', file]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/readable by group or others.*chmod 600/s);
  }, 30_000);
});
