/**
 * Plumbing of the fault-injection matrix (issue 11, item 5): job configs for the three kinds of round
 * (plain, central DP, SecAgg + distributed DP), in-process clients that record every model the
 * coordinator serves them, a victim client in its own process that SIGKILLs itself at a chosen phase,
 * and the store invariants every case must satisfy after the crash and at the end of the job.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'vitest';
import { ClientEngine } from '../../../client/engine/index.ts';
import { SocketIoClientTransport } from '../../../client/transport/socketio.ts';
import { parseJobConfig, type JobConfig } from '../../../server/round/config.ts';
import { CohortStore, DB_FILE, type LedgerRow, type RoundRow } from '../../../server/store/index.ts';
import { initialWeights, weightsChecksum } from '../../../shared/model/index.ts';
import { DEFAULT_ORDERS, DpEventSchema, epsilonWithShortDraws, RdpAccountant } from '../../../shared/privacy/index.ts';
import type { JobEnd, ServerMessage } from '../../../shared/protocol/index.ts';
import { freePort, ROOT, spawnJsonLines, type JsonLinesChild } from '../helpers.ts';
import { FixedTask, MODEL, type VictimDeath } from './task.ts';
import { testIdentity } from '../../support/identity.ts';

export { FixedTask, MODEL, type VictimDeath };

/** plain FedAvg, central DP, SecAgg + distributed DP; and SecAgg without DP (client-kill cases only). */
export type Mode = 'plain' | 'central' | 'distributed' | 'secagg';
export const CLIENTS = 4;

/**
 * A job of `rounds` rounds over a fixed cohort of all CLIENTS clients, evaluated after every round.
 * DP: q = 1 (cohort = population), a large noise multiplier and a budget far above what 3 rounds spend.
 * Distributed DP runs inside SecAgg; with 4 clients the SecAgg+ graph is complete (k = 3, t = 2) and
 * tolerates one dropout (server/round/secagg.ts tolerantGraph), 16 bits hold the sum with σ ≥ 0.5 steps.
 */
export function jobSpec(
  mode: Mode,
  opts: {
    id: string;
    rounds?: number;
    minClients?: number;
    minSurvivors?: number;
    timeouts?: { trainMs?: number; evaluateMs?: number; phaseTimeoutMs?: number };
  },
): Record<string, unknown> {
  const t = { trainMs: 15_000, evaluateMs: 10_000, phaseTimeoutMs: 5_000, ...opts.timeouts };
  const dp =
    mode === 'plain' || mode === 'secagg'
      ? {}
      : { dp: { mode, noiseMultiplier: mode === 'central' ? 2 : 1, clipNorm: 1, budget: { epsilon: 1000, delta: 1e-5 } } };
  return {
    id: opts.id,
    model: MODEL,
    rounds: opts.rounds ?? 3,
    sampling: { mode: 'fixed', cohortSize: CLIENTS },
    minClients: opts.minClients ?? CLIENTS,
    minSurvivors: opts.minSurvivors ?? CLIENTS - 1,
    // The victims evaluate on synthetic data: their metrics may leave un-noised.
    evaluation: { every: 1, fraction: 1, unaccountedMetrics: true },
    timeouts: { trainMs: t.trainMs, evaluateMs: t.evaluateMs, retryDelayMs: 100 },
    maxAttemptsPerRound: 5,
    // Keep every checkpoint: the served-model check looks each one up.
    checkpoints: { keep: 100 },
    ...dp,
    ...(mode === 'distributed' ? { secagg: { enabled: true, bits: 16, phaseTimeoutMs: t.phaseTimeoutMs } } : {}),
    ...(mode === 'secagg' ? { secagg: { enabled: true, bits: 16, clipNorm: 1, phaseTimeoutMs: t.phaseTimeoutMs } } : {}),
  };
}

