/**
 * Fault injection, coordinator side, plain and central-DP rounds (issue 11, item 5): `cohort server`
 * SIGKILLs itself at each phase of round 2 (select, train, collect, before / inside / after the commit
 * transaction, evaluate), plus inside the transaction of round 1 and after the commit of the last round;
 * restarted on the same data dir, it resumes after the last committed round and finishes the job with
 * contiguous rounds, one ledger row per committed round, ε neither lost nor counted twice, and no
 * client ever served a model without its round row / ledger row.
 */
import { describe, it } from 'vitest';
import type { FailpointName } from '../../../server/failpoints.ts';
import { coordinatorKillCase, ROUND_FAILPOINTS } from './coordinator-case.ts';
import { limiter, withResources, type Mode } from './harness.ts';

const MODES: Mode[] = ['plain', 'central'];
const cases = (mode: Mode): [FailpointName, number][] => [
  ...ROUND_FAILPOINTS[mode].map((fp): [FailpointName, number] => [fp, 2]),
  ['commit:in-transaction', 1],
  ['commit:after', 3],
];
const limit = limiter(2);

describe.each(MODES)('coordinator SIGKILL in a %s round', (mode) => {
  it.concurrent.each(cases(mode))(
    'at %s@%i: restarts, resumes and completes',
    (failpoint, round) => limit(() => withResources((res) => coordinatorKillCase(res, mode, failpoint, round))),
    300_000,
  );
});
