/**
 * Bad input through real HTTP: every request here must be refused with its documented 4xx, as
 * `application/problem+json` carrying the stable `code` — and leave nothing behind: no byte in the
 * mount, no new (let alone PENDING) journal entry, nothing in the upload area. Paths go out through
 * node:http (fetch would normalise `..` and `%2e%2e` away) and the malformed requests through raw
 * sockets.
 */
import http from 'node:http';
import { createApiTestStack, type ApiTestStack } from '../helpers/api';
import {
  expectProblem,
  httpMessage,
  rawHttp,
  rawSocket,
  settledSideEffects,
  sideEffectsOf,
  uploadAreaOf,
  type RawAnswer,
} from './fixtures/api-checks';

jest.setTimeout(180_000);

let t: ApiTestStack;
let roots: Record<string, string>;
let auth: string;

beforeAll(async () => {
  t = await createApiTestStack();
  roots = { docs: await t.stack.addMount('docs'), ro: await t.stack.addMount('ro', { readOnly: true }) };
  auth = `Bearer ${t.adminToken}`;
  const put = await t.call('/v1/mounts/docs/files/seed.txt', { method: 'PUT', body: '0123456789', headers: { 'content-type': 'application/octet-stream' } });
  expect(put.status).toBe(200);
  expect((await t.call('/v1/mounts/docs/mkdir', { method: 'POST', body: JSON.stringify({ path: 'sub' }), headers: { 'content-type': 'application/json' } })).status).toBe(200);
});
afterAll(() => t?.teardown());

/** PUT of `body` to a raw (already encoded) file path of mount `mount`. */
function put(rawPath: string, body: string | Buffer = 'x', headers: Record<string, string> = {}, mount = 'docs'): Promise<RawAnswer> {
  return rawHttp(t.url, {
    method: 'PUT',
    path: `/v1/mounts/${mount}/files/${rawPath}`,
    headers: { authorization: auth, 'content-type': 'application/octet-stream', 'content-length': String(Buffer.byteLength(body)), ...headers },
    body,
  });
}

function req(method: string, rawPath: string, headers: Record<string, string> = {}): Promise<RawAnswer> {
  return rawHttp(t.url, { method, path: rawPath, headers: { authorization: auth, ...headers } });
}

/** A JSON route with `body` as is (a string) or serialised. */
function json(method: string, rawPath: string, body: unknown, headers: Record<string, string> = {}): Promise<RawAnswer> {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return rawHttp(t.url, {
    method,
    path: rawPath,
    headers: { authorization: auth, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers },
    body: text,
  });
}

const long = (n: number, unit = 'a') => unit.repeat(n);
/** A path of `bytes` bytes made of 200-byte segments. */
const longPath = (bytes: number) => {
  const segs: string[] = [];
  let len = 0;
  while (len < bytes) {
    const s = 'p'.repeat(Math.min(200, bytes - len));
    segs.push(s);
    len += s.length + 1;
  }
  return segs.join('/');
};

/** [what is sent, how, the documented status, the documented code(s)]. */
type Case = [name: string, send: () => Promise<RawAnswer | null>, status: number, code: string | string[]];

