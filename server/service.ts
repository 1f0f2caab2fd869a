/**
 * `cohort serve`: one long-running coordinator process hosting any number of jobs on one port. One
 * SQLite store, one HTTP server carrying the admin API (server/api) and one Socket.IO server on which
 * each job has its own namespace, `/jobs/<id>`: a client names the job it joins by connecting there
 * (`cohort client --job ID`), and one client process may join several jobs (a connection per job over
 * the same Socket.IO manager). Jobs are submitted over the API (`POST /api/v1/jobs`); on start the
 * service resumes every stored job that was running (paused ones stay paused until resumed).
 *
 * Finished jobs stay listed (read back from the store after a restart: `archivedJobView`). Each job keeps
 * its own `checkpoints.keep`; connection caps apply per job namespace.
 */
import { Server } from 'socket.io';
import { CohortError } from '../shared/errors.ts';
import { silentLogger, type Logger } from '../shared/log.ts';
import { DEFAULT_LIMITS } from '../shared/protocol/index.ts';
import { buildAdminApi, type JobEngineView, type JobHandle } from './api/app.ts';
import { CohortMetrics } from './ops/metrics.ts';
import { wireJobOps } from './ops/wire.ts';
import { parseJobConfig, type JobConfig } from './round/config.ts';
import { RoundEngine } from './round/engine.ts';
import { PrivacyController } from './round/privacy.ts';
import { CohortStore } from './store/index.ts';
import type { ClientAuthMode, Federation } from './identity/federation.ts';
import { federationFor } from './identity/setup.ts';
import { serverUrl, SocketIoServerTransport, type ConnectionLimits } from './transport/socketio.ts';
import { secureListener, type ServerTls } from './transport/tls.ts';
import type { OpeningGuard, OpeningLimits } from './transport/opening.ts';

export interface ServiceOptions {
  dataDir: string;
  /** Who may join (default: first-use on loopback, certificate elsewhere): server/identity/setup.ts. */
  clientAuth?: ClientAuthMode;
  /** The offline CA's public key file; without it the CA key lives in the data dir. */
  caPublicKeyFile?: string;
  /** With an offline CA: its signed revocation list file (`cohort ca revoke`), re-read when it changes. */
  revocationListFile?: string;
  host?: string;
  port?: number;
  logger?: Logger;
  connections?: Partial<ConnectionLimits>;
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  /** Serve HTTPS + WSS with this certificate (server/transport/tls.ts `loadServerTls`). */
  tls?: ServerTls;
  /** Bounds on connections that have not made their first request (TLS handshake included). */
  opening?: Partial<OpeningLimits>;
  /** Listen in plaintext on a non-loopback address (refused otherwise; logged as a warning). */
  insecure?: boolean;
}

export interface Service {
  /** `https://…` with TLS, else `http://…`. */
  url: string;
  /** `sha256:<hex>` of the TLS certificate's DER (what clients pin); undefined without TLS. */
  serverFingerprint: string | undefined;
  /** Counts of the guard on connections that have not made their first request (server/transport/opening.ts). */
  openingConnections: OpeningGuard;
  store: CohortStore;
  metrics: CohortMetrics;
  /** Client identities: enrolment, revocation (closes the client's connections in every job). */
  federation: Federation;
  /** The jobs this process runs an engine for (started or resumed here; finished ones stay). */
  jobs: ReadonlyMap<string, LiveJob>;
  /** Starts a new job (or resumes a stored one with the same config). */
  submit(config: JobConfig): Promise<LiveJob>;
  /** Closes every job's connections, the server and the store; the jobs stay resumable. */
  close(): Promise<void>;
}

export interface LiveJob extends JobHandle {
  readonly engine: RoundEngine;
}

/** Statuses a restarted service starts an engine for (finished jobs are only served). */
const LIVE = new Set(['created', 'queued', 'running', 'paused']);

