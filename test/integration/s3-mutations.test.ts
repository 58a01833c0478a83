/**
 * Every op end to end through the mutation workflow on an S3 mount (real Temporal, Postgres, Redis
 * and MinIO): the objects in the bucket (content, sha256 metadata, storage class), the nodes and
 * snapshots the commit wrote (size, ETag, sha256, storage class), the journal entry COMMITTED, one
 * change event on `filestore:changes`, and nothing left behind — no staging object under
 * `.filestore-staging/`, no unfinished multipart upload. Writes below and above the multipart
 * threshold (5 MiB here, with 5 MiB parts), and the heartbeat of a running multipart upload.
 */
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { and, eq } from 'drizzle-orm';
import { Redis } from 'ioredis';
import { journal, snapshots } from '../../db/schema';
import { CHANGES_CHANNEL, type ChangeEvent } from '../../src/change-events';
import { listUploadsForKey } from '../../src/executors/s3/s3-multipart';
import type { MutationResult } from '../../src/mutations';
import { startCountingProxy, type CountingProxy } from '../adversarial/fixtures/s3-counting-proxy';
import { sha256, writeRandomFile } from '../helpers/files';
import type { TestBucket } from '../helpers/s3';
import { createTestStack, type TestStack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';

const MiB = 1024 * 1024;
// The worker's S3 executors read these from the environment (src/executors/index.ts, s3OptionsOf).
process.env.FILESTORE_S3_MULTIPART_THRESHOLD = String(5 * MiB);
process.env.FILESTORE_S3_PART_SIZE = String(5 * MiB);
process.env.FILESTORE_S3_CONCURRENCY = '2';

const suffix = randomBytes(3).toString('hex');
// Unique per run: the change channel is shared with every test file using this Redis.
const MOUNT = `s3ops-${suffix}`;
const SLOW = `s3slow-${suffix}`;
const PREFIX = 'estate';
const STORAGE_CLASS = 'REDUCED_REDUNDANCY';

let stack: TestStack;
let bucket: TestBucket;
let slowBucket: TestBucket;
let proxy: CountingProxy;
let sub: Redis;
const events: ChangeEvent[] = [];

beforeAll(async () => {
  stack = await createTestStack();
  bucket = await stack.addS3Mount(MOUNT, { prefix: PREFIX, storageClass: STORAGE_CLASS });
  proxy = await startCountingProxy(process.env.FILESTORE_TEST_S3_ENDPOINT!);
  slowBucket = await stack.addS3Mount(SLOW, { endpoint: proxy.endpoint });
  sub = new Redis(stack.config.redisUrl);
  sub.on('message', (channel: string, message: string) => {
    if (channel !== CHANGES_CHANNEL) return;
    const event = JSON.parse(message) as ChangeEvent;
    if (event.mountId === MOUNT || event.mountId === SLOW) events.push(event);
  });
  await sub.subscribe(CHANGES_CHANNEL);
}, 120_000);

afterAll(async () => {
  await sub?.quit();
  await stack?.teardown();
  await proxy?.close();
});

const keyOf = (p: string) => `${PREFIX}/${p}`;

async function bodySha256(b: TestBucket, key: string): Promise<string> {
  const res = await b.client.send(new GetObjectCommand({ Bucket: b.bucket, Key: key }));
  const hash = createHash('sha256');
  for await (const chunk of res.Body as Readable) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function head(b: TestBucket, key: string) {
  return b.client.send(new HeadObjectCommand({ Bucket: b.bucket, Key: key })).catch((err: Error) => {
    if (err.name === 'NotFound' || err.name === 'NoSuchKey') return null;
    throw err;
  });
}

async function keysUnder(b: TestBucket, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await b.client.send(new ListObjectsV2Command({ Bucket: b.bucket, Prefix: prefix, ContinuationToken: token }));
    out.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out.sort();
}

/** Resolves once the change event of this journal entry arrived (the workflow returns after the PUBLISH). */
async function eventOf(journalId: string): Promise<ChangeEvent> {
  return waitFor(`the change event of ${journalId}`, async () => events.find((e) => e.journalId === journalId), 10_000);
}

/** What every committed mutation leaves: COMMITTED entry, one change event, no staging, no upload of `keys` left. */
async function expectClean(r: MutationResult, b: TestBucket, keys: string[] = []): Promise<void> {
  const [entry] = await stack.client.db.select().from(journal).where(eq(journal.id, r.journalId));
  expect(entry).toMatchObject({ status: 'COMMITTED', op: r.op, mountId: r.mountId, path: r.path });
  expect(await eventOf(r.journalId)).toMatchObject({ mountId: r.mountId, op: r.op, path: r.path, journalId: r.journalId, workflowId: r.workflowId });
  expect(events.filter((e) => e.journalId === r.journalId)).toHaveLength(1);
  const stagingPrefix = b === bucket ? `${PREFIX}/.filestore-staging/` : '.filestore-staging/';
  expect(await keysUnder(b, stagingPrefix)).toEqual([]);
  for (const key of keys) expect(await listUploadsForKey(b.client, b.bucket, key)).toEqual([]);
}

/** The node and the snapshot the commit wrote for a file match the object in the bucket. */
async function expectFileRecorded(r: MutationResult, p: string, want: { size: number; sha256: string; version?: number }) {
  const obj = await head(bucket, keyOf(p));
  expect(obj).not.toBeNull();
  expect(obj!.ContentLength).toBe(want.size);
  expect(obj!.StorageClass).toBe(STORAGE_CLASS);
  expect(await bodySha256(bucket, keyOf(p))).toBe(want.sha256);
  const etag = obj!.ETag!.replace(/"/g, '');
  const node = await stack.client.getNode(MOUNT, p);
  expect(node).toMatchObject({ kind: 'file', state: 'ACTIVE', size: want.size, sha256: want.sha256, etag, storageClass: STORAGE_CLASS, versionId: null });
  if (want.version !== undefined) expect(node!.version).toBe(want.version);
  const [snap] = await stack.client.db
    .select()
    .from(snapshots)
    .where(and(eq(snapshots.journalId, r.journalId), eq(snapshots.mountId, MOUNT), eq(snapshots.path, p)));
  expect(snap).toMatchObject({ kind: 'file', state: 'ACTIVE', size: want.size, sha256: want.sha256, etag, storageClass: STORAGE_CLASS, version: node!.version });
  return { etag, obj: obj! };
}

test('write inline content: one PutObject, sha256 in its metadata, node + snapshot with size, ETag, sha256 and storage class', async () => {
  const r = await (await stack.client.put(MOUNT, 'notes/hello.txt', { content: 'hello s3\n' })).result();
  expect(r).toMatchObject({ status: 'COMMITTED', op: 'write', mountId: MOUNT, path: 'notes/hello.txt', bytesWritten: 9 });
  const { etag, obj } = await expectFileRecorded(r, 'notes/hello.txt', { size: 9, sha256: sha256('hello s3\n'), version: 1 });
  expect(etag).toMatch(/^[0-9a-f]{32}$/);
  expect(obj.Metadata?.sha256).toBe(sha256('hello s3\n'));
  // The missing parent is a prefix: catalogued as a directory, no marker object written for it.
  expect(await stack.client.getNode(MOUNT, 'notes')).toMatchObject({ kind: 'directory', state: 'ACTIVE' });
  expect(await keysUnder(bucket, `${PREFIX}/notes`)).toEqual([keyOf('notes/hello.txt')]);
  await expectClean(r, bucket, [keyOf('notes/hello.txt')]);
});

test('write from a file below the multipart threshold (one PutObject) and above it (a multipart upload of 5 MiB parts)', async () => {
  const small = path.join(stack.tmp, 'small.bin');
  const smallSha = await writeRandomFile(small, 4 * MiB + 3);
  const r1 = await (await stack.client.put(MOUNT, 'data/small.bin', { file: small })).result();
  const s = await expectFileRecorded(r1, 'data/small.bin', { size: 4 * MiB + 3, sha256: smallSha });
  expect(s.etag).not.toContain('-');
  await expectClean(r1, bucket, [keyOf('data/small.bin')]);

  const large = path.join(stack.tmp, 'large.bin');
  const size = 23 * MiB + 17;
  const largeSha = await writeRandomFile(large, size);
  const r2 = await (await stack.client.put(MOUNT, 'data/large.bin', { file: large })).result();
  expect(r2).toMatchObject({ bytesWritten: size });
  const l = await expectFileRecorded(r2, 'data/large.bin', { size, sha256: largeSha, version: 1 });
  // Five parts of 5 MiB (the last one 3 MiB + 17 bytes): S3's multipart ETag says how many.
  expect(l.etag).toMatch(/-5$/);
  expect(l.obj.Metadata?.sha256).toBe(largeSha);
  await expectClean(r2, bucket, [keyOf('data/large.bin')]);
});

test('overwrite: refused without overwrite; with it a new object, version 2, both snapshots kept, a multipart overwrite too', async () => {
  const first = await (await stack.client.put(MOUNT, 'over/doc.txt', { content: 'version one' })).result();
  const before = (await head(bucket, keyOf('over/doc.txt')))!.ETag;

  const refused = await stack.client.put(MOUNT, 'over/doc.txt', { content: 'nope' });
  await expect(refused.result()).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
  expect((await stack.client.getJournalEntry(refused.idempotencyKey))?.status).toBe('FAILED');
  expect(await bodySha256(bucket, keyOf('over/doc.txt'))).toBe(sha256('version one'));

  const second = await (await stack.client.put(MOUNT, 'over/doc.txt', { content: 'version two!' }, { overwrite: true })).result();
  const { etag } = await expectFileRecorded(second, 'over/doc.txt', { size: 12, sha256: sha256('version two!'), version: 2 });
  expect(`"${etag}"`).not.toBe(before);
  await expectClean(second, bucket, [keyOf('over/doc.txt')]);

  // Above the threshold: the multipart upload completes under If-Match on the planned ETag.
  const big = path.join(stack.tmp, 'over.bin');
  const bigSha = await writeRandomFile(big, 11 * MiB);
  const third = await (await stack.client.put(MOUNT, 'over/doc.txt', { file: big }, { overwrite: true })).result();
  const t = await expectFileRecorded(third, 'over/doc.txt', { size: 11 * MiB, sha256: bigSha, version: 3 });
  expect(t.etag).toMatch(/-3$/);
  await expectClean(third, bucket, [keyOf('over/doc.txt')]);

  const history = await stack.client.db
    .select()
    .from(snapshots)
    .where(and(eq(snapshots.mountId, MOUNT), eq(snapshots.path, 'over/doc.txt')))
    .orderBy(snapshots.version);
  expect(history.map((h) => [h.version, h.size, h.sha256, h.journalId])).toEqual([
    [1, 11, sha256('version one'), first.journalId],
    [2, 12, sha256('version two!'), second.journalId],
    [3, 11 * MiB, bigSha, third.journalId],
  ]);
});

test('mkdir writes a dir/ marker per missing directory it creates and catalogues each', async () => {
  const r = await (await stack.client.mkdir(MOUNT, 'a/b/c')).result();
  expect(r.node).toMatchObject({ path: 'a/b/c', kind: 'directory' });
  for (const d of ['a', 'a/b', 'a/b/c']) expect(await stack.client.getNode(MOUNT, d)).toMatchObject({ kind: 'directory', state: 'ACTIVE' });
  // The new leaf needs its marker to exist; its parents exist through it.
  expect(await keysUnder(bucket, `${PREFIX}/a/`)).toContain(`${PREFIX}/a/b/c/`);
  const snaps = await stack.client.db.select().from(snapshots).where(eq(snapshots.journalId, r.journalId));
  expect(snaps.map((s) => s.path).sort()).toEqual(['a', 'a/b', 'a/b/c']);
  await expectClean(r, bucket);

  await expect((await stack.client.mkdir(MOUNT, 'a/b/c', { parents: false })).result()).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
});

test('copy a file (server side): same bytes and sha256 at the target, with the mount storage class; source untouched', async () => {
  await (await stack.client.put(MOUNT, 'cp/src.txt', { content: 'copy me' })).result();
  const srcBefore = (await head(bucket, keyOf('cp/src.txt')))!.ETag;
  const r = await (await stack.client.copy(MOUNT, 'cp/src.txt', 'cp/dst.txt')).result();
  expect(r).toMatchObject({ op: 'copy', path: 'cp/src.txt', targetPath: 'cp/dst.txt' });
  await expectFileRecorded(r, 'cp/dst.txt', { size: 7, sha256: sha256('copy me'), version: 1 });
  expect((await head(bucket, keyOf('cp/src.txt')))!.ETag).toBe(srcBefore);
  expect(await stack.client.getNode(MOUNT, 'cp/src.txt')).toMatchObject({ state: 'ACTIVE', version: 1 });
  await expectClean(r, bucket, [keyOf('cp/dst.txt')]);

  // A multipart object copies too (CopyObject up to 5 GiB): its sha256 travels with it.
  const big = path.join(stack.tmp, 'copy-big.bin');
  const bigSha = await writeRandomFile(big, 7 * MiB);
  await (await stack.client.put(MOUNT, 'cp/big.bin', { file: big })).result();
  const r2 = await (await stack.client.copy(MOUNT, 'cp/big.bin', 'cp/big-copy.bin')).result();
  await expectFileRecorded(r2, 'cp/big-copy.bin', { size: 7 * MiB, sha256: bigSha });
  await expectClean(r2, bucket, [keyOf('cp/big-copy.bin')]);
});

test('move a file: copy + verify + delete; the source key is gone, its node DELETED, the target carries the hash', async () => {
  await (await stack.client.put(MOUNT, 'mv/src.txt', { content: 'move me' })).result();
  const r = await (await stack.client.move(MOUNT, 'mv/src.txt', 'mv/dst.txt')).result();
  expect(await head(bucket, keyOf('mv/src.txt'))).toBeNull();
  await expectFileRecorded(r, 'mv/dst.txt', { size: 7, sha256: sha256('move me') });
  expect(await stack.client.getNode(MOUNT, 'mv/src.txt')).toMatchObject({ state: 'DELETED', version: 2 });
  const snaps = await stack.client.db.select().from(snapshots).where(eq(snapshots.journalId, r.journalId));
  expect(snaps.map((s) => [s.path, s.state]).sort()).toEqual([
    ['mv/dst.txt', 'ACTIVE'],
    ['mv/src.txt', 'DELETED'],
  ]);
  // The directory the move emptied stays, as on a disk: a marker keeps it.
  expect(await stack.client.getNode(MOUNT, 'mv')).toMatchObject({ state: 'ACTIVE' });
  await expectClean(r, bucket, [keyOf('mv/dst.txt')]);
});

test('delete a file, refuse a non-empty directory, then delete a prefix recursively', async () => {
  await (await stack.client.put(MOUNT, 'rm/one.txt', { content: 'bye' })).result();
  await (await stack.client.put(MOUNT, 'rm/sub/two.txt', { content: 'bye bye' })).result();
  const one = await (await stack.client.remove(MOUNT, 'rm/one.txt')).result();
  expect(one.node).toBeNull();
  expect(await head(bucket, keyOf('rm/one.txt'))).toBeNull();
  expect(await stack.client.getNode(MOUNT, 'rm/one.txt')).toMatchObject({ state: 'DELETED' });
  await expectClean(one, bucket);

  const refused = stack.client.remove(MOUNT, 'rm');
  await expect((await refused).result()).rejects.toMatchObject({ code: 'DIRECTORY_NOT_EMPTY' });
  expect(await head(bucket, keyOf('rm/sub/two.txt'))).not.toBeNull();

  const tree = await (await stack.client.remove(MOUNT, 'rm', { recursive: true })).result();
  expect(await keysUnder(bucket, `${PREFIX}/rm/`)).toEqual([]);
  expect(await keysUnder(bucket, `${PREFIX}/rm`)).toEqual([]);
  for (const p of ['rm', 'rm/sub', 'rm/sub/two.txt']) expect(await stack.client.getNode(MOUNT, p)).toMatchObject({ state: 'DELETED' });
  expect(tree.nodesAffected).toBeGreaterThanOrEqual(3);
  await expectClean(tree, bucket);

  // A deleted path can be written again: the same row comes back ACTIVE with a new version.
  const again = await (await stack.client.put(MOUNT, 'rm/one.txt', { content: 'back' })).result();
  await expectFileRecorded(again, 'rm/one.txt', { size: 4, sha256: sha256('back'), version: 3 });
});

test('copy and move a prefix recursively: every object and marker follows with its sha256; then delete it', async () => {
  await (await stack.client.put(MOUNT, 'tree/a.txt', { content: 'alpha' })).result();
  await (await stack.client.put(MOUNT, 'tree/sub/b.txt', { content: 'beta' })).result();
  await (await stack.client.mkdir(MOUNT, 'tree/empty')).result();

  await expect((await stack.client.copy(MOUNT, 'tree', 'tree2')).result()).rejects.toMatchObject({ code: 'IS_A_DIRECTORY' });
  const copy = await (await stack.client.copy(MOUNT, 'tree', 'tree2', { recursive: true })).result();
  expect(await keysUnder(bucket, `${PREFIX}/tree2/`)).toEqual([`${PREFIX}/tree2/a.txt`, `${PREFIX}/tree2/empty/`, `${PREFIX}/tree2/sub/b.txt`]);
  expect(await keysUnder(bucket, `${PREFIX}/tree/`)).toEqual([`${PREFIX}/tree/a.txt`, `${PREFIX}/tree/empty/`, `${PREFIX}/tree/sub/b.txt`]);
  await expectFileRecorded(copy, 'tree2/a.txt', { size: 5, sha256: sha256('alpha') });
  await expectFileRecorded(copy, 'tree2/sub/b.txt', { size: 4, sha256: sha256('beta') });
  expect(await stack.client.getNode(MOUNT, 'tree2/empty')).toMatchObject({ kind: 'directory', state: 'ACTIVE' });
  expect(await stack.client.getNode(MOUNT, 'tree2/sub')).toMatchObject({ kind: 'directory', state: 'ACTIVE' });
  await expectClean(copy, bucket, [`${PREFIX}/tree2/a.txt`, `${PREFIX}/tree2/sub/b.txt`]);

  const move = await (await stack.client.move(MOUNT, 'tree2', 'tree3')).result();
  expect(await keysUnder(bucket, `${PREFIX}/tree2/`)).toEqual([]);
  expect(await keysUnder(bucket, `${PREFIX}/tree3/`)).toEqual([`${PREFIX}/tree3/a.txt`, `${PREFIX}/tree3/empty/`, `${PREFIX}/tree3/sub/b.txt`]);
  await expectFileRecorded(move, 'tree3/sub/b.txt', { size: 4, sha256: sha256('beta') });
  expect(await stack.client.getNode(MOUNT, 'tree2/sub/b.txt')).toMatchObject({ state: 'DELETED' });
  await expectClean(move, bucket);

  const del = await (await stack.client.remove(MOUNT, 'tree3', { recursive: true })).result();
  expect(await keysUnder(bucket, `${PREFIX}/tree3`)).toEqual([]);
  expect((await stack.client.listNodes(MOUNT, 'tree3', { recursive: true })).map((n) => n.path)).toEqual([]);
  await expectClean(del, bucket);
});

test('the heartbeat of a running multipart write carries { bytes, checkpoint: { uploadId, partSize } }', async () => {
  const src = path.join(stack.tmp, 'slow.bin');
  const size = 40 * MiB;
  const digest = await writeRandomFile(src, size);
  // Each part waits in the proxy before it reaches MinIO: the upload takes seconds, long enough to watch.
  proxy.hold = (r) => (r.action === 'UploadPart' ? new Promise((resolve) => setTimeout(resolve, 700)) : undefined);
  try {
    const handle = await stack.client.put(SLOW, 'slow.bin', { file: src });
    const seen = await waitFor(
      'progress with an upload checkpoint',
      async () => {
        const p = await handle.progress().catch(() => null);
        return p?.checkpoint ? p : null;
      },
      30_000,
      100,
    );
    expect(seen).toMatchObject({ activity: 'executeMutation', checkpoint: { uploadId: expect.any(String), partSize: 5 * MiB } });
    expect(seen.bytes).toBeGreaterThanOrEqual(0);
    expect(seen.bytes).toBeLessThanOrEqual(size);
    // The checkpoint names the upload S3 holds for the key right now.
    const open = await listUploadsForKey(slowBucket.client, slowBucket.bucket, 'slow.bin');
    expect(open.map((u) => u.uploadId)).toEqual([seen.checkpoint!.uploadId]);

    const r = await handle.result();
    expect(r.node).toMatchObject({ size, sha256: digest });
    expect(await bodySha256(slowBucket, 'slow.bin')).toBe(digest);
    const parts = proxy.requests.filter((q) => q.action === 'UploadPart' && q.key === 'slow.bin');
    expect(parts.map((q) => q.partNumber).sort((a, b) => a! - b!)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(new Set(parts.map((q) => q.uploadId))).toEqual(new Set([seen.checkpoint!.uploadId]));
    await expectClean(r, slowBucket, ['slow.bin']);
  } finally {
    proxy.hold = null;
  }
});
