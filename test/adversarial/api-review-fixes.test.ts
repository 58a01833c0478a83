/**
 * What a review of the HTTP API found, each pinned: If-Range on resumed downloads, 416 with
 * `Content-Range: bytes *\/size` and no file headers on a problem, journal entries that do not
 * leak host paths or inline bytes, an upload area that may not overlap a mount, and orphaned
 * upload sidecars swept.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { uploadDirOf } from '../../src/config';
import { UploadArea } from '../../src/operations/upload-area';
import { createApiTestStack, type ApiTestStack } from '../helpers/api';

jest.setTimeout(120_000);

let t: ApiTestStack;
let etag: string;
beforeAll(async () => {
  t = await createApiTestStack();
  await t.stack.addMount('docs');
  const put = await t.call('/v1/mounts/docs/files/r.txt', { method: 'PUT', body: '0123456789', headers: { 'idempotency-key': 'review-r' } });
  expect(put.status).toBe(200);
  etag = (await t.call('/v1/mounts/docs/files/r.txt', { method: 'HEAD' })).headers.get('etag')!;
});
afterAll(() => t?.teardown());

describe('If-Range', () => {
  it('the current strong ETag gets the range', async () => {
    const res = await t.call('/v1/mounts/docs/files/r.txt', { headers: { range: 'bytes=4-', 'if-range': etag } });
    expect(res.status).toBe(206);
    expect(await res.text()).toBe('456789');
  });
  it('another version gets the whole file', async () => {
    const res = await t.call('/v1/mounts/docs/files/r.txt', { headers: { range: 'bytes=4-', 'if-range': '"0000"' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('0123456789');
  });
});

it('416 carries Content-Range bytes */size and none of the file headers', async () => {
  const res = await t.call('/v1/mounts/docs/files/r.txt', { headers: { range: 'bytes=50-60' } });
  expect(res.status).toBe(416);
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  expect(res.headers.get('content-range')).toBe('bytes */10');
  expect(res.headers.get('etag')).toBeNull();
  expect(res.headers.get('accept-ranges')).toBeNull();
});

it('journal entries show a source by kind only: no host path, no inline bytes', async () => {
  const small = await t.stack.client.put('docs', 'inline.txt', { content: 'secret inline bytes' }, { idempotencyKey: 'review-inline' });
  await small.result();
  for (const key of ['review-r', 'review-inline']) {
    const body = await (await t.call(`/v1/journal/${key}`)).text();
    expect(body).not.toContain(uploadDirOf(t.stack.config));
    expect(body).not.toContain(Buffer.from('secret inline bytes').toString('base64'));
    expect((JSON.parse(body) as { request: { source: { kind: string } } }).request.source.kind).toMatch(/^(file|inline)$/);
  }
  const list = await (await t.call('/v1/journal?mount=docs')).text();
  expect(list).not.toContain(uploadDirOf(t.stack.config));
});

it('a local mount over the upload area is refused', async () => {
  const res = await t.call('/v1/mounts', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'local', id: 'over', rootPath: path.dirname(uploadDirOf(t.stack.config)) }),
  });
  expect(res.status).toBe(400);
  expect(((await res.json()) as { code: string }).code).toBe('INVALID_REQUEST');
  expect(() => UploadArea.assertApart('/srv/up', ['/srv/up/m'])).toThrow(/overlap/);
  expect(() => UploadArea.assertApart('/srv/up', ['/srv/upper'])).not.toThrow();
});

it('the sweep removes orphaned sidecars and old parts, and keeps what a running run needs', async () => {
  const dir = await fs.mkdtemp(path.join(t.stack.tmp, 'area-'));
  const area = new UploadArea(path.join(dir, 'u'));
  await area.sweep(0, async () => false);
  const old = new Date(Date.now() - 10_000);
  await fs.writeFile(path.join(area.dir, 'x.json'), '{"workflowId":"w"}');
  await fs.writeFile(path.join(area.dir, '.part-1'), 'half');
  await fs.writeFile(path.join(area.dir, 'kept'), 'needed');
  await fs.writeFile(path.join(area.dir, 'kept.json'), '{"workflowId":"running"}');
  for (const n of ['x.json', '.part-1', 'kept', 'kept.json']) await fs.utimes(path.join(area.dir, n), old, old);
  await area.sweep(1000, async (id) => id === 'running');
  expect((await fs.readdir(area.dir)).sort()).toEqual(['kept', 'kept.json']);
});

it('an upload area writable by others is refused', async () => {
  const dir = path.join(t.stack.tmp, 'open-area');
  await fs.mkdir(dir, { mode: 0o777 });
  await fs.chmod(dir, 0o777);
  const area = new UploadArea(dir);
  await expect(area.sweep(0, async () => false)).rejects.toMatchObject({ code: 'INTERNAL' });
});
