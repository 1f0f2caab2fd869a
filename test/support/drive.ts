/**
 * Runs protocol engines on a ManualClock to completion, deterministically: flush every queued
 * microtask and immediate (message delivery over the in-memory transport, resolved client tasks,
 * synchronous SQLite), and only when nothing else can happen, jump to the next timer. A test about
 * deadlines then takes no wall-clock time and replays the same way on a loaded machine.
 *
 * The caller awaits its own promise (returned as is), so it resumes exactly when the event happens,
 * not some turns later; the clock is pumped in the background until then.
 */
import type { ManualClock } from '../../shared/clock.ts';

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

export function drive<T>(clock: ManualClock, until: Promise<T>, maxTimers = 10_000): Promise<T> {
  let settled = false;
  until.then(
    () => (settled = true),
    () => (settled = true),
  );
  void (async () => {
    for (let timers = 0; !settled; ) {
      // A few turns: a delivery may schedule another delivery in an immediate.
      for (let i = 0; i < 5 && !settled; i++) await flush();
      if (settled) return;
      if (!clock.runNext()) return console.error('drive: nothing left to run and the awaited event never came (stalled)');
      if (++timers > maxTimers) return console.error(`drive: more than ${maxTimers} timers fired (a timer loop?)`);
    }
  })();
  return until;
}

/** Lets queued deliveries happen without moving the clock. */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await flush();
}
