/** The load bench's limits check, statistics (quantiles, least-squares slope) and a counting helper. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/** File descriptors besides the sockets: Node, SQLite, IPC pipes. */
export const FD_RESERVE = 256;

// ---- limits ----------------------------------------------------------------------------------------

/** The soft RLIMIT_NOFILE of this process (children inherit it). */
export function openFileLimit(): number {
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    if (soft === 'unlimited') return Infinity;
    if (soft !== undefined && Number.isFinite(Number(soft))) return Number(soft);
  } catch {
    // not Linux: ask a shell
  }
  const out = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  return out === 'unlimited' ? Infinity : Number(out);
}

/** Throws a clear error unless `ulimit -n` covers the coordinator's and each generator's sockets. */
export function checkLimits(opts: { clients: number; generators: number; perAddress: number }, limit = openFileLimit()): void {
  const coordinator = opts.clients + FD_RESERVE;
  const generator = Math.ceil(opts.clients / opts.generators) + FD_RESERVE;
  const need = Math.max(coordinator, generator);
  if (!(limit >= need)) {
    throw new Error(
      `bench load: --clients ${opts.clients} needs \`ulimit -n\` ≥ ${need} ` +
        `(coordinator: ${opts.clients} sockets + ${FD_RESERVE}; each of ${opts.generators} generators: ` +
        `${Math.ceil(opts.clients / opts.generators)} + ${FD_RESERVE}); this shell has ${limit}. ` +
        `Raise it (\`ulimit -n ${Math.max(need, 16_384)}\`, at most \`ulimit -Hn\`) or lower --clients.`,
    );
  }
  const perSource = opts.perAddress > 0 ? Math.min(opts.perAddress, opts.clients) : opts.clients;
  const ports = ephemeralPorts();
  if (ports !== undefined && perSource > ports) {
    throw new Error(`bench load: ${perSource} connections from one source address exceed the ${ports} ephemeral ports; lower --per-address`);
  }
  if (opts.perAddress > 0 && Math.ceil(opts.clients / opts.perAddress) > 253) {
    throw new Error(`bench load: ${opts.clients} clients at --per-address ${opts.perAddress} need more than 253 loopback addresses`);
  }
}

function ephemeralPorts(): number | undefined {
  try {
    const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return hi - lo + 1;
  } catch {
    return undefined;
  }
}

// ---- statistics ------------------------------------------------------------------------------------

/** Linear-interpolated quantile of unsorted values (NaN if empty). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/** Least-squares slope of y over x (null with fewer than 3 points). */
export function slope(xs: readonly number[], ys: readonly number[]): number | null {
  const n = xs.length;
  if (n < 3) return null;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  return sxx === 0 ? null : sxy / sxx;
}

/** Adds `by` to `tally[key]` (counts per reason, code, …). */
export const bump = (tally: Record<string, number>, key: string, by = 1): void => {
  tally[key] = (tally[key] ?? 0) + by;
};
