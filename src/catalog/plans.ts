/** tx_plans: the undo plans of transactions, out of reach of the users of a mount. */
import { eq, sql } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { txPlans } from '../../db/schema';
import { InvalidRequestError } from '../errors';
import type { PlanStore } from '../executors/plan-store';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The plan store of one mount, in the catalog. Transaction ids are journal ids (uuids). */
export function catalogPlanStore<P extends { txId: string }>(db: Db, mountId: string): PlanStore<P> {
  const check = (txId: string) => {
    if (!UUID.test(txId)) throw new InvalidRequestError(`transaction id ${JSON.stringify(txId)} is not a journal id`);
  };
  return {
    async load(txId) {
      check(txId);
      const rows = await db.select({ plan: txPlans.plan, mountId: txPlans.mountId }).from(txPlans).where(eq(txPlans.journalId, txId));
      if (rows.length === 0) return null;
      // A plan of another mount is never this executor's to act on.
      if (rows[0].mountId !== mountId) throw new InvalidRequestError(`transaction ${txId} belongs to mount ${rows[0].mountId}, not ${mountId}`);
      return rows[0].plan as unknown as P;
    },
    async save(plan) {
      check(plan.txId);
      const value = plan as unknown as Record<string, unknown>;
      await db
        .insert(txPlans)
        .values({ journalId: plan.txId, mountId, plan: value })
        .onConflictDoUpdate({ target: txPlans.journalId, set: { plan: value, updatedAt: sql`now()` }, where: eq(txPlans.mountId, mountId) });
    },
  };
}
