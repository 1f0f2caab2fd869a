/**
 * Fault injection, client side (issue 11, item 5, "kill clients at each phase too"): one of the four
 * clients of a plain, central-DP or SecAgg + distributed-DP job runs in its own process and SIGKILLs
 * itself in round 2: inside local training, on receiving each SecAgg request (advertise, share keys,
 * masked input, consistency, unmask) before answering it, or on receiving `evaluate`. It is restarted
 * at once with the same client id. The round completes without it when enough survive (or with it, when
 * its masked input was already in the sum), or aborts cleanly and is retried once it is back; the job
 * completes with the store invariants of the coordinator matrix, and no client is ever served a model
 * without its round / ledger row.
 */
import { describe, expect, it } from 'vitest';
import { startServer } from '../helpers.ts';
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

/** What becomes of round 2 when the victim dies in it. */
type Outcome =
  /** Committed at the first attempt without the victim (3 survivors of 4). */
  | 'dropped'
  /** Committed at the first attempt with the victim's update in it (its masked input was in the sum). */
  | 'included'
  /** Aborted (too few survivors), retried once the victim was back, committed with all 4. */
  | 'retried'
  /** Committed with all 4; its evaluation closed without the victim's result. */
  | 'unevaluated';

interface Case {
  mode: Mode;
  at: VictimDeath;
  minSurvivors: number;
  outcome: Outcome;
  /** Why the aborted attempts aborted ('retried'). */
  reason?: RegExp;
}

const ROUNDS = 3;
const KILL_ROUND = 2;

const CASES: Case[] = [
  { mode: 'plain', at: 'fit', minSurvivors: 3, outcome: 'dropped' },
  { mode: 'plain', at: 'fit', minSurvivors: 4, outcome: 'retried', reason: /^3 survivors < minSurvivors 4$/ },
  { mode: 'plain', at: 'evaluate', minSurvivors: 3, outcome: 'unevaluated' },
  { mode: 'central', at: 'fit', minSurvivors: 3, outcome: 'dropped' },
  { mode: 'central', at: 'fit', minSurvivors: 4, outcome: 'retried', reason: /^3 survivors < minSurvivors 4$/ },
  { mode: 'central', at: 'evaluate', minSurvivors: 3, outcome: 'unevaluated' },
  // SecAgg with 4 clients at minSurvivors 3: complete graph (k = 3), threshold 2, one dropout tolerated.
  // At minSurvivors 4 the graph is a ring (k = 2, t = 2) sized for no dropout: one death aborts the attempt.
  { mode: 'distributed', at: 'fit', minSurvivors: 3, outcome: 'dropped' },
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
  { mode: 'distributed', at: 'evaluate', minSurvivors: 3, outcome: 'unevaluated' },
];

async function clientKillCase(res: Resources, c: Case): Promise<void> {
  const id = `${c.mode}-${c.at.replace(/_/g, '-')}-ms${c.minSurvivors}`;
  const job = await prepareJob(jobSpec(c.mode, { id, rounds: ROUNDS, minClients: CLIENTS, minSurvivors: c.minSurvivors }));
  res.dir(job.cleanup);
  const { config } = job;
  const victimId = `${id}-victim`;

  const server = res.child(startServer(job.args));
  const victim = res.child(startVictim({ port: job.port, clientId: victimId, index: 0, die: { at: c.at, round: KILL_ROUND } }));
  await server.waitFor((l) => l.msg === 'coordinator listening', 30_000);
  const fleet = res.fleet(new Fleet(job.port, [1, 2, 3].map((i) => `${id}-c${i}`), { firstIndex: 1 }));

  const died = await within(victim.exit, 60_000, `victim never reached ${c.at} of round ${KILL_ROUND}`, () => victim.stderr());
  expect(died, `the victim SIGKILLed itself (stderr: ${victim.stderr()})`).toEqual({ code: null, signal: 'SIGKILL' });
  expect(victim.lines.at(-1)).toEqual({ event: 'dying', at: c.at, round: KILL_ROUND });
  // Restarted at once, same id: a new connection, eligible from the next attempt on.
  const again = res.child(startVictim({ port: job.port, clientId: victimId, index: 0 }));

  const ended = await within(server.exit, 90_000, 'the coordinator finishing the job', server.stderr);
  expect(ended.code, `coordinator exit (stderr: ${server.stderr()})`).toBe(0);
  const ends = await within(Promise.all(fleet.ends), 10_000, 'job_end at every in-process client');
  for (const e of ends) expect(e).toMatchObject({ status: 'completed', rounds: ROUNDS });
  const againExit = await within(again.exit, 10_000, 'the restarted victim ending with the job', () => again.stderr());
  expect(againExit.code, again.stderr()).toBe(0);
  expect(again.lines.at(-1)).toEqual({ event: 'job_end', status: 'completed', rounds: ROUNDS });
  fleet.stop();

  const fin = snapshot(job.dir, id);
  expect(fin.status).toBe('completed');
  expectConsistent(fin, config);
  expect(fin.rounds.map((r) => r.round)).toEqual([1, 2, 3]);
  const killed = fin.rounds[KILL_ROUND - 1];
  const retries = fin.attempts.filter((a) => a.round === KILL_ROUND);
  expect(fin.attempts.filter((a) => a.round !== KILL_ROUND), 'only the killed round was ever aborted').toEqual([]);
  expect(fin.rounds[0].survivors, 'round 1 had everyone').toBe(CLIENTS);
  switch (c.outcome) {
    case 'dropped':
      expect(retries).toEqual([]);
      expect(killed).toMatchObject({ cohortSize: CLIENTS, survivors: CLIENTS - 1, dropouts: 1 });
      break;
    case 'included':
      expect(retries).toEqual([]);
      expect(killed).toMatchObject({ cohortSize: CLIENTS, survivors: CLIENTS });
      break;
    case 'retried':
      expect(retries.length).toBeGreaterThanOrEqual(1);
      for (const a of retries) expect(a.reason).toMatch(c.reason!);
      expect(killed).toMatchObject({ cohortSize: CLIENTS, survivors: CLIENTS, dropouts: 0 });
      break;
    case 'unevaluated':
      expect(retries).toEqual([]);
      expect(killed).toMatchObject({ cohortSize: CLIENTS, survivors: CLIENTS });
      // The evaluation closed on the victim's disconnect with the three others' results.
      expect(killed.evaluation).toMatchObject({ clients: CLIENTS - 1, numExamples: 11 + 12 + 13 });
      break;
  }
  // Every round was evaluated (the killed evaluation with the survivors' results).
  expect(fin.evaluations).toEqual([1, 2, 3]);
  expect(fin.rounds[2].survivors, 'the restarted victim took part in round 3').toBe(CLIENTS);
  expectServedCommitted([...fleet.served, ...victimServed(victimId, victim.lines), ...victimServed(victimId, again.lines)], fin, config);
}

const limit = limiter(2);

describe('client SIGKILL at each phase of a round', () => {
  it.concurrent.each(CASES)(
    '$mode round, victim dies at $at (minSurvivors $minSurvivors): $outcome',
    (c) => limit(() => withResources((res) => clientKillCase(res, c))),
    300_000,
  );
});
