/**
 * The reading side of the S3 upload area (FILESTORE_UPLOAD_S3): the names it gives its objects and
 * how a worker opens one as a write's source. Only names of this shape, under this one prefix, are
 * ever read — a request cannot point a worker at another key or bucket.
 */
import type { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { SourceNotAllowedError } from '../../errors';
import { mapS3Error } from './s3-errors';

/** Names the upload area gives its objects (a UUID each). */
export const UPLOAD_NAME_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class UploadObjects {
  constructor(
    protected readonly client: S3Client,
    readonly bucket: string,
    /** Key prefix without leading or trailing '/' ('' for the whole bucket). */
    readonly prefix: string,
  ) {}

  /** The key of upload `name`; SOURCE_NOT_ALLOWED for anything that is not an upload's name. */
  keyOf(name: string): string {
    if (!UPLOAD_NAME_PATTERN.test(name)) throw new SourceNotAllowedError(`${JSON.stringify(name)} is not an upload of the upload area`);
    return this.prefix ? `${this.prefix}/${name}` : name;
  }

  /** A stream of upload `name` (NOT_FOUND once it was released). */
  async open(name: string, signal?: AbortSignal): Promise<Readable> {
    const key = this.keyOf(name);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), signal ? { abortSignal: signal } : {});
      return res.Body as Readable;
    } catch (err) {
      throw mapS3Error(err, { bucket: this.bucket, mountId: '(upload area)', what: `upload ${name}`, key });
    }
  }
}
