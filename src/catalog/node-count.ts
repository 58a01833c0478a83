/** A bounded count of a mount's catalogued nodes, for choosing its watch backend. */
import { sql } from 'drizzle-orm';
import type { Db } from '../../db/client';

/**
 * How many nodes of `mountId` are not DELETED, counting no further than `limit`: the cost is
 * bounded by `limit` rows of the (mount, path) index whatever the size of the mount.
 */
export async function countLiveNodesUpTo(db: Db, mountId: string, limit: number): Promise<number> {
  const res = await db.execute<{ n: number }>(
    sql`SELECT count(*)::int AS n FROM (SELECT 1 FROM nodes WHERE mount_id = ${mountId} AND state <> 'DELETED' LIMIT ${Math.max(0, Math.floor(limit))}) AS bounded`,
  );
  return Number(res.rows[0]?.n ?? 0);
}
