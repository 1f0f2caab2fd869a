/**
 * Revocation lists (revocation.ts): the CA's signature covers the issuer, the time and every serial; a
 * client's RevocationView takes newer lists, refuses older ones (no rollback), and with a maximum age
 * requires a fresh list in every round.
 */
import { describe, expect, it } from 'vitest';
import { toBase64Url } from '../crypto/bytes.ts';
import { ed25519KeyPair } from '../crypto/ed25519.ts';
import { CohortError } from '../errors.ts';
import { randomBytes } from '../random.ts';
import { RevocationView, signRevocationList, verifyRevocationList, type RevocationList } from './revocation.ts';

const ca = ed25519KeyPair();
const serial = () => toBase64Url(randomBytes(16));
const T0 = 1_800_000_000_000;

describe('revocation lists', () => {
  it('verifies what the CA signed, sorted and deduplicated', () => {
    const [a, b] = [serial(), serial()];
    const list = signRevocationList(ca, [b, a, b], T0);
    expect(list.serials).toEqual([a, b].sort());
    expect(verifyRevocationList(JSON.parse(JSON.stringify(list)), ca.publicKey, T0)).toEqual(list);
  });

  const refusals: [string, (l: RevocationList) => unknown, RegExp][] = [
    ['a serial removed', (l) => ({ ...l, serials: l.serials.slice(1) }), /bad CA signature/],
    ['a serial replaced', (l) => ({ ...l, serials: [serial(), ...l.serials.slice(1)].sort() }), /bad CA signature/],
    ['an earlier time', (l) => ({ ...l, issuedAt: l.issuedAt - 1 }), /bad CA signature/],
    ['another issuer named', (l) => ({ ...l, issuer: `sha256:${'0'.repeat(64)}` }), /another CA/],
    ['unsorted serials', (l) => ({ ...l, serials: [...l.serials].reverse() }), /sorted/],
    ['an extra field', (l) => ({ ...l, note: 'x' }), /malformed/],
    ['a short serial', (l) => ({ ...l, serials: ['abc'] }), /malformed/],
  ];
  for (const [what, change, reason] of refusals) {
    it(`refuses a list with ${what}`, () => {
      const list = signRevocationList(ca, [serial(), serial(), serial()], T0);
      expect(() => verifyRevocationList(change(list), ca.publicKey, T0)).toThrow(reason);
      try {
        verifyRevocationList(change(list), ca.publicKey, T0);
      } catch (err) {
        expect(err).toBeInstanceOf(CohortError);
        expect(['UNAUTHORIZED', 'BAD_CERTIFICATE']).toContain((err as CohortError).code);
      }
    });
  }

  it("refuses another CA's list and one signed beyond the clock skew", () => {
    expect(() => verifyRevocationList(signRevocationList(ed25519KeyPair(), [serial()], T0), ca.publicKey, T0)).toThrow(/another CA/);
    expect(() => verifyRevocationList(signRevocationList(ca, [serial()], T0 + 3_600_000), ca.publicKey, T0)).toThrow(/future/);
  });
});

describe("a client's view of the revocations", () => {
  it('takes newer lists, keeps the newest, and refuses an older one (no rollback)', () => {
    let now = T0;
    const view = new RevocationView({ caPublicKey: ca.publicKey, now: () => now });
    const s1 = serial();
    const s2 = serial();
    expect(view.accept(undefined)).toBeUndefined(); // no list required without a maximum age
    expect(view.accept(signRevocationList(ca, [s1], T0))).toBeUndefined();
    expect(view.isRevoked(s1)).toBe(true);
    now += 1000;
    const newer = signRevocationList(ca, [s1, s2], now);
    expect(view.accept(newer)).toBeUndefined();
    expect(view.isRevoked(s2)).toBe(true);
    expect(view.issuedAt).toBe(now);
    // The coordinator replays the first list (before s2 was revoked): refused, s2 stays revoked.
    expect(view.accept(signRevocationList(ca, [s1], T0))).toMatch(/older than the one already seen/);
    expect(view.isRevoked(s2)).toBe(true);
    expect(view.accept(newer)).toBeUndefined(); // the same one again is fine
    expect(view.accept(signRevocationList(ed25519KeyPair(), [], now))).toMatch(/another CA/);
    expect(view.isRevoked(serial())).toBe(false);
  });

  it('with a maximum age, requires a list in every round and refuses a stale one', () => {
    let now = T0;
    const view = new RevocationView({ caPublicKey: ca.publicKey, now: () => now, maxAgeMs: 60_000 });
    expect(view.accept(undefined)).toMatch(/no revocation list .* younger than 60 s/);
    expect(view.accept(signRevocationList(ca, [], now - 61_000))).toMatch(/61 s ago, more than 60 s/);
    expect(view.accept(signRevocationList(ca, [], now - 10_000))).toBeUndefined();
    // Withheld later: fine while the one held is young enough, refused once it is not.
    now += 30_000;
    expect(view.accept(undefined)).toBeUndefined();
    now += 30_000;
    expect(view.accept(undefined)).toMatch(/no revocation list/);
  });
});
