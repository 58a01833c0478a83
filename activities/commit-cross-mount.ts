/**
 * Commit of a cross-mount copy or move: ONE catalog transaction records the target's nodes on the
 * target mount, for a move the source DELETED on the source mount, and the journal entry
 * COMMITTED. Either the catalog shows the whole transfer on both mounts or none of it.
 */
import type { Db } from '../db/client';
import { upsertNodes } from '../src/catalog/commit';
import { markSubtreeDeleted } from '../src/catalog/commit-tree';
import { lockEntryForCommit, markCommitted } from '../src/catalog/journal';
import { nodeAt } from '../src/catalog/nodes';
import { dropOutcome } from '../src/catalog/outcomes';
import { CommitError } from '../src/errors';
import type { MutationOutcome } from '../src/executors/executor';
import { mutationOutcomes } from '../src/metrics';
import { crossMountTarget, type MutationRequest, type MutationResult } from '../src/mutations';
import { summarize } from './commit';
import { fenceKey } from './tx-fence';

export function createCrossMountCommitActivities(deps: { db: Db }) {
  /**
   * Applies a verified transfer to the catalog and commits the journal entry, in one transaction.
   * `target` is the target side's verified outcome; `source` a move's verified source delete
   * (null for a copy). A retry after the commit landed answers with the stored result.
   */
  async function commitTransfer(input: {
    journalId: string;
    request: MutationRequest;
    target: MutationOutcome;
    source: MutationOutcome | null;
  }): Promise<MutationResult> {
    const { journalId, request: req, target, source } = input;
    const targetMountId = crossMountTarget(req);
    if (targetMountId === null || (req.op !== 'copy' && req.op !== 'move')) throw new CommitError(`journal entry ${journalId} is not a cross-mount copy or move`);
    if (req.op === 'move' && source === null) throw new CommitError(`the move of journal entry ${journalId} has no verified source delete`);
    const committed = await deps.db.transaction(async (tx) => {
      const entry = await lockEntryForCommit(tx, journalId, fenceKey(journalId));
      if (!entry) throw new CommitError(`journal entry ${journalId} does not exist`);
      if (entry.status === 'COMMITTED') return { result: entry.result as unknown as MutationResult, fresh: false };
      if (entry.status !== 'PENDING') throw new CommitError(`journal entry ${journalId} is ${entry.status}, not PENDING`);

      let affected = 0;
      for (const p of target.removed) affected += await markSubtreeDeleted(tx, targetMountId, journalId, p);
      affected += (await upsertNodes(tx, targetMountId, journalId, target.upserted)).length;
      for (const p of source?.removed ?? []) affected += await markSubtreeDeleted(tx, req.mountId, journalId, p);
      await dropOutcome(tx, journalId);

      const targetPath = entry.realTargetPath ?? req.targetPath;
      const committedAt = new Date();
      const result: MutationResult = {
        status: 'COMMITTED',
        journalId,
        workflowId: entry.workflowId,
        op: req.op,
        mountId: req.mountId,
        path: req.path,
        targetPath: req.targetPath,
        targetMountId,
        node: summarize((await nodeAt(tx, targetMountId, targetPath)) ?? undefined),
        nodesAffected: affected,
        bytesWritten: target.bytesWritten,
        committedAt: committedAt.toISOString(),
      };
      await markCommitted(tx, journalId, { ...result }, committedAt);
      return { result, fresh: true };
    });
    if (committed.fresh) mutationOutcomes.inc({ mount: req.mountId, op: req.op, outcome: 'committed' });
    return committed.result;
  }

  return { commitTransfer };
}
