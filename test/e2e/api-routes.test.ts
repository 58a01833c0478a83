/**
 * Every route of the HTTP API end to end (issue 9, Tests): a real HTTP client (node's fetch over
 * sockets) against a real stack — Temporal, Postgres, Redis, the worker, disk and MinIO. The same
 * table runs on a local mount and on an S3 mount; then cross-mount copy, mounts admin, idempotent
 * retry, async mode, and the operational routes.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { eq } from 'drizzle-orm';
import { journal } from '../../db/schema';
import { uploadDirOf } from '../../src/config';
import { ExecutorRegistry } from '../../src/executor-registry';
import type { MutationResult } from '../../src/mutations';
import { runDriftJob } from '../../src/watcher/drift-processor';
import { createApiTestStack, type ApiTestStack } from '../helpers/api';
import { sha256 } from '../helpers/files';
import type { TestBucket } from '../helpers/s3';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

const LOCAL = 'rt-local';
const S3 = 'rt-s3';

let t: ApiTestStack;
let localRoot: string;
let bucket: TestBucket;
let registry: ExecutorRegistry;

beforeAll(async () => {
  t = await createApiTestStack();
  localRoot = await t.stack.addMount(LOCAL);
  bucket = await t.stack.addS3Mount(S3);
  registry = new ExecutorRegistry(t.stack.client.db);
}, 120_000);
afterAll(() => t?.teardown());

interface Problem {
  code: string;
  status: number;
}

async function json<T>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

/** PUT `body` at `mount:p` and expect a 200 COMMITTED MutationResult. */
async function put(mount: string, p: string, body: string | Buffer, headers: Record<string, string> = {}, query = ''): Promise<MutationResult> {
  const res = await t.call(`/v1/mounts/${mount}/files/${p}${query}`, { method: 'PUT', body, headers: { 'content-type': 'application/octet-stream', ...headers } });
  const out = await json<MutationResult & { code?: string }>(res);
  if (res.status !== 200) throw new Error(`PUT ${mount}:${p} → ${res.status} ${JSON.stringify(out)}`);
  expect(out.status).toBe('COMMITTED');
  return out;
}

