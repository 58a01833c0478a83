/**
 * The janitor: every worker looks, now and then, for PENDING journal entries of the local mounts
 * it serves whose workflow is closed or unknown — a terminated run, a workflow lost with a reset
 * dev server, a bug — and ends them the way the workflow would have: undo under the transaction's
 * fence, then ROLLED_BACK / FAILED; where undo is impossible, FAILED with compensationIncomplete
 * and the nodes INCONSISTENT (src/catalog/abandon.ts). Without it such an entry would lock its
 * path, its ancestors and its descendants forever. It also aborts stale multipart uploads under
 * every S3 mount (S3 keeps an unfinished upload's parts, and bills them, until it is aborted).
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Db } from '../db/client';
import type { FencePool } from '../activities/tx-fence';
import { abandonMutation, endPendingEntry } from './catalog/abandon';
import { entryState, stalePendingEntries } from './catalog/journal';
import { s3MountIds } from './catalog/mounts';
import { planMounts } from './catalog/plans';
import { uploadSweepView } from './catalog/upload-sweep';
import { toErrorInfo, type ErrorInfo } from './errors';
import type { ExecutorRegistry } from './executor-registry';
import type { Logger } from './logger';
import type { UploadStore } from './operations/upload-area';
import { janitorResolved } from './metrics';

export interface JanitorDeps {
  db: Db;
  executors: ExecutorRegistry;
  fences: FencePool;
  temporal: Client;
  /** Whether this process serves the mount (local mounts are host-bound: only their host can undo). */
  serves(mountId: string): boolean;
  /** Entries younger than this are left alone (ms). */
  graceMs: number;
  /** Multipart uploads under S3 mounts older than this that no PENDING transaction owns are aborted (ms). @defaultValue 3600000 */
  s3UploadGraceMs?: number;
  /**
   * The upload area this host's writes read from (HTTP and SDK stream uploads): swept of files
   * older than `uploadGraceMs` whose run is not going, so an SDK caller that never awaits its
   * result — or a crashed API — leaves nothing behind for good.
   */
  uploads?: { area: UploadStore; graceMs: number };
  log?: Logger;
}

/** Whether the workflow that owns an entry can still end it itself. */
async function workflowOpen(temporal: Client, workflowId: string): Promise<boolean> {
  try {
    const d = await temporal.workflow.getHandle(workflowId).describe();
    return d.status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

/** One pass; returns how many entries it ended. */
export async function runJanitorPass(deps: JanitorDeps): Promise<number> {
  const { db, log } = deps;
  const cutoff = new Date(Date.now() - deps.graceMs);
  const stale = await stalePendingEntries(db, cutoff, 100);
  let ended = 0;
  // S3 mounts are served by every worker (their activities run on the general queue).
  const s3Mounts = await s3MountIds(db);
  for (const entry of stale) {
    // A cross-mount copy/move has a transaction on each side: the source's (a move's delete) is
    // undone first, then the target's write. A side this process cannot reach must not have
    // started (no plan saved there, checked under the fence below), or another host ends it.
    const sides = entry.targetMountId && entry.targetMountId !== entry.mountId ? [entry.mountId, entry.targetMountId] : [entry.mountId];
    const reachable = (m: string) => s3Mounts.has(m) || deps.serves(m);
    if (!sides.some(reachable)) continue;
    if (await workflowOpen(deps.temporal, entry.workflowId)) continue;
    let fence;
    try {
      fence = await deps.fences.acquire(entry.id);
    } catch {
      continue; // an attempt of it still runs somewhere: not abandoned after all
    }
    try {
      const now = await entryState(db, entry.id);
      if (now?.status !== 'PENDING') continue;
      const started = await planMounts(db, entry.id);
      if (sides.some((m) => !reachable(m) && started.includes(m))) continue;
      const cause: ErrorInfo = {
        name: 'WorkflowGoneError',
        code: 'WORKFLOW_GONE',
        message: `workflow ${entry.workflowId} closed (or is unknown to Temporal) without ending its journal entry; the janitor ended it`,
        retryable: false,
        details: { workflowId: entry.workflowId },
      };
      let outcome: string;
      try {
        let undone = false;
        for (const side of sides.filter(reachable)) undone = (await (await deps.executors.get(side)).undo(entry.id, { guard: fence.check })).undone || undone;
        const status = undone ? 'ROLLED_BACK' : 'FAILED';
        await endPendingEntry(db, entry.id, status, cause);
        outcome = status.toLowerCase();
      } catch (err) {
        await abandonMutation(db, { journalId: entry.id, error: cause, compensationError: toErrorInfo(err), by: 'janitor' });
        outcome = 'compensation_incomplete';
      }
      janitorResolved.inc({ mount: entry.mountId, outcome });
      log?.warn({ journalId: entry.id, workflowId: entry.workflowId, mount: entry.mountId, outcome }, 'janitor ended an abandoned journal entry');
      ended++;
    } finally {
      await fence.release();
    }
  }
  await sweepS3Uploads(deps, s3Mounts);
  if (deps.uploads) {
    const removed = await deps.uploads.area
      .sweep(deps.uploads.graceMs, (id) => workflowOpen(deps.temporal, id).catch(() => true))
      .catch((err: Error) => (log?.warn({ err: err.message }, 'janitor could not sweep the upload area'), 0));
    if (removed > 0) log?.info({ removed }, 'janitor swept the upload area');
  }
  return ended;
}

/**
 * Aborts stale multipart uploads under each S3 mount (see src/executors/s3/s3-upload-sweep.ts).
 * A failing mount (bucket gone, credentials revoked) is logged and skipped: it must not stop the
 * janitor's other work.
 */
async function sweepS3Uploads(deps: JanitorDeps, s3Mounts: Set<string>): Promise<void> {
  const olderThan = new Date(Date.now() - (deps.s3UploadGraceMs ?? 3_600_000));
  for (const mountId of s3Mounts) {
    try {
      const executor = await deps.executors.get(mountId);
      if (!executor.sweepStaleUploads) continue;
      const view = await uploadSweepView(deps.db, mountId);
      const aborted = await executor.sweepStaleUploads({
        olderThan,
        paths: view.endedPaths,
        busy: (p) => view.busyPaths.has(p),
        pending: (txId) => view.pendingIds.has(txId),
      });
      if (aborted > 0) deps.log?.warn({ mount: mountId, aborted }, 'janitor aborted stale multipart uploads');
    } catch (err) {
      deps.log?.warn({ mount: mountId, err: (err as Error).message }, 'janitor could not sweep the multipart uploads of an S3 mount');
    }
  }
}
