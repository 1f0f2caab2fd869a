/**
 * The admin bench's load generator, forked by bench/admin.ts so that reading the API does not share an
 * event loop with the bench's Socket.IO clients. Open loop: every request due by now is sent, whatever the
 * earlier ones' latency, alternating between the given paths; the first warmupMs are not measured. Started by a `start` message, stopped by
 * `stop`; answers with the latencies per path.
 */
import http from 'node:http';

export interface LoaderStart {
  type: 'start';
  url: string;
  token: string;
  rps: number;
  paths: string[];
  /** Requests sent in the first warmupMs are not measured (connections, JIT). */
  warmupMs: number;
}
export interface LoaderReport {
  type: 'done';
  latencies: Record<string, number[]>;
  sent: number;
  failed: number;
  rpsAchieved: number;
}

let running = false;
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/**
 * GET to the last byte of the body, as sent (gzip accepted and not inflated): the server's latency, not
 * this process's time to inflate 1 MB of JSON (which the machine's other processes would also delay).
 */
function get(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers: { ...headers, 'accept-encoding': 'gzip' } }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function load(msg: LoaderStart): Promise<LoaderReport> {
  const headers = { authorization: `Bearer ${msg.token}` };
  const latencies: Record<string, number[]> = Object.fromEntries(msg.paths.map((p) => [p, []]));
  const inflight = new Set<Promise<void>>();
  let sent = 0;
  let failed = 0;
  const start = performance.now();
  while (running) {
    const due = Math.floor(((performance.now() - start) / 1000) * msg.rps);
    while (sent < due) {
      const p = msg.paths[sent % msg.paths.length];
      sent++;
      const t = performance.now();
      const req: Promise<void> = get(`${msg.url}${p}`, headers)
        .then((status) => {
          if (status !== 200) failed++;
          else if (t - start >= msg.warmupMs) latencies[p].push(performance.now() - t);
        })
        .catch(() => void failed++)
        .finally(() => inflight.delete(req));
      inflight.add(req);
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  const elapsed = performance.now() - start;
  await Promise.all(inflight);
  return { type: 'done', latencies, sent, failed, rpsAchieved: (sent / elapsed) * 1000 };
}

process.on('message', (msg: LoaderStart | { type: 'stop' }) => {
  if (msg.type === 'start') {
    running = true;
    void load(msg).then((report) => {
      process.send!(report);
      process.disconnect();
    });
  } else running = false;
});
