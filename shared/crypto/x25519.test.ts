import { describe, expect, it } from 'vitest';
import { bytesToHex, hexToBytes, randomBytes } from './bytes.ts';
import { x25519KeyPair, x25519Node, x25519Portable, x25519SharedSecret, X25519Error, type X25519Impl } from './x25519.ts';

// RFC 7748 §5.2: scalar, input u-coordinate, output u-coordinate.
const SECTION_5_2 = [
  {
    scalar: 'a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4',
    u: 'e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c',
    out: 'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552',
  },
  {
    scalar: '4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d',
    u: 'e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493',
    out: '95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957',
  },
];
// RFC 7748 §5.2 iteration: k = u = 9; repeat (k, u) ← (X25519(k, u), k).
const ITERATED = {
  after1: '422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079',
  after1000: '684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51',
};
// RFC 7748 §6.1.
const ALICE_SK = '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a';
const ALICE_PK = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
const BOB_SK = '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb';
const BOB_PK = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
const SHARED = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';

const impls: [string, X25519Impl | undefined][] = [
  ['portable (tweetnacl)', x25519Portable],
  ['node:crypto', x25519Node],
];

describe.each(impls)('X25519 %s', (_name, impl) => {
  it('is available', () => expect(impl).toBeDefined());

  it('RFC 7748 §5.2 single vectors', () => {
    for (const v of SECTION_5_2) {
      expect(bytesToHex(impl!.sharedSecret(hexToBytes(v.scalar), hexToBytes(v.u)))).toBe(v.out);
    }
  });

  it('RFC 7748 §5.2 iterated, 1 and 1000 iterations', () => {
    let k: Uint8Array = hexToBytes('09'.padEnd(64, '0'));
    let u: Uint8Array = k.slice();
    for (let i = 1; i <= 1000; i++) {
      const next = impl!.sharedSecret(k, u);
      u = k;
      k = next;
      if (i === 1) expect(bytesToHex(k)).toBe(ITERATED.after1);
    }
    expect(bytesToHex(k)).toBe(ITERATED.after1000);
  });

  it('RFC 7748 §6.1 Diffie-Hellman', () => {
    expect(bytesToHex(impl!.publicKey(hexToBytes(ALICE_SK)))).toBe(ALICE_PK);
    expect(bytesToHex(impl!.publicKey(hexToBytes(BOB_SK)))).toBe(BOB_PK);
    expect(bytesToHex(impl!.sharedSecret(hexToBytes(ALICE_SK), hexToBytes(BOB_PK)))).toBe(SHARED);
    expect(bytesToHex(impl!.sharedSecret(hexToBytes(BOB_SK), hexToBytes(ALICE_PK)))).toBe(SHARED);
  });

  it('rejects small-order points (all-zero output) and bad lengths', () => {
    expect(() => impl!.sharedSecret(randomBytes(32), new Uint8Array(32))).toThrow(X25519Error);
    const one = new Uint8Array(32);
    one[0] = 1;
    expect(() => impl!.sharedSecret(randomBytes(32), one)).toThrow(X25519Error);
    expect(() => impl!.sharedSecret(randomBytes(31), hexToBytes(BOB_PK))).toThrow(X25519Error);
  });
});

describe('X25519 implementations agree', () => {
  it('on random keys and random peer points', () => {
    for (let i = 0; i < 20; i++) {
      const sk = randomBytes(32);
      const peer = randomBytes(32);
      expect(bytesToHex(x25519Node!.publicKey(sk))).toBe(bytesToHex(x25519Portable.publicKey(sk)));
      expect(bytesToHex(x25519Node!.sharedSecret(sk, peer))).toBe(bytesToHex(x25519Portable.sharedSecret(sk, peer)));
    }
  });

  it('default API: both sides agree', () => {
    const a = x25519KeyPair();
    const b = x25519KeyPair();
    expect(bytesToHex(x25519SharedSecret(a.secretKey, b.publicKey))).toBe(bytesToHex(x25519SharedSecret(b.secretKey, a.publicKey)));
  });
});

describe('X25519 node:crypto JWK path (own public key given)', () => {
  it('gives the same secret as the PKCS#8 path, RFC 7748 §6.1', () => {
    expect(bytesToHex(x25519Node!.sharedSecret(hexToBytes(ALICE_SK), hexToBytes(BOB_PK), hexToBytes(ALICE_PK)))).toBe(SHARED);
    for (let i = 0; i < 10; i++) {
      const a = x25519KeyPair();
      const peer = randomBytes(32);
      expect(bytesToHex(x25519Node!.sharedSecret(a.secretKey, peer, a.publicKey))).toBe(bytesToHex(x25519Portable.sharedSecret(a.secretKey, peer)));
    }
  });
});

describe('X25519 key cache (node:crypto path)', () => {
  it('follows the bytes of the secret-key array: a changed or wiped key is re-imported', () => {
    const a = x25519KeyPair();
    const peer = x25519KeyPair().publicKey;
    const first = x25519SharedSecret(a, peer);
    expect(bytesToHex(x25519SharedSecret(a, peer))).toBe(bytesToHex(first)); // cached KeyObject
    // Overwrite the same array with another secret: the result must be that key's, not the cached one's.
    const other = x25519KeyPair();
    a.secretKey.set(other.secretKey);
    const changed = x25519Node!.sharedSecret(a.secretKey, peer);
    expect(bytesToHex(changed)).toBe(bytesToHex(x25519Portable.sharedSecret(other.secretKey, peer)));
    expect(bytesToHex(changed)).not.toBe(bytesToHex(first));
  });
});

describe('X25519 key generation', () => {
  it('generated pairs are consistent on both paths', () => {
    for (const impl of [x25519Portable, x25519Node!]) {
      const kp = impl.generate();
      expect(bytesToHex(x25519Portable.publicKey(kp.secretKey))).toBe(bytesToHex(kp.publicKey));
    }
  });
});
