/**
 * Who is asking, and may they: bearer tokens (the store keeps only their SHA-256, server/store tokens.ts),
 * roles ordered viewer < operator < admin, and a limit on failed authentications per address (10 wrong
 * tokens a minute, then 429 for the rest of the minute) so a token cannot be guessed online. Every denial is
 * audited by the caller (app.ts).
 */
import { CohortError } from '../../shared/errors.ts';
import type { Clock } from '../round/clock.ts';
import type { Role, TokenRow } from '../store/index.ts';

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** A route's requirement: a role, or none at all. */
export type Access = Role | 'public';

export function allows(role: Role, needed: Access): boolean {
  return needed === 'public' || RANK[role] >= RANK[needed];
}

export interface TokenVerifier {
  verifyToken(token: string): TokenRow | undefined;
}

const FAILURES_PER_WINDOW = 10;
const WINDOW_MS = 60_000;
/** Addresses remembered at once; the oldest window is forgotten first (bounded memory under a scan). */
const MAX_TRACKED = 10_000;

export class Authenticator {
  private readonly failures = new Map<string, { since: number; count: number }>();

  constructor(
    private readonly tokens: TokenVerifier,
    private readonly clock: Clock,
  ) {}

  /** The token's row, or a typed refusal (unauthenticated, or rate-limited for this address). */
  authenticate(header: string | undefined, ip: string): TokenRow {
    const now = this.clock.now();
    const seen = this.failures.get(ip);
    if (seen && now - seen.since < WINDOW_MS && seen.count >= FAILURES_PER_WINDOW) {
      throw new CohortError('API_RATE_LIMITED', `too many failed authentications from ${ip}; try again in ${Math.ceil((WINDOW_MS - (now - seen.since)) / 1000)} s`);
    }
    const match = /^Bearer ([A-Za-z0-9_-]{1,200})$/.exec(header ?? '');
    const row = match ? this.tokens.verifyToken(match[1]) : undefined;
    if (row) return row;
    // A wrong token is a guess; a missing header is not (it does not count towards the limit).
    if (header) this.fail(ip, now);
    throw new CohortError('API_UNAUTHENTICATED', header ? 'the bearer token is unknown or revoked' : 'an Authorization: Bearer <token> header is required');
  }

  private fail(ip: string, now: number): void {
    const seen = this.failures.get(ip);
    if (!seen || now - seen.since >= WINDOW_MS) {
      this.failures.delete(ip);
      if (this.failures.size >= MAX_TRACKED) this.failures.delete(this.failures.keys().next().value!);
      this.failures.set(ip, { since: now, count: 1 });
    } else {
      seen.count++;
    }
  }
}
