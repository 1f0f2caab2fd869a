/**
 * Time as the protocol engines see it: injectable, so tests drive deadlines with a manual clock and
 * every fault replays deterministically (DESIGN.md §1: protocol logic never reads the wall clock).
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

interface Pending {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * A clock that moves only when told: `advance(ms)` runs every timer due by then, in deadline order
 * (ties in scheduling order), including timers those callbacks schedule within the window.
 */
export class ManualClock implements Clock {
  private t: number;
  private nextId = 1;
  private readonly timers = new Map<number, Pending>();

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { id, at: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Timers not yet run. */
  get pending(): number {
    return this.timers.size;
  }

  /** Jumps to the earliest pending timer and runs it (and any due at the same instant); false if none. */
  runNext(): boolean {
    let at: number | undefined;
    for (const p of this.timers.values()) if (at === undefined || p.at < at) at = p.at;
    if (at === undefined) return false;
    this.advance(at - this.t);
    return true;
  }

  /** Moves time forward by `ms`, running due timers; returns how many ran. */
  advance(ms: number): number {
    const end = this.t + ms;
    let ran = 0;
    for (;;) {
      let next: Pending | undefined;
      for (const p of this.timers.values()) if (p.at <= end && (!next || p.at < next.at || (p.at === next.at && p.id < next.id))) next = p;
      if (!next) break;
      this.timers.delete(next.id);
      this.t = next.at;
      next.fn();
      ran++;
    }
    this.t = end;
    return ran;
  }
}
