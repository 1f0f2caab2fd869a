/**
 * Cohort's browser client: `join` a federated job from a web page.
 *
 *   import { join } from '/client/cohort-client.browser.js';
 *   const client = await join({ server: location.origin, job: 'mnist', data: { x, y, shape: [784] } });
 *   client.on('round', (r) => …);  …  await client.leave();
 *
 * The page thread only holds this small object. A Web Worker (worker.ts, bundled next to this file as
 * cohort-client.worker.js) connects, trains with tfjs's wasm backend and Cohort's SIMD kernels,
 * clips, noises, encodes and masks; it posts events back. The device's long-term Ed25519 key lives in
 * IndexedDB (keystore.ts); the worker reads (or creates) it, so no key work runs on the page either.
 */
import { Emitter } from '../../shared/events.ts';
import { CohortError, type CohortErrorCode, isCohortErrorCode } from '../../shared/errors.ts';
import type { PrivacyFloorInput } from '../engine/privacy-floor.ts';
import type { BrowserData, RoundTerms, StartCommand, WorkerCommand, WorkerEvent } from './messages.ts';

export type { BrowserData, RoundTerms } from './messages.ts';
export { IdentityKeystore, type StoredIdentity } from './keystore.ts';

export interface JoinOptions {
  /** The coordinator's URL; default: this page's origin. */
  server?: string;
  /** The job id (cohort serve hosts many; cohort server's one job is checked against it). */
  job?: string;
  data: BrowserData;
  /**
   * The device identity: the Ed25519 key stored in IndexedDB under `name` (default 'default'),
   * created on first use, and its certificate if the device was enrolled. `false`: no stored key
   * (a fresh client id per join).
   */
  identity?:
    | {
        name?: string;
        certificate?: string;
        enrolToken?: string;
        /**
         * The federation CA's public key (base64url) to pin (enrolment pins the one that signed the
         * certificate): SecAgg neighbours must then show its certificates and not be on its revocation list.
         */
        caPublicKey?: string;
        /** With a pinned CA: require its revocation list, signed within this many ms, in every SecAgg round. */
        maxRevocationAgeMs?: number;
      }
    | false;
  /** Default: `web-` and 16 hex digits of the identity's public key (random without an identity). */
  clientId?: string;
  /** The weakest rounds this device accepts; weaker ones are refused before training. */
  privacyFloor?: PrivacyFloorInput;
  /** Fraction of the examples held out for federated evaluation; default 0.1 (0: evaluate on all). */
  testFraction?: number;
  /** Called with a fresh snapshot after every event. */
  onProgress?: (progress: Progress) => void;
  /** Where cohort-client.worker.js and the tfjs wasm binaries are; default: next to this module. */
  assets?: string;
  /** Reconnection backoff (defaults: 500 ms doubling to 30 s, forever). */
  reconnect?: StartCommand['reconnect'];
  /** Test-only: emit `encoded` with each round's unmasked encoded input (it stays on the device). */
  exposeEncodedInputs?: boolean;
}

export type ClientPhase = 'starting' | 'connecting' | 'idle' | 'training' | 'uploaded' | 'ended' | 'failed' | 'left';

/** What the client has done so far; `onProgress` receives one after every event. */
export interface Progress {
  phase: ClientPhase;
  jobId?: string;
  /** Known once the worker is ready (join resolves then). */
  clientId: string;
  /** Hex of the device's Ed25519 public key, when it has an identity. */
  identityKey?: string;
  backend?: string;
  numExamples?: number;
  /** The round last offered to this client. */
  round?: number;
  /** Rounds whose update this client sent and the coordinator committed with it. */
  roundsTakenPart: number;
  roundsRefused: number;
  /** The privacy terms of the last round offered (ε as the coordinator announced it). */
  privacy?: RoundTerms;
  lastEvaluation?: { round: number; loss: number; accuracy: number };
  lastError?: { code: string; message: string };
}

export interface CohortClientEvents {
  connected: [{ jobId: string; clientId: string }];
  disconnected: [{ reason: string }];
  /** Offered a round (before the privacy floor decides). */
  sampled: [{ round: number; privacy?: RoundTerms }];
  training: [{ round: number; phase: 'started' | 'finished'; ms?: number }];
  /** The update left the training step: sent, or masked for secure aggregation. */
  uploaded: [{ round: number; numExamples: number; secureAggregation: boolean; ms: number }];
  refused: [{ round: number; reason: string }];
  evaluated: [{ round: number; numExamples: number; loss: number; accuracy: number }];
  round: [{ round: number; outcome: 'committed' | 'aborted'; included: boolean }];
  ended: [{ status: string; rounds: number }];
  error: [CohortError];
  encoded: [{ round: number; bits: number; values: Uint32Array }];
  progress: [Progress];
}

