/**
 * The backend-neutral transaction driver: one plan per transaction (journal) id in a
 * {@link PlanStore}, saved before anything destructive happens, carrying the backend's own typed
 * state (`P['state']`: an S3 upload id, backup keys, a batch cursor, …).
 *
 *  - {@link runTransaction}: an applied plan answers with its stored outcome; an ended one
 *    (undone or finalized) refuses; otherwise the backend's `prepare` describes the op, the plan
 *    is saved, `apply` runs its steps (each destructive step behind the call's guard) and the plan
 *    is marked applied with its outcome. A permanent failure while the call still holds the
 *    transaction (its guard passes) is undone at once, so the backend is left as it was.
 *  - {@link undoTransaction} / {@link finalizeTransaction}: idempotent; a crash half-way through
 *    either is finished by the next call.
 *
 * The backend decides what "destructive" means and calls {@link Tx.guard} before each such step;
 * the driver guards every plan save.
 */
import { FilestoreError, InvalidRequestError } from '../errors';
import type { MutationOp, MutationOptions, MutationOutcome, TxControlOptions } from './executor';
import type { PlanStore } from './plan-store';

/** The durable record of one transaction; `state` is the backend's. */
export interface TxPlan<S = unknown> {
  version: 1;
  txId: string;
  op: MutationOp;
  /** Destination of write / mkdir / copy / move; the deleted path for delete. */
  target: string;
  /** Source of copy / move. */
  src?: string;
  /** What the backend recorded before and while applying (typed per backend). */
  state: S;
  /** True once the op fully applied; `outcome` is then returned to every retry. */
  applied: boolean;
  outcome?: MutationOutcome;
  /** Set once undo finished: a retried undo answers the same. */
  undone?: { changed: boolean };
  /** Set once finalize dropped staging and backups. */
  finalized?: boolean;
}

/** What identifies a request for the "same txId, same op" check. */
export interface TxRequest {
  op: MutationOp;
  target: string;
  src?: string;
}

/** One call's hold on a plan: its guard, and saving the plan under it. */
export interface Tx<P extends TxPlan> {
  readonly plan: P;
  /** Throws when this call may no longer act on the transaction (see MutationOptions.guard). */
  guard(): Promise<void>;
  /** Saves the plan (atomically, in the store) once the guard passes. */
  save(): Promise<void>;
  /** Reports a durable step (test seam: a hook that throws stops the call as a crash would), then checks the guard. */
  step(name: string): Promise<void>;
}

/** What the driver needs from the backend it runs for. */
export interface TxBackend<P extends TxPlan> {
  readonly plans: PlanStore<P>;
  /** Turns a raw backend failure into a typed one (the driver decides on undo by `retryable`). */
  mapError(err: unknown, req: TxRequest): unknown;
  /** Reverses what the plan did, from whatever point it reached; idempotent. Returns whether anything visible changed. */
  revert(tx: Tx<P>): Promise<boolean>;
  /** Drops the transaction's staging and backups (the plan may be null: nothing was planned). Idempotent. */
  dropStaging(txId: string, tx: Tx<P> | null): Promise<void>;
  /** Test seam: runs after each durable step; throwing simulates a crash there. */
  afterStep?(step: string, plan: P): void | Promise<void>;
}

const noGuard = async (): Promise<void> => undefined;

function holdOf<P extends TxPlan>(backend: TxBackend<P>, plan: P, guard: () => Promise<void>): Tx<P> {
  return {
    plan,
    guard,
    async save() {
      await guard();
      await backend.plans.save(plan);
    },
    async step(name) {
      await backend.afterStep?.(name, plan);
      // After the step = before the next one: a superseded attempt stops here, leaving its work as is.
      await guard();
    },
  };
}

async function loadPlan<P extends TxPlan>(backend: TxBackend<P>, txId: string): Promise<P | null> {
  const plan = await backend.plans.load(txId);
  if (plan && plan.txId !== txId) throw new InvalidRequestError(`the plan stored for ${txId} names ${plan.txId}`);
  return plan;
}

/** Throws InvalidRequestError when an existing plan was made for a different request. */
export function assertSameRequest(plan: TxPlan, req: TxRequest): void {
  if (plan.op !== req.op || plan.target !== req.target || (plan.src ?? null) !== (req.src ?? null)) {
    throw new InvalidRequestError(
      `transaction ${plan.txId} already holds a ${plan.op} of ${JSON.stringify(plan.src ?? plan.target)}; a transaction id cannot be reused for a different mutation`,
      { txId: plan.txId, plannedOp: plan.op, requestedOp: req.op },
    );
  }
}

