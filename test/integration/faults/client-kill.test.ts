/**
 * Fault injection, client side (issue 11, item 5, "kill clients at each phase too"): one of the four
 * clients of a plain, central-DP or SecAgg + distributed-DP job runs in its own process and SIGKILLs
 * itself in round 2: inside local training, on receiving each SecAgg request (advertise, share keys,
 * masked input, consistency, unmask) before answering it, or on receiving `evaluate`. It is restarted
 * at once with the same client id (a new connection). The round completes without it when enough survive (or with it, when
 * its masked input was already in the sum), or aborts cleanly and is retried once it is back; the job
 * completes with the store invariants of the coordinator matrix, and no client is ever served a model
 * without its round / ledger row. Three more cases freeze the victim (SIGSTOP, connection open) in
 * training, in the SecAgg consistency phase and in evaluation: the coordinator gets past it by its
 * training / phase / evaluation deadline alone.
 */
import { describe, expect, it } from 'vitest';
import { CohortStore } from '../../../server/store/index.ts';
import { startServer, type LogLine } from '../helpers.ts';
import { DIM } from './task.ts';
import {
  CLIENTS,
  expectConsistent,
  expectServedCommitted,
  Fleet,
  jobSpec,
  limiter,
  prepareJob,
  snapshot,
  startVictim,
  victimServed,
  within,
  withResources,
  type Mode,
  type Resources,
  type VictimDeath,
} from './harness.ts';

/** What becomes of round 2 when the victim dies (or hangs) in it. */
type Outcome =
  /** Committed at the first attempt without the victim (3 survivors of 4). */
  | 'dropped'
  /** Committed at the first attempt with the victim's update in it (its update / masked input was in). */
  | 'included'
  /** Aborted, retried once the victim was back, committed with all 4. */
  | 'retried';

interface Case {
  mode: Mode;
  at: VictimDeath;
  minSurvivors: number;
  outcome: Outcome;
  /** Why the aborted attempts aborted ('retried'). */
  reason?: RegExp;
  /** kill (default): SIGKILL; hang: SIGSTOP, connection open, until the coordinator's deadline. */
  how?: 'kill' | 'hang';
  /** hang: the coordinator's log line when it stops waiting for the victim (then the test kills it). */
  deadline?: (l: LogLine) => boolean;
  /** The victim was asked to evaluate round 2 and never answered: the evaluation closed with the others. */
  evaluatedWithout?: boolean;
  /** Survivors of round 3 (default 4: the restarted victim took part). */
  round3Survivors?: number;
  timeouts?: { trainMs?: number; evaluateMs?: number; phaseTimeoutMs?: number };
  /** SecAgg without DP: round 2's model step must be the plain mean of these clients' updates. */
  meanOf?: number[];
}

const ROUNDS = 3;
const KILL_ROUND = 2;
const SURVIVORS_LOW = /^3 survivors < minSurvivors 4$/;