const DEFAULT_TEST_FRACTION = 0.1;

/** A joined client. Events as above; `leave()` disconnects and ends the worker. */
export class CohortClient extends Emitter<CohortClientEvents> {
  private readonly state: Progress;
  /** Resolves when the job ends; rejects on a fatal error. */
  readonly done: Promise<{ status: string; rounds: number }>;
  private settle!: { resolve(v: { status: string; rounds: number }): void; reject(e: CohortError): void };
  private readyWaiter?: { resolve(): void; reject(e: CohortError): void };
  private terminated = false;

  constructor(
    private readonly worker: Worker,
    private readonly onProgress?: (p: Progress) => void,
  ) {
    super();
    this.state = { phase: 'starting', clientId: '', roundsTakenPart: 0, roundsRefused: 0 };
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => undefined); // observed through events by callers that do not await it
    worker.addEventListener('message', (e: MessageEvent<WorkerEvent>) => this.onWorkerEvent(e.data));
    worker.addEventListener('error', (e: ErrorEvent) => this.fail('INTERNAL', `the client worker failed: ${e.message || 'script error'}`));
  }

  /** A copy of the current progress. */
  get progress(): Progress {
    return structuredClone(this.state);
  }

  /** @internal Resolves once the worker has loaded its data and backend. */
  ready(): Promise<void> {
    return new Promise((resolve, reject) => (this.readyWaiter = { resolve, reject }));
  }

  /** Leaves the job: closes the connection (a dropout if a round is in flight) and ends the worker. */
  async leave(): Promise<void> {
    if (this.terminated) return;
    const left = new Promise<void>((resolve) => {
      const onMessage = (e: MessageEvent<WorkerEvent>): void => {
        if (e.data.type === 'left') resolve();
      };
      this.worker.addEventListener('message', onMessage);
      setTimeout(resolve, 1000);
    });
    this.worker.postMessage({ type: 'leave' } satisfies WorkerCommand);
    await left;
    this.terminate('left');
  }

  private terminate(phase: ClientPhase): void {
    if (this.terminated) return;
    this.terminated = true;
    this.worker.terminate();
    if (this.state.phase !== 'ended' && this.state.phase !== 'failed') this.update({ phase });
  }

  private update(patch: Partial<Progress>): void {
    Object.assign(this.state, patch);
    const snapshot = this.progress;
    this.onProgress?.(snapshot);
    this.emit('progress', snapshot);
  }

  private fail(code: string, message: string): void {
    const error = new CohortError(isCohortErrorCode(code) ? (code as CohortErrorCode) : 'INTERNAL', message, { code });
    this.update({ phase: 'failed', lastError: { code, message } });
    if (this.listenerCount('error') > 0) this.emit('error', error);
    this.readyWaiter?.reject(error);
    this.settle.reject(error);
    this.terminate('failed');
  }

  private onWorkerEvent(ev: WorkerEvent): void {
    switch (ev.type) {
      case 'ready':
        this.update({
          phase: 'connecting',
          clientId: ev.clientId,
          ...(ev.identityKey ? { identityKey: ev.identityKey } : {}),
          backend: ev.simd ? `${ev.backend} (SIMD)` : ev.backend,
          numExamples: ev.numExamples,
        });
        this.readyWaiter?.resolve();
        return;
      case 'connected':
        this.update({ phase: 'idle', jobId: ev.jobId });
        this.emit('connected', { jobId: ev.jobId, clientId: ev.clientId });
        return;
      case 'disconnected':
        if (this.state.phase !== 'ended') this.update({ phase: 'connecting' });
        this.emit('disconnected', { reason: ev.reason });
        return;
      case 'sampled':
        this.update({ round: ev.round, ...(ev.privacy ? { privacy: ev.privacy } : {}) });
        this.emit('sampled', { round: ev.round, ...(ev.privacy ? { privacy: ev.privacy } : {}) });
        return;
      case 'training':
        this.update({ phase: ev.phase === 'started' ? 'training' : this.state.phase });
        this.emit('training', { round: ev.round, phase: ev.phase, ...(ev.ms === undefined ? {} : { ms: ev.ms }) });
        return;
      case 'uploaded':
        this.update({ phase: 'uploaded' });
        this.emit('uploaded', { round: ev.round, numExamples: ev.numExamples, secureAggregation: ev.secureAggregation, ms: ev.ms });
        return;
      case 'refused':
        this.update({ phase: 'idle', roundsRefused: this.state.roundsRefused + 1 });
        this.emit('refused', { round: ev.round, reason: ev.reason });
        return;
      case 'evaluated':
        this.update({ lastEvaluation: { round: ev.round, loss: ev.loss, accuracy: ev.accuracy } });
        this.emit('evaluated', { round: ev.round, numExamples: ev.numExamples, loss: ev.loss, accuracy: ev.accuracy });
        return;
      case 'round': {
        const tookPart = ev.outcome === 'committed' && ev.included;
        this.update({ phase: this.state.phase === 'ended' ? 'ended' : 'idle', roundsTakenPart: this.state.roundsTakenPart + (tookPart ? 1 : 0) });
        this.emit('round', { round: ev.round, outcome: ev.outcome, included: ev.included });
        return;
      }
      case 'ended':
        this.update({ phase: 'ended' });
        this.emit('ended', { status: ev.status, rounds: ev.rounds });
        this.settle.resolve({ status: ev.status, rounds: ev.rounds });
        this.terminate('ended');
        return;
      case 'encoded':
        this.emit('encoded', { round: ev.round, bits: ev.bits, values: ev.values });
        return;
      case 'error':
        if (ev.fatal) return this.fail(ev.code, ev.message);
        this.update({ lastError: { code: ev.code, message: ev.message } });
        if (this.listenerCount('error') > 0) this.emit('error', new CohortError(isCohortErrorCode(ev.code) ? ev.code : 'INTERNAL', ev.message));
        return;
      case 'left':
        return;
    }
  }
}

