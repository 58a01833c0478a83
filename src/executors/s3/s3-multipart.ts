/**
 * Resumable multipart uploads to S3. A file source is hashed first (its sha256 goes into the
 * object's metadata, which S3 fixes at CreateMultipartUpload), then sent in parts, each with its
 * SHA256 checksum so S3 verifies the bytes in flight. The `{ uploadId, partSize, key }` checkpoint
 * is saved durably before any part is sent; a retry with it — on any worker, after kill -9 — lists
 * the parts S3 already holds, keeps those whose size and checksum match the same range of the
 * source (re-read locally, never re-sent), sends only the rest and completes. Stream sources go
 * through lib-storage (s3-stream-upload.ts) without resume.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type CreateMultipartUploadCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { InternalError, InvalidRequestError, PayloadTooLargeError, SourceChangedError } from '../../errors';
import { s3MultipartInFlight, s3Parts, s3UploadedBytes } from '../../metrics';
import { countS3RequestErrors, isNoSuchUpload, isNotFound, isPreconditionFailed, mapS3Error } from './s3-errors';
import { hashSource, layoutIfValid, partLayout, partRange, readFully, sourceStamp, type PartLayout, type SourceDigest } from './s3-part-source';
import { uploadStream } from './s3-stream-upload';
import { abortMultipart, listAllParts } from './s3-upload-ops';

export { abortMultipart, listAllParts, listUploadsForKey } from './s3-upload-ops';

import type { MultipartResult, UploadMultipartArgs } from './s3-upload-types';

export type { MultipartCheckpoint, MultipartPutParams, MultipartResult, UploadMultipartArgs } from './s3-upload-types';

/** Object metadata key (x-amz-meta-sha256) holding the whole-object sha256, hex. */
export const SHA256_METADATA_KEY = 'sha256';

/**
 * Uploads `source` to `bucket`/`key` as a multipart upload, resuming the one named by
 * `checkpoint` when there is one.
 *
 * File sources: the whole file is hashed first (one sequential pass; `maxBytes` and
 * `expectedSha256` are checked before anything is sent) and the sha256 is stored in the object's
 * metadata (`x-amz-meta-sha256`). A checkpoint is resumed when its key is this key, its part
 * size is one S3 accepts for this size (it is then kept, even if `partSize` changed since, so a
 * resume never re-sends because of a configuration change) and its sha256 (if it has one) is the
 * source's; otherwise its upload is aborted once the new checkpoint is saved. If its upload is gone, an object already at the key with this
 * sha256 and size is taken as this upload's own completion (a crash after Complete); otherwise a
 * new upload starts.
 *
 * Stream sources: see {@link uploadStream} — no resume, and no sha256 in the object's metadata.
 *
 * A 412 on Complete is PRECONDITION_FAILED (permanent) and the upload is left in place: the
 * executor's undo, which holds the checkpoint, aborts it. A vanished upload or a refused part
 * list is retryable (see {@link RECOVERED_BY_RETRY}); other failures are typed by the S3 error table
 * (s3-errors.ts): retryable for 5xx, SlowDown, throttling and network errors.
 */
export async function uploadMultipart(args: UploadMultipartArgs): Promise<MultipartResult> {
  // Every request of the upload (lib-storage's too) is counted by the client, once.
  countS3RequestErrors(args.client);
  try {
    if (args.source.kind === 'stream') return await uploadStream({ ...args, stream: args.source.stream });
    return await uploadFile(args, args.source.fh, args.source.size);
  } catch (err) {
    throw uploadFailure(err, args);
  }
}

/**
 * S3 codes the table (s3-errors.ts) calls permanent — NoSuchUpload is NOT_FOUND, InvalidPart
 * INVALID_REQUEST, true of the request — but that a retry of {@link uploadMultipart} recovers
 * from, so for an upload they are BACKEND_IO (retryable):
 * - NoSuchUpload (the upload was aborted under us — the janitor, an undo — or completed by an
 *   attempt whose answer was lost and the object is not ours): the retry's ListParts finds it
 *   gone, takes an object already completed with our sha256 as ours, else starts a new upload.
 * - InvalidPart (Complete named a part S3 no longer holds with that ETag): the retry re-lists the
 *   parts, keeps only those whose checksum matches the source, and sends the rest again.
 * A stream upload (lib-storage) starts over on a retry either way.
 */
