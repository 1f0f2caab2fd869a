/**
 * One case of the coordinator half of the matrix: `cohort server` started with
 * COHORT_FAILPOINT=<name>@<round> SIGKILLs itself at that point of the round; the store is checked
 * as the crash left it; the server is restarted on the same data dir without the failpoint; the same
 * in-process clients reconnect by themselves; the job must complete with every invariant intact.
 */
import { expect } from 'vitest';
import { FAILPOINTS, type FailpointName } from '../../../server/failpoints.ts';
import { startServer, type LogLine } from '../helpers.ts';
import { CLIENTS, expectConsistent, expectServedCommitted, Fleet, jobSpec, prepareJob, snapshot, within, type Mode, type Resources } from './harness.ts';

/** Failpoints reached in every round of a mode (plain `collect` fires on a plain update: not under SecAgg). */
const PLAIN_ROUND = FAILPOINTS.filter((f) => !f.startsWith('secagg:'));
export const ROUND_FAILPOINTS: Record<Exclude<Mode, 'secagg'>, readonly FailpointName[]> = {
  plain: PLAIN_ROUND,
  central: PLAIN_ROUND,
  distributed: FAILPOINTS.filter((f) => f !== 'collect'),
};

/** From `commit:after` on, the killed round is in the store; before it (and inside the transaction) it is not. */
export function committedBy(failpoint: FailpointName, round: number): number {
  return ['commit:after', 'evaluate', 'evaluate:result'].includes(failpoint) ? round : round - 1;
}

const ROUNDS = 3;

export async function coordinatorKillCase(res: Resources, mode: Exclude<Mode, 'secagg'>, failpoint: FailpointName, round: number): Promise<void> {
  const id = `${mode}-${failpoint.replace(':', '-')}-${round}`;
  const job = await prepareJob(jobSpec(mode, { id, rounds: ROUNDS }));
  res.dir(job.cleanup);
  const { config } = job;
  const dp = config.dp.mode !== 'off';

  // 1. The coordinator dies at the failpoint.
  const first = res.child(startServer(job.args, { env: { COHORT_FAILPOINT: `${failpoint}@${round}` } }));
  await first.waitFor((l) => l.msg === 'coordinator listening', 30_000);
  // Killed after the last commit, the restarted coordinator has nothing left to run: whether clients
  // learn that the job ended then depends on when they reconnect, so they back off as real clients
  // would (the product default is 500 ms doubling to 30 s; 500 → 2,000 ms here), not at test speed.
  const k = committedBy(failpoint, round);
  const reconnect = k === ROUNDS ? { initialDelayMs: 500, maxDelayMs: 2_000 } : undefined;
  const fleet = res.fleet(new Fleet(job.port, Array.from({ length: CLIENTS }, (_, i) => `${id}-c${i}`), { reconnect }));
  const died = await within(first.exit, 60_000, `${failpoint}@${round} never fired`, first.stderr);
  expect(died, `the failpoint SIGKILLed the coordinator (stderr: ${first.stderr()})`).toEqual({ code: null, signal: 'SIGKILL' });

  // 2. The store as the crash left it: the killed round is absent or complete, never half-written.
  const mid = snapshot(job.dir, id);
  expect(mid.status).toBe('running');
  expectConsistent(mid, config);
  expect(mid.rounds.map((r) => r.round), `rounds committed when ${failpoint}@${round} fired`).toEqual(range(k));
  // The log never announced a commit the store does not hold, with an ε other than the ledger's.
  for (const line of first.lines.filter((l) => l.msg === 'round committed')) {
    expect(line.round).toBeLessThanOrEqual(k);
    expect(line.checksum).toBe(mid.checkpoints.get(line.round!));
    if (dp) expect(line.epsilon).toBe(mid.ledger.find((l) => l.status === 'committed' && l.round === line.round)!.epsilon);
  }

  // 3. Restart without the failpoint: it resumes after the last committed round, with the ledger's ε.
  const second = res.child(startServer(job.args));
  const start = await second.waitFor((l) => l.msg === 'resumed from checkpoint' || l.msg === 'initialised global model', 30_000);
  if (k === 0) expect(start.msg).toBe('initialised global model');
  else expect(start).toMatchObject({ msg: 'resumed from checkpoint', round: k, checksum: mid.checkpoints.get(k) });
  if (dp) {
    const loaded = await second.waitFor((l) => l.msg === 'privacy ledger loaded', 30_000);
    expect(loaded.epsilon as number, 'ε after restart = ε of the last ledger row').toBeCloseTo(mid.ledger.at(-1)?.epsilon ?? 0, 12);
  }
  const ended = await within(second.exit, 90_000, 'the restarted coordinator finishing the job', second.stderr);
  expect(ended.code, `restarted coordinator exit (stderr: ${second.stderr()})`).toBe(0);
  const firstStarted = second.lines.find((l: LogLine) => l.msg === 'round started');
  if (k < ROUNDS) expect(firstStarted?.round, 'the first round after the restart').toBe(k + 1);
  else expect(firstStarted, 'nothing left to run').toBeUndefined();
  const ends = await within(Promise.all(fleet.ends), 10_000, 'job_end at every client', () => {
    const joined = second.lines.filter((l) => l.msg === 'client joined').length;
    const finishedAt = second.lines.findIndex((l) => l.msg === 'job finished');
    const joinedBefore = second.lines.slice(0, finishedAt).filter((l) => l.msg === 'client joined').length;
    return `${joined} hello(s) reached the restarted coordinator, ${joinedBefore} before it finished the job and exited`;
  });
  for (const e of ends) expect(e).toMatchObject({ status: 'completed', rounds: ROUNDS });
  fleet.stop();

  // 4. The finished job.
  const fin = snapshot(job.dir, id);
  expect(fin.status).toBe('completed');
  expectConsistent(fin, config);
  expect(fin.rounds.map((r) => r.round)).toEqual(range(ROUNDS));
  // What was committed before the crash is untouched: no round redone, no ε re-spent or lost.
  expect(fin.rounds.slice(0, k)).toEqual(mid.rounds);
  expect(fin.ledger.slice(0, mid.ledger.length)).toEqual(mid.ledger);
  for (const [r, checksum] of mid.checkpoints) expect(fin.checkpoints.get(r)).toBe(checksum);
  for (const r of fin.rounds) expect(r.survivors, `round ${r.round}: every client survived`).toBe(CLIENTS);
  // Every committed round was evaluated, except the one whose evaluation the crash interrupted (a
  // crash between commit and the end of the evaluation loses it: the restart goes on to the next round).
  const interrupted = ['commit:after', 'evaluate', 'evaluate:result'].includes(failpoint) ? round : undefined;
  expect(fin.evaluations).toEqual(range(ROUNDS).filter((r) => r !== interrupted || mid.evaluations.includes(r)));
  expectServedCommitted(fleet.served, fin, config);
}

export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}
