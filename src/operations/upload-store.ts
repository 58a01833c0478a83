/**
 * The configured upload area: the S3 prefix of FILESTORE_UPLOAD_S3 when it is set, else the
 * directory of FILESTORE_UPLOAD_DIR (default `<stateDir>/uploads`).
 */
import { uploadDirOf, uploadS3Of, type Config } from '../config';
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
