/**
 * The API's scope rules without a database: every kind of token against every kind of need, what
 * each token may see, the header forms refused before any lookup, and the lookup cache's lifetime.
 */
import type { Db } from '../../db/client';
import { authenticate, authorize, TOKEN_CACHE_TTL_MS, TokenCache, visibleMounts, type AccessNeed, type Principal } from '../../src/api/auth';
import { codeOf } from '../helpers/error-code';

const admin: Principal = { tokenId: 'tok_000000000001', admin: true, mountId: null, readOnly: false };
const rw: Principal = { tokenId: 'tok_000000000002', admin: false, mountId: 'docs', readOnly: false };
const ro: Principal = { tokenId: 'tok_000000000003', admin: false, mountId: 'docs', readOnly: true };

const needs: Array<[string, AccessNeed]> = [
  ['admin', { admin: true }],
  ['read docs', { mountId: 'docs', write: false }],
  ['write docs', { mountId: 'docs', write: true }],
  ['read other', { mountId: 'other', write: false }],
  ['write other', { mountId: 'other', write: true }],
];

// undefined = allowed, else the code thrown.
const expected: Record<string, Record<string, string | undefined>> = {
  admin: { admin: undefined, 'read docs': undefined, 'write docs': undefined, 'read other': undefined, 'write other': undefined },
  'mount rw': { admin: 'FORBIDDEN', 'read docs': undefined, 'write docs': undefined, 'read other': 'FORBIDDEN', 'write other': 'FORBIDDEN' },
  'mount ro': { admin: 'FORBIDDEN', 'read docs': undefined, 'write docs': 'FORBIDDEN', 'read other': 'FORBIDDEN', 'write other': 'FORBIDDEN' },
};
const principals: Array<[string, Principal]> = [
  ['admin', admin],
  ['mount rw', rw],
  ['mount ro', ro],
];

describe('authorize', () => {
  for (const [who, principal] of principals) {
    for (const [what, need] of needs) {
      test(`${who} → ${what}: ${expected[who][what] ?? 'allowed'}`, () => {
        expect(codeOf(() => authorize(principal, need))).toBe(expected[who][what]);
      });
    }
  }

  test('refusals name the token id and say why', () => {
    const msg = (p: Principal, n: AccessNeed) => {
      try {
        authorize(p, n);
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error('expected a refusal');
    };
    expect(msg(rw, { admin: true })).toMatch(/needs an admin token; token tok_000000000002/);
    expect(msg(rw, { mountId: 'other', write: false })).toMatch(/scoped to mount "docs" and cannot reach mount "other"/);
    expect(msg(ro, { mountId: 'docs', write: true })).toMatch(/read-only on mount "docs"/);
  });
});

test('visibleMounts: all for admin, the one mount otherwise', () => {
  expect(visibleMounts(admin)).toBeNull();
  expect(visibleMounts(rw)).toEqual(['docs']);
  expect(visibleMounts(ro)).toEqual(['docs']);
  expect(visibleMounts({ tokenId: 'tok_x', admin: false, mountId: null, readOnly: false })).toEqual([]);
});

describe('authenticate refuses a bad header before any lookup', () => {
  // Any query would throw a TypeError on this stand-in: a refusal here proves none was made.
  const noDb = {} as Db;
  const secret = 'fst_' + 'A'.repeat(43);
  const cases: Array<[string, string | undefined]> = [
    ['missing', undefined],
    ['empty', ''],
    ['blank', '   '],
    ['another scheme', `Basic ${secret}`],
    ['no scheme', secret],
    ['scheme only', 'Bearer'],
    ['two tokens', `Bearer ${secret} ${secret}`],
    ['forbidden character', `Bearer ${secret}!`],
    ['overlong', `Bearer ${'a'.repeat(5000)}`],
    // Well-formed bearer syntax, but not the shape of a Filestore token: refused without a query.
    ['not a Filestore token', 'Bearer abc.def'],
    ['wrong prefix', `Bearer xyz_${'A'.repeat(43)}`],
  ];
  for (const [what, header] of cases) {
    test(what, async () => {
      const err = await authenticate(noDb, header, { cache: null }).then(
        () => null,
        (e: { code?: string; message: string }) => e,
      );
      expect(err?.code).toBe('UNAUTHORIZED');
      expect(err?.message).not.toContain(secret);
      expect(err?.message).not.toContain('aaaa');
    });
  }
});

describe('TokenCache', () => {
  test('keeps a lookup for its ttl, then forgets it', () => {
    let now = 1000;
    const cache = new TokenCache(TOKEN_CACHE_TTL_MS, 10, () => now);
    cache.set('h1', rw);
    now += TOKEN_CACHE_TTL_MS - 1;
    expect(cache.get('h1')).toBe(rw);
    now += 1;
    expect(cache.get('h1')).toBeUndefined();
  });

  test('forgetToken drops a token at once; ttl 0 caches nothing', () => {
    const cache = new TokenCache();
    cache.set('h1', rw);
    cache.set('h2', ro);
    cache.forgetToken(rw.tokenId);
    expect(cache.get('h1')).toBeUndefined();
    expect(cache.get('h2')).toBe(ro);
    const none = new TokenCache(0);
    none.set('h1', rw);
    expect(none.get('h1')).toBeUndefined();
  });

  test('bounded: the oldest entry goes first', () => {
    const cache = new TokenCache(TOKEN_CACHE_TTL_MS, 2);
    cache.set('h1', admin);
    cache.set('h2', rw);
    cache.set('h3', ro);
    expect(cache.get('h1')).toBeUndefined();
    expect(cache.get('h2')).toBe(rw);
    expect(cache.get('h3')).toBe(ro);
  });

  test('a ttl longer than the documented revocation delay is refused', () => {
    expect(() => new TokenCache(TOKEN_CACHE_TTL_MS + 1)).toThrow(RangeError);
  });
});
