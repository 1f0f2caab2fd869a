/** The engines' clock lives in shared/ (the client engine takes one too); re-exported for server code. */
export { ManualClock, systemClock, type Clock } from '../../shared/clock.ts';
