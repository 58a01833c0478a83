/**
 * Server-side copy of an object larger than CopyObject takes (5 GiB): a multipart upload whose
 * parts are UploadPartCopy ranges of the source, each only while the source is still the version
 * planned (x-amz-copy-source-if-match). The upload is recorded (through `record`) before any
 * part is copied, so undo and finalize can abort it after a crash; a retry re-copies every part
 * into the same upload (no bytes pass through Filestore, so that costs the server, not us).
 */
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCopyCommand, type CompletedPart } from '@aws-sdk/client-s3';
import { PreconditionFailedError } from '../../errors';
import type { S3Bucket, WriteCondition } from './s3-bucket';
import { isNotFound, isPreconditionFailed, mapS3Error } from './s3-errors';
import type { ObjectRef, UploadRecord } from './s3-plan';

/** The largest object one CopyObject copies. */
export const MAX_COPY_OBJECT_BYTES = 5 * 1024 ** 3;
const MAX_PARTS = 10_000;
const MIN_PART = 5 * 1024 ** 2;
const MAX_PART = 5 * 1024 ** 3;

/** A part size for `size` bytes: the requested one within S3's bounds, grown until ≤ 10,000 parts. */
export function partCopySize(size: number, requested: number): number {
  let part = Math.min(Math.max(requested, MIN_PART), MAX_PART);
  if (Math.ceil(size / part) > MAX_PARTS) part = Math.ceil(size / MAX_PARTS / MIN_PART) * MIN_PART;
  return part;
}

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  });
  await Promise.all(workers);
}

/**
 * Copies `src` (≥ 5 GiB) to `dst` with part copies and completes under `condition`.
 *
 * @param existing - the upload recorded by an earlier attempt (its parts are copied again).
 * @param record - makes the new upload durable before any part is copied.
 */
export async function copyInParts(
  bucket: S3Bucket,
  src: { key: string; etag: string; size: number },
  dst: string,
  opts: {
    metadata: Record<string, string>;
    /** On CompleteMultipartUpload; null for a staging object of our own. */
    condition: WriteCondition | null;
    partSize: number;
    concurrency: number;
    existing: UploadRecord | null;
    record(upload: UploadRecord): Promise<void>;
    guard(): Promise<void>;
    signal?: AbortSignal;
    /** Send the mount's storage class / ACL / encryption. @defaultValue true */
    writeSettings?: boolean;
  },
): Promise<ObjectRef> {
  let upload = opts.existing && !opts.existing.closed && opts.existing.key === dst ? opts.existing : null;
  if (!upload) {
    await opts.guard();
    const created = await bucket.send({ key: dst }, () =>
      bucket.client.send(new CreateMultipartUploadCommand({ Bucket: bucket.name, Key: dst, Metadata: opts.metadata, ...(opts.writeSettings === false ? {} : bucket.writeParams()) })),
    );
    upload = { uploadId: created.UploadId!, partSize: partCopySize(src.size, opts.partSize), key: dst };
    await opts.record(upload);
  }
  const { uploadId, partSize } = upload;
  const count = Math.max(1, Math.ceil(src.size / partSize));
  const parts: CompletedPart[] = new Array(count);
  const source = `${bucket.name}/${src.key.split('/').map(encodeURIComponent).join('/')}`;
  try {
    await mapLimit(
      Array.from({ length: count }, (_, i) => i),
      opts.concurrency,
      async (i) => {
        opts.signal?.throwIfAborted();
        await opts.guard();
        const start = i * partSize;
        const end = Math.min(src.size, start + partSize) - 1;
        const res = await bucket.client.send(
          new UploadPartCopyCommand({
            Bucket: bucket.name,
            Key: dst,
            UploadId: uploadId,
            PartNumber: i + 1,
            CopySource: source,
            CopySourceIfMatch: `"${src.etag}"`,
            // An empty object is one empty part: no range can name it.
            ...(src.size > 0 ? { CopySourceRange: `bytes=${start}-${end}` } : {}),
          }),
          { abortSignal: opts.signal },
        );
        parts[i] = { PartNumber: i + 1, ETag: res.CopyPartResult?.ETag };
      },
    );
    await opts.guard();
    const cond = !opts.condition ? {} : 'ifNoneMatch' in opts.condition ? { IfNoneMatch: '*' } : { IfMatch: `"${opts.condition.ifMatch}"` };
    const done = await bucket.client.send(
      new CompleteMultipartUploadCommand({ Bucket: bucket.name, Key: dst, UploadId: uploadId, MultipartUpload: { Parts: parts }, ...cond }),
    );
    return { etag: (done.ETag ?? '').replace(/^"|"$/g, ''), versionId: done.VersionId ?? null };
  } catch (err) {
    if (isPreconditionFailed(err)) throw new PreconditionFailedError(JSON.stringify(dst), { key: dst });
    // The upload vanished (completed by a crashed attempt, or aborted): the caller checks for its own object.
    if (isNotFound(err)) throw Object.assign(new PreconditionFailedError(JSON.stringify(dst), { key: dst }), { cause: err });
    throw mapS3Error(err, { bucket: bucket.name, mountId: bucket.mountId, key: dst });
  }
}
