/** What the janitor's S3 upload sweep needs from the journal (see src/executors/s3/s3-upload-sweep.ts). */
import { and, eq, gt, ne, or } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { journal } from '../../db/schema';

/** How far back ended transactions name keys to check by exact key. */
const RECENT_MS = 7 * 24 * 3600 * 1000;
/** Most ended entries looked at per mount and pass (newest first): each costs one listing request. */
const RECENT_LIMIT = 500;

export interface UploadSweepView {
  /** Paths on the mount of recently ended transactions (sources and targets). */
  endedPaths: string[];
  /** Paths a PENDING transaction holds on the mount. */
  busyPaths: Set<string>;
  /** Ids of the mount's PENDING transactions. */
  pendingIds: Set<string>;
}

export async function uploadSweepView(db: Db, mountId: string): Promise<UploadSweepView> {
  const onMount = or(eq(journal.mountId, mountId), eq(journal.targetMountId, mountId));
  const pending = await db
    .select({ id: journal.id, mountId: journal.mountId, path: journal.path, targetMountId: journal.targetMountId, targetPath: journal.targetPath })
    .from(journal)
    .where(and(eq(journal.status, 'PENDING'), onMount));
  const ended = await db
    .select({ mountId: journal.mountId, path: journal.path, targetMountId: journal.targetMountId, targetPath: journal.targetPath })
    .from(journal)
    .where(and(ne(journal.status, 'PENDING'), onMount, gt(journal.updatedAt, new Date(Date.now() - RECENT_MS))))
    .orderBy(journal.updatedAt)
    .limit(RECENT_LIMIT);
  const pathsOn = (rows: { mountId: string; path: string; targetMountId: string | null; targetPath: string | null }[]) =>
    rows.flatMap((r) => [...(r.mountId === mountId ? [r.path] : []), ...(r.targetMountId === mountId && r.targetPath ? [r.targetPath] : [])]);
  return { endedPaths: pathsOn(ended), busyPaths: new Set(pathsOn(pending)), pendingIds: new Set(pending.map((r) => r.id)) };
}
