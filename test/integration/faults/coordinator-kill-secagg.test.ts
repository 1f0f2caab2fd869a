/**
 * Fault injection, coordinator side, SecAgg + distributed-DP rounds (issue 11, item 5): `cohort server`
 * SIGKILLs itself at each phase of round 2 (select, train, each SecAgg phase: advertise, share, masked
 * input collection, consistency, unmasking; before / inside / after the commit transaction, evaluate),
 * plus inside the transaction of round 1 and after the commit of the last round. Restarted, it resumes
 * after the last committed round (a fresh SecAgg session: the dead one's keys and shares are gone) and
 * finishes with the invariants of coordinator-kill.test.ts.
 */
import { describe, it } from 'vitest';
import type { FailpointName } from '../../../server/failpoints.ts';
import { coordinatorKillCase, ROUND_FAILPOINTS } from './coordinator-case.ts';
import { limiter, withResources } from './harness.ts';

const cases: [FailpointName, number][] = [
  ...ROUND_FAILPOINTS.distributed.map((fp): [FailpointName, number] => [fp, 2]),
  ['commit:in-transaction', 1],
  ['commit:after', 3],
];
const limit = limiter(2);

describe('coordinator SIGKILL in a SecAgg + distributed-DP round', () => {
  it.concurrent.each(cases)(
    'at %s@%i: restarts, resumes and completes',
    (failpoint, round) => limit(() => withResources((res) => coordinatorKillCase(res, 'distributed', failpoint, round))),
    300_000,
  );
});
