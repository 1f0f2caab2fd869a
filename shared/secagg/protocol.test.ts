/**
 * SecAgg+ protocol acceptance tests: exactness under dropouts at each phase (n = 50), clean aborts
 * beyond tolerance, secrecy checks (uniformity of a masked vector, tampering, bad signatures,
 * replays) and the never-reveal-both invariant.
 */
import { describe, expect, it } from 'vitest';
import { ed25519KeyPair } from '../crypto/ed25519.ts';
import { fromBase64Url, toBase64Url } from '../crypto/bytes.ts';
import { SecAggClient } from './client.ts';
import { unpackBits } from './encoding.ts';
import { SecAggError, SecAggErrorCode } from './errors.ts';
import { decodeMembers, encodeMembers } from './keys.ts';
import type { MaskedInput, SecAggClientMessage, SecAggServerMessage } from './messages.ts';
import { findGraphParams } from './params.ts';
import type { NeighborGraph } from './graph.ts';
import { SecAggServer } from './server.ts';
import { simulateRound, type DropPoint, type SimulationResult } from './testing/simulate.ts';

const N = 50;
const DIM = 600;
const BITS = 20;
const PARAMS = findGraphParams({ clients: N, dropoutRate: 0.1, corruptRate: 0.05 });
const K = PARAMS.neighbors;
const T = PARAMS.threshold;
const D = PARAMS.maxDropouts; // tolerated dropouts before input: n − minSurvivors
const MIN = N - D;

function run(drops: [number, DropPoint][], extra: Partial<Parameters<typeof simulateRound>[0]> = {}): SimulationResult {
  return simulateRound({ n: N, dim: DIM, bits: BITS, neighbors: K, threshold: T, minSurvivors: MIN, drops: new Map(drops), ...extra });
}

