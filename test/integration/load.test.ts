/**
 * The short version of the load bench (bench/load.ts): 1,000 raw protocol clients in two generator
 * processes hold Socket.IO connections to one coordinator for about a minute while rounds of 100 run.
 * Asserts behaviour only (everyone connected and welcomed, nobody dropped, rounds committed, none
 * aborted, RSS sampled); the timing figures are printed, never asserted. `npm run bench -- load`
 * measures them at 10,000 clients.
 */
import { describe, expect, it } from 'vitest';
import { openFileLimit, runLoad, FD_RESERVE } from '../../bench/load.ts';
import { resultLines } from '../../bench/load.report.ts';

const CLIENTS = 1_000;

describe('load: 1,000 Socket.IO clients on one coordinator', () => {
  it.skipIf(openFileLimit() < CLIENTS + FD_RESERVE)(
    'holds every connection for a minute of rounds',
    async () => {
      const r = await runLoad({
        clients: CLIENTS,
        cohort: 100,
        generators: 2,
        durationMs: 50_000,
        trainMs: 200,
        // One evaluation now and then exercises the evaluate / eval_result path too.
        evalEvery: 20,
        connectTimeoutMs: 40_000,
      });
      for (const line of resultLines(r)) console.log(JSON.stringify({ ...line, series: undefined }));

      expect(r.connect.welcomed).toBe(CLIENTS);
      expect(r.connect.registered).toBe(CLIENTS);
      expect(r.connect.connectErrors).toBe(0);
      expect(r.connections.heldAtEnd).toBe(CLIENTS);
      expect(r.connections.clientDisconnects).toBe(0);
      expect(r.connections.serverDisconnects).toBe(0);
      expect(r.connections.reconnects).toBe(0);
      expect(r.connections.serverErrors).toEqual({});
      expect(r.connections.frameErrors).toEqual({});
      expect(r.connections.protocolErrors).toBe(0);
      expect(r.rounds.committed).toBeGreaterThanOrEqual(5);
      expect(r.rounds.aborted).toBe(0);
      expect(r.rounds.jobStatus).not.toBe('finished');
      expect(r.messages.evaluates).toBeGreaterThan(0);
      expect(r.messages.updates).toBeGreaterThanOrEqual(r.rounds.committed * 100);
      expect(r.rss.samples.length).toBeGreaterThanOrEqual(30);
      expect(r.rss.samples.every((s) => s.rssMb > 0)).toBe(true);
    },
    110_000,
  );
});
