/** Test helper: the CohortError code `fn` throws, undefined if it throws nothing, a marker text for any other throw. */
import { CohortError } from '../errors.ts';

export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof CohortError ? e.code : `not a CohortError: ${String(e)}`;
  }
  return undefined;
}
