/**
 * Hostile inputs at the coordinator's boundary, over real Socket.IO on 127.0.0.1, while a real job
 * runs with honest clients: ≥ 10,000 seeded inputs (malformed frames, wrong types, chunk abuse,
 * numeric extremes in every field, wrong vector lengths, wrong round / job / phase, replays,
 * messages before hello, server-only types, unknown events, deep JSON, raw engine.io garbage and
 * packets over the buffer limit) from unregistered connections, from registered clients that are
 * not in the round, and from throwaway connections. Every input must get a typed error or be
 * dropped; the job must complete; nothing may crash or log at error level; the store stays consistent.
 *
 * Replay a failing run with COHORT_HOSTILE_SEED=<seed printed in the failure>.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ClientEngine } from '../../client/engine/index.ts';
import { HelloSchema, PROTOCOL_VERSION, type ClientMessage } from '../../shared/protocol/index.ts';
import {
  beforeHello,
  chunkAbuse,
  deepJsonViaSocket,
  malformedChunks,
  malformedHeads,
  mutations,
  numericExtremes,
  rawGarbage,
  serverOnlyTypes,
  truncatedStreams,
  unknownEvents,
  wrongTypes,
  wrongVectorLengths,
} from './generators.ts';
import { EXTREMES, frames, Gen, helloTemplate, setPath, templates, WRONG_TYPED, type Ctx } from './templates.ts';
import { checkStore, Tally } from './checks.ts';
import {
  CheapTask,
  crashRecorder,
  hostileSeed,
  honestClient,
  pool,
  startJob,
  within,
  type HonestClient,
  type HostileInput,
  type Job,
} from './harness.ts';
import { rawInput, TapConnection } from './tap.ts';

const SEED = hostileSeed();
const DIM = 8 * 2 + 2;
const JOB = 'hostile-boundary';
const ROUNDS = 6;

/** Shuffles in place with the run's PRNG. */
function shuffle<T>(g: Gen, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = g.int(0, i);
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

/** Sends inputs over a connection in windows (pipelined, each still attributed by its probe). */
async function spray(tap: TapConnection, inputs: readonly HostileInput[], window = 48): Promise<void> {
  let batch: Promise<unknown>[] = [];
  for (const input of inputs) {
    if (input.serial) {
      await Promise.all(batch);
      batch = [];
      await tap.submit(input);
      continue;
    }
    batch.push(tap.submit(input));
    if (batch.length >= window) {
      await Promise.all(batch);
      batch = [];
    }
  }
  await Promise.all(batch);
}

describe(`hostile inputs at the boundary (COHORT_HOSTILE_SEED=${SEED})`, () => {
  const crashes = crashRecorder();
  const tally = new Tally(SEED);
  let job: Job | undefined;
  const cleanups: (() => void)[] = [];
  afterAll(async () => {
    for (const c of cleanups) c();
    await job?.coordinator.close();
    crashes.uninstall();
    console.log(`hostile boundary suite, seed ${SEED}\n${tally.table()}`);
    console.log(`HOSTILE_COUNTS ${tally.json({ suite: 'boundary' })}`);
  });

  it('answers every input with a typed error or a drop, and the job completes', async () => {
    const started = Date.now();
    job = await startJob({
      id: JOB,
      model: { zoo: 'logreg', inputShape: [8], numClasses: 2 },
      rounds: ROUNDS,
      // Everyone connected takes part: a registered hostile connection is always a cohort member.
      sampling: { mode: 'fixed', cohortSize: 1000 },
      minClients: 6,
      minSurvivors: 4,
      evaluation: { every: 2 },
      // The hello deadline is connection-abuse.test.ts's subject; here silent connections must live through the run.
      timeouts: { trainMs: 60_000, evaluateMs: 20_000, retryDelayMs: 50, helloMs: 600_000 },
      checkpoints: { keep: 3 },
    });
    const url = job.coordinator.url;
    let releaseLastRound!: () => void;
    const sprayed = new Promise<void>((r) => (releaseLastRound = r));
    // The last round waits for the spray, so the whole spray happens while the job runs.
    const gate = async (round: number) => {
      if (round === ROUNDS) await sprayed;
    };

    const honest: HonestClient[] = [];
    for (let i = 0; i < 4; i++) {
      const h = honestClient(url, `honest-${i}`, DIM, i);
      h.task.gate = gate;
      honest.push(h);
      cleanups.push(() => h.engine.stop());
    }

    // Registered clients that behave honestly in their rounds and send hostile inputs in between.
    const sent = new Map<string, ClientMessage[]>();
    const registered: TapConnection[] = [];
    for (let i = 0; i < 2; i++) {
      const clientId = `tap-${i}`;
      const tap = new TapConnection({
        url,
        tally,
        intercept: (msg) => {
          (sent.get(clientId) ?? sent.set(clientId, []).get(clientId)!).push(msg);
          return false;
        },
      });
      const task = new CheapTask(DIM, 10 + i);
      task.gate = gate;
      const engine = new ClientEngine({ clientId, task, transport: tap });
      const welcomed = new Promise((r) => engine.once('welcome', r));
      engine.start();
      await within(welcomed, 10_000, `${clientId} welcome`);
      registered.push(tap);
      cleanups.push(() => tap.close());
    }

    let ids = 1;
    const nextId = () => ids++;
    const g = new Gen(SEED, 'boundary');
    const unregCtx: Ctx = { jobId: JOB, round: 1e9, dim: DIM };
    const err = { kind: 'error' } as const;

    // ---- unregistered connections -------------------------------------------------------------
    const unregistered: HostileInput[] = shuffle(g, [
      ...malformedHeads(g, 900, { ctx: unregCtx, ids: nextId, err }),
      ...malformedChunks(g, 600),
      ...wrongTypes({ ctx: unregCtx, ids: nextId, err }),
      ...wrongTypes({ ctx: { ...unregCtx, round: 1 }, ids: nextId, err }),
      ...numericExtremes({ ctx: unregCtx, ids: nextId, err }),
      ...numericExtremes({ ctx: { ...unregCtx, round: 1 }, ids: nextId, err }),
      ...wrongVectorLengths({ ctx: unregCtx, ids: nextId, err }),
      ...chunkAbuse(g, { ctx: unregCtx, ids: nextId, err }),
      ...beforeHello({ ctx: unregCtx, ids: nextId, err }),
      ...serverOnlyTypes(g, { ctx: unregCtx, ids: nextId, err }),
      ...unknownEvents(g, 200),
      ...deepJsonViaSocket({ ctx: unregCtx, ids: nextId, err }),
      ...mutations(g, 2500, { ctx: unregCtx, ids: nextId, err }),
    ]);
    // Hellos that do not validate are rejected without effect: safe on a shared connection.
    const hellos = helloInputs(g);
    for (const h of hellos.invalid) unregistered.push(h);

    const sprayUnregistered = async () => {
      // A fresh connection every 700 inputs (connections that never say hello may be closed).
      const batches: HostileInput[][] = [];
      for (let i = 0; i < unregistered.length; i += 700) batches.push(unregistered.slice(i, i + 700));
      await pool(batches, 3, async (batch) => {
        const tap = new TapConnection({ url, tally });
        await tap.whenConnected();
        await spray(tap, batch);
        tap.close();
      });
    };

    // ---- registered clients, not in the round the inputs name ------------------------------------
    const sprayRegistered = async (tap: TapConnection, k: number) => {
      const gk = new Gen(SEED, `registered-${k}`);
      const ctx: Ctx = { jobId: JOB, round: 1e9, dim: DIM };
      const otherJob: Ctx = { ...ctx, jobId: 'not-this-job', round: 2 };
      const inputs = shuffle(gk, [
        ...numericExtremes({ ctx, ids: () => tap.nextStreamId(), err }),
        ...wrongTypes({ ctx, ids: () => tap.nextStreamId(), err }),
        ...wrongVectorLengths({ ctx, ids: () => tap.nextStreamId(), err }),
        ...chunkAbuse(gk, { ctx, ids: () => tap.nextStreamId(), err }),
        ...wrongRoundJobPhase(ctx, otherJob, () => tap.nextStreamId()),
        ...mutations(gk, 1200, { ctx, ids: () => tap.nextStreamId(), err }),
        ...mutations(gk, 300, { ctx: otherJob, ids: () => tap.nextStreamId(), err: { kind: 'error' } }),
        ...serverOnlyTypes(gk, { ctx, ids: () => tap.nextStreamId(), err }),
        ...deepJsonViaSocket({ ctx, ids: () => tap.nextStreamId(), err }),
      ]);
      // A second hello on a registered connection.
      inputs.push({ category: 'replay_duplicate', label: 'second hello on a registered connection', emits: frames(helloTemplate(`tap-${k}`), tap.nextStreamId()), expect: { kind: 'error', codes: ['DUPLICATE'] } });
      await spray(tap, inputs, 24);
      // Replays of what this client's honest engine sent so far (its rounds are over or closed to it).
      const mine = sent.get(`tap-${k}`) ?? [];
      const replays: HostileInput[] = [];
      for (const m of mine) {
        for (let r = 0; r < 3; r++) {
          const { emits } = { emits: framesOfMessage(m, tap.nextStreamId()) };
          replays.push({ category: 'replay_duplicate', label: `replay of own ${m.type} (round ${'round' in m ? m.round : '-'})`, emits, expect: m.type === 'hello' ? { kind: 'error', codes: ['DUPLICATE'] } : { kind: 'error', codes: ['DUPLICATE', 'NOT_IN_ROUND'] } });
        }
      }
      await spray(tap, replays, 1);
    };

    // ---- throwaway connections: inputs that change a connection's state or close it --------------
    const sprayThrowaway = async () => {
      const groups: HostileInput[][] = [];
      for (const h of hellos.stateful) groups.push([h]);
      for (let k = 0; k < 4; k++) groups.push(truncatedStreams({ ctx: unregCtx, ids: nextId, err }, 4));
      groups.push(...oversized());
      await pool(groups, 4, async (group) => {
        const tap = new TapConnection({ url, tally });
        await tap.whenConnected();
        for (const input of group) await tap.submit(input);
        tap.close();
      });
      const raw = rawGarbage(g, 250);
      await pool(raw, 6, (input) => rawInput(url, input, tally));
    };

    await within(
      Promise.all([sprayUnregistered(), ...registered.map((tap, k) => sprayRegistered(tap, k)), sprayThrowaway()]),
      150_000,
      'the spray',
    );
    releaseLastRound();

    const summary = await within(job.coordinator.engine.whenFinished(), 60_000, 'the job to finish');
    const ends = await within(Promise.all(honest.map((h) => h.ended)), 20_000, 'honest clients to see job_end');
    const wall = Date.now() - started;
    console.log(`hostile boundary suite: ${tally.total} inputs in ${wall} ms`);

    const where = `seed ${SEED}`;
    expect([...crashes.events], `${where}: uncaught errors`).toEqual([]);
    expect([...tally.violations], `${where}: inputs not answered as required`).toEqual([]);
    expect(tally.total, where).toBeGreaterThanOrEqual(10_000);
    expect(summary, where).toMatchObject({ status: 'completed', rounds: ROUNDS });
    for (const e of ends) expect(e, where).toMatchObject({ status: 'completed', rounds: ROUNDS });
    for (const h of honest) {
      expect(h.errors, `${where}: honest ${h.engine.clientId} was rejected`).toEqual([]);
      expect(h.included, `${where}: honest ${h.engine.clientId} rounds included`).toBe(ROUNDS);
    }
    for (const tap of registered) expect(tap.unattributed, where).toEqual([]);
    expect(job.logs.errors, `${where}: error-level log lines`).toEqual([]);
    await job.coordinator.close();
    expect(checkStore(job.dataDir, job.config, { dp: false }), `${where}: store`).toEqual([]);
  });
});

function framesOfMessage(m: ClientMessage, id: number) {
  const { vector, payload, ...header } = m as ClientMessage & { vector?: Float32Array; payload?: Uint8Array };
  const bin = vector ?? payload;
  return frames(header, id, bin ? new Uint8Array(bin.buffer, bin.byteOffset, bin.byteLength) : undefined);
}

/** Wrong round, wrong job, wrong phase, from a registered client. */
function wrongRoundJobPhase(ctx: Ctx, other: Ctx, ids: () => number): HostileInput[] {
  const out: HostileInput[] = [];
  const t = templates(ctx);
  const o = templates(other);
  for (const kind of Object.keys(t)) {
    for (const round of [1e9, 999_999, 123_456]) {
      out.push({ category: 'wrong_round_job_phase', label: `${kind} for round ${round}`, emits: frames(setPath(t[kind].msg, ['round'], round), ids(), t[kind].binary), expect: { kind: 'error', codes: ['NOT_IN_ROUND'] } });
    }
    for (const jobId of ['not-this-job', 'x', JOB.toUpperCase(), `${JOB}.`]) {
      out.push({ category: 'wrong_round_job_phase', label: `${kind} for job ${jobId}`, emits: frames(setPath(o[kind].msg, ['jobId'], jobId), ids(), o[kind].binary), expect: { kind: 'error', codes: ['UNKNOWN_JOB'] } });
    }
  }
  return out;
}

/** Hello variants: invalid ones (rejected, no effect) and ones that would register or close a connection. */
function helloInputs(g: Gen): { invalid: HostileInput[]; stateful: HostileInput[] } {
  const invalid: HostileInput[] = [];
  const stateful: HostileInput[] = [];
  const variants: [string, Record<string, unknown>][] = [];
  let n = 0;
  const base = () => helloTemplate(`throwaway-${n++}`);
  for (const [name, x] of EXTREMES) {
    variants.push([`hello.protocolVersion = ${name}`, setPath(base(), ['protocolVersion'], x)]);
    variants.push([`hello.numExamples = ${name}`, setPath(base(), ['numExamples'], x)]);
  }
  for (const field of ['protocolVersion', 'clientId', 'numExamples', 'publicKey', 'signature', 'server', 'backend', 'type']) {
    for (const [name, v] of WRONG_TYPED) variants.push([`hello.${field} = ${name}`, setPath(base(), [field], v)]);
  }
  for (const clientId of ['', 'x'.repeat(129), 'a b', 'ü', '../../etc', 'a\u0000b', '<script>', 'x'.repeat(128)]) variants.push([`hello.clientId = ${JSON.stringify(clientId.slice(0, 20))}`, { ...base(), clientId }]);
  variants.push(['hello with a 5000-char enrolment token', { ...base(), enrolToken: 't'.repeat(5000) }]);
  variants.push(['hello with a 31-byte public key', { ...base(), publicKey: 'A'.repeat(42) }]);
  variants.push(['hello with a malformed certificate', { ...base(), certificate: { v: 1, clientId: 'x' } }]);
  variants.push(['hello with a 65-char backend', { ...base(), backend: 'b'.repeat(65) }]);
  variants.push(['hello with an unknown field', { ...base(), admin: true }]);
  for (const s of g.strings(30)) variants.push([`hello.clientId = ${JSON.stringify(s)}`, { ...base(), clientId: s }]);
  for (const [label, msg] of variants) {
    const parsed = HelloSchema.safeParse(msg);
    const emits = frames(msg, 1);
    if (!parsed.success) {
      invalid.push({ category: msg.type === 'hello' ? 'hello_fields' : 'wrong_types', label, emits, expect: { kind: 'error', codes: ['BAD_SCHEMA', 'UNKNOWN_TYPE'] } });
    } else if (parsed.data.protocolVersion !== PROTOCOL_VERSION) {
      stateful.push({ category: 'hello_fields', label, emits, expect: { kind: 'error', codes: ['VERSION_MISMATCH'], allowDrop: true } });
    } else {
      // Schema-valid but signed over no challenge: refused (UNAUTHORIZED, the connection closed), or an
      // implausible numExamples refused first.
      stateful.push({ category: 'hello_fields', label, emits, expect: { kind: 'error', codes: ['UNAUTHORIZED', 'OUT_OF_RANGE'], allowDrop: true } });
    }
  }
  return { invalid, stateful };
}

/** Packets beyond Socket.IO's maxHttpBufferSize (chunkBytes + 16 KiB here): the server closes the connection. */
function oversized(): HostileInput[][] {
  const big = (bytes: number) => new Uint8Array(bytes);
  return [
    [{ category: 'oversized_packet', label: 'binary chunk of 600 KiB', emits: [{ event: 'chunk', args: [{ id: 5, i: 0 }, big(600 * 1024)] }], expect: { kind: 'drop' } }],
    [{ category: 'oversized_packet', label: 'binary chunk of 4 MiB', emits: [{ event: 'chunk', args: [{ id: 5, i: 0 }, big(4 * 1024 * 1024)] }], expect: { kind: 'drop' } }],
    [{ category: 'oversized_packet', label: 'text head of 400 KB', emits: [{ event: 'head', args: [{ v: 1, id: 1, msg: { type: 'refuse', jobId: JOB, round: 1, reason: 'r'.repeat(400_000) } }] }], expect: { kind: 'drop' } }],
    [{ category: 'oversized_packet', label: 'text head of 270 KB (over maxHeaderBytes, under the buffer)', emits: [{ event: 'head', args: [{ v: 1, id: 1, msg: { type: 'refuse', jobId: JOB, round: 1, reason: 'r'.repeat(262_000) } }] }], expect: { kind: 'error', allowDrop: true } }],
    [{ category: 'oversized_packet', label: 'unknown event with 1 MB of text', emits: [{ event: 'blob', args: ['z'.repeat(1_000_000)] }], expect: { kind: 'drop' } }],
  ];
}
