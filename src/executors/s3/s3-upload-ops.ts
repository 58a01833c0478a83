/**
 * Multipart upload bookkeeping shared by the uploader, the executor's undo and the janitor:
 * list an upload's parts, abort an upload (idempotently), find the unfinished uploads of a key.
 */
import {
  AbortMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  type ListPartsCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { s3MultipartAborted } from '../../metrics';
import { countS3RequestErrors, isNoSuchUpload, mapS3Error } from './s3-errors';

const MAX_PARTS_PER_LIST = 1000;

/** Every part S3 holds for `uploadId` (ListParts, paged by PartNumberMarker, `pageSize` parts a page). Raw S3 errors. */
export async function listAllParts(
  client: S3Client,
  bucket: string,
  key: string,
  uploadId: string,
  opts: { pageSize?: number; signal?: AbortSignal } = {},
): Promise<NonNullable<ListPartsCommandOutput['Parts']>> {
  const { signal } = opts;
  countS3RequestErrors(client);
  const parts: NonNullable<ListPartsCommandOutput['Parts']> = [];
  let marker: string | undefined;
  for (;;) {
    const page = await client.send(
      new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MaxParts: opts.pageSize ?? MAX_PARTS_PER_LIST, PartNumberMarker: marker }),
      { abortSignal: signal },
    );
    parts.push(...(page.Parts ?? []));
    if (!page.IsTruncated || !page.NextPartNumberMarker || page.NextPartNumberMarker === marker) return parts;
    marker = page.NextPartNumberMarker;
  }
}

/** Aborts a multipart upload. Idempotent: an upload already gone (NoSuchUpload) is success. */
export async function abortMultipart(client: S3Client, bucket: string, key: string, uploadId: string): Promise<void> {
  countS3RequestErrors(client);
  try {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
    s3MultipartAborted.inc();
  } catch (err) {
    if (isNoSuchUpload(err)) return;
    throw mapS3Error(err, { bucket, key, uploadId, what: `s3://${bucket}/${key}` });
  }
}

/**
 * The unfinished multipart uploads of exactly `key` (paged). Asks with the key as prefix and keeps
 * exact matches: MinIO answers a prefix listing only for a whole object name, AWS for any prefix.
 */
export async function listUploadsForKey(client: S3Client, bucket: string, key: string): Promise<{ uploadId: string; initiated: Date }[]> {
  const out: { uploadId: string; initiated: Date }[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  countS3RequestErrors(client);
  try {
    for (;;) {
      const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      for (const u of page.Uploads ?? []) {
        if (u.Key === key && u.UploadId) out.push({ uploadId: u.UploadId, initiated: u.Initiated ?? new Date(0) });
      }
      if (!page.IsTruncated || (page.NextKeyMarker === keyMarker && page.NextUploadIdMarker === uploadIdMarker)) return out;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  } catch (err) {
    throw mapS3Error(err, { bucket, key, what: `s3://${bucket}/${key}` });
  }
}
