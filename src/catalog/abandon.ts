/**
 * Ending a PENDING journal entry whose undo could not finish. The lock must not stay forever: the
 * entry ends FAILED with `compensationIncomplete` in its error details, the nodes it touched are
 * marked INCONSISTENT (the disk may not match the catalog), the transaction's staging is kept for
 * an operator, and a metric counts it. Used by the mutation workflow and by the janitor.
 */
import { and, eq, like, ne, or, sql } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { journal, nodes } from '../../db/schema';
import type { ErrorInfo } from '../errors';
import { compensationIncomplete, mutationOutcomes } from '../metrics';
import { dropOutcome } from './outcomes';
import { belowPattern } from './subtree';

export interface AbandonInput {
  journalId: string;
  /** Why the mutation failed in the first place. */
  error: ErrorInfo;
  /** Why its undo could not finish. */
  compensationError: ErrorInfo;
  /** Who ended it (metric label). */
  by: 'workflow' | 'janitor';
}

/** @returns false when the entry was no longer PENDING (a retry, or someone else ended it). */
export async function abandonMutation(db: Db, input: AbandonInput): Promise<boolean> {
  const ended = await db.transaction(async (tx) => {
    const [entry] = await tx.select().from(journal).where(eq(journal.id, input.journalId)).for('update');
    if (!entry || entry.status !== 'PENDING') return null;
    const error = {
      ...input.error,
      details: { ...(input.error.details ?? {}), compensationIncomplete: true, compensationError: input.compensationError },
    };
    const now = new Date();
    await tx.update(journal).set({ status: 'FAILED', error, updatedAt: now, completedAt: now }).where(eq(journal.id, input.journalId));
    await dropOutcome(tx, input.journalId);
    const touched = [
      { mountId: entry.mountId, path: entry.realPath ?? entry.path },
      ...(entry.targetPath !== null ? [{ mountId: entry.targetMountId ?? entry.mountId, path: entry.realTargetPath ?? entry.targetPath }] : []),
    ];
    for (const t of touched) {
      await tx
        .update(nodes)
        .set({ state: 'INCONSISTENT', updatedAt: now })
        .where(
          and(
            eq(nodes.mountId, t.mountId),
            ne(nodes.state, 'DELETED'),
            t.path === '' ? sql`true` : or(eq(nodes.path, t.path), like(nodes.path, belowPattern(t.path))),
          ),
        );
    }
    return entry;
  });
  if (!ended) return false;
  compensationIncomplete.inc({ mount: ended.mountId, op: ended.op, by: input.by });
  mutationOutcomes.inc({ mount: ended.mountId, op: ended.op, outcome: 'failed' });
  return true;
}

/**
 * Ends a PENDING entry as ROLLED_BACK (its undo changed something) or FAILED (nothing had
 * changed). @returns false when it was no longer PENDING.
 */
export async function endPendingEntry(db: Db, journalId: string, status: 'ROLLED_BACK' | 'FAILED', error: ErrorInfo): Promise<boolean> {
  const now = new Date();
  const rows = await db.transaction(async (tx) => {
    const ended = await tx
      .update(journal)
      .set({ status, error: { ...error }, updatedAt: now, completedAt: now })
      .where(and(eq(journal.id, journalId), eq(journal.status, 'PENDING')))
      .returning({ mountId: journal.mountId, op: journal.op });
    if (ended.length > 0) await dropOutcome(tx, journalId);
    return ended;
  });
  if (rows.length === 0) return false;
  mutationOutcomes.inc({ mount: rows[0].mountId, op: rows[0].op, outcome: status.toLowerCase() });
  return true;
}