const CASES: Case[] = [
  { mode: 'plain', at: 'fit', minSurvivors: 3, outcome: 'dropped' },
  { mode: 'plain', at: 'fit', minSurvivors: 4, outcome: 'retried', reason: SURVIVORS_LOW },
  { mode: 'plain', at: 'evaluate', minSurvivors: 3, outcome: 'included', evaluatedWithout: true },
  { mode: 'central', at: 'fit', minSurvivors: 3, outcome: 'dropped' },
  { mode: 'central', at: 'fit', minSurvivors: 4, outcome: 'retried', reason: SURVIVORS_LOW },
  { mode: 'central', at: 'evaluate', minSurvivors: 3, outcome: 'included', evaluatedWithout: true },
  // SecAgg with 4 clients at minSurvivors 3: complete graph (k = 3), threshold 2, one dropout tolerated.
  // At minSurvivors 4 the graph is a ring (k = 2, t = 2) sized for no dropout: one death aborts the attempt.
  { mode: 'distributed', at: 'secagg_advertise_request', minSurvivors: 3, outcome: 'dropped' },
  { mode: 'distributed', at: 'secagg_share_keys_request', minSurvivors: 3, outcome: 'dropped' },
  { mode: 'distributed', at: 'secagg_masked_input_request', minSurvivors: 3, outcome: 'dropped' },
  {
    mode: 'distributed',
    at: 'secagg_masked_input_request',
    minSurvivors: 4,
    outcome: 'retried',
    reason: /^secure aggregation aborted: only 3 masked inputs arrived; the round needs 4$/,
  },
  // Dead after its masked input is in U3: its self mask is rebuilt from its neighbours' shares.
  { mode: 'distributed', at: 'secagg_consistency_request', minSurvivors: 3, outcome: 'included' },
  { mode: 'distributed', at: 'secagg_unmask_request', minSurvivors: 3, outcome: 'included' },
  // … unless the ring needs the dead client's shares: the attempt aborts before or during unmasking.
  {
    mode: 'distributed',
    at: 'secagg_consistency_request',
    minSurvivors: 4,
    outcome: 'retried',
    reason: /^secure aggregation aborted: the self mask of \S+ cannot be rebuilt: [01] of its neighbours can answer, threshold 2$/,
  },
  {
    mode: 'distributed',
    at: 'secagg_unmask_request',
    minSurvivors: 4,
    outcome: 'retried',
    reason: /^secure aggregation aborted: only 1 shares of \S+'s self mask arrived; threshold 2$/,
  },
  { mode: 'distributed', at: 'evaluate', minSurvivors: 3, outcome: 'included', evaluatedWithout: true },
  // SecAgg without DP: the new model is the sum of the included updates over their number, so a client
  // whose masked input is in the sum must count (and one whose input is not must not).
  { mode: 'secagg', at: 'secagg_masked_input_request', minSurvivors: 3, outcome: 'dropped', meanOf: [1, 2, 3] },
  { mode: 'secagg', at: 'secagg_unmask_request', minSurvivors: 3, outcome: 'included', meanOf: [0, 1, 2, 3] },
  // Hung, not dead: only the deadlines get the round past it.
  {
    mode: 'plain',
    at: 'fit',
    how: 'hang',
    minSurvivors: 3,
    outcome: 'dropped',
    deadline: (l) => l.msg === 'training deadline reached' && l.round === KILL_ROUND && l.late === 1,
    // The frozen client is still connected when round 2's evaluation begins: it is asked, never answers.
    evaluatedWithout: true,
    timeouts: { trainMs: 3_000 },
  },
  {
    mode: 'distributed',
    at: 'secagg_consistency_request',
    how: 'hang',
    minSurvivors: 3,
    outcome: 'included',
    deadline: (l) => l.msg === 'secagg phase deadline' && l.round === KILL_ROUND && l.phase === 'consistency' && l.late === 1,
    evaluatedWithout: true,
    timeouts: { phaseTimeoutMs: 1_500 },
  },
  {
    mode: 'central',
    at: 'evaluate',
    how: 'hang',
    minSurvivors: 3,
    outcome: 'included',
    deadline: (l) => l.msg === 'federated evaluation' && l.round === KILL_ROUND && l.clients === 3,
    evaluatedWithout: true,
    // Round 3 starts at the evaluation deadline with the frozen client in its cohort; it is killed then.
    round3Survivors: 3,
    timeouts: { evaluateMs: 2_000 },
  },
];

