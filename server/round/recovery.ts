/**
 * How the engine tells its own faults apart, and the guard every transition runs in. A client's bad
 * message is a typed CohortError and is answered; a failure of the SQLite store (full disk, lock held
 * elsewhere, I/O error, read-only or corrupt file) pauses the job, since retrying would loop; anything
 * else is a bug of ours: the attempt in flight is aborted and retried. The engine owns the state: the
 * guard decides which of its recoveries to call (`RecoveryHost`), never touches the state itself.
 */
import type { Logger } from '../../shared/log.ts';
import { boundText } from '../../shared/protocol/index.ts';
import type { Clock } from './clock.ts';

/** An error of the SQLite store itself — not a constraint our own inputs broke. */
export function isStoreFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') && !code.startsWith('SQLITE_CONSTRAINT');
}

/** An error's message, bounded, for reasons stored and sent. */
export function errorText(err: unknown): string {
  return boundText(err instanceof Error ? err.message : String(err), 300);
}

/** What the guard asks of the engine when a transition throws. */
export interface RecoveryHost {
  clock: Clock;
  log: Logger;
  /** How soon a refused store write is tried again (ms). */
  retryMs: number;
  /** The job reached a final state: an error now is only logged. */
  finished(): boolean;
  /** The round in flight (training or evaluation), for the log. */
  roundInFlight(): number | undefined;
  /** The store failed: hold the job with this reason. */
  pause(reason: string): void;
  /**
   * An internal error in `what`: abandon whatever is in flight (nothing of it was published) so that
   * it is retried; may throw, and then the job fails.
   */
  abandon(what: string, err: unknown): void;
  /** Even recovering threw: end the job as failed. */
  fail(reason: string): void;
}

export class Guard {
  constructor(private readonly host: RecoveryHost) {}

  /** Runs one step of a transition; an error there never escapes (see `recover`). */
  run(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.recover(what, err);
    }
  }

  /** A timer whose callback runs as a guarded transition (an error there never escapes to the event loop). */
  timer(what: string, ms: number, fn: () => void): unknown {
    return this.host.clock.setTimeout(() => this.run(what, fn), ms);
  }

  /**
   * Puts the engine back in a consistent state after an unexpected error in `what`: a failing store
   * pauses the job; otherwise the attempt in flight (nothing of it was published) is abandoned and
   * retried, or the job fails if even that throws. Logged at error level: these are our faults.
   */
  recover(what: string, err: unknown): void {
    const { host } = this;
    if (host.finished()) return void host.log.error({ err, what }, 'error after the job finished');
    if (isStoreFailure(err)) {
      host.log.error({ err, what }, 'the store failed; pausing the job');
      return host.pause(`the store failed (${what}): ${errorText(err)}`);
    }
    host.log.error({ err, what, round: host.roundInFlight() }, 'internal error; recovering');
    try {
      host.abandon(what, err);
    } catch (again) {
      host.log.error({ err: again, what }, 'recovery failed; the job fails');
      host.fail(`internal error (${what}): ${errorText(err)}`);
    }
  }

  /**
   * Writes to the store until it takes the write (`what`, e.g. "record the pause"): while it refuses
   * (busy, full), tries again every `host.retryMs` for as long as `wanted()` holds. The retry timer is
   * handed to `keep` (the engine's wait timer, so that resuming cancels it), `keep(undefined)` when it fires.
   */
  persist(what: string, write: () => void, wanted: () => boolean, keep: (timer: unknown) => void, first = true): void {
    if (!wanted()) return;
    try {
      write();
    } catch (err) {
      if (first) this.host.log.error({ err }, `cannot ${what} in the store yet; retrying`);
      const retry = (): void => {
        keep(undefined);
        this.persist(what, write, wanted, keep, false);
      };
      keep(this.timer(what, this.host.retryMs, retry));
    }
  }
}
