import { describe, expect, it } from 'vitest';
import { bytesToHex, hexToBytes, randomBytes, utf8 } from './bytes.ts';
import { hkdf, hkdfExtractPortable, hkdfNode, hkdfPortable, hmacSha256Portable } from './hkdf.ts';
import { sha256, sha256Node, sha256Portable } from './sha256.ts';

const range = (from: number, to: number): string => {
  let s = '';
  for (let i = from; i <= to; i++) s += i.toString(16).padStart(2, '0');
  return s;
};

// RFC 5869 Appendix A, test cases 1–3 (SHA-256).
const CASES = [
  {
    name: 'A.1 basic',
    ikm: '0b'.repeat(22),
    salt: range(0x00, 0x0c),
    info: range(0xf0, 0xf9),
    L: 42,
    prk: '077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5',
    okm: '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
  },
  {
    name: 'A.2 longer inputs/outputs',
    ikm: range(0x00, 0x4f),
    salt: range(0x60, 0xaf),
    info: range(0xb0, 0xff),
    L: 82,
    prk: '06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244',
    okm:
      'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09' +
      'da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87',
  },
  {
    name: 'A.3 zero-length salt/info',
    ikm: '0b'.repeat(22),
    salt: '',
    info: '',
    L: 42,
    prk: '19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04',
    okm: '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
  },
];

describe('SHA-256 (FIPS 180-4)', () => {
  it('FIPS 180-4 examples "abc", empty, and the two-block message', () => {
    for (const impl of [sha256Portable, (m: Uint8Array) => sha256Node(m)!]) {
      expect(bytesToHex(impl(utf8('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
      expect(bytesToHex(impl(new Uint8Array(0)))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
      expect(bytesToHex(impl(utf8('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')))).toBe(
        '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
      );
    }
  });

  it('portable agrees with node:crypto on lengths 0..200', () => {
    for (let n = 0; n <= 200; n++) {
      const m = randomBytes(n);
      expect(bytesToHex(sha256Portable(m))).toBe(bytesToHex(sha256(m)));
    }
  });
});

describe('HMAC-SHA256 (RFC 4231 test case 2)', () => {
  it('key "Jefe"', () => {
    expect(bytesToHex(hmacSha256Portable(utf8('Jefe'), utf8('what do ya want for nothing?')))).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });
});

describe('HKDF-SHA256 (RFC 5869)', () => {
  it.each(CASES)('$name: portable PRK and OKM', (c) => {
    expect(bytesToHex(hkdfExtractPortable(hexToBytes(c.salt), hexToBytes(c.ikm)))).toBe(c.prk);
    expect(bytesToHex(hkdfPortable(hexToBytes(c.ikm), hexToBytes(c.salt), hexToBytes(c.info), c.L))).toBe(c.okm);
  });

  it.each(CASES)('$name: node:crypto OKM', (c) => {
    expect(bytesToHex(hkdfNode(hexToBytes(c.ikm), hexToBytes(c.salt), hexToBytes(c.info), c.L)!)).toBe(c.okm);
  });

  it('paths agree on random inputs; bad lengths are refused', () => {
    for (let i = 0; i < 30; i++) {
      const ikm = randomBytes(i + 1);
      const salt = randomBytes(i % 3 === 0 ? 0 : 40);
      const info = randomBytes(i * 3);
      const L = 1 + ((i * 37) % 200);
      expect(bytesToHex(hkdf(ikm, salt, info, L))).toBe(bytesToHex(hkdfPortable(ikm, salt, info, L)));
    }
    expect(() => hkdf(randomBytes(8), new Uint8Array(0), new Uint8Array(0), 255 * 32 + 1)).toThrow(RangeError);
  });
});
