/**
 * The upload area as an S3 prefix (FILESTORE_UPLOAD_S3): the same contract as the directory area
 * (src/operations/upload-area.ts), for deployments whose API and workers share no file system.
 *
 * - A body streams into a fresh object `<prefix>/<uuid>` (multipart above the part size, through
 *   lib-storage, which aborts the multipart upload when the body fails), hashed on the way. Nothing
 *   half-received is a source: a body that fails, runs past the limit or differs from its declared
 *   length leaves no object (lib-storage aborts; a complete but refused one is deleted).
 * - Names are fresh per upload: the request's identity is the content's hash, not the name (see
 *   canonicalRequest), so a retry with the same key and content is the same request, and no two
 *   uploads ever share an object — releasing one never takes another's.
 * - Each object carries the run that reads it (`x-amz-meta-workflow-id`) for the sweep.
 */
import { createHash, randomUUID } from 'node:crypto';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DeleteObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { FilestoreError, IncompleteBodyError, PayloadTooLargeError } from '../errors';
import { UPLOAD_NAME_PATTERN, UploadObjects } from '../executors/s3/s3-upload-objects';
import type { ReceiveOptions, ReceivedUpload, UploadStore } from './upload-area';

/** The writing side (the API, the SDK) and the sweep; workers read through {@link UploadObjects}. */
export class ObjectUploadArea extends UploadObjects implements UploadStore {
  constructor(
    client: S3Client,
    bucket: string,
    prefix: string,
    private readonly partSize = 16 * 1024 * 1024,
  ) {
    super(client, bucket, prefix);
  }

  async receive(body: Readable, opts: ReceiveOptions): Promise<ReceivedUpload> {
    if (opts.expectedBytes !== undefined && opts.expectedBytes > opts.maxBytes) {
      body.resume();
      throw new PayloadTooLargeError(`the body is ${opts.expectedBytes} bytes; the limit is ${opts.maxBytes} (FILESTORE_MAX_FILE_BYTES)`);
    }
    const name = randomUUID();
    const key = this.keyOf(name);
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (size > opts.maxBytes) return done(new PayloadTooLargeError(`the body is larger than the limit of ${opts.maxBytes} bytes (FILESTORE_MAX_FILE_BYTES)`));
        hash.update(chunk);
        done(null, chunk);
      },
    });
    const pass = new PassThrough();
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: pass, Metadata: { 'workflow-id': opts.workflowId } },
      partSize: this.partSize,
      queueSize: 4,
      leavePartsOnError: false,
    });
    const uploaded = upload.done();
    try {
      await pipeline(body, meter, pass, opts.signal ? { signal: opts.signal } : {});
    } catch (err) {
      await upload.abort().catch(() => undefined);
      await uploaded.catch(() => undefined);
      await this.release(name).catch(() => undefined);
      throw asBodyError(err);
    }
    await uploaded;
    if (opts.expectedBytes !== undefined && size !== opts.expectedBytes) {
      await this.release(name);
      throw new IncompleteBodyError(`the body has ${size} bytes; ${opts.expectedBytes} were declared`, { received: size, declared: opts.expectedBytes });
    }
    return { ref: name, source: { upload: name }, size, sha256: hash.digest('hex') };
  }

  async release(name: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyOf(name) }));
  }

  async releaseUnlessRunning(name: string, workflowId: string, isRunning: (workflowId: string) => Promise<boolean>): Promise<void> {
    // Names are never shared: the run of `workflowId` reads its own upload, not this one.
    void workflowId;
    void isRunning;
    await this.release(name);
  }

  async sweep(graceMs: number, isRunning: (workflowId: string) => Promise<boolean>): Promise<number> {
    const cutoff = Date.now() - graceMs;
    let removed = 0;
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix ? `${this.prefix}/` : undefined, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        const name = (o.Key ?? '').slice(this.prefix ? this.prefix.length + 1 : 0);
        if (!UPLOAD_NAME_PATTERN.test(name) || !o.LastModified || o.LastModified.getTime() > cutoff) continue;
        const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: o.Key })).catch(() => null);
        const workflowId = head?.Metadata?.['workflow-id'];
        if (workflowId && (await isRunning(workflowId))) continue;
        await this.release(name).catch(() => undefined);
        removed += 1;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return removed;
  }
}

function asBodyError(err: unknown): unknown {
  if (err instanceof FilestoreError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ECONNRESET' || e?.code === 'ERR_STREAM_PREMATURE_CLOSE' || e?.name === 'AbortError' || e?.message === 'aborted') {
    return new IncompleteBodyError('the client closed the connection before the body was complete; nothing was stored');
  }
  return err;
}