function expectExact(sim: SimulationResult, excluded: number[]): void {
  const r = sim.result;
  if (r.status !== 'ok') throw new Error(`round did not complete: ${JSON.stringify(r)}`);
  const included = sim.ids.filter((_, i) => !excluded.includes(i));
  expect(r.included).toEqual(included);
  const expected = sim.expectedSum(included);
  expect(r.sum.length).toBe(DIM);
  expect(Buffer.from(r.sum.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
}

function expectAborted(sim: SimulationResult, reason: RegExp): void {
  const r = sim.result;
  expect(r.status).toBe('aborted');
  if (r.status === 'aborted') expect(r.reason).toMatch(reason);
  expect('sum' in r).toBe(false);
}

/** No client disclosed both shares of any peer (and, when not done, nothing at all). */
function expectNoDoubleReveal(sim: SimulationResult): void {
  for (const c of sim.clients) for (const kind of c.revealed.values()) expect(['self', 'key']).toContain(kind);
  const selfRevealedFor = new Set<string>();
  const keyRevealedFor = new Set<string>();
  for (const c of sim.clients) {
    for (const [peer, kind] of c.revealed) (kind === 'self' ? selfRevealedFor : keyRevealedFor).add(peer);
  }
  for (const peer of selfRevealedFor) expect(keyRevealedFor.has(peer)).toBe(false);
}

/**
 * Drops `count` neighbours of client `u` at `phase` (dropouts concentrated in one neighbourhood). The
 * graph is derived from the round's advertisements, so the neighbours are picked once it is known.
 */
const neighboursOf =
  (u: number, count: number, phase: DropPoint) =>
  (graph: NeighborGraph): Map<number, DropPoint> =>
    new Map([...graph.neighbors(u)].slice(0, count).map((v) => [v, phase]));

const spread = (count: number, offset = 0): number[] => Array.from({ length: count }, (_, i) => (offset + i * 7) % N);

describe(`SecAgg+ exactness, n = ${N}, k = ${K}, t = ${T}, tolerated dropouts ${D}`, () => {
  it('parameters are the finder’s, with k − t ≥ dropouts tolerated per neighbourhood', () => {
    expect(K).toBeLessThan(N - 1);
    expect(K - T).toBeGreaterThanOrEqual(1);
  });

  it('no dropouts: the unmasked sum equals the plain sum mod 2^b', () => {
    expectExact(run([]), []);
  });

  it('(a) drops before ShareKeys, up to the tolerated number: exact', () => {
    const ids = spread(D, 1);
    // Half never advertise, half advertise but never send their shares.
    const sim = run(ids.map((i, j) => [i, j % 2 ? 'advertise' : 'share']));
    expectExact(sim, ids);
    expectNoDoubleReveal(sim);
  });

  it('(a) one more than tolerated: clean abort, no sum, no shares revealed', () => {
    const sim = run(spread(D + 1, 1).map((i) => [i, 'share']));
    expectAborted(sim, /shared keys; the round needs/);
    for (const c of sim.clients) expect(c.revealed.size).toBe(0);
  });

  it('(b) drops after ShareKeys, before sending input, up to the tolerated number: exact', () => {
    const ids = spread(D, 3);
    const sim = run(ids.map((i) => [i, 'collect']));
    expectExact(sim, ids);
    expectNoDoubleReveal(sim);
    // Survivors revealed s-shares (not b-shares) of the dropped clients they hold shares of.
    const dropped = new Set(ids.map((i) => sim.ids[i]));
    for (const c of sim.clients) for (const [peer, kind] of c.revealed) expect(kind).toBe(dropped.has(peer) ? 'key' : 'self');
  });

  it('(b) one more than tolerated: clean abort, no sum, no shares revealed', () => {
    const sim = run(spread(D + 1, 3).map((i) => [i, 'collect']));
    expectAborted(sim, /masked inputs arrived; the round needs/);
    for (const c of sim.clients) expect(c.revealed.size).toBe(0);
  });

  it('(c) drops after sending input, before Unmasking, up to the tolerated number: exact', () => {
    const ids = spread(D, 5);
    const sim = run(ids.map((i, j) => [i, j % 2 ? 'consistency' : 'unmask']));
    expectExact(sim, []); // their inputs are in the sum
    expectNoDoubleReveal(sim);
  });

  it('(c) k − t neighbours of one client drop before Unmasking (the per-neighbourhood limit): exact', () => {
    const sim = run([], { drops: neighboursOf(0, K - T, 'consistency') });
    expectExact(sim, []);
  });

  it('(c) k − t + 1 neighbours of one client drop: abort before any share is revealed', () => {
    const sim = run([], { drops: neighboursOf(0, K - T + 1, 'consistency') });
    expectAborted(sim, /cannot be rebuilt/);
    for (const c of sim.clients) expect(c.revealed.size).toBe(0);
  });

  it('(c) holders vanish during Unmasking itself: abort, and no peer had both shares revealed', () => {
    const sim = run([], { drops: neighboursOf(0, K - T + 1, 'unmask') });
    expectAborted(sim, /shares of .* self mask arrived/);
    expectNoDoubleReveal(sim);
  });

  it('drops in every phase at once, within tolerance: exact', () => {
    const sim = run([
      [2, 'advertise'],
      [9, 'share'],
      [16, 'collect'],
      [23, 'collect'],
      [30, 'consistency'],
      [37, 'unmask'],
    ]);
    expectExact(sim, [2, 9, 16, 23]);
    expectNoDoubleReveal(sim);
  });
});

describe('secrecy checks', () => {
  it('one masked vector passes a chi-square uniformity test even for a constant input', () => {
    const dim = 40_000;
    let payload: Uint8Array | undefined;
    const sim = simulateRound({
      n: 12,
      dim,
      bits: 16,
      neighbors: 6,
      threshold: 4,
      minSurvivors: 12,
      inputs: Array.from({ length: 12 }, () => new Uint32Array(dim).fill(12345)),
      tamperReply: (from, msg) => {
        if (from === 'client-0003' && msg.type === 'secagg_masked_input') payload = (msg as MaskedInput).payload;
        return msg;
      },
    });
    expect(sim.result.status).toBe('ok');
    const values = unpackBits(payload!, 16, dim);
    const buckets = new Float64Array(256);
    for (const v of values) buckets[v >>> 8]++;
    const expected = dim / 256;
    let chi2 = 0;
    for (const c of buckets) chi2 += (c - expected) ** 2 / expected;
    // 255 degrees of freedom: mean 255, sd ≈ 22.6; 357 is beyond 4.5 sd (p < 1e-5).
    expect(chi2).toBeLessThan(357);
    // Low bits too (bucket by v mod 256).
    buckets.fill(0);
    for (const v of values) buckets[v & 255]++;
    chi2 = 0;
    for (const c of buckets) chi2 += (c - expected) ** 2 / expected;
    expect(chi2).toBeLessThan(357);
  });

  it('a tampered share ciphertext is rejected: the receiver aborts, the round completes without it', () => {
    const victim = 'client-0004';
    const sim = run([], {
      tamper: (to, msg) => {
        if (to !== victim || msg.type !== 'secagg_masked_input_request') return msg;
        const shares = msg.shares.map((s, i) => {
          if (i !== 0) return s;
          const ct = fromBase64Url(s.ciphertext);
          ct[50] ^= 1;
          return { ...s, ciphertext: toBase64Url(ct) };
        });
        return { ...msg, shares };
      },
    });
    const err = sim.clientErrors.get(victim);
    expect(err).toBeInstanceOf(SecAggError);
    expect((err as SecAggError).code).toBe(SecAggErrorCode.BAD_CIPHERTEXT);
    expect(sim.clients[4].phase).toBe('aborted');
    expectExact(sim, [4]);
  });

  it('a bad AdvertiseKeys signature is rejected by the server; a forged one relayed to a client aborts it', () => {
    // Server side.
    const sim = run([], {
      tamperReply: (from, msg) => {
        if (from !== 'client-0001' || msg.type !== 'secagg_advertise_keys') return msg;
        const sig = fromBase64Url(msg.signature);
        sig[3] ^= 0x10;
        return { ...msg, signature: toBase64Url(sig) };
      },
    });
    expect((sim.serverErrors.get('client-0001') as SecAggError).code).toBe(SecAggErrorCode.BAD_SIGNATURE);
    expectExact(sim, [1]);
    // Client side: the server swaps a neighbour's mask key (without a valid signature).
    const victim = 'client-0002';
    const sim2 = run([], {
      tamper: (to, msg) => {
        if (to !== victim || msg.type !== 'secagg_share_keys_request') return msg;
        const [first, second, ...rest] = msg.peers;
        return { ...msg, peers: [{ ...first, sPk: second.sPk }, second, ...rest] };
      },
    });
    expect((sim2.clientErrors.get(victim) as SecAggError).code).toBe(SecAggErrorCode.BAD_SIGNATURE);
    expect(sim2.clients[2].phase).toBe('aborted');
    expectExact(sim2, [2]);
  });

  it('bad consistency signatures: rejected by the server, and a client refuses to unmask on one', () => {
    const sim = run([], {
      tamperReply: (from, msg) => {
        if (from !== 'client-0005' || msg.type !== 'secagg_consistency_signature') return msg;
        const sig = fromBase64Url(msg.signature);
        sig[0] ^= 1;
        return { ...msg, signature: toBase64Url(sig) };
      },
    });
    expect((sim.serverErrors.get('client-0005') as SecAggError).code).toBe(SecAggErrorCode.BAD_SIGNATURE);
    expectExact(sim, []);
    const victim = 'client-0006';
    const sim2 = run([], {
      tamper: (to, msg) => {
        if (to !== victim || msg.type !== 'secagg_unmask_request') return msg;
        const sig = fromBase64Url(msg.signatures[0].signature);
        sig[10] ^= 4;
        return { ...msg, signatures: [{ ...msg.signatures[0], signature: toBase64Url(sig) }, ...msg.signatures.slice(1)] };
      },
    });
    expect((sim2.clientErrors.get(victim) as SecAggError).code).toBe(SecAggErrorCode.BAD_SIGNATURE);
    expect(sim2.clients[6].revealed.size).toBe(0);
    expectExact(sim2, []); // the others still hold enough shares
  });

  it('replayed messages from an earlier round are rejected', () => {
    const n = 8;
    const ids = Array.from({ length: n }, (_, i) => `c${i}`);
    const identities = ids.map(() => ed25519KeyPair());
    const params = { neighbors: 4, threshold: 3, bits: 16, dim: 10 };
    const mk = (round: number) => ({
      server: new SecAggServer({ jobId: 'job', round, cohort: ids, params, minSurvivors: n, identityKeys: new Map(ids.map((id, i) => [id, identities[i].publicKey])) }),
      clients: ids.map((clientId, i) => new SecAggClient({ clientId, jobId: 'job', round, identity: identities[i] })),
    });
    const r1 = mk(1);
    const r2 = mk(2);
    const req1 = r1.server.start();
    const req2 = r2.server.start();
    const old = r1.clients[0].handle(req1.get('c0')!)[0];
    // 1. The old message as is.
    expect(() => r2.server.receive('c0', old)).toThrow(expect.objectContaining({ code: SecAggErrorCode.WRONG_ROUND }));
    // 2. Relabelled to the new round: the session tag no longer matches; with the tag forged too,
    //    the signature (which binds the old round's configuration) does not verify.
    expect(() => r2.server.receive('c0', { ...old, round: 2 })).toThrow(expect.objectContaining({ code: SecAggErrorCode.WRONG_SESSION }));
    expect(() => r2.server.receive('c0', { ...old, round: 2, session: r2.server.session })).toThrow(
      expect.objectContaining({ code: SecAggErrorCode.BAD_SIGNATURE }),
    );
    // 3. A client rejects a server message of the earlier round and keeps going.
    expect(() => r2.clients[1].handle(req1.get('c1')!)).toThrow(expect.objectContaining({ code: SecAggErrorCode.WRONG_ROUND }));
    expect(r2.clients[1].phase).toBe('init');
    // 4. Shares encrypted in round 1, replayed into round 2, do not decrypt (keys bind the round).
    for (let i = 0; i < n; i++) {
      r1.server.receive(ids[i], i === 0 ? old : r1.clients[i].handle(req1.get(ids[i])!)[0]);
      r2.server.receive(ids[i], r2.clients[i].handle(req2.get(ids[i])!)[0]);
    }
    const share1 = r1.server.advance();
    const share2 = r2.server.advance();
    for (let i = 0; i < n; i++) {
      r1.server.receive(ids[i], r1.clients[i].handle(share1.get(ids[i])!)[0]);
      r2.server.receive(ids[i], r2.clients[i].handle(share2.get(ids[i])!)[0]);
    }
    const masked1 = r1.server.advance().get('c3') as Extract<SecAggServerMessage, { type: 'secagg_masked_input_request' }>;
    const masked2 = r2.server.advance().get('c3') as Extract<SecAggServerMessage, { type: 'secagg_masked_input_request' }>;
    const replayed = { ...masked2, shares: masked2.shares.map((s) => masked1.shares.find((o) => o.from === s.from) ?? s) };
    expect(() => r2.clients[3].handle(replayed)).toThrow(expect.objectContaining({ code: SecAggErrorCode.BAD_CIPHERTEXT }));
    // 5. A duplicate within the round is rejected too.
    expect(() => r2.server.receive('c0', old)).toThrow(SecAggError);
  });

  it('messages from an aborted attempt of the same round number are rejected (session tag)', () => {
    const ids = ['a', 'b', 'c', 'd'];
    const identities = ids.map(() => ed25519KeyPair());
    const params = { neighbors: 3, threshold: 2, bits: 8, dim: 4 };
    const attempt = () => ({
      server: new SecAggServer({ jobId: 'job', round: 5, cohort: ids, params, minSurvivors: 4 }),
      clients: ids.map((clientId, i) => new SecAggClient({ clientId, jobId: 'job', round: 5, identity: identities[i] })),
    });
    const first = attempt();
    const second = attempt();
    const req1 = first.server.start();
    const req2 = second.server.start();
    expect(first.server.session).not.toBe(second.server.session);
    const stale = first.clients[0].handle(req1.get('a'))[0];
    expect(() => second.server.receive('a', stale)).toThrow(expect.objectContaining({ code: SecAggErrorCode.WRONG_SESSION }));
    second.server.receive('a', second.clients[0].handle(req2.get('a'))[0]);
    // A client of the second attempt (once it has the attempt's request) rejects a stale server
    // message without aborting. (Before its first request a client cannot tell attempts apart:
    // the engine creates one SecAggClient per attempt when that attempt's request arrives.)
    second.clients[1].handle(req2.get('b'));
    expect(() => second.clients[1].handle(req1.get('b'))).toThrow(expect.objectContaining({ code: SecAggErrorCode.WRONG_SESSION }));
    expect(second.clients[1].phase).toBe('advertised');
  });
});

describe('never reveal both shares of one peer', () => {
  /** Drives a small round up to the point where every live client has signed U3. */
  function toUnmask(n = 10) {
    const ids = Array.from({ length: n }, (_, i) => `c${i}`);
    const identities = ids.map(() => ed25519KeyPair());
    const server = new SecAggServer({ jobId: 'j', round: 1, cohort: ids, params: { neighbors: 4, threshold: 3, bits: 8, dim: 4 }, minSurvivors: n - 2 });
    const clients = ids.map((clientId, i) => new SecAggClient({ clientId, jobId: 'j', round: 1, identity: identities[i] }));
    clients.forEach((c) => c.setInput(new Uint32Array([1, 2, 3, 4])));
    let out = server.start();
    const history: Map<string, SecAggServerMessage>[] = [];
    for (const phase of ['advertise', 'share', 'collect', 'consistency']) {
      history.push(out);
      for (const [id, msg] of out) {
        const i = ids.indexOf(id);
        if (phase === 'collect' && i === 1) continue; // c1 drops before sending its input
        for (const reply of clients[i].handle(msg)) server.receive(id, reply);
      }
      out = server.advance();
    }
    return { ids, server, clients, history, unmaskRequests: out };
  }

  it('a second Unmask request (e.g. claiming a survivor dropped) is refused; nothing more is revealed', () => {
    const { ids, clients, unmaskRequests } = toUnmask();
    const [id, req] = [...unmaskRequests].find(([cid]) => clients[ids.indexOf(cid)].neighbors.includes('c1'))!;
    const client = clients[ids.indexOf(id)];
    const replies = client.handle(req) as Extract<SecAggClientMessage, { type: 'secagg_unmask' }>[];
    expect(replies[0].keyShares.map((s) => s.of)).toContain('c1');
    expect(replies[0].selfShares.map((s) => s.of)).not.toContain('c1');
    const before = new Map(client.revealed);
    expect(() => client.handle(req)).toThrow(expect.objectContaining({ code: SecAggErrorCode.UNEXPECTED }));
    expect(client.revealed).toEqual(before);
    for (const [peer, kind] of client.revealed) expect(kind).toBe(peer === 'c1' ? 'key' : 'self');
  });

  it('a consistency request that would make the client reveal keys of a survivor it masked with is refused', () => {
    const ids = Array.from({ length: 10 }, (_, i) => `c${i}`);
    const identities = ids.map(() => ed25519KeyPair());
    const server = new SecAggServer({ jobId: 'j', round: 1, cohort: ids, params: { neighbors: 4, threshold: 3, bits: 8, dim: 4 }, minSurvivors: 6 });
    const clients = ids.map((clientId, i) => new SecAggClient({ clientId, jobId: 'j', round: 1, identity: identities[i], minSurvivorsFloor: 6 }));
    clients.forEach((c) => c.setInput(new Uint32Array(4)));
    let out = server.start();
    for (let phase = 0; phase < 3; phase++) {
      for (const [id, msg] of out) for (const r of clients[ids.indexOf(id)].handle(msg)) server.receive(id, r);
      out = server.advance();
    }
    // A lying server: tells c0 that a survivor set without c0 itself, then one below the floor.
    const req = out.get('c0') as Extract<SecAggServerMessage, { type: 'secagg_consistency_request' }>;
    const all = decodeMembers(10, fromBase64Url(req.survivors));
    const c0 = clients[0];
    const withoutMe = toBase64Url(encodeMembers(10, [...all].filter((i) => i !== 0)));
    expect(() => c0.handle({ ...req, survivors: withoutMe })).toThrow(expect.objectContaining({ code: SecAggErrorCode.UNSAFE_REQUEST }));
    expect(c0.phase).toBe('aborted');
    const c2 = clients[2];
    const tiny = toBase64Url(encodeMembers(10, [0, 1, 2]));
    expect(() => c2.handle({ ...out.get('c2')!, survivors: tiny } as SecAggServerMessage)).toThrow(/at least 6 required/);
    expect(c2.revealed.size).toBe(0);
  });
});

describe('client policy', () => {
  it('refuses a graph weaker than its security policy', () => {
    const ids = Array.from({ length: 40 }, (_, i) => `c${i}`);
    const weak = new SecAggServer({ jobId: 'j', round: 1, cohort: ids, params: { neighbors: 4, threshold: 3, bits: 8, dim: 2 }, minSurvivors: 36 });
    const strong = new SecAggServer({ jobId: 'j', round: 1, cohort: ids, params: { neighbors: 12, threshold: 7, bits: 8, dim: 2 }, minSurvivors: 36 });
    const client = () => new SecAggClient({ clientId: 'c3', jobId: 'j', round: 1, identity: ed25519KeyPair(), securityPolicy: { corruptRate: 0.05 } });
    const c = client();
    expect(() => c.handle(weak.start().get('c3'))).toThrow(expect.objectContaining({ code: SecAggErrorCode.UNSAFE_REQUEST }));
    expect(c.phase).toBe('aborted');
    expect(client().handle(strong.start().get('c3'))[0].type).toBe('secagg_advertise_keys');
  });
});

describe('messages', () => {
  it('every header survives JSON (the masked input travels as binary)', () => {
    const msgs: unknown[] = [];
    simulateRound({
      n: 6,
      dim: 8,
      bits: 12,
      neighbors: 4,
      threshold: 3,
      minSurvivors: 6,
      tamper: (_to, m) => (msgs.push(m), JSON.parse(JSON.stringify(m)) as SecAggServerMessage),
      tamperReply: (_from, m) => {
        msgs.push(m);
        return m.type === 'secagg_masked_input' ? m : (JSON.parse(JSON.stringify(m)) as SecAggClientMessage);
      },
    });
    expect(msgs.length).toBeGreaterThan(50);
  });

  it('rejects unknown fields, wrong lengths and a registry mismatch', () => {
    const ids = ['a', 'b', 'c'];
    const ident = ids.map(() => ed25519KeyPair());
    const server = new SecAggServer({ jobId: 'j', round: 1, cohort: ids, params: { neighbors: 2, threshold: 2, bits: 8, dim: 2 }, minSurvivors: 3, identityKeys: new Map(ids.map((id, i) => [id, ident[i].publicKey])) });
    const req = server.start();
    const msg = new SecAggClient({ clientId: 'a', jobId: 'j', round: 1, identity: ident[0] }).handle(req.get('a'))[0];
    expect(() => server.receive('a', { ...msg, extra: 1 })).toThrow(expect.objectContaining({ code: SecAggErrorCode.BAD_MESSAGE }));
    expect(() => server.receive('a', { ...msg, cPk: 'AAAA' })).toThrow(expect.objectContaining({ code: SecAggErrorCode.BAD_MESSAGE }));
    const impostor = new SecAggClient({ clientId: 'b', jobId: 'j', round: 1, identity: ed25519KeyPair() }).handle(req.get('b'))[0];
    expect(() => server.receive('b', impostor)).toThrow(expect.objectContaining({ code: SecAggErrorCode.UNKNOWN_IDENTITY }));
    expect(() => server.receive('zz', msg)).toThrow(expect.objectContaining({ code: SecAggErrorCode.NOT_PARTICIPANT }));
    server.receive('a', msg);
    expect(() => server.receive('a', msg)).toThrow(expect.objectContaining({ code: SecAggErrorCode.DUPLICATE }));
  });
});
