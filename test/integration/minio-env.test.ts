/**
 * The run's S3 server is a real MinIO with what the S3 executor relies on: unique buckets per
 * caller that clean up fully, per-part SHA-256 checksums returned by ListParts (resumable uploads
 * check stored parts against the source with them), and enforced conditional writes.
 */
import { createHash } from 'node:crypto';
import {
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { createTestBucket, toxiproxyBinary, type TestBucket } from '../helpers/s3';

const buckets: TestBucket[] = [];
async function bucket(prefix?: string): Promise<TestBucket> {
  const b = await createTestBucket(prefix);
  buckets.push(b);
  return b;
}
afterAll(async () => {
  for (const b of buckets) await b.cleanup();
});

const sha256b64 = (data: Buffer | string) => createHash('sha256').update(data).digest('base64');

test('the run has an S3 endpoint and AWS credentials in the environment', () => {
  expect(process.env.FILESTORE_TEST_S3_ENDPOINT).toMatch(/^https?:\/\//);
  expect(process.env.AWS_ACCESS_KEY_ID).toBeTruthy();
  expect(process.env.AWS_SECRET_ACCESS_KEY).toBeTruthy();
  expect(process.env.AWS_REGION).toBeTruthy();
});

test('createTestBucket: unique buckets; put and get an object', async () => {
  const a = await bucket('Env Test');
  const b = await bucket('Env Test');
  expect(a.bucket).not.toBe(b.bucket);
  expect(a.bucket).toMatch(/^env-test-[0-9a-f]{12}$/);

  await a.client.send(new PutObjectCommand({ Bucket: a.bucket, Key: 'dir/hello.txt', Body: 'hello s3\n' }));
  const got = await a.client.send(new GetObjectCommand({ Bucket: a.bucket, Key: 'dir/hello.txt' }));
  expect(await got.Body!.transformToString()).toBe('hello s3\n');
});

test('ListParts returns each stored part with its SHA-256 checksum', async () => {
  const { bucket: name, client } = await bucket('parts');
  const key = 'big/object.bin';
  const parts = [Buffer.alloc(5 * 1024 * 1024, 1), Buffer.alloc(1024, 2)]; // every part but the last is ≥ 5 MiB
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: name, Key: key, ChecksumAlgorithm: 'SHA256' }));
  for (const [i, body] of parts.entries()) {
    await client.send(new UploadPartCommand({ Bucket: name, Key: key, UploadId, PartNumber: i + 1, Body: body, ChecksumSHA256: sha256b64(body) }));
  }
  const listed = await client.send(new ListPartsCommand({ Bucket: name, Key: key, UploadId }));
  expect(listed.Parts?.map((p) => ({ n: p.PartNumber, size: p.Size, sha: p.ChecksumSHA256 }))).toEqual(
    parts.map((body, i) => ({ n: i + 1, size: body.length, sha: sha256b64(body) })),
  );
  // The upload is left unfinished on purpose: cleanup() must abort it before deleting the bucket.
});

test('conditional writes are enforced: If-None-Match: * on an existing key is refused with 412', async () => {
  const { bucket: name, client } = await bucket('cond');
  await client.send(new PutObjectCommand({ Bucket: name, Key: 'k', Body: 'one', IfNoneMatch: '*' }));
  await expect(client.send(new PutObjectCommand({ Bucket: name, Key: 'k', Body: 'two', IfNoneMatch: '*' }))).rejects.toMatchObject({
    $metadata: { httpStatusCode: 412 },
  });
});

test('cleanup empties (objects and unfinished uploads) and deletes the bucket, and may run twice', async () => {
  const b = await createTestBucket('gone');
  await b.client.send(new PutObjectCommand({ Bucket: b.bucket, Key: 'a', Body: 'a' }));
  await b.client.send(new CreateMultipartUploadCommand({ Bucket: b.bucket, Key: 'pending' }));
  const probe = (await createTestBucket('probe'));
  buckets.push(probe);
  await b.cleanup();
  await b.cleanup();
  await expect(probe.client.send(new HeadBucketCommand({ Bucket: b.bucket }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
});

test('the Toxiproxy server binary for connection faults is installed', () => {
  expect(toxiproxyBinary()).toMatch(/toxiproxy-server$/);
});
