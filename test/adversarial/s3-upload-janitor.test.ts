/**
 * Stale multipart uploads under an S3 mount cost storage until someone aborts them. The janitor
 * aborts those no PENDING transaction owns once older than FILESTORE_S3_UPLOAD_GRACE_MS — found by
 * the exact keys of recently ended transactions, since MinIO lists uploads only per key — and
 * leaves alone an upload on a path a PENDING transaction holds (its retry resumes it).
 */
import { CreateMultipartUploadCommand } from '@aws-sdk/client-s3';
import { addS3Mount } from '../../src/catalog/mounts';
import { listUploadsForKey } from '../../src/executors/s3/s3-multipart';
import { runJanitorPass } from '../../src/janitor';
import { ExecutorRegistry } from '../../src/executor-registry';
import { FencePool } from '../../activities/tx-fence';
import { journal } from '../../db/schema';
import { createTestBucket, testS3Endpoint, type TestBucket } from '../helpers/s3';
import { createTestStack, type TestStack } from '../helpers/stack';

let stack: TestStack;
let bucket: TestBucket;

beforeAll(async () => {
  stack = await createTestStack({ worker: true, config: { s3UploadGraceMs: 0, janitorIntervalMs: 3_600_000 } });
  bucket = await createTestBucket();
  await addS3Mount(stack.client.db, { id: 'sj', bucket: bucket.bucket, prefix: 'pre', endpoint: testS3Endpoint(), pathStyle: true });
});

afterAll(async () => {
  await stack?.teardown();
  await bucket?.cleanup();
});

async function startUpload(key: string): Promise<string> {
  const out = await bucket.client.send(new CreateMultipartUploadCommand({ Bucket: bucket.bucket, Key: key }));
  return out.UploadId!;
}

async function pass(): Promise<void> {
  const fences = new FencePool(stack.config.databaseUrl, { idleTimeoutMs: stack.config.fenceIdleTimeoutMs });
  try {
    await runJanitorPass({
      db: stack.client.db,
      executors: new ExecutorRegistry(stack.client.db),
      fences,
      temporal: stack.client.temporal,
      serves: () => false,
      graceMs: 3_600_000,
      s3UploadGraceMs: 0,
    });
  } finally {
    await fences.close();
  }
}

test('an upload left by a dead attempt on an ended transaction is aborted; one on a PENDING path is kept', async () => {
  // A committed write of a.bin: its key is one the janitor asks about.
  await (await stack.client.put('sj', 'a.bin', { content: Buffer.from('hello') })).result();
  const orphan = await startUpload('pre/a.bin');
  // A PENDING transaction holds b.bin (as a live mutation would): its upload is its retry's.
  await stack.client.db.insert(journal).values({
    idempotencyKey: 'k-b',
    workflowId: 'filestore:sj:write:k-b',
    op: 'write',
    mountId: 'sj',
    path: 'b.bin',
    status: 'PENDING',
    request: {},
  } as typeof journal.$inferInsert);
  const live = await startUpload('pre/b.bin');
  await new Promise((r) => setTimeout(r, 20));

  await pass();

  expect((await listUploadsForKey(bucket.client, bucket.bucket, 'pre/a.bin')).map((u) => u.uploadId)).not.toContain(orphan);
  expect((await listUploadsForKey(bucket.client, bucket.bucket, 'pre/b.bin')).map((u) => u.uploadId)).toContain(live);
});
