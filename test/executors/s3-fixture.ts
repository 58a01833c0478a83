/**
 * What the S3Executor tests share: fresh mounts (a new prefix in a test bucket each), the
 * capabilities S3 declares, and raw access to the bucket that bypasses the executor (reading
 * objects, listing staging, listing unfinished multipart uploads).
 */
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { Capabilities, MountSpec, S3Location } from '../../src/executors/executor';
import { MemoryPlanStore } from '../../src/executors/plan-store';
import { S3Executor, type S3ExecutorOptions } from '../../src/executors/s3/s3-executor';
import type { S3Plan } from '../../src/executors/s3/s3-plan';
import type { TestBucket } from '../helpers/s3';

export const MiB = 1024 * 1024;

/** What S3Executor reports for an unversioned bucket. */
export const S3_CAPABILITIES: Capabilities = {
  atomicRename: false,
  serverSideCopy: true,
  multipart: true,
  posixMode: false,
  directories: false,
  conditionalCreate: true,
  versioning: false,
  maxKeyBytes: 1024,
  multipartLimits: { maxParts: 10_000, minPartBytes: 5 * MiB, maxPartBytes: 5 * 1024 * MiB },
};

let mounts = 0;

/** A fresh mount location: a new prefix in `b` (so every test also exercises the prefix mapping). */
export function freshLocation(b: TestBucket, extra: Partial<S3Location> = {}): S3Location {
  return { bucket: b.bucket, prefix: `m${++mounts}-${process.pid}/sub`, endpoint: b.endpoint, pathStyle: true, ...extra };
}

/** Opens an executor on `loc` with its own in-memory plan store (unless one is given). */
export async function openS3(loc: S3Location, opts: S3ExecutorOptions & { readOnly?: boolean } = {}): Promise<S3Executor> {
  const spec: MountSpec = { id: `s3-${mounts}`, kind: 's3', s3: loc, readOnly: opts.readOnly ?? false };
  return S3Executor.open(spec, { planStore: new MemoryPlanStore<S3Plan>(), ...opts });
}

/** The key of mount path `p`. */
export const keyOf = (loc: S3Location, p: string): string => (loc.prefix ? `${loc.prefix}/${p}` : p);

/** The bytes of `key`, or null when there is no such object. */
export async function readRaw(client: S3Client, bucket: string, key: string): Promise<Buffer | null> {
  try {
    const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await res.Body!.transformToByteArray());
  } catch (err) {
    if ((err as Error).name === 'NoSuchKey') return null;
    throw err;
  }
}

/** Every key under the mount's staging prefix. */
export async function stagingKeys(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const res = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix ? `${prefix}/` : ''}.filestore-staging/` }));
  return (res.Contents ?? []).map((o) => o.Key!);
}

/** Unfinished multipart uploads of exactly `key` (MinIO answers a prefix query only for a whole key). */
export async function uploadsOf(client: S3Client, bucket: string, key: string): Promise<string[]> {
  const res = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
  return (res.Uploads ?? []).filter((u) => u.Key === key).map((u) => u.UploadId!);
}