/** A data dir with `job.json`, a free port, and the `cohort server` arguments for both. */
export async function prepareJob(spec: Record<string, unknown>): Promise<{ dir: string; port: number; args: string[]; config: JobConfig; cleanup(): void }> {
  const dir = mkdtempSync(join(tmpdir(), `cohort-fault-${spec.id}-`));
  const configPath = join(dir, 'job.json');
  writeFileSync(configPath, JSON.stringify(spec));
  const port = await freePort();
  return {
    dir,
    port,
    args: ['--config', configPath, '--port', String(port), '--data-dir', dir],
    config: parseJobConfig(spec),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

// ---- what clients are served ---------------------------------------------------------------------

/** One model a client received: in a `train` or `evaluate` message. */
export interface Served {
  client: string;
  kind: 'train' | 'evaluate';
  round: number;
  /** What the message claims. */
  modelChecksum: string;
  /** The checksum of the weights that actually arrived. */
  checksum: string;
}

/** Records the models in `train` / `evaluate` messages before the engine handles them. */
export function recordServed(engine: ClientEngine, into: Served[]): void {
  const handle = engine.onMessage.bind(engine);
  engine.onMessage = (msg: ServerMessage) => {
    if (msg.type === 'train' || msg.type === 'evaluate') {
      into.push({ client: engine.clientId, kind: msg.type, round: msg.round, modelChecksum: msg.modelChecksum, checksum: weightsChecksum(msg.vector) });
    }
    handle(msg);
  };
}

/** In-process clients over real Socket.IO that reconnect by themselves when the coordinator dies. */
export class Fleet {
  readonly served: Served[] = [];
  readonly engines: ClientEngine[] = [];
  readonly ends: Promise<JobEnd>[] = [];

  /**
   * `firstIndex`: task index of the first client (numExamples = 10 + index). `reconnect`: the clients'
   * backoff (default 100 → 300 ms, quick for tests; the product default is 500 ms → 30 s).
   */
  constructor(port: number, ids: string[], opts: { firstIndex?: number; reconnect?: { initialDelayMs: number; maxDelayMs: number } } = {}) {
    const reconnect = opts.reconnect ?? { initialDelayMs: 100, maxDelayMs: 300 };
    ids.forEach((clientId, i) => {
      const transport = new SocketIoClientTransport({ url: `http://127.0.0.1:${port}`, reconnect });
      const engine = new ClientEngine({ clientId, identity: testIdentity(clientId), task: new FixedTask((opts.firstIndex ?? 0) + i), transport });
      recordServed(engine, this.served);
      this.ends.push(engine.whenJobEnds());
      engine.start();
      this.engines.push(engine);
    });
  }

  stop(): void {
    for (const e of this.engines) e.stop();
  }
}

// ---- the victim client, a process of its own -------------------------------------------------------

export interface VictimLine {
  event: 'welcome' | 'served' | 'dying' | 'hanging' | 'job_end';
  [k: string]: unknown;
}

/** `victim-client.ts` in a child process (tsx loader, like bin/cohort.mjs); its stdout is JSON lines. */
export function startVictim(opts: {
  port: number;
  clientId: string;
  index: number;
  /** kill: SIGKILL itself; hang: SIGSTOP itself (connection open, silent) until the test kills it. */
  die?: { at: VictimDeath; round: number; how: 'kill' | 'hang' };
}): JsonLinesChild<VictimLine> {
  const script = join(ROOT, 'test/integration/faults/victim-client.ts');
  const arg = JSON.stringify({ url: `http://127.0.0.1:${opts.port}`, clientId: opts.clientId, index: opts.index, die: opts.die });
  return spawnJsonLines<VictimLine>(['--import', 'tsx', script, arg]);
}

/** The `served` lines of a victim process, as Served records. */
export function victimServed(clientId: string, lines: VictimLine[]): Served[] {
  return lines
    .filter((l) => l.event === 'served')
    .map((l) => ({ client: clientId, kind: l.kind as Served['kind'], round: l.round as number, modelChecksum: l.modelChecksum as string, checksum: l.checksum as string }));
}

// ---- reading the store ----------------------------------------------------------------------------

export interface StoreSnapshot {
  status: string;
  currentRound: number;
  rounds: RoundRow[];
  ledger: LedgerRow[];
  checkpoints: Map<number, string>;
  evaluations: number[];
  attempts: { round: number; attempt: number; reason: string }[];
}

/** Reads the job's state from the SQLite file (the coordinator is not running), after checking the file. */
export function snapshot(dir: string, jobId: string): StoreSnapshot {
  // Read-write: opening after a crash runs WAL recovery, as the restarted coordinator's open will.
  const db = new Database(join(dir, DB_FILE));
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.pragma('foreign_key_check')).toEqual([]);
  } finally {
    db.close();
  }
  const store = CohortStore.open(dir);
  try {
    const job = store.getJob(jobId)!;
    expect(job, `job ${jobId} in ${dir}`).toBeDefined();
    const checkpoints = new Map<number, string>();
    for (const r of store.checkpointRounds(jobId)) checkpoints.set(r, store.checkpoint(jobId, r)!.checksum);
    return {
      status: job.status,
      currentRound: job.currentRound,
      rounds: store.listRounds(jobId),
      ledger: store.listLedger(jobId),
      checkpoints,
      evaluations: store.listEvaluations(jobId).map((e) => e.round),
      attempts: store.listRoundAttempts(jobId).map(({ round, attempt, reason }) => ({ round, attempt, reason })),
    };
  } finally {
    store.close();
  }
}

