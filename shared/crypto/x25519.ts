/**
 * X25519 Diffie–Hellman (RFC 7748 §5, §6.1) for SecAgg's two per-round key pairs (share encryption
 * and mask agreement; Bonawitz et al. CCS 2017, §4, Round 0 AdvertiseKeys).
 *
 * Two byte-compatible implementations: tweetnacl's `scalarMult` (portable) and node:crypto's
 * `diffieHellman` with raw keys wrapped in PKCS#8/SPKI DER (fast path, ~20× faster). Both clamp the
 * scalar (§5 decodeScalar25519) and mask the top bit of u (§5 decodeUCoordinate). Both reject an
 * all-zero shared secret (a small-order peer key; the check RFC 7748 §6.1 allows), so they also agree
 * on which inputs fail. Tests: RFC 7748 §5.2 (two vectors and the 1 / 1000-iteration chain) and §6.1,
 * on both paths, and the two paths against each other on random keys.
 */
import nacl from 'tweetnacl';
import { concatBytes, fromBase64Url, hexToBytes, randomBytes, toBase64Url } from './bytes.ts';
import { asUint8, nodeCrypto, type NodeCrypto, type NodeKeyObject } from './node.ts';

export const X25519_KEY_BYTES = 32;

export interface X25519KeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** The DH operation: scalar (secret key) times the peer's u-coordinate. */
export interface X25519Impl {
  publicKey(secretKey: Uint8Array): Uint8Array;
  /**
   * X25519(secretKey, peerPublicKey). `ownPublicKey` (the public key of `secretKey`, if the caller
   * has it) only lets node:crypto import the key as JWK, ~10× faster than PKCS#8; it never changes
   * the result.
   */
  sharedSecret(secretKey: Uint8Array, peerPublicKey: Uint8Array, ownPublicKey?: Uint8Array): Uint8Array;
  /** A fresh random key pair. */
  generate(): X25519KeyPair;
}

export class X25519Error extends Error {
  override readonly name = 'X25519Error';
}

function checkKey(bytes: Uint8Array, what: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== X25519_KEY_BYTES) {
    throw new X25519Error(`x25519: ${what} must be ${X25519_KEY_BYTES} bytes`);
  }
}

function rejectZero(shared: Uint8Array): Uint8Array {
  let acc = 0;
  for (let i = 0; i < shared.length; i++) acc |= shared[i];
  if (acc === 0) throw new X25519Error('x25519: all-zero shared secret (small-order public key)');
  return shared;
}

export const x25519Portable: X25519Impl = {
  publicKey(secretKey) {
    checkKey(secretKey, 'secret key');
    return nacl.scalarMult.base(secretKey);
  },
  sharedSecret(secretKey, peerPublicKey) {
    checkKey(secretKey, 'secret key');
    checkKey(peerPublicKey, 'public key');
    return rejectZero(nacl.scalarMult(secretKey, peerPublicKey));
  },
  generate() {
    const secretKey = randomBytes(X25519_KEY_BYTES);
    return { secretKey, publicKey: nacl.scalarMult.base(secretKey) };
  },
};

// RFC 8410 §7 / §10: PKCS#8 DER prefix for id-X25519 (OID 1.3.101.110).
const PKCS8_PREFIX = hexToBytes('302e020100300506032b656e04220420');

function nodeImpl(crypto: NodeCrypto): X25519Impl {
  // OpenSSL's PKCS#8 decoder costs ~0.8 ms per key; a JWK (RFC 8037 §2: d = private key, x = public
  // key) imports in ~0.07 ms, so we use it whenever the public key is known.
  const importPriv = (secretKey: Uint8Array, publicKey?: Uint8Array): NodeKeyObject =>
    publicKey
      ? crypto.createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: toBase64Url(secretKey), x: toBase64Url(publicKey) }, format: 'jwk' })
      : crypto.createPrivateKey({ key: concatBytes(PKCS8_PREFIX, secretKey), format: 'der', type: 'pkcs8' });
  // A SecAgg client uses each secret key in ~2k agreements per round: keep its imported KeyObject for
  // as long as the key's array lives (WeakMap), re-importing if the array's bytes changed (e.g. wiped).
  const privCache = new WeakMap<Uint8Array, { fingerprint: number; key: NodeKeyObject }>();
  const priv = (secretKey: Uint8Array, publicKey?: Uint8Array): NodeKeyObject => {
    const fingerprint = fnv1a(secretKey);
    const hit = privCache.get(secretKey);
    if (hit && hit.fingerprint === fingerprint) return hit.key;
    const key = importPriv(secretKey, publicKey);
    privCache.set(secretKey, { fingerprint, key });
    return key;
  };
  return {
    publicKey(secretKey) {
      checkKey(secretKey, 'secret key');
      const spki = asUint8(crypto.createPublicKey(priv(secretKey)).export({ format: 'der', type: 'spki' }));
      return spki.slice(spki.length - X25519_KEY_BYTES);
    },
    sharedSecret(secretKey, peerPublicKey, ownPublicKey) {
      checkKey(secretKey, 'secret key');
      checkKey(peerPublicKey, 'public key');
      if (ownPublicKey) checkKey(ownPublicKey, 'own public key');
      const publicKey = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: toBase64Url(peerPublicKey) }, format: 'jwk' });
      let shared: Uint8Array;
      try {
        shared = asUint8(crypto.diffieHellman({ privateKey: priv(secretKey, ownPublicKey), publicKey })).slice();
      } catch {
        // OpenSSL refuses the all-zero result itself; report it as the portable path does.
        throw new X25519Error('x25519: all-zero shared secret (small-order public key)');
      }
      return rejectZero(shared);
    },
    generate() {
      // OpenSSL's generator draws from its CSPRNG; the JWK export gives the raw d and x.
      const jwk = crypto.generateKeyPairSync('x25519').privateKey.export({ format: 'jwk' });
      return { secretKey: fromBase64Url(jwk.d!), publicKey: fromBase64Url(jwk.x) };
    },
  };
}

/** FNV-1a over the bytes (change detection for the key cache, not a security function). */
function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

const node = nodeCrypto();
/** node:crypto implementation, or undefined outside Node. */
export const x25519Node: X25519Impl | undefined = node ? nodeImpl(node) : undefined;

const impl: X25519Impl = x25519Node ?? x25519Portable;

/** A fresh key pair from the CSPRNG, or the key pair of a given 32-byte secret key. */
export function x25519KeyPair(secretKey?: Uint8Array): X25519KeyPair {
  return secretKey ? { secretKey, publicKey: impl.publicKey(secretKey) } : impl.generate();
}

export function x25519PublicKey(secretKey: Uint8Array): Uint8Array {
  return impl.publicKey(secretKey);
}

/** X25519(own secret key, peerPublicKey) (RFC 7748 §6.1); throws X25519Error on an all-zero result. */
export function x25519SharedSecret(own: X25519KeyPair | Uint8Array, peerPublicKey: Uint8Array): Uint8Array {
  return own instanceof Uint8Array
    ? impl.sharedSecret(own, peerPublicKey)
    : impl.sharedSecret(own.secretKey, peerPublicKey, own.publicKey);
}
