/**
 * The browser client's Web Worker: the Socket.IO connection, the protocol engine (client/engine),
 * local training on tfjs's wasm backend with Cohort's SIMD kernels (client/train), clipping, noise,
 * encoding and SecAgg masking. All of it runs here, off the page's thread: the page only receives
 * small event messages (messages.ts), so training a CNN never blocks its input or rendering.
 *
 * Closing the tab ends this worker and its socket mid-round; the coordinator sees a disconnect, which
 * is a normal dropout (as a killed Node client is).
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { ClientEngine, privacyFloorPolicy, PrivacyFloorSchema, type RoundPolicy } from '../engine/index.ts';
import { fromArrays, splitTrainTest, type Dataset } from '../data/dataset.ts';
import { selectBackend } from '../train/backend.ts';
import { TfjsTask } from '../train/task.ts';
import { SocketIoClientTransport } from '../transport/socketio.ts';
import { resolveJobUrl } from './namespace.ts';
import { IdentityKeystore, type StoredIdentity } from './keystore.ts';
import { bytesToHex } from '../../shared/crypto/bytes.ts';
import { randomBytes } from '../../shared/random.ts';
import { CohortError } from '../../shared/errors.ts';
import { SecAggClient } from '../../shared/secagg/index.ts';
import type { ModelSpec } from '../../shared/model/index.ts';
import type { TrainingParams, Train } from '../../shared/protocol/index.ts';
import type { RoundTerms, StartCommand, WorkerCommand, WorkerEvent } from './messages.ts';
import { CertificateSchema } from '../../shared/identity/index.ts';

/** The part of DedicatedWorkerGlobalScope we use (the isomorphic typecheck has DOM, not WebWorker, types). */
interface WorkerScope {
  postMessage(message: WorkerEvent, transfer?: Transferable[]): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<WorkerCommand>) => void): void;
  close(): void;
}
const scope = globalThis as unknown as WorkerScope;

function post(event: WorkerEvent, transfer?: Transferable[]): void {
  scope.postMessage(event, transfer);
}

function report(err: unknown, fatal: boolean): void {
  const code = err instanceof CohortError ? err.code : 'INTERNAL';
  post({ type: 'error', code, message: err instanceof Error ? err.message : String(err), fatal });
}

/** How long a root-namespace connection may go without the welcome that proves the job is there. */
const ROOT_WELCOME_MS = 10_000;

let engine: ClientEngine | undefined;
const stopping = { stopped: false };

/** The client task, reporting the start and end of local training to the page. */
class ReportingTask extends TfjsTask {
  override async fit(weights: Float32Array, model: ModelSpec, training: TrainingParams, round: number) {
    post({ type: 'training', round, phase: 'started' });
    const started = performance.now();
    const result = await super.fit(weights, model, training, round);
    post({ type: 'training', round, phase: 'finished', ms: performance.now() - started });
    return result;
  }
}

function termsOf(train: Train): RoundTerms | undefined {
  const p = train.privacy;
  if (!p) return undefined;
  return {
    mode: p.mode,
    noiseMultiplier: p.noiseMultiplier,
    clipNorm: p.clipNorm,
    cohortSize: p.cohortSize,
    delta: p.delta,
    epsilonSpent: p.epsilonSpent,
    epsilonAfterRound: p.epsilonAfterRound,
    secureAggregation: train.secagg !== undefined,
  };
}

/** SecAgg modulus bits of the rounds this client was offered (0: no secure aggregation). */
const offeredBits = new Map<number, number>();

/** The privacy floor (if any), with every round offer reported to the page first. */
function reportingPolicy(cmd: StartCommand): RoundPolicy {
  const floor = cmd.privacyFloor ? privacyFloorPolicy(PrivacyFloorSchema.parse(cmd.privacyFloor)) : undefined;
  return (train) => {
    offeredBits.set(train.round, train.secagg?.bits ?? 0);
    if (offeredBits.size > 64) offeredBits.delete(offeredBits.keys().next().value!);
    post({ type: 'sampled', round: train.round, ...(train.privacy ? { privacy: termsOf(train) } : {}) });
    return floor?.(train);
  };
}

/** Test-only (StartCommand.exposeEncodedInputs): copies each masked-to-be input to the page. */
function exposeEncodedInputs(): void {
  const setInput = SecAggClient.prototype.setInput;
  SecAggClient.prototype.setInput = function (this: SecAggClient, values: Uint32Array) {
    const copy = values.slice();
    post({ type: 'encoded', round: this.round, bits: offeredBits.get(this.round) ?? 0, values: copy }, [copy.buffer]);
    return setInput.call(this, values);
  };
}

function datasetOf(cmd: StartCommand): { train: Dataset; test: Dataset } {
  const { x, y, shape, numClasses } = cmd.data;
  const all = fromArrays(x, y, { featureShape: shape, ...(numClasses === undefined ? {} : { numClasses }) });
  if (cmd.testFraction <= 0) return { train: all, test: all };
  return splitTrainTest(all, cmd.testFraction, 1);
}

