/**
 * An out-of-band writer (a raw S3 client, not Filestore) puts an object between the moment a
 * mutation planned and the request that would replace it. The conditional request refuses it —
 * If-None-Match: * for a create (PutObject and CompleteMultipartUpload), If-Match on the planned
 * ETag for an overwrite, CopySourceIfMatch / If-Match on a copy or move source, If-Match on a
 * delete — so the mutation fails PRECONDITION_FAILED, is rolled back (journal FAILED or
 * ROLLED_BACK, never COMMITTED, never left PENDING), and the out-of-band object is exactly as its
 * writer left it; no staging object and no multipart upload survives.
 *
 * The write lands at an exact step through the S3 executor's `afterStep` seam: the worker's
 * activities get a registry whose executor for this mount is opened with it (the catalog's plan
 * store, the environment's transfer settings — as the worker's own registry opens it).
 */
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { createActivities } from '../../activities';
import { getMount, mountSpecOf } from '../../src/catalog/mounts';
import { catalogPlanStore } from '../../src/catalog/plans';
import { errorLine } from '../../src/cli/main';
import { loadConfig } from '../../src/config';
import { s3OptionsOf } from '../../src/executors';
import type { Executor, MutationOp } from '../../src/executors/executor';
import type { ExecutorRegistry } from '../../src/executor-registry';
import { S3Executor } from '../../src/executors/s3/s3-executor';
import { listUploadsForKey } from '../../src/executors/s3/s3-multipart';
import type { MutationHandle } from '../../src/client';
import { sha256, writeRandomFile } from '../helpers/files';
import type { TestBucket } from '../helpers/s3';
import { createTestStack, type TestStack } from '../helpers/stack';

const MiB = 1024 * 1024;
process.env.FILESTORE_S3_MULTIPART_THRESHOLD = String(5 * MiB);
process.env.FILESTORE_S3_PART_SIZE = String(5 * MiB);

const MOUNT = 'oob';
const PREFIX = 'root';

/** What runs at a step of a mutation of this mount: set per test, fired once. */
let atStep: { op: MutationOp; step: string; run: () => Promise<void> } | null = null;
const stepsSeen: string[] = [];
/** What runs after execute and before verify of the mutation of `path` (once). */
let beforeVerify: { path: string; run: () => Promise<void> } | null = null;

let stack: TestStack;
let bucket: TestBucket;

beforeAll(async () => {
  stack = await createTestStack({
    activities: (deps) => {
      let seamed: Promise<Executor> | null = null;
      const registry = {
        get: (id: string): Promise<Executor> => {
          if (id !== MOUNT) return deps.executors.get(id);
          seamed ??= (async () =>
            S3Executor.open(mountSpecOf(await getMount(deps.db, MOUNT)), {
              ...s3OptionsOf(loadConfig()),
              planStore: catalogPlanStore(deps.db, MOUNT),
              afterStep: async (step, ctx) => {
                stepsSeen.push(`${ctx.op}:${step}`);
                const hook = atStep;
                if (hook && hook.op === ctx.op && hook.step === step) {
                  atStep = null;
                  await hook.run();
                }
              },
            }))();
          return seamed;
        },
      } as unknown as ExecutorRegistry;
      const real = createActivities({ ...deps, executors: registry });
      return {
        ...real,
        verifyMutation: async (input) => {
          const hook = beforeVerify;
          if (hook && input.request.path === hook.path) {
            beforeVerify = null;
            await hook.run();
          }
          return real.verifyMutation(input);
        },
      };
    },
  });
  bucket = await stack.addS3Mount(MOUNT, { prefix: PREFIX });
}, 120_000);

afterAll(async () => stack?.teardown());

const keyOf = (p: string) => `${PREFIX}/${p}`;

/** PutObject by a raw client, as someone working around Filestore would. */
async function outOfBand(p: string, body: string): Promise<{ etag: string; sha256: string }> {
  const res = await bucket.client.send(new PutObjectCommand({ Bucket: bucket.bucket, Key: keyOf(p), Body: body }));
  return { etag: res.ETag!, sha256: sha256(body) };
}

