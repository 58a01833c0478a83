/**
 * Drift on S3 mounts, found by listing. A bucket sends no file-system events, so a watched S3
 * mount is scanned: periodically (FILESTORE_S3_SCAN_INTERVAL_MS, a BullMQ job scheduler, so
 * several watcher processes still scan a mount once per interval), when it becomes watched, and
 * after Redis comes back — the same `scan` jobs local mounts get, on the same drift queue.
 *
 * What this file adds is how such a job runs for a whole S3 mount, {@link scanS3Mount}: the
 * executor's recursive listing (ListObjectsV2 pages) is compared with the catalog as it streams,
 * a batch of keys against the catalog rows of the same key range (S3 lists in UTF-8 binary order,
 * see node-ranges.ts), by kind, size and ETag. Memory stays bounded by a batch plus the set of
 * directories, whatever the number of keys. Each path that differs — a key the catalog does not
 * have, one whose ETag or size changed, a catalogued node the listing no longer shows — is a
 * suspect, and suspects go, in batches, through the drift processor's own `check` (runDriftJob):
 * it looks again (HeadObject, which also brings the sha256 Filestore stores on the object),
 * defers paths a PENDING mutation holds or that a mutation committed meanwhile (Filestore's own
 * writes are never drift), and records what is left as drift events and INCONSISTENT nodes,
 * exactly as for local mounts.
 *
 * When suspects pass the mount rescan threshold, or the listing turns out not to be in key order
 * (an S3-compatible server that does not sort), the job falls back to the processor's plain scan
 * of the whole mount (one listing against the catalog held in memory) instead of one HeadObject
 * per suspect.
 */
import type { Db } from '../../db/client';
import { catalogNodesInOrder } from '../catalog/node-ranges';
import type { Executor, NodeMeta } from '../executors/executor';
import { driftRescans } from '../metrics';
import { compareNode } from './drift-compare';
import { runDriftJob, type DriftCheckResult, type DriftProcessorDeps } from './drift-processor';
import type { DriftJobSpec } from './event-aggregator';

/** Limits of one {@link scanS3Mount}. */
export interface S3ScanLimits {
  /** Suspects per drift check (FILESTORE_DRIFT_BATCH_SIZE). */
  batchSize: number;
  /** More suspects than this in one scan: fall back to a plain scan (FILESTORE_DRIFT_MOUNT_RESCAN_THRESHOLD). */
  mountRescanThreshold: number;
}

/** What one scan did, for logs and tests. */
export interface S3ScanResult extends DriftCheckResult {
  /** Paths the listing showed different from the catalog (each then checked). */
  suspects: number;
  /** Keys (files) and directories the listing showed. */
  listed: number;
  /** 'streamed': listing compared batch by batch; 'full': fell back to the processor's plain scan. */
  mode: 'streamed' | 'full';
}

type ScanSpec = Extract<DriftJobSpec, { kind: 'scan' }>;

/** Files compared against the catalog per range query. */
const COMPARE_BATCH = 1000;

/** Thrown inside the scan to switch to the plain scan; never leaves this file. */
class FallBack extends Error {
  constructor(readonly reason: 'threshold' | 'order') {
    super(reason);
  }
}

/**
 * True when a whole-mount scan of this executor should go through {@link scanS3Mount}: S3 lists
 * keys in byte order, the property the streamed comparison needs (no capability names it).
 */
export function usesS3Scanner(executor: Executor, spec: DriftJobSpec): spec is ScanSpec {
  return spec.kind === 'scan' && spec.dir === '' && executor.backend === 's3';
}

/**
 * Scans a whole S3 mount (see the module comment). Idempotent like every drift job: a repeat of
 * an open detection records nothing new.
 */
