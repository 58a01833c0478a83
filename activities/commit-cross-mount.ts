/**
 * Commit of a cross-mount copy or move: ONE catalog transaction records the target's nodes on the
 * target mount, for a move the source DELETED on the source mount, and the journal entry
 * COMMITTED. Either the catalog shows the whole transfer on both mounts or none of it.
 */
import type { Db } from '../db/client';
import { upsertNodes } from '../src/catalog/commit';
import { markSubtreeDeleted } from '../src/catalog/commit-tree';
import { nodeAt } from '../src/catalog/nodes';
import { CommitError } from '../src/errors';
import type { MutationOutcome } from '../src/executors/executor';
import { crossMountTarget, type MutationRequest, type MutationResult } from '../src/mutations';
import { commitEntry, summarize } from './commit';

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
    return commitEntry(deps.db, journalId, req, async (tx, entry) => {
      let affected = 0;
      for (const p of target.removed) affected += await markSubtreeDeleted(tx, targetMountId, journalId, p);
      affected += (await upsertNodes(tx, targetMountId, journalId, target.upserted)).length;
      for (const p of source?.removed ?? []) affected += await markSubtreeDeleted(tx, req.mountId, journalId, p);
      const targetPath = entry.realTargetPath ?? req.targetPath;
      return {
        op: req.op,
        mountId: req.mountId,
        path: req.path,
        targetPath: req.targetPath,
        targetMountId,
        node: summarize((await nodeAt(tx, targetMountId, targetPath)) ?? undefined),
        nodesAffected: affected,
        bytesWritten: target.bytesWritten,
      };
    });
  }

  return { commitTransfer };
}
