/**
 * What every S3 step works with: the mount's bucket, its transfer settings and the transaction
 * (shared by s3-steps.ts and the modules it calls, without them importing each other).
 */
import type { Tx } from '../tx-driver';
import type { S3Bucket } from './s3-bucket';
import type { S3Plan } from './s3-plan';

/** Size settings of S3 writes (FILESTORE_S3_MULTIPART_THRESHOLD, _PART_SIZE, _CONCURRENCY). */
export interface S3TransferSettings {
  /** Content of at least this many bytes goes up as a multipart upload; less in one PutObject. */
  multipartThreshold: number;
  partSize: number;
  concurrency: number;
  /** Objects larger than this are copied in parts (UploadPartCopy). @defaultValue 5 GiB, CopyObject's limit (lower only in tests) */
  partCopyAbove?: number;
}

/** What an op implementation works with. */
export interface S3OpContext {
  readonly bucket: S3Bucket;
  readonly settings: S3TransferSettings;
}

export type S3Tx = Tx<S3Plan>;
