/**
 * Fault injection, coordinator side, plain and central-DP rounds (issue 11, item 5): `cohort server`
 * SIGKILLs itself at each phase of round 2 (select, train, collect, before / inside / after the commit
 * transaction, evaluate), plus after the commit of the last round (plain) and inside the transaction of
 * round 1 (central);
 * restarted on the same data dir, it resumes after the last committed round and finishes the job with
 * contiguous rounds, one ledger row per committed round, ε neither lost nor counted twice, and no
 * client ever served a model without its round row / ledger row.
 */
import { describe, it } from 'vitest';
import type { FailpointName } from '../../../server/failpoints.ts';
import { coordinatorKillCase, ROUND_FAILPOINTS } from './coordinator-case.ts';
import { limiter, withResources, type Mode } from './harness.ts';

type RoundMode = Exclude<Mode, 'secagg'>;
const MODES: RoundMode[] = ['plain', 'central'];
// Round 2 at every failpoint; besides, inside the very first commit (DP: restart with ε = 0, from the
// initial model) and after the last commit (nothing left to run after the restart).
const cases = (mode: RoundMode): [FailpointName, number][] => [
  ...ROUND_FAILPOINTS[mode].map((fp): [FailpointName, number] => [fp, 2]),
  mode === 'plain' ? ['commit:after', 3] : ['commit:in-transaction', 1],
];
const limit = limiter(2);

describe.each(MODES)('coordinator SIGKILL in a %s round', (mode) => {
  it.concurrent.each(cases(mode))(
    'at %s@%i: restarts, resumes and completes',
    (failpoint, round) => limit(() => withResources((res) => coordinatorKillCase(res, mode, failpoint, round))),
    300_000,
  );
});
