/**
 * api_tokens: the HTTP API's bearer tokens. A token is `fst_` + base64url(32 random bytes) and is
 * shown to its creator once; the catalog keeps only its sha256, so a copy of the database (a
 * backup, a replica, a leaked dump) holds nothing a client could present. Nothing here ever
 * returns the hash either: {@link TokenInfo} is a row without it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { and, asc, eq, isNull, sql } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { apiTokens, type ApiTokenRow } from '../../db/schema';
import { InvalidRequestError, NotFoundError } from '../errors';
import { getMount } from './mounts';

/** What every token starts with: lets secret scanners and people recognise one. */
export const TOKEN_PREFIX = 'fst_';
/** Token ids (`tok_` + 12 hex chars): public, safe to log and to name in `token revoke`. */
export const TOKEN_ID_PATTERN = /^tok_[0-9a-f]{12}$/;
/** The exact shape {@link createToken} makes; anything else cannot be one of ours. */
const TOKEN_PATTERN = /^fst_[A-Za-z0-9_-]{43}$/;
const MAX_NAME_LENGTH = 200;

/** A token's row without its hash: what leaves the catalog. */
export type TokenInfo = Omit<ApiTokenRow, 'tokenSha256'>;

/** Scope of a new token: exactly one of `admin` and `mountId`. */
export interface CreateTokenInput {
  /** Everything, including mount administration. */
  admin?: boolean;
  /** Only this mount: its reads and (unless `readOnly`) its mutations. */
  mountId?: string;
  /** With `mountId` only: reads of the mount, no mutations. @defaultValue false */
  readOnly?: boolean;
  /** A label for people (`token ls`); not secret, not unique. */
  name?: string;
}

// Every column but the hash, for the selects and returning clauses below.
const PUBLIC_COLUMNS = {
  id: apiTokens.id,
  name: apiTokens.name,
  admin: apiTokens.admin,
  mountId: apiTokens.mountId,
  readOnly: apiTokens.readOnly,
  createdAt: apiTokens.createdAt,
  revokedAt: apiTokens.revokedAt,
};

/** Hex sha256 of a token: the only form in which the catalog knows it. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Makes a token and stores its hash. The returned `token` exists nowhere else: print it once.
 *
 * @throws InvalidRequestError when neither or both of `admin` and `mountId` are given, when
 *   `readOnly` comes without `mountId`, or for a name that is empty, too long or has control characters.
 * @throws UnknownMountError when `mountId` names no mount.
 */
export async function createToken(db: Db, input: CreateTokenInput): Promise<{ token: string; row: TokenInfo }> {
  const admin = input.admin === true;
  const mountId = input.mountId;
  if (admin === (mountId !== undefined)) {
    throw new InvalidRequestError('a token is either admin or scoped to one mount: give exactly one of admin and mountId');
  }
  if (input.readOnly && mountId === undefined) {
    throw new InvalidRequestError('readOnly applies to a mount token only (an admin token can do everything)');
  }
  const name = input.name === undefined ? null : checkName(input.name);
  if (mountId !== undefined) await getMount(db, mountId);

  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  // 48 random bits: a clash is all but impossible, but costs nothing to survive.
  for (let attempt = 0; ; attempt++) {
    const rows = await db
      .insert(apiTokens)
      .values({ id: `tok_${randomBytes(6).toString('hex')}`, tokenSha256: hashToken(token), name, admin, mountId: mountId ?? null, readOnly: input.readOnly === true })
      .onConflictDoNothing({ target: apiTokens.id })
      .returning(PUBLIC_COLUMNS);
    if (rows.length > 0) return { token, row: rows[0] };
    if (attempt >= 4) throw new Error('could not pick an unused token id');
  }
}

function checkName(name: string): string {
  const trimmed = name.trim();
  // Names are printed in `token ls`: no control characters that could rewrite a terminal line.
  if (trimmed === '' || trimmed.length > MAX_NAME_LENGTH || /[\u0000-\u001f\u007f]/.test(trimmed)) {
    throw new InvalidRequestError(`a token name is 1 to ${MAX_NAME_LENGTH} printable characters`);
  }
  return trimmed;
}

