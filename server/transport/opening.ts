/**
 * Connections that are *opening*: accepted by the coordinator's HTTP(S) server but that have not yet
 * made their first HTTP request (over TLS, the handshake included). Node closes none of them by itself
 * — an HTTP server waits forever for a first request, and a TLS handshake may take two minutes — and
 * Socket.IO's caps (server/transport/socketio.ts) only see a connection once it has upgraded. So a
 * flood of silent or half-open connections could hold every file descriptor before any cap applied.
 * Here an opening connection is closed after `timeoutMs`, and at most `maxOpening` may be opening at
 * once (`maxOpeningPerIp` from one address); one over a cap is closed at once, before any TLS work.
 * After its first request a connection is Socket.IO's (connectTimeout, the hello deadline, the
 * unregistered caps) or fastify's (keep-alive timeout).
 */
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { silentLogger, type Logger } from '../../shared/log.ts';

export interface OpeningLimits {
  /** An opening connection (TLS handshake included) is closed after this. */
  timeoutMs: number;
  /** Opening connections in all; more are closed at once. */
  maxOpening: number;
  /** Opening connections from one address. */
  maxOpeningPerIp: number;
}

export const DEFAULT_OPENING_LIMITS: OpeningLimits = {
  // Longer than browsers keep an unused preconnected socket (Chromium ~10 s): closing one just as the
  // browser picks it for a request fails that request (net::ERR_SOCKET_NOT_CONNECTED; the dashboard's
  // Chromium test caught it at 10 s). The TLS handshake has its own, shorter bound (tls.ts).
  timeoutMs: 60_000,
  maxOpening: 1024,
  maxOpeningPerIp: 64,
};

/** Counts of the guard (tests, metrics). */
export interface OpeningGuard {
  /** Connections opening now. */
  readonly opening: number;
  /** Connections closed because a cap was full. */
  readonly refused: number;
  /** Connections closed because they made no request (or finished no TLS handshake) in time. */
  readonly timedOut: number;
}

/**
 * Attaches the caps and the deadline to `server` (HTTP or HTTPS). A connection is opening from its TCP
 * accept until its first request or upgrade, or until it closes.
 */
export function guardOpeningConnections(server: HttpServer, limits: OpeningLimits, logger: Logger = silentLogger): OpeningGuard {
  const log = logger.child({ component: 'connections' });
  /** Opening connections by `address|port`: a TLS socket has its raw socket's pair. */
  const opening = new Map<string, { raw: Socket; timer: NodeJS.Timeout }>();
  const perIp = new Map<string, number>();
  const counts = { refused: 0, timedOut: 0 };
  const keyOf = (s: { remoteAddress?: string; remotePort?: number }) => `${s.remoteAddress}|${s.remotePort}`;
  const settle = (key: string, raw?: Socket): void => {
    const entry = opening.get(key);
    if (!entry || (raw && entry.raw !== raw)) return;
    clearTimeout(entry.timer);
    opening.delete(key);
    const ip = entry.raw.remoteAddress ?? '';
    const n = (perIp.get(ip) ?? 1) - 1;
    if (n <= 0) perIp.delete(ip);
    else perIp.set(ip, n);
  };
  let lastWarning = 0;
  const warn = (fields: object, msg: string) => {
    // One line a second at most: a flood must not become a flood of log lines.
    if (Date.now() - lastWarning < 1000) return;
    lastWarning = Date.now();
    log.warn({ ...fields, refused: counts.refused, timedOut: counts.timedOut }, msg);
  };
  server.on('connection', (raw: Socket) => {
    const ip = raw.remoteAddress ?? '';
    const over =
      opening.size >= limits.maxOpening
        ? `more than ${limits.maxOpening} connections opening`
        : (perIp.get(ip) ?? 0) >= limits.maxOpeningPerIp
          ? `more than ${limits.maxOpeningPerIp} connections opening from ${ip}`
          : undefined;
    if (over !== undefined) {
      counts.refused++;
      warn({ ip, reason: over }, 'connection refused');
      raw.destroy();
      return;
    }
    const key = keyOf(raw);
    const timer = setTimeout(() => {
      counts.timedOut++;
      warn({ ip, timeoutMs: limits.timeoutMs }, 'connection closed: no request (or TLS handshake) in time');
      raw.destroy();
    }, limits.timeoutMs);
    timer.unref();
    opening.set(key, { raw, timer });
    perIp.set(ip, (perIp.get(ip) ?? 0) + 1);
    raw.once('close', () => settle(key, raw));
  });
  const requested = (req: IncomingMessage) => settle(keyOf(req.socket));
  server.on('request', requested);
  server.on('upgrade', requested);
  return {
    get opening() {
      return opening.size;
    },
    get refused() {
      return counts.refused;
    },
    get timedOut() {
      return counts.timedOut;
    },
  };
}
