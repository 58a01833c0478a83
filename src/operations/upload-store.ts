/**
 * The configured upload area: the S3 prefix of FILESTORE_UPLOAD_S3 when it is set, else the
 * directory of FILESTORE_UPLOAD_DIR (default `<stateDir>/uploads`).
 */
import type { MountRow } from '../catalog/types';
import { uploadDirOf, uploadS3Of, type Config } from '../config';
import { InvalidRequestError } from '../errors';
import { createS3Client } from '../executors/s3/s3-client';
import { s3OptionsOf } from '../executors/index';
import { ObjectUploadArea } from './object-upload-area';
import { UploadArea, type UploadStore } from './upload-area';

export function uploadStoreOf(config: Config): UploadStore {
  const s3 = uploadS3Of(config);
  if (!s3) return new UploadArea(uploadDirOf(config));
  const client = createS3Client({ bucket: s3.bucket, prefix: s3.prefix }, s3OptionsOf(config).client);
  return new ObjectUploadArea(client, s3.bucket, s3.prefix, config.s3PartSize);
}

/** The S3 upload area of `config`, or null when uploads wait in a directory. */
export function objectUploadAreaOf(config: Config): ObjectUploadArea | null {
  const store = uploadStoreOf(config);
  return store instanceof ObjectUploadArea ? store : null;
}

/**
 * Refuses an upload area that overlaps a mount: a directory inside (or holding) a local mount's
 * root, an S3 prefix inside (or holding) an S3 mount's. Mount readers could fetch in-flight
 * uploads, the watcher would report them as drift, and the area's sweep could remove a mount's
 * files behind the catalog's back.
 */
export function assertUploadAreaApart(store: UploadStore, mounts: ReadonlyArray<Pick<MountRow, 'id' | 'kind' | 'rootPath' | 'bucket' | 'prefix'>>): void {
  if (store instanceof UploadArea) {
    UploadArea.assertApart(store.dir, mounts.flatMap((m) => (m.kind === 'local' && m.rootPath ? [m.rootPath] : [])));
    return;
  }
  if (!(store instanceof ObjectUploadArea)) return;
  const under = (a: string, b: string) => b === '' || a === b || a.startsWith(`${b}/`);
  for (const m of mounts) {
    if (m.kind !== 's3' || m.bucket !== store.bucket) continue;
    const prefix = (m.prefix ?? '').replace(/^\/+|\/+$/g, '');
    if (under(store.prefix, prefix) || under(prefix, store.prefix)) {
      throw new InvalidRequestError(`the upload area s3://${store.bucket}/${store.prefix} and mount ${JSON.stringify(m.id)} (s3://${m.bucket}/${prefix}) overlap; set FILESTORE_UPLOAD_S3 outside every mount`);
    }
  }
}