/** POST a JSON mutation and expect 200 COMMITTED. */
async function post(mount: string, op: string, body: unknown): Promise<MutationResult> {
  const res = await t.call(`/v1/mounts/${mount}/${op}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const out = await json<MutationResult & { code?: string }>(res);
  if (res.status !== 200) throw new Error(`POST ${mount}/${op} → ${res.status} ${JSON.stringify(out)}`);
  expect(out.status).toBe('COMMITTED');
  return out;
}

/** Bytes as the backend holds them (the local file, the S3 object), or null when absent. */
async function backendBytes(mount: string, p: string): Promise<Buffer | null> {
  if (mount === LOCAL) return fs.readFile(path.join(localRoot, p)).catch(() => null);
  try {
    const obj = await bucket.client.send(new GetObjectCommand({ Bucket: bucket.bucket, Key: p }));
    return Buffer.from(await obj.Body!.transformToByteArray());
  } catch (err) {
    if ((err as Error).name === 'NoSuchKey') return null;
    throw err;
  }
}

/** Changes a file behind Filestore's back. */
async function changeOutOfBand(mount: string, p: string, body: string): Promise<void> {
  if (mount === LOCAL) await fs.writeFile(path.join(localRoot, p), body);
  else await bucket.client.send(new PutObjectCommand({ Bucket: bucket.bucket, Key: p, Body: body }));
}

async function uploadAreaEntries(): Promise<string[]> {
  return fs.readdir(uploadDirOf(t.stack.config)).catch(() => []);
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789'; // 36 bytes

describe.each([
  { name: 'local', mount: LOCAL },
  { name: 'S3', mount: S3 },
])('$name mount', ({ mount }) => {
  const files = `/v1/mounts/${mount}/files`;
  let etag: string;

  test('PUT uploads (200 COMMITTED) and the backend holds the exact bytes', async () => {
    const body = Buffer.concat([Buffer.from(ALPHABET), Buffer.from([0, 255, 10, 13])]);
    const r = await put(mount, 'docs/bin.dat', body);
    expect(r).toMatchObject({ op: 'write', mountId: mount, path: 'docs/bin.dat', node: { size: body.length, sha256: sha256(body), version: 1 } });
    expect(r.journalId).toEqual(expect.any(String));
    expect(await backendBytes(mount, 'docs/bin.dat')).toEqual(body);

    const a = await put(mount, 'docs/a.txt', ALPHABET);
    expect(a.node!.sha256).toBe(sha256(ALPHABET));
    etag = `"${sha256(ALPHABET)}"`;
  });

  test('GET: 200, Content-Length, ETag "<sha256>", Accept-Ranges', async () => {
    const res = await t.call(`${files}/docs/a.txt`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(ALPHABET.length));
    expect(res.headers.get('etag')).toBe(etag);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(await res.text()).toBe(ALPHABET);
  });

  test('HEAD: the headers, no body', async () => {
    const res = await t.call(`${files}/docs/a.txt`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(ALPHABET.length));
    expect(res.headers.get('etag')).toBe(etag);
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });

  test.each([
    { range: 'bytes=0-9', body: ALPHABET.slice(0, 10), cr: `bytes 0-9/36` },
    { range: 'bytes=10-', body: ALPHABET.slice(10), cr: `bytes 10-35/36` },
    { range: 'bytes=-5', body: ALPHABET.slice(-5), cr: `bytes 31-35/36` },
  ])('Range $range → 206 + Content-Range', async ({ range, body, cr }) => {
    const res = await t.call(`${files}/docs/a.txt`, { headers: { range } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(cr);
    expect(res.headers.get('content-length')).toBe(String(body.length));
    expect(await res.text()).toBe(body);
  });

  test('a multi-range request is answered 200 with the whole file', async () => {
    const res = await t.call(`${files}/docs/a.txt`, { headers: { range: 'bytes=0-1,5-6' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-range')).toBeNull();
    expect(await res.text()).toBe(ALPHABET);
  });

  test('conditional GET: If-None-Match with the ETag → 304; a stale one → 200', async () => {
    const same = await t.call(`${files}/docs/a.txt`, { headers: { 'if-none-match': etag } });
    expect(same.status).toBe(304);
    expect(same.headers.get('etag')).toBe(etag);
    expect((await same.arrayBuffer()).byteLength).toBe(0);
    const stale = await t.call(`${files}/docs/a.txt`, { headers: { 'if-none-match': `"${sha256('an older version')}"` } });
    expect(stale.status).toBe(200);
    expect(await stale.text()).toBe(ALPHABET);
  });

  test('nodes/: a file, the mount root, an absent path', async () => {
    const res = await t.call(`/v1/mounts/${mount}/nodes/docs/a.txt`);
    expect(res.status).toBe(200);
    expect(await json<Record<string, unknown>>(res)).toMatchObject({ mountId: mount, path: 'docs/a.txt', kind: 'file', sha256: sha256(ALPHABET), state: 'ACTIVE' });
    const dir = await t.call(`/v1/mounts/${mount}/nodes/docs`);
    expect(await json<Record<string, unknown>>(dir)).toMatchObject({ path: 'docs', kind: 'directory' });
    // The catalog holds no row for a mount's root (the CLI's `stat mount:` says NOT_FOUND too):
    // the route is reached and answers a typed problem, not the router's 404.
    const root = await t.call(`/v1/mounts/${mount}/nodes/`);
    if (root.status === 200) expect(await json<{ path: string }>(root)).toMatchObject({ path: '' });
    else expect(await json<Problem>(root)).toMatchObject({ status: 404, code: 'NOT_FOUND' });
    const missing = await t.call(`/v1/mounts/${mount}/nodes/nope/nothing`);
    expect(missing.status).toBe(404);
    expect((await json<Problem>(missing)).code).toBe('NOT_FOUND');
  });

  test('list/: limit + cursor pages over 25 files, in path order, each once', async () => {
    const names = Array.from({ length: 25 }, (_, i) => `many/f${String(i).padStart(2, '0')}.txt`);
    for (const n of names) await put(mount, n, `content of ${n}`);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const qs: string = `?limit=10${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const res = await t.call(`/v1/mounts/${mount}/list/many${qs}`);
      expect(res.status).toBe(200);
      const page = await json<{ nodes: { path: string }[]; nextCursor: string | null }>(res);
      expect(page.nodes.length).toBeLessThanOrEqual(10);
      seen.push(...page.nodes.map((n) => n.path));
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(names);

    const root = await json<{ nodes: { path: string }[] }>(await t.call(`/v1/mounts/${mount}/list/`));
    expect(root.nodes.map((n) => n.path)).toEqual(expect.arrayContaining(['docs', 'many']));
    const recursive = await json<{ nodes: { path: string }[] }>(await t.call(`/v1/mounts/${mount}/list/?recursive=true&limit=10000`));
    expect(recursive.nodes.map((n) => n.path)).toEqual(expect.arrayContaining(['docs/a.txt', 'many/f24.txt']));
  });

  test('mkdir, copy, move', async () => {
    const mk = await post(mount, 'mkdir', { path: 'made/deep/er', parents: true });
    expect(mk.node).toMatchObject({ path: 'made/deep/er', kind: 'directory' });
    expect(await json<Record<string, unknown>>(await t.call(`/v1/mounts/${mount}/nodes/made/deep/er`))).toMatchObject({ kind: 'directory' });

    const cp = await post(mount, 'copy', { from: 'docs/a.txt', to: 'made/copy.txt' });
    expect(cp).toMatchObject({ op: 'copy', node: { path: 'made/copy.txt', sha256: sha256(ALPHABET) } });
    expect((await backendBytes(mount, 'made/copy.txt'))?.toString()).toBe(ALPHABET);
    expect(await (await t.call(`${files}/made/copy.txt`)).text()).toBe(ALPHABET);

    const mv = await post(mount, 'move', { from: 'made/copy.txt', to: 'made/deep/moved.txt' });
    expect(mv).toMatchObject({ op: 'move', node: { path: 'made/deep/moved.txt', sha256: sha256(ALPHABET) } });
    expect((await t.call(`${files}/made/copy.txt`)).status).toBe(404);
    expect(await backendBytes(mount, 'made/copy.txt')).toBeNull();
    expect(await (await t.call(`${files}/made/deep/moved.txt`)).text()).toBe(ALPHABET);
  });

  test('DELETE a file; POST delete recursive a tree', async () => {
    await put(mount, 'trash/one.txt', 'one');
    await put(mount, 'trash/sub/two.txt', 'two');
    const del = await t.call(`${files}/trash/one.txt`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(await json<MutationResult>(del)).toMatchObject({ status: 'COMMITTED', op: 'delete', node: null });
    expect((await t.call(`${files}/trash/one.txt`)).status).toBe(404);
    expect(await backendBytes(mount, 'trash/one.txt')).toBeNull();

    const refused = await t.call(`/v1/mounts/${mount}/delete`, { method: 'POST', body: JSON.stringify({ path: 'trash' }), headers: { 'content-type': 'application/json' } });
    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect(refused.status).toBeLessThan(500);
    await post(mount, 'delete', { path: 'trash', recursive: true });
    // The catalog keeps a deleted node's row: nodes/ shows it DELETED (or not at all).
    for (const p of ['trash', 'trash/sub', 'trash/sub/two.txt', 'trash/one.txt']) {
      const res = await t.call(`/v1/mounts/${mount}/nodes/${p}`);
      if (res.status === 200) expect(await json<{ state: string }>(res)).toMatchObject({ state: 'DELETED' });
      else expect(res.status).toBe(404);
    }
    const listed = await json<{ nodes: { path: string }[] }>(await t.call(`/v1/mounts/${mount}/list/?recursive=true&limit=10000`));
    expect(listed.nodes.filter((n) => n.path.startsWith('trash'))).toEqual([]);
    expect(await backendBytes(mount, 'trash/sub/two.txt')).toBeNull();
  });

  test('drift list, then reconcile: the node takes the backend’s new content and the drift is resolved', async () => {
    await put(mount, 'rec/x.txt', 'as Filestore wrote it');
    await put(mount, 'rec/y.txt', 'y as Filestore wrote it');
    const edited = 'edited behind Filestore’s back, longer than before';
    await changeOutOfBand(mount, 'rec/x.txt', edited);
    await changeOutOfBand(mount, 'rec/y.txt', 'y edited');
    // What the watcher would run for the changed paths.
    const found = await runDriftJob({ db: t.stack.client.db, executors: registry }, { kind: 'check', mountId: mount, paths: ['rec/x.txt', 'rec/y.txt'], firstEventAt: Date.now() }, 'api-routes-test');
    expect(found.detected).toBe(2);

    // Drift listing, one event a page.
    const drifted: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await t.call(`/v1/drift?mount=${mount}&limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.status).toBe(200);
      const page = await json<{ events: { path: string; mountId: string }[]; nextCursor: string | null }>(res);
      expect(page.events.length).toBeLessThanOrEqual(1);
      for (const e of page.events) expect(e.mountId).toBe(mount);
      drifted.push(...page.events.map((e) => e.path));
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor && pages < 10);
    expect(drifted.sort()).toEqual(['rec/x.txt', 'rec/y.txt']);

    // A drifted file is not served under its old hash.
    const get = await t.call(`${files}/rec/x.txt`);
    expect(get.headers.get('etag')).not.toBe(`"${sha256('as Filestore wrote it')}"`);
    expect(await get.text()).toBe(edited);

    const rec = await post(mount, 'reconcile', { path: 'rec', recursive: true });
    expect(rec.op).toBe('reconcile');
    const node = await json<{ sha256: string; state: string }>(await t.call(`/v1/mounts/${mount}/nodes/rec/x.txt`));
    expect(node).toMatchObject({ sha256: sha256(edited), state: 'ACTIVE' });
    const open = await json<{ events: { path: string }[] }>(await t.call(`/v1/drift?mount=${mount}`));
    expect(open.events.filter((e) => e.path.startsWith('rec/'))).toEqual([]);
    const all = await json<{ events: { path: string }[] }>(await t.call(`/v1/drift?mount=${mount}&open=false`));
    expect(all.events.map((e) => e.path).sort()).toEqual(['rec/x.txt', 'rec/y.txt']);
    // And it is served under its new hash.
    expect((await t.call(`${files}/rec/x.txt`, { method: 'HEAD' })).headers.get('etag')).toBe(`"${sha256(edited)}"`);
  });

  test('journal: paged listing, each entry once; an entry by id and by idempotency key', async () => {
    const key = `jr-${mount}-${Date.now()}`;
    const r = await put(mount, 'journal/k.txt', 'keyed', { 'idempotency-key': key });

    const full = await json<{ entries: { id: string }[]; nextCursor: string | null }>(await t.call(`/v1/journal?mount=${mount}&limit=1000`));
    expect(full.nextCursor).toBeNull();
    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await t.call(`/v1/journal?mount=${mount}&limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.status).toBe(200);
      const page = await json<{ entries: { id: string; mountId: string; targetMountId: string | null }[]; nextCursor: string | null }>(res);
      expect(page.entries.length).toBeLessThanOrEqual(7);
      for (const e of page.entries) expect([e.mountId, e.targetMountId]).toContain(mount);
      ids.push(...page.entries.map((e) => e.id));
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor && pages < 100);
    expect(pages).toBeGreaterThan(2);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(full.entries.map((e) => e.id));
    expect(ids[0]).toBe(r.journalId); // newest first

    const byId = await t.call(`/v1/journal/${r.journalId}`);
    expect(byId.status).toBe(200);
    expect(await json<Record<string, unknown>>(byId)).toMatchObject({ id: r.journalId, idempotencyKey: key, status: 'COMMITTED', mountId: mount, workflowId: r.workflowId });
    const byKey = await t.call(`/v1/journal/${key}`);
    expect(byKey.status).toBe(200);
    expect((await json<{ id: string }>(byKey)).id).toBe(r.journalId);
    expect((await t.call('/v1/journal/no-such-key')).status).toBe(404);

    const committed = await json<{ entries: { status: string }[] }>(await t.call(`/v1/journal?mount=${mount}&status=COMMITTED&limit=5`));
    expect(committed.entries.length).toBe(5);
    for (const e of committed.entries) expect(e.status).toBe('COMMITTED');
  });

  test('GET /v1/mounts/{id}', async () => {
    const res = await t.call(`/v1/mounts/${mount}`);
    expect(res.status).toBe(200);
    expect(await json<Record<string, unknown>>(res)).toMatchObject({ id: mount, kind: mount === LOCAL ? 'local' : 's3' });
  });
});

