/**
 * Secure aggregation with distributed DP over real Socket.IO on loopback: 20 clients, two of them
 * killed in the middle of the round (after the key exchange, before their masked input). The round
 * completes with the 18 survivors, the coordinator only ever received masked integers, and the ledger
 * records 18 survivors under the distributed trust assumption.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ClientEngine, type ClientTask } from '../../client/engine/index.ts';
import { SocketIoClientTransport } from '../../client/transport/socketio.ts';
import { startCoordinator, type Coordinator } from '../../server/coordinator.ts';
import { parseJobConfig } from '../../server/round/config.ts';
import type { ClientMessage } from '../../shared/protocol/index.ts';
import { testIdentity } from '../support/identity.ts';

const DIM = 8 * 4 + 4;

class FixedTask implements ClientTask {
  readonly numExamples = 25;
  beforeReturn?: () => Promise<void>;
  constructor(private readonly index: number) {}
  async fit() {
    await this.beforeReturn?.();
    const delta = Float32Array.from({ length: DIM }, (_, j) => 0.05 * Math.cos(j * (this.index + 1)));
    return { delta, numExamples: this.numExamples, metrics: {} };
  }
  async evaluate() {
    return { numExamples: 1, loss: 1, accuracy: 1 };
  }
}

describe('SecAgg + distributed DP over Socket.IO', () => {
  let coordinator: Coordinator;
  const engines: ClientEngine[] = [];
  afterAll(async () => {
    for (const e of engines) e.stop();
    await coordinator?.close();
  });

  it('completes the round with 18 of 20 when 2 are killed mid-round; the ledger records the survivors', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cohort-sa-io-'));
    const config = parseJobConfig({
      id: 'secure',
      model: { zoo: 'logreg', inputShape: [8], numClasses: 4 },
      rounds: 1,
      sampling: { mode: 'fixed', cohortSize: 20 },
      minClients: 20,
      minSurvivors: 15,
      evaluation: { every: 0 },
      timeouts: { trainMs: 20_000 },
      dp: { mode: 'distributed', noiseMultiplier: 0.8, clipNorm: 1 },
      secagg: { enabled: true, bits: 20, phaseTimeoutMs: 10_000 },
    });
    coordinator = await startCoordinator({ config, dataDir });
    // What the coordinator receives: count message kinds and payload bytes.
    const received: ClientMessage[] = [];
    const sink = coordinator.engine.sink;
    const onMessage = sink.onMessage.bind(sink);
    sink.onMessage = (connId, msg) => {
      received.push(msg);
      onMessage(connId, msg);
    };
    const transports: SocketIoClientTransport[] = [];
    for (let i = 0; i < 20; i++) {
      const task = new FixedTask(i);
      const transport = new SocketIoClientTransport({ url: coordinator.url, reconnect: { maxAttempts: 0 } });
      transports.push(transport);
      if (i >= 18) {
        // Killed after the key exchange began, before sending a masked input.
        task.beforeReturn = async () => {
          transport.close();
          await new Promise((r) => setTimeout(r, 20));
        };
      }
      const engine = new ClientEngine({ clientId: `device-${i}`, identity: testIdentity(`device-${i}`), task, transport });
      engine.start();
      engines.push(engine);
    }
    const summary = await coordinator.engine.whenFinished();
    expect(summary).toMatchObject({ status: 'completed', rounds: 1 });
    const [round] = coordinator.store.listRounds('secure');
    expect(round).toMatchObject({ cohortSize: 20, survivors: 18, dropouts: 2 });
    const ledger = coordinator.store.listLedger('secure').find((r) => r.status === 'committed')!;
    expect(ledger).toMatchObject({ mode: 'distributed', mechanism: 'distributed_discrete_gaussian', cohortSize: 20, survivors: 18 });
    expect(ledger.trust).toMatch(/at most t−1 colluding clients/);
    expect(received.some((m) => m.type === 'update')).toBe(false);
    const masked = received.filter((m) => m.type === 'secagg_up' && m.payload);
    expect(masked).toHaveLength(18);
    // 20-bit packed integers: ⌈36 · 20 / 8⌉ = 90 bytes each.
    expect(masked.every((m) => m.type === 'secagg_up' && m.payload!.length === 90)).toBe(true);
  });
});
