import { describe, expect, it } from 'vitest';
import { bytesToHex, hexToBytes, randomBytes } from './bytes.ts';
import { ed25519KeyPair, ed25519Node, ed25519Portable, ed25519Sign, ed25519Verify, type Ed25519Impl } from './ed25519.ts';

// RFC 8032 §7.1 TEST 1–3: SECRET KEY, PUBLIC KEY, MESSAGE, SIGNATURE.
const RFC8032 = [
  {
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    pub: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    msg: '',
    sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    pub: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    msg: '72',
    sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    pub: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    msg: 'af82',
    sig: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
];

const impls: [string, Ed25519Impl | undefined][] = [
  ['portable (tweetnacl)', ed25519Portable],
  ['node:crypto', ed25519Node],
];

describe.each(impls)('Ed25519 %s', (_name, impl) => {
  it('is available', () => expect(impl).toBeDefined());

  it.each(RFC8032.map((v, i) => [i + 1, v] as const))('RFC 8032 §7.1 TEST %i', (_i, v) => {
    const seed = hexToBytes(v.seed);
    const msg = hexToBytes(v.msg);
    expect(bytesToHex(impl!.publicKey(seed))).toBe(v.pub);
    expect(bytesToHex(impl!.sign(seed, msg))).toBe(v.sig);
    expect(ed25519Verify(hexToBytes(v.pub), msg, hexToBytes(v.sig), impl)).toBe(true);
  });

  it('rejects a modified message, a flipped signature bit, a wrong key and S ≥ L', () => {
    const v = RFC8032[2];
    const pub = hexToBytes(v.pub);
    const msg = hexToBytes(v.msg);
    const sig = hexToBytes(v.sig);
    expect(ed25519Verify(pub, hexToBytes('af83'), sig, impl)).toBe(false);
    for (const bit of [0, 100, 255, 300, 511]) {
      const bad = sig.slice();
      bad[bit >> 3] ^= 1 << (bit & 7);
      expect(ed25519Verify(pub, msg, bad, impl)).toBe(false);
    }
    expect(ed25519Verify(hexToBytes(RFC8032[0].pub), msg, sig, impl)).toBe(false);
    // S + L encodes the same scalar mod L: malleable unless S < L is enforced (RFC 8032 §5.1.7).
    const L = (1n << 252n) + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i]);
    const sPlusL = s + L;
    const malleated = sig.slice();
    let t = sPlusL;
    for (let i = 0; i < 32; i++) {
      malleated[32 + i] = Number(t & 0xffn);
      t >>= 8n;
    }
    if (sPlusL < 1n << 256n) expect(ed25519Verify(pub, msg, malleated, impl)).toBe(false);
    expect(ed25519Verify(pub, msg, sig.subarray(0, 63), impl)).toBe(false);
  });
});

describe('Ed25519 implementations agree', () => {
  it('on random keys and messages', () => {
    for (let i = 0; i < 20; i++) {
      const seed = randomBytes(32);
      const msg = randomBytes(i * 7);
      const sigNode = ed25519Node!.sign(seed, msg);
      expect(bytesToHex(ed25519Node!.publicKey(seed))).toBe(bytesToHex(ed25519Portable.publicKey(seed)));
      expect(bytesToHex(sigNode)).toBe(bytesToHex(ed25519Portable.sign(seed, msg)));
      const pub = ed25519Portable.publicKey(seed);
      expect(ed25519Verify(pub, msg, sigNode, ed25519Portable)).toBe(true);
      expect(ed25519Verify(pub, msg, sigNode, ed25519Node)).toBe(true);
      const junk = randomBytes(64);
      junk[63] &= 0x0f;
      expect(ed25519Verify(pub, msg, junk, ed25519Portable)).toBe(ed25519Verify(pub, msg, junk, ed25519Node));
    }
  });

  it('remembers only valid triples, keyed by the exact bytes', () => {
    const kp = ed25519KeyPair();
    const msg = randomBytes(80);
    const sig = ed25519Sign(kp, msg);
    expect(ed25519Verify(kp.publicKey, msg, sig)).toBe(true);
    expect(ed25519Verify(kp.publicKey, msg, sig)).toBe(true); // from the memo
    // After a valid triple is remembered, every one-bit change of message, signature or key still fails.
    for (const [what, bytes] of [['message', msg], ['signature', sig], ['key', kp.publicKey]] as const) {
      const bad = bytes.slice();
      bad[5] ^= 1;
      const args = { message: msg, signature: sig, key: kp.publicKey, [what]: bad };
      expect(ed25519Verify(args.key, args.message, args.signature), what).toBe(false);
    }
    // A failure is not remembered: the same bad triple fails again, the good one still passes.
    const tampered = msg.slice();
    tampered[0] ^= 0x80;
    expect(ed25519Verify(kp.publicKey, tampered, sig)).toBe(false);
    expect(ed25519Verify(kp.publicKey, tampered, sig)).toBe(false);
    expect(ed25519Verify(kp.publicKey, msg, sig)).toBe(true);
  });

  it('default API round trip', () => {
    const kp = ed25519KeyPair();
    const msg = randomBytes(100);
    expect(ed25519Verify(kp.publicKey, msg, ed25519Sign(kp.seed, msg))).toBe(true);
  });
});

describe('Ed25519 small-order public keys', () => {
  // Canonical encodings of points of order 1, 2, 4, 4 and 8, 8 (x sign bit clear; and set for order 4).
  const smallOrder = [
    '0100000000000000000000000000000000000000000000000000000000000000',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0000000000000000000000000000000000000000000000000000000000000080',
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  ].map(hexToBytes);

  it('a forged "signature" (R = A, S = 0) under a small-order key passes the bare check for some messages, never ed25519Verify', () => {
    const impl = ed25519Node ?? ed25519Portable;
    let bare = 0;
    for (const key of smallOrder) {
      const forged = new Uint8Array(64);
      forged.set(key, 0); // R = A, S = 0: [S]B = O = R + [k]A whenever [k]A = −A
      for (let m = 0; m < 200; m++) {
        const message = randomBytes(32);
        if (impl.verify(key, message, forged)) bare++;
        expect(ed25519Verify(key, message, forged)).toBe(false);
      }
    }
    // The attack is real against the bare check (the identity alone passes every time): the filter matters.
    expect(bare).toBeGreaterThan(200);
  });

  it('keeps ordinary keys working', () => {
    const k = ed25519KeyPair();
    const message = randomBytes(64);
    expect(ed25519Verify(k.publicKey, message, ed25519Sign(k, message))).toBe(true);
  });
});