const pathCases: Case[] = [
  ['PUT %2e%2e/escape', () => put('%2e%2e/escape.txt'), 400, 'PATH_TRAVERSAL'],
  ['PUT %2E%2E/escape', () => put('%2E%2E/escape.txt'), 400, 'PATH_TRAVERSAL'],
  ['PUT a/..%2f..%2fescape', () => put('a/..%2f..%2fescape.txt'), 400, 'PATH_TRAVERSAL'],
  ['PUT a/%2e%2e%2f%2e%2e%2fescape', () => put('a/%2e%2e%2f%2e%2e%2fescape.txt'), 400, 'PATH_TRAVERSAL'],
  ['PUT a/../../escape (raw dots)', () => put('a/../../escape.txt'), 400, 'PATH_TRAVERSAL'],
  ['PUT .%2e/escape (mixed)', () => put('.%2e/escape.txt'), 400, 'PATH_TRAVERSAL'],
  ['PUT ok%00.txt', () => put('ok%00.txt'), 400, 'NUL_BYTE'],
  ['PUT a/%00/b', () => put('a/%00/b'), 400, 'NUL_BYTE'],
  ['PUT %2fetc%2fpasswd', () => put('%2fetc%2fpasswd'), 400, 'ABSOLUTE_PATH'],
  ['PUT //etc/passwd (double slash)', () => put('/etc/passwd'), 400, 'ABSOLUTE_PATH'],
  ['PUT %5cwindows (encoded leading backslash)', () => put('%5cwindows%5csystem32'), 400, 'ABSOLUTE_PATH'],
  ['PUT \\evil (raw leading backslash)', () => put('\\evil'), 400, 'ABSOLUTE_PATH'],
  ['PUT C:%5cwin (drive letter)', () => put('C:%5cwin'), 400, 'ABSOLUTE_PATH'],
  ['PUT path > 4096 bytes', () => put(longPath(4097)), 400, 'INVALID_PATH'],
  ['PUT path > 4096 bytes, every byte %-encoded', () => put(longPath(4097).replace(/p/g, '%70')), 400, 'INVALID_PATH'],
  ['PUT encoded path longer than the router takes (4400 × %70)', () => put(`d/${long(4400, '%70')}`), 400, 'INVALID_PATH'],
  ['PUT segment of 256 bytes', () => put(`d/${long(256)}`), 400, 'INVALID_PATH'],
  ['PUT segment of 256 UTF-8 bytes (128 × é)', () => put(`d/${long(128, '%C3%A9')}`), 400, 'INVALID_PATH'],
  ['PUT .filestore-staging/x', () => put('.filestore-staging/x'), 400, 'RESERVED_PATH'],
  ['PUT %2efilestore-staging/x', () => put('%2efilestore-staging/x'), 400, 'RESERVED_PATH'],
  ['PUT ./.filestore-staging/x', () => put('./.filestore-staging/x'), 400, 'RESERVED_PATH'],
  ['PUT .filestore-mount.json', () => put('.filestore-mount.json'), 400, 'RESERVED_PATH'],
  ['PUT the mount root', () => put(''), 400, 'INVALID_PATH'],
  ['PUT %zz (invalid percent-encoding)', () => put('bad%zzname'), 400, ['INVALID_REQUEST', 'INVALID_PATH']],
  ['PUT %C3 (a lone UTF-8 lead byte)', () => put('bad%C3name'), 400, ['INVALID_REQUEST', 'INVALID_PATH']],
  ['GET through an encoded slash in the mount id', () => req('GET', '/v1/mounts/docs%2f..%2fro/files/x'), 400, 'INVALID_REQUEST'],
  ['GET files/%2e%2e/x', () => req('GET', '/v1/mounts/docs/files/%2e%2e/x'), 400, 'PATH_TRAVERSAL'],
  ['GET files/%2fetc%2fpasswd', () => req('GET', '/v1/mounts/docs/files/%2fetc%2fpasswd'), 400, 'ABSOLUTE_PATH'],
  ['GET nodes/%2e%2e', () => req('GET', '/v1/mounts/docs/nodes/%2e%2e'), 400, 'PATH_TRAVERSAL'],
  ['GET list/x%00', () => req('GET', '/v1/mounts/docs/list/x%00'), 400, 'NUL_BYTE'],
  ['DELETE files/%2e%2e/seed.txt', () => req('DELETE', '/v1/mounts/docs/files/%2e%2e/docs/seed.txt'), 400, 'PATH_TRAVERSAL'],
  ['DELETE files/.filestore-staging', () => req('DELETE', '/v1/mounts/docs/files/.filestore-staging?recursive=true'), 400, 'RESERVED_PATH'],
  ['mkdir ../x', () => json('POST', '/v1/mounts/docs/mkdir', { path: '../x' }), 400, 'PATH_TRAVERSAL'],
  ['mkdir /etc/x', () => json('POST', '/v1/mounts/docs/mkdir', { path: '/etc/x' }), 400, 'ABSOLUTE_PATH'],
  ['mkdir a\\0b', () => json('POST', '/v1/mounts/docs/mkdir', { path: 'a\u0000b' }), 400, 'NUL_BYTE'],
  ['copy from ../../etc/passwd', () => json('POST', '/v1/mounts/docs/copy', { from: '../../etc/passwd', to: 'stolen' }), 400, 'PATH_TRAVERSAL'],
  ['move to .filestore-staging/x', () => json('POST', '/v1/mounts/docs/move', { from: 'seed.txt', to: '.filestore-staging/x' }), 400, 'RESERVED_PATH'],
  ['delete the mount root', () => json('POST', '/v1/mounts/docs/delete', { path: '', recursive: true }), 400, 'INVALID_PATH'],
  ['reconcile ../..', () => json('POST', '/v1/mounts/docs/reconcile', { path: '../..' }), 400, 'PATH_TRAVERSAL'],
];

