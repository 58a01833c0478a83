/** drift_events reads (the watcher writes them; reconciliation, a later feature, resolves them). */
import { and, desc, eq, isNull, type SQL } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { driftEvents, type DriftEventRow } from '../../db/schema';

export interface DriftQuery {
  mountId?: string;
  /** Include events that were resolved. @defaultValue false */
  all?: boolean;
  /** @defaultValue 100 */
  limit?: number;
}

/** Drift events, newest first; open ones only unless `all`. */
export async function listDriftEvents(db: Db, q: DriftQuery = {}): Promise<DriftEventRow[]> {
  const conds: SQL[] = [];
  if (q.mountId) conds.push(eq(driftEvents.mountId, q.mountId));
  if (!q.all) conds.push(isNull(driftEvents.resolvedAt));
  return db
    .select()
    .from(driftEvents)
    .where(conds.length ? and(...conds) : undefined)
    .orderBy(desc(driftEvents.detectedAt), desc(driftEvents.id))
    .limit(q.limit ?? 100);
}
