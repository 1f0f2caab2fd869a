// Known exception to the isomorphic typecheck (tsconfig.shared.json), to be removed:
// TODO(issue 12): client/engine/engine.ts still imports EventEmitter from 'node:events'. When it uses
// shared/events.ts's Emitter (same API subset, isomorphic), delete this file, its entry in
// tsconfig.shared.json and the exception in scripts/check-imports.ts.
declare module 'node:events' {
  type Listener<Args extends unknown[]> = (...args: Args) => void;
  export class EventEmitter<Events extends { [K in keyof Events]: unknown[] }> {
    on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): this;
    once<K extends keyof Events>(event: K, listener: Listener<Events[K]>): this;
    off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): this;
    emit<K extends keyof Events>(event: K, ...args: Events[K]): boolean;
    listenerCount<K extends keyof Events>(event: K): number;
    removeAllListeners<K extends keyof Events>(event?: K): this;
  }
}
