/**
 * What a client signs at hello (DESIGN.md §4): the server's fresh challenge for this connection, the
 * server's identity as the client sees it, the job, the protocol version, and who the client says it is
 * (id and public key). Domain-separated and length-prefixed (`frameFields`), so a signature made for
 * one connection, server, job or purpose is worth nothing for another: a recorded hello cannot be
 * replayed (the challenge is per connection), relayed to another server (its identity is inside), or
 * confused with a SecAgg advertisement or a certificate.
 */
import { frameFields, fromBase64Url, toBase64Url } from '../crypto/bytes.ts';
import { ed25519Sign, ed25519Verify, type Ed25519KeyPair } from '../crypto/ed25519.ts';

const HELLO_TAG = 'cohort/hello/v1';
/** Bytes of the per-connection challenge. */
export const CHALLENGE_BYTES = 32;

export interface HelloTranscript {
  /** The server's challenge, base64url. */
  nonce: string;
  /** The server's identity: its TLS certificate fingerprint (`sha256:…`) or the identity string it announced. */
  server: string;
  jobId: string;
  protocolVersion: number;
  clientId: string;
  /** The client's Ed25519 public key, base64url. */
  publicKey: string;
}

export function helloTranscriptBytes(t: HelloTranscript): Uint8Array {
  return frameFields(HELLO_TAG, fromBase64Url(t.nonce), t.server, t.jobId, t.protocolVersion, t.clientId, fromBase64Url(t.publicKey));
}

/** The client's signature over its hello transcript, base64url. */
export function signHello(key: Ed25519KeyPair, t: Omit<HelloTranscript, 'publicKey'>): { publicKey: string; signature: string } {
  const publicKey = toBase64Url(key.publicKey);
  return { publicKey, signature: toBase64Url(ed25519Sign(key, helloTranscriptBytes({ ...t, publicKey }))) };
}

/** Whether `signature` is the key's over the transcript (false for any malformed input). */
export function verifyHello(t: HelloTranscript, signature: string): boolean {
  try {
    return ed25519Verify(fromBase64Url(t.publicKey), helloTranscriptBytes(t), fromBase64Url(signature));
  } catch {
    return false;
  }
}

/**
 * A complete signed hello answering `challenge` (for raw protocol clients: the load generator, tests;
 * the client engine builds its own): the fields of the protocol's hello message.
 */
export function signedHello(
  key: Ed25519KeyPair,
  challenge: { nonce: string; server: string; jobId: string; protocolVersion: number },
  clientId: string,
  extra: { numExamples?: number; backend?: string } = {},
): { type: 'hello'; protocolVersion: number; clientId: string; publicKey: string; signature: string; server: string; numExamples?: number; backend?: string } {
  const signed = signHello(key, { nonce: challenge.nonce, server: challenge.server, jobId: challenge.jobId, protocolVersion: challenge.protocolVersion, clientId });
  return { type: 'hello', protocolVersion: challenge.protocolVersion, clientId, ...extra, ...signed, server: challenge.server };
}