/** The directory URL this module was loaded from (the worker and wasm binaries sit next to it). */
function defaultAssets(): string {
  return new URL('./', import.meta.url).href;
}

/** A Worker for the client script; across origins through a blob (Worker scripts must be same-origin). */
async function startWorker(assets: string): Promise<Worker> {
  if (typeof Worker === 'undefined') throw new CohortError('UNSUPPORTED_PLATFORM', 'this browser has no Web Workers');
  if (typeof WebAssembly === 'undefined') throw new CohortError('UNSUPPORTED_PLATFORM', 'this browser has no WebAssembly');
  const url = new URL('cohort-client.worker.js', assets);
  if (url.origin === globalThis.location?.origin) return new Worker(url, { type: 'module', name: 'cohort-client' });
  const script = await fetch(url).then((r) => {
    if (!r.ok) throw new CohortError('UNSUPPORTED_PLATFORM', `cannot load the client worker from ${url.href}: HTTP ${r.status}`);
    return r.blob();
  });
  return new Worker(URL.createObjectURL(new Blob([script], { type: 'text/javascript' })), { type: 'module', name: 'cohort-client' });
}

function checkData(data: BrowserData): void {
  if (!data || !(data.x instanceof Float32Array) || !(data.y instanceof Int32Array) || !Array.isArray(data.shape)) {
    throw new CohortError('BAD_DATA', 'data must be { x: Float32Array, y: Int32Array, shape: number[] }');
  }
}

/**
 * Joins a job: starts the worker with a copy of the data (it loads the device identity from IndexedDB
 * and the wasm backend), and resolves once the worker is ready to train (the connection then
 * proceeds; watch `connected`). Rejects with a CohortError if the data, backend or identity store
 * cannot be used.
 */
export async function join(opts: JoinOptions): Promise<CohortClient> {
  checkData(opts.data);
  const assets = opts.assets ?? defaultAssets();
  const worker = await startWorker(assets);
  const client = new CohortClient(worker, opts.onProgress);
  const ready = client.ready();
  const { x, y, shape, numClasses } = opts.data;
  const start: StartCommand = {
    type: 'start',
    server: opts.server ?? globalThis.location.origin,
    ...(opts.job === undefined ? {} : { job: opts.job }),
    ...(opts.clientId === undefined ? {} : { clientId: opts.clientId }),
    data: { x, y, shape, ...(numClasses === undefined ? {} : { numClasses }) },
    testFraction: opts.testFraction ?? DEFAULT_TEST_FRACTION,
    wasmBase: assets,
    ...(opts.privacyFloor ? { privacyFloor: opts.privacyFloor } : {}),
    ...(opts.identity === false
      ? {}
      : {
          identity: {
            name: opts.identity?.name ?? 'default',
            ...(opts.identity?.certificate ? { certificate: opts.identity.certificate } : {}),
            ...(opts.identity?.enrolToken ? { enrolToken: opts.identity.enrolToken } : {}),
            ...(opts.identity?.caPublicKey ? { caPublicKey: opts.identity.caPublicKey } : {}),
            ...(opts.identity?.maxRevocationAgeMs !== undefined ? { maxRevocationAgeMs: opts.identity.maxRevocationAgeMs } : {}),
          },
        }),
    ...(opts.reconnect ? { reconnect: opts.reconnect } : {}),
    ...(opts.exposeEncodedInputs ? { exposeEncodedInputs: true } : {}),
  };
  worker.postMessage(start satisfies WorkerCommand);
  await ready;
  return client;
}
