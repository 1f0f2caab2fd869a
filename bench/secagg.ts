/**
 * `npm run bench -- secagg [--clients 100] [--dim 1663370] [--dropout 0.1] [--json]
 *                          [--corrupt 0.05] [--bits 16] [--drop-phase collect|share|unmask]
 *                          [--train-samples 600] [--cpu-samples 10] [--no-train] [--min-survivors m]`
 *
 * Runs one round of the real SecAgg+ state machines (shared/secagg) in this process: n clients
 * encode (clip → rotate → round → mod 2^b, KLS21) and mask a d-dimensional update, the server
 * streams, unmasks and decodes the sum. The graph, the survivor floor, γ and the noise are the
 * coordinator's own plan (`planSecAggRound`, shared/secagg/plan.ts) for a job with distributed DP; as
 * many clients as the round tolerates (n − minSurvivors) drop at `--drop-phase` (default `collect`:
 * after ShareKeys and before sending their input, the case that costs the server most, since it must
 * rebuild their pairwise masks). The sum is checked bit for bit against the plain sum mod 2^b.
 *
 * Prints one JSON line with
 *   clients, dim, dropout, neighbors, threshold,
 *   clientSecaggMs  mean per-client time in encoding + the protocol state machine,
 *   serverSecaggMs  server time in the protocol state machine (streaming sum, unmasking) + decoding,
 *   serverPlainMs   server time to sum the survivors' float32 updates without SecAgg (WeightedSum),
 *   trainEpochMs    one local epoch of the McMahan et al. 2017 CNN over 600 MNIST samples, measured
 *                   in a child process on the default backend; if that backend cannot train the CNN,
 *                   measured with COHORT_BACKEND=cpu on --cpu-samples samples and extrapolated
 *                   linearly (then `trainEpochEstimated: true` and `trainNote` say so),
 *   bytesPerClientPlain   4·d (float32 update),
 *   bytesPerClientSecagg  mean per-client SecAgg traffic, both directions: the b-bit packed masked
 *                         vector plus every key/share/signature message (JSON headers as sent),
 * and extra fields (bits, gamma, dropPhase, breakdowns, exact). Also written to
 * bench/results/secagg.json. Each client samples its distributed-DP noise (discrete Gaussian, noise
 * multiplier 1 at clip norm 1 on the rounded sensitivity over the minimum survivor count, as the
 * coordinator plans it, with the shared/dp table sampler a deployed client uses) inside its timed
 * encoding.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { addDiscreteGaussianNoiseFast } from '../shared/dp/index.ts';
import { WeightedSum } from '../shared/fl/aggregate.ts';
import { seededRng } from '../shared/random.ts';
import { toBase64Url } from '../shared/crypto/bytes.ts';
import { certifiedPeerCheck, signCertificate } from '../shared/identity/index.ts';
import {
  decodeSum,
  ed25519KeyPair,
  encodeUpdate,
  encodedDim,
  planSecAggRound,
  randomBytes,
  SecAggClient,
  SecAggServer,
  type EncodingParams,
  type SecAggClientMessage,
  type SecAggServerMessage,
} from '../shared/secagg/index.ts';
import { SecAggConfigSchema } from '../server/round/secagg.ts';
import { flagReaders } from './args.ts';

const execFileAsync = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.join(here, 'results', 'secagg.json');
const ENTRY = path.join(here, 'index.ts');

type DropPhase = 'share' | 'collect' | 'unmask';
const PHASE_ORDER = ['advertise', 'share', 'collect', 'consistency', 'unmask'];

interface Options {
  json: boolean;
  clients: number;
  dim: number;
  dropout: number;
  corrupt: number;
  bits: number;
  dropPhase: DropPhase;
  train: boolean;
  trainSamples: number;
  cpuSamples: number;
  /** The job's survivor floor; undefined: n − ⌊dropout·n⌋. */
  minSurvivors: number | undefined;
  /** Issue 15: each client sends a CA certificate and checks every neighbour's before sharing. */
  certificates: boolean;
}


