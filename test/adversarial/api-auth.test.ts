/**
 * The auth matrix of the HTTP API over real sockets: no token, malformed headers, unknown and
 * revoked tokens (401 UNAUTHORIZED) on every /v1 route; a read-only token on every mutating route,
 * a token of another mount on every route, a mount token on the admin routes (403 FORBIDDEN). Every
 * refusal is a problem+json with its code and leaves nothing behind: no byte in either mount, no
 * journal entry, no upload file, no change to the mount table. The public routes answer without a
 * token, and no token ever reaches the server's log.
 */
import path from 'node:path';
import pino from 'pino';
import { startApi, type RunningApi } from '../../src/api/api-process';
import { listMounts } from '../../src/catalog/mounts';
import { createToken, hashToken, revokeToken } from '../../src/catalog/tokens';
import { createApiTestStack, type ApiTestStack } from '../helpers/api';
import { expectProblem, rawHttp, settledSideEffects, sideEffectsOf, type RawAnswer, type SideEffects } from './fixtures/api-checks';

jest.setTimeout(180_000);

const logLines: string[] = [];
const logger = pino({ level: 'trace' }, { write: (s: string) => void logLines.push(s) });

let t: ApiTestStack;
/** The API under test: same stack, logging at trace level into `logLines`. */
let api: RunningApi;
let roots: Record<string, string>;
const tok = { admin: '', alphaRW: '', alphaRO: '', betaRW: '', revokedUsed: '', revokedFresh: '' };
let alphaRunId = '';
let alphaJournalId = '';

/** One request with `token` (null: no Authorization header; a string starting 'RAW:' is sent as the whole header). */
function call(method: string, p: string, token: string | null, body?: unknown): Promise<RawAnswer> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = token.startsWith('RAW:') ? token.slice(4) : `Bearer ${token}`;
  let payload: string | undefined;
  if (method === 'PUT') {
    payload = 'should never be stored';
    headers['content-type'] = 'application/octet-stream';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['content-type'] = 'application/json';
  }
  if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
  return rawHttp(api.url, { method, path: p, headers, body: payload });
}

interface Route {
  name: string;
  method: string;
  path: () => string;
  body?: () => unknown;
}

/** Every route under /v1, aimed at mount alpha. */
const ROUTES: Route[] = [
  { name: 'GET /v1/mounts', method: 'GET', path: () => '/v1/mounts' },
  { name: 'GET /v1/mounts/alpha', method: 'GET', path: () => '/v1/mounts/alpha' },
  { name: 'POST /v1/mounts', method: 'POST', path: () => '/v1/mounts', body: () => ({ kind: 'local', id: 'gamma', rootPath: path.join(t.stack.tmp, 'gamma') }) },
  { name: 'PATCH /v1/mounts/alpha', method: 'PATCH', path: () => '/v1/mounts/alpha', body: () => ({ readOnly: true }) },
  { name: 'PUT files', method: 'PUT', path: () => '/v1/mounts/alpha/files/new.txt' },
  { name: 'GET files', method: 'GET', path: () => '/v1/mounts/alpha/files/seed.txt' },
  { name: 'HEAD files', method: 'HEAD', path: () => '/v1/mounts/alpha/files/seed.txt' },
  { name: 'DELETE files', method: 'DELETE', path: () => '/v1/mounts/alpha/files/seed.txt' },
  { name: 'GET nodes/seed.txt', method: 'GET', path: () => '/v1/mounts/alpha/nodes/seed.txt' },
  { name: 'GET nodes/ (root)', method: 'GET', path: () => '/v1/mounts/alpha/nodes/' },
  { name: 'GET list/dir', method: 'GET', path: () => '/v1/mounts/alpha/list/dir' },
  { name: 'GET list (root)', method: 'GET', path: () => '/v1/mounts/alpha/list' },
  { name: 'POST mkdir', method: 'POST', path: () => '/v1/mounts/alpha/mkdir', body: () => ({ path: 'made' }) },
  { name: 'POST copy', method: 'POST', path: () => '/v1/mounts/alpha/copy', body: () => ({ from: 'seed.txt', to: 'copied.txt' }) },
  { name: 'POST move', method: 'POST', path: () => '/v1/mounts/alpha/move', body: () => ({ from: 'seed.txt', to: 'moved.txt' }) },
  { name: 'POST delete', method: 'POST', path: () => '/v1/mounts/alpha/delete', body: () => ({ path: 'seed.txt' }) },
  { name: 'POST reconcile', method: 'POST', path: () => '/v1/mounts/alpha/reconcile', body: () => ({ path: 'seed.txt' }) },
  { name: 'GET /v1/runs/{alpha run}', method: 'GET', path: () => `/v1/runs/${encodeURIComponent(alphaRunId)}` },
  { name: 'GET /v1/journal', method: 'GET', path: () => '/v1/journal' },
  { name: 'GET /v1/journal/{alpha entry}', method: 'GET', path: () => `/v1/journal/${alphaJournalId}` },
  { name: 'GET /v1/drift', method: 'GET', path: () => '/v1/drift' },
];
const MUTATING = new Set(['POST /v1/mounts', 'PATCH /v1/mounts/alpha', 'PUT files', 'DELETE files', 'POST mkdir', 'POST copy', 'POST move', 'POST delete', 'POST reconcile']);
const route = (name: string) => ROUTES.find((r) => r.name === name)!;

