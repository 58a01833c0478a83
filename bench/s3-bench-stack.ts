/**
 * The private stack of bench/s3-bench.ts: createBenchStack's (Temporal dev server, fresh database,
 * in-process worker, client, local mount `bench`) plus an S3 server and a bucket of the run's own.
 *
 * The S3 server is a private MinIO (src/dev/minio-server.ts; data in a temp dir, generated root
 * credentials) unless FILESTORE_S3_ENDPOINT names one, whose credentials then come from the usual
 * AWS variables. Either way the credentials are put in this process's environment BEFORE the
 * Filestore stack starts, so the worker (and every child process) finds them through the standard
 * AWS provider chain, as S3 mounts require. `teardown()` empties and deletes the bucket, aborts any
 * multipart upload left in it, and stops what it started, in reverse.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { loadConfig } from '../src/config';
import { findMinio, startMinioServer } from '../src/dev/minio-server';
import { createBenchStack, type BenchStack } from './bench-stack';
import { log } from './bench-util';
import { addBenchS3Mount, s3Tuning, type S3Tuning } from './s3-bench-s3';

export interface S3Server {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** 'private MinIO' or 'FILESTORE_S3_ENDPOINT'. */
  kind: string;
}

export interface S3BenchStack extends BenchStack {
  s3: S3Server;
  bucket: string;
  /** An S3 client of the run (path style, the server's credentials) for the baselines and cleanup. */
  s3Client: S3Client;
  /** Part size, concurrency and multipart threshold of the S3 mounts (FILESTORE_S3_* or their defaults). */
  tuning: S3Tuning;
  /** The S3 mount the workflow writes to: `s3://<bucket>/wf`. */
  s3MountId: string;
  /** Registers another S3 mount on the run's bucket (e.g. one whose endpoint is a counting proxy). */
  addS3Mount(id: string, prefix: string, endpoint: string): Promise<void>;
}

async function startS3Server(cleanups: Array<{ what: string; fn: () => Promise<unknown> }>): Promise<S3Server> {
  const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const external = process.env.FILESTORE_S3_ENDPOINT;
  if (external) {
    const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
    const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
    if (!accessKeyId || !secretAccessKey) throw new Error('FILESTORE_S3_ENDPOINT is set: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must name its credentials');
    return { endpoint: external, accessKeyId, secretAccessKey, region, kind: 'FILESTORE_S3_ENDPOINT' };
  }
  const binary = findMinio(loadConfig(process.env));
  if (!binary) throw new Error('no MinIO binary (MINIO_PATH, .tools/bin/minio or PATH): run scripts/bootstrap.sh, or set FILESTORE_S3_ENDPOINT');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'filestore-bench-minio-'));
  cleanups.push({ what: 'remove the MinIO data dir', fn: () => fs.rm(dir, { recursive: true, force: true }) });
  log(`starting a private MinIO (${binary})`);
  const server = await startMinioServer({ binary, dataDir: path.join(dir, 'data'), logFile: path.join(dir, 'minio.log') });
  cleanups.push({ what: 'stop MinIO', fn: () => server.stop() });
  return { endpoint: server.endpoint, accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey, region, kind: 'private MinIO' };
}

/** Deletes every object and aborts every multipart upload in `bucket`, then the bucket itself. */
async function dropBucket(client: S3Client, bucket: string): Promise<void> {
  for (let token: string | undefined; ; ) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length) await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
    if (!page.IsTruncated) break;
    token = page.NextContinuationToken;
  }
  for (;;) {
    const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    for (const u of page.Uploads ?? []) await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key!, UploadId: u.UploadId! }));
    if (!page.IsTruncated) break;
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}

export async function createS3BenchStack(): Promise<S3BenchStack> {
  const cleanups: Array<{ what: string; fn: () => Promise<unknown> }> = [];
  const teardown = async () => {
    while (cleanups.length) {
      const { what, fn } = cleanups.pop()!;
      await fn().catch((err: Error) => log(`teardown: ${what} failed: ${err.message}`));
    }
  };
  try {
    const s3 = await startS3Server(cleanups);
    // Before the stack starts: the in-process worker's S3 clients read them through the provider chain.
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: s3.region });
    delete process.env.AWS_PROFILE;

    const s3Client = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
    cleanups.push({ what: 'close the S3 client', fn: async () => s3Client.destroy() });
    const bucket = `filestore-bench-${randomBytes(4).toString('hex')}`;
    await s3Client.send(new CreateBucketCommand({ Bucket: bucket }));
    cleanups.push({ what: `drop bucket ${bucket}`, fn: () => dropBucket(s3Client, bucket) });

    const base = await createBenchStack();
    cleanups.push({ what: 'tear down the Filestore stack', fn: () => base.teardown() });

    const addS3Mount = async (id: string, prefix: string, endpoint: string) => {
      await addBenchS3Mount(base.client, { id, bucket, prefix, endpoint, region: s3.region });
      await base.worker.refreshMounts();
    };
    const s3MountId = 's3';
    await addS3Mount(s3MountId, 'wf', s3.endpoint);
    log(`S3: ${s3.kind} at ${s3.endpoint}, bucket ${bucket}`);

    return { ...base, s3, bucket, s3Client, tuning: s3Tuning(base.config), s3MountId, addS3Mount, teardown };
  } catch (err) {
    await teardown();
    throw err;
  }
}
