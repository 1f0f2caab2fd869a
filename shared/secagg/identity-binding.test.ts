/**
 * SecAgg bound to identities (issue 15 item 5): each client signs its round keys with its long-term key
 * and sends its certificate; with the federation CA's key configured, every client checks each
 * neighbour's certificate (issuer, validity, job, id, the key that signed its round keys) before it makes
 * a single share for it. The coordinator chooses the cohort and relays every advertisement, so it is the
 * one who could add a client of its own making (a Sybil): here it does, four ways, and every honest
 * client detects it and aborts — no share of any honest client's mask reaches the Sybil.
 */
import { describe, expect, it } from 'vitest';
import { toBase64Url } from '../crypto/bytes.ts';
import { ed25519KeyPair, type Ed25519KeyPair } from '../crypto/ed25519.ts';
import { certifiedPeerCheck, RevocationView, signCertificate, signRevocationList, type Certificate, type RevocationList } from '../identity/index.ts';
import { randomBytes } from '../random.ts';
import { SecAggError, SecAggErrorCode } from './errors.ts';
import { simulateRound } from './testing/simulate.ts';

const N = 6;
const JOB = 'job';
const now = Date.now();
const ca = ed25519KeyPair();
const identities = Array.from({ length: N }, () => ed25519KeyPair());
const ids = Array.from({ length: N }, (_, i) => `client-${String(i).padStart(4, '0')}`);
const certify = (by: Ed25519KeyPair, clientId: string, key: Ed25519KeyPair, over: Partial<Certificate> = {}): Certificate =>
  signCertificate(by, { clientId, publicKey: toBase64Url(key.publicKey), jobs: [JOB], notBefore: now - 1000, notAfter: now + 3_600_000, serial: toBase64Url(randomBytes(16)), ...over });

/** A complete graph, so every honest client is the Sybil's neighbour; the Sybil is the last client. */
function round(sybilCertificate: Certificate | undefined, revocation?: { relayed?: RevocationList; views: RevocationView[] }) {
  const SYBIL = N - 1;
  return simulateRound({
    ...(revocation?.relayed ? { revocations: revocation.relayed } : {}),
    n: N,
    dim: 8,
    bits: 16,
    neighbors: N - 1,
    threshold: 3,
    minSurvivors: 4,
    jobId: JOB,
    identities,
    clientOptions: (clientId, i) => ({
      ...(i === SYBIL ? (sybilCertificate ? { certificate: sybilCertificate } : {}) : { certificate: certify(ca, clientId, identities[i]) }),
      checkPeer: certifiedPeerCheck(ca.publicKey, JOB, () => now, revocation ? (serial) => revocation.views[i].isRevoked(serial) : undefined),
      ...(revocation ? { acceptRevocations: (list: unknown) => revocation.views[i].accept(list) } : {}),
    }),
  });
}

describe('SecAgg bound to certified identities', () => {
  it('completes with the exact sum when every member is certified', () => {
    const sim = round(certify(ca, ids[N - 1], identities[N - 1]));
    if (sim.result.status !== 'ok') throw new Error(JSON.stringify(sim.result));
    expect(sim.result.included).toEqual(ids);
    expect(Buffer.from(sim.result.sum.buffer).equals(Buffer.from(sim.expectedSum(ids).buffer))).toBe(true);
  });

  const sybils: [string, () => Certificate | undefined, RegExp][] = [
    ['no certificate', () => undefined, /no certificate/],
    ["a certificate from the coordinator's own CA", () => certify(ed25519KeyPair(), ids[N - 1], identities[N - 1]), /another CA/],
    ["a real client's certificate, with the Sybil's key", () => certify(ca, ids[0], identities[0]), /issued to client-0000/],
    ['a certificate for another key', () => certify(ca, ids[N - 1], ed25519KeyPair()), /another key/],
    ['a certificate for another job', () => certify(ca, ids[N - 1], identities[N - 1], { jobs: ['other'] }), /not valid for job/],
    ['an expired certificate', () => certify(ca, ids[N - 1], identities[N - 1], { notBefore: now - 7_200_000, notAfter: now - 3_600_000 }), /expired/],
  ];
  for (const [what, cert, reason] of sybils) {
    it(`every honest client detects a Sybil with ${what} and aborts before sharing`, () => {
      const sim = round(cert());
      expect(sim.result.status).not.toBe('ok');
      for (let i = 0; i < N - 1; i++) {
        const err = sim.clientErrors.get(ids[i]) as SecAggError | undefined;
        expect(err?.code, ids[i]).toBe(SecAggErrorCode.UNKNOWN_IDENTITY);
        expect(err?.message).toMatch(new RegExp(`client-0005: .*${reason.source}`));
        expect(sim.clients[i].phase).toBe('aborted');
      }
    });
  }

  describe('revocation lists relayed to the round', () => {
    const views = (maxAgeMs?: number) => ids.map(() => new RevocationView({ caPublicKey: ca.publicKey, now: () => now, ...(maxAgeMs !== undefined ? { maxAgeMs } : {}) }));

    it("a revoked device that the coordinator still samples is refused by every neighbour, from the CA's list", () => {
      const cert = certify(ca, ids[N - 1], identities[N - 1]);
      const relayed = signRevocationList(ca, [cert.serial], now - 1000);
      const sim = round(cert, { relayed, views: views() });
      expect(sim.result.status).not.toBe('ok');
      for (let i = 0; i < N - 1; i++) {
        const err = sim.clientErrors.get(ids[i]) as SecAggError | undefined;
        expect(err?.code, ids[i]).toBe(SecAggErrorCode.UNKNOWN_IDENTITY);
        expect(err?.message).toMatch(/client-0005: .*revoked/);
      }
    });

    it('a coordinator that replays an older list (from before the revocation) is refused', () => {
      const cert = certify(ca, ids[N - 1], identities[N - 1]);
      const v = views();
      const newer = signRevocationList(ca, [cert.serial], now - 1000);
      for (const view of v) expect(view.accept(newer)).toBeUndefined(); // seen in an earlier round
      const older = signRevocationList(ca, [], now - 60_000);
      const sim = round(cert, { relayed: older, views: v });
      expect(sim.result.status).not.toBe('ok');
      for (let i = 0; i < N - 1; i++) {
        const err = sim.clientErrors.get(ids[i]) as SecAggError | undefined;
        expect(err?.code, ids[i]).toBe(SecAggErrorCode.UNSAFE_REQUEST);
        expect(err?.message).toMatch(/older than the one already seen/);
      }
    });

    it('clients that require a fresh list abort a round that relays none, and complete one that relays one', () => {
      const cert = certify(ca, ids[N - 1], identities[N - 1]);
      const withheld = round(cert, { views: views(60_000) });
      expect(withheld.result.status).not.toBe('ok');
      expect((withheld.clientErrors.get(ids[0]) as SecAggError | undefined)?.message).toMatch(/no revocation list/);
      const fresh = round(cert, { relayed: signRevocationList(ca, [toBase64Url(randomBytes(16))], now - 1000), views: views(60_000) });
      if (fresh.result.status !== 'ok') throw new Error(JSON.stringify(fresh.result));
      expect(fresh.result.included).toEqual(ids);
    });
  });
});
