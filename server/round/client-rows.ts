/**
 * The store's client rows (first/last seen, example count) from hellos, written in batches: a storm
 * of hellos costs one transaction per CLIENT_FLUSH_MS, not one fsync per hello. Bookkeeping only: a
 * failed write is logged and the clients may still take part (a failing store pauses the job at its
 * next commit).
 */
import type { Logger } from '../../shared/log.ts';
import type { CohortStore } from '../store/index.ts';
import type { Clock } from './clock.ts';

/** How long hellos' client rows may wait before they are written together, in one transaction. */
export const CLIENT_FLUSH_MS = 100;

export interface ClientInfo {
  numExamples?: number;
  lastSeen: number;
}

export class ClientRows {
  private readonly pending = new Map<string, ClientInfo>();
  private flushTimer: unknown;

  constructor(
    private readonly opts: {
      store: Pick<CohortStore, 'upsertClients'>;
      clock: Clock;
      log: Logger;
      /** Schedules a guarded timer (the engine's, so errors never escape to the event loop). */
      timer: (what: string, ms: number, fn: () => void) => unknown;
    },
  ) {}

  /** Queues a client's row; the batch is written within CLIENT_FLUSH_MS. */
  note(clientId: string, info: ClientInfo): void {
    const prev = this.pending.get(clientId);
    this.pending.set(clientId, { numExamples: info.numExamples ?? prev?.numExamples, lastSeen: info.lastSeen });
    if (this.flushTimer === undefined) this.flushTimer = this.opts.timer('client bookkeeping', CLIENT_FLUSH_MS, () => this.flush());
  }

  /** Writes the queued rows now (in one transaction). */
  flush(): void {
    if (this.flushTimer !== undefined) this.opts.clock.clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pending.size === 0) return;
    const entries = [...this.pending].map(([clientId, info]) => ({ clientId, ...info }));
    this.pending.clear();
    try {
      this.opts.store.upsertClients(entries);
    } catch (err) {
      this.opts.log.error({ err, clients: entries.length }, 'cannot record clients in the store');
    }
  }
}