async function objectAt(p: string): Promise<{ etag: string; sha256: string; metadata: Record<string, string> } | null> {
  try {
    const res = await bucket.client.send(new GetObjectCommand({ Bucket: bucket.bucket, Key: keyOf(p) }));
    const hash = createHash('sha256');
    for await (const chunk of res.Body as Readable) hash.update(chunk as Buffer);
    return { etag: res.ETag!, sha256: hash.digest('hex'), metadata: res.Metadata ?? {} };
  } catch (err) {
    if ((err as Error).name === 'NoSuchKey') return null;
    throw err;
  }
}

async function stagingLeft(): Promise<string[]> {
  const page = await bucket.client.send(new ListObjectsV2Command({ Bucket: bucket.bucket, Prefix: `${PREFIX}/.filestore-staging/` }));
  return (page.Contents ?? []).map((o) => o.Key!);
}

/** The mutation was refused PRECONDITION_FAILED in one line and ended (not COMMITTED, not PENDING) with that error. */
async function expectRefused(handle: MutationHandle): Promise<void> {
  const err = await handle.result().then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toMatchObject({ code: 'PRECONDITION_FAILED', retryable: false });
  const line = errorLine(err);
  expect(line).toMatch(/^PRECONDITION_FAILED: /);
  expect(line).not.toContain('\n');
  const entry = await stack.client.getJournalEntry(handle.idempotencyKey);
  expect(entry?.status).toMatch(/^(FAILED|ROLLED_BACK)$/);
  expect(entry?.error).toMatchObject({ code: 'PRECONDITION_FAILED' });
  expect(await stack.client.listJournal({ mountId: MOUNT, status: 'PENDING' })).toEqual([]);
  expect(await stagingLeft()).toEqual([]);
}

test('create (one PutObject, If-None-Match: *): a writer that raced in after planning keeps its object', async () => {
  let theirs: { etag: string; sha256: string } | null = null;
  atStep = { op: 'write', step: 'opened', run: async () => void (theirs = await outOfBand('new.txt', 'written around Filestore')) };
  const handle = await stack.client.put(MOUNT, 'new.txt', { content: 'from filestore' });
  await expectRefused(handle);
  expect(theirs).not.toBeNull();
  expect(await objectAt('new.txt')).toMatchObject({ etag: theirs!.etag, sha256: theirs!.sha256 });
  // Nothing was committed for the path.
  expect((await stack.client.getNode(MOUNT, 'new.txt'))?.state ?? null).not.toBe('ACTIVE');
});

test('create above the multipart threshold: CompleteMultipartUpload (If-None-Match: *) refused, the upload aborted', async () => {
  const src = path.join(stack.tmp, 'create-big.bin');
  await writeRandomFile(src, 12 * MiB);
  let theirs: { etag: string; sha256: string } | null = null;
  atStep = { op: 'write', step: 'opened', run: async () => void (theirs = await outOfBand('big.bin', 'small, but first')) };
  const handle = await stack.client.put(MOUNT, 'big.bin', { file: src });
  await expectRefused(handle);
  expect(await objectAt('big.bin')).toMatchObject({ etag: theirs!.etag, sha256: theirs!.sha256 });
  expect(await listUploadsForKey(bucket.client, bucket.bucket, keyOf('big.bin'))).toEqual([]);
});

test('overwrite (one PutObject, If-Match on the planned ETag): the out-of-band version survives, the catalog keeps ours', async () => {
  const v1 = await (await stack.client.put(MOUNT, 'doc.txt', { content: 'version one' })).result();
  let theirs: { etag: string; sha256: string } | null = null;
  // After the backup copy of version one, right before the PutObject that would replace it.
  atStep = { op: 'write', step: 'backup-taken', run: async () => void (theirs = await outOfBand('doc.txt', 'their version')) };
  const handle = await stack.client.put(MOUNT, 'doc.txt', { content: 'version two' }, { overwrite: true });
  await expectRefused(handle);
  expect(await objectAt('doc.txt')).toMatchObject({ etag: theirs!.etag, sha256: theirs!.sha256 });
  // The catalog still records what Filestore committed (the watcher reports the drift, not this mutation).
  expect(await stack.client.getNode(MOUNT, 'doc.txt')).toMatchObject({ version: 1, sha256: sha256('version one'), lastJournalId: v1.journalId });
});

