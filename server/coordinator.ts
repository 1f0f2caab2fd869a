/**
 * Wires a coordinator process together: SQLite store, Socket.IO transport, round engine, and on the same
 * port the admin HTTP API (server/api: jobs, ledger, versions, audit, /metrics, /healthz). Used by
 * `cohort server`, the demo and the integration tests, so all three run the same assembly. The job's
 * own state changes (paused, finished, budget exhausted) go to the audit log with actor `system`.
 */
import { silentLogger, type Logger } from '../shared/log.ts';
import { RoundEngine, type Clock } from './round/engine.ts';
import type { JobConfig } from './round/config.ts';
import { CohortStore } from './store/index.ts';
import { SocketIoServerTransport, type ConnectionLimits } from './transport/socketio.ts';
import type { Rng } from '../shared/random.ts';
import { failpointFromSpec, type Failpoint } from './failpoints.ts';
import { buildAdminApi } from './api/app.ts';
import { CohortMetrics } from './ops/metrics.ts';
import { wireJobOps } from './ops/wire.ts';
import type { ClientAuthMode, Federation } from './identity/federation.ts';
import { federationFor } from './identity/setup.ts';
import { secureListener, type ServerTls } from './transport/tls.ts';
import type { OpeningGuard, OpeningLimits } from './transport/opening.ts';

export interface CoordinatorOptions {
  config: JobConfig;
  dataDir: string;
  host?: string;
  port?: number;
  logger?: Logger;
  rng?: Rng;
  clock?: Clock;
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  /** Caps on connections per address and on connections that have not said hello. */
  connections?: Partial<ConnectionLimits>;
  /** Fault injection (tests): default from COHORT_FAILPOINT, see server/failpoints.ts. */
  failpoint?: Failpoint;
  /** Who may join (default: first-use on loopback, certificate elsewhere): server/identity/setup.ts. */
  clientAuth?: ClientAuthMode;
  /** The offline CA's public key file; without it the CA key lives in the data dir. */
  caPublicKeyFile?: string;
  /** With an offline CA: its signed revocation list file (`cohort ca revoke`), re-read when it changes. */
  revocationListFile?: string;
  /** Serve HTTPS + WSS with this certificate (server/transport/tls.ts `loadServerTls`). */
  tls?: ServerTls;
  /** Bounds on connections that have not made their first request (TLS handshake included). */
  opening?: Partial<OpeningLimits>;
  /** Listen in plaintext on a non-loopback address (refused otherwise; logged as a warning). */
  insecure?: boolean;
}

export interface Coordinator {
  engine: RoundEngine;
  store: CohortStore;
  transport: SocketIoServerTransport;
  metrics: CohortMetrics;
  /** Client identities: enrolment, revocation. */
  federation: Federation;
  /** `https://…` with TLS, else `http://…`. */
  url: string;
  /** `sha256:<hex>` of the TLS certificate's DER (what clients pin); undefined without TLS. */
  serverFingerprint: string | undefined;
  /** Counts of the guard on connections that have not made their first request (server/transport/opening.ts). */
  openingConnections: OpeningGuard;
  /** Closes sockets and the database; the job's status is left as it is (resumable). */
  close(): Promise<void>;
}

export async function startCoordinator(opts: CoordinatorOptions): Promise<Coordinator> {
  const logger = opts.logger ?? silentLogger;
  const host = opts.host ?? '127.0.0.1';
  // Refused before anything is opened: a non-loopback address needs TLS or --insecure.
  const security = secureListener({ host, tls: opts.tls, insecure: opts.insecure, opening: opts.opening, unregistered: opts.connections, logger });
  const failpoint = opts.failpoint ?? failpointFromSpec(process.env.COHORT_FAILPOINT);
  const store = CohortStore.open(opts.dataDir, { keepCheckpoints: opts.config.checkpoints.keep, failpoint });
  const metrics = new CohortMetrics();
  let engineRef: RoundEngine | undefined;
  const federation = federationFor({ store, dataDir: opts.dataDir, host: opts.host ?? '127.0.0.1', clientAuth: opts.clientAuth, caPublicKeyFile: opts.caPublicKeyFile, ...(opts.revocationListFile ? { revocationListFile: opts.revocationListFile } : {}), logger });
  federation.onRevoked((clientId) => engineRef?.disconnectClient(clientId));
  const api = buildAdminApi({
    store,
    metrics,
    logger,
    federation,
    https: security.https,
    jobs: {
      list: () => (engineRef ? [{ id: opts.config.id, config: opts.config, engine: engineRef }] : []),
      get: (id) => (engineRef && id === opts.config.id ? { id, config: opts.config, engine: engineRef } : undefined),
    },
  });
  const transport = new SocketIoServerTransport({
    // Socket.IO and the admin API share one HTTP server, hence one port.
    httpServer: api.server,
    host,
    port: opts.port ?? 0,
    limits: { maxHeaderBytes: 256 * 1024, maxOpenStreams: 4, ...opts.config.limits },
    logger,
    pingIntervalMs: opts.pingIntervalMs,
    pingTimeoutMs: opts.pingTimeoutMs,
    connections: opts.connections,
  });
  const engine = new RoundEngine({
    config: opts.config,
    store,
    transport: metrics.meteredTransport(transport, opts.config.id),
    logger,
    rng: opts.rng,
    clock: opts.clock,
    failpoint,
    // Starting the one-job coordinator on a paused job is the operator's resume.
    resumePaused: true,
    clients: federation,
    // Hellos are signed for this server: its TLS certificate's fingerprint, else `plaintext`.
    serverIdentity: security.fingerprint ?? 'plaintext',
  });
  engineRef = engine;
  wireJobOps({ engine, config: opts.config, store, metrics, logger });
  const openingConnections = security.guard(api.server);
  try {
    await engine.start();
    await api.listen({ port: opts.port ?? 0, host });
  } catch (err) {
    await transport.close().catch(() => {});
    await api.close().catch(() => {});
    store.close();
    throw err;
  }
  let closed = false;
  return {
    engine,
    store,
    transport,
    metrics,
    federation,
    url: transport.url,
    serverFingerprint: security.fingerprint,
    openingConnections,
    async close() {
      if (closed) return;
      closed = true;
      await engine.shutdown();
      federation.close();
      await api.close().catch(() => {});
      store.close();
    },
  };
}
