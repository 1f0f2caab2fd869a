/**
 * `npm run bench -- auth [--clients 1000] [--generators 2] [--per-address 250] [--verifications 2000]`
 *
 * What signed hellos cost (issue 15). Two parts, JSON lines:
 * 1. `--clients` raw protocol clients (bench/load.generator.ts: socket.io-client and the real framing,
 *    each with its own Ed25519 key, answering its connection's challenge) connect at once to one
 *    coordinator on 127.0.0.1 (first-use mode: every hello is verified and binds a new id): hello→welcome
 *    and socket-open→welcome latency p50/p99, and the coordinator's CPU per connection (process CPU over
 *    the connect phase ÷ clients; Socket.IO's handshake included).
 * 2. The authentication alone, in this process: µs per hello check (Federation.authenticate, first-use
 *    and known-key, node:crypto Ed25519), per certificate check (verifyCertificate), and one Ed25519
 *    verification with node:crypto next to tweetnacl (the portable path) — why the server uses node:crypto.
 * Medians over the machine's noise; results also in bench/results/auth.json.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startCoordinator } from '../server/coordinator.ts';
import { Federation } from '../server/identity/federation.ts';
import { parseJobConfig } from '../server/round/config.ts';
import { CohortStore } from '../server/store/index.ts';
import { toBase64Url } from '../shared/crypto/bytes.ts';
import { ed25519KeyPair, ed25519Node, ed25519Portable, ed25519Sign } from '../shared/crypto/ed25519.ts';
import { signCertificate, signedHello, verifyCertificate } from '../shared/identity/index.ts';
import { PROTOCOL_VERSION, type Hello } from '../shared/protocol/index.ts';
import { randomBytes } from '../shared/random.ts';
import { flagReaders } from './args.ts';
import { forkGenerator } from './load.fleet.ts';
import type { GeneratorStats, LoadGeneratorCommand } from './load.generator.ts';
import { quantile } from './load.stats.ts';

const RESULTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results', 'auth.json');

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      clients: { type: 'string', default: '1000' },
      generators: { type: 'string', default: '2' },
      'per-address': { type: 'string', default: '250' },
      verifications: { type: 'string', default: '2000' },
      json: { type: 'boolean', default: true },
    },
  });
  const { int } = flagReaders('auth');
  const clients = int(values.clients!, 'clients');
  const nGenerators = int(values.generators!, 'generators');
  const perAddress = int(values['per-address']!, 'per-address');
  const verifications = int(values.verifications!, 'verifications');
  const lines: Record<string, unknown>[] = [];
  const emit = (line: Record<string, unknown>) => {
    lines.push(line);
    process.stdout.write(`${JSON.stringify(line)}\n`);
  };
  const round3 = (x: number) => Math.round(x * 1000) / 1000;

  // ---- 1. a thousand hellos at once over real sockets ----
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cohort-bench-auth-'));
  const coordinator = await startCoordinator({
    // No round ever starts (minClients above the fleet): the bench measures joining only.
    config: parseJobConfig({ id: 'auth', model: { zoo: 'logreg', inputShape: [8], numClasses: 2 }, rounds: 1, sampling: { mode: 'fixed', cohortSize: clients + 1 }, minClients: clients + 1, timeouts: { waitForClientsMs: 3_600_000 } }),
    dataDir,
    connections: { maxPerIp: clients + 10, maxUnregistered: clients + 10, maxUnregisteredPerIp: clients + 10 },
  });
  const generators = Array.from({ length: nGenerators }, (_, g) => forkGenerator(Math.floor(clients / nGenerators) + (g < clients % nGenerators ? 1 : 0), () => {}));
  try {
    await Promise.all(generators.map((g) => g.ready));
    const addresses = perAddress > 0 ? Array.from({ length: Math.ceil(clients / perAddress) }, (_, k) => `127.0.0.${k + 2}`) : [];
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let first = 0;
    for (const { handle } of generators) {
      const cmd: LoadGeneratorCommand = { type: 'start', url: coordinator.url, first, count: handle.count, ramp: handle.count, trainMs: 0, seed: 1, addresses, perAddress };
      handle.child.send(cmd);
      first += handle.count;
    }
    await Promise.all(generators.map((g) => g.handle.allWelcomed));
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const welcomed = coordinator.engine.connectedClients;
    for (const { handle } of generators) handle.child.send({ type: 'stop' });
    const stats: GeneratorStats[] = await Promise.all(generators.map((g) => g.handle.stats));
    const helloMs = stats.flatMap((s) => s.helloMs);
    const connectMs = stats.flatMap((s) => s.connectMs);
    emit({
      bench: 'auth',
      part: 'connect',
      clients,
      welcomed,
      refused: stats.reduce((a, s) => a + (s.serverErrors.UNAUTHORIZED ?? 0), 0),
      wallMs: Math.round(wallMs),
      helloToWelcomeMs: { p50: round3(quantile(helloMs, 0.5)), p99: round3(quantile(helloMs, 0.99)) },
      openToWelcomeMs: { p50: round3(quantile(connectMs, 0.5)), p99: round3(quantile(connectMs, 0.99)) },
      coordinatorCpuMsPerConnection: round3((cpu.user + cpu.system) / 1000 / clients),
    });
  } finally {
    for (const { handle } of generators) handle.child.kill();
    await coordinator.close();
  }

  // ---- 2. the check itself ----
  const store = CohortStore.open(fs.mkdtempSync(path.join(os.tmpdir(), 'cohort-bench-auth-fed-')));
  const federation = new Federation({ store, mode: 'first-use' });
  const ctx = { jobId: 'j', nonce: toBase64Url(randomBytes(32)), server: 'plaintext' };
  const keys = Array.from({ length: verifications }, () => ed25519KeyPair());
  const hellos: Hello[] = keys.map((k, i) => signedHello(k, { ...ctx, protocolVersion: PROTOCOL_VERSION }, `c${i}`));
  const perOp = (fn: () => void, n: number) => {
    const t = performance.now();
    fn();
    return round3(((performance.now() - t) * 1000) / n);
  };
  const firstUseUs = perOp(() => hellos.forEach((h) => federation.authenticate(h, ctx)), hellos.length);
  federation.flush();
  // The same clients on new connections: new challenges, so every signature is new (none memoised).
  const ctx2 = { ...ctx, nonce: toBase64Url(randomBytes(32)) };
  const again: Hello[] = keys.map((k, i) => signedHello(k, { ...ctx2, protocolVersion: PROTOCOL_VERSION }, `c${i}`));
  const knownKeyUs = perOp(() => again.forEach((h) => federation.authenticate(h, ctx2)), again.length);
  const ca = ed25519KeyPair();
  const now = Date.now();
  const certs = keys.map((k, i) => signCertificate(ca, { clientId: `c${i}`, publicKey: toBase64Url(k.publicKey), jobs: ['*'], notBefore: now, notAfter: now + 3_600_000, serial: toBase64Url(randomBytes(16)) }));
  const certUs = perOp(() => certs.forEach((c) => verifyCertificate(c, { caPublicKey: ca.publicKey, now, jobId: 'j' })), certs.length);
  const message = randomBytes(200);
  const sigs = keys.slice(0, 500).map((k) => ed25519Sign(k, message));
  const nodeUs = ed25519Node ? perOp(() => sigs.forEach((s, i) => ed25519Node!.verify(keys[i].publicKey, message, s)), sigs.length) : null;
  const portableUs = perOp(() => sigs.forEach((s, i) => ed25519Portable.verify(keys[i].publicKey, message, s)), sigs.length);
  emit({ bench: 'auth', part: 'check', hellos: hellos.length, firstUseHelloUs: firstUseUs, knownKeyHelloUs: knownKeyUs, certificateUs: certUs, ed25519VerifyUs: { nodeCrypto: nodeUs, tweetnacl: portableUs, speedup: nodeUs ? round3(portableUs / nodeUs) : null } });
  federation.close();
  store.close();
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(RESULTS, `${JSON.stringify(lines, null, 2)}\n`);
}
