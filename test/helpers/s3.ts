/**
 * The integration tests' S3: the one MinIO global-setup.ts starts for the run (or the server at
 * FILESTORE_TEST_S3_ENDPOINT), a unique bucket per caller, and the Toxiproxy binary for
 * connection faults. Credentials travel in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION,
 * as they would for a worker on AWS.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  S3Client,
  type ObjectIdentifier,
} from '@aws-sdk/client-s3';

/** The run's S3 endpoint (set by global-setup.ts). */
export function testS3Endpoint(): string {
  const endpoint = process.env.FILESTORE_TEST_S3_ENDPOINT;
  if (!endpoint) throw new Error('FILESTORE_TEST_S3_ENDPOINT is not set: integration tests get it from test/helpers/global-setup.ts');
  return endpoint;
}

/** An S3 client for the run's server: path style, credentials and region from the environment. */
export function testS3Client(endpoint = testS3Endpoint()): S3Client {
  return new S3Client({ endpoint, forcePathStyle: true, region: process.env.AWS_REGION ?? 'us-east-1' });
}

export interface TestBucket {
  bucket: string;
  endpoint: string;
  client: S3Client;
  /** Empties the bucket (every object version, delete marker and unfinished multipart upload), deletes it and closes the client. Idempotent. */
  cleanup(): Promise<void>;
}

/**
 * A new bucket on the run's server, named `<prefix>-<random>` (lower case, ≤ 63 characters), so
 * test files running at once never share one.
 */
export async function createTestBucket(prefix = 'fs-test'): Promise<TestBucket> {
  const slug = prefix.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'fs-test';
  const bucket = `${slug}-${randomBytes(6).toString('hex')}`;
  const endpoint = testS3Endpoint();
  const client = testS3Client(endpoint);
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  let cleaned = false;
  return {
    bucket,
    endpoint,
    client,
    cleanup: async () => {
      if (cleaned) return;
      await emptyBucket(client, bucket);
      await client.send(new DeleteBucketCommand({ Bucket: bucket })).catch((err: Error) => {
        if (err.name !== 'NoSuchBucket') throw err;
      });
      cleaned = true;
      client.destroy();
    },
  };
}

/** Aborts every unfinished multipart upload and deletes every object version and delete marker in `bucket`. */
export async function emptyBucket(client: S3Client, bucket: string): Promise<void> {
  try {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      for (const u of page.Uploads ?? []) {
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key!, UploadId: u.UploadId! })).catch((err: Error) => {
          if (err.name !== 'NoSuchUpload') throw err;
        });
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);

    // Versions, not just current objects: a test may turn versioning on, and a versioned bucket
    // with noncurrent versions or delete markers left cannot be deleted.
    let versionKeyMarker: string | undefined;
    let versionIdMarker: string | undefined;
    do {
      const page = await client.send(new ListObjectVersionsCommand({ Bucket: bucket, KeyMarker: versionKeyMarker, VersionIdMarker: versionIdMarker }));
      const ids: ObjectIdentifier[] = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => ({ Key: v.Key!, VersionId: v.VersionId }));
      for (let i = 0; i < ids.length; i += 1000) {
        const res = await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: ids.slice(i, i + 1000), Quiet: true } }));
        if (res.Errors?.length) throw new Error(`emptying ${bucket}: ${res.Errors.map((e) => `${e.Key}: ${e.Code}`).join(', ')}`);
      }
      versionKeyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      versionIdMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
    } while (versionKeyMarker);
  } catch (err) {
    if ((err as Error).name === 'NoSuchBucket') return;
    throw err;
  }
}

/** The Toxiproxy server binary (TOXIPROXY_PATH, else .tools/bin/toxiproxy-server, built by scripts/bootstrap.sh). */
export function toxiproxyBinary(): string {
  const candidate = process.env.TOXIPROXY_PATH || path.join(__dirname, '..', '..', '.tools', 'bin', 'toxiproxy-server');
  if (!fs.existsSync(candidate)) throw new Error(`Toxiproxy not found at ${candidate}: run scripts/bootstrap.sh or set TOXIPROXY_PATH`);
  return candidate;
}