const RECOVERED_BY_RETRY = ['NoSuchUpload', 'InvalidPart'] as const;

function uploadFailure(err: unknown, args: UploadMultipartArgs): unknown {
  return mapS3Error(err, { bucket: args.bucket, key: args.key, what: `s3://${args.bucket}/${args.key}` }, { retryableCodes: RECOVERED_BY_RETRY });
}

async function uploadFile(args: UploadMultipartArgs, fh: FileHandle, size: number): Promise<MultipartResult> {
  const { client, bucket, key, checkpoint, signal, guard } = args;
  signal?.throwIfAborted();
  if (args.maxBytes !== undefined && size > args.maxBytes) {
    throw new PayloadTooLargeError(`content is ${size} bytes, more than the limit of ${args.maxBytes}`, { maxBytes: args.maxBytes, size });
  }
  const stampBefore = await sourceStamp(fh);
  if (stampBefore.size !== size) throw new SourceChangedError(`the source file is no longer ${size} bytes long`, { size });

  const reusable = checkpoint && checkpoint.key === key ? layoutIfValid(size, checkpoint.partSize) : null;
  const layout: PartLayout = reusable ?? partLayout(size, args.partSize);
  // Part digests are needed only to check parts S3 already holds.
  const digest = await hashSource(fh, layout, { withParts: reusable !== null, guard, signal });
  if (args.expectedSha256 !== undefined && digest.sha256 !== args.expectedSha256.toLowerCase()) {
    throw new InvalidRequestError(`content hashes to ${digest.sha256}, not the expected ${args.expectedSha256}`, { key });
  }
  // The upload's metadata holds the sha256 of the source when it was created: other content now
  // (the file was rewritten between attempts) cannot complete under it.
  const resumable = reusable !== null && (checkpoint?.sha256 === undefined || checkpoint.sha256 === digest.sha256);

  let uploadId: string | null = null;
  const kept = new Map<number, CompletedPart>();
  if (checkpoint && resumable) {
    try {
      const stored = await listAllParts(client, bucket, key, checkpoint.uploadId, { signal });
      uploadId = checkpoint.uploadId;
      for (const p of stored) {
        const n = p.PartNumber ?? 0;
        if (n < 1 || n > layout.count || !p.ETag) continue;
        const sameSize = p.Size === partRange(layout, n).length;
        const sameBytes = p.ChecksumSHA256 === digest.parts![n - 1].toString('base64');
        if (sameSize && sameBytes) kept.set(n, { PartNumber: n, ETag: p.ETag, ChecksumSHA256: p.ChecksumSHA256 });
      }
    } catch (err) {
      if (!isNoSuchUpload(err)) throw err;
      // Gone: completed by an attempt that crashed before recording it, or aborted.
      const done = await findOwnObject(client, bucket, key, digest.sha256, size, signal);
      if (done) return { ...done, sha256: digest.sha256, size, partsUploaded: 0, partsReused: 0, bytesSent: 0 };
    }
  }

  if (!uploadId) {
    await guard();
    uploadId = await createUpload(args, digest.sha256);
    try {
      await args.saveCheckpoint({ uploadId, partSize: layout.partSize, key, sha256: digest.sha256 });
    } catch (err) {
      // Nobody else knows this upload id: leave no orphan behind.
      await abortMultipart(client, bucket, key, uploadId).catch(() => undefined);
      throw err;
    }
    // A checkpoint for another key, an unusable part size or other content is replaced; its upload goes.
    if (checkpoint && checkpoint.uploadId !== uploadId && !resumable) {
      await abortMultipart(client, bucket, checkpoint.key, checkpoint.uploadId).catch(() => undefined);
    }
  }

  s3MultipartInFlight.inc();
  try {
    const reused = kept.size;
    s3Parts.inc({ outcome: 'reused' }, reused);
    const sent = await sendMissingParts(args, fh, uploadId, layout, digest, kept);
    // The bytes sent must be the bytes hashed: a write to the file meanwhile fails the upload.
    if ((await sourceStamp(fh)).stamp !== stampBefore.stamp) {
      throw new SourceChangedError('the source file was modified while it was uploaded', { key });
    }
    await guard();
    const done = await completeUpload(args, uploadId, layout, kept, digest.sha256, size);
    return { ...done, sha256: digest.sha256, size, partsUploaded: sent.parts, partsReused: reused, bytesSent: sent.bytes };
  } finally {
    s3MultipartInFlight.dec();
  }
}

