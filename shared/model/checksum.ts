/**
 * A short fingerprint of a weight vector, for logs, checkpoints and "do we have the same model" checks.
 *
 * Definition: SHA-512 over the vector's IEEE-754 float32 values serialised little-endian, truncated to
 * its first 32 bytes, as 64 lowercase hex characters.
 *
 * Two implementations of the same function: Node's native hash (node:crypto, ~1 GB/s; reached through
 * `process.getBuiltinModule`, so this module has no static Node import and stays isomorphic) and
 * tweetnacl's synchronous SHA-512 (~20 MB/s) where Node's is unavailable (browsers). They agree
 * bit for bit; a test checks it.
 */
import nacl from 'tweetnacl';

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

type Sha512 = (bytes: Uint8Array) => Uint8Array;

interface NodeCrypto {
  createHash(alg: string): { update(b: Uint8Array): { digest(): Uint8Array } };
}

function nativeSha512(): Sha512 | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const crypto = proc?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined;
  if (!crypto) return undefined;
  return (bytes) => crypto.createHash('sha512').update(bytes).digest();
}

/** Portable SHA-512 (tweetnacl). */
export const sha512Portable: Sha512 = (bytes) => nacl.hash(bytes);
const sha512: Sha512 = nativeSha512() ?? sha512Portable;

function littleEndianBytes(v: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  const out = new Uint8Array(v.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < v.length; i++) view.setFloat32(i * 4, v[i], true);
  return out;
}

function hex32(digest: Uint8Array): string {
  let hex = '';
  for (let i = 0; i < 32; i++) hex += digest[i].toString(16).padStart(2, '0');
  return hex;
}

export function weightsChecksum(v: Float32Array): string {
  return hex32(sha512(littleEndianBytes(v)));
}

/** The same checksum through the portable implementation only (tests, cross-checks). */
export function weightsChecksumPortable(v: Float32Array): string {
  return hex32(sha512Portable(littleEndianBytes(v)));
}