async function clientKillCase(res: Resources, c: Case): Promise<void> {
  const how = c.how ?? 'kill';
  const id = `${c.mode}-${how}-${c.at.replace(/_/g, '-')}-ms${c.minSurvivors}`;
  const job = await prepareJob(jobSpec(c.mode, { id, rounds: ROUNDS, minClients: CLIENTS, minSurvivors: c.minSurvivors, timeouts: c.timeouts }));
  res.dir(job.cleanup);
  const { config } = job;
  const victimId = `${id}-victim`;

  const server = res.child(startServer(job.args));
  const victim = res.child(startVictim({ port: job.port, clientId: victimId, index: 0, die: { at: c.at, round: KILL_ROUND, how } }));
  await server.waitFor((l) => l.msg === 'coordinator listening', 30_000);
  const fleet = res.fleet(new Fleet(job.port, [1, 2, 3].map((i) => `${id}-c${i}`), { firstIndex: 1 }));

  if (how === 'hang') {
    await victim.waitFor((l) => l.event === 'hanging', 60_000);
    // The coordinator must get past the silent client by its deadline alone; only then is it killed.
    await server.waitFor(c.deadline!, 30_000);
    expect(victim.child.kill('SIGKILL')).toBe(true);
  }
  const died = await within(victim.exit, 60_000, `victim never reached ${c.at} of round ${KILL_ROUND}`, () => victim.stderr());
  expect(died, `the victim was SIGKILLed (stderr: ${victim.stderr()})`).toEqual({ code: null, signal: 'SIGKILL' });
  expect(victim.lines.at(-1)).toEqual({ event: how === 'hang' ? 'hanging' : 'dying', at: c.at, round: KILL_ROUND });
  // Restarted at once with the same id (in this process: what matters is the new connection of a
  // known client id, eligible from the next attempt on).
  const again = res.fleet(new Fleet(job.port, [victimId], { firstIndex: 0 }));

  const ended = await within(server.exit, 90_000, 'the coordinator finishing the job', server.stderr);
  expect(ended.code, `coordinator exit (stderr: ${server.stderr()})`).toBe(0);
  const ends = await within(Promise.all([...fleet.ends, ...again.ends]), 10_000, 'job_end at every client');
  for (const e of ends) expect(e).toMatchObject({ status: 'completed', rounds: ROUNDS });
  fleet.stop();
  again.stop();

  const fin = snapshot(job.dir, id);
  expect(fin.status).toBe('completed');
  expectConsistent(fin, config);
  expect(fin.rounds.map((r) => r.round)).toEqual([1, 2, 3]);
  const killed = fin.rounds[KILL_ROUND - 1];
  const retries = fin.attempts.filter((a) => a.round === KILL_ROUND);
  expect(fin.attempts.filter((a) => a.round !== KILL_ROUND), 'only the killed round was ever aborted').toEqual([]);
  expect(fin.rounds[0].survivors, 'round 1 had everyone').toBe(CLIENTS);
  if (c.meanOf) expectModelStep(job.dir, id, KILL_ROUND, c.meanOf);
  switch (c.outcome) {
    case 'dropped':
      expect(retries).toEqual([]);
      expect(killed).toMatchObject({ cohortSize: CLIENTS, survivors: CLIENTS - 1, dropouts: 1 });
      break;
    case 'included':
      expect(retries).toEqual([]);
      expect(killed).toMatchObject({ cohortSize: CLIENTS, survivors: CLIENTS, dropouts: 0 });
      break;
    case 'retried':
      expect(retries.length).toBeGreaterThanOrEqual(1);
      for (const a of retries) expect(a.reason).toMatch(c.reason!);
      expect(killed).toMatchObject({ cohortSize: CLIENTS, survivors: CLIENTS, dropouts: 0 });
      break;
  }
  // Every round was evaluated; the one the victim was asked for and never answered, by the other three.
  expect(fin.evaluations).toEqual([1, 2, 3]);
  if (c.evaluatedWithout) expect(killed.evaluation).toMatchObject({ clients: CLIENTS - 1, numExamples: 11 + 12 + 13 });
  const round3 = c.round3Survivors ?? CLIENTS;
  expect(fin.rounds[2], 'round 3').toMatchObject({ cohortSize: CLIENTS, survivors: round3, dropouts: CLIENTS - round3 });
  if (round3 === CLIENTS) {
    expect(again.served.some((m) => m.kind === 'train' && m.round === 3), 'the restarted victim was sampled in round 3').toBe(true);
  }
  expectServedCommitted([...fleet.served, ...victimServed(victimId, victim.lines), ...again.served], fin, config);
}

/**
 * Round `round`'s model minus round `round − 1`'s (FedAvg, server learning rate 1) is the plain mean of
 * the FixedTask updates of clients `indices`, up to SecAgg's quantisation (γ ≈ 3·10⁻⁴ here): within
 * 10% of its norm, where counting one client too many or too few is off by 25–33%.
 */
function expectModelStep(dir: string, jobId: string, round: number, indices: number[]): void {
  const store = CohortStore.open(dir);
  const before = store.checkpoint(jobId, round - 1)!.weights;
  const after = store.checkpoint(jobId, round)!.weights;
  store.close();
  const expected = Float64Array.from({ length: DIM }, (_, j) => indices.reduce((a, i) => a + 0.02 * Math.cos(j * (i + 1)), 0) / indices.length);
  let err = 0;
  let norm = 0;
  for (let j = 0; j < DIM; j++) {
    err += (after[j] - before[j] - expected[j]) ** 2;
    norm += expected[j] ** 2;
  }
  expect(Math.sqrt(err) / Math.sqrt(norm), `round ${round}'s step vs the mean of clients ${indices}`).toBeLessThan(0.1);
}

const limit = limiter(2);

describe('client SIGKILL (or hang) at each phase of a round', () => {
  it.concurrent.each(CASES.map((c) => ({ ...c, how: c.how ?? 'kill' })))(
    '$mode round, victim $how at $at (minSurvivors $minSurvivors): $outcome',
    (c) => limit(() => withResources((res) => clientKillCase(res, c))),
    300_000,
  );
});
