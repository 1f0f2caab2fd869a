/**
 * How the engine tells its own faults apart. A client's bad message is a typed CohortError and is
 * answered; a failure of the SQLite store (full disk, lock held elsewhere, I/O error, read-only or
 * corrupt file) pauses the job, since retrying would loop; anything else is a bug of ours: the attempt
 * in flight is aborted and retried.
 */
import { boundText } from '../../shared/protocol/index.ts';

/** An error of the SQLite store itself — not a constraint our own inputs broke. */
export function isStoreFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') && !code.startsWith('SQLITE_CONSTRAINT');
}

/** An error's message, bounded, for reasons stored and sent. */
export function errorText(err: unknown): string {
  return boundText(err instanceof Error ? err.message : String(err), 300);
}
