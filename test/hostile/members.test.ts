/**
 * Hostile *sampled members*: clients that completed hello, are in the cohort, receive `train` /
 * `evaluate` / `secagg_down` and answer with garbage or out-of-range values, inside plain, central-DP
 * and SecAgg rounds (every SecAgg phase: advertise, share, collect, consistency, unmask). Each hostile
 * member runs the honest client engine (so it takes part for real) on a tapping connection that, in
 * its hostile phase, first sends state-preserving garbage (each must be rejected with a typed error),
 * then a decider (its honest message, or an out-of-range / schema-valid but wrong one), then replays.
 *
 * Pass: every input answered as required, honest clients included in every round, every job
 * `completed`, no uncaught error, no error-level log, store consistent (ledger row per DP round).
 * Replay with COHORT_HOSTILE_SEED=<seed>.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ClientEngine } from '../../client/engine/index.ts';
import type { ClientMessage, EvalResult, SecAggUp, Update } from '../../shared/protocol/index.ts';
import { EXTREMES, f32bytes, frames, Gen, secaggBodies, setPath, WRONG_TYPED, type Ctx } from './templates.ts';
import { checkStore, Tally } from './checks.ts';
import {
  CheapTask,
  crashRecorder,
  hostileSeed,
  honestClient,
  startJob,
  within,
  type Expect,
  type HonestClient,
  type HostileInput,
} from './harness.ts';
import { TapConnection } from './tap.ts';

const SEED = hostileSeed();
const DIM = 8 * 2 + 2;
const MODEL = { zoo: 'logreg', inputShape: [8], numClasses: 2 };

type Header = Record<string, unknown>;
const REPLAY_CODES = ['DUPLICATE', 'NOT_IN_ROUND', 'SECAGG_DUPLICATE', 'SECAGG_UNEXPECTED', 'SECAGG_NOT_PARTICIPANT'];
const REPLAY: Expect = { kind: 'error', codes: REPLAY_CODES };
const RANGE: Expect = { kind: 'error', codes: ['OUT_OF_RANGE'] };

function split(msg: ClientMessage): { header: Header; binary?: Uint8Array } {
  const { vector, payload, ...header } = msg as ClientMessage & { vector?: Float32Array; payload?: Uint8Array };
  const b = vector ?? payload;
  return { header, binary: b ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice() : undefined };
}

/** Garbage that a member may send in its round without changing anything: each must be rejected. */
function updateGarbage(g: Gen, u: Header, binary: Uint8Array, ids: () => number, category: string): HostileInput[] {
  const out: HostileInput[] = [];
  const add = (label: string, msg: Header, bin: Uint8Array | undefined, expect: Expect) => out.push({ category, label, emits: frames(msg, ids(), bin), expect });
  const round = u.round as number;
  for (const len of [0, 1, DIM - 1, DIM + 1, 2 * DIM]) add(`update with ${len} values`, u, f32bytes(new Float32Array(len).fill(0.01)), { kind: 'error', codes: ['WRONG_LENGTH'] });
  for (const bits of [0x7fc00000, 0x7f800000, 0xff800000]) {
    const v = new Uint32Array(binary.slice().buffer);
    v[g.int(0, DIM - 1)] = bits;
    add(`update vector with 0x${bits.toString(16)}`, u, new Uint8Array(v.buffer), { kind: 'error', codes: ['NON_FINITE'] });
  }
  const schemaBad: [string, unknown][] = [['NaN', NaN], ['Infinity', Infinity], ['0', 0], ['-1', -1], ['0.5', 0.5], ['2^40+1', 2 ** 40 + 1], ['MAX_SAFE_INTEGER', Number.MAX_SAFE_INTEGER], ['string', '10']];
  for (const [name, x] of schemaBad) add(`update.numExamples = ${name}`, setPath(u, ['numExamples'], x), binary, { kind: 'error', codes: ['BAD_SCHEMA'] });
  for (const [name, x] of [['NaN', NaN], ['Infinity', Infinity], ['-Infinity', -Infinity], ['string', 'x'], ['null', null], ['object', {}]] as [string, unknown][]) {
    add(`update.metrics.loss = ${name}`, setPath(u, ['metrics', 'loss'], x), binary, { kind: 'error', codes: ['BAD_SCHEMA'] });
    add(`update.metrics.accuracy = ${name}`, setPath(u, ['metrics', 'accuracy'], x), binary, { kind: 'error', codes: ['BAD_SCHEMA'] });
  }
  add('update.metrics key of 65 chars', setPath(u, ['metrics', 'k'.repeat(65)], 1), binary, { kind: 'error', codes: ['BAD_SCHEMA'] });
  for (const x of [0.3, 1, -1, 0, 'x']) add(`update.clipBit = ${JSON.stringify(x)}`, { ...u, clipBit: x }, binary, { kind: 'error', codes: ['BAD_SCHEMA'] });
  for (const [name, x] of EXTREMES) if (!(Number.isInteger(x) && x >= 1 && x <= 1e9)) add(`update.round = ${name}`, setPath(u, ['round'], x), binary, { kind: 'error', codes: ['BAD_SCHEMA'] });
  for (const r of [round + 1, round + 1000, 1e9]) add(`update for round ${r}`, { ...u, round: r }, binary, { kind: 'error', codes: ['NOT_IN_ROUND'] });
  if (round > 1) add(`update for the past round ${round - 1}`, { ...u, round: round - 1 }, binary, { kind: 'error', codes: ['NOT_IN_ROUND'] });
  add('update for another job', { ...u, jobId: 'another-job' }, binary, { kind: 'error', codes: ['UNKNOWN_JOB'] });
  for (const [name, v] of WRONG_TYPED.slice(0, 6)) add(`update.jobId = ${name}`, { ...u, jobId: v }, binary, { kind: 'error', codes: ['BAD_SCHEMA', 'UNKNOWN_JOB'] });
  add('update with an unknown field', { ...u, weightOverride: 1 }, binary, { kind: 'error', codes: ['BAD_SCHEMA'] });
  // Chunk-level abuse of the member's own update.
  let id = ids();
  out.push({ category, label: 'own update, chunk sent twice', emits: [{ event: 'head', args: [{ v: 1, id, msg: u, vec: { bytes: binary.length, chunks: 1 } }] }, { event: 'chunk', args: [{ id, i: 1 }, binary] }], expect: { kind: 'error', codes: ['BAD_FRAME'] } });
  id = ids();
  out.push({ category, label: 'own update, short chunk', emits: [{ event: 'head', args: [{ v: 1, id, msg: u, vec: { bytes: binary.length, chunks: 1 } }] }, { event: 'chunk', args: [{ id, i: 0 }, binary.subarray(4)] }], expect: { kind: 'error', codes: ['BAD_FRAME'] } });
  id = ids();
  out.push({ category, label: 'own update, vector bytes not a multiple of 4', emits: [{ event: 'head', args: [{ v: 1, id, msg: u, vec: { bytes: binary.length + 2, chunks: 1 } }] }], expect: { kind: 'error', codes: ['BAD_FRAME'] } });
  // Messages of the wrong phase.
  add('eval_result while training', { type: 'eval_result', jobId: u.jobId, round, numExamples: 10, loss: 0.5, accuracy: 0.5 }, undefined, { kind: 'error', codes: ['NOT_IN_ROUND'] });
  add('secagg_up in a plain round', { type: 'secagg_up', jobId: u.jobId, round, body: secaggBodies({ jobId: String(u.jobId), round, dim: DIM }).advertise }, undefined, { kind: 'error', codes: ['NOT_IN_ROUND'] });
  add('refuse for another round', { type: 'refuse', jobId: u.jobId, round: round + 7, reason: 'x' }, undefined, { kind: 'error', codes: ['NOT_IN_ROUND'] });
  return out;
}

