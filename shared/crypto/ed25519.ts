/**
 * Ed25519 signatures (RFC 8032 §5.1) for client identities: AdvertiseKeys and ConsistencyCheck are
 * signed (Bonawitz et al. CCS 2017, §4, Rounds 0 and 3, active-adversary variant).
 *
 * Two byte-compatible implementations: tweetnacl (`nacl.sign`, portable) and node:crypto `sign` /
 * `verify` with raw keys wrapped in PKCS#8/SPKI DER. Ed25519 signing is deterministic, so both
 * produce identical signatures. Verification differs between libraries only on non-canonical input,
 * so before either runs we apply the RFC 8032 §5.1.7 check that S < L ourselves; with it both paths
 * accept and reject the same signatures. Tests: RFC 8032 §7.1 TEST 1–3 on both paths, cross-checks.
 */
import nacl from 'tweetnacl';
import { concatBytes, hexToBytes, randomBytes, toBase64Url } from './bytes.ts';
import { asUint8, nodeCrypto, type NodeCrypto } from './node.ts';

export const ED25519_SEED_BYTES = 32;
export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;

/** An identity key: the 32-byte RFC 8032 private key ("seed") and its public key. */
export interface Ed25519KeyPair {
  publicKey: Uint8Array;
  seed: Uint8Array;
}

export interface Ed25519Impl {
  publicKey(seed: Uint8Array): Uint8Array;
  /** `publicKey` (of `seed`, if known) only speeds up node:crypto's key import; it never changes the result. */
  sign(seed: Uint8Array, message: Uint8Array, publicKey?: Uint8Array): Uint8Array;
  /** Structural checks (lengths, S < L) are done by the caller. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}

function checkSeed(seed: Uint8Array): void {
  if (!(seed instanceof Uint8Array) || seed.length !== ED25519_SEED_BYTES) {
    throw new TypeError(`ed25519: private key must be ${ED25519_SEED_BYTES} bytes`);
  }
}

export const ed25519Portable: Ed25519Impl = {
  publicKey(seed) {
    checkSeed(seed);
    return nacl.sign.keyPair.fromSeed(seed).publicKey;
  },
  sign(seed, message) {
    checkSeed(seed);
    return nacl.sign.detached(message, nacl.sign.keyPair.fromSeed(seed).secretKey);
  },
  verify(publicKey, message, signature) {
    return nacl.sign.detached.verify(message, signature, publicKey);
  },
};

// RFC 8410 §7 / §10: PKCS#8 DER prefix for id-Ed25519 (OID 1.3.101.112).
const PKCS8_PREFIX = hexToBytes('302e020100300506032b657004220420');

function nodeImpl(crypto: NodeCrypto): Ed25519Impl {
  // JWK import (RFC 8037 §2) is ~10× cheaper than OpenSSL's DER decoders; used when the public key is known.
  const priv = (seed: Uint8Array, publicKey?: Uint8Array) =>
    publicKey
      ? crypto.createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: toBase64Url(seed), x: toBase64Url(publicKey) }, format: 'jwk' })
      : crypto.createPrivateKey({ key: concatBytes(PKCS8_PREFIX, seed), format: 'der', type: 'pkcs8' });
  return {
    publicKey(seed) {
      checkSeed(seed);
      const spki = asUint8(crypto.createPublicKey(priv(seed)).export({ format: 'der', type: 'spki' }));
      return spki.slice(spki.length - ED25519_PUBLIC_KEY_BYTES);
    },
    sign(seed, message, publicKey) {
      checkSeed(seed);
      return asUint8(crypto.sign(null, message, priv(seed, publicKey))).slice();
    },
    verify(publicKey, message, signature) {
      try {
        const key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: toBase64Url(publicKey) }, format: 'jwk' });
        return crypto.verify(null, message, key, signature);
      } catch {
        return false; // not a valid point encoding
      }
    },
  };
}

const node = nodeCrypto();
/** node:crypto implementation, or undefined outside Node. */
export const ed25519Node: Ed25519Impl | undefined = node ? nodeImpl(node) : undefined;

const impl: Ed25519Impl = ed25519Node ?? ed25519Portable;

// RFC 8032 §5.1: L = 2^252 + 27742317777372353535851937790883648493, little-endian bytes.
const L_LE = hexToBytes('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010');

/** RFC 8032 §5.1.7 step 1: the integer S (last 32 bytes, little-endian) must satisfy 0 ≤ S < L. */
export function isCanonicalS(signature: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    const s = signature[32 + i];
    if (s < L_LE[i]) return true;
    if (s > L_LE[i]) return false;
  }
  return false; // S == L
}

/**
 * Encodings of the points of order 1, 2, 4 and 8 (and their non-canonical forms y ≥ p), bit 255 (x's
 * sign) ignored: the same set as libsodium's `has_small_order`; see Chalkias, Garillot, Nikolaenko,
 * "Taming the many EdDSAs" (SSR 2020), §3. With such a public key, the cofactorless check
 * [S]B = R + [k]A holds for S = 0 and R = A whenever [k]A = −A — for a key of order 4, one message in
 * four — so a "signature" would prove nothing about who made it. We refuse those keys outright.
 */
const SMALL_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map(hexToBytes);

/** Whether a 32-byte public key encodes a point of small order (or a non-canonical form of one). */
export function hasSmallOrder(publicKey: Uint8Array): boolean {
  return SMALL_ORDER.some((p) => {
    for (let i = 0; i < 31; i++) if (p[i] !== publicKey[i]) return false;
    return (p[31] & 0x7f) === (publicKey[31] & 0x7f);
  });
}

export function ed25519KeyPair(seed: Uint8Array = randomBytes(ED25519_SEED_BYTES)): Ed25519KeyPair {
  return { seed, publicKey: impl.publicKey(seed) };
}

export function ed25519Sign(key: Ed25519KeyPair | Uint8Array, message: Uint8Array): Uint8Array {
  return key instanceof Uint8Array ? impl.sign(key, message) : impl.sign(key.seed, message, key.publicKey);
}

/** Checks lengths and S < L, then verifies with `using` (default: the fastest available implementation). */
export function ed25519Verify(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
  using: Ed25519Impl = impl,
): boolean {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_PUBLIC_KEY_BYTES) return false;
  if (!(signature instanceof Uint8Array) || signature.length !== ED25519_SIGNATURE_BYTES) return false;
  if (!isCanonicalS(signature)) return false;
  if (hasSmallOrder(publicKey)) return false;
  // A verification is a pure function of (key, message, signature): remember the valid triples (exact
  // bytes as the key; failures are never remembered). In deployment a process verifies each
  // signature once anyway; a simulation, where the k neighbours of a client and the server all check
  // the same signature in one process, verifies each once instead of k + 1 times.
  const memoKey = using === impl ? `${toBase64Url(publicKey)}.${toBase64Url(signature)}.${toBase64Url(message)}` : undefined;
  if (memoKey !== undefined && verified.has(memoKey)) return true;
  const ok = using.verify(publicKey, message, signature);
  if (ok && memoKey !== undefined) {
    if (verified.size >= VERIFIED_MEMO_SIZE) verified.clear();
    verified.add(memoKey);
  }
  return ok;
}

/** Valid (key, signature, message) triples already verified in this process (bounded; cleared when full). */
const verified = new Set<string>();
const VERIFIED_MEMO_SIZE = 16384;
