/**
 * A short fingerprint of a weight vector, for logs, checkpoints and "do we have the same model" checks.
 *
 * Definition: SHA-512 (tweetnacl, synchronous and isomorphic) over the vector's IEEE-754 float32 values
 * serialised little-endian, truncated to its first 32 bytes, as 64 lowercase hex characters.
 */
import nacl from 'tweetnacl';

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function littleEndianBytes(v: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  const out = new Uint8Array(v.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < v.length; i++) view.setFloat32(i * 4, v[i], true);
  return out;
}

export function weightsChecksum(v: Float32Array): string {
  const digest = nacl.hash(littleEndianBytes(v));
  let hex = '';
  for (let i = 0; i < 32; i++) hex += digest[i].toString(16).padStart(2, '0');
  return hex;
}
