/**
 * The demo page at /client: pick one of the bundled MNIST shards (or a CSV), set a privacy floor, join
 * a job and watch the rounds. Everything shown is written as text (textContent), never as HTML.
 *
 * `?job=ID` fills in the job id. `?test-hooks=1` is for the end-to-end test only: it keeps each
 * round's encoded (unmasked) input in `window.cohortDemo.encoded` so the test can check the
 * coordinator's sum exactly; the values never leave the browser.
 */
import { join, type CohortClient, type Progress } from '../index.ts';
import type { PrivacyFloorInput } from '../../engine/privacy-floor.ts';
import { parseCsv } from '../csv.ts';
import type { BrowserData } from '../messages.ts';

const PIXELS = 784;

interface DemoManifest {
  /** null when the build had no `mnist` package: CSV files only. */
  mnist: { shards: number; shardSize: number; heldOut: number } | null;
}

interface DemoHooks {
  client?: CohortClient;
  encoded: Record<number, { bits: number; values: Uint32Array }>;
  /** The encoded input of `round` as base64 of its little-endian bytes (test hooks only). */
  encodedBase64(round: number): string | undefined;
  /** Every line of the event log with its performance.now() time. */
  events: { at: number; line: string }[];
}
const hooks: DemoHooks = {
  encoded: {},
  encodedBase64(round) {
    const entry = this.encoded[round];
    if (!entry) return undefined;
    const bytes = new Uint8Array(entry.values.buffer, entry.values.byteOffset, entry.values.byteLength);
    let binary = '';
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(binary);
  },
  events: [],
};
(globalThis as { cohortDemo?: DemoHooks }).cohortDemo = hooks;

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`demo page: no #${id}`);
  return el as T;
};

function text(id: string, value: string): void {
  $(id).textContent = value;
}

function log(line: string): void {
  const item = document.createElement('li');
  item.textContent = `${new Date().toLocaleTimeString()} ${line}`;
  const list = $('log');
  list.prepend(item);
  while (list.childElementCount > 200) list.lastElementChild?.remove();
  hooks.events.push({ at: performance.now(), line });
}

let digits: Promise<Uint8Array> | undefined;
const loadDigits = (): Promise<Uint8Array> =>
  (digits ??= fetch('/client/cohort-client.mnist.bin').then(async (r) => {
    if (!r.ok) throw new Error(`cannot load the demo digits: HTTP ${r.status}`);
    return new Uint8Array(await r.arrayBuffer());
  }));

/** Shard k as floats in [0, 1], 50 digits per task so the page never stalls. */
async function mnistShard(k: number, size: number, shape: number[]): Promise<BrowserData> {
  const bytes = await loadDigits();
  const x = new Float32Array(size * PIXELS);
  const y = new Int32Array(size);
  for (let i = 0; i < size; i++) {
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 0));
    const row = (k * size + i) * (PIXELS + 1);
    for (let p = 0; p < PIXELS; p++) x[i * PIXELS + p] = bytes[row + p] / 255;
    y[i] = bytes[row + PIXELS];
  }
  return { x, y, shape, numClasses: 10 };
}

function parseShape(value: string): number[] {
  const dims = value.split(/[x,\s]+/).filter(Boolean).map(Number);
  if (dims.length === 0 || dims.some((d) => !Number.isInteger(d) || d < 1)) throw new Error(`example shape "${value}" is not a list of positive integers`);
  return dims;
}

function floorFromForm(): PrivacyFloorInput {
  const maxEpsilon = $<HTMLInputElement>('max-epsilon').valueAsNumber;
  const minNoise = $<HTMLInputElement>('min-noise').valueAsNumber;
  return {
    requireDp: $<HTMLInputElement>('require-dp').checked,
    forbidCentral: $<HTMLInputElement>('forbid-central').checked,
    ...(Number.isFinite(maxEpsilon) && maxEpsilon > 0 ? { maxEpsilon } : {}),
    ...(Number.isFinite(minNoise) && minNoise >= 0 ? { minNoiseMultiplier: minNoise } : {}),
  };
}

function describeFloor(f: PrivacyFloorInput): string {
  const parts = [
    f.requireDp ? 'DP required' : 'DP not required',
    ...(f.forbidCentral ? ['no central DP'] : []),
    ...(f.maxEpsilon !== undefined ? [`ε ≤ ${f.maxEpsilon}`] : []),
    ...(f.minNoiseMultiplier !== undefined ? [`noise multiplier ≥ ${f.minNoiseMultiplier}`] : []),
  ];
  return parts.join(', ');
}