test('cross-mount copy local → S3 (and the object is byte-identical)', async () => {
  const body = Buffer.from(`${ALPHABET}\ncross-mount\n`);
  await put(LOCAL, 'xm/src.txt', body);
  const r = await post(LOCAL, 'copy', { from: 'xm/src.txt', to: 'from-local/dst.txt', targetMount: S3 });
  expect(r).toMatchObject({ op: 'copy', mountId: LOCAL, targetMountId: S3, node: { path: 'from-local/dst.txt', sha256: sha256(body) } });
  expect(await backendBytes(S3, 'from-local/dst.txt')).toEqual(body);
  const get = await t.call(`/v1/mounts/${S3}/files/from-local/dst.txt`);
  expect(get.headers.get('etag')).toBe(`"${sha256(body)}"`);
  expect(Buffer.from(await get.arrayBuffer())).toEqual(body);
  // The entry shows in both mounts' journals.
  const s3Journal = await json<{ entries: { id: string }[] }>(await t.call(`/v1/journal?mount=${S3}&limit=1000`));
  expect(s3Journal.entries.map((e) => e.id)).toContain(r.journalId);
});

describe('idempotent retry', () => {
  test('the same body twice under one Idempotency-Key → one mutation, one journal entry', async () => {
    const key = `retry-${Date.now()}`;
    const first = await put(LOCAL, 'idem/once.txt', 'only once', { 'idempotency-key': key });
    const second = await put(LOCAL, 'idem/once.txt', 'only once', { 'idempotency-key': key });
    expect(second.journalId).toBe(first.journalId);
    expect(second.workflowId).toBe(first.workflowId);
    expect(second.node).toEqual(first.node);
    const rows = await t.stack.client.db.select().from(journal).where(eq(journal.idempotencyKey, key));
    expect(rows).toHaveLength(1);
    expect((await json<{ version: number }>(await t.call(`/v1/mounts/${LOCAL}/nodes/idem/once.txt`))).version).toBe(1);
    expect(await waitFor('the upload area to empty', async () => (await uploadAreaEntries()).length === 0, 10_000)).toBe(true);
  });

  test('the same key with a different body → 422 IDEMPOTENCY_KEY_REUSED, nothing written', async () => {
    const key = `reuse-${Date.now()}`;
    await put(LOCAL, 'idem/reused.txt', 'first body', { 'idempotency-key': key });
    const res = await t.call(`/v1/mounts/${LOCAL}/files/idem/reused.txt`, {
      method: 'PUT',
      body: 'a different body',
      headers: { 'content-type': 'application/octet-stream', 'idempotency-key': key },
    });
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect((await json<Problem>(res)).code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect((await backendBytes(LOCAL, 'idem/reused.txt'))?.toString()).toBe('first body');
    expect(await t.stack.client.db.select().from(journal).where(eq(journal.idempotencyKey, key))).toHaveLength(1);
    expect(await waitFor('the upload area to empty', async () => (await uploadAreaEntries()).length === 0, 10_000)).toBe(true);
  });
});

describe.each([
  { name: 'local', mount: LOCAL },
  { name: 'S3', mount: S3 },
])('async mode ($name)', ({ mount }) => {
  test('Prefer: respond-async → 202 {workflowId, statusUrl} + Location; polling ends COMMITTED; the upload area is empty', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024, 'async body ');
    const res = await t.call(`/v1/mounts/${mount}/files/async/big.bin`, {
      method: 'PUT',
      body,
      headers: { 'content-type': 'application/octet-stream', prefer: 'respond-async' },
    });
    expect(res.status).toBe(202);
    const accepted = await json<{ workflowId: string; idempotencyKey: string; statusUrl: string }>(res);
    expect(accepted.workflowId).toMatch(new RegExp(`^filestore:${mount}:write:`));
    expect(accepted.idempotencyKey).toEqual(expect.any(String));
    expect(accepted.statusUrl).toBe(`/v1/runs/${encodeURIComponent(accepted.workflowId)}`);
    expect(res.headers.get('location')).toBe(accepted.statusUrl);

    const done = await waitFor(
      'the run to commit',
      async () => {
        const s = await t.call(accepted.statusUrl);
        expect(s.status).toBe(200);
        const st = await json<{ workflowId: string; status: string; result?: MutationResult }>(s);
        expect(['RUNNING', 'COMMITTED']).toContain(st.status);
        return st.status === 'COMMITTED' ? st : null;
      },
      60_000,
      100,
    );
    expect(done.workflowId).toBe(accepted.workflowId);
    expect(done.result).toMatchObject({ status: 'COMMITTED', workflowId: accepted.workflowId, node: { path: 'async/big.bin', sha256: sha256(body), size: body.length } });
    // Compared by hash: jest's deep equality walks a 3 MiB Buffer byte by byte for seconds.
    const stored = await backendBytes(mount, 'async/big.bin');
    expect(stored && sha256(stored)).toBe(sha256(body));
    // The upload file is released once the run ended (in the background of the 202).
    const left = await waitFor('the upload area to empty', async () => ((await uploadAreaEntries()).length === 0 ? [] : null), 10_000).catch(async () => uploadAreaEntries());
    expect(left).toEqual([]);
  });
});

