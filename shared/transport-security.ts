/**
 * The transport's security rules, shared by the coordinator and the clients (pure: no I/O, no Node
 * built-ins). Plaintext (http://, ws://) is allowed only on loopback — 127.0.0.0/8, ::1, `localhost` —
 * or when the operator says `--insecure`; a server certificate is named by its fingerprint,
 * `sha256:<64 lowercase hex>` of its DER encoding, which is what an operator pins on clients.
 */
import { ConfigError } from './errors.ts';

/** True for 127.0.0.0/8, ::1 (also bracketed or IPv4-mapped) and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h === 'localhost' || h === 'localhost.') return true;
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  if (mapped) h = mapped[1];
  const octets = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return octets !== null && octets.slice(1).every((o) => Number(o) <= 255) && Number(octets[1]) === 127;
}

/** The scheme of a coordinator URL, checked: http(s) or ws(s) only. */
export function transportScheme(url: URL): 'tls' | 'plaintext' {
  if (url.protocol === 'https:' || url.protocol === 'wss:') return 'tls';
  if (url.protocol === 'http:' || url.protocol === 'ws:') return 'plaintext';
  throw new ConfigError(`the server URL must be https:// (or http:// on loopback), got ${JSON.stringify(url.href)}`);
}

/**
 * A client's check before it connects: a plaintext URL to a host that is not loopback is refused
 * unless `insecure` (the caller then logs a warning). Returns whether the connection uses TLS.
 */
export function checkServerUrl(text: string, insecure = false): { url: URL; tls: boolean } {
  let url: URL;
  try {
    // A browser page may name its own origin's path (`/jobs/x`): resolved against the page.
    url = new URL(text, (globalThis as { location?: { href: string } }).location?.href);
  } catch {
    throw new ConfigError(`the server URL does not parse: ${JSON.stringify(text)}`);
  }
  const tls = transportScheme(url) === 'tls';
  if (!tls && !insecure && !isLoopbackHost(url.hostname)) {
    throw new ConfigError(
      `refusing plaintext ${url.protocol}// to ${url.hostname}, which is not loopback: use https:// (the server needs --tls-cert/--tls-key), or pass --insecure to send the model and updates unencrypted`,
    );
  }
  return { url, tls };
}

/**
 * A coordinator's check before it listens: a non-loopback address needs TLS, unless `insecure`.
 * Returns `'insecure'` when plaintext was allowed by the flag (the caller logs a warning).
 */
export function checkListenAddress(host: string, tls: boolean, insecure = false): 'tls' | 'loopback' | 'insecure' {
  if (tls) return 'tls';
  if (isLoopbackHost(host)) return 'loopback';
  if (insecure) return 'insecure';
  throw new ConfigError(
    `refusing to listen on ${host} without TLS: it is not a loopback address, so clients would send their updates unencrypted. Pass --tls-cert FILE --tls-key FILE, or --insecure to serve plaintext anyway`,
  );
}

const FINGERPRINT = /^sha256:[0-9a-f]{64}$/;

/**
 * A pinned fingerprint as an operator may write it: `sha256:<hex>` (any case), or OpenSSL's
 * colon-separated form (`AB:CD:…`, with or without `sha256:`). Returns the canonical `sha256:<hex>`.
 */
export function parseFingerprint(text: string): string {
  const body = text.trim().replace(/^sha-?256[:=]\s*/i, '').replace(/:/g, '').toLowerCase();
  const canonical = `sha256:${body}`;
  if (!FINGERPRINT.test(canonical)) {
    throw new ConfigError(`a server fingerprint must be sha256: and 64 hex digits (the SHA-256 of the DER certificate), got ${JSON.stringify(text)}`);
  }
  return canonical;
}

/** `sha256:<hex>` from a SHA-256 digest. */
export function formatFingerprint(digest: Uint8Array): string {
  if (digest.length !== 32) throw new ConfigError(`a SHA-256 digest has 32 bytes, got ${digest.length}`);
  let hex = '';
  for (const b of digest) hex += b.toString(16).padStart(2, '0');
  return `sha256:${hex}`;
}
