import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Emitter } from './events.ts';

interface Events {
  tick: [number];
  pair: [string, number];
  error: [Error];
}

describe('Emitter (the isomorphic EventEmitter subset)', () => {
  it('behaves like Node’s EventEmitter for on / once / off / emit / listenerCount', () => {
    // The same script against ours and against Node's (typed as ours: the signatures differ only in generality).
    for (const make of [() => new Emitter<Events>(), () => new EventEmitter<Events>() as unknown as Emitter<Events>]) {
      const e = make();
      const seen: string[] = [];
      const a = (n: number) => seen.push(`a${n}`);
      const b = (n: number) => seen.push(`b${n}`);
      expect(e.emit('tick', 0)).toBe(false);
      e.on('tick', a);
      e.once('tick', b);
      e.on('pair', (s, n) => seen.push(`${s}${n}`));
      expect(e.listenerCount('tick')).toBe(2);
      expect(e.emit('tick', 1)).toBe(true);
      e.emit('tick', 2);
      e.emit('pair', 'p', 3);
      e.off('tick', a);
      e.emit('tick', 4);
      // once removed by off before it fired
      e.once('tick', b);
      e.off('tick', b);
      expect(e.emit('tick', 5)).toBe(false);
      // a listener added during an emit does not run in that emit
      e.on('tick', () => e.on('tick', a));
      e.emit('tick', 6);
      e.removeAllListeners();
      expect(e.listenerCount('tick')).toBe(0);
      expect(seen).toEqual(['a1', 'b1', 'a2', 'p3']);
      expect(() => e.emit('error', new Error('boom'))).toThrow('boom');
    }
  });
});
