import { describe, expect, it } from 'vitest';
import { bytesToHex, randomBytes } from './bytes.ts';
import {
  decodeShareValue,
  encodeShareValue,
  interpolateAt,
  SHAMIR_PRIME,
  shamirCombine,
  shamirSplit,
  ShamirError,
  type ShamirShare,
} from './shamir.ts';

const xs = (k: number): number[] => Array.from({ length: k }, (_, i) => 3 * i + 5);

function shuffled<T>(items: T[]): T[] {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

describe('Shamir secret sharing over F_(2^521 − 1)', () => {
  it('any t of k shares reconstruct a 32-byte secret', () => {
    for (const [t, k] of [[1, 1], [2, 3], [5, 9], [11, 20]]) {
      const secret = randomBytes(32);
      const shares = shamirSplit(secret, xs(k), t);
      for (let trial = 0; trial < 3; trial++) {
        const subset = shuffled(shares).slice(0, t);
        expect(bytesToHex(shamirCombine(subset, t))).toBe(bytesToHex(secret));
      }
      expect(bytesToHex(shamirCombine(shares, t))).toBe(bytesToHex(secret)); // all k: extras verified
    }
  });

  it('fewer than t shares are consistent with every secret (reveal nothing)', () => {
    const t = 4;
    const shares = shamirSplit(randomBytes(32), xs(7), t).slice(0, t - 1);
    for (let trial = 0; trial < 5; trial++) {
      // For any candidate secret s, the polynomial through (0, s) and the t − 1 shares has degree < t,
      // agrees with all t − 1 shares and yields s: the shares do not constrain s.
      const candidate = randomBytes(32);
      let s = 0n;
      for (const b of candidate) s = (s << 8n) | BigInt(b);
      const points: ShamirShare[] = [{ x: 0, y: s } as ShamirShare, ...shares];
      // Evaluate at the share abscissae: the same values as the real shares.
      for (const sh of shares) expect(interpolateAt(points, sh.x)).toBe(sh.y);
      expect(interpolateAt(points, 0)).toBe(s);
    }
    expect(() => shamirCombine(shares, t)).toThrow(ShamirError);
  });

  it('a single share value is uniform-looking whatever the secret (top byte spread)', () => {
    const counts = new Array<number>(2).fill(0);
    for (let i = 0; i < 400; i++) {
      const [share] = shamirSplit(new Uint8Array(32), [7, 8], 2);
      counts[Number((share.y >> 520n) & 1n)]++;
    }
    expect(Math.min(...counts)).toBeGreaterThan(130);
  });

  it('detects wrong, conflicting and malformed shares', () => {
    const t = 3;
    const secret = randomBytes(32);
    const shares = shamirSplit(secret, xs(5), t);
    // Identical duplicates are harmless.
    expect(bytesToHex(shamirCombine([shares[0], shares[0], shares[1], shares[2]], t))).toBe(bytesToHex(secret));
    // Two different values for one x.
    expect(() => shamirCombine([shares[0], { x: shares[0].x, y: shares[1].y }, shares[1], shares[2]], t)).toThrow(/two different/);
    // Duplicates do not count towards t.
    expect(() => shamirCombine([shares[0], shares[0], shares[1]], t)).toThrow(/need 3/);
    // A corrupted extra share is detected.
    const bad = { x: shares[4].x, y: (shares[4].y + 1n) % SHAMIR_PRIME };
    expect(() => shamirCombine([...shares.slice(0, 4), bad], t)).toThrow(/inconsistent/);
    // A corrupted share among exactly t gives garbage that (w.h.p.) does not fit 32 bytes.
    expect(() => shamirCombine([shares[0], shares[1], bad], t)).toThrow(/not a valid secret/);
    // x = 0, non-integers, y outside the field.
    expect(() => shamirCombine([{ x: 0, y: 1n }, shares[1], shares[2]], t)).toThrow(ShamirError);
    expect(() => shamirCombine([{ x: 1.5, y: 1n }, shares[1], shares[2]], t)).toThrow(ShamirError);
    expect(() => shamirCombine([{ x: 9, y: SHAMIR_PRIME }, shares[1], shares[2]], t)).toThrow(ShamirError);
    expect(() => shamirSplit(secret, [1, 1, 2], 2)).toThrow(/duplicate/);
    expect(() => shamirSplit(secret, [1, 2], 3)).toThrow(/threshold/);
  });

  it('share values encode to 66 bytes and back', () => {
    const [s] = shamirSplit(randomBytes(32), [1, 2, 3], 2);
    const bytes = encodeShareValue(s.y);
    expect(bytes.length).toBe(66);
    expect(decodeShareValue(bytes)).toBe(s.y);
    expect(() => decodeShareValue(new Uint8Array(66).fill(0xff))).toThrow(ShamirError);
  });
});
