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
import { randomUUID } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AbortMultipartUploadCommand, DeleteObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { PayloadTooLargeError } from '../errors';
import { mapS3Error } from '../executors/s3/s3-errors';
import { UPLOAD_NAME_PATTERN, UploadObjects } from '../executors/s3/s3-upload-objects';
import { asBodyError, bodyMeter, type ReceiveOptions, type ReceivedUpload, type UploadStore } from './upload-area';

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
    const meter = bodyMeter(opts.maxBytes);
    const pass = new PassThrough();
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: pass, Metadata: { 'workflow-id': opts.workflowId } },
      partSize: this.partSize,
      queueSize: 4,
      leavePartsOnError: false,
    });
    // Handled at once: S3 refusing the upload (a missing bucket, denied, parts failing after
    // retries) must fail the body's pipeline — which would otherwise stall on backpressure with
    // nobody reading — not surface later as an unhandled rejection.
    let s3Failure: unknown = null;
    const uploaded = upload.done().catch((err: unknown) => {
      s3Failure = err;
      pass.destroy(err as Error);
    });
    try {
      await pipeline(body, meter.stream, pass, opts.signal ? { signal: opts.signal } : {});
      await uploaded;
      if (s3Failure) throw s3Failure;
    } catch (err) {
      // Which side failed first decides the answer: S3's refusal, or the body's own failure.
      const s3First = s3Failure as unknown;
      await upload.abort().catch(() => undefined);
      await uploaded;
      await this.release(name).catch(() => undefined);
      throw s3First ? mapS3Error(s3First, { bucket: this.bucket, what: 'the upload area', key }) : asBodyError(err);
    }
    try {
      meter.checkLength(opts.expectedBytes);
    } catch (err) {
      await this.release(name);
      throw err;
    }
    return { ref: name, source: { upload: name }, size: meter.size, sha256: meter.sha256 };
  }

  async release(name: string): Promise<void> {
    const key = this.keyOf(name);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      throw mapS3Error(err, { bucket: this.bucket, what: 'the upload area', key });
    }
  }

  async releaseUnlessRunning(name: string, workflowId: string, isRunning: (workflowId: string) => Promise<boolean>): Promise<void> {
    // Names are never shared: the run of `workflowId` reads its own upload, not this one.
    void workflowId;
    void isRunning;
    await this.release(name);
  }

  /**
   * Removes uploads older than `graceMs` whose run is not going, and aborts multipart uploads into
   * the area begun before that (a process that died mid-body). Only objects this area wrote — a
   * UUID name and its `workflow-id` metadata — are ever removed; an object whose metadata cannot
   * be read now is left for the next pass. A multipart object's LastModified is when its upload
   * began, so it gets a day more: its run may not have started when the upload completed.
   */
  async sweep(graceMs: number, isRunning: (workflowId: string) => Promise<boolean>): Promise<number> {
    const cutoff = Date.now() - graceMs;
    let removed = await this.abortStaleMultipart(cutoff);
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix ? `${this.prefix}/` : undefined, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        const name = (o.Key ?? '').slice(this.prefix ? this.prefix.length + 1 : 0);
        if (!UPLOAD_NAME_PATTERN.test(name) || !o.LastModified) continue;
        const multipart = /-\d+"?$/.test(o.ETag ?? '');
        if (o.LastModified.getTime() > cutoff - (multipart ? DAY_MS : 0)) continue;
        const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: o.Key })).catch(() => null);
        const workflowId = head?.Metadata?.['workflow-id'];
        if (!workflowId || (await isRunning(workflowId))) continue;
        await this.release(name).catch(() => undefined);
        removed += 1;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return removed;
  }

  /**
   * Aborts multipart uploads under the area begun before `cutoff` (ListMultipartUploads by
   * prefix; some S3-compatible servers answer it empty — a bucket lifecycle rule
   * AbortIncompleteMultipartUpload covers those). Returns how many it aborted.
   */
  private async abortStaleMultipart(cutoff: number): Promise<number> {
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.client
        .send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: this.prefix ? `${this.prefix}/` : undefined, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }))
        .catch(() => null);
      if (!page) return aborted;
      for (const u of page.Uploads ?? []) {
        const name = (u.Key ?? '').slice(this.prefix ? this.prefix.length + 1 : 0);
        if (!UPLOAD_NAME_PATTERN.test(name) || !u.Initiated || u.Initiated.getTime() > cutoff || !u.UploadId) continue;
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId })).catch(() => undefined);
        aborted += 1;
      }
      if (!page.IsTruncated) return aborted;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }
}

/** A day, in ms. */
const DAY_MS = 24 * 3600 * 1000;
