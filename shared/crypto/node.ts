/**
 * Access to Node's native crypto without a static `node:*` import, so `shared/` stays isomorphic:
 * `process.getBuiltinModule` (Node ≥ 20.16) returns the module in Node and is absent in browsers,
 * where every caller falls back to its portable implementation. Only the members we use are typed.
 */

export interface NodeKeyObject {
  readonly type: string;
  export(options: { format: 'der'; type: 'spki' | 'pkcs8' }): Uint8Array;
  export(options: { format: 'jwk' }): JsonWebKeyOkp;
}

/** RFC 8037 §2 octet key pair JWK (base64url fields). */
export interface JsonWebKeyOkp {
  kty: 'OKP';
  crv: 'X25519' | 'Ed25519';
  x: string;
  d?: string;
}

export interface NodeCipher {
  update(data: Uint8Array): Uint8Array;
  final(): Uint8Array;
}

export interface NodeCrypto {
  createPrivateKey(input: { key: Uint8Array; format: 'der'; type: 'pkcs8' } | { key: JsonWebKeyOkp; format: 'jwk' }): NodeKeyObject;
  createPublicKey(input: NodeKeyObject | { key: Uint8Array; format: 'der'; type: 'spki' } | { key: JsonWebKeyOkp; format: 'jwk' }): NodeKeyObject;
  generateKeyPairSync(type: 'x25519' | 'ed25519'): { publicKey: NodeKeyObject; privateKey: NodeKeyObject };
  diffieHellman(input: { privateKey: NodeKeyObject; publicKey: NodeKeyObject }): Uint8Array;
  sign(algorithm: null, data: Uint8Array, key: NodeKeyObject): Uint8Array;
  verify(algorithm: null, data: Uint8Array, key: NodeKeyObject, signature: Uint8Array): boolean;
  hkdfSync(digest: string, ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, keylen: number): ArrayBuffer;
  createHmac(alg: string, key: Uint8Array): { update(b: Uint8Array): { digest(): Uint8Array } };
  createHash(alg: string): { update(b: Uint8Array): { digest(): Uint8Array } };
  createCipheriv(alg: string, key: Uint8Array, iv: Uint8Array): NodeCipher;
  getCiphers(): string[];
}

let cached: NodeCrypto | null | undefined;

/** Node's crypto module, or undefined outside Node. */
export function nodeCrypto(): NodeCrypto | undefined {
  if (cached === undefined) {
    const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    cached = (proc?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined) ?? null;
  }
  return cached ?? undefined;
}

/** A view of `bytes` as a plain Uint8Array (Node returns Buffers; we hand out Uint8Arrays). */
export function asUint8(bytes: Uint8Array | ArrayBuffer): Uint8Array {
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