/**
 * ε (against each row's audience) after each prefix of the ledger, recomputed by fresh accountants from
 * the rows' DP events: the published events of committed rows (fixed cohorts under replace-one, Poisson
 * under add-or-remove, with the short-draw mass in δ) and the coordinator events of every row
 * (unsampled, replace-one); published models are never less private than what the coordinator saw.
 */
export function recomputedEpsilons(config: JobConfig, ledger: LedgerRow[]): number[] {
  const relation = config.sampling.mode === 'fixed' && config.dp.mode !== 'local' ? 'replaceOne' : 'addOrRemove';
  const published = new RdpAccountant(DEFAULT_ORDERS, { neighboringRelation: relation });
  const coordinator = new RdpAccountant(DEFAULT_ORDERS, { neighboringRelation: 'replaceOne' });
  let mass = 0;
  return ledger.map((row) => {
    if (row.event !== null) {
      published.compose(DpEventSchema.parse(row.event));
      mass += row.shortDrawProbability;
    }
    if (row.coordinatorEvent !== null) coordinator.compose(DpEventSchema.parse(row.coordinatorEvent));
    const pub = epsilonWithShortDraws(DEFAULT_ORDERS, published.rdp(), row.delta, mass).epsilon;
    if (config.dp.mode === 'central') return pub;
    const coord = coordinator.getEpsilon(row.delta).epsilon;
    return row.audience === 'coordinator' ? coord : Math.min(pub, coord);
  });
}

/**
 * The invariants of a job's store at any moment (mid-job after a crash, or at the end):
 * committed rounds are 1..k with no gap, each complete (round row, checkpoint, ledger row for DP,
 * the job's current round = k), nothing recorded for a round that did not commit, the ledger has
 * exactly one row per committed round with ε strictly increasing and equal to the accountant over the
 * ledger's own events.
 */
export function expectConsistent(s: StoreSnapshot, config: JobConfig): void {
  const k = s.rounds.length;
  const oneToK = Array.from({ length: k }, (_, i) => i + 1);
  expect(s.rounds.map((r) => r.round), 'committed rounds are contiguous from 1').toEqual(oneToK);
  expect(s.currentRound, "the job's current round is its last committed round").toBe(k);
  expect([...s.checkpoints.keys()], 'a checkpoint for every committed round, none for any other').toEqual(oneToK);
  expect(s.evaluations.every((r) => r >= 1 && r <= k), `evaluations ${s.evaluations} only of committed rounds`).toBe(true);
  for (const r of s.rounds) expect(r.survivors + r.dropouts).toBeLessThanOrEqual(r.cohortSize);
  if (config.dp.mode === 'off') {
    expect(s.ledger).toEqual([]);
    return;
  }
  const committedRows = s.ledger.filter((l) => l.status === 'committed');
  expect(committedRows.map((l) => l.round), 'exactly one committed ledger row per committed round').toEqual(oneToK);
  committedRows.forEach((l, i) => {
    expect(l.mode).toBe(config.dp.mode);
    expect(l.survivors, `ledger survivors of round ${l.round}`).toBe(s.rounds[i].survivors);
    expect(l.cohortSize, `ledger cohort of round ${l.round}`).toBe(s.rounds[i].cohortSize);
  });
  // Attempts' releases to the coordinator: of committed rounds, or of the round in flight.
  for (const l of s.ledger.filter((r) => r.status === 'attempt')) {
    expect(l.round, `attempt row of round ${l.round}`).toBeLessThanOrEqual(k + 1);
    expect(l.event, 'an attempt publishes nothing').toBeNull();
  }
  const eps = s.ledger.map((l) => l.epsilon);
  // Non-decreasing; it rises at every row that adds an event of the budget's audience (a committed row whose
  // coordinator event was written ahead by its attempt adds nothing against the coordinator).
  for (let i = 1; i < eps.length; i++) {
    const adds = s.ledger[i].audience === 'coordinator' ? s.ledger[i].coordinatorEvent !== null : s.ledger[i].event !== null;
    if (adds) expect(eps[i], `ε strictly increasing at ledger row ${i + 1}`).toBeGreaterThan(eps[i - 1]);
    else expect(eps[i], `ε unchanged at ledger row ${i + 1}`).toBe(eps[i - 1]);
  }
  const recomputed = recomputedEpsilons(config, s.ledger);
  eps.forEach((e, i) => expect(e, `ε of ledger row ${i + 1} = the accountants over rows 1..${i + 1}`).toBeCloseTo(recomputed[i], 9));
}

