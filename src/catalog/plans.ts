/** tx_plans: the undo plans of transactions, out of reach of the users of a mount. */
import { and, eq, sql } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { txPlans } from '../../db/schema';
import { InvalidRequestError } from '../errors';
import type { PlanStore } from '../executors/plan-store';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The plan store of one mount, in the catalog. Transaction ids are journal ids (uuids); a plan is
 * keyed by (journal id, mount), so a cross-mount copy or move keeps one plan on each side under
 * its one journal id, and an executor only ever sees its own mount's plans.
 */
export function catalogPlanStore<P extends { txId: string }>(db: Db, mountId: string): PlanStore<P> {
  const check = (txId: string) => {
    if (!UUID.test(txId)) throw new InvalidRequestError(`transaction id ${JSON.stringify(txId)} is not a journal id`);
  };
  return {
    async load(txId) {
      check(txId);
      const rows = await db
        .select({ plan: txPlans.plan })
        .from(txPlans)
        .where(and(eq(txPlans.journalId, txId), eq(txPlans.mountId, mountId)));
      return rows.length === 0 ? null : (rows[0].plan as unknown as P);
    },
    async save(plan) {
      check(plan.txId);
      const value = plan as unknown as Record<string, unknown>;
      await db
        .insert(txPlans)
        .values({ journalId: plan.txId, mountId, plan: value })
        .onConflictDoUpdate({ target: [txPlans.journalId, txPlans.mountId], set: { plan: value, updatedAt: sql`now()` } });
    },
  };
}

/** The mounts on which transaction `journalId` saved a plan (where it may have changed something). */
export async function planMounts(db: Db, journalId: string): Promise<string[]> {
  const rows = await db.select({ mountId: txPlans.mountId }).from(txPlans).where(eq(txPlans.journalId, journalId));
  return rows.map((r) => r.mountId);
}