function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      json: { type: 'boolean', default: false },
      clients: { type: 'string', default: '100' },
      dim: { type: 'string', default: '1663370' },
      dropout: { type: 'string', default: '0.1' },
      corrupt: { type: 'string', default: '0.05' },
      bits: { type: 'string', default: '16' },
      'drop-phase': { type: 'string', default: 'collect' },
      'no-train': { type: 'boolean', default: false },
      'train-samples': { type: 'string', default: '600' },
      'cpu-samples': { type: 'string', default: '10' },
      'min-survivors': { type: 'string' },
      certificates: { type: 'boolean', default: false },
    },
  });
  const { int, num } = flagReaders('secagg');
  const fraction = (text: string, flag: string) => num(text, flag, (v) => v >= 0 && v < 1, 'in [0, 1)');
  const phase = values['drop-phase'];
  if (phase !== 'share' && phase !== 'collect' && phase !== 'unmask') throw new Error('bench secagg: --drop-phase must be share, collect or unmask');
  return {
    json: values.json,
    clients: num(values.clients, 'clients', (v) => Number.isSafeInteger(v) && v >= 3, 'an integer ≥ 3'),
    dim: int(values.dim, 'dim'),
    dropout: fraction(values.dropout, 'dropout'),
    corrupt: fraction(values.corrupt, 'corrupt'),
    bits: num(values.bits, 'bits', (v) => Number.isInteger(v) && v >= 1 && v <= 32, 'an integer in [1, 32]'),
    dropPhase: phase,
    train: !values['no-train'],
    trainSamples: int(values['train-samples'], 'train-samples'),
    cpuSamples: int(values['cpu-samples'], 'cpu-samples'),
    minSurvivors: values['min-survivors'] === undefined ? undefined : int(values['min-survivors'], 'min-survivors'),
    certificates: values.certificates,
  };
}

/** A deterministic pseudo-update (xorshift32), scaled to L2 norm `norm`. */
function syntheticUpdate(dim: number, norm: number): Float32Array {
  const out = new Float32Array(dim);
  let x = 0x9e3779b9 | 0;
  let s = 0;
  for (let i = 0; i < dim; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x >>> 0) / 4294967296 - 0.5;
    s += out[i] * out[i];
  }
  const f = norm / Math.sqrt(s);
  for (let i = 0; i < dim; i++) out[i] *= f;
  return out;
}

/** Bytes a message occupies on the wire: its JSON header, plus the binary payload if any. */
function wireBytes(msg: SecAggServerMessage | SecAggClientMessage): number {
  if (msg.type === 'secagg_masked_input') {
    const { payload, ...header } = msg;
    return JSON.stringify(header).length + payload.length;
  }
  return JSON.stringify(msg).length;
}

export interface SecAggBenchResult {
  clients: number;
  dim: number;
  dropout: number;
  neighbors: number;
  threshold: number;
  clientSecaggMs: number;
  serverSecaggMs: number;
  serverPlainMs: number;
  trainEpochMs: number | null;
  bytesPerClientPlain: number;
  bytesPerClientSecagg: number;
  [extra: string]: unknown;
}

