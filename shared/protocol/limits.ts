/** Size limits of the wire protocol. Both sides enforce them; the server announces its own at welcome. */
export interface WireLimits {
  /** Largest vector payload accepted in one message, in bytes. */
  maxPayloadBytes: number;
  /** Size of one binary chunk; must stay below Socket.IO's `maxHttpBufferSize`. */
  chunkBytes: number;
  /** Largest JSON header (the message without its vector), in bytes of its JSON text. */
  maxHeaderBytes: number;
  /** How many partially received vectors one peer may have in flight. */
  maxOpenStreams: number;
}

export const DEFAULT_LIMITS: WireLimits = {
  maxPayloadBytes: 64 * 1024 * 1024,
  chunkBytes: 256 * 1024,
  maxHeaderBytes: 256 * 1024,
  maxOpenStreams: 4,
};