/** Every token, revoked ones included, oldest first. Never the hashes. */
export async function listTokens(db: Db): Promise<TokenInfo[]> {
  return db.select(PUBLIC_COLUMNS).from(apiTokens).orderBy(asc(apiTokens.createdAt), asc(apiTokens.id));
}

/** One page of tokens, oldest first: see {@link listTokenPage}. */
export interface TokenPage {
  tokens: TokenInfo[];
  /** Pass as `cursor` for the next page; null when this page is the last. Opaque. */
  nextCursor: string | null;
}

/**
 * One page of tokens (revoked ones included), oldest first, keyset-paged on (created_at, id); the
 * cursor names the last token's id, whose created_at is read back from its row.
 *
 * @throws InvalidRequestError for a cursor that is not one this function returned.
 */
export async function listTokenPage(db: Db, q: { limit?: number; cursor?: string | null } = {}): Promise<TokenPage> {
  const limit = q.limit ?? 100;
  let after: string | null = null;
  if (q.cursor) {
    try {
      after = (JSON.parse(Buffer.from(q.cursor, 'base64url').toString('utf8')) as { t?: unknown }).t as string;
    } catch {
      after = null;
    }
    if (typeof after !== 'string' || !TOKEN_ID_PATTERN.test(after)) throw new InvalidRequestError('cursor is not one the token listing returned');
  }
  const rows = await db
    .select(PUBLIC_COLUMNS)
    .from(apiTokens)
    .where(after === null ? undefined : sql`(${apiTokens.createdAt}, ${apiTokens.id}) > (SELECT t.created_at, t.id FROM ${apiTokens} t WHERE t.id = ${after})`)
    .orderBy(asc(apiTokens.createdAt), asc(apiTokens.id))
    .limit(limit + 1);
  if (rows.length <= limit) return { tokens: rows, nextCursor: null };
  const tokens = rows.slice(0, limit);
  return { tokens, nextCursor: Buffer.from(JSON.stringify({ t: tokens[tokens.length - 1]!.id }), 'utf8').toString('base64url') };
}

/**
 * Revokes a token: from then on it authenticates nothing (an API process that caches lookups
 * notices within its cache's lifetime, see src/api/auth.ts). Revoking a revoked token changes
 * nothing and returns it as it is (with its first `revokedAt`).
 *
 * @throws NotFoundError for an unknown id.
 */
export async function revokeToken(db: Db, id: string): Promise<TokenInfo> {
  const revoked = await db
    .update(apiTokens)
    .set({ revokedAt: new Date() })
    .where(and(eq(apiTokens.id, id), isNull(apiTokens.revokedAt)))
    .returning(PUBLIC_COLUMNS);
  if (revoked.length > 0) return revoked[0];
  const existing = await db.select(PUBLIC_COLUMNS).from(apiTokens).where(eq(apiTokens.id, id));
  if (existing.length === 0) throw new NotFoundError(`token ${JSON.stringify(id)}`, { tokenId: id });
  return existing[0];
}

/**
 * The live (not revoked) token a client presented, or null.
 *
 * No constant-time comparison is needed: the lookup is by sha256 of the presented token, through
 * the unique index. Whatever timing the index comparison leaks is about how many leading bytes of
 * the *hash* matched, and knowing that does not help anyone find a token whose hash matches more
 * (that would take a sha256 preimage) — so it is no oracle on the token itself.
 */
export async function findActiveToken(db: Db, token: string): Promise<TokenInfo | null> {
  // Not our format: no token can match, so no round trip (and no hashing of a huge header).
  if (!TOKEN_PATTERN.test(token)) return null;
  const rows = await db
    .select(PUBLIC_COLUMNS)
    .from(apiTokens)
    .where(and(eq(apiTokens.tokenSha256, hashToken(token)), isNull(apiTokens.revokedAt)));
  return rows[0] ?? null;
}
