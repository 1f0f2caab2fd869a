/**
 * The neighbour graph is derived, not chosen (issue 15 item 5; keys.ts): the coordinator announces a
 * nonce, not a graph seed; when Round 0 closes it lists who advertised and every advertisement's
 * digest, and each client derives the seed from that list — checking its own advertisement and each
 * neighbour's against it. Here: the seed is the list's hash and every client gets the same list; fresh
 * advertisements give a fresh graph for the same announcement; a coordinator that alters one
 * advertisement's digest to steer the graph (and relays peers consistent with the steered graph) is
 * caught by that client and by every neighbour it was given; a malformed list is refused.
 */
import { describe, expect, it } from 'vitest';
import { fromBase64Url, toBase64Url } from '../crypto/bytes.ts';
import { ed25519KeyPair } from '../crypto/ed25519.ts';
import { randomBytes } from '../random.ts';
import { SecAggClient } from './client.ts';
import { SecAggErrorCode, type SecAggError } from './errors.ts';
import { neighborGraph } from './graph.ts';
import { ADVERTISEMENT_DIGEST_BYTES, advertisementDigest, decodeMembers, derivedGraphSeed, roundConfigHash } from './keys.ts';
import type { AdvertiseKeys, AdvertiseRequest, SecAggServerMessage, ShareKeysRequest } from './messages.ts';
import { findGraphParams } from './params.ts';
import { SecAggServer } from './server.ts';
import { simulateRound } from './testing/simulate.ts';

const N = 30;
const PARAMS = findGraphParams({ clients: N, dropoutRate: 0.1, corruptRate: 0.05 });
const K = PARAMS.neighbors;
const T = PARAMS.threshold;
const MIN = N - PARAMS.maxDropouts;
const identities = Array.from({ length: N }, () => ed25519KeyPair());
const NONCE = new Uint8Array(32).fill(3);

const configHashOf = (req: AdvertiseRequest) =>
  roundConfigHash({ jobId: req.jobId, round: req.round, cohort: req.cohort, nonce: fromBase64Url(req.nonce), neighbors: req.neighbors, threshold: req.threshold, bits: req.bits, dim: req.dim, minSurvivors: req.minSurvivors, prg: req.prg });

function run(tamper?: Parameters<typeof simulateRound>[0]['tamper'], tamperReply?: Parameters<typeof simulateRound>[0]['tamperReply']) {
  const seen = { advertise: undefined as AdvertiseRequest | undefined, shareKeys: new Map<string, ShareKeysRequest>() };
  const sim = simulateRound({
    n: N,
    dim: 16,
    bits: 16,
    neighbors: K,
    threshold: T,
    minSurvivors: MIN,
    identities,
    nonce: NONCE,
    tamper: (to, msg) => {
      if (msg.type === 'secagg_advertise_request') seen.advertise = msg;
      const out = tamper ? tamper(to, msg) : msg;
      if (out.type === 'secagg_share_keys_request') seen.shareKeys.set(to, out);
      return out;
    },
    ...(tamperReply ? { tamperReply } : {}),
  });
  return { sim, seen };
}