test('overwrite above the multipart threshold: CompleteMultipartUpload (If-Match) refused, the upload aborted', async () => {
  await (await stack.client.put(MOUNT, 'big-doc.bin', { content: 'small first version' })).result();
  const src = path.join(stack.tmp, 'overwrite-big.bin');
  await writeRandomFile(src, 11 * MiB);
  let theirs: { etag: string; sha256: string } | null = null;
  atStep = { op: 'write', step: 'backup-taken', run: async () => void (theirs = await outOfBand('big-doc.bin', 'theirs again')) };
  const handle = await stack.client.put(MOUNT, 'big-doc.bin', { file: src }, { overwrite: true });
  await expectRefused(handle);
  expect(await objectAt('big-doc.bin')).toMatchObject({ etag: theirs!.etag, sha256: theirs!.sha256 });
  expect(await listUploadsForKey(bucket.client, bucket.bucket, keyOf('big-doc.bin'))).toEqual([]);
  expect(await stack.client.getNode(MOUNT, 'big-doc.bin')).toMatchObject({ version: 1, sha256: sha256('small first version') });
});

test('overwrite where the writer comes before the backup copy: the copy (CopySourceIfMatch) refuses to take theirs for ours', async () => {
  await (await stack.client.put(MOUNT, 'early.txt', { content: 'mine' })).result();
  let theirs: { etag: string; sha256: string } | null = null;
  atStep = { op: 'write', step: 'plan-saved', run: async () => void (theirs = await outOfBand('early.txt', 'theirs, early')) };
  await expectRefused(await stack.client.put(MOUNT, 'early.txt', { content: 'mine, again' }, { overwrite: true }));
  expect(await objectAt('early.txt')).toMatchObject({ etag: theirs!.etag, sha256: theirs!.sha256 });
});

test('copy onto a target someone creates meanwhile: refused, their object stays, the source is untouched', async () => {
  await (await stack.client.put(MOUNT, 'cp-src.txt', { content: 'copy source' })).result();
  let theirs: { etag: string; sha256: string } | null = null;
  atStep = { op: 'copy', step: 'opened', run: async () => void (theirs = await outOfBand('cp-dst.txt', 'claimed first')) };
  await expectRefused(await stack.client.copy(MOUNT, 'cp-src.txt', 'cp-dst.txt'));
  expect(await objectAt('cp-dst.txt')).toMatchObject({ etag: theirs!.etag, sha256: theirs!.sha256 });
  expect((await objectAt('cp-src.txt'))?.sha256).toBe(sha256('copy source'));
});

test('move whose source is rewritten after the copy landed: the delete (If-Match) is refused, their source stays, our copy goes', async () => {
  await (await stack.client.put(MOUNT, 'mv-src.txt', { content: 'move me' })).result();
  let theirs: { etag: string; sha256: string } | null = null;
  // `committed` of a move is reported once the copy landed, before the source is deleted.
  atStep = { op: 'move', step: 'committed', run: async () => void (theirs = await outOfBand('mv-src.txt', 'rewritten source')) };
  await expectRefused(await stack.client.move(MOUNT, 'mv-src.txt', 'mv-dst.txt'));
  expect(await objectAt('mv-src.txt')).toMatchObject({ etag: theirs!.etag, sha256: theirs!.sha256 });
  expect(await objectAt('mv-dst.txt')).toBeNull();
  expect(await stack.client.getNode(MOUNT, 'mv-src.txt')).toMatchObject({ state: 'ACTIVE', sha256: sha256('move me') });
});

test('delete of a file rewritten after planning: refused (If-Match), the new content survives', async () => {
  await (await stack.client.put(MOUNT, 'rm.txt', { content: 'delete me' })).result();
  let theirs: { etag: string; sha256: string } | null = null;
  atStep = { op: 'delete', step: 'backup-taken', run: async () => void (theirs = await outOfBand('rm.txt', 'do not delete me')) };
  await expectRefused(await stack.client.remove(MOUNT, 'rm.txt'));
  expect(await objectAt('rm.txt')).toMatchObject({ etag: theirs!.etag, sha256: theirs!.sha256 });
  expect(await stack.client.getNode(MOUNT, 'rm.txt')).toMatchObject({ state: 'ACTIVE' });
});

