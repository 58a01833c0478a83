/**
 * The janitor's sweep of stale multipart uploads under an S3 mount. Undo and finalize abort the
 * uploads their plans record; what is left is an upload created by an attempt that died before
 * its checkpoint was saved, or one started by someone else under the mount's prefix. Unfinished
 * uploads cost storage for ever (S3 keeps their parts until aborted), so they are aborted once
 * older than the grace period — except on a path that a PENDING transaction holds, whose upload
 * may be the one a retry is about to resume.
 */
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import type { S3Bucket } from './s3-bucket';
import { keyOf, listPrefixOf, pathOfKey, txIdOfStagingKey } from './s3-keys';
import { abortMultipart, listUploadsForKey } from './s3-upload-ops';

/** Options of {@link sweepStaleUploads}. */
export interface UploadSweepOptions {
  /** Uploads initiated before this are stale. */
  olderThan: Date;
  /**
   * Mount paths to ask about by exact key, besides the prefix listing: MinIO answers
   * ListMultipartUploads only for a whole object name, so the catalog's recently ended
   * transactions name the keys to check there.
   */
  paths: readonly string[];
  /** Whether a PENDING transaction holds `path` (its upload is left alone). */
  busy(path: string): boolean;
  /** Whether transaction `txId` is still PENDING (an upload under its staging is its undo's). */
  pending(txId: string): boolean;
}

/** One page-walk of ListMultipartUploads under `prefix` (AWS answers prefixes; MinIO returns nothing). */
async function uploadsUnderPrefix(bucket: S3Bucket): Promise<{ key: string; uploadId: string; initiated: Date }[]> {
  const out: { key: string; uploadId: string; initiated: Date }[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  const prefix = bucket.prefix === '' ? undefined : listPrefixOf(bucket.prefix, '');
  for (;;) {
    // Through the bucket wrapper, so a failure is typed like every other request of the mount.
    const page = await bucket.send({ what: `multipart uploads under ${JSON.stringify(bucket.prefix)}` }, () =>
      bucket.client.send(new ListMultipartUploadsCommand({ Bucket: bucket.name, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker })),
    );
    for (const u of page.Uploads ?? []) if (u.Key && u.UploadId) out.push({ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated ?? new Date(0) });
    if (!page.IsTruncated) return out;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
    if (!keyMarker && !uploadIdMarker) return out;
  }
}

/** Aborts the stale uploads under the mount; returns how many it aborted. */
export async function sweepStaleUploads(bucket: S3Bucket, opts: UploadSweepOptions): Promise<number> {
  const found = new Map<string, { key: string; initiated: Date }>();
  for (const u of await uploadsUnderPrefix(bucket)) found.set(u.uploadId, u);
  for (const path of new Set(opts.paths)) {
    const key = keyOf(bucket.prefix, path);
    for (const u of await listUploadsForKey(bucket.client, bucket.name, key)) found.set(u.uploadId, { key, initiated: u.initiated });
  }
  let aborted = 0;
  for (const [uploadId, u] of found) {
    if (u.initiated >= opts.olderThan) continue;
    // A staging key (an undo's part copy) maps to no path: its transaction owns it until it ends.
    const txId = txIdOfStagingKey(bucket.prefix, u.key);
    if (txId !== null ? opts.pending(txId) : opts.busy(pathOfKey(bucket.prefix, u.key) ?? '')) continue;
    await abortMultipart(bucket.client, bucket.name, u.key, uploadId);
    aborted++;
  }
  return aborted;
}