const bodyCases: Case[] = [
  ['mkdir truncated JSON', () => json('POST', '/v1/mounts/docs/mkdir', '{"path":'), 400, 'INVALID_REQUEST'],
  ['mkdir JSON null', () => json('POST', '/v1/mounts/docs/mkdir', 'null'), 400, 'INVALID_REQUEST'],
  ['mkdir JSON array', () => json('POST', '/v1/mounts/docs/mkdir', '[]'), 400, 'INVALID_REQUEST'],
  ['mkdir JSON string', () => json('POST', '/v1/mounts/docs/mkdir', '"newdir"'), 400, 'INVALID_REQUEST'],
  ['mkdir empty JSON body', () => json('POST', '/v1/mounts/docs/mkdir', ''), 400, 'INVALID_REQUEST'],
  ['mkdir {} (no path)', () => json('POST', '/v1/mounts/docs/mkdir', {}), 400, 'INVALID_REQUEST'],
  ['mkdir path: 42', () => json('POST', '/v1/mounts/docs/mkdir', { path: 42 }), 400, 'INVALID_REQUEST'],
  ['mkdir parents: "yes"', () => json('POST', '/v1/mounts/docs/mkdir', { path: 'n', parents: 'yes' }), 400, 'INVALID_REQUEST'],
  ['mkdir unknown field', () => json('POST', '/v1/mounts/docs/mkdir', { path: 'n', evil: true }), 400, 'INVALID_REQUEST'],
  ['mkdir __proto__ key', () => json('POST', '/v1/mounts/docs/mkdir', '{"path":"n","__proto__":{"admin":true}}'), 400, 'INVALID_REQUEST'],
  ['mkdir JSON body > 1 MiB', () => json('POST', '/v1/mounts/docs/mkdir', { path: 'n', pad: long(1024 * 1024 + 10) }), 413, 'PAYLOAD_TOO_LARGE'],
  ['copy without to', () => json('POST', '/v1/mounts/docs/copy', { from: 'seed.txt' }), 400, 'INVALID_REQUEST'],
  ['copy targetMount not a mount id', () => json('POST', '/v1/mounts/docs/copy', { from: 'seed.txt', to: 'c', targetMount: 'BAD MOUNT' }), 400, 'INVALID_REQUEST'],
  ['move overwrite: "true"', () => json('POST', '/v1/mounts/docs/move', { from: 'seed.txt', to: 'm', overwrite: 'true' }), 400, 'INVALID_REQUEST'],
  ['delete recursive: "true"', () => json('POST', '/v1/mounts/docs/delete', { path: 'sub', recursive: 'true' }), 400, 'INVALID_REQUEST'],
  ['reconcile force (not a reconcile flag)', () => json('POST', '/v1/mounts/docs/reconcile', { path: 'seed.txt', force: true }), 400, 'INVALID_REQUEST'],
  ['POST /v1/mounts kind: ftp', () => json('POST', '/v1/mounts', { kind: 'ftp', id: 'f' }), 400, 'INVALID_REQUEST'],
  ['POST /v1/mounts empty rootPath', () => json('POST', '/v1/mounts', { kind: 'local', id: 'l', rootPath: '' }), 400, 'INVALID_REQUEST'],
  ['PATCH /v1/mounts/docs readOnly: "no"', () => json('PATCH', '/v1/mounts/docs', { readOnly: 'no' }), 400, 'INVALID_REQUEST'],
  ['mkdir text/plain', () => json('POST', '/v1/mounts/docs/mkdir', { path: 'n' }, { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
  ['mkdir body without a content type', () => rawSocket(t.url, httpMessage('POST', '/v1/mounts/docs/mkdir', { authorization: auth, 'content-length': 12 }, '{"path":"n"}')), 415, 'UNSUPPORTED_MEDIA_TYPE'],
  ['mkdir form-urlencoded', () => json('POST', '/v1/mounts/docs/mkdir', 'path=n', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
  ['copy application/xml', () => json('POST', '/v1/mounts/docs/copy', '<copy/>', { 'content-type': 'application/xml' }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
  ['PUT multipart/form-data', () => put('up.txt', '--b\r\n\r\nx\r\n--b--', { 'content-type': 'multipart/form-data; boundary=b' }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
  ['PUT form-urlencoded', () => put('up.txt', 'a=b', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
  ['PUT without Content-Length or chunked', () => rawSocket(t.url, httpMessage('PUT', '/v1/mounts/docs/files/nolen.txt', { authorization: auth })), 411, 'LENGTH_REQUIRED'],
  ['PUT sha256 that does not match', () => put(`up.txt?sha256=${'0'.repeat(64)}`), 400, 'INVALID_REQUEST'],
  [
    'PUT body larger than declared (Content-Length 5, 50 bytes)',
    () => rawSocket(t.url, httpMessage('PUT', '/v1/mounts/docs/files/surplus.txt', { authorization: auth, 'content-length': 5 }, long(50, 'z'))),
    400,
    ['INVALID_REQUEST', 'INCOMPLETE_BODY'],
  ],
];

const idemKey = (k: string) => ({ 'idempotency-key': k });
const headerCases: Case[] = [
  ['Idempotency-Key of 129 characters', () => put('k.txt', 'x', idemKey(long(129))), 400, 'INVALID_REQUEST'],
  ['Idempotency-Key with a space and a slash', () => put('k.txt', 'x', idemKey('a b/c')), 400, 'INVALID_REQUEST'],
  ['Idempotency-Key empty', () => put('k.txt', 'x', idemKey('')), 400, 'INVALID_REQUEST'],
  ['Idempotency-Key on mkdir with ";"', () => json('POST', '/v1/mounts/docs/mkdir', { path: 'n' }, idemKey('k;drop')), 400, 'INVALID_REQUEST'],
  [
    'two Idempotency-Key headers',
    () => rawSocket(t.url, httpMessage('PUT', '/v1/mounts/docs/files/k2.txt', { authorization: auth, 'content-length': 1, 'Idempotency-Key': 'one' }, 'x').toString().replace('Idempotency-Key: one\r\n', 'Idempotency-Key: one\r\nIdempotency-Key: two\r\n')),
    400,
    'INVALID_REQUEST',
  ],
  ['a 17 KiB header', () => rawSocket(t.url, httpMessage('GET', '/v1/mounts', { authorization: auth, 'x-pad': long(17 * 1024) })), 431, 'HEADERS_TOO_LARGE'],
  [
    '40 headers of 500 bytes',
    () => rawSocket(t.url, httpMessage('GET', '/v1/mounts', { authorization: auth, ...Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`x-pad-${i}`, long(500)])) })),
    431,
    'HEADERS_TOO_LARGE',
  ],
  ['a request line that is not HTTP', () => rawSocket(t.url, 'GARBAGE NONSENSE\r\n\r\n'), 400, 'INVALID_REQUEST'],
  ['a header without a colon', () => rawSocket(t.url, `GET /v1/mounts HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n`), 400, 'INVALID_REQUEST'],
  ['Range longer than 256 characters', () => req('GET', '/v1/mounts/docs/files/seed.txt', { range: `bytes=0-1,${long(300, '1')}` }), 400, 'INVALID_REQUEST'],
  ['Range past the end (416)', () => req('GET', '/v1/mounts/docs/files/seed.txt', { range: 'bytes=100-200' }), 416, 'RANGE_NOT_SATISFIABLE'],
  ['Range bytes=-0 (416)', () => req('GET', '/v1/mounts/docs/files/seed.txt', { range: 'bytes=-0' }), 416, 'RANGE_NOT_SATISFIABLE'],
  ['HEAD with a Range past the end (416)', () => req('HEAD', '/v1/mounts/docs/files/seed.txt', { range: 'bytes=10-' }), 416, 'RANGE_NOT_SATISFIABLE'],
];

const queryCases: Case[] = [
  ['PUT overwrite=maybe', () => put('q.txt?overwrite=maybe'), 400, 'INVALID_REQUEST'],
  ['PUT parents=yes', () => put('q.txt?parents=yes'), 400, 'INVALID_REQUEST'],
  ['PUT mode=999', () => put('q.txt?mode=999'), 400, 'INVALID_REQUEST'],
  ['PUT mode=8', () => put('q.txt?mode=8'), 400, 'INVALID_REQUEST'],
  ['PUT sha256=xyz', () => put('q.txt?sha256=xyz'), 400, 'INVALID_REQUEST'],
  ['PUT unknown query parameter', () => put('q.txt?owner=root'), 400, 'INVALID_REQUEST'],
  ['PUT overwrite twice', () => put('seed.txt?overwrite=true&overwrite=false'), 400, 'INVALID_REQUEST'],
  ['DELETE recursive=maybe', () => req('DELETE', '/v1/mounts/docs/files/sub?recursive=maybe'), 400, 'INVALID_REQUEST'],
  ['list limit=0', () => req('GET', '/v1/mounts/docs/list/?limit=0'), 400, 'INVALID_REQUEST'],
  ['list limit=99999', () => req('GET', '/v1/mounts/docs/list/?limit=99999'), 400, 'INVALID_REQUEST'],
  ['list limit=abc', () => req('GET', '/v1/mounts/docs/list?limit=abc'), 400, 'INVALID_REQUEST'],
  ['list limit=1.5', () => req('GET', '/v1/mounts/docs/list?limit=1.5'), 400, 'INVALID_REQUEST'],
  ['list bad cursor', () => req('GET', '/v1/mounts/docs/list/?cursor=not-a-cursor!!'), 400, 'INVALID_REQUEST'],
  ['list cursor whose path holds a NUL', () => req('GET', `/v1/mounts/docs/list/?cursor=${Buffer.from(JSON.stringify({ d: '', r: false, a: 'a\u0000b' })).toString('base64url')}`), 400, 'INVALID_REQUEST'],
  ['list cursor of another directory', () => req('GET', `/v1/mounts/docs/list/?cursor=${Buffer.from(JSON.stringify({ d: 'sub', r: false, a: 'x' })).toString('base64url')}`), 400, 'INVALID_REQUEST'],
  ['journal entry %00', () => req('GET', '/v1/journal/a%00b'), 400, 'INVALID_REQUEST'],
  ['runs: a workflow id with a NUL (no such run)', () => req('GET', '/v1/runs/filestore:docs:write:a%00b'), 404, 'NOT_FOUND'],
  ['journal bad cursor', () => req('GET', '/v1/journal?cursor=%%%garbage'), 400, 'INVALID_REQUEST'],
  ['journal status=DONE', () => req('GET', '/v1/journal?status=DONE'), 400, 'INVALID_REQUEST'],
  ['journal limit=-1', () => req('GET', '/v1/journal?limit=-1'), 400, 'INVALID_REQUEST'],
  ['drift limit=0', () => req('GET', '/v1/drift?limit=0'), 400, 'INVALID_REQUEST'],
  ['drift bad cursor', () => req('GET', '/v1/drift?cursor=zzz'), 400, 'INVALID_REQUEST'],
  ['runs: not a workflow id', () => req('GET', '/v1/runs/not-a-workflow'), 400, 'INVALID_REQUEST'],
  ['journal id of 300 characters', () => req('GET', `/v1/journal/${long(300)}`), 400, 'INVALID_REQUEST'],
];

const routeCases: Case[] = [
  ['unknown route', () => req('GET', '/v1/nope'), 404, 'ROUTE_NOT_FOUND'],
  ['unknown method on a file', () => req('PATCH', '/v1/mounts/docs/files/seed.txt'), 404, 'ROUTE_NOT_FOUND'],
  ['POST to a file path', () => json('POST', '/v1/mounts/docs/files/seed.txt', {}), 404, 'ROUTE_NOT_FOUND'],
  ['DELETE a mount', () => req('DELETE', '/v1/mounts/docs'), 404, 'ROUTE_NOT_FOUND'],
  ['GET on a POST route', () => req('GET', '/v1/mounts/docs/mkdir'), 404, 'ROUTE_NOT_FOUND'],
  ['unknown mount: PUT', () => put('x.txt', 'x', {}, 'nope'), 404, 'UNKNOWN_MOUNT'],
  ['unknown mount: GET file', () => req('GET', '/v1/mounts/nope/files/x.txt'), 404, 'UNKNOWN_MOUNT'],
  ['unknown mount: mkdir', () => json('POST', '/v1/mounts/nope/mkdir', { path: 'x' }), 404, 'UNKNOWN_MOUNT'],
  ['unknown mount: GET mount', () => req('GET', '/v1/mounts/nope'), 404, 'UNKNOWN_MOUNT'],
  ['copy to an unknown target mount', () => json('POST', '/v1/mounts/docs/copy', { from: 'seed.txt', to: 'x', targetMount: 'nope' }), 404, 'UNKNOWN_MOUNT'],
  ['mount id not a mount id', () => req('GET', '/v1/mounts/UPPER%20CASE/files/x'), 400, 'INVALID_REQUEST'],
  ['read-only mount: PUT', () => put('x.txt', 'x', {}, 'ro'), 403, 'READ_ONLY_MOUNT'],
  ['read-only mount: mkdir', () => json('POST', '/v1/mounts/ro/mkdir', { path: 'x' }), 403, 'READ_ONLY_MOUNT'],
  ['read-only mount: DELETE file', () => req('DELETE', '/v1/mounts/ro/files/x'), 403, 'READ_ONLY_MOUNT'],
  ['read-only mount: copy into it', () => json('POST', '/v1/mounts/docs/copy', { from: 'seed.txt', to: 'x', targetMount: 'ro' }), 403, 'READ_ONLY_MOUNT'],
];

describe.each([
  ['paths', pathCases],
  ['bodies and content types', bodyCases],
  ['headers', headerCases],
  ['query strings', queryCases],
  ['routes and mounts', routeCases],
])('%s', (_group, cases) => {
  it.each(cases.map(([name, send, status, code]) => [name, status, String(code), send, code] as const))('%s → %i %s', async (name, status, _c, send, code) => {
    const before = await sideEffectsOf(t.stack, roots);
    const answer = await send();
    if (name.startsWith('HEAD ')) {
      // A HEAD answer has no body: the status and the problem content type are all there is.
      expect(answer?.status).toBe(status);
      expect(answer?.headers['content-type']).toContain('application/problem+json');
    } else {
      expectProblem(answer, status, code);
    }
    expect(await settledSideEffects(t.stack, roots, before)).toEqual(before);
    expect(before.pending).toBe(0);
    expect(before.uploads).toEqual([]);
  });
});

describe('bodies that break off', () => {
  it('a body that stops after 10 of 1000 declared bytes (half-closed): 400 INCOMPLETE_BODY (docs/api.md), nothing stored', async () => {
    const before = await sideEffectsOf(t.stack, roots);
    const a = await rawSocket(t.url, httpMessage('PUT', '/v1/mounts/docs/files/trunc.txt', { authorization: auth, 'content-length': 1000 }, long(10, 't')), { end: true, timeoutMs: 5_000 });
    expect(await settledSideEffects(t.stack, roots, before, 5_000)).toEqual(before);
    expectProblem(a, 400, 'INCOMPLETE_BODY');
  });

  it('a body that stops after 10 of 1000 declared bytes and the socket is destroyed: nothing stored', async () => {
    const before = await sideEffectsOf(t.stack, roots);
    const a = await rawSocket(t.url, httpMessage('PUT', '/v1/mounts/docs/files/trunc2.txt', { authorization: auth, 'content-length': 1000 }, long(10, 't')), { timeoutMs: 500 });
    expect(a).toBeNull();
    expect(await settledSideEffects(t.stack, roots, before, 5_000)).toEqual(before);
  });

  it('20 clients that send 10 of 1000 declared bytes and vanish at once: nothing stored, no part file left behind', async () => {
    // The connection is gone before the handler has looked up the mount: the upload must notice
    // that, not wait forever on a body that will never end (a part file and a descriptor per client).
    const before = await sideEffectsOf(t.stack, roots);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        rawSocket(t.url, httpMessage('PUT', `/v1/mounts/docs/files/vanish-${i}.txt`, { authorization: auth, 'content-length': 1000 }, long(10, 'v')), { destroy: true }),
      ),
    );
    // Give the handlers time to reach the body (an early equal snapshot proves nothing).
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await settledSideEffects(t.stack, roots, before, 5_000)).toEqual(before);
  });

  it.each([
    ['Content-Length', false],
    ['chunked', true],
  ])('a client that disconnects mid-upload of a large streamed body (%s): nothing stored, upload area emptied', async (_n, chunked) => {
    const before = await sideEffectsOf(t.stack, roots);
    const u = new URL(t.url);
    const req = http.request({
      host: u.hostname,
      port: Number(u.port),
      method: 'PUT',
      path: '/v1/mounts/docs/files/big.bin',
      agent: false,
      headers: { authorization: auth, 'content-type': 'application/octet-stream', ...(chunked ? {} : { 'content-length': String(256 * 1024 * 1024) }) },
    });
    req.on('error', () => undefined);
    req.on('response', (res) => res.resume());
    const chunk = Buffer.alloc(1024 * 1024, 7);
    // Streams until the server has started a part file, proving the body was being received.
    let sawPart = false;
    for (let i = 0; i < 64 && !sawPart; i += 1) {
      if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
      sawPart = uploadAreaOf(t.stack).some((n) => n.startsWith('.part-'));
    }
    expect(sawPart).toBe(true);
    req.destroy();
    expect(await settledSideEffects(t.stack, roots, before, 5_000)).toEqual(before);
  });

  it('reusing an Idempotency-Key with a different body → 422 IDEMPOTENCY_KEY_REUSED, first upload kept', async () => {
    const first = await put('reuse.txt', 'first', idemKey('reuse-key-1'));
    expect(first.status).toBe(200);
    const before = await sideEffectsOf(t.stack, roots);
    expectProblem(await put('reuse.txt', 'second!', idemKey('reuse-key-1')), 422, 'IDEMPOTENCY_KEY_REUSED');
    expect(await settledSideEffects(t.stack, roots, before)).toEqual(before);
    expect((await t.call('/v1/mounts/docs/files/reuse.txt').then((r) => r.text()))).toBe('first');
  });

  it('reusing an Idempotency-Key on mkdir with another path → 422 IDEMPOTENCY_KEY_REUSED', async () => {
    expect((await json('POST', '/v1/mounts/docs/mkdir', { path: 'd1' }, idemKey('reuse-key-2'))).status).toBe(200);
    const before = await sideEffectsOf(t.stack, roots);
    expectProblem(await json('POST', '/v1/mounts/docs/mkdir', { path: 'd2' }, idemKey('reuse-key-2')), 422, 'IDEMPOTENCY_KEY_REUSED');
    expect(await settledSideEffects(t.stack, roots, before)).toEqual(before);
  });
});

describe('FILESTORE_MAX_FILE_BYTES', () => {
  let small: ApiTestStack;
  let smallRoots: Record<string, string>;
  beforeAll(async () => {
    small = await createApiTestStack({ config: { maxFileBytes: 1024 } });
    smallRoots = { docs: await small.stack.addMount('docs') };
  });
  afterAll(() => small?.teardown());

  it.each([
    ['declared over the limit', false],
    ['chunked, over the limit as it streams', true],
  ])('an upload %s → 413 PAYLOAD_TOO_LARGE, nothing stored', async (_n, chunked) => {
    const before = await sideEffectsOf(small.stack, smallRoots);
    const body = Buffer.alloc(4096, 1);
    const a = await rawHttp(small.url, {
      method: 'PUT',
      path: '/v1/mounts/docs/files/too-big.bin',
      headers: { authorization: `Bearer ${small.adminToken}`, 'content-type': 'application/octet-stream', ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': '4096' }) },
      body,
    }).catch((err: Error) => ({ status: -1, headers: {}, body: err.message }));
    expectProblem(a, 413, 'PAYLOAD_TOO_LARGE');
    expect(await settledSideEffects(small.stack, smallRoots, before)).toEqual(before);
  });

  it('an upload of exactly the limit is accepted', async () => {
    const r = await small.call('/v1/mounts/docs/files/limit.bin', { method: 'PUT', body: Buffer.alloc(1024, 2), headers: { 'content-type': 'application/octet-stream' } });
    expect(r.status).toBe(200);
  });
});
