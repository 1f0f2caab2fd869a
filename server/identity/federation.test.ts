/**
 * The federation's per-address limit on failed hellos (issue 15: "failures rate-limited per IP"), on a
 * real SQLite store and real Ed25519 signatures, time driven by hand: within the allowance every bad
 * hello is refused as UNAUTHORIZED and audited; past it the address is refused as HELLO_RATE_LIMITED
 * before any check — good hellos from it too — with one audit row, until its minute ends; other
 * addresses are not affected; loopback is never limited.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { toBase64Url } from '../../shared/crypto/bytes.ts';
import { ed25519KeyPair } from '../../shared/crypto/ed25519.ts';
import { signedHello } from '../../shared/identity/transcript.ts';
import { PROTOCOL_VERSION, type Hello } from '../../shared/protocol/index.ts';
import { CohortStore } from '../store/index.ts';
import { Federation } from './federation.ts';

const stores: CohortStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

function setup(limit: number) {
  const store = CohortStore.open(mkdtempSync(join(tmpdir(), 'cohort-federation-')));
  stores.push(store);
  let now = 1_000_000;
  const federation = new Federation({ store, mode: 'first-use', now: () => now, maxFailuresPerMinute: limit });
  const challenge = { nonce: toBase64Url(new Uint8Array(32).fill(7)), server: 'test-server', jobId: 'j', protocolVersion: PROTOCOL_VERSION };
  const key = ed25519KeyPair(new Uint8Array(32).fill(1));
  const good = (clientId: string) => signedHello(key, challenge, clientId) as Hello;
  const bad = (clientId: string) => ({ ...good(clientId), signature: good('someone-else').signature }) as Hello;
  const ctx = (address: string) => ({ jobId: 'j', nonce: challenge.nonce, server: challenge.server, address });
  const code = (hello: Hello, address: string) => {
    try {
      federation.authenticate(hello, ctx(address));
      return 'admitted';
    } catch (err) {
      return (err as { code?: string }).code;
    }
  };
  return { store, federation, good, bad, code, advance: (ms: number) => (now += ms) };
}

describe('Federation: failed hellos per address', () => {
  it('refuses and audits bad hellos up to the limit, then limits the address until its minute ends', () => {
    const { store, good, bad, code, advance } = setup(3);
    expect(code(good('alice'), '10.0.0.1')).toBe('admitted');
    for (let i = 0; i < 3; i++) expect(code(bad('mallory'), '10.0.0.9')).toBe('UNAUTHORIZED');
    expect(code(bad('mallory'), '10.0.0.9')).toBe('UNAUTHORIZED'); // the fourth: refused, and the address is now limited
    const denied = () => store.listAudit().filter((r) => r.action === 'client.auth.denied').length;
    const limited = () => store.listAudit().filter((r) => r.action === 'client.auth.rate_limited');
    expect(denied()).toBe(3);
    expect(limited()).toHaveLength(1);
    expect(limited()[0]).toMatchObject({ target: '10.0.0.9', outcome: 'denied' });
    // Limited: bad and good hellos alike are refused before any check, and not audited again.
    for (let i = 0; i < 50; i++) expect(code(bad('mallory'), '10.0.0.9')).toBe('HELLO_RATE_LIMITED');
    expect(code(good('alice'), '10.0.0.9')).toBe('HELLO_RATE_LIMITED');
    expect(denied()).toBe(3);
    expect(limited()).toHaveLength(1);
    // Other addresses are not limited.
    expect(code(good('alice'), '10.0.0.2')).toBe('admitted');
    expect(code(bad('mallory'), '10.0.0.2')).toBe('UNAUTHORIZED');
    // The minute ends (counted from the address's first failure): the address starts afresh.
    advance(59_999);
    expect(code(good('alice'), '10.0.0.9')).toBe('HELLO_RATE_LIMITED');
    advance(1);
    expect(code(good('alice'), '10.0.0.9')).toBe('admitted');
    expect(code(bad('mallory'), '10.0.0.9')).toBe('UNAUTHORIZED');
    expect(denied()).toBe(5);
  });

  it('never limits loopback (a reverse proxy on this host): its failures are refused, their audit rows capped', () => {
    const { store, good, bad, code } = setup(2);
    for (let i = 0; i < 10; i++) expect(code(bad('mallory'), '127.0.0.1')).toBe('UNAUTHORIZED');
    expect(code(good('alice'), '127.0.0.1')).toBe('admitted');
    expect(code(good('bob'), '::ffff:127.0.0.1')).toBe('admitted');
    expect(store.listAudit().filter((r) => r.action === 'client.auth.denied')).toHaveLength(2);
    expect(store.listAudit().filter((r) => r.action === 'client.auth.rate_limited')).toHaveLength(1);
  });

  it('says how long to wait, in a bounded message', () => {
    const { bad, federation, advance } = setup(1);
    const ctx = { jobId: 'j', nonce: toBase64Url(new Uint8Array(32).fill(7)), server: 'test-server', address: '10.0.0.9' };
    for (let i = 0; i < 2; i++) expect(() => federation.authenticate(bad('m'), ctx)).toThrow(/signature/);
    advance(15_000);
    expect(() => federation.authenticate(bad('m'), ctx)).toThrow('too many failed hellos from this address; try again in 45 s');
  });
});