describe('the neighbour graph is derived from the signed advertisements', () => {
  it('the seed is the hash of the list every client is given, and the round is exact', () => {
    const { sim, seen } = run();
    if (sim.result.status !== 'ok') throw new Error(JSON.stringify(sim.result));
    expect(Buffer.from(sim.result.sum.buffer).equals(Buffer.from(sim.expectedSum(sim.ids).buffer))).toBe(true);
    expect(K).toBeLessThan(N - 1); // a real SecAgg+ graph, not the complete one
    // The announcement carries a nonce and no graph.
    expect(seen.advertise).toBeDefined();
    expect('graphSeed' in seen.advertise!).toBe(false);
    // Every client got the same list; the server's seed is its hash.
    const lists = new Set([...seen.shareKeys.values()].map((m) => `${m.advertised}/${m.digests}`));
    expect(seen.shareKeys.size).toBe(N);
    expect(lists.size).toBe(1);
    const one = [...seen.shareKeys.values()][0];
    const seed = derivedGraphSeed(configHashOf(seen.advertise!), fromBase64Url(one.advertised), fromBase64Url(one.digests));
    expect(toBase64Url(sim.server.graphSeed!)).toBe(toBase64Url(seed));
    expect(decodeMembers(N, fromBase64Url(one.advertised)).size).toBe(N);
    // Each client's neighbours are the derived graph's.
    const graph = neighborGraph(N, K, seed);
    sim.clients.forEach((c, i) => expect(c.neighbors).toEqual([...graph.neighbors(i)].map((j) => sim.ids[j])));
  });

  it('the same announcement with fresh advertisements gives another graph (the coordinator cannot fix it in advance)', () => {
    const a = run().sim;
    const b = run().sim;
    expect(a.result.status).toBe('ok');
    expect(b.result.status).toBe('ok');
    expect(a.server.session).toBe(b.server.session); // the same announced configuration
    expect(toBase64Url(a.server.graphSeed!)).not.toBe(toBase64Url(b.server.graphSeed!));
    expect(a.clients[0].neighbors).not.toEqual(b.clients[0].neighbors);
  });

  it('a coordinator that alters one advertisement to steer the graph is caught by that client and every neighbour it relays it to', () => {
    const VICTIM = 7;
    const adverts = new Map<string, AdvertiseKeys>();
    let announced: AdvertiseRequest | undefined;
    let steered: { advertised: string; digests: string; graph: ReturnType<typeof neighborGraph> } | undefined;
    const { sim } = run(
      (to, msg): SecAggServerMessage => {
        if (msg.type === 'secagg_advertise_request') announced = msg;
        if (msg.type !== 'secagg_share_keys_request') return msg;
        if (!steered) {
          // The hostile coordinator swaps the victim's digest for one of its choosing, derives the graph
          // that gives, and relays peers consistent with it (the real advertisements).
          const digests = fromBase64Url(msg.digests);
          digests.set(randomBytes(ADVERTISEMENT_DIGEST_BYTES), VICTIM * ADVERTISEMENT_DIGEST_BYTES);
          const configHash = configHashOf(announced!);
          const graph = neighborGraph(N, K, derivedGraphSeed(configHash, fromBase64Url(msg.advertised), digests));
          steered = { advertised: msg.advertised, digests: toBase64Url(digests), graph };
        }
        const cohort = announced!.cohort;
        const peers = [...steered.graph.neighbors(cohort.indexOf(to))].map((v) => {
          const a = adverts.get(cohort[v])!;
          return { clientId: cohort[v], identityKey: a.identityKey, cPk: a.cPk, sPk: a.sPk, signature: a.signature };
        });
        return { ...msg, advertised: steered.advertised, digests: steered.digests, peers };
      },
      (from, reply) => {
        if (reply.type === 'secagg_advertise_keys') adverts.set(from, reply);
        return reply;
      },
    );
    expect(steered).toBeDefined();
    const err = (i: number) => sim.clientErrors.get(sim.ids[i]) as SecAggError | undefined;
    expect(err(VICTIM)?.code).toBe(SecAggErrorCode.BAD_ROSTER);
    expect(err(VICTIM)?.message).toMatch(/own/);
    const victimNeighbours = [...steered!.graph.neighbors(VICTIM)];
    expect(victimNeighbours.length).toBe(K);
    for (const v of victimNeighbours) {
      expect(err(v)?.code, sim.ids[v]).toBe(SecAggErrorCode.BAD_ROSTER);
      expect(err(v)?.message).toContain(sim.ids[VICTIM]);
      expect(sim.clients[v].phase).toBe('aborted');
    }
    // Nobody made a share for the victim's keys under the steered graph: every holder aborted first.
    for (const c of sim.clients) expect(c.revealed.size).toBe(0);
  });

  it('refuses a malformed list: digests that do not match the members, or a list without this client', () => {
    const server = new SecAggServer({ jobId: 'job', round: 1, cohort: ['a', 'b', 'c'], params: { neighbors: 2, threshold: 2, bits: 8, dim: 4 }, minSurvivors: 3 });
    const req = server.start();
    const keys = ['a', 'b', 'c'].map(() => ed25519KeyPair());
    const clients = ['a', 'b', 'c'].map((id, i) => new SecAggClient({ clientId: id, jobId: 'job', round: 1, identity: keys[i] }));
    const replies = clients.map((c, i) => c.handle(req.get(['a', 'b', 'c'][i]))[0] as AdvertiseKeys);
    replies.forEach((reply, i) => server.receive(['a', 'b', 'c'][i], reply));
    const share = server.advance();
    const forA = share.get('a') as ShareKeysRequest;
    const short = { ...forA, digests: toBase64Url(fromBase64Url(forA.digests).subarray(0, 2 * ADVERTISEMENT_DIGEST_BYTES)) };
    expect(() => clients[0].handle(short)).toThrow(/64 bytes of digests for 3 advertisements/);
    const forB = share.get('b') as ShareKeysRequest;
    // b is told it did not advertise (bit 1 cleared, its digest removed).
    const digests = fromBase64Url(forB.digests);
    const without = { ...forB, advertised: toBase64Url(new Uint8Array([0b101])), digests: toBase64Url(new Uint8Array([...digests.subarray(0, 32), ...digests.subarray(64)])), peers: [] };
    expect(() => clients[1].handle(without)).toThrow(expect.objectContaining({ code: SecAggErrorCode.BAD_ROSTER }));
    // c's request, untouched, lists c's advertisement as c computes it, and is accepted.
    const forC = share.get('c') as ShareKeysRequest;
    const configHash = configHashOf(req.get('c') as AdvertiseRequest);
    const r = replies[2];
    const expected = advertisementDigest(configHash, 'c', keys[2].publicKey, fromBase64Url(r.cPk), fromBase64Url(r.sPk), fromBase64Url(r.signature));
    expect(toBase64Url(fromBase64Url(forC.digests).subarray(2 * 32, 3 * 32))).toBe(toBase64Url(expected));
    expect(clients[2].handle(forC)).toHaveLength(1);
  });
});
