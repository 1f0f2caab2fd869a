/** The shapes the hostile-input generators produce and the connections of tap.ts judge (shared by both). */

/**
 * `error`: at least one typed error (optionally one of `codes`), or the connection dropped.
 * `silent`: no error (frames the protocol documents as dropped silently, honest messages).
 * `drop`: the server must close the connection. `any`: no expectation beyond the global ones
 * (raw engine.io garbage: close or ignore, never crash).
 */
export type Expect =
  | { kind: 'error'; codes?: readonly string[]; allowDrop?: boolean }
  | { kind: 'silent' }
  | { kind: 'drop' }
  | { kind: 'any' };

/** One socket.io emission. */
export interface Emit {
  event: string;
  args: unknown[];
}

export interface HostileInput {
  category: string;
  /** Human-readable description for failure messages (what was sent). */
  label: string;
  emits: Emit[];
  expect: Expect;
  /**
   * Send with nothing else in flight on the connection. Socket.IO runs `onAny` listeners at once but
   * the `head` handler on the next tick, so the error for an unknown event can overtake the answer to
   * an earlier probe; such inputs go alone.
   */
  serial?: boolean;
}

export interface RawInput {
  category: string;
  label: string;
  /** Frames sent after the engine.io handshake (`open` packet) and, if `connect`, the socket.io CONNECT. */
  frames: (string | Buffer)[];
  connect: boolean;
  /** Send a socket.io CONNECT again after the frames (they left the namespace). */
  reconnect?: boolean;
}
