/**
 * Bearer-token authentication and scope checks of the HTTP API, free of any HTTP framework: the
 * server calls {@link authenticate} with the `Authorization` header, then {@link authorize} with
 * what the route needs. Tokens live hashed in the catalog (src/catalog/tokens.ts).
 *
 * Scopes: an admin token may do everything. A mount token reaches one mount: its read routes, and
 * its mutations unless the token is read-only. A copy or move across mounts needs write on the
 * target and read on the source — two {@link authorize} calls.
 *
 * Nothing here puts a token into an error message, a log line or error details; only the token's
 * public id (`tok_…`) is named.
 */
import type { Db } from '../../db/client';
import { findActiveToken, hashToken } from '../catalog/tokens';
import { ForbiddenError, UnauthorizedError } from '../errors';

/** Who a request acts as: the scope of the token it presented. */
export interface Principal {
  /** The token's public id (`tok_…`): safe to log. */
  readonly tokenId: string;
  readonly admin: boolean;
  /** The one mount a non-admin token reaches; null for admin tokens. */
  readonly mountId: string | null;
  /** A mount token that may read but not mutate. */
  readonly readOnly: boolean;
}

/** What a route needs: an admin token, or read (write: false) / read-write access to one mount. */
export type AccessNeed = { admin: true } | { mountId: string; write: boolean };

/**
 * How long an API process trusts a token lookup it has made. Revoking a token therefore takes
 * effect in every API process within this time (at once in a process that revokes through its own
 * {@link TokenCache.forgetToken}).
 */
export const TOKEN_CACHE_TTL_MS = 5_000;

// Longer than any token we issue (fst_ + 43) by far; a bigger header is refused before hashing it.
const MAX_AUTHORIZATION_LENGTH = 1024;
// RFC 6750 §2.1: the scheme is case-insensitive; b64token characters, then optional '=' padding.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/**
 * Successful token lookups for at most {@link TOKEN_CACHE_TTL_MS}, keyed by the token's hash (so a
 * heap dump of the cache holds no token). Failures are not cached: a flood of made-up tokens must
 * not grow it, and a bad token costs one indexed lookup anyway. Bounded: the oldest entry goes first.
 */
export class TokenCache {
  private readonly entries = new Map<string, { principal: Principal; expiresAt: number }>();

  /**
   * @param ttlMs - how long a lookup is trusted; at most {@link TOKEN_CACHE_TTL_MS} (0 disables caching). @defaultValue TOKEN_CACHE_TTL_MS
   * @param maxEntries - how many tokens are kept. @defaultValue 10000
   * @param now - the clock (tests). @defaultValue Date.now
   */
  constructor(
    readonly ttlMs: number = TOKEN_CACHE_TTL_MS,
    readonly maxEntries: number = 10_000,
    private readonly now: () => number = Date.now,
  ) {
    if (!(ttlMs >= 0 && ttlMs <= TOKEN_CACHE_TTL_MS)) throw new RangeError(`token cache ttl must be 0..${TOKEN_CACHE_TTL_MS} ms (revocation must take effect within it)`);
  }

  get(tokenHash: string): Principal | undefined {
    const hit = this.entries.get(tokenHash);
    if (!hit) return undefined;
    if (hit.expiresAt <= this.now()) {
      this.entries.delete(tokenHash);
      return undefined;
    }
    return hit.principal;
  }

  set(tokenHash: string, principal: Principal): void {
    if (this.ttlMs === 0) return;
    this.entries.delete(tokenHash);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(tokenHash, { principal, expiresAt: this.now() + this.ttlMs });
  }

  /** Drops what is cached for one token id (call it after revoking that token in this process). */
  forgetToken(tokenId: string): void {
    for (const [hash, { principal }] of this.entries) if (principal.tokenId === tokenId) this.entries.delete(hash);
  }

  clear(): void {
    this.entries.clear();
  }
}

// One cache per catalog: tokens of two catalogs (tests run several) never meet.
const defaultCaches = new WeakMap<Db, TokenCache>();

/** The cache {@link authenticate} uses for `db` when none is passed. */
export function tokenCacheOf(db: Db): TokenCache {
  let cache = defaultCaches.get(db);
  if (!cache) defaultCaches.set(db, (cache = new TokenCache()));
  return cache;
}

/**
 * The principal of a request's `Authorization: Bearer <token>` header.
 *
 * @param opts.cache - where lookups are cached; null to look every request up. @defaultValue tokenCacheOf(db) (5 s)
 * @throws UnauthorizedError (401) for a missing or malformed header and for an unknown or revoked
 *   token. The message never repeats the token.
 */
export async function authenticate(db: Db, authorizationHeader: string | undefined, opts: { cache?: TokenCache | null } = {}): Promise<Principal> {
  if (authorizationHeader === undefined || authorizationHeader.trim() === '') throw new UnauthorizedError();
  const match = authorizationHeader.length <= MAX_AUTHORIZATION_LENGTH ? BEARER.exec(authorizationHeader) : null;
  if (!match) throw new UnauthorizedError('the Authorization header must be "Bearer <token>"');
  const token = match[1];
  const cache = opts.cache === undefined ? tokenCacheOf(db) : opts.cache;
  const key = hashToken(token);
  const cached = cache?.get(key);
  if (cached) return cached;
  const row = await findActiveToken(db, token);
  if (!row) throw new UnauthorizedError('the bearer token is not valid (unknown or revoked)');
  const principal: Principal = Object.freeze({ tokenId: row.id, admin: row.admin, mountId: row.mountId, readOnly: row.readOnly });
  cache?.set(key, principal);
  return principal;
}

/**
 * Checks that `principal` may do what a route needs.
 *
 * @throws ForbiddenError (403) when the route needs an admin token and this is a mount token, when
 *   the mount is not the token's, or when the route mutates and the token is read-only.
 */
export function authorize(principal: Principal, need: AccessNeed): void {
  if ('admin' in need) {
    if (!principal.admin) {
      throw new ForbiddenError(`this request needs an admin token; token ${principal.tokenId} is scoped to mount ${JSON.stringify(principal.mountId)}`, {
        tokenId: principal.tokenId,
      });
    }
    return;
  }
  if (principal.admin) return;
  if (principal.mountId !== need.mountId) {
    throw new ForbiddenError(`token ${principal.tokenId} is scoped to mount ${JSON.stringify(principal.mountId)} and cannot reach mount ${JSON.stringify(need.mountId)}`, {
      tokenId: principal.tokenId,
      mountId: need.mountId,
    });
  }
  if (need.write && principal.readOnly) {
    throw new ForbiddenError(`token ${principal.tokenId} is read-only on mount ${JSON.stringify(need.mountId)}; this request would change it`, {
      tokenId: principal.tokenId,
      mountId: need.mountId,
    });
  }
}

/** The mounts a principal may see: null for an admin token (all of them), else its one mount. */
export function visibleMounts(principal: Principal): string[] | null {
  if (principal.admin) return null;
  // The catalog's check (admin OR mount_id) rules out a scopeless token; if one appeared, it sees nothing.
  return principal.mountId === null ? [] : [principal.mountId];
}