function show(p: Progress): void {
  text('s-phase', p.phase);
  text('s-client', p.clientId);
  text('s-backend', p.backend ?? '—');
  text('s-examples', p.numExamples === undefined ? '—' : String(p.numExamples));
  text('s-round', p.round === undefined ? '—' : String(p.round));
  text('s-rounds', String(p.roundsTakenPart));
  text('s-refused', String(p.roundsRefused));
  if (p.privacy) {
    const t = p.privacy;
    text('s-privacy', `${t.mode} DP, noise multiplier ${t.noiseMultiplier}, clip ${t.clipNorm}, cohort ${t.cohortSize}${t.secureAggregation ? ', secure aggregation' : ''}`);
    text('s-epsilon', `${t.epsilonSpent.toFixed(3)} spent → ${t.epsilonAfterRound.toFixed(3)} after this round (δ = ${t.delta})`);
  }
  if (p.lastEvaluation) text('s-eval', `round ${p.lastEvaluation.round}: accuracy ${(100 * p.lastEvaluation.accuracy).toFixed(1)}%, loss ${p.lastEvaluation.loss.toFixed(3)}`);
  const bar = $<HTMLProgressElement>('s-progress');
  bar.value = p.phase === 'training' ? 0.5 : p.phase === 'uploaded' || p.phase === 'ended' ? 1 : 0;
}

async function dataFromForm(manifest: DemoManifest): Promise<BrowserData> {
  const shape = parseShape($<HTMLInputElement>('shape').value);
  const source = (document.querySelector('input[name="source"]:checked') as HTMLInputElement | null)?.value ?? 'shard';
  if (source === 'csv') {
    const file = $<HTMLInputElement>('csv').files?.[0];
    if (!file) throw new Error('choose a CSV file first');
    return parseCsv(await file.text(), shape);
  }
  if (!manifest.mnist) throw new Error('this coordinator has no demo digits: choose a CSV file');
  return mnistShard(Number($<HTMLSelectElement>('shard').value), manifest.mnist.shardSize, shape);
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const testHooks = params.get('test-hooks') === '1';
  const job = params.get('job');
  if (job) $<HTMLInputElement>('job').value = job;
  const manifest = (await fetch('/client/cohort-client.files.json').then((r) => r.json())) as DemoManifest;
  const select = $<HTMLSelectElement>('shard');
  const mnist = manifest.mnist;
  for (let k = 0; k < (mnist?.shards ?? 0); k++) {
    const option = document.createElement('option');
    option.value = String(k);
    option.textContent = `shard ${k + 1} of ${mnist!.shards} (${mnist!.shardSize} digits)`;
    select.append(option);
  }
  if (!mnist) select.disabled = true;
  const joinButton = $<HTMLButtonElement>('join');
  const leaveButton = $<HTMLButtonElement>('leave');
  let client: CohortClient | undefined;

  $<HTMLFormElement>('join-form').addEventListener('submit', (event) => {
    event.preventDefault();
    joinButton.disabled = true;
    void (async () => {
      try {
        const floor = floorFromForm();
        text('s-floor', describeFloor(floor));
        text('s-phase', 'loading data');
        const data = await dataFromForm(manifest);
        const source = (document.querySelector('input[name="source"]:checked') as HTMLInputElement | null)?.value;
        client = await join({
          job: $<HTMLInputElement>('job').value.trim(),
          data,
          identity: { name: source === 'csv' ? 'demo-csv' : `demo-shard-${select.value}` },
          privacyFloor: floor,
          onProgress: show,
          ...(testHooks ? { exposeEncodedInputs: true } : {}),
        });
        hooks.client = client;
        leaveButton.disabled = false;
        log(`joined with ${data.y.length} examples`);
        client.on('connected', (c) => log(`connected to job ${c.jobId} as ${c.clientId}`));
        client.on('disconnected', (d) => log(`disconnected (${d.reason}); reconnecting`));
        client.on('sampled', (s) => log(`sampled for round ${s.round}${s.privacy ? `, ε after it: ${s.privacy.epsilonAfterRound.toFixed(3)}` : ''}`));
        client.on('training', (t) => log(t.phase === 'started' ? `training round ${t.round}` : `trained round ${t.round} in ${Math.round(t.ms ?? 0)} ms`));
        client.on('uploaded', (u) => log(`update for round ${u.round} ${u.secureAggregation ? 'masked for secure aggregation' : 'sent'}`));
        client.on('refused', (r) => log(`refused round ${r.round}: ${r.reason}`));
        client.on('round', (r) => log(`round ${r.round} ${r.outcome}${r.included ? ' with this update' : ' without this update'}`));
        client.on('evaluated', (e) => log(`evaluated round ${e.round}: accuracy ${(100 * e.accuracy).toFixed(1)}%`));
        client.on('error', (e) => log(`error ${e.code}: ${e.message}`));
        client.on('ended', (e) => {
          log(`job ended: ${e.status} after ${e.rounds} rounds`);
          leaveButton.disabled = true;
        });
        if (testHooks) client.on('encoded', (e) => (hooks.encoded[e.round] = { bits: e.bits, values: e.values }));
      } catch (err) {
        text('s-phase', 'failed');
        log(`cannot join: ${err instanceof Error ? err.message : String(err)}`);
        joinButton.disabled = false;
      }
    })();
  });

  leaveButton.addEventListener('click', () => {
    leaveButton.disabled = true;
    void client?.leave().then(() => {
      log('left the job');
      joinButton.disabled = false;
    });
  });
}

void main().catch((err: unknown) => log(`the demo failed to start: ${err instanceof Error ? err.message : String(err)}`));