export async function scanS3Mount(deps: DriftProcessorDeps, executor: Executor, spec: ScanSpec, jobId: string | undefined, limits: S3ScanLimits): Promise<S3ScanResult> {
  const out: S3ScanResult = { detected: 0, deferred: [], suspects: 0, listed: 0, mode: 'streamed' };
  const batchSize = Math.max(1, limits.batchSize);
  let pending: string[] = [];

  const check = async (): Promise<void> => {
    if (pending.length === 0) return;
    const paths = pending;
    pending = [];
    const r = await runDriftJob(deps, { kind: 'check', mountId: spec.mountId, paths, firstEventAt: spec.firstEventAt }, jobId);
    out.detected += r.detected;
    out.deferred.push(...r.deferred);
  };
  const suspect = async (p: string): Promise<void> => {
    if (++out.suspects > limits.mountRescanThreshold) throw new FallBack('threshold');
    pending.push(p);
    if (pending.length >= batchSize) await check();
  };

  try {
    await compareListing(deps.db, executor, spec.mountId, suspect, (n) => (out.listed = n));
    await check();
    return out;
  } catch (err) {
    if (!(err instanceof FallBack)) throw err;
    driftRescans.inc({ mount: spec.mountId, reason: err.reason === 'order' ? 's3-unordered' : 's3-many-changes' });
    deps.log?.info({ mount: spec.mountId, reason: err.reason, suspects: out.suspects }, 'S3 scan falls back to a plain scan of the mount');
    // What the checks so far recorded stays recorded (the plain scan sees it again as a repeat).
    const full = await runDriftJob(deps, spec, jobId);
    return { ...out, detected: out.detected + full.detected, deferred: [...out.deferred, ...full.deferred], mode: 'full' };
  }
}

/**
 * Walks the listing once and calls `suspect` for every path whose listed state is not the
 * catalog's: files batch by batch against the catalog's files of the same key range, then the
 * catalogued files after the last key, then directories (whose set is the only thing kept whole).
 */
async function compareListing(db: Db, executor: Executor, mountId: string, suspect: (p: string) => Promise<void>, counted: (n: number) => void): Promise<void> {
  const dirs = new Set<string>();
  let batch: NodeMeta[] = [];
  /** Last path of the previous batch: the catalog range already compared ends here. */
  let compared: string | null = null;
  let previous: Buffer | null = null;
  let listed = 0;

  const compareBatch = async (): Promise<void> => {
    if (batch.length === 0) return;
    const upTo = batch[batch.length - 1].path;
    const seen = new Map(batch.map((m) => [m.path, m]));
    batch = [];
    for await (const row of catalogNodesInOrder(db, mountId, { kind: 'file', after: compared, upTo })) {
      const meta = seen.get(row.path);
      // A catalogued file in this key range that the listing skipped: gone.
      if (!meta) {
        await suspect(row.path);
        continue;
      }
      seen.delete(row.path);
      const verdict = compareNode(row, meta);
      if (verdict.drift !== null || 'needsHash' in verdict) await suspect(row.path);
    }
    // Listed, but no live catalogued file of that name (new, re-created, or a directory in the catalog).
    for (const p of seen.keys()) await suspect(p);
    compared = upTo;
  };

  for await (const meta of executor.list('', { recursive: true, pageSize: 1000 })) {
    listed++;
    if (meta.kind === 'directory') {
      dirs.add(meta.path);
      continue;
    }
    const key = Buffer.from(meta.path, 'utf8');
    if (previous !== null && Buffer.compare(previous, key) >= 0) throw new FallBack('order');
    previous = key;
    batch.push(meta);
    if (batch.length >= COMPARE_BATCH) await compareBatch();
  }
  await compareBatch();
  counted(listed);
  for await (const row of catalogNodesInOrder(db, mountId, { kind: 'file', after: compared })) await suspect(row.path);
  for await (const row of catalogNodesInOrder(db, mountId, { kind: 'directory' })) {
    // Directories compare by existence only (no size, time or ETag of their own on S3).
    if (!dirs.delete(row.path)) await suspect(row.path);
  }
  for (const p of dirs) await suspect(p);
}