describe('mounts', () => {
  test('GET /v1/mounts lists both mounts', async () => {
    const res = await t.call('/v1/mounts');
    expect(res.status).toBe(200);
    const { mounts } = await json<{ mounts: { id: string }[] }>(res);
    expect(mounts.map((m) => m.id)).toEqual(expect.arrayContaining([LOCAL, S3]));
  });

  test('POST /v1/mounts adds a local mount (admin); PATCH readOnly → a PUT is 403 READ_ONLY_MOUNT', async () => {
    const root = path.join(t.stack.tmp, 'mounts', 'rt-added');
    await fs.mkdir(root, { recursive: true });
    const add = await t.call('/v1/mounts', { method: 'POST', body: JSON.stringify({ kind: 'local', id: 'rt-added', rootPath: root }), headers: { 'content-type': 'application/json' } });
    expect(add.status).toBe(201);
    expect(await json<Record<string, unknown>>(add)).toMatchObject({ id: 'rt-added', kind: 'local' });
    expect((await json<{ id: string }>(await t.call('/v1/mounts/rt-added'))).id).toBe('rt-added');
    expect((await json<{ mounts: { id: string }[] }>(await t.call('/v1/mounts'))).mounts.map((m) => m.id)).toContain('rt-added');

    // A mount token may not add mounts.
    const mountToken = await t.mountToken(LOCAL);
    const denied = await t.call('/v1/mounts', { method: 'POST', token: mountToken, body: JSON.stringify({ kind: 'local', id: 'rt-denied', rootPath: root }), headers: { 'content-type': 'application/json' } });
    expect(denied.status).toBe(403);

    const patch = await t.call('/v1/mounts/rt-added', { method: 'PATCH', body: JSON.stringify({ readOnly: true }), headers: { 'content-type': 'application/json' } });
    expect(patch.status).toBe(200);
    expect(await json<{ options: { readOnly?: boolean } }>(patch)).toMatchObject({ options: { readOnly: true } });

    const refused = await t.call('/v1/mounts/rt-added/files/x.txt', { method: 'PUT', body: 'nope', headers: { 'content-type': 'application/octet-stream' } });
    expect(refused.status).toBe(403);
    expect((await json<Problem>(refused)).code).toBe('READ_ONLY_MOUNT');
    expect((await fs.readdir(root)).filter((n) => n !== '.filestore-mount.json')).toEqual([]);
    expect(await uploadAreaEntries()).toEqual([]);
  });
});

describe('operational routes', () => {
  test('/healthz', async () => {
    const res = await t.call('/healthz', { token: null });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  test('/readyz: 200 with every check ok', async () => {
    const res = await t.call('/readyz', { token: null });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', checks: { postgres: 'ok', temporal: 'ok', redis: 'ok' } });
  });

  test('/metrics: request durations labelled by route pattern', async () => {
    const res = await t.call('/metrics', { token: null });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('filestore_http_request_duration_seconds');
    const lines = text.split('\n').filter((l) => l.startsWith('filestore_http_request_duration_seconds_count'));
    expect(lines.some((l) => l.includes('route="/v1/mounts/:mount/files/*"') && l.includes('method="PUT"'))).toBe(true);
    expect(lines.some((l) => l.includes('route="/v1/mounts/:mount/files/*"') && l.includes('method="GET"'))).toBe(true);
    // Routes are patterns, never paths.
    expect(lines.some((l) => l.includes('docs/a.txt'))).toBe(false);
  });
});
