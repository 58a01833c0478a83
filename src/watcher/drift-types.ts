/**
 * The drift processor's port and result types, apart so that the processor and the ordered scan
 * it drives can both name them without importing each other.
 */
import type { Db } from '../../db/client';
import type { ExecutorRegistry } from '../executor-registry';
import type { Logger } from '../logger';

export interface ScanLimits {
  /** Listed entries merged with the catalog per range query; also the most mismatches confirmed and recorded at once. */
  batchSize: number;
  /** Stats (lstat, readdir) kept in flight by the walk, on the libuv threadpool (UV_THREADPOOL_SIZE threads, 4 by default). */
  concurrency: number;
}

export interface DriftProcessorDeps {
  db: Db;
  executors: ExecutorRegistry;
  log?: Logger;
  /** How scans of local mounts batch and parallelise (ordered-scan.ts); tests lower the batch size. @defaultValue SCAN_DEFAULTS */
  scan?: Partial<ScanLimits>;
}

export interface DriftCheckResult {
  /** Detections recorded by this run. */
  detected: number;
  /** Paths held by a mutation in flight: check them again later. */
  deferred: string[];
}
