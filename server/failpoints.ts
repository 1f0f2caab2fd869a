/**
 * Failpoints: named places in a round where a fault-injection test can make the coordinator die as
 * `kill -9` would (no cleanup, no flush), to prove that every phase recovers from a crash. The idea is
 * FreeBSD's fail(9) and TiKV's fail-rs: production code calls `failpoint(name, round)` at the seam;
 * nothing happens unless the process was started with `COHORT_FAILPOINT=name[@round]`.
 *
 * The round engine and the store receive the hook as an option (they stay free of process globals);
 * only the coordinator assembly reads the environment.
 */
import { ConfigError } from '../shared/errors.ts';

export const FAILPOINTS = [
  /** The cohort is sampled and the privacy plan made; no `train` message has left. */
  'select',
  /** Every sampled client was sent `train`. */
  'train',
  /** The first plain update of the round was folded into the running sum. */
  'collect',
  /** A SecAgg phase's requests were sent (the phase is open). */
  'secagg:advertise',
  'secagg:share',
  'secagg:collect',
  'secagg:consistency',
  'secagg:unmask',
  /** The aggregate is computed; the commit transaction has not begun. */
  'commit:before',
  /** Inside the commit transaction: round row, checkpoint and ledger row written, not yet committed. */
  'commit:in-transaction',
  /** The commit returned; nobody has been told the round's outcome yet. */
  'commit:after',
  /** Every evaluator was sent `evaluate`. */
  'evaluate',
  /** The first evaluation result was applied. */
  'evaluate:result',
] as const;
export type FailpointName = (typeof FAILPOINTS)[number];

/** Called at each failpoint with the round it is in. */
export type Failpoint = (name: FailpointName, round: number) => void;

export const noFailpoints: Failpoint = () => {};

/**
 * The hook for a spec `name` (fires the first time the point is reached) or `name@round` (fires in
 * that round only). `die` defaults to SIGKILL of this process. An unknown name is a ConfigError, so
 * a typo cannot make a fault test pass vacuously.
 */
export function failpointFromSpec(spec: string | undefined, die: () => void = killSelf): Failpoint {
  if (spec === undefined || spec === '') return noFailpoints;
  const [name, roundText] = spec.split('@');
  if (!(FAILPOINTS as readonly string[]).includes(name)) {
    throw new ConfigError(`COHORT_FAILPOINT: unknown failpoint ${JSON.stringify(name)} (known: ${FAILPOINTS.join(', ')})`);
  }
  const round = roundText === undefined ? undefined : Number(roundText);
  if (round !== undefined && !(Number.isInteger(round) && round >= 1)) {
    throw new ConfigError(`COHORT_FAILPOINT: round must be a positive integer, got ${JSON.stringify(roundText)}`);
  }
  return (at, atRound) => {
    if (at === name && (round === undefined || atRound === round)) die();
  };
}

function killSelf(): void {
  process.kill(process.pid, 'SIGKILL');
}
