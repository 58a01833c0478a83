/**
 * Where bench/s3-bench.ts meets the S3 backend's own interfaces: the mount's tuning (the
 * FILESTORE_S3_* settings the baselines must match), registering an S3 mount, and the
 * multipart module's metrics as a worker's /metrics endpoint exposes them.
 */
import { addS3Mount } from '../src/catalog/mounts';
import type { FilestoreClient } from '../src/client';
import type { Config } from '../src/config';

export interface S3Tuning {
  partSize: number;
  concurrency: number;
  /** Smallest write that goes multipart. */
  multipartThreshold: number;
}

/** Part size, concurrency and multipart threshold the S3 mounts use, from the same config as the worker. */
export function s3Tuning(config: Config): S3Tuning {
  return { partSize: config.s3PartSize, concurrency: config.s3Concurrency, multipartThreshold: config.s3MultipartThreshold };
}

/** Registers S3 mount `id` at `s3://<bucket>/<prefix>` on `endpoint` (path style, as MinIO needs). */
export async function addBenchS3Mount(client: FilestoreClient, m: { id: string; bucket: string; prefix: string; endpoint: string; region: string }): Promise<void> {
  await addS3Mount(client.db, { id: m.id, bucket: m.bucket, prefix: m.prefix, endpoint: m.endpoint, region: m.region, pathStyle: true });
}

/**
 * From a Prometheus text exposition: the sum of the series of `name` whose labels include
 * `label` (e.g. `outcome="reused"`; absent: every series), or null when there is none.
 */
export function sumMetric(text: string, name: string, label?: string): number | null {
  let total: number | null = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    if (label && !(rest[0] === '{' && rest.slice(1, rest.indexOf('}')).split(',').includes(label))) continue;
    const value = Number(line.trim().split(/\s+/).at(-1));
    if (Number.isFinite(value)) total = (total ?? 0) + value;
  }
  return total;
}

/** The multipart figures a worker's /metrics shows (null where the metric is absent). */
export interface MultipartMetrics {
  uploadedBytes: number | null;
  partsUploaded: number | null;
  partsReused: number | null;
}

/** Defined in src/metrics.ts (s3UploadedBytes, s3Parts). */
export const METRIC_NAMES = { uploadedBytes: 'filestore_s3_uploaded_bytes_total', parts: 'filestore_s3_parts_total' };

export async function scrapeMultipartMetrics(metricsUrl: string): Promise<MultipartMetrics> {
  const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) })).text();
  return {
    uploadedBytes: sumMetric(text, METRIC_NAMES.uploadedBytes),
    partsUploaded: sumMetric(text, METRIC_NAMES.parts, 'outcome="uploaded"'),
    partsReused: sumMetric(text, METRIC_NAMES.parts, 'outcome="reused"'),
  };
}
