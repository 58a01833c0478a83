/**
 * API tokens against a real Postgres (a fresh migrated database): create, list, revoke and find;
 * only the hash is stored; revoked tokens authenticate nothing (at once without a cache, within the
 * cache's lifetime with one); scope rules refuse with their codes and write nothing.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { dropDatabase, openCatalog, runMigrations, type Catalog } from '../../db/client';
import { authenticate, authorize, TOKEN_CACHE_TTL_MS, TokenCache } from '../../src/api/auth';
import { addLocalMount } from '../../src/catalog/mounts';
import { createToken, findActiveToken, listTokens, revokeToken, type CreateTokenInput } from '../../src/catalog/tokens';
import { testDatabaseUrl } from '../helpers/stack';

const url = testDatabaseUrl(`filestore_tokens_${process.pid}`);
let catalog: Catalog;
let tmp: string;

beforeAll(async () => {
  await runMigrations(url);
  catalog = openCatalog(url, { max: 2 });
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'filestore-tokens-'));
  await addLocalMount(catalog.db, { id: 'docs', rootPath: path.join(tmp, 'docs'), createRoot: true });
});
afterAll(async () => {
  await catalog?.close();
  await dropDatabase(url);
  await fs.rm(tmp, { recursive: true, force: true });
});

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: { code?: string }) => e.code,
  );
const tokenCount = async () => Number((await catalog.pool.query('SELECT count(*) AS n FROM api_tokens')).rows[0].n);

test('an admin token: fst_ + 43 base64url chars, a tok_ id, and only its sha256 in the catalog', async () => {
  const { token, row } = await createToken(catalog.db, { admin: true, name: 'ops' });
  expect(token).toMatch(/^fst_[A-Za-z0-9_-]{43}$/);
  expect(Buffer.from(token.slice(4), 'base64url')).toHaveLength(32);
  expect(row).toMatchObject({ id: expect.stringMatching(/^tok_[0-9a-f]{12}$/), admin: true, mountId: null, readOnly: false, name: 'ops', revokedAt: null });
  expect(row).not.toHaveProperty('tokenSha256');

  const raw = await catalog.pool.query('SELECT row_to_json(t)::text AS json, token_sha256 FROM api_tokens t WHERE id = $1', [row.id]);
  expect(raw.rows[0].token_sha256).toBe(sha256(token));
  // Neither the token nor its random part appears anywhere in the stored row.
  expect(raw.rows[0].json).not.toContain(token);
  expect(raw.rows[0].json).not.toContain(token.slice(4));
  expect(raw.rows[0].json).not.toContain(Buffer.from(token.slice(4), 'base64url').toString('hex'));

  const again = await createToken(catalog.db, { admin: true });
  expect(again.token).not.toBe(token);
  expect(again.row.id).not.toBe(row.id);
});

test('mount tokens: read-write and read-only, found by the token and authorised by scope', async () => {
  const rw = await createToken(catalog.db, { mountId: 'docs' });
  const ro = await createToken(catalog.db, { mountId: 'docs', readOnly: true });
  expect(rw.row).toMatchObject({ admin: false, mountId: 'docs', readOnly: false });
  expect(ro.row).toMatchObject({ admin: false, mountId: 'docs', readOnly: true });

  expect(await findActiveToken(catalog.db, rw.token)).toEqual(rw.row);
  const principal = await authenticate(catalog.db, `Bearer ${ro.token}`, { cache: null });
  expect(principal).toEqual({ tokenId: ro.row.id, admin: false, mountId: 'docs', readOnly: true });
  expect(() => authorize(principal, { mountId: 'docs', write: false })).not.toThrow();
  expect(() => authorize(principal, { mountId: 'docs', write: true })).toThrow(expect.objectContaining({ code: 'FORBIDDEN' }));
  // The scheme is case-insensitive (RFC 6750).
  expect((await authenticate(catalog.db, `bearer ${rw.token}`, { cache: null })).tokenId).toBe(rw.row.id);
});

test('unknown and altered tokens are not found, and the refusal does not repeat them', async () => {
  const { token } = await createToken(catalog.db, { admin: true });
  const altered = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
  expect(await findActiveToken(catalog.db, altered)).toBeNull();
  expect(await findActiveToken(catalog.db, 'fst_' + 'x'.repeat(43))).toBeNull();
  expect(await findActiveToken(catalog.db, sha256(token))).toBeNull();
  const err = await authenticate(catalog.db, `Bearer ${altered}`, { cache: null }).catch((e: Error & { code: string }) => e);
  expect(err).toMatchObject({ code: 'UNAUTHORIZED' });
  expect((err as Error).message).not.toContain(altered);
  expect(JSON.stringify(err)).not.toContain(altered);
});

test('listTokens: every token, revoked ones too, never a hash', async () => {
  const { row } = await createToken(catalog.db, { mountId: 'docs', name: 'listed' });
  await revokeToken(catalog.db, row.id);
  const rows = await listTokens(catalog.db);
  expect(rows.length).toBe(await tokenCount());
  expect(rows.find((r) => r.id === row.id)).toMatchObject({ name: 'listed', revokedAt: expect.any(Date) });
  for (const r of rows) expect(r).not.toHaveProperty('tokenSha256');
  const hashes = (await catalog.pool.query('SELECT token_sha256 FROM api_tokens')).rows.map((r) => r.token_sha256 as string);
  const listed = JSON.stringify(rows);
  for (const h of hashes) expect(listed).not.toContain(h);
});

test('revokeToken: the token stops authenticating; revoking again changes nothing; unknown id is NOT_FOUND', async () => {
  const { token, row } = await createToken(catalog.db, { mountId: 'docs' });
  const revoked = await revokeToken(catalog.db, row.id);
  expect(revoked.revokedAt).toBeInstanceOf(Date);
  expect(await findActiveToken(catalog.db, token)).toBeNull();
  expect(await codeOf(authenticate(catalog.db, `Bearer ${token}`, { cache: null }))).toBe('UNAUTHORIZED');

  const again = await revokeToken(catalog.db, row.id);
  expect(again.revokedAt).toEqual(revoked.revokedAt);
  expect(await codeOf(revokeToken(catalog.db, 'tok_000000000000'))).toBe('NOT_FOUND');
});

test('a cached lookup lasts at most the cache ttl; forgetToken ends it at once', async () => {
  let now = 1_000_000;
  const cache = new TokenCache(TOKEN_CACHE_TTL_MS, 100, () => now);
  const a = await createToken(catalog.db, { admin: true });
  const b = await createToken(catalog.db, { admin: true });
  for (const t of [a, b]) expect((await authenticate(catalog.db, `Bearer ${t.token}`, { cache })).tokenId).toBe(t.row.id);
  await revokeToken(catalog.db, a.row.id);
  await revokeToken(catalog.db, b.row.id);
  // Within the ttl the cached principal still answers (the documented revocation delay) ...
  now += TOKEN_CACHE_TTL_MS - 1;
  expect((await authenticate(catalog.db, `Bearer ${a.token}`, { cache })).tokenId).toBe(a.row.id);
  // ... and not a moment longer; forgetToken (revoked in this process) ends it at once.
  cache.forgetToken(b.row.id);
  expect(await codeOf(authenticate(catalog.db, `Bearer ${b.token}`, { cache }))).toBe('UNAUTHORIZED');
  now += 1;
  expect(await codeOf(authenticate(catalog.db, `Bearer ${a.token}`, { cache }))).toBe('UNAUTHORIZED');
});

describe('scope validation refuses with a code and writes nothing', () => {
  const cases: Array<[string, CreateTokenInput, string]> = [
    ['neither admin nor mount', {}, 'INVALID_REQUEST'],
    ['admin false and no mount', { admin: false }, 'INVALID_REQUEST'],
    ['both admin and mount', { admin: true, mountId: 'docs' }, 'INVALID_REQUEST'],
    ['read-only admin', { admin: true, readOnly: true }, 'INVALID_REQUEST'],
    ['read-only without a mount', { readOnly: true }, 'INVALID_REQUEST'],
    ['unknown mount', { mountId: 'nope' }, 'UNKNOWN_MOUNT'],
    ['empty name', { admin: true, name: '  ' }, 'INVALID_REQUEST'],
    ['name with a control character', { admin: true, name: 'a\u001b[2Kb' }, 'INVALID_REQUEST'],
    ['overlong name', { admin: true, name: 'n'.repeat(201) }, 'INVALID_REQUEST'],
  ];
  for (const [what, input, code] of cases) {
    test(what, async () => {
      const before = await tokenCount();
      expect(await codeOf(createToken(catalog.db, input))).toBe(code);
      expect(await tokenCount()).toBe(before);
    });
  }
});
