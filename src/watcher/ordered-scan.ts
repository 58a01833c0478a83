/**
 * A scan of a local mount (or of one directory in it) merged with the catalog as it is walked:
 * the executor lists the subtree in UTF-8 byte order of the paths with stats in parallel
 * (`list(dir, { sorted, concurrency })`, local-sorted-walk.ts), and every `batchSize` entries
 * are merged with the catalog rows of the same key range (node-ranges.ts: one indexed range query
 * of about a batch of rows, `~<~` order), like a merge join. Mismatches are confirmed and
 * recorded a batch at a time. Memory is a batch, the walk's pending directory names and the
 * paths that could not be read — never the tree nor the mount's catalog, so a mount of a million
 * files scans in bounded memory, where the whole-view job held both.
 *
 * The drift rules are the processor's, unchanged (drift-processor.ts, drift-judge.ts): the
 * journal side of the first catalog read (pending paths, the clock, entries lately ended) is
 * taken once before the walk starts; each range's rows are read when its batch is merged (after
 * that batch was looked at), which the confirmation covers — a row changed since the first read
 * was changed by a mutation that was pending then (its paths are deferred) or began since (it is
 * pending or ended by the confirming read, and the mismatch is deferred).
 *
 * A listing that turns out not to be in order (both sides are checked as they stream) throws
 * {@link OutOfOrderListing}; the processor then runs the whole-view scan.
 */
import { catalogNodeAt, catalogNodesInOrder } from '../catalog/node-ranges';
import { journalView } from '../catalog/drift-view';
import type { Executor, NodeMeta } from '../executors/executor';
import { compareUtf8 } from '../path-order';
import { compareNode, type CatalogNode } from './drift-compare';
import { confirmAndRecord, failureOf, judgePath, type Mismatch, type PathFailure } from './drift-judge';
import { coveredByAny } from './drift-plan';
import type { DriftCheckResult, DriftProcessorDeps, ScanLimits } from './drift-types';
import type { DriftJobSpec } from './event-aggregator';

/** Batching and parallelism of a {@link scanInKeyOrder}. */
export type { ScanLimits } from './drift-types';

/**
 * 5,000 paths per range query keeps a query's rows and a batch of metadata to a few MB (two
 * batches live at once: one merging, one filling) and the round trips at 20 per 100,000 files —
 * per batch a range read, and when it differs a confirming read and one recording transaction;
 * 32 stats in flight keep every threadpool thread busy without queueing the whole pool behind one
 * scan.
 */
export const SCAN_DEFAULTS: ScanLimits = { batchSize: 5000, concurrency: 32 };

/** The listing (or the catalog range) came out of byte order: the merge would be wrong. */
export class OutOfOrderListing extends Error {
  constructor(side: 'listing' | 'catalog', prev: string, next: string) {
    super(`${side} out of byte order: ${JSON.stringify(next)} after ${JSON.stringify(prev)}`);
  }
}

type ScanSpec = Extract<DriftJobSpec, { kind: 'scan' }>;

