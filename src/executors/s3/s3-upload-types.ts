/**
 * The shapes of an S3 upload (its arguments, checkpoint and result), shared by the resumable
 * multipart uploader (s3-multipart.ts) and the stream uploader (s3-stream-upload.ts) without
 * either importing the other.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';

/** Durable resume state of one multipart upload (saved in the plan and the heartbeat). */
export interface MultipartCheckpoint {
  uploadId: string;
  partSize: number;
  key: string;
  /**
   * The whole-object sha256 the upload was created with (S3 fixed it in the object's metadata at
   * CreateMultipartUpload). Keep it: a resume whose source now hashes differently starts a new
   * upload instead of completing the new bytes under the old hash. Absent (an older plan, a stream)
   * means the source is assumed unchanged.
   */
  sha256?: string;
}

/** What an upload produced. */
export interface MultipartResult {
  /** The object's ETag as S3 returns it (quoted), for If-Match and verify. */
  etag: string;
  versionId: string | null;
  /** Whole-object sha256, lowercase hex. */
  sha256: string;
  size: number;
  /** Parts sent by this call. */
  partsUploaded: number;
  /** Parts found intact in S3 (a resume) and kept without re-sending. */
  partsReused: number;
  /** Bytes of part bodies this call sent (successful requests). */
  bytesSent: number;
}

/** Settings sent with CreateMultipartUpload (and PutObject for a small stream). */
export interface MultipartPutParams {
  Metadata?: Record<string, string>;
  StorageClass?: string;
  ACL?: string;
  ServerSideEncryption?: string;
  SSEKMSKeyId?: string;
  ContentType?: string;
}

/** Arguments of {@link uploadMultipart}. */
export interface UploadMultipartArgs {
  client: S3Client;
  bucket: string;
  key: string;
  source: { kind: 'file'; fh: FileHandle; size: number } | { kind: 'stream'; stream: Readable };
  /** Requested part size; raised to 5 MiB, capped at 5 GiB, grown so the object needs ≤ 10,000 parts. */
  partSize: number;
  /** Parts in flight at once; also the number of part buffers alive. */
  concurrency: number;
  /** From the durable plan, on a retry. */
  checkpoint: MultipartCheckpoint | null;
  /** Makes the checkpoint durable; called after CreateMultipartUpload and BEFORE any part is sent. */
  saveCheckpoint(cp: MultipartCheckpoint): Promise<void>;
  putParams: MultipartPutParams;
  /** Applied on CompleteMultipartUpload: `ifNoneMatch: '*'` for a create, `ifMatch: etag` for an overwrite. */
  condition: { ifNoneMatch?: '*'; ifMatch?: string };
  expectedSha256?: string;
  maxBytes?: number;
  /** Throws when this attempt may no longer act (fence lost); called before Create, before each part and before Complete. */
  guard: () => Promise<void>;
  signal?: AbortSignal;
  /** Cumulative bytes of the object now stored in S3 (reused + uploaded parts), after each part. */
  onProgress?(bytes: number): void;
}