/** What a refused request must not change: trees, journal, upload area, and the mount table. */
async function stateNow(): Promise<SideEffects & { mounts: string }> {
  return { ...(await sideEffectsOf(t.stack, roots)), mounts: JSON.stringify(await listMounts(t.stack.client.db)) };
}

async function expectRefused(send: () => Promise<RawAnswer>, status: number, code: string, method: string): Promise<void> {
  const before = await stateNow();
  const a = await send();
  if (method === 'HEAD') {
    expect(a.status).toBe(status);
    expect(a.headers['content-type']).toContain('application/problem+json');
  } else {
    expectProblem(a, status, code);
  }
  if (status === 401) expect(a.headers['www-authenticate']).toMatch(/^Bearer\b/);
  const { mounts, ...effects } = before;
  const after = { ...(await settledSideEffects(t.stack, roots, effects, 1_000)), mounts: JSON.stringify(await listMounts(t.stack.client.db)) };
  expect(after.mounts).toBe(mounts);
  expect(after).toEqual(before);
  expect(after.pending).toBe(0);
  expect(after.uploads).toEqual([]);
}

beforeAll(async () => {
  t = await createApiTestStack();
  roots = { alpha: await t.stack.addMount('alpha'), beta: await t.stack.addMount('beta') };
  api = await startApi(t.stack.config, { client: t.stack.client, logger });
  tok.admin = t.adminToken;
  tok.alphaRW = await t.mountToken('alpha');
  tok.alphaRO = await t.mountToken('alpha', true);
  tok.betaRW = await t.mountToken('beta');
  const seed = await call('PUT', '/v1/mounts/alpha/files/seed.txt', tok.admin);
  expect(seed.status).toBe(200);
  alphaRunId = decodeURIComponent(seed.headers.location!.replace('/v1/runs/', ''));
  expect((await call('PUT', '/v1/mounts/beta/files/seed.txt', tok.admin)).status).toBe(200);
  expect((await call('POST', '/v1/mounts/alpha/mkdir', tok.admin, { path: 'dir' })).status).toBe(200);
  alphaJournalId = (await t.stack.client.listJournal({ mountId: 'alpha' }))[0]!.id;
});
afterAll(async () => {
  await api?.close();
  await t?.teardown();
});

describe('public routes answer without a token', () => {
  it.each(['/healthz', '/readyz', '/metrics', '/openapi.json'])('%s', async (p) => {
    expect((await call('GET', p, null)).status).toBe(200);
    expect((await call('GET', p, 'RAW:Basic Zm9vOmJhcg==')).status).toBe(200);
  });
});

