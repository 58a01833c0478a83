/**
 * Where an executor keeps the undo plan of each transaction. The plan drives undo, so it must live
 * where mount users cannot write it: the catalog (src/catalog/plans.ts) in production. Keeping it
 * on the backend (a `plan.json` in the mount) let anyone who can write the mount make undo delete
 * whatever they named.
 */

/** Durable store of the plans of one mount's transactions, keyed by transaction (journal) id. */
export interface PlanStore<P extends { txId: string } = { txId: string }> {
  /** The plan of `txId`, or null when none was saved. */
  load(txId: string): Promise<P | null>;
  /** Saves (replaces) the plan atomically: a reader sees the old plan or the new one, never half. */
  save(plan: P): Promise<void>;
}

/**
 * A plan store in this process's memory: for executors driven directly (executor-level tests,
 * one-shot tools). A crash loses it, so a worker never uses it.
 */
export class MemoryPlanStore<P extends { txId: string } = { txId: string }> implements PlanStore<P> {
  private readonly plans = new Map<string, string>();

  async load(txId: string): Promise<P | null> {
    const text = this.plans.get(txId);
    return text === undefined ? null : (JSON.parse(text) as P);
  }

  async save(plan: P): Promise<void> {
    // A copy, as a database would keep it: later mutation of the caller's object changes nothing.
    this.plans.set(plan.txId, JSON.stringify(plan));
  }
}
