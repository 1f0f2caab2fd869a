/**
 * Authenticated encryption of the Shamir shares one client sends another through the server
 * (Bonawitz et al. CCS 2017, §4, Round 1 ShareKeys: "AE.enc(KA.agree(c_u^SK, c_v^PK), u‖v‖s_u^SK share‖b_u share)").
 *
 * Scheme: XSalsa20-Poly1305 (NaCl `crypto_secretbox`, tweetnacl `nacl.secretbox`), 32-byte key,
 * 24-byte random nonce, 16-byte Poly1305 tag. Sealed format: nonce ‖ secretbox output.
 * secretbox has no associated-data input, so the context is bound through the key instead: every key
 * comes from HKDF over the X25519 secret with the round transcript as salt and (purpose, sender,
 * receiver) as info (keys.ts), so a ciphertext is valid for exactly one (job, round attempt, sender,
 * receiver); the plaintext repeats sender and receiver as Bonawitz's does, and the receiver checks them.
 * The random 192-bit nonce makes nonce reuse negligible even if a key were used many times.
 *
 * Portable only: shares are a few hundred bytes, so node:crypto would save nothing measurable.
 * Tests: round trip, every single-bit flip of nonce/ciphertext/tag rejected, wrong key rejected.
 */
import nacl from 'tweetnacl';
import { randomBytes } from './bytes.ts';

export const AEAD_KEY_BYTES = nacl.secretbox.keyLength; // 32
export const AEAD_NONCE_BYTES = nacl.secretbox.nonceLength; // 24
export const AEAD_TAG_BYTES = nacl.secretbox.overheadLength; // 16
export const AEAD_OVERHEAD = AEAD_NONCE_BYTES + AEAD_TAG_BYTES;

export class AeadError extends Error {
  override readonly name = 'AeadError';
}

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== AEAD_KEY_BYTES) throw new AeadError(`aead: key must be ${AEAD_KEY_BYTES} bytes`);
}

/** nonce ‖ XSalsa20-Poly1305(key, nonce, plaintext). The nonce is random unless given (tests). */
export function aeadSeal(key: Uint8Array, plaintext: Uint8Array, nonce: Uint8Array = randomBytes(AEAD_NONCE_BYTES)): Uint8Array {
  checkKey(key);
  if (nonce.length !== AEAD_NONCE_BYTES) throw new AeadError(`aead: nonce must be ${AEAD_NONCE_BYTES} bytes`);
  const box = nacl.secretbox(plaintext, nonce, key);
  const out = new Uint8Array(AEAD_NONCE_BYTES + box.length);
  out.set(nonce);
  out.set(box, AEAD_NONCE_BYTES);
  return out;
}

/** The plaintext, or AeadError if the tag does not verify (tampered, truncated or wrong key). */
export function aeadOpen(key: Uint8Array, sealed: Uint8Array): Uint8Array {
  checkKey(key);
  if (!(sealed instanceof Uint8Array) || sealed.length < AEAD_OVERHEAD) throw new AeadError('aead: ciphertext too short');
  const opened = nacl.secretbox.open(sealed.subarray(AEAD_NONCE_BYTES), sealed.subarray(0, AEAD_NONCE_BYTES), key);
  if (!opened) throw new AeadError('aead: authentication failed');
  return opened;
}