/** A member's deciding update: its own, an out-of-range one (rejected and excluded), or a refusal. */
function updateDecider(g: Gen, u: Header, binary: Uint8Array, honest: boolean): { label: string; msg: Header; bin?: Uint8Array; expect: Expect } {
  if (honest) return { label: 'own update', msg: u, bin: binary, expect: { kind: 'silent' } };
  const metrics = (u.metrics ?? {}) as Record<string, number>;
  const filled = (x: number) => f32bytes(new Float32Array(DIM).fill(x));
  const oneAt = (x: number) => {
    const v = new Float32Array(binary.slice().buffer);
    v[g.int(0, DIM - 1)] = x;
    return new Uint8Array(v.buffer);
  };
  const options: (() => { label: string; msg: Header; bin?: Uint8Array; expect: Expect })[] = [
    () => ({ label: 'update: numExamples 2^40, loss 1e300', msg: { ...u, numExamples: 2 ** 40, metrics: { ...metrics, loss: 1e300 } }, bin: binary, expect: RANGE }),
    () => ({ label: 'update: metrics.loss 1e308', msg: { ...u, metrics: { ...metrics, loss: 1e308 } }, bin: binary, expect: RANGE }),
    () => ({ label: 'update: metrics.loss -1e308', msg: { ...u, metrics: { ...metrics, loss: -1e308 } }, bin: binary, expect: RANGE }),
    () => ({ label: 'update: metrics.accuracy 1e308', msg: { ...u, metrics: { ...metrics, accuracy: 1e308 } }, bin: binary, expect: RANGE }),
    () => ({ label: 'update: a custom metric of 1e300', msg: { ...u, metrics: { ...metrics, custom: 1e300 } }, bin: binary, expect: RANGE }),
    () => ({ label: 'update: numExamples 1e7+1', msg: { ...u, numExamples: 1e7 + 1 }, bin: binary, expect: RANGE }),
    () => ({ label: 'update: numExamples MAX 2^40', msg: { ...u, numExamples: 2 ** 40 }, bin: binary, expect: RANGE }),
    () => ({ label: 'update: every element 1e30', msg: u, bin: filled(1e30), expect: RANGE }),
    () => ({ label: 'update: one element at the float32 maximum', msg: u, bin: oneAt(3.4028234663852886e38), expect: RANGE }),
    () => ({ label: 'update: one element -1.5e6', msg: u, bin: oneAt(-1.5e6), expect: RANGE }),
    () => ({ label: 'a refusal instead', msg: { type: 'refuse', jobId: u.jobId, round: u.round, reason: 'x'.repeat(1024) }, expect: { kind: 'silent' } }),
  ];
  return g.pick(options)();
}

