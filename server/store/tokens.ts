/**
 * API tokens repository: the `api_tokens` table (schema v5).
 *
 * A token is `cht_` + 256 random bits (node:crypto randomBytes) in base64url. It is returned once, by
 * create(), and stored only as its SHA-256 in hex: whoever reads the database learns no token. verify()
 * looks a token up by that hash (a unique index) and compares the stored hash with crypto.timingSafeEqual;
 * an unknown, malformed or revoked token is `undefined`, never an error. `last_used_at` is written at
 * most once per second per token, so verifying on every request does not make every request a write.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type Database from 'better-sqlite3';
import { CohortError } from '../../shared/errors.ts';
import { isSqliteError } from './jobs.ts';
import { ROLES, type Role, type TokenRow } from './types.ts';
import * as v from './validate.ts';

export const TOKEN_PREFIX = 'cht_';
const ID_PREFIX = 'tok_';
/** `cht_` + 43 base64url characters (32 bytes); anything longer is not ours and is not hashed. */
const TOKEN_LENGTH = TOKEN_PREFIX.length + 43;
const NAME_MAX = 128;
const LAST_USED_GRANULARITY_MS = 1000;

interface TokenSql {
  id: string;
  name: string;
  role: Role;
  token_hash: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

function prepare(db: Database.Database) {
  return {
    insert: db.prepare<[string, string, Role, string, number]>(
      'INSERT INTO api_tokens (id, name, role, token_hash, created_at) VALUES (?, ?, ?, ?, ?)',
    ),
    byHash: db.prepare<[string], TokenSql>('SELECT * FROM api_tokens WHERE token_hash = ?'),
    byId: db.prepare<[string], TokenSql>('SELECT * FROM api_tokens WHERE id = ?'),
    byName: db.prepare<[string], TokenSql>('SELECT * FROM api_tokens WHERE name = ?'),
    list: db.prepare<[], TokenSql>('SELECT * FROM api_tokens ORDER BY created_at, name'),
    touch: db.prepare<[number, string]>('UPDATE api_tokens SET last_used_at = ? WHERE id = ?'),
    revoke: db.prepare<[number, string]>('UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?'),
  };
}

const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

function toToken(r: TokenSql): TokenRow {
  return { id: r.id, name: r.name, role: r.role, createdAt: r.created_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at };
}

/** A token's name: 1–128 characters, no control characters, not shaped like a token id (revoke takes either). */
function tokenName(value: unknown): string {
  const name = v.nonEmptyString('name', value);
  if (name.length > NAME_MAX || /[\u0000-\u001f\u007f]/.test(name) || name.trim() !== name) {
    throw new CohortError('BAD_INPUT', `name: must be 1–${NAME_MAX} characters without control characters or surrounding spaces`);
  }
  if (name.startsWith(ID_PREFIX)) throw new CohortError('BAD_INPUT', `name: must not start with ${ID_PREFIX} (token ids do)`);
  return name;
}

export class TokensRepository {
  private readonly st: ReturnType<typeof prepare>;

  constructor(
    db: Database.Database,
    private readonly now: () => number,
  ) {
    this.st = prepare(db);
  }

  /** A new token: its text (shown once, stored nowhere) and its row. TOKEN_EXISTS if the name is taken. */
  create(input: { name: string; role: Role }): { token: string; row: TokenRow } {
    if (typeof input !== 'object' || input === null) throw new CohortError('BAD_INPUT', 'token: must be an object');
    const name = tokenName(input.name);
    const role = v.oneOf('role', input.role, ROLES);
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const id = ID_PREFIX + randomBytes(8).toString('hex');
    try {
      this.st.insert.run(id, name, role, sha256Hex(token), this.now());
    } catch (e) {
      if (isSqliteError(e, 'SQLITE_CONSTRAINT') && this.st.byName.get(name)) {
        throw new CohortError('TOKEN_EXISTS', `a token named ${name} already exists`, { name });
      }
      throw e;
    }
    return { token, row: toToken(this.st.byId.get(id)!) };
  }

  /** The token's row if it is known and not revoked (its lastUsedAt brought up to now), else undefined. */
  verify(token: string): TokenRow | undefined {
    if (typeof token !== 'string' || token.length !== TOKEN_LENGTH || !token.startsWith(TOKEN_PREFIX)) return undefined;
    const hash = sha256Hex(token);
    const row = this.st.byHash.get(hash);
    if (!row) return undefined;
    // The unique index found the row by hash; the stored hash is then compared in constant time, so the
    // credential check itself never exits early on a matching prefix.
    if (!timingSafeEqual(Buffer.from(row.token_hash, 'hex'), Buffer.from(hash, 'hex'))) return undefined;
    if (row.revoked_at !== null) return undefined;
    const now = this.now();
    if (row.last_used_at === null || now - row.last_used_at >= LAST_USED_GRANULARITY_MS) {
      this.st.touch.run(now, row.id);
      row.last_used_at = now;
    }
    return toToken(row);
  }

  list(): TokenRow[] {
    return this.st.list.all().map(toToken);
  }

  /** Revokes by id or name; NOT_FOUND if neither matches. Revoking again keeps the first revokedAt. */
  revoke(idOrName: string): TokenRow {
    const key = v.nonEmptyString('idOrName', idOrName);
    const row = this.st.byId.get(key) ?? this.st.byName.get(key);
    if (!row) throw new CohortError('NOT_FOUND', `no token with id or name ${key}`, { token: key });
    this.st.revoke.run(this.now(), row.id);
    return toToken(this.st.byId.get(row.id)!);
  }
}
