/**
 * The mask PRG as part of the round configuration (crypto/prg.ts, keys.ts, messages.ts): the server
 * announces it in AdvertiseRequest, the config hash binds it, and every client expands the announced
 * one — so a round is exact with either PRG and with node:crypto and portable implementations mixed,
 * and a relayed request whose PRG was changed is refused.
 */
import { describe, expect, it } from 'vitest';
import { aes256CtrNode, aes256CtrPortable, chacha20Node, chacha20Portable, type MaskPrgName, type PrgImpl } from '../crypto/prg.ts';
import { ed25519KeyPair } from '../crypto/ed25519.ts';
import { toBase64Url } from '../crypto/bytes.ts';
import { SecAggClient } from './client.ts';
import { SecAggError, SecAggErrorCode } from './errors.ts';
import { roundConfigHash, sessionId, type RoundConfig } from './keys.ts';
import { parseServerMessage, type AdvertiseRequest, type SecAggClientMessage, type SecAggServerMessage } from './messages.ts';
import { SecAggServer } from './server.ts';

const N = 7;
const DIM = 70_000; // more than one 64 KiB accumulator slice
const BITS = 16;
const PARAMS = { neighbors: 6, threshold: 4, bits: BITS, dim: DIM };

interface Run {
  sum?: Uint32Array;
  expected: Uint32Array;
  clients: SecAggClient[];
  advertise: AdvertiseRequest;
}

/** One round with real state machines; clients in `dropBeforeInput` go silent after ShareKeys. */
function runRound(opts: { serverPrg?: MaskPrgName | PrgImpl; clientPrg?: (i: number) => PrgImpl | undefined; dropBeforeInput?: number[] }): Run {
  const ids = Array.from({ length: N }, (_, i) => `c${i}`);
  const dropped = new Set(opts.dropBeforeInput ?? []);
  const server = new SecAggServer({ jobId: 'j', round: 1, cohort: ids, params: PARAMS, minSurvivors: N - dropped.size, prg: opts.serverPrg });
  const clients = ids.map((clientId, i) => new SecAggClient({ clientId, jobId: 'j', round: 1, identity: ed25519KeyPair(), prg: opts.clientPrg?.(i) }));
  const inputs = ids.map((_, i) => Uint32Array.from({ length: DIM }, (_, j) => (i * 7919 + j * 104729) & 0xffff));
  const expected = new Uint32Array(DIM);
  for (let i = 0; i < N; i++) if (!dropped.has(i)) for (let j = 0; j < DIM; j++) expected[j] = (expected[j] + inputs[i][j]) & 0xffff;
  let out: Map<string, SecAggServerMessage> = server.start();
  const advertise = out.get('c0') as AdvertiseRequest;
  while (server.phase !== 'done' && server.phase !== 'aborted') {
    for (const [id, msg] of out) {
      const i = ids.indexOf(id);
      if (dropped.has(i) && server.phase !== 'advertise' && server.phase !== 'share') continue;
      let replies: SecAggClientMessage[] = clients[i].handle(msg);
      if (msg.type === 'secagg_masked_input_request') replies = clients[i].setInput(inputs[i]);
      for (const r of replies) server.receive(id, r);
    }
    out = server.advance();
  }
  const result = server.result();
  return { sum: result.status === 'ok' ? result.sum : undefined, expected, clients, advertise };
}

function expectExact(r: Run): void {
  expect(r.sum).toBeDefined();
  expect(Buffer.from(r.sum!.buffer).equals(Buffer.from(r.expected.buffer))).toBe(true);
}