/** The device identity from IndexedDB (created on first use), or none. */
/** JSON text → value; undefined (which no schema accepts) for text that is not JSON. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function identityOf(cmd: StartCommand): Promise<StoredIdentity | undefined> {
  if (!cmd.identity) return undefined;
  const store = await IdentityKeystore.open();
  try {
    const key = await store.getOrCreate(cmd.identity.name);
    const { certificate, caPublicKey } = cmd.identity;
    if ((certificate && certificate !== key.certificate) || (caPublicKey && caPublicKey !== key.caPublicKey)) {
      const cert = certificate ?? key.certificate;
      if (!cert) return { ...key, ...(caPublicKey ? { caPublicKey } : {}) }; // a CA pinned for this visit only: nothing to store it with yet
      await store.setCertificate(cmd.identity.name, cert, caPublicKey ?? key.caPublicKey);
      return { ...key, certificate: cert, ...(caPublicKey ?? key.caPublicKey ? { caPublicKey: caPublicKey ?? key.caPublicKey } : {}) };
    }
    return key;
  } finally {
    store.close();
  }
}

async function start(cmd: StartCommand): Promise<void> {
  const { train, test } = datasetOf(cmd);
  // The device key signs every hello (issue 15) and names the client unless the page names it.
  const identity = await identityOf(cmd);
  const clientId = cmd.clientId ?? `web-${bytesToHex((identity?.publicKey ?? randomBytes(8)).subarray(0, 8))}`;
  setWasmPaths(cmd.wasmBase);
  const backend = await selectBackend({ prefer: 'wasm' });
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  post({ type: 'ready', backend, simd, numExamples: train.size, clientId, ...(identity ? { identityKey: bytesToHex(identity.publicKey) } : {}) });
  if (cmd.exposeEncodedInputs) exposeEncodedInputs();
  const { url, root } = await resolveJobUrl(cmd.server, cmd.job, stopping);
  if (stopping.stopped) return;
  const transport = new SocketIoClientTransport({ url, ...(cmd.reconnect ? { reconnect: cmd.reconnect } : {}) });
  const certificate = identity?.certificate ? CertificateSchema.safeParse(parseJson(identity.certificate)) : undefined;
  const client = new ClientEngine({
    clientId,
    task: new ReportingTask({ train, test }),
    transport,
    ...(identity
      ? {
          identity: {
            key: { seed: identity.seed, publicKey: identity.publicKey },
            ...(certificate?.success ? { certificate: certificate.data } : {}),
            ...(cmd.identity?.enrolToken && !certificate?.success ? { enrolToken: cmd.identity.enrolToken } : {}),
            ...(identity.caPublicKey ? { caPublicKey: identity.caPublicKey } : {}),
            ...(cmd.identity?.maxRevocationAgeMs !== undefined ? { maxRevocationAgeMs: cmd.identity.maxRevocationAgeMs } : {}),
          },
        }
      : {}),
    backend: `${backend}${simd ? '-simd' : ''}-browser`,
    policy: reportingPolicy(cmd),
  });
  engine = client;
  // A certificate issued at enrolment is kept with the key in IndexedDB: later visits need no token.
  client.on('enrolled', ({ certificate, caPublicKey }) => {
    if (!cmd.identity) return;
    const name = cmd.identity.name;
    void IdentityKeystore.open().then(async (store) => {
      try {
        await store.setCertificate(name, JSON.stringify(certificate), caPublicKey);
      } finally {
        store.close();
      }
    });
  });
  // On the root namespace the job is only proven by its welcome (namespace.ts).
  const unproven =
    cmd.job !== undefined && root
      ? setTimeout(() => {
          post({ type: 'error', code: 'UNKNOWN_JOB', message: `${cmd.server} did not welcome this client to job ${JSON.stringify(cmd.job)} within ${ROOT_WELCOME_MS / 1000} s: it runs no such job`, fatal: true });
          client.stop();
        }, ROOT_WELCOME_MS)
      : undefined;
  client.on('welcome', (w) => {
    clearTimeout(unproven);
    if (cmd.job !== undefined && w.jobId !== cmd.job) {
      post({ type: 'error', code: 'UNKNOWN_JOB', message: `the server runs job ${JSON.stringify(w.jobId)}, not ${JSON.stringify(cmd.job)}`, fatal: true });
      client.stop();
      return;
    }
    post({ type: 'connected', jobId: w.jobId, clientId: w.clientId });
  });
  client.on('disconnected', (reason) => post({ type: 'disconnected', reason }));
  client.on('refused', (r) => post({ type: 'refused', round: r.round, reason: r.reason }));
  client.on('secaggAborted', (a) => post({ type: 'error', code: a.code, message: `round ${a.round}: secure aggregation aborted: ${a.message}`, fatal: false }));
  client.on('trained', (t) => post({ type: 'uploaded', round: t.round, numExamples: t.numExamples, secureAggregation: (offeredBits.get(t.round) ?? 0) > 0, ms: t.ms }));
  client.on('evaluated', (e) => post({ type: 'evaluated', round: e.round, numExamples: e.numExamples, loss: e.loss, accuracy: e.accuracy }));
  client.on('roundResult', (r) => post({ type: 'round', round: r.round, outcome: r.outcome, included: r.included }));
  client.on('serverError', (e) => post({ type: 'error', code: e.code, message: e.message, fatal: false }));
  client.on('jobEnd', (end) => {
    post({ type: 'ended', status: end.status, rounds: end.rounds });
    client.stop();
  });
  client.start();
}

scope.addEventListener('message', (event) => {
  const cmd = event.data;
  if (cmd.type === 'start') {
    start(cmd).catch((err: unknown) => report(err, true));
  } else if (cmd.type === 'leave') {
    stopping.stopped = true;
    engine?.stop();
    engine = undefined;
    post({ type: 'left' });
  }
});