function measureSecagg(opts: Options): Omit<SecAggBenchResult, 'trainEpochMs'> {
  const n = opts.clients;
  // The coordinator's own plan (shared/secagg/plan.ts, what SecAggRound announces): a job with
  // distributed DP at noise multiplier 1 on clip norm 1, the bench's dropout and corrupt rates, the
  // job config's default wrap probability, and a floor of --min-survivors (default n − ⌊dropout·n⌋).
  const clipNorm = 1;
  const config = SecAggConfigSchema.parse({ enabled: true, bits: opts.bits, dropoutRate: opts.dropout, corruptRate: opts.corrupt });
  const plan = planSecAggRound({
    clients: n,
    jobMinSurvivors: opts.minSurvivors ?? n - Math.floor(opts.dropout * n),
    dim: opts.dim,
    clipNorm,
    bits: opts.bits,
    wrapProbability: config.wrapProbability,
    noiseMultiplier: 1,
    dropoutRate: config.dropoutRate,
    corruptRate: config.corruptRate,
  });
  const { graph, minSurvivors } = plan;
  const { gamma, noiseStddev } = plan.encoding;
  const dEncoded = encodedDim(opts.dim);
  const encoding: EncodingParams = { dim: opts.dim, clipNorm, gamma, bits: opts.bits, rotationSeed: randomBytes(32) };
  const noiseSigma = noiseStddev / gamma; // per-client discrete Gaussian σ in integer units, as a client computes it

  const ids = Array.from({ length: n }, (_, i) => `client-${String(i).padStart(5, '0')}`);
  const identities = ids.map(() => ed25519KeyPair());
  const rng = seededRng(7);
  const dropped = new Set<number>();
  // As many clients drop as the round tolerates.
  while (dropped.size < n - minSurvivors) dropped.add(Math.floor(rng.next() * n));
  const silentFrom = PHASE_ORDER.indexOf(opts.dropPhase);

  const update = syntheticUpdate(opts.dim, 0.5 * clipNorm);
  const clientMs = new Float64Array(n);
  const clientEncodeMs = new Float64Array(n);
  const clientBytes = new Float64Array(n);
  let serverMs = 0;
  const timeServer = <T>(fn: () => T): T => {
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      serverMs += performance.now() - t0;
    }
  };

  const server = timeServer(
    () =>
      new SecAggServer({
        jobId: 'bench',
        round: 1,
        cohort: ids,
        params: { neighbors: graph.neighbors, threshold: graph.threshold, bits: opts.bits, dim: dEncoded },
        minSurvivors,
        identityKeys: new Map(ids.map((id, i) => [id, identities[i].publicKey])),
      }),
  );
  // --certificates: what identity binding adds (a certificate in every advertisement, one certificate
  // check per neighbour before sharing).
  const ca = ed25519KeyPair();
  const now = Date.now();
  const certified = (clientId: string, i: number) =>
    opts.certificates
      ? {
          certificate: signCertificate(ca, { clientId, publicKey: toBase64Url(identities[i].publicKey), jobs: ['bench'], notBefore: now, notAfter: now + 3_600_000, serial: toBase64Url(randomBytes(16)) }),
          checkPeer: certifiedPeerCheck(ca.publicKey, 'bench', () => now),
        }
      : {};
  const clients = ids.map((clientId, i) => new SecAggClient({ clientId, jobId: 'bench', round: 1, identity: identities[i], ...certified(clientId, i) }));
  const plainSum = new Uint32Array(dEncoded); // Σ encoded inputs that reached the server, for the exactness check

  let outgoing = timeServer(() => server.start());
  while (server.phase !== 'done' && server.phase !== 'aborted') {
    const phaseIndex = PHASE_ORDER.indexOf(server.phase);
    for (const [id, msg] of outgoing) {
      const i = ids.indexOf(id);
      clientBytes[i] += wireBytes(msg);
      if (dropped.has(i) && phaseIndex >= silentFrom) continue;
      const t0 = performance.now();
      let replies = clients[i].handle(msg);
      if (msg.type === 'secagg_masked_input_request') {
        const t1 = performance.now();
        const { encoded } = encodeUpdate(update, encoding, { noise: (v) => void addDiscreteGaussianNoiseFast(v, noiseSigma ** 2) });
        clientEncodeMs[i] += performance.now() - t1;
        for (let j = 0; j < dEncoded; j++) plainSum[j] += encoded[j];
        replies = clients[i].setInput(encoded);
      }
      clientMs[i] += performance.now() - t0;
      for (const r of replies) {
        clientBytes[i] += wireBytes(r);
        timeServer(() => server.receive(id, r));
      }
    }
    outgoing = timeServer(() => server.advance());
  }
  const result = server.result();
  if (result.status !== 'ok') throw new Error(`bench secagg: the round aborted: ${result.status === 'aborted' ? result.reason : result.status}`);
  const mask = opts.bits === 32 ? 0xffffffff : 2 ** opts.bits - 1;
  let exact = true;
  for (let j = 0; j < dEncoded; j++) if (((plainSum[j] & mask) >>> 0) !== result.sum[j]) exact = false;
  const decodeStart = performance.now();
  decodeSum(result.sum, encoding);
  const decodeMs = performance.now() - decodeStart;

  // Plain aggregation of the same survivors' float32 updates.
  const plain = new WeightedSum(opts.dim);
  const plainStart = performance.now();
  for (let k = 0; k < result.included.length; k++) plain.add(update, 1);
  const serverPlainMs = performance.now() - plainStart;

  const live = ids.map((_, i) => i).filter((i) => !dropped.has(i));
  const mean = (a: Float64Array, idx: number[]) => idx.reduce((s, i) => s + a[i], 0) / idx.length;
  return {
    clients: n,
    dim: opts.dim,
    dropout: opts.dropout,
    neighbors: graph.neighbors,
    threshold: graph.threshold,
    clientSecaggMs: round1(mean(clientMs, live)),
    serverSecaggMs: round1(serverMs + decodeMs),
    serverPlainMs: round1(serverPlainMs),
    bytesPerClientPlain: 4 * opts.dim,
    bytesPerClientSecagg: Math.round(mean(clientBytes, live)),
    bits: opts.bits,
    gamma,
    noiseSigmaInteger: round1(noiseSigma),
    dropPhase: opts.dropPhase,
    dropped: dropped.size,
    included: result.included.length,
    clientEncodeMs: round1(mean(clientEncodeMs, live)),
    clientProtocolMs: round1(mean(clientMs, live) - mean(clientEncodeMs, live)),
    clientSecaggMaxMs: round1(Math.max(...live.map((i) => clientMs[i]))),
    serverProtocolMs: round1(serverMs),
    serverDecodeMs: round1(decodeMs),
    exact,
  };
}