function evalGarbage(e: Header, ids: () => number, category: string): HostileInput[] {
  const out: HostileInput[] = [];
  const add = (label: string, msg: Header, expect: Expect) => out.push({ category, label, emits: frames(msg, ids()), expect });
  for (const [name, x] of [['1.5', 1.5], ['-0.1', -0.1], ['NaN', NaN], ['1e308', 1e308], ['string', '1']] as [string, unknown][]) add(`eval_result.accuracy = ${name}`, { ...e, accuracy: x }, { kind: 'error', codes: ['BAD_SCHEMA', 'OUT_OF_RANGE'] });
  for (const [name, x] of [['NaN', NaN], ['Infinity', Infinity], ['-1', -1], ['0.5', 0.5], ['2^40+1', 2 ** 40 + 1]] as [string, unknown][]) add(`eval_result.numExamples = ${name}`, { ...e, numExamples: x }, { kind: 'error', codes: ['BAD_SCHEMA'] });
  for (const [name, x] of [['NaN', NaN], ['-Infinity', -Infinity], ['null', null], ['array', [1]]] as [string, unknown][]) add(`eval_result.loss = ${name}`, { ...e, loss: x }, { kind: 'error', codes: ['BAD_SCHEMA'] });
  add('eval_result for another round', { ...e, round: (e.round as number) + 1 }, { kind: 'error', codes: ['NOT_IN_ROUND'] });
  add('eval_result for another job', { ...e, jobId: 'another-job' }, { kind: 'error', codes: ['UNKNOWN_JOB'] });
  add('update while evaluating', { type: 'update', jobId: e.jobId, round: e.round, numExamples: 1, metrics: {} }, { kind: 'error', codes: ['BAD_SCHEMA'] });
  out.push({ category, label: 'update while evaluating (with a vector)', emits: frames({ type: 'update', jobId: e.jobId, round: e.round, numExamples: 1, metrics: {} }, ids(), f32bytes(new Float32Array(DIM))), expect: { kind: 'error', codes: ['NOT_IN_ROUND'] } });
  return out;
}