/**
 * Runs one mutation as a transaction (see the module header). `prepare` only reads: it validates
 * the request against the backend and returns the state the plan starts with. `apply` resumes from
 * whatever the plan recorded — never re-derived, since after a crash the target may already hold
 * the new content.
 */
export async function runTransaction<P extends TxPlan>(
  backend: TxBackend<P>,
  req: TxRequest,
  opts: MutationOptions,
  prepare: () => Promise<P['state']>,
  apply: (tx: Tx<P>) => Promise<MutationOutcome>,
): Promise<MutationOutcome> {
  const guard = opts.guard ?? noGuard;
  let tx: Tx<P> | null = null;
  try {
    let plan = await loadPlan(backend, opts.txId);
    if (plan) {
      assertSameRequest(plan, req);
      if (plan.applied && plan.outcome) return plan.outcome;
      // An undone or finalized transaction is over: applying it again would undo the undo.
      if (plan.undone || plan.finalized) throw new InvalidRequestError(`transaction ${opts.txId} has already ended`, { txId: opts.txId });
      tx = holdOf(backend, plan, guard);
    } else {
      const state = await prepare();
      plan = { version: 1, txId: opts.txId, op: req.op, target: req.target, ...(req.src !== undefined ? { src: req.src } : {}), state, applied: false } as P;
      tx = holdOf(backend, plan, guard);
      await tx.save();
    }
    await tx.step('plan-saved');
    const outcome = await apply(tx);
    plan.applied = true;
    plan.outcome = outcome;
    await tx.save();
    return outcome;
  } catch (err) {
    const mapped = backend.mapError(err, req);
    if (tx && mapped instanceof FilestoreError && !mapped.retryable) {
      // A permanent failure will not be retried: leave the backend as it was, not half-done — but
      // only while this call still holds the transaction (its guard passes). A stale attempt must
      // never undo what a later one did. If this cleanup fails the plan stays, and the workflow's
      // compensation finishes it.
      const stillOurs = await guard().then(
        () => true,
        () => false,
      );
      if (stillOurs) await finishUndo(backend, tx).catch(() => undefined);
    }
    throw mapped;
  }
}

/** Reverts, records the undo, then drops staging (in that order: a crash in between is finished by the next undo). */
async function finishUndo<P extends TxPlan>(backend: TxBackend<P>, tx: Tx<P>): Promise<boolean> {
  const { plan } = tx;
  if (plan.undone) {
    await tx.guard();
    await backend.dropStaging(plan.txId, tx);
    return plan.undone.changed;
  }
  // Committed and finalized: its backups are gone and the catalog records it; nothing to undo.
  if (plan.finalized) return false;
  await tx.guard();
  const changed = await backend.revert(tx);
  plan.undone = { changed };
  await tx.save();
  await backend.dropStaging(plan.txId, tx);
  return changed;
}

/**
 * Reverses transaction `txId` from whatever point it reached; idempotent (a retried undo answers
 * the same). Without a plan nothing destructive ran (the plan is saved first); leftover staging
 * is dropped.
 */
export async function undoTransaction<P extends TxPlan>(backend: TxBackend<P>, txId: string, opts: TxControlOptions = {}): Promise<{ undone: boolean }> {
  const guard = opts.guard ?? noGuard;
  const plan = await loadPlan(backend, txId);
  if (!plan) {
    await guard();
    await backend.dropStaging(txId, null);
    return { undone: false };
  }
  return { undone: await finishUndo(backend, holdOf(backend, plan, guard)) };
}

/** Drops transaction `txId`'s staging and backups once it is committed (or undone); idempotent. */
export async function finalizeTransaction<P extends TxPlan>(backend: TxBackend<P>, txId: string, opts: TxControlOptions = {}): Promise<void> {
  const guard = opts.guard ?? noGuard;
  const plan = await loadPlan(backend, txId);
  if (plan?.finalized) return;
  await guard();
  const tx = plan ? holdOf(backend, plan, guard) : null;
  await backend.dropStaging(txId, tx);
  if (plan && tx) {
    plan.finalized = true;
    await tx.save();
  }
}