const round1 = (v: number): number => Math.round(v * 10) / 10;

// ---- training time (child processes: tfjs backends are process-global) -------------------------

interface TrainMeasurement {
  backend: string;
  samples: number;
  ms: number;
}

async function trainWorker(args: string[]): Promise<void> {
  const samples = Number(args[0]);
  const { selectBackend, LocalTrainer } = await import('../client/train/index.ts');
  const { loadMnist } = await import('../simulations/datasets/mnist.ts');
  const { initialWeights } = await import('../shared/model/index.ts');
  const { subset } = await import('../client/data/dataset.ts');
  const backend = await selectBackend();
  const spec = { zoo: 'cnn' as const, inputShape: [28, 28, 1], numClasses: 10 };
  const { train } = loadMnist({ trainSize: samples, testSize: 0 });
  const { weights } = initialWeights(spec, 1);
  const trainer = new LocalTrainer(spec);
  const cfg = { epochs: 1, batchSize: 10, learningRate: 0.05, proxMu: 0, seed: 1 };
  // Warm-up (kernel compilation, first allocations) on one batch, not timed.
  await trainer.train(weights, subset(train, Int32Array.from({ length: Math.min(10, samples) }, (_, i) => i)), cfg);
  const t0 = performance.now();
  await trainer.train(weights, train, cfg);
  const ms = performance.now() - t0;
  process.stdout.write(`${JSON.stringify({ backend, samples, ms } satisfies TrainMeasurement)}\n`);
}

async function runTrainChild(samples: number, env: NodeJS.ProcessEnv): Promise<TrainMeasurement> {
  const tsx = import.meta.resolve('tsx');
  const { stdout } = await execFileAsync(process.execPath, ['--import', tsx, ENTRY, 'secagg', '--train-worker', String(samples)], {
    env,
    maxBuffer: 1 << 20,
    timeout: 60 * 60 * 1000,
  });
  const line = stdout.trim().split('\n').pop()!;
  return JSON.parse(line) as TrainMeasurement;
}

async function measureTrain(opts: Options): Promise<Record<string, unknown>> {
  try {
    const m = await runTrainChild(opts.trainSamples, process.env);
    return { trainEpochMs: round1(m.ms), trainBackend: m.backend, trainSamplesMeasured: m.samples, trainEpochEstimated: false };
  } catch (e) {
    const why = (e as { stderr?: string }).stderr?.match(/UNSUPPORTED_ON_BACKEND|cannot be trained on the '\w+' backend[^\n]*/)?.[0] ?? (e as Error).message.split('\n')[0];
    try {
      const m = await runTrainChild(opts.cpuSamples, { ...process.env, COHORT_BACKEND: 'cpu' });
      return {
        trainEpochMs: round1((m.ms * opts.trainSamples) / opts.cpuSamples),
        trainBackend: m.backend,
        trainSamplesMeasured: m.samples,
        trainEpochEstimated: true,
        trainNote: `default backend could not train the CNN (${why}); measured on cpu with ${m.samples} samples, extrapolated linearly to ${opts.trainSamples}`,
      };
    } catch (e2) {
      return { trainEpochMs: null, trainNote: `training could not be measured: ${why}; cpu: ${(e2 as Error).message.split('\n')[0]}` };
    }
  }
}

export async function run(args: string[]): Promise<void> {
  if (args[0] === '--train-worker') return trainWorker(args.slice(1));
  const opts = parseOptions(args);
  const secagg = measureSecagg(opts);
  const train = opts.train ? await measureTrain(opts) : { trainEpochMs: null, trainNote: 'skipped (--no-train)' };
  const result = { ...secagg, ...train } as SecAggBenchResult;
  const line = JSON.stringify(result);
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(RESULTS, `${line}\n`);
  if (opts.json) {
    process.stdout.write(`${line}\n`);
    return;
  }
  for (const [k, v] of Object.entries(result)) console.log(`${k.padEnd(22)} ${typeof v === 'number' ? v : JSON.stringify(v)}`);
  const t = typeof result.trainEpochMs === 'number' ? result.trainEpochMs : undefined;
  console.log(
    `client ≤ 0.1 × train: ${t === undefined ? 'n/a' : result.clientSecaggMs <= 0.1 * t ? 'ok' : 'FAIL'}; ` +
      `server ≤ 2000 ms: ${result.serverSecaggMs <= 2000 ? 'ok' : 'FAIL'}; ` +
      `bytes ≤ 1.1 × plain: ${result.bytesPerClientSecagg <= 1.1 * result.bytesPerClientPlain ? 'ok' : 'FAIL'}`,
  );
}