export async function startService(opts: ServiceOptions): Promise<Service> {
  const logger = opts.logger ?? silentLogger;
  const host = opts.host ?? '127.0.0.1';
  // Refused before anything is opened: a non-loopback address needs TLS or --insecure.
  const security = secureListener({ host, tls: opts.tls, insecure: opts.insecure, opening: opts.opening, unregistered: opts.connections, logger });
  const store = CohortStore.open(opts.dataDir);
  const metrics = new CohortMetrics();
  const jobs = new Map<string, LiveJob>();
  const federation = federationFor({ store, dataDir: opts.dataDir, host, clientAuth: opts.clientAuth, caPublicKeyFile: opts.caPublicKeyFile, ...(opts.revocationListFile ? { revocationListFile: opts.revocationListFile } : {}), logger });
  // A revoked client's connections close in every job (its in-flight contributions count as dropouts).
  federation.onRevoked((clientId) => {
    for (const h of jobs.values()) h.engine.disconnectClient(clientId);
  });
  /** Jobs that had finished before this process started: served from the store. */
  const archived = new Map<string, JobHandle>();

  const submit = async (config: JobConfig): Promise<LiveJob> => {
    if (jobs.has(config.id)) throw new CohortError('API_CONFLICT', `job ${config.id} is already running in this service`);
    const stored = store.getJob(config.id);
    if (stored && !LIVE.has(stored.status)) throw new CohortError('API_CONFLICT', `job ${config.id} has ${stored.status}; submit a new job id`);
    const transport = new SocketIoServerTransport({
      io,
      namespace: `/jobs/${config.id}`,
      host,
      limits: { maxHeaderBytes: 256 * 1024, maxOpenStreams: 4, ...config.limits },
      logger,
      connections: opts.connections,
    });
    const engine = new RoundEngine({ config, store, transport: metrics.meteredTransport(transport, config.id), logger, clients: federation, serverIdentity: security.fingerprint ?? 'plaintext' });
    wireJobOps({ engine, config, store, metrics, logger, submit: (c) => submit(c) });
    const handle: LiveJob = { id: config.id, config, engine };
    jobs.set(config.id, handle);
    try {
      await engine.start();
    } catch (err) {
      jobs.delete(config.id);
      await transport.close().catch(() => {});
      throw err;
    }
    logger.info({ job: config.id, namespace: `/jobs/${config.id}`, resumeFrom: engine.lastCommittedRound }, 'job started');
    return handle;
  };

  const api = buildAdminApi({
    store,
    metrics,
    logger,
    federation,
    https: security.https,
    jobs: {
      list: () => [...archived.values(), ...jobs.values()],
      get: (id) => jobs.get(id) ?? archived.get(id),
      submit,
    },
  });
  const io = new Server(api.server, {
    serveClient: false,
    maxHttpBufferSize: Math.max(DEFAULT_LIMITS.chunkBytes, 256 * 1024) + 16 * 1024,
    pingInterval: opts.pingIntervalMs ?? 10_000,
    pingTimeout: opts.pingTimeoutMs ?? 20_000,
    cors: { origin: false },
    connectTimeout: 10_000,
  });
  const openingConnections = security.guard(api.server);
  try {
    for (const row of store.listJobs()) {
      if (LIVE.has(row.status)) {
        await submit(parseJobConfig(row.config, `stored config of job ${row.id}`));
        continue;
      }
      try {
        const config = parseJobConfig(row.config, `stored config of job ${row.id}`);
        archived.set(row.id, { id: row.id, config, engine: archivedJobView(config, store) });
      } catch (err) {
        // A finished job whose config this build cannot read is not served; it is never resumed either.
        logger.error({ err, job: row.id }, 'finished job not listed: its stored config is unreadable');
      }
    }
    await api.listen({ port: opts.port ?? 0, host });
  } catch (err) {
    for (const h of jobs.values()) await h.engine.shutdown().catch(() => {});
    await api.close().catch(() => {});
    store.close();
    throw err;
  }
  const url = serverUrl(api.server, host);
  let closed = false;
  return {
    url,
    serverFingerprint: security.fingerprint,
    openingConnections,
    store,
    metrics,
    federation,
    jobs,
    submit,
    async close() {
      if (closed) return;
      closed = true;
      for (const h of jobs.values()) await h.engine.shutdown();
      federation.close();
      await new Promise<void>((resolve) => io.close(() => resolve()));
      await api.close().catch(() => {});
      store.close();
    },
  };
}

/**
 * A finished job as the API sees it after a restart: no engine runs for it, so its round and ε are read
 * back from the store (the privacy controller rebuilt from the ledger, as a resumed engine rebuilds it).
 * The API refuses every lifecycle change of a finished job before these are reached.
 */
export function archivedJobView(config: JobConfig, store: CohortStore): JobEngineView {
  const privacy = new PrivacyController(config, store.listLedger(config.id));
  return {
    status: 'finished',
    pausedBecause: undefined,
    get lastCommittedRound() {
      return store.getJob(config.id)?.currentRound ?? 0;
    },
    connectedClients: 0,
    privacy,
    pause: () => {},
    resume: () => false,
    stop: async () => {},
  };
}