function evalDecider(g: Gen, e: Header, honest: boolean): { label: string; msg: Header; expect: Expect } {
  if (honest) return { label: 'own eval_result', msg: e, expect: { kind: 'silent' } };
  return g.pick([
    { label: 'eval_result: loss 1e308', msg: { ...e, loss: 1e308 }, expect: RANGE },
    { label: 'eval_result: loss -1e308', msg: { ...e, loss: -1e308 }, expect: RANGE },
    { label: 'eval_result: numExamples 2^40, loss 1e300', msg: { ...e, numExamples: 2 ** 40, loss: 1e300 }, expect: RANGE },
    { label: 'eval_result: numExamples 1e7+1', msg: { ...e, numExamples: 1e7 + 1 }, expect: RANGE },
    { label: 'eval_result: loss 1e6+1', msg: { ...e, loss: 1e6 + 1 }, expect: RANGE },
  ]);
}

const PHASES = ['secagg_advertise_keys', 'secagg_share_keys', 'secagg_masked_input', 'secagg_consistency_signature', 'secagg_unmask'] as const;

/** Garbage for the member's SecAgg message of this phase (the honest body is `b`): none may change anything. */
function secaggGarbage(g: Gen, env: Header, b: Header, payload: Uint8Array | undefined, ids: () => number, category: string): HostileInput[] {
  const out: HostileInput[] = [];
  const send = (label: string, envelope: Header, body: unknown, bin: Uint8Array | undefined, expect: Expect) =>
    out.push({ category, label, emits: frames({ ...envelope, body }, ids(), bin), expect });
  const bad: Expect = { kind: 'error', codes: ['SECAGG_BAD_MESSAGE'] };
  for (const [name, v] of [['string', 'x'], ['array', [1]], ['null', null], ['number', 1]] as [string, unknown][]) send(`secagg body = ${name}`, env, v, payload, { kind: 'error', codes: ['BAD_SCHEMA'] });
  send('secagg body = {}', env, {}, payload, bad);
  for (const key of Object.keys(b)) {
    if (key === 'type') continue;
    for (const [name, v] of g.chance(0.5) ? WRONG_TYPED.slice(0, 7) : WRONG_TYPED.slice(5)) {
      // A "wrong" value equal to the honest one would be the honest message (and would be accepted).
      if (JSON.stringify(v) === JSON.stringify(b[key])) continue;
      send(`secagg body.${key} = ${name}`, env, { ...b, [key]: v }, payload, { kind: 'error', codes: ['SECAGG_BAD_MESSAGE', 'SECAGG_WRONG_JOB', 'SECAGG_WRONG_ROUND', 'SECAGG_WRONG_SESSION'] });
    }
    send(`secagg body without ${key}`, env, { ...b, [key]: undefined }, payload, bad);
    const value = b[key];
    if (typeof value === 'string' && value.length > 4) {
      send(`secagg body.${key} truncated`, env, { ...b, [key]: value.slice(1) }, payload, { kind: 'error', codes: ['SECAGG_BAD_MESSAGE', 'SECAGG_WRONG_JOB'] });
      send(`secagg body.${key} not base64url`, env, { ...b, [key]: `${value.slice(1)}*` }, payload, { kind: 'error', codes: ['SECAGG_BAD_MESSAGE', 'SECAGG_WRONG_JOB'] });
    }
  }
  for (const [name, x] of EXTREMES) send(`secagg body.round = ${name}`, env, { ...b, round: x }, payload, { kind: 'error', codes: ['SECAGG_BAD_MESSAGE', 'SECAGG_WRONG_ROUND'] });
  send('secagg body for another session', env, { ...b, session: 'Z'.repeat(16) }, payload, { kind: 'error', codes: ['SECAGG_WRONG_SESSION'] });
  send('secagg body for another job', env, { ...b, jobId: 'another-job' }, payload, { kind: 'error', codes: ['SECAGG_WRONG_JOB'] });
  send('secagg body for another round', env, { ...b, round: (b.round as number) + 1 }, payload, { kind: 'error', codes: ['SECAGG_WRONG_ROUND'] });
  send('secagg body with an unknown key', env, { ...b, extra: 1 }, payload, bad);
  send('secagg body with a 5,000-char unknown key', env, { ...b, ['k'.repeat(5000)]: 1 }, payload, bad);
  send('secagg envelope for another round', { ...env, round: (env.round as number) + 1 }, b, payload, { kind: 'error', codes: ['NOT_IN_ROUND'] });
  send('secagg envelope for another job', { ...env, jobId: 'another-job' }, b, payload, { kind: 'error', codes: ['UNKNOWN_JOB'] });
  // Messages of the other phases, well-formed for this session.
  const others = secaggBodies({ jobId: String(b.jobId), round: b.round as number, dim: DIM, session: String(b.session) });
  for (const [name, other] of Object.entries(others)) if (other.type !== b.type) send(`secagg ${name} message out of phase`, env, other, undefined, { kind: 'error', codes: ['SECAGG_UNEXPECTED', 'SECAGG_BAD_MESSAGE'] });
  if (b.type === 'secagg_masked_input') {
    for (const len of [0, 1, payload!.length - 1, payload!.length + 1, 4 * payload!.length]) send(`masked input of ${len} bytes`, env, b, new Uint8Array(len), bad);
    send('masked input without its payload', env, b, undefined, bad);
  } else {
    send(`${String(b.type)} with a payload`, env, b, new Uint8Array(16), bad);
  }
  return out;
}

