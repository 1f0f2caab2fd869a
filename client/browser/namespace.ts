/**
 * Which Socket.IO URL a job lives at. `cohort serve` gives every job its own namespace, `/jobs/<id>`;
 * `cohort server` runs one job on the root namespace. A browser only knows the server and the job id,
 * so it asks: the job's namespace if the server has it, else the root. Socket.IO servers always accept
 * the root namespace (`cohort serve` too, where nothing answers there), so a root connection only
 * proves the job when a welcome naming it arrives: the worker checks that, with a deadline.
 */
import { io } from 'socket.io-client';
import { CohortError } from '../../shared/errors.ts';

type Probe = 'connects' | 'no-namespace' | 'unreachable';

function probe(url: string, timeoutMs: number): Promise<Probe> {
  return new Promise((resolve) => {
    const socket = io(url, { transports: ['websocket'], reconnection: false, timeout: timeoutMs, forceNew: true });
    const done = (result: Probe): void => {
      socket.removeAllListeners();
      socket.disconnect();
      resolve(result);
    };
    socket.on('connect', () => done('connects'));
    // Socket.IO's server refuses an unknown namespace with exactly this message.
    socket.on('connect_error', (err: Error) => done(err.message === 'Invalid namespace' ? 'no-namespace' : 'unreachable'));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The URL to connect to for `job` on `server`. Retries an unreachable server with backoff (as the
 * transport would) until it answers or `signal` says stop.
 */
export async function resolveJobUrl(server: string, job: string | undefined, signal: { stopped: boolean }): Promise<{ url: string; root: boolean }> {
  const base = server.replace(/\/+$/, '');
  if (job === undefined) return { url: base, root: true };
  const jobUrl = `${base}/jobs/${encodeURIComponent(job)}`;
  for (let delay = 500; !signal.stopped; delay = Math.min(delay * 2, 30_000)) {
    const own = await probe(jobUrl, 10_000);
    if (own === 'connects') return { url: jobUrl, root: false };
    if (own === 'no-namespace') {
      const root = await probe(base, 10_000);
      if (root === 'connects') return { url: base, root: true };
      if (root === 'no-namespace') throw new CohortError('UNKNOWN_JOB', `${base} runs no job ${JSON.stringify(job)}`);
    }
    await sleep(delay * (0.5 + Math.random()));
  }
  return { url: jobUrl, root: false };
}