async function createUpload(args: UploadMultipartArgs, sha256: string): Promise<string> {
  const p = args.putParams;
  const input: CreateMultipartUploadCommandInput = {
    Bucket: args.bucket,
    Key: args.key,
    Metadata: { ...(p.Metadata ?? {}), [SHA256_METADATA_KEY]: sha256 },
    ChecksumAlgorithm: 'SHA256',
    ...(p.ContentType !== undefined && { ContentType: p.ContentType }),
    ...(p.StorageClass !== undefined && { StorageClass: p.StorageClass as CreateMultipartUploadCommandInput['StorageClass'] }),
    ...(p.ACL !== undefined && { ACL: p.ACL as CreateMultipartUploadCommandInput['ACL'] }),
    ...(p.ServerSideEncryption !== undefined && { ServerSideEncryption: p.ServerSideEncryption as CreateMultipartUploadCommandInput['ServerSideEncryption'] }),
    ...(p.SSEKMSKeyId !== undefined && { SSEKMSKeyId: p.SSEKMSKeyId }),
  };
  const out = await args.client.send(new CreateMultipartUploadCommand(input), { abortSignal: args.signal });
  if (!out.UploadId) throw new InternalError(`CreateMultipartUpload for ${args.key} returned no upload id`);
  return out.UploadId;
}

/**
 * Sends every part not in `kept` with `concurrency` workers, each reusing one part-sized buffer
 * (so memory stays at `concurrency` parts whatever the file's size). Adds each sent part to
 * `kept`. The first failure stops new parts and aborts the ones in flight; all workers have
 * stopped (no buffer still in use) before it is thrown.
 */
async function sendMissingParts(
  args: UploadMultipartArgs,
  fh: FileHandle,
  uploadId: string,
  layout: PartLayout,
  digest: SourceDigest,
  kept: Map<number, CompletedPart>,
): Promise<{ parts: number; bytes: number }> {
  const missing: number[] = [];
  let stored = 0;
  for (let n = 1; n <= layout.count; n++) {
    if (kept.has(n)) stored += partRange(layout, n).length;
    else missing.push(n);
  }
  args.onProgress?.(stored);
  if (missing.length === 0) return { parts: 0, bytes: 0 };

  const stop = new AbortController();
  const onAbort = () => stop.abort(args.signal!.reason);
  args.signal?.addEventListener('abort', onAbort, { once: true });
  let failure: { err: unknown } | null = null;
  let next = 0;
  let parts = 0;
  let bytes = 0;

  const worker = async () => {
    let buf: Buffer | null = null;
    while (!failure && next < missing.length) {
      const n = missing[next++];
      try {
        if (stop.signal.aborted) throw stop.signal.reason;
        await args.guard();
        const { offset, length } = partRange(layout, n);
        buf ??= Buffer.allocUnsafe(Math.min(layout.partSize, Math.max(layout.size, 1)));
        const body = await readFully(fh, buf, offset, length);
        const sum = createHash('sha256').update(body).digest();
        if (digest.parts && !sum.equals(digest.parts[n - 1])) {
          throw new SourceChangedError(`part ${n} of the source file changed since it was hashed`, { part: n });
        }
        const command = new UploadPartCommand({
          Bucket: args.bucket,
          Key: args.key,
          UploadId: uploadId,
          PartNumber: n,
          Body: body,
          ContentLength: length,
          ChecksumAlgorithm: 'SHA256',
          ChecksumSHA256: sum.toString('base64'),
        });
        withPayloadSha256(command, sum.toString('hex'));
        const out = await args.client.send(command, { abortSignal: stop.signal });
        if (!out.ETag) throw new InternalError(`UploadPart ${n} of ${args.key} returned no ETag`);
        kept.set(n, { PartNumber: n, ETag: out.ETag, ChecksumSHA256: out.ChecksumSHA256 ?? sum.toString('base64') });
        parts += 1;
        bytes += length;
        stored += length;
        s3UploadedBytes.inc(length);
        s3Parts.inc({ outcome: 'uploaded' });
        args.onProgress?.(stored);
      } catch (err) {
        if (!failure) {
          failure = { err: args.signal?.aborted ? args.signal.reason : err };
          stop.abort(failure.err);
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(args.concurrency, missing.length)) }, worker));
  } finally {
    args.signal?.removeEventListener('abort', onAbort);
  }
  if (failure) throw (failure as { err: unknown }).err;
  return { parts, bytes };
}

