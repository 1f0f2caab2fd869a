/** Float32 vectors <-> little-endian bytes for BLOB columns, independent of the host's byte order. */
import { CohortError } from '../../shared/errors.ts';

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Bytes to bind as a BLOB. On little-endian hosts this is a view of `v`, not a copy. */
export function float32ToBlob(v: Float32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  const out = Buffer.allocUnsafe(v.byteLength);
  for (let i = 0; i < v.length; i++) out.writeFloatLE(v[i], 4 * i);
  return out;
}

/** A fresh, aligned Float32Array holding the BLOB's values. */
export function blobToFloat32(blob: Uint8Array): Float32Array<ArrayBuffer> {
  if (blob.byteLength % 4 !== 0) {
    throw new CohortError('CORRUPT', `weights BLOB has ${blob.byteLength} bytes, not a multiple of 4`);
  }
  const out = new Float32Array(blob.byteLength / 4);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(blob);
  } else {
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  }
  return out;
}

export function bytesToBlob(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** A plain Uint8Array copy (not a Buffer sharing SQLite's memory or Node's pool). */
export function blobToBytes(blob: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(blob);
}
