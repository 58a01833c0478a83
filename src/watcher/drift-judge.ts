/**
 * What every drift job does with one path once the backend was looked at, whichever way it was
 * looked at (a check's stats, a whole-view scan in drift-processor.ts, a scan merged range by
 * range with the catalog in ordered-scan.ts): sort a failed look ({@link failureOf}), decide
 * deferral or drift ({@link judgePath}), confirm mismatches against a second catalog read and
 * record what is left ({@link confirmAndRecord}). The rules are in drift-processor.ts's module
 * comment.
 */
import type { Db } from '../../db/client';
import { recordDriftDetections, type DriftDetection } from '../catalog/drift';
import { catalogViewAt, type JournalView } from '../catalog/drift-view';
import { FilestoreError } from '../errors';
import { isInFilestoreScratch } from '../executors/local/scratch-names';
import type { Executor, NodeMeta } from '../executors/executor';
import { driftDetected, driftDetectionLatency } from '../metrics';
import { STAGING_DIR, isMountMarkerName, pathsOverlap } from '../paths';
import { compareNode, observedOf, sameDetection, unreadableObserved, type CatalogNode } from './drift-compare';
import type { DriftJobSpec } from './drift-plan';

export type Mismatch = DriftDetection;

/** Filestore's own entries in the user's namespace: cross-device scratch anywhere, the staging folder and identity marker at the root. */
export function isFilestoreOwn(path: string): boolean {
  const top = path.split('/', 1)[0];
  return top === STAGING_DIR || isMountMarkerName(top) || isInFilestoreScratch(path);
}

const codeOf = (err: unknown): string | undefined => (err as { code?: unknown })?.code as string | undefined;

/**
 * What one path's failed look means: a link out of the mount is not part of it (`escaped`: absent,
 * as listings treat it); a transient typed error is looked at again later (`retry`); any other
 * typed error makes the path `unreadable`, with the typed error's code as the reason (the code,
 * not the errno: a scan and a check reach a path through different calls and must describe it
 * alike so the repeat is recognised). An untyped error is a bug, not a property of the path: it
 * is thrown, and fails the job.
 */
export function failureOf(err: unknown): { kind: 'escaped' } | { kind: 'retry' } | { kind: 'unreadable'; reason: string } {
  if (codeOf(err) === 'SYMLINK_ESCAPE') return { kind: 'escaped' };
  if ((err as { retryable?: unknown }).retryable === true) return { kind: 'retry' };
  if (err instanceof FilestoreError) return { kind: 'unreadable', reason: err.code };
  throw err;
}

/** How a look at one path went wrong, if it did. */
export interface PathFailure {
  /** Unreadable, with why. */
  reason?: string;
  /** Failed transiently: look again later. */
  retry?: boolean;
}

/**
 * The verdict on one candidate path: `null` (nothing to record), `'deferred'` (a mutation in flight
 * holds it, or its look must be repeated), or the mismatch to confirm. `row` is the catalog's
 * (null: none), `meta` the backend's (null: absent). Hashes the file when size and time agree but
 * the file was touched after the catalog recorded it.
 */
export async function judgePath(executor: Executor, start: Pick<JournalView, 'pending'>, path: string, row: CatalogNode | null, meta: NodeMeta | null, failure: PathFailure = {}): Promise<Mismatch | 'deferred' | null> {
  // Filestore's own files (move scratch in flight or left by a crash, the identity marker) are never drift.
  if (isFilestoreOwn(path)) return null;
  if (failure.retry || start.pending.some((held) => pathsOverlap(path, held))) return 'deferred';
  if (failure.reason !== undefined) return { path, kind: 'unreadable', observed: unreadableObserved(meta, failure.reason), row };
  let verdict = compareNode(row, meta);
  let hash: string | undefined;
  if ('needsHash' in verdict && meta) {
    hash = await executor.checksum(path).catch(() => undefined);
    if (hash !== undefined) verdict = compareNode(row, meta, hash);
  }
  return verdict.drift ? { path, kind: verdict.drift, observed: observedOf(meta, hash), row } : null;
}

/**
 * Confirms mismatches against a second catalog read and records those that stand.
 *
 * A mutation that began after the first read (`start`) explains a difference — whether it is
 * still running, committed or already rolled back (its undo may have removed what was seen, or
 * not yet). A commit always sets last_journal_id; drift marking (another job, maybe right now)
 * never does, and recording skips a detection that job already made.
 */
export async function confirmAndRecord(
  db: Db,
  spec: DriftJobSpec,
  start: Pick<JournalView, 'takenAt' | 'ended'>,
  mismatches: Mismatch[],
  jobId: string | undefined,
): Promise<{ detected: number; deferred: string[] }> {
  if (mismatches.length === 0) return { detected: 0, deferred: [] };
  const deferred: string[] = [];
  const after = await catalogViewAt(db, spec.mountId, mismatches.map((m) => m.path), start.takenAt);
  // Entries the first read already saw ended had finished with the backend before it was looked at.
  const endedBetween = [...after.ended].filter(([id]) => !start.ended.has(id)).flatMap(([, paths]) => paths);
  const held = [...after.pending, ...endedBetween];
  const confirmed = mismatches.filter((m) => {
    const committed = (after.rows.get(m.path)?.lastJournalId ?? null) !== (m.row?.lastJournalId ?? null);
    if (committed || held.some((h) => pathsOverlap(m.path, h))) {
      deferred.push(m.path);
      return false;
    }
    return true;
  });
  return { detected: await record(db, spec, confirmed, jobId), deferred };
}

/** Marks the nodes INCONSISTENT and appends drift events (src/catalog/drift.ts), then counts what was recorded. */
async function record(db: Db, spec: DriftJobSpec, found: Mismatch[], jobId: string | undefined): Promise<number> {
  if (found.length === 0) return 0;
  const recorded = await recordDriftDetections(db, spec.mountId, found, jobId, (open, m) => sameDetection(open, m.kind, m.observed));
  const seconds = Math.max(0, (Date.now() - spec.firstEventAt) / 1000);
  for (const m of recorded) {
    driftDetected.inc({ mount: spec.mountId, kind: m.kind });
    driftDetectionLatency.observe({ mount: spec.mountId }, seconds);
  }
  return recorded.length;
}