test('a writer that replaces our object after it landed, before verify: the mutation is not committed, their object stays', async () => {
  let theirs: { etag: string; sha256: string } | null = null;
  beforeVerify = { path: 'late.txt', run: async () => void (theirs = await outOfBand('late.txt', 'replaced right after Filestore wrote')) };
  const handle = await stack.client.put(MOUNT, 'late.txt', { content: 'ours, briefly' });
  const err = await handle.result().then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toMatchObject({ code: 'VERIFICATION_FAILED' });
  expect(errorLine(err)).not.toContain('\n');
  const entry = await stack.client.getJournalEntry(handle.idempotencyKey);
  expect(entry?.status).toMatch(/^(FAILED|ROLLED_BACK)$/);
  // Undo removes only its own object: theirs is not ours to take away.
  expect(await objectAt('late.txt')).toMatchObject({ etag: theirs!.etag, sha256: theirs!.sha256 });
  expect((await stack.client.getNode(MOUNT, 'late.txt'))?.state ?? null).not.toBe('ACTIVE');
  expect(await stagingLeft()).toEqual([]);
}, 120_000);

/** Runs a tree mutation with one object rewritten out of band once every object was copied (its batch is next). */
async function rewriteMidTree(op: 'delete' | 'move', run: (dir: string) => Promise<MutationHandle>) {
  const dir = `${op}-tree-${randomBytes(2).toString('hex')}`;
  await (await stack.client.put(MOUNT, `${dir}/a.txt`, { content: 'a' })).result();
  await (await stack.client.put(MOUNT, `${dir}/b.txt`, { content: 'b' })).result();
  let theirs: { etag: string; sha256: string } | null = null;
  atStep = { op, step: 'batch-copied', run: async () => void (theirs = await outOfBand(`${dir}/b.txt`, 'b, rewritten out of band')) };
  const handle = await run(dir);
  const outcome = await handle.result().then(
    () => 'COMMITTED',
    (e: { code?: string }) => e.code,
  );
  expect(theirs).not.toBeNull();
  const object = await objectAt(`${dir}/b.txt`);
  return { dir, theirs: theirs!, outcome, object: object && { etag: object.etag, sha256: object.sha256 }, node: await stack.client.getNode(MOUNT, `${dir}/b.txt`) };
}

// Found here (fixed in s3-tree-delete.ts): the delete phase of a prefix delete / move used to send
// DeleteObjects for every key it backed up or copied with no check of the ETag it copied, so an
// object rewritten in between was deleted and the mutation COMMITTED. Now each batch's keys are
// compared with the ETags recorded when they were copied: refused (PRECONDITION_FAILED), the
// rewrite intact, as for a single file.
test('recursive delete of a prefix with one object rewritten between its backup and its deletion: the rewrite is not destroyed', async () => {
  const r = await rewriteMidTree('delete', (dir) => stack.client.remove(MOUNT, dir, { recursive: true }));
  expect({ outcome: r.outcome, object: r.object }).toEqual({ outcome: 'PRECONDITION_FAILED', object: r.theirs });
  expect(r.node).toMatchObject({ state: 'ACTIVE' });
  expect(await stagingLeft()).toEqual([]);
});

test('move of a prefix with one source rewritten between its copy and its deletion: the rewrite is not destroyed', async () => {
  const r = await rewriteMidTree('move', (dir) => stack.client.move(MOUNT, dir, `${dir}-moved`));
  expect({ outcome: r.outcome, object: r.object }).toEqual({ outcome: 'PRECONDITION_FAILED', object: r.theirs });
  expect(await objectAt(`${r.dir}-moved/b.txt`)).toBeNull();
  expect(await stagingLeft()).toEqual([]);
});

test('afterwards: no PENDING entry and no staging anywhere in the mount; the out-of-band objects carry no Filestore tag', async () => {
  expect(await stack.client.listJournal({ mountId: MOUNT, status: 'PENDING' })).toEqual([]);
  expect(await stagingLeft()).toEqual([]);
  const head = await bucket.client.send(new HeadObjectCommand({ Bucket: bucket.bucket, Key: keyOf('doc.txt') }));
  expect(head.Metadata?.['filestore-tx']).toBeUndefined();
  expect(stepsSeen.length).toBeGreaterThan(0);
});
