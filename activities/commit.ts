/**
 * Commit: ONE transaction writes nodes, their snapshots and the journal entry COMMITTED. Either
 * the catalog shows the whole mutation or none of it. A tree's outcome is read from
 * outcome_nodes (see src/catalog/outcomes.ts) and whole subtrees change in set-based statements
 * (src/catalog/commit-tree.ts), so a 100,000-node copy, move or delete never passes through this
 * process. The SQL lives in src/catalog (commit.ts, journal.ts); this activity holds the rules.
 */
import type { Db } from '../db/client';
import { applyOutcome, type Tx } from '../src/catalog/commit';
import { lockEntryForCommit, markCommitted } from '../src/catalog/journal';
import { nodeAt } from '../src/catalog/nodes';
import { dropOutcome } from '../src/catalog/outcomes';
import type { JournalRow, NodeRow } from '../src/catalog/types';
import { CommitError } from '../src/errors';
import type { MutationOutcome } from '../src/executors/executor';
import { mutationOutcomes } from '../src/metrics';
import { fenceKey } from './tx-fence';
import { primaryPath, type MutationRequest, type MutationResult, type NodeSummary } from '../src/mutations';

/** A committed node as a mutation's result shows it; null for none or a DELETED one. */
export function summarize(row: NodeRow | undefined): NodeSummary | null {
  if (!row || row.state === 'DELETED') return null;
  return { path: row.path, kind: row.kind, size: row.size, sha256: row.sha256, mode: row.mode, mtime: row.mtime, version: row.version };
}

/** A result's fields that depend on what was applied; {@link commitEntry} adds the rest. */
export type CommitBody = Omit<MutationResult, 'status' | 'journalId' | 'workflowId' | 'committedAt'>;

/**
 * The commit protocol every mutation shares, in ONE transaction: take the transaction's fence
 * (commit waits while any attempt — a stale execute, the janitor's undo — still holds it, and nobody
 * takes it while the commit runs, so the janitor never undoes a mutation whose commit is in flight),
 * answer a retried commit whose first attempt landed with the stored result (no second write),
 * refuse an entry that is not PENDING, `apply` the outcome, drop the stored outcome, and mark the
 * entry COMMITTED with its result.
 */
export async function commitEntry(db: Db, journalId: string, req: MutationRequest, apply: (tx: Tx, entry: JournalRow) => Promise<CommitBody>): Promise<MutationResult> {
  const committed = await db.transaction(async (tx) => {
    const entry = await lockEntryForCommit(tx, journalId, fenceKey(journalId));
    if (!entry) throw new CommitError(`journal entry ${journalId} does not exist`);
    if (entry.status === 'COMMITTED') return { result: entry.result as unknown as MutationResult, fresh: false };
    if (entry.status !== 'PENDING') throw new CommitError(`journal entry ${journalId} is ${entry.status}, not PENDING`);
    const body = await apply(tx, entry);
    // Applied: the stored outcome has served its purpose, and goes in the same transaction.
    await dropOutcome(tx, journalId);
    const committedAt = new Date();
    const result: MutationResult = { status: 'COMMITTED', journalId, workflowId: entry.workflowId, ...body, committedAt: committedAt.toISOString() };
    await markCommitted(tx, journalId, { ...result }, committedAt);
    return { result, fresh: true };
  });
  if (committed.fresh) mutationOutcomes.inc({ mount: req.mountId, op: req.op, outcome: 'committed' });
  return committed.result;
}

export function createCommitActivities(deps: { db: Db }) {
  /** Applies a verified outcome to the catalog and commits the journal entry, all in one transaction. */
  async function commitMutation(input: { journalId: string; request: MutationRequest; outcome: MutationOutcome }): Promise<MutationResult> {
    const { journalId, request: req, outcome } = input;
    return commitEntry(deps.db, journalId, req, async (tx, entry) => {
      const affected = await applyOutcome(tx, req.mountId, journalId, outcome);
      // Where the node really is: a request through an in-mount symlinked directory was executed
      // (and its nodes recorded) at the real location the mount's host resolved.
      const target = (req.op === 'move' || req.op === 'copy' ? entry.realTargetPath : entry.realPath) ?? primaryPath(req);
      const primary = req.op === 'delete' ? null : await nodeAt(tx, req.mountId, target);
      return {
        op: req.op,
        mountId: req.mountId,
        path: req.path,
        targetPath: req.op === 'move' || req.op === 'copy' ? req.targetPath : null,
        node: req.op === 'delete' ? null : summarize(primary ?? undefined),
        nodesAffected: affected,
        bytesWritten: outcome.bytesWritten,
      };
    });
  }

  return { commitMutation };
}