describe('mask PRG in the round configuration', () => {
  it('defaults to aes-256-ctr: announced, used by every client, exact with a dropout', () => {
    const r = runRound({ dropBeforeInput: [3] });
    expect(r.advertise.prg).toBe('aes-256-ctr');
    for (const c of r.clients) expect(c.maskPrg).toBe('aes-256-ctr/node');
    expectExact(r);
  });

  it('chacha20 when the server announces it: exact with a dropout', () => {
    const r = runRound({ serverPrg: 'chacha20', dropBeforeInput: [5] });
    expect(r.advertise.prg).toBe('chacha20');
    for (const c of r.clients) expect(c.maskPrg).toBe('chacha20/node');
    expectExact(r);
  });

  it('portable and node:crypto implementations mix in one round (both PRGs)', () => {
    const aes = runRound({ serverPrg: aes256CtrPortable, clientPrg: (i) => (i % 2 ? aes256CtrPortable : undefined), dropBeforeInput: [2] });
    expect(aes.advertise.prg).toBe('aes-256-ctr');
    expect(aes.clients.map((c) => c.maskPrg)).toEqual(Array.from({ length: N }, (_, i) => (i % 2 ? 'aes-256-ctr/portable' : 'aes-256-ctr/node')));
    expectExact(aes);
    const chacha = runRound({ serverPrg: 'chacha20', clientPrg: (i) => (i % 2 ? chacha20Portable : undefined), dropBeforeInput: [2] });
    expectExact(chacha);
  });

  it('a client override for another PRG is ignored: the client follows the announcement', () => {
    const r = runRound({ serverPrg: 'chacha20', clientPrg: () => aes256CtrNode });
    for (const c of r.clients) expect(c.maskPrg).toBe('chacha20/node');
    expectExact(r);
  });

  it('a server expanding a different PRG than its clients cannot unmask (the PRGs really differ)', () => {
    // Deliberately inconsistent: announces chacha20 (its impl's name) but a liar impl expands AES.
    const liar: PrgImpl = { name: 'liar', prg: 'chacha20', open: (seed) => aes256CtrNode!.open(seed) };
    const r = runRound({ serverPrg: liar, clientPrg: () => chacha20Node });
    expect(r.sum).toBeDefined();
    expect(Buffer.from(r.sum!.buffer).equals(Buffer.from(r.expected.buffer))).toBe(false);
  });

  it('the config hash binds the PRG; an absent prg means aes-256-ctr', () => {
    const base: RoundConfig = { jobId: 'j', round: 1, cohort: ['a', 'b', 'c'], nonce: new Uint8Array(32), neighbors: 2, threshold: 2, bits: 16, dim: 10, minSurvivors: 2 };
    const hex = (c: RoundConfig) => Buffer.from(roundConfigHash(c)).toString('hex');
    expect(hex(base)).toBe(hex({ ...base, prg: 'aes-256-ctr' }));
    expect(hex({ ...base, prg: 'chacha20' })).not.toBe(hex(base));
  });

  it('a relayed AdvertiseRequest whose prg was changed is refused (session no longer matches)', () => {
    const server = new SecAggServer({ jobId: 'j', round: 1, cohort: ['a', 'b', 'c'], params: { neighbors: 2, threshold: 2, bits: 8, dim: 4 }, minSurvivors: 3 });
    const req = server.start().get('a') as AdvertiseRequest;
    const client = new SecAggClient({ clientId: 'a', jobId: 'j', round: 1, identity: ed25519KeyPair() });
    expect(() => client.handle({ ...req, prg: 'chacha20' })).toThrow(/session does not match/);
    expect(client.phase).toBe('aborted');
    // Dropping the field is the same as announcing the default, so that request is accepted.
    const { prg, ...withoutPrg } = req;
    expect(prg).toBe('aes-256-ctr');
    const other = new SecAggClient({ clientId: 'b', jobId: 'j', round: 1, identity: ed25519KeyPair() });
    expect(other.handle(withoutPrg)).toHaveLength(1);
    expect(other.maskPrg).toBe('aes-256-ctr/node');
  });

  it('an absent prg on the wire: the client uses AES and the session still verifies', () => {
    const cfg: RoundConfig = { jobId: 'j', round: 1, cohort: ['a', 'b', 'c'], nonce: new Uint8Array(32).fill(1), neighbors: 2, threshold: 2, bits: 8, dim: 4, minSurvivors: 3 };
    const msg = parseServerMessage({
      type: 'secagg_advertise_request',
      jobId: 'j',
      round: 1,
      session: sessionId(roundConfigHash(cfg)),
      cohort: cfg.cohort,
      nonce: toBase64Url(cfg.nonce),
      neighbors: 2,
      threshold: 2,
      bits: 8,
      dim: 4,
      minSurvivors: 3,
    });
    expect('prg' in msg).toBe(false);
    const client = new SecAggClient({ clientId: 'c', jobId: 'j', round: 1, identity: ed25519KeyPair() });
    expect(client.handle(msg)).toHaveLength(1);
    expect(client.maskPrg).toBe('aes-256-ctr/node');
  });

  it('unknown PRG names are rejected by the schema and by the server', () => {
    const server = new SecAggServer({ jobId: 'j', round: 1, cohort: ['a', 'b', 'c'], params: { neighbors: 2, threshold: 2, bits: 8, dim: 4 }, minSurvivors: 3 });
    const req = server.start().get('a')!;
    const client = new SecAggClient({ clientId: 'a', jobId: 'j', round: 1, identity: ed25519KeyPair() });
    let err: unknown;
    try {
      client.handle({ ...req, prg: 'aes-128-ctr' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SecAggError);
    expect((err as SecAggError).code).toBe(SecAggErrorCode.BAD_MESSAGE);
    expect(client.phase).toBe('init'); // malformed: rejected, state unchanged
    expect(() => new SecAggServer({ jobId: 'j', round: 1, cohort: ['a', 'b'], params: { neighbors: 1, threshold: 1, bits: 8, dim: 4 }, minSurvivors: 2, prg: 'rc4' as MaskPrgName })).toThrow(/unknown mask PRG/);
  });
});