/**
 * No model without its ledger row (DP) / round row (plain) is ever served: every model a client
 * received is the initial one or the checkpoint of a committed round; more precisely, `train` for round
 * r carries round r−1's checkpoint (the initial model for r = 1) and `evaluate` of round r carries
 * round r's, and the weights match the checksum the message claims.
 */
export function expectServedCommitted(served: Served[], s: StoreSnapshot, config: JobConfig): void {
  expect(served.length, 'clients were served models').toBeGreaterThan(0);
  const initial = weightsChecksum(initialWeights(config.model, config.seed).weights);
  const published = new Map<number, string>([[0, initial]]);
  const accounted = new Set(config.dp.mode === 'off' ? s.rounds.map((r) => r.round) : s.ledger.filter((l) => l.status === 'committed').map((l) => l.round));
  for (const [round, checksum] of s.checkpoints) if (accounted.has(round)) published.set(round, checksum);
  const allowed = new Set(published.values());
  for (const m of served) {
    const what = `${m.client} got ${m.kind} of round ${m.round}`;
    expect(m.checksum, `${what}: weights match the announced checksum`).toBe(m.modelChecksum);
    expect(allowed.has(m.checksum), `${what}: a model that is neither initial nor a committed, accounted round`).toBe(true);
    expect(m.checksum, `${what}: the model of round ${m.kind === 'train' ? m.round - 1 : m.round}`).toBe(
      published.get(m.kind === 'train' ? m.round - 1 : m.round),
    );
  }
}

// ---- running a case -------------------------------------------------------------------------------

/** Rejects if `p` takes longer than `ms` (a clearer failure than the test timeout). */
export function within<T>(p: Promise<T>, ms: number, what: string, detail: () => string = () => ''): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`${what}: not within ${ms} ms. ${detail()}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Runs at most `n` of the functions given to it at a time (cases are `it.concurrent`: a case spends
 * most of its time waiting for processes to start and timers to fire, so two share the cores well).
 */
export function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return async (fn) => {
    if (active >= n) await new Promise<void>((r) => queue.push(r));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}

/** Runs a case with its own Resources, cleaned up whatever happens (data dir kept if it failed). */
export async function withResources(fn: (res: Resources) => Promise<void>): Promise<void> {
  const res = new Resources();
  let passed = false;
  try {
    await fn(res);
    passed = true;
  } finally {
    res.cleanup(passed);
  }
}

/** Child processes and fleets a case started; `cleanup()` kills whatever is still alive. */
export class Resources {
  private readonly children: ChildProcess[] = [];
  private readonly fleets: Fleet[] = [];
  private readonly dirs: (() => void)[] = [];
  child<T extends { child: ChildProcess }>(c: T): T {
    this.children.push(c.child);
    return c;
  }
  fleet(f: Fleet): Fleet {
    this.fleets.push(f);
    return f;
  }
  dir(cleanup: () => void): void {
    this.dirs.push(cleanup);
  }
  /** Stops clients and kills (by pid) every child still running; removes data dirs if the case passed. */
  cleanup(passed: boolean): void {
    for (const f of this.fleets.splice(0)) f.stop();
    for (const c of this.children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const d of this.dirs.splice(0)) if (passed) d();
  }
}
