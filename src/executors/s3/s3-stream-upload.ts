/**
 * Uploads from a non-seekable source (a stream) through `@aws-sdk/lib-storage`'s `Upload`. No
 * resume: a stream cannot be re-read, so a failed upload is aborted (lib-storage does it) and a
 * retry starts over. The upload id is still checkpointed (saveCheckpoint, before lib-storage sends
 * a part) so that the executor's undo can abort exactly that upload after a crash; a checkpoint
 * handed back to a stream upload is aborted before it starts.
 *
 * The sha256 of a stream is only known once it has been read to the end, but S3 fixes an object's
 * metadata at CreateMultipartUpload (or PutObject), before the first byte. Staging the stream to a
 * temp file to hash it first would double the disk I/O of every streamed upload, so instead the
 * digest is computed while streaming and RETURNED (for the catalog), and streamed objects carry NO
 * `sha256` metadata. `expectedSha256` and `maxBytes` are still enforced before the object exists:
 * the hashing stage fails the stream at its end (or past the limit), so lib-storage never sends
 * CompleteMultipartUpload and aborts the upload instead.
 */
import { createHash } from 'node:crypto';
import { Transform, pipeline, type Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompleteMultipartUploadCommandOutput,
  type PutObjectCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { InternalError, InvalidRequestError, PayloadTooLargeError } from '../../errors';
import { s3MultipartAborted, s3MultipartInFlight, s3Parts, s3UploadedBytes } from '../../metrics';
import type { MultipartResult, UploadMultipartArgs } from './s3-upload-types';
import { partLayout } from './s3-part-source';
import { abortMultipart } from './s3-upload-ops';

/** Uploads `stream` with lib-storage (multipart above one part, PutObject below), hashing it on the way. */
export async function uploadStream(args: Omit<UploadMultipartArgs, 'source'> & { stream: Readable }): Promise<MultipartResult> {
  const { client, bucket, key, guard, signal } = args;
  signal?.throwIfAborted();
  // Size unknown: the requested size within S3's bounds; a stream beyond 10,000 parts fails.
  const partSize = partLayout(0, args.partSize).partSize;
  let bytes = 0;
  let nextGuardAt = partSize;
  let sha256: string | null = null;
  const hash = createHash('sha256');
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (args.maxBytes !== undefined && bytes > args.maxBytes) {
        done(new PayloadTooLargeError(`content is larger than the limit of ${args.maxBytes} bytes`, { maxBytes: args.maxBytes }));
        return;
      }
      hash.update(chunk);
      if (bytes < nextGuardAt) return done(null, chunk);
      // Once per part's worth of input: this attempt must still hold the transaction.
      nextGuardAt = bytes + partSize;
      guard().then(() => done(null, chunk), done);
    },
    flush(done) {
      sha256 = hash.digest('hex');
      if (args.expectedSha256 !== undefined && sha256 !== args.expectedSha256.toLowerCase()) {
        done(new InvalidRequestError(`content hashes to ${sha256}, not the expected ${args.expectedSha256}`, { key }));
      } else done();
    },
  });
  pipeline(args.stream, hasher, () => undefined);

  let parts = 0;
  let bytesSent = 0;
  let inFlight = false;
  // lib-storage calls `client.send`; this view of the client adds the guard before the request
  // that makes the object exist, counts parts and bytes, and tracks the upload in the metrics.
  const view = Object.create(client) as S3Client;
  const send = client.send.bind(client) as (command: unknown, options?: { abortSignal?: AbortSignal }) => Promise<unknown>;
  view.send = (async (command: unknown) => {
    if (command instanceof CompleteMultipartUploadCommand || command instanceof PutObjectCommand) await guard();
    // Failures are counted by the client's own middleware (countS3RequestErrors, set by uploadMultipart).
    const out = await send(command, { abortSignal: signal });
    if (command instanceof CreateMultipartUploadCommand) {
      const uploadId = (out as { UploadId?: string }).UploadId;
      if (uploadId) {
        // lib-storage sends no part before this returns. Should the save fail, lib-storage would
        // not know the upload to abort it (it learns the id from this answer): abort it here.
        try {
          await args.saveCheckpoint({ uploadId, partSize, key });
        } catch (err) {
          await abortMultipart(client, bucket, key, uploadId).catch(() => undefined);
          throw err;
        }
      }
      if (!inFlight) {
        inFlight = true;
        s3MultipartInFlight.inc();
      }
    } else if (command instanceof UploadPartCommand || command instanceof PutObjectCommand) {
      const n = byteLength(command.input.Body);
      parts += command instanceof UploadPartCommand ? 1 : 0;
      bytesSent += n;
      s3UploadedBytes.inc(n);
      if (command instanceof UploadPartCommand) s3Parts.inc({ outcome: 'uploaded' });
      args.onProgress?.(bytesSent);
    } else if (command instanceof AbortMultipartUploadCommand) {
      s3MultipartAborted.inc();
    }
    return out;
  }) as S3Client['send'];

  const p = args.putParams;
  const params: PutObjectCommandInput = {
    Bucket: bucket,
    Key: key,
    Body: hasher,
    ChecksumAlgorithm: 'SHA256',
    ...(p.Metadata !== undefined && { Metadata: p.Metadata }),
    ...(p.ContentType !== undefined && { ContentType: p.ContentType }),
    ...(p.StorageClass !== undefined && { StorageClass: p.StorageClass as PutObjectCommandInput['StorageClass'] }),
    ...(p.ACL !== undefined && { ACL: p.ACL as PutObjectCommandInput['ACL'] }),
    ...(p.ServerSideEncryption !== undefined && { ServerSideEncryption: p.ServerSideEncryption as PutObjectCommandInput['ServerSideEncryption'] }),
    ...(p.SSEKMSKeyId !== undefined && { SSEKMSKeyId: p.SSEKMSKeyId }),
    // lib-storage passes these on to CompleteMultipartUpload (or the single PutObject).
    ...(args.condition.ifNoneMatch !== undefined && { IfNoneMatch: args.condition.ifNoneMatch }),
    ...(args.condition.ifMatch !== undefined && { IfMatch: args.condition.ifMatch }),
  };
  const abortController = new AbortController();
  const onAbort = () => abortController.abort(signal!.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const upload = new Upload({ client: view, params, partSize, queueSize: Math.max(1, args.concurrency), leavePartsOnError: false, abortController });
  try {
    await guard();
    // An earlier attempt's upload cannot be resumed from a stream: it goes before this one starts.
    if (args.checkpoint) await abortMultipart(client, bucket, args.checkpoint.key, args.checkpoint.uploadId);
    const out = (await upload.done()) as CompleteMultipartUploadCommandOutput;
    if (sha256 === null) throw new InternalError(`the upload of ${key} completed before its source ended`);
    if (!out.ETag) throw new InternalError(`the upload of ${key} returned no ETag`);
    return { etag: out.ETag, versionId: out.VersionId ?? null, sha256, size: bytes, partsUploaded: parts, partsReused: 0, bytesSent };
  } catch (err) {
    hasher.destroy();
    throw signal?.aborted ? signal.reason : err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (inFlight) s3MultipartInFlight.dec();
  }
}

function byteLength(body: unknown): number {
  if (body instanceof Uint8Array) return body.byteLength;
  if (typeof body === 'string') return Buffer.byteLength(body);
  return 0;
}
