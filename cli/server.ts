import { resolve } from 'node:path';
import { startCoordinator } from '../server/coordinator.ts';
import { loadJobConfig } from '../server/round/config.ts';
import { createLogger, type LogLevel } from './log.ts';
import { ConfigError } from '../shared/errors.ts';
import type { ClientAuthMode } from '../server/identity/federation.ts';
import { loadServerTls, type ServerTls } from '../server/transport/tls.ts';

export interface ServerCommandOptions {
  config: string;
  port: string;
  host: string;
  dataDir: string;
  maxConnectionsPerIp: string;
  maxUnregistered: string;
  maxUnregisteredPerIp: string;
  logLevel: LogLevel;
  /** After the job ends, keep answering hellos with job_end for up to this long (see below). */
  lingerMs?: string;
  clientAuth?: string;
  caPublicKey?: string;
  revocationList?: string;
  tlsCert?: string;
  tlsKey?: string;
  insecure?: boolean;
}

function clientAuthMode(value: string | undefined): ClientAuthMode | undefined {
  if (value === undefined) return undefined;
  if (value !== 'first-use' && value !== 'certificate') throw new ConfigError(`--client-auth must be first-use or certificate, got ${value}`);
  return value;
}

/** `cohort server`: runs one job until it finishes; SIGINT/SIGTERM leave it resumable. */
export async function serverCommand(opts: ServerCommandOptions): Promise<number> {
  const logger = createLogger(opts.logLevel);
  const tls = tlsFromFlags(opts);
  const config = loadJobConfig(opts.config);
  const port = parsePort(opts.port);
  const dataDir = resolve(opts.dataDir);
  const connections = {
    maxPerIp: positiveInt('--max-connections-per-ip', opts.maxConnectionsPerIp),
    maxUnregistered: positiveInt('--max-unregistered', opts.maxUnregistered),
    maxUnregisteredPerIp: positiveInt('--max-unregistered-per-ip', opts.maxUnregisteredPerIp),
  };
  const coordinator = await startCoordinator({ config, dataDir, host: opts.host, port, logger, connections, tls, insecure: opts.insecure, clientAuth: clientAuthMode(opts.clientAuth), caPublicKeyFile: opts.caPublicKey, ...(opts.revocationList ? { revocationListFile: resolve(opts.revocationList) } : {}) });
  const { engine } = coordinator;
  logger.info(
    { url: coordinator.url, api: `${coordinator.url}/api/v1`, ...tlsLogFields(coordinator.serverFingerprint), dataDir, job: config.id, rounds: config.rounds, resumeFrom: engine.lastCommittedRound, checksum: engine.globalChecksum },
    'coordinator listening',
  );
  const shutdown = async (signal: string) => {
    logger.info({ signal, lastCommittedRound: engine.lastCommittedRound }, 'shutting down; the job stays resumable');
    await coordinator.close();
    process.exit(130);
  };
  engine.on('paused', ({ reason }) =>
    logger.warn({ reason, lastCommittedRound: engine.lastCommittedRound }, 'job paused; fix the cause, then restart cohort server to resume'),
  );
  guardProcess(logger, engine);
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  const lingerMs = Number(opts.lingerMs ?? 15_000);
  if (!Number.isFinite(lingerMs) || lingerMs < 0) throw new ConfigError(`--linger-ms must be ≥ 0, got ${opts.lingerMs}`);
  const summary = await engine.whenFinished();
  // A job can end with nobody connected (restarted after its last commit, or already finished): its
  // clients are still reconnecting with backoff and would retry forever if we exited now. Keep
  // answering hellos with job_end until minClients distinct clients were told, or lingerMs passed.
  if (engine.clientsToldOfEnd < config.minClients && lingerMs > 0) {
    logger.info({ told: engine.clientsToldOfEnd, minClients: config.minClients, lingerMs }, 'job ended; telling reconnecting clients');
    await new Promise<void>((resolve) => {
      const onTold = (told: number) => {
        if (told >= config.minClients) done();
      };
      const done = () => {
        clearTimeout(timer);
        engine.off('endAnnounced', onTold);
        resolve();
      };
      const timer = setTimeout(done, lingerMs);
      engine.on('endAnnounced', onTold);
    });
  }
  // Let job_end messages reach the clients before the sockets close.
  await new Promise((r) => setTimeout(r, 200));
  await coordinator.close();
  logger.info({ ...summary }, 'job finished');
  return summary.status === 'completed' ? 0 : 1;
}

/**
 * Last line of defence (every known path is guarded in the engines). A stray promise rejection has no
 * state to corrupt: log it and carry on. An uncaught exception may have left a transition half-done:
 * log it and exit, because the store is crash-safe and a restart resumes after the last committed round.
 */
function guardProcess(logger: ReturnType<typeof createLogger>, engine: { lastCommittedRound: number }): void {
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection (kept running)'));
  process.on('uncaughtException', (err) => {
    logger.error({ err, lastCommittedRound: engine.lastCommittedRound }, 'uncaught exception; exiting (restart resumes the job)');
    process.exit(70);
  });
}

function positiveInt(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${flag} must be a positive integer, got ${text}`);
  return n;
}

export function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`--port must be 0..65535, got ${text}`);
  return port;
}

/** `--tls-cert` and `--tls-key` come together; both PEM, the key the certificate's. */
export function tlsFromFlags(opts: { tlsCert?: string; tlsKey?: string }): ServerTls | undefined {
  if (opts.tlsCert === undefined && opts.tlsKey === undefined) return undefined;
  if (opts.tlsCert === undefined || opts.tlsKey === undefined) throw new ConfigError('--tls-cert and --tls-key go together: pass both, or neither');
  return loadServerTls(resolve(opts.tlsCert), resolve(opts.tlsKey));
}

/** The start line's TLS fields: the fingerprint an operator gives clients to pin. */
function tlsLogFields(fingerprint: string | undefined): Record<string, string> {
  return fingerprint ? { tls: 'on', fingerprint } : { tls: 'off' };
}

export interface ServeCommandOptions {
  port: string;
  host: string;
  dataDir: string;
  logLevel: LogLevel;
  clientAuth?: string;
  caPublicKey?: string;
  revocationList?: string;
  tlsCert?: string;
  tlsKey?: string;
  insecure?: boolean;
}

/** `cohort serve`: a long-running service for many jobs on one port (server/service.ts); SIGINT/SIGTERM leave every job resumable. */
export async function serveCommand(opts: ServeCommandOptions): Promise<number> {
  const logger = createLogger(opts.logLevel);
  const { startService } = await import('../server/service.ts');
  const tls = tlsFromFlags(opts);
  const service = await startService({ dataDir: resolve(opts.dataDir), host: opts.host, port: parsePort(opts.port), logger, tls, insecure: opts.insecure, clientAuth: clientAuthMode(opts.clientAuth), caPublicKeyFile: opts.caPublicKey, ...(opts.revocationList ? { revocationListFile: resolve(opts.revocationList) } : {}) });
  logger.info({ url: service.url, api: `${service.url}/api/v1`, ...tlsLogFields(service.serverFingerprint), dataDir: resolve(opts.dataDir), jobs: [...service.jobs.keys()] }, 'service listening');
  await new Promise<void>((done) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'shutting down; every job stays resumable');
      void service.close().then(done);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}
