/**
 * A Node client process for the browser end-to-end test (browser-client.test.ts): a real ClientEngine
 * training the job's model on one shard of the demo digits the browser build bundled, over Socket.IO.
 * In its own process, so its training never stalls the coordinator's event loop in the test process.
 * Run with `node --import tsx browser-node-client.ts JSON`.
 *
 * stdout, one JSON object per line: {"event":"welcome"} · {"event":"encoded",round,values} (base64 of
 * the encoded, still unmasked SecAgg input, so the test can check the unmasked sum exactly) ·
 * {"event":"job_end",status,rounds}
 */
import { readFileSync } from 'node:fs';
import { ClientEngine } from '../../client/engine/index.ts';
import { selectBackend } from '../../client/train/backend.ts';
import { TfjsTask } from '../../client/train/task.ts';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import { SecAggClient } from '../../shared/secagg/index.ts';

interface Args {
  url: string;
  clientId: string;
  /** The demo digits file (dist/cohort-client.mnist.bin) and which examples to train on. */
  digits: string;
  from: number;
  count: number;
}

const PIXELS = 784;
const args = JSON.parse(process.argv[2]) as Args;
const say = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);

const bytes = readFileSync(args.digits);
const features = new Float32Array(args.count * PIXELS);
const labels = new Int32Array(args.count);
for (let i = 0; i < args.count; i++) {
  const row = (args.from + i) * (PIXELS + 1);
  for (let p = 0; p < PIXELS; p++) features[i * PIXELS + p] = bytes[row + p] / 255;
  labels[i] = bytes[row + PIXELS];
}

const setInput = SecAggClient.prototype.setInput;
SecAggClient.prototype.setInput = function (this: SecAggClient, values: Uint32Array) {
  say({ event: 'encoded', round: this.round, values: Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64') });
  return setInput.call(this, values);
};

await selectBackend({ prefer: 'wasm' });
const engine = new ClientEngine({
  clientId: args.clientId,
  task: new TfjsTask({ train: { features, labels, featureShape: [28, 28, 1], numClasses: 10, size: args.count }, seed: args.from }),
  transport: new SocketIoClientTransport({ url: args.url }),
});
engine.on('welcome', () => say({ event: 'welcome' }));
engine.start();
const end = await engine.whenJobEnds();
say({ event: 'job_end', status: end.status, rounds: end.rounds });
engine.stop();
// Exit only once stdout has been flushed: an 'encoded' line is ~0.5 MB, and a parent slow to read (a
// loaded machine) leaves writes queued that process.exit would drop (seen: 'encoded 3' and 'job_end' lost).
await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
process.exit(0);
