/**
 * Path locks: a PENDING journal entry locks its path(s). Two spellings of one place — a path
 * through an in-mount symlinked directory and its real path — must conflict, so once the mount's
 * host has resolved where a mutation really acts, {@link claimRealPaths} records those real
 * locations on the entry, and every lock check compares against them too.
 *
 * All checks run under one advisory transaction lock per mount ({@link lockMount}), the same one
 * beginJournal takes, so check-then-write cannot interleave between two mutations of a mount.
 */
import { and, eq, ne, or, sql } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { journal } from '../../db/schema';
import { ConflictError, NotFoundError, PathLockedError } from '../errors';
import { pathsOverlap } from '../paths';

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/** The other PENDING entry that holds a lock, and which of the asked paths it clashes with. */
export interface PendingLock {
  journalId: string;
  op: string;
  workflowId: string;
  /** The asked path that overlaps the holder's. */
  path: string;
}

/** Serialises lock checks of one mount until the transaction ends. */
export async function lockMount(tx: Tx, mountId: string): Promise<void> {
  await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`filestore:mount:${mountId}`}))`);
}

/**
 * {@link lockMount} for each distinct mount, in sorted order: two cross-mount mutations in
 * opposite directions (a → b and b → a) take the same locks in the same order and cannot
 * deadlock.
 */
export async function lockMounts(tx: Tx, mountIds: string[]): Promise<void> {
  for (const id of [...new Set(mountIds)].sort()) await lockMount(tx, id);
}

/**
 * The first PENDING entry (other than `excludeJournalId`) whose path, target path, or claimed real
 * locations overlap one of `paths` (same path, ancestor or descendant), or null. Call it inside a
 * transaction that holds {@link lockMount}.
 */
export async function pendingLockHolder(
  tx: Tx,
  input: { mountId: string; paths: string[]; excludeJournalId?: string },
): Promise<PendingLock | null> {
  const { mountId } = input;
  const others = await tx
    .select({
      id: journal.id,
      op: journal.op,
      workflowId: journal.workflowId,
      mountId: journal.mountId,
      path: journal.path,
      realPath: journal.realPath,
      targetMountId: journal.targetMountId,
      targetPath: journal.targetPath,
      realTargetPath: journal.realTargetPath,
    })
    .from(journal)
    .where(
      and(
        eq(journal.status, 'PENDING'),
        or(eq(journal.mountId, mountId), eq(journal.targetMountId, mountId)),
        input.excludeJournalId ? ne(journal.id, input.excludeJournalId) : undefined,
      ),
    );
  for (const other of others) {
    const theirs: string[] = [];
    if (other.mountId === mountId) theirs.push(other.path, ...(other.realPath !== null ? [other.realPath] : []));
    if (other.targetMountId === mountId) {
      if (other.targetPath !== null) theirs.push(other.targetPath);
      if (other.realTargetPath !== null) theirs.push(other.realTargetPath);
    }
    const clash = input.paths.find((p) => theirs.some((q) => pathsOverlap(p, q)));
    if (clash !== undefined) return { journalId: other.id, op: other.op, workflowId: other.workflowId, path: clash };
  }
  return null;
}

/** CONFLICT (fail fast) or, when the caller asked to wait, the retryable PATH_LOCKED. */
export function lockError(mountId: string, held: PendingLock, waitForLock: boolean | undefined): ConflictError | PathLockedError {
  const message = `${mountId}:${held.path} is locked by a pending ${held.op} (${held.workflowId}); retry later or pass waitForLock`;
  const details = { mountId, path: held.path, heldBy: held.workflowId, journalId: held.journalId };
  return waitForLock ? new PathLockedError(message, details) : new ConflictError(message, details);
}

export interface ClaimRealPaths {
  journalId: string;
  mountId: string;
  /** Canonical mount-relative real location of the entry's path (symlinked parents resolved). */
  realPath: string;
  /** Same for a move/copy target; null for ops without one. */
  realTargetPath: string | null;
  /** Mount of the target when it is not `mountId` (a cross-mount copy or move). @defaultValue mountId */
  targetMountId?: string;
  /** The caller waits for locks: a clash is the retryable PATH_LOCKED instead of CONFLICT. @defaultValue false */
  waitForLock?: boolean;
}

/**
 * Records where a PENDING mutation really acts, after refusing it if another PENDING entry of the
 * mount (of each side's mount, for a cross-mount copy/move) holds an overlapping place — by its requested paths or its own claimed real paths. One
 * transaction under the mount's advisory lock, so two spellings of one place claimed at the same
 * time cannot both pass. Idempotent: a retry with the same (or newly resolved) real paths just
 * checks again and stores them again; the entry's own lock is never counted against it.
 *
 * @throws ConflictError (or PathLockedError with `waitForLock`) when another pending entry overlaps;
 *   nothing is stored then.
 * @throws NotFoundError when the entry is not (or no longer) PENDING — the mutation must not act.
 */
export async function claimRealPaths(db: Db, input: ClaimRealPaths): Promise<void> {
  const { journalId, mountId, realPath, realTargetPath } = input;
  const targetMountId = input.targetMountId ?? mountId;
  // Each (mount, real path) pair is checked against the PENDING entries of its own mount.
  const claims =
    targetMountId === mountId
      ? [{ mountId, paths: [realPath, ...(realTargetPath !== null ? [realTargetPath] : [])] }]
      : [
          { mountId, paths: [realPath] },
          { mountId: targetMountId, paths: realTargetPath !== null ? [realTargetPath] : [] },
        ];
  await db.transaction(async (tx) => {
    await lockMounts(tx, [mountId, targetMountId]);
    for (const claim of claims) {
      const held = await pendingLockHolder(tx, { ...claim, excludeJournalId: journalId });
      if (held) throw lockError(claim.mountId, held, input.waitForLock);
    }
    const rows = await tx
      .update(journal)
      .set({ realPath, realTargetPath, updatedAt: new Date() })
      .where(and(eq(journal.id, journalId), eq(journal.status, 'PENDING')))
      .returning({ id: journal.id });
    if (rows.length === 0) throw new NotFoundError(`pending journal entry ${journalId}`, { journalId });
  });
}