/** Scans `spec.dir` of a local mount (see the module comment). */
export async function scanInKeyOrder(
  deps: DriftProcessorDeps,
  executor: Executor,
  spec: ScanSpec,
  jobId: string | undefined,
  limits: Partial<ScanLimits> = {},
): Promise<DriftCheckResult> {
  const { db } = deps;
  const batchSize = Math.max(1, Math.floor(limits.batchSize ?? SCAN_DEFAULTS.batchSize));
  const concurrency = Math.max(1, Math.floor(limits.concurrency ?? SCAN_DEFAULTS.concurrency));
  const dir = spec.dir;
  const start = await journalView(db, spec.mountId);
  const out: DriftCheckResult = { detected: 0, deferred: [] };

  /** Paths whose look failed, with how; kept for the whole scan (what is below them was not seen). */
  const failures = new Map<string, PathFailure>();
  const blind = new Set<string>();
  /** Failed paths below `dir` not merged yet: they come in path order, each before the listing's next entry. */
  let unmerged: string[] = [];
  const noteFailure = (path: string, err: unknown): void => {
    const f = failureOf(err);
    // A link out of the mount is not part of it: absent.
    if (f.kind === 'escaped') return;
    failures.set(path, f.kind === 'retry' ? { retry: true } : { reason: f.reason });
    blind.add(path);
    // `dir` itself is judged on its own, after the walk.
    if (path !== dir) unmerged.push(path);
  };

  let mismatches: Mismatch[] = [];
  const flush = async (): Promise<void> => {
    const found = mismatches;
    mismatches = [];
    const r = await confirmAndRecord(db, spec, start, found, jobId);
    out.detected += r.detected;
    out.deferred.push(...r.deferred);
  };
  const consider = async (path: string, row: CatalogNode | null, meta: NodeMeta | null): Promise<void> => {
    const verdict = await judgePath(executor, start, path, row, meta, failures.get(path));
    if (verdict === 'deferred') out.deferred.push(path);
    else if (verdict) {
      mismatches.push(verdict);
      if (mismatches.length >= batchSize) await flush();
    }
  };

  // The scanned directory itself (not for the mount root, which is never compared).
  let rootMeta: NodeMeta | null = null;
  let walk = dir === '';
  if (dir !== '') {
    try {
      rootMeta = await executor.stat(dir);
    } catch (err) {
      noteFailure(dir, err);
    }
    walk = !failures.has(dir) && rootMeta?.kind === 'directory';
  }

  // The subtree: `dir/` < path < `dir0` ('/' + 1 = '0') are exactly the paths below `dir`.
  const below = dir === '' ? null : `${dir}0`;
  let compared: string | null = dir === '' ? null : `${dir}/`;
  let batch: NodeMeta[] = [];

  /** Merges the batch (and failures noted with it) with the catalog rows in (compared, upTo]; upTo null: to the end of the subtree. */
  const merge = async (upTo: string | null): Promise<void> => {
    const metas = batch;
    const failed = unmerged;
    batch = [];
    unmerged = [];
    /** Failed paths met on either side (the rest are judged after the merge). */
    const handled = new Set<string>();
    let i = 0;
    const onlyLive = (m: NodeMeta) => {
      if (failures.has(m.path)) handled.add(m.path);
      return consider(m.path, null, m);
    };
    let prevRow: string | null = null;
    for await (const row of catalogNodesInOrder(db, spec.mountId, { after: compared, upTo, before: below, includeDeleted: true, pageSize: batchSize + 1 })) {
      if (prevRow !== null && compareUtf8(prevRow, row.path) >= 0) throw new OutOfOrderListing('catalog', prevRow, row.path);
      prevRow = row.path;
      while (i < metas.length && compareUtf8(metas[i].path, row.path) < 0) await onlyLive(metas[i++]);
      const meta = i < metas.length && metas[i].path === row.path ? metas[i++] : null;
      if (failures.has(row.path)) {
        handled.add(row.path);
        await consider(row.path, row, meta);
      } else if (meta) {
        // A catalogued file seen exactly as recorded: nothing to say (the bulk of every scan).
        if (meta.kind === 'file') {
          const v = compareNode(row, meta);
          if (v.drift === null && !('needsHash' in v)) continue;
        }
        await consider(row.path, row, meta);
      } else if (!coveredByAny(row.path, blind)) {
        // Not listed, and not below a path that could not be read (unknown, not removed): gone.
        await consider(row.path, row, null);
      }
    }
    while (i < metas.length) await onlyLive(metas[i++]);
    // A path that could not be read, that neither side has an entry for.
    for (const p of failed) if (!handled.has(p)) await consider(p, null, null);
    compared = upTo;
  };

  if (walk) {
    const listing = executor.list(dir, { recursive: true, sorted: true, concurrency, onUnreadable: noteFailure })[Symbol.asyncIterator]();
    let prev: string | null = null;
    // One batch is merged (catalog range read, mismatches confirmed and recorded) while the walk
    // fills the next: the disk and the database work at the same time. Merges stay one at a time
    // and in order; a failure noted meanwhile lies past the merging range, so cannot change it.
    let merging: Promise<void> = Promise.resolve();
    const startMerge = async (upTo: string): Promise<void> => {
      await merging;
      merging = merge(upTo);
      // Awaited before the next merge or at the end; never an unhandled rejection meanwhile.
      merging.catch(() => undefined);
    };
    let walked = false;
    try {
      for (;;) {
        let next: IteratorResult<NodeMeta>;
        try {
          next = await listing.next();
        } catch (err) {
          // The mount root unreadable is an unusable mount, not one entry: the job fails and is retried.
          if (dir === '') throw err;
          noteFailure(dir, err);
          break;
        }
        if (next.done) break;
        const m = next.value;
        if (prev !== null && compareUtf8(prev, m.path) >= 0) throw new OutOfOrderListing('listing', prev, m.path);
        prev = m.path;
        batch.push(m);
        if (batch.length >= batchSize) await startMerge(m.path);
      }
      walked = true;
    } finally {
      await listing.return?.();
      // No merge may still be writing once the job has ended; after a failed walk, its error is the job's.
      if (walked) await merging;
      else await merging.catch(() => undefined);
    }
  }
  await merge(null);
  if (dir !== '') {
    // Judged last: a failure to list it makes it unreadable, like a failure to stat it.
    await consider(dir, await catalogNodeAt(db, spec.mountId, dir), rootMeta);
  }
  await flush();
  return out;
}
