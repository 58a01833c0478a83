/**
 * The drift processor's work for one job: look at the backend, compare with the catalog, mark
 * what drifted INCONSISTENT and record each detection in drift_events.
 *
 * Filestore's own writes are never drift: a path held by a PENDING journal entry is deferred
 * (re-checked after its commit), and every mismatch is confirmed against a second catalog read
 * taken after the backend was looked at, so a mutation that began after the first read — and
 * committed, rolled back or is still running by the second — is deferred too: what the backend
 * showed may have been that mutation's work in progress (e.g. parent directories a write created
 * and its rollback removed again). Filestore's cross-device scratch names are never looked at.
 *
 * One unreadable entry never fails a job: a scan lists past it and a check looks at each path on
 * its own; the entry is recorded as one `unreadable` detection, nothing below it is compared (its
 * catalogued descendants are unknown, not removed), and a transient failure defers the path.
 */
import { catalogView } from '../catalog/drift-view';
import type { Executor, NodeMeta } from '../executors/executor';
import { driftRescans } from '../metrics';
import { confirmAndRecord, failureOf, judgePath, type Mismatch } from './drift-judge';
import { compareNode, type CatalogNode } from './drift-compare';
import { coveredByAny } from './drift-plan';
import type { DriftJobSpec } from './event-aggregator';
import type { DriftCheckResult, DriftProcessorDeps } from './drift-types';
import { OutOfOrderListing, scanInKeyOrder } from './ordered-scan';

export type { DriftCheckResult, DriftProcessorDeps } from './drift-types';

/** What the backend shows for a job's scope. */
interface Observation {
  /**
   * path → metadata, or null for a path that is gone. A scan keeps here only what may differ
   * from the catalog; a catalogued file it saw unchanged goes to {@link seen} instead.
   */
  live: Map<string, NodeMeta | null>;
  /** Catalogued files a scan saw exactly as recorded (their metadata is not kept). */
  seen: Set<string>;
  /** Paths that are there but cannot be read (nothing below them was seen), with why. */
  unreadable: Map<string, string>;
  /** Paths whose look failed transiently: check them again later. */
  retry: Set<string>;
}

/** Files a failed look in `obs` (see failureOf in drift-judge.ts). */
function classifyFailure(obs: Observation, path: string, err: unknown): void {
  const failure = failureOf(err);
  if (failure.kind === 'escaped') obs.live.set(path, null);
  else if (failure.kind === 'retry') obs.retry.add(path);
  else obs.unreadable.set(path, failure.reason);
}

/**
 * Looks at the backend. A scan consumes the executor's listing as it streams (pages of an S3
 * prefix, directories of a local tree) and keeps only what may differ from `rows`, so a mount of
 * millions of unchanged files costs a set of their catalogued paths, not their metadata.
 */
async function observe(executor: Executor, spec: DriftJobSpec, rows: ReadonlyMap<string, CatalogNode>): Promise<Observation> {
  const obs: Observation = { live: new Map(), seen: new Set(), unreadable: new Map(), retry: new Set() };
  if (spec.kind === 'check') {
    for (const p of spec.paths) {
      try {
        obs.live.set(p, await executor.stat(p));
      } catch (err) {
        classifyFailure(obs, p, err);
      }
    }
    return obs;
  }
  let root: NodeMeta | null = null;
  if (spec.dir !== '') {
    try {
      root = await executor.stat(spec.dir);
    } catch (err) {
      classifyFailure(obs, spec.dir, err);
      return obs;
    }
    obs.live.set(spec.dir, root);
  }
  if (spec.dir === '' || root?.kind === 'directory') {
    try {
      for await (const m of executor.list(spec.dir, { recursive: true, onUnreadable: (p, err) => classifyFailure(obs, p, err) })) {
        const row = rows.get(m.path);
        // Directories stay: an unreadable one is reported with the metadata it still had.
        if (row && m.kind === 'file' && !obs.live.has(m.path)) {
          const verdict = compareNode(row, m);
          if (verdict.drift === null && !('needsHash' in verdict)) {
            // The catalog's own string: remembering the path costs a set entry, not a copy.
            obs.seen.add(row.path);
            continue;
          }
        }
        obs.live.set(m.path, m);
      }
    } catch (err) {
      // The mount root itself unreadable is an unusable mount, not one entry: the job fails and is retried.
      if (spec.dir === '') throw err;
      classifyFailure(obs, spec.dir, err);
    }
  }
  return obs;
}

/**
 * Runs one drift job. A scan of a local mount (whole or one directory) is merged with the catalog
 * range by range as it is walked (ordered-scan.ts); a check, and a scan of a backend that does not
 * list in key order, compare with a view of the catalog held whole.
 */
export async function runDriftJob(deps: DriftProcessorDeps, spec: DriftJobSpec, jobId: string | undefined): Promise<DriftCheckResult> {
  let executor: Executor;
  try {
    executor = await deps.executors.get(spec.mountId);
  } catch (err) {
    if ((err as { code?: string }).code === 'UNKNOWN_MOUNT') return { detected: 0, deferred: [] };
    throw err;
  }
  if (spec.kind === 'scan' && executor.backend === 'local') {
    try {
      return await scanInKeyOrder(deps, executor, spec, jobId, deps.scan);
    } catch (err) {
      if (!(err instanceof OutOfOrderListing)) throw err;
      // What was recorded so far stays recorded (the plain scan sees it again as a repeat).
      driftRescans.inc({ mount: spec.mountId, reason: 'local-unordered' });
      deps.log?.warn({ mount: spec.mountId, dir: spec.dir, err: err.message }, 'ordered scan saw its listing out of order; scanning with the catalog held whole');
    }
  }
  return runWholeViewJob(deps, executor, spec, jobId);
}

/** A job compared with a view of the catalog held whole: checks, and scans that cannot be merged in order. */
async function runWholeViewJob(deps: DriftProcessorDeps, executor: Executor, spec: DriftJobSpec, jobId: string | undefined): Promise<DriftCheckResult> {
  const { db } = deps;
  const scopes = spec.kind === 'check' ? spec.paths : [spec.dir];
  const before = await catalogView(db, spec.mountId, scopes);
  const { live, seen, unreadable, retry } = await observe(executor, spec, before.rows);
  // Paths whose subtree was not seen: what the catalog holds below them is unknown, not removed.
  const blind = new Set<string>([...unreadable.keys(), ...retry]);

  // Every path either side knows about in the scope. A scan lists whole subtrees, so a catalogued
  // path it did not see is gone; a check looks below a path only when that path is no longer a
  // directory (children of a live directory report their own events).
  const candidates = new Set<string>([...live.keys(), ...blind]);
  for (const p of before.rows.keys()) {
    if (live.has(p) || seen.has(p) || blind.has(p) || coveredByAny(p, blind)) continue;
    if (spec.kind === 'scan' || spec.paths.some((q) => p.startsWith(`${q}/`) && !blind.has(q) && live.get(q)?.kind !== 'directory')) {
      candidates.add(p);
      live.set(p, null);
    }
  }

  const deferred: string[] = [];
  const mismatches: Mismatch[] = [];
  for (const path of [...candidates].sort()) {
    const verdict = await judgePath(executor, before, path, before.rows.get(path) ?? null, live.get(path) ?? null, { reason: unreadable.get(path), retry: retry.has(path) });
    if (verdict === 'deferred') deferred.push(path);
    else if (verdict) mismatches.push(verdict);
  }
  const confirmed = await confirmAndRecord(db, spec, before, mismatches, jobId);
  return { detected: confirmed.detected, deferred: [...deferred, ...confirmed.deferred] };
}
