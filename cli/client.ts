import { randomUUID } from 'node:crypto';
import { loadClientConfig } from '../client/node/config.ts';
import { splitTrainTest } from '../client/data/dataset.ts';
import { loadDataset } from '../client/node/load.ts';
import { ClientEngine, privacyFloorPolicy } from '../client/engine/index.ts';
import { selectBackend } from '../client/train/backend.ts';
import { TfjsTask } from '../client/train/task.ts';
import { nodeCertificateCheck } from '../client/node/tls.ts';
import { SocketIoClientTransport } from '../client/transport/socketio.ts';
import { ConfigError } from '../shared/errors.ts';
import { checkServerUrl } from '../shared/transport-security.ts';
import { createLogger, type LogLevel } from './log.ts';

export interface ClientCommandOptions {
  server?: string;
  /** A job of a multi-job service (`cohort serve`): joins its namespace, /jobs/<id>. */
  job?: string;
  data?: string;
  config?: string;
  id?: string;
  backend?: string;
  /** A PEM CA bundle that the server's certificate must chain to (instead of the default store). */
  caFile?: string;
  /** `sha256:<hex>`: accept only the server certificate with this fingerprint. */
  serverFingerprint?: string;
  /** Allow plaintext http:// to a host that is not loopback. */
  insecure?: boolean;
  logLevel: LogLevel;
}

/** `cohort client`: joins a coordinator, trains on local data each round, exits when the job ends. */
export async function clientCommand(opts: ClientCommandOptions): Promise<number> {
  const logger = createLogger(opts.logLevel);
  const cfg = loadClientConfig(opts.config);
  const base = opts.server ?? cfg.server;
  if (opts.job !== undefined && !/^[A-Za-z0-9._-]{1,128}$/.test(opts.job)) throw new ConfigError(`--job must be a job id, got ${JSON.stringify(opts.job)}`);
  const server = base && opts.job ? `${base.replace(/\/+$/, '')}/jobs/${opts.job}` : base;
  const dataPath = opts.data ?? cfg.data;
  if (!server) throw new ConfigError('no server: pass --server URL or set "server" in the client config');
  if (!dataPath) throw new ConfigError('no data: pass --data PATH or set "data" in the client config');
  // Checked before any data is read or a connection is tried: plaintext to a remote host, bad TLS flags.
  const insecure = opts.insecure ?? cfg.insecure;
  const caFile = opts.caFile ?? cfg.caFile;
  const serverFingerprint = opts.serverFingerprint ?? cfg.serverFingerprint;
  const { tls } = checkServerUrl(server, insecure);
  if (!tls && (caFile !== undefined || serverFingerprint !== undefined)) {
    throw new ConfigError('--ca-file and --server-fingerprint check a TLS server: use an https:// URL');
  }
  const certificateCheck = tls ? nodeCertificateCheck({ caFile, serverFingerprint }) : undefined;
  const clientId = opts.id ?? cfg.clientId ?? `client-${randomUUID().slice(0, 8)}`;
  const backend = await selectBackend({ prefer: opts.backend ?? cfg.backend, logger });
  const data = await loadDataset(dataPath, {
    labelColumn: cfg.labelColumn,
    featureShape: cfg.featureShape,
    numClasses: cfg.numClasses,
  });
  const { train, test } = cfg.testFraction > 0 ? splitTrainTest(data, cfg.testFraction, cfg.seed) : { train: data, test: data };
  logger.info({ clientId, server, data: dataPath, train: train.size, test: test.size, backend }, 'client starting');
  const transport = new SocketIoClientTransport({ url: server, reconnect: cfg.reconnect, logger, insecure, certificateCheck });
  const engine = new ClientEngine({
    clientId,
    task: new TfjsTask({ train, test, seed: cfg.seed }),
    transport,
    logger,
    backend,
    ...(cfg.privacyFloor ? { policy: privacyFloorPolicy(cfg.privacyFloor) } : {}),
  });
  process.once('SIGINT', () => {
    engine.stop();
    process.exit(130);
  });
  engine.start();
  // A server certificate that fails the check ends the client with its typed error (exit 2).
  const end = await Promise.race([engine.whenJobEnds(), transport.whenFailed()]);
  engine.stop();
  if (end instanceof Error) throw end;
  return end.status === 'completed' ? 0 : 1;
}
