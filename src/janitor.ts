/**
 * The janitor: every worker looks, now and then, for PENDING journal entries of the local mounts
 * it serves whose workflow is closed or unknown — a terminated run, a workflow lost with a reset
 * dev server, a bug — and ends them the way the workflow would have: undo under the transaction's
 * fence, then ROLLED_BACK / FAILED; where undo is impossible, FAILED with compensationIncomplete
 * and the nodes INCONSISTENT (src/catalog/abandon.ts). Without it such an entry would lock its
 * path, its ancestors and its descendants forever.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { and, asc, eq, lt } from 'drizzle-orm';
import type { Db } from '../db/client';
import { journal } from '../db/schema';
import type { FencePool } from '../activities/tx-fence';
import { abandonMutation, endPendingEntry } from './catalog/abandon';
import { toErrorInfo, type ErrorInfo } from './errors';
import type { ExecutorRegistry } from './executors/registry';
import type { Logger } from './logger';
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
  const stale = await db
    .select({ id: journal.id, workflowId: journal.workflowId, mountId: journal.mountId })
    .from(journal)
    .where(and(eq(journal.status, 'PENDING'), lt(journal.updatedAt, cutoff)))
    .orderBy(asc(journal.createdAt))
    .limit(100);
  let ended = 0;
  for (const entry of stale) {
    if (!deps.serves(entry.mountId)) continue;
    if (await workflowOpen(deps.temporal, entry.workflowId)) continue;
    let fence;
    try {
      fence = await deps.fences.acquire(entry.id);
    } catch {
      continue; // an attempt of it still runs somewhere: not abandoned after all
    }
    try {
      const [now] = await db.select({ status: journal.status }).from(journal).where(eq(journal.id, entry.id));
      if (now?.status !== 'PENDING') continue;
      const cause: ErrorInfo = {
        name: 'WorkflowGoneError',
        code: 'WORKFLOW_GONE',
        message: `workflow ${entry.workflowId} closed (or is unknown to Temporal) without ending its journal entry; the janitor ended it`,
        retryable: false,
        details: { workflowId: entry.workflowId },
      };
      let outcome: string;
      try {
        const executor = await deps.executors.get(entry.mountId);
        const { undone } = await executor.undo(entry.id, { guard: fence.check });
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
  return ended;
}
