/**
 * A client process for the fault-injection matrix: a real ClientEngine over Socket.IO with the fixed
 * task of task.ts that, when told to, SIGKILLs itself (no disconnect packet, no cleanup: the kernel
 * closes its sockets) or SIGSTOPs itself (hangs, connection open) at one phase of one round: inside
 * local training, on receiving `evaluate`, or on receiving a SecAgg request before answering it.
 * Run with `node --import tsx victim-client.ts JSON`.
 *
 * stdout, one JSON object per line (synchronous on pipes, so every line before the kill arrives):
 *   {"event":"welcome"} · {"event":"served",kind,round,modelChecksum,checksum} · {"event":"dying"|"hanging",at,round}
 *   · {"event":"job_end",status,rounds}
 */
import { ClientEngine } from '../../../client/engine/index.ts';
import { SocketIoClientTransport } from '../../../client/transport/socketio.ts';
import { weightsChecksum } from '../../../shared/model/index.ts';
import type { ServerMessage } from '../../../shared/protocol/index.ts';
import { FixedTask, type VictimDeath } from './task.ts';
import { testIdentity } from '../../support/identity.ts';

interface Args {
  url: string;
  clientId: string;
  index: number;
  die?: { at: VictimDeath; round: number; how: 'kill' | 'hang' };
}

const args = JSON.parse(process.argv[2]) as Args;
const say = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);

function dieIf(at: VictimDeath, round: number): void {
  if (args.die?.at !== at || args.die.round !== round) return;
  if (args.die.how === 'hang') {
    // Frozen with its connection open: the coordinator hears nothing until a deadline.
    say({ event: 'hanging', at, round });
    process.kill(process.pid, 'SIGSTOP');
    return;
  }
  say({ event: 'dying', at, round });
  process.kill(process.pid, 'SIGKILL');
}

class VictimTask extends FixedTask {
  override async fit(...a: Parameters<FixedTask['fit']>) {
    // Die mid-training (SecAgg's key exchange is under way by then).
    await new Promise((r) => setTimeout(r, 30));
    dieIf('fit', a[3]);
    return super.fit(...a);
  }
}

const task = new VictimTask(args.index);
const transport = new SocketIoClientTransport({ url: args.url, reconnect: { initialDelayMs: 100, maxDelayMs: 300 } });
const engine = new ClientEngine({ clientId: args.clientId, identity: testIdentity(args.clientId), task, transport });
const handle = engine.onMessage.bind(engine);
let round = 0;
engine.onMessage = (msg: ServerMessage) => {
  if (msg.type === 'train' || msg.type === 'evaluate') {
    round = msg.round;
    say({ event: 'served', kind: msg.type, round: msg.round, modelChecksum: msg.modelChecksum, checksum: weightsChecksum(msg.vector) });
    if (msg.type === 'evaluate') dieIf('evaluate', msg.round);
  }
  if (msg.type === 'secagg_down') dieIf(msg.body.type as VictimDeath, msg.round);
  handle(msg);
};
engine.on('welcome', () => say({ event: 'welcome', round }));
engine.on('jobEnd', (end) => {
  say({ event: 'job_end', status: end.status, rounds: end.rounds });
  engine.stop();
  process.exit(0);
});
engine.start();
