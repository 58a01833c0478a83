/**
 * The upload area as an S3 prefix (FILESTORE_UPLOAD_S3): HTTP uploads and SDK stream puts land as
 * objects under the prefix, workers read them from there (no shared directory), the request's
 * identity is the content's hash (a retry with the same key is the same mutation), and every
 * object is gone once its run ended — also after a refused or truncated upload. A worker never
 * reads a key outside the area.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import { Readable } from 'node:stream';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { uploadDirOf } from '../../src/config';
import { createApiTestStack, type ApiTestStack } from '../helpers/api';
import { createTestBucket, testS3Endpoint, type TestBucket } from '../helpers/s3';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

let t: ApiTestStack;
let area: TestBucket;
beforeAll(async () => {
  area = await createTestBucket('fs-uploads');
  t = await createApiTestStack({ config: { uploadS3: `s3://${area.bucket}/incoming`, s3Endpoint: testS3Endpoint(), inlineMaxBytes: 1024 } });
  await t.stack.addMount('docs');
  await t.stack.addS3Mount('objs');
});
afterAll(async () => {
  await t?.teardown();
  await area?.cleanup();
});

async function areaKeys(): Promise<string[]> {
  const res = await area.client.send(new ListObjectsV2Command({ Bucket: area.bucket }));
  return (res.Contents ?? []).map((o) => o.Key!);
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe.each(['docs', 'objs'])('to mount %s', (mount) => {
  it('an HTTP upload goes through the S3 area, commits byte-identical and leaves nothing there', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 5);
    const res = await t.call(`/v1/mounts/${mount}/files/big.bin`, { method: 'PUT', body, headers: { 'idempotency-key': `s3area-${mount}` } });
    expect(res.status).toBe(200);
    const result = (await res.json()) as { journalId: string; node: { sha256: string } };
    expect(result.node.sha256).toBe(sha(body));
    expect(sha(Buffer.from(await (await t.call(`/v1/mounts/${mount}/files/big.bin`)).arrayBuffer()))).toBe(sha(body));
    expect(await areaKeys()).toEqual([]);
    // No local directory was used.
    expect(await fs.readdir(uploadDirOf(t.stack.config)).catch(() => [])).toEqual([]);

    // The same key and content again: the same mutation (the object's name differs, the hash does not).
    const again = await t.call(`/v1/mounts/${mount}/files/big.bin`, { method: 'PUT', body, headers: { 'idempotency-key': `s3area-${mount}` } });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { journalId: string }).journalId).toBe(result.journalId);
    // Other content under that key: refused, and its object removed.
    const other = await t.call(`/v1/mounts/${mount}/files/big.bin`, { method: 'PUT', body: 'different', headers: { 'idempotency-key': `s3area-${mount}` } });
    expect(other.status).toBe(422);
    expect(await areaKeys()).toEqual([]);
  });
});

it('an SDK stream put goes through the S3 area', async () => {
  const chunks = Array.from({ length: 6 }, () => randomBytes(1024 * 1024));
  const result = await (await t.stack.client.put('docs', 'sdk.bin', { stream: Readable.from(chunks) })).result();
  expect(result.node?.sha256).toBe(sha(Buffer.concat(chunks)));
  expect(await areaKeys()).toEqual([]);
});

it('a truncated upload leaves no object and no journal entry', async () => {
  const before = (await t.stack.client.listJournal({ mountId: 'docs', limit: 1000 })).length;
  await new Promise<void>((resolve) => {
    const req = http.request(new URL('/v1/mounts/docs/files/cut.bin', t.url), {
      method: 'PUT',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-length': 10 * 1024 * 1024 },
    });
    req.on('error', () => resolve());
    req.on('response', (r) => (r.resume(), r.on('end', resolve)));
    req.write(randomBytes(1024 * 1024), () => setTimeout(() => req.destroy(), 200));
  });
  await waitFor('the upload area to be empty', async () => (await areaKeys()).length === 0, 10_000);
  expect((await t.stack.client.listJournal({ mountId: 'docs', limit: 1000 })).length).toBe(before);
});

it('a request naming something that is not an upload is refused at the worker, nothing read', async () => {
  const err = await t.stack.client
    .put('docs', 'evil.bin', { upload: '../../etc/passwd' }, { expectedSha256: '0'.repeat(64) })
    .then((h) => h.result())
    .catch((e: unknown) => e);
  expect((err as { code?: string }).code).toBe('INVALID_REQUEST');
});

it('the sweep removes objects whose run is over and keeps those whose run goes on', async () => {
  const { ObjectUploadArea } = await import('../../src/operations/object-upload-area');
  const store = new ObjectUploadArea(area.client, area.bucket, 'incoming');
  const a = await store.receive(Readable.from([Buffer.from('left by a crash')]), { workflowId: 'filestore:docs:write:gone', maxBytes: 1024 });
  const b = await store.receive(Readable.from([Buffer.from('still needed')]), { workflowId: 'filestore:docs:write:running', maxBytes: 1024 });
  expect(await store.sweep(0, async (id) => id.endsWith(':running'))).toBe(1);
  expect(await areaKeys()).toEqual([`incoming/${b.ref}`]);
  expect(a.ref).not.toBe(b.ref);
  await store.release(b.ref);
  expect(await areaKeys()).toEqual([]);
});

it('an S3 area that S3 refuses fails the upload typed, mid-body, without an unhandled rejection', async () => {
  const { ObjectUploadArea } = await import('../../src/operations/object-upload-area');
  const missing = new ObjectUploadArea(area.client, `${area.bucket}-missing`, 'x', 5 * 1024 * 1024);
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    // 80 MiB, produced lazily: more parts than lib-storage's queue, so S3's refusal arrives mid-body.
    async function* body() {
      for (let i = 0; i < 80; i++) yield Buffer.alloc(1024 * 1024, i);
    }
    const err = await missing.receive(Readable.from(body()), { workflowId: 'filestore:docs:write:nobucket', maxBytes: 1024 ** 3 }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('BUCKET_NOT_FOUND');
    await new Promise((r) => setTimeout(r, 200));
    expect(unhandled).toEqual([]);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

it('an S3 area overlapping an S3 mount is refused (at start and when the mount is added)', async () => {
  const { assertUploadAreaApart } = await import('../../src/operations/upload-store');
  const { ObjectUploadArea } = await import('../../src/operations/object-upload-area');
  const store = new ObjectUploadArea(area.client, 'b', 'up/in');
  const s3 = (prefix: string, bucket = 'b') => [{ id: 'm', kind: 's3' as const, rootPath: null, bucket, prefix }];
  expect(() => assertUploadAreaApart(store, s3(''))).toThrow(/overlap/);
  expect(() => assertUploadAreaApart(store, s3('up'))).toThrow(/overlap/);
  expect(() => assertUploadAreaApart(store, s3('up/in/deeper'))).toThrow(/overlap/);
  expect(() => assertUploadAreaApart(store, s3('upper'))).not.toThrow();
  expect(() => assertUploadAreaApart(store, s3('', 'other'))).not.toThrow();
  const res = await t.call('/v1/mounts', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 's3', id: 'over', bucket: area.bucket, prefix: 'incoming/sub' }),
  });
  expect(res.status).toBe(400);
});