/** The deciding SecAgg message: the honest one, or (advertise/share/consistency) one that fails verification. */
function secaggDecider(b: Header, honest: boolean): { label: string; body: Header; expect: Expect } {
  if (honest || b.type === 'secagg_masked_input' || b.type === 'secagg_unmask') return { label: `own ${String(b.type)}`, body: b, expect: { kind: 'silent' } };
  if (b.type === 'secagg_share_keys') {
    const shares = b.shares as unknown[];
    return { label: 'share_keys with one share missing', body: { ...b, shares: shares.slice(1) }, expect: { kind: 'error', codes: ['SECAGG_BAD_MESSAGE'] } };
  }
  const sig = String(b.signature);
  const flipped = `${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`;
  return { label: `${String(b.type)} with a forged signature`, body: { ...b, signature: flipped }, expect: { kind: 'error', codes: ['SECAGG_BAD_SIGNATURE'] } };
}

interface Hostile {
  tap: TapConnection;
  engine: ClientEngine;
}

/** A hostile cohort member: the honest engine on a tap whose outgoing messages pass through `plan`. */
async function hostileMember(url: string, clientId: string, index: number, tally: Tally, plan: (msg: ClientMessage, tap: TapConnection) => boolean): Promise<Hostile> {
  const tap = new TapConnection({ url, tally, intercept: plan });
  const engine = new ClientEngine({ clientId, task: new CheapTask(DIM, 100 + index), transport: tap });
  const welcomed = new Promise((r) => engine.once('welcome', r));
  engine.start();
  await within(welcomed, 10_000, `${clientId} welcome`);
  return { tap, engine };
}