/**
 * Gives the signer the payload's sha256 we already computed (as x-amz-content-sha256), so the
 * SDK does not hash each part a second time; S3 checks the body against it as well.
 */
function withPayloadSha256(command: UploadPartCommand, hex: string): void {
  command.middlewareStack.add(
    (next) => async (input) => {
      const request = input.request as { headers?: Record<string, string> };
      if (request.headers) request.headers['x-amz-content-sha256'] = hex;
      return next(input);
    },
    { step: 'build', name: 'filestorePayloadSha256', override: true },
  );
}

async function completeUpload(
  args: UploadMultipartArgs,
  uploadId: string,
  layout: PartLayout,
  parts: Map<number, CompletedPart>,
  sha256: string,
  size: number,
): Promise<{ etag: string; versionId: string | null }> {
  const list: CompletedPart[] = [];
  for (let n = 1; n <= layout.count; n++) {
    const p = parts.get(n);
    if (!p) throw new InternalError(`part ${n} of ${args.key} is missing at complete`);
    list.push(p);
  }
  try {
    const out = await args.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: args.bucket,
        Key: args.key,
        UploadId: uploadId,
        MultipartUpload: { Parts: list },
        ...(args.condition.ifNoneMatch !== undefined && { IfNoneMatch: args.condition.ifNoneMatch }),
        ...(args.condition.ifMatch !== undefined && { IfMatch: args.condition.ifMatch }),
      }),
      { abortSignal: args.signal },
    );
    if (!out.ETag) throw new InternalError(`CompleteMultipartUpload of ${args.key} returned no ETag`);
    return { etag: out.ETag, versionId: out.VersionId ?? null };
  } catch (err) {
    // A Complete that succeeded but whose answer was lost (a crash, a reset the SDK retried)
    // finds the upload gone, or its own object failing the condition: the object tells.
    if (isNoSuchUpload(err) || isPreconditionFailed(err)) {
      const done = await findOwnObject(args.client, args.bucket, args.key, sha256, size, args.signal);
      if (done) return done;
    }
    throw err;
  }
}

/** The object at `key` if it is this upload's (sha256 metadata and size match), else null. */
async function findOwnObject(
  client: S3Client,
  bucket: string,
  key: string,
  sha256: string,
  size: number,
  signal?: AbortSignal,
): Promise<{ etag: string; versionId: string | null } | null> {
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
    if (head.Metadata?.[SHA256_METADATA_KEY] === sha256 && head.ContentLength === size && head.ETag) {
      return { etag: head.ETag, versionId: head.VersionId ?? null };
    }
    return null;
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}