describe('401 UNAUTHORIZED', () => {
  const bad = `fst_${'A'.repeat(43)}`;
  const kinds: [string, () => string | null][] = [
    ['no Authorization header', () => null],
    ['an empty Authorization header', () => 'RAW:'],
    ['Basic credentials', () => 'RAW:Basic Zm9vOmJhcg=='],
    ['"Bearer" without a token', () => 'RAW:Bearer'],
    ['two tokens', () => `RAW:Bearer ${tok.admin} ${tok.admin}`],
    ['the token without the scheme', () => `RAW:${tok.admin}`],
    ['a token with a quote in it', () => `RAW:Bearer "${tok.admin}"`],
    ['a 2000-character token', () => `fst_${'a'.repeat(1996)}`],
    ['an unknown token', () => bad],
    ['the admin token with one character changed', () => tok.admin.slice(0, -1) + (tok.admin.endsWith('A') ? 'B' : 'A')],
    ['a revoked token (cached before revocation)', () => tok.revokedUsed],
    ['a revoked token (never used)', () => tok.revokedFresh],
  ];

  beforeAll(async () => {
    const used = await createToken(t.stack.client.db, { mountId: 'alpha', readOnly: false, name: 'to-revoke-used' });
    const fresh = await createToken(t.stack.client.db, { admin: true, name: 'to-revoke-fresh' });
    tok.revokedUsed = used.token;
    tok.revokedFresh = fresh.token;
    // Cached as valid by the API under test before it is revoked.
    expect((await call('GET', '/v1/mounts/alpha', used.token)).status).toBe(200);
    await revokeToken(t.stack.client.db, fresh.row.id);
    await revokeToken(t.stack.client.db, used.row.id);
    const revokedAt = Date.now();
    // The API trusts a lookup for at most 5 s: the revoked token must be refused within 6 s.
    let status = 200;
    while (Date.now() - revokedAt < 6_000) {
      status = (await call('GET', '/v1/mounts/alpha', used.token)).status;
      if (status === 401) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(401);
  });

  it('a revoked token that was never cached is refused at once', async () => {
    expect((await call('GET', '/v1/mounts', tok.revokedFresh)).status).toBe(401);
  });

  const cases = kinds.flatMap(([kind, token]) => ROUTES.map((r) => [kind, r.name, token, r] as const));
  it.each(cases)('%s on %s', async (_kind, _name, token, r) => {
    await expectRefused(() => call(r.method, r.path(), token(), r.body?.()), 401, 'UNAUTHORIZED', r.method);
  });
});

describe('403 FORBIDDEN: a read-only token on every mutating route', () => {
  const cases = ROUTES.filter((r) => MUTATING.has(r.name)).map((r) => [r.name, r] as const);
  it.each(cases)('%s', async (_name, r) => {
    await expectRefused(() => call(r.method, r.path(), tok.alphaRO, r.body?.()), 403, 'FORBIDDEN', r.method);
  });

  it('copy from its mount into another mount', async () => {
    await expectRefused(() => call('POST', '/v1/mounts/alpha/copy', tok.alphaRO, { from: 'seed.txt', to: 'x.txt', targetMount: 'beta' }), 403, 'FORBIDDEN', 'POST');
  });

  // The mount root's node is checked on its own below (404: the root has no node).
  it.each(ROUTES.filter((r) => !MUTATING.has(r.name) && r.name !== 'GET nodes/ (root)').map((r) => [r.name, r] as const))('but it may read: %s', async (_name, r) => {
    expect((await call(r.method, r.path(), tok.alphaRO)).status).toBe(200);
  });
});

it('GET /v1/mounts/{mount}/nodes/ is 404 NOT_FOUND for a reader of the mount (docs/api.md: the root has no node), 403 for another', async () => {
  const a = await call('GET', '/v1/mounts/alpha/nodes/', tok.alphaRO);
  expect(a.status).toBe(404);
  expect((JSON.parse(String(a.body)) as { code: string }).code).toBe('NOT_FOUND');
  expect((await call('GET', '/v1/mounts/alpha/nodes/', tok.betaRW)).status).toBe(403);
});

describe('a token of another mount on every route', () => {
  // A scoped token learns nothing of another mount's journal entries, not even that they exist (404).
  const expected: Record<string, [number, string]> = { 'GET /v1/journal/{alpha entry}': [404, 'NOT_FOUND'] };
  const scoped = ROUTES.filter((r) => !['GET /v1/mounts', 'GET /v1/journal', 'GET /v1/drift'].includes(r.name));
  it.each(scoped.map((r) => [r.name, r] as const))('%s', async (name, r) => {
    const [status, code] = expected[name] ?? [403, 'FORBIDDEN'];
    await expectRefused(() => call(r.method, r.path(), tok.betaRW, r.body?.()), status, code, r.method);
  });

  it.each([
    ['GET /v1/journal?mount=alpha', '/v1/journal?mount=alpha'],
    ['GET /v1/drift?mount=alpha', '/v1/drift?mount=alpha'],
  ])('%s', async (_n, p) => {
    await expectRefused(() => call('GET', p, tok.betaRW), 403, 'FORBIDDEN', 'GET');
  });

  it.each([
    ['copy alpha → beta (no read on the source)', '/v1/mounts/alpha/copy', { from: 'seed.txt', to: 'stolen.txt', targetMount: 'beta' }],
    ['move alpha → beta', '/v1/mounts/alpha/move', { from: 'seed.txt', to: 'stolen.txt', targetMount: 'beta' }],
    ['copy beta → alpha (no write on the target)', '/v1/mounts/beta/copy', { from: 'seed.txt', to: 'planted.txt', targetMount: 'alpha' }],
    ['move beta → alpha', '/v1/mounts/beta/move', { from: 'seed.txt', to: 'planted.txt', targetMount: 'alpha' }],
  ])('%s', async (_n, p, body) => {
    await expectRefused(() => call('POST', p, tok.betaRW, body), 403, 'FORBIDDEN', 'POST');
  });

  it('sees only its own mount, journal and drift in the listings', async () => {
    const mounts = JSON.parse((await call('GET', '/v1/mounts', tok.betaRW)).body) as { mounts: { id: string }[] };
    expect(mounts.mounts.map((m) => m.id)).toEqual(['beta']);
    const journal = JSON.parse((await call('GET', '/v1/journal', tok.betaRW)).body) as { entries: { mountId: string }[] };
    expect(journal.entries.length).toBeGreaterThan(0);
    expect(journal.entries.every((e) => e.mountId === 'beta')).toBe(true);
    expect((await call('GET', '/v1/drift', tok.betaRW)).status).toBe(200);
  });
});

describe('a mount token on the admin routes', () => {
  it.each([
    ['read-write', () => tok.alphaRW],
    ['read-only', () => tok.alphaRO],
  ])('%s: POST /v1/mounts and PATCH of its own mount → 403', async (_n, token) => {
    for (const r of [route('POST /v1/mounts'), route('PATCH /v1/mounts/alpha')]) {
      await expectRefused(() => call(r.method, r.path(), token(), r.body?.()), 403, 'FORBIDDEN', r.method);
    }
  });
});

describe('the log', () => {
  it('never holds a token, nor its hash', async () => {
    // One successful mutation with each writable token, so the log has seen them at work.
    expect((await call('PUT', '/v1/mounts/alpha/files/logged.txt', tok.alphaRW)).status).toBe(200);
    expect((await call('POST', '/v1/mounts/beta/mkdir', tok.betaRW, { path: 'logged' })).status).toBe(200);
    const log = logLines.join('');
    expect(log).toContain('incoming request');
    for (const [name, token] of Object.entries(tok)) {
      expect({ name, inLog: log.includes(token) }).toEqual({ name, inLog: false });
      expect({ name, hashInLog: log.includes(hashToken(token)) }).toEqual({ name, hashInLog: false });
      expect({ name, secretInLog: log.includes(token.slice(4, 24)) }).toEqual({ name, secretInLog: false });
    }
    expect(log).not.toMatch(/authorization/i);
  });
});