describe(`hostile sampled members (COHORT_HOSTILE_SEED=${SEED})`, () => {
  const crashes = crashRecorder();
  const tally = new Tally(SEED);
  afterAll(() => {
    crashes.uninstall();
    console.log(`hostile members suite, seed ${SEED}\n${tally.table()}`);
    console.log(`HOSTILE_COUNTS ${tally.json({ suite: 'members' })}`);
  });

  async function runJob(opts: { id: string; dp: boolean; secagg: boolean; rounds: number; honest: number; hostile: number }) {
    const { id, rounds } = opts;
    const cohort = opts.honest + opts.hostile;
    const job = await startJob({
      id,
      model: MODEL,
      rounds,
      sampling: { mode: 'fixed', cohortSize: cohort },
      minClients: cohort,
      minSurvivors: opts.honest,
      // Evaluation on synthetic data: its metrics may leave un-noised (a DP job must say so).
      evaluation: { every: opts.secagg ? 0 : 1, unaccountedMetrics: true },
      // Every member answers (the hostile ones end with a decider), so phases close on answers, not deadlines:
      // generous deadlines only keep a loaded machine from closing a phase under a slow hostile member.
      timeouts: { trainMs: 60_000, evaluateMs: 60_000, retryDelayMs: 50, helloMs: 600_000 },
      checkpoints: { keep: 2 },
      ...(opts.dp ? { dp: { mode: 'central', noiseMultiplier: 1, clipNorm: 1 } } : {}),
      ...(opts.secagg ? { secagg: { enabled: true, bits: 16, clipNorm: 1, phaseTimeoutMs: 1500 } } : {}),
    });
    const url = job.coordinator.url;
    const honest: HonestClient[] = [];
    const hostile: Hostile[] = [];
    const where = `seed ${SEED}, job ${id}`;
    const jobTally = new Tally(SEED);
    try {
      for (let i = 0; i < opts.honest; i++) honest.push(honestClient(url, `${id}-honest-${i}`, DIM, i));
      for (let k = 0; k < opts.hostile; k++) {
        const g = new Gen(SEED, `${id}-member-${k}`);
        const cat = (what: string) => `member_${opts.secagg ? 'secagg' : opts.dp ? 'dp' : 'plain'}_${what}`;
        const plan = (msg: ClientMessage, tap: TapConnection): boolean => {
          const ids = () => tap.nextStreamId();
          const send = (label: string, header: Header, bin: Uint8Array | undefined, expect: Expect, category: string) =>
            void tap.submit({ category, label, emits: frames(header, ids(), bin), expect });
          if (msg.type === 'update') {
            const { header, binary } = split(msg as Update);
            for (const input of updateGarbage(g, header, binary!, ids, cat('update'))) void tap.submit(input);
            const d = updateDecider(g, header, binary!, g.chance(0.35));
            send(d.label, d.msg, d.bin, d.expect, cat('update'));
            for (let r = 0; r < 2; r++) send(`replay: ${d.label}`, d.msg, d.bin, REPLAY, cat('replay'));
            return true;
          }
          if (msg.type === 'eval_result') {
            const { header } = split(msg as EvalResult);
            for (const input of evalGarbage(header, ids, cat('eval'))) void tap.submit(input);
            const d = evalDecider(g, header, g.chance(0.35));
            send(d.label, d.msg, undefined, d.expect, cat('eval'));
            send(`replay: ${d.label}`, d.msg, undefined, REPLAY, cat('replay'));
            return true;
          }
          if (msg.type === 'secagg_up') {
            const { header, binary } = split(msg as SecAggUp);
            const { body, ...env } = header as { body: Header } & Header;
            const phase = PHASES.indexOf(body.type as (typeof PHASES)[number]);
            // Member k is hostile in phase (round + k) mod 5: over the job every phase is covered.
            if (phase !== ((header.round as number) + k) % PHASES.length) return false;
            for (const input of secaggGarbage(g, env, body, binary, ids, cat(PHASES[phase].replace('secagg_', '')))) void tap.submit(input);
            const d = secaggDecider(body, g.chance(0.5));
            send(d.label, { ...env, body: d.body }, binary, d.expect, cat(PHASES[phase].replace('secagg_', '')));
            // A rejected decider changed nothing: its replay is rejected the same way.
            const again: Expect = d.expect.kind === 'error' ? { kind: 'error', codes: [...REPLAY_CODES, ...(d.expect.codes ?? [])] } : REPLAY;
            send(`replay: ${d.label}`, { ...env, body: d.body }, binary, again, cat('replay'));
            return true;
          }
          return false;
        };
        hostile.push(await hostileMember(url, `${id}-hostile-${k}`, k, jobTally, plan));
      }
      const summary = await within(job.coordinator.engine.whenFinished(), 30_000, `${id} to finish`).catch((err: Error) => ({
        status: `not finished (${err.message}; engine ${job.coordinator.engine.status}, last committed round ${job.coordinator.engine.lastCommittedRound})`,
      }));
      expect([...crashes.events], `${where}: uncaught errors`).toEqual([]);
      expect([...jobTally.violations], `${where}: inputs not answered as required`).toEqual([]);
      expect(summary, where).toMatchObject({ status: 'completed', rounds });
      const ends = await within(Promise.all(honest.map((h) => h.ended)), 20_000, `${id}: honest clients to see job_end`);
      for (const e of ends) expect(e, where).toMatchObject({ status: 'completed', rounds });
      for (const h of honest) {
        expect(h.errors, `${where}: honest ${h.engine.clientId} was rejected`).toEqual([]);
        expect(h.included, `${where}: honest ${h.engine.clientId} rounds included`).toBe(rounds);
      }
      for (const m of hostile) expect(m.tap.unattributed, where).toEqual([]);
      expect(job.logs.errors, `${where}: error-level log lines`).toEqual([]);
    } finally {
      for (const m of hostile) await m.tap.drain();
      for (const h of honest) h.engine.stop();
      for (const m of hostile) m.tap.close();
      await job.coordinator.close();
      tally.merge(jobTally);
      if (process.env.COHORT_HOSTILE_DEBUG) console.log(job.logs.all.filter((l) => !l.includes('rejected')).join('\n'));
    }
    expect(checkStore(job.dataDir, job.config, { dp: opts.dp }), `${where}: store`).toEqual([]);
    expect([...crashes.events], `${where}: uncaught errors`).toEqual([]);
    expect([...jobTally.violations], `${where}: inputs not answered as required`).toEqual([]);
  }

  it.runIf(!process.env.COHORT_HOSTILE_ONLY || process.env.COHORT_HOSTILE_ONLY === 'plain')('plain FedAvg rounds with hostile members (update, eval_result, refuse, replays)', async () => {
    await runJob({ id: 'hostile-plain', dp: false, secagg: false, rounds: 5, honest: 4, hostile: 2 });
  });

  it.runIf(!process.env.COHORT_HOSTILE_ONLY || process.env.COHORT_HOSTILE_ONLY === 'dp')('central-DP rounds with hostile members', async () => {
    await runJob({ id: 'hostile-dp', dp: true, secagg: false, rounds: 5, honest: 4, hostile: 2 });
  });

  it.runIf(!process.env.COHORT_HOSTILE_ONLY || process.env.COHORT_HOSTILE_ONLY === 'secagg')('SecAgg rounds with a hostile member in every phase', async () => {
    await runJob({ id: 'hostile-secagg', dp: false, secagg: true, rounds: 5, honest: 8, hostile: 2 });
  });
});

