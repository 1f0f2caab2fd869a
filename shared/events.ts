/**
 * A small typed event emitter for isomorphic code: Node's EventEmitter is a Node built-in, and the
 * browser's EventTarget has no per-event payload types. It implements the part of Node's
 * `EventEmitter<Events>` API the engines use — `on`, `once`, `off`, `emit`, `listenerCount`,
 * `removeAllListeners` — with Node's semantics: listeners run synchronously in registration order (a
 * listener added or removed during an emit does not change that emit), `emit` returns whether anyone
 * listened, and an `'error'` event with no listener throws its argument.
 */

type Listener<Args extends unknown[]> = (...args: Args) => void;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- storage only; the public methods are typed per event
type StoredListener = ((...args: any[]) => void) & { original?: unknown };

export class Emitter<Events extends { [K in keyof Events]: unknown[] }> {
  private readonly listeners = new Map<keyof Events, StoredListener[]>();

  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): this {
    const list = this.listeners.get(event);
    if (list) list.push(listener);
    else this.listeners.set(event, [listener]);
    return this;
  }

  once<K extends keyof Events>(event: K, listener: Listener<Events[K]>): this {
    const wrapper: Listener<Events[K]> & { original?: Listener<Events[K]> } = (...args) => {
      this.off(event, wrapper);
      listener(...args);
    };
    wrapper.original = listener;
    return this.on(event, wrapper);
  }

  /** Removes the most recently added registration of `listener` (added by `on` or `once`). */
  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): this {
    const list = this.listeners.get(event);
    if (!list) return this;
    for (let i = list.length - 1; i >= 0; i--) {
      const l = list[i];
      if (l === listener || l.original === listener) {
        list.splice(i, 1);
        break;
      }
    }
    if (list.length === 0) this.listeners.delete(event);
    return this;
  }

  emit<K extends keyof Events>(event: K, ...args: Events[K]): boolean {
    const list = this.listeners.get(event);
    if (!list || list.length === 0) {
      if (event === 'error') throw args[0] instanceof Error ? args[0] : new Error(`unhandled 'error' event: ${String(args[0])}`);
      return false;
    }
    for (const l of list.slice()) l(...args);
    return true;
  }

  listenerCount<K extends keyof Events>(event: K): number {
    return this.listeners.get(event)?.length ?? 0;
  }

  removeAllListeners<K extends keyof Events>(event?: K): this {
    if (event === undefined) this.listeners.clear();
    else this.listeners.delete(event);
    return this;
  }
}
