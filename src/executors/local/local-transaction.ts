/**
 * The transaction driver of the local executor. Every mutation runs as one plan staged under
 * `<root>/.filestore-staging/<txId>/` (see local-staging.ts): {@link runTransaction} writes the plan
 * before anything destructive happens, resumes an unfinished one and records the outcome;
 * {@link missingParents} drafts the directories a plan will create, and {@link createPlanDirs}
 * creates them as the first step of applying it.
 */
import path from 'node:path';
import { FilestoreError, InvalidRequestError, NotFoundError } from '../../errors';
import { ancestorsOf, baseName, parentPath } from '../../paths';
import type { MutationOptions, MutationOutcome } from '../executor';
import { mkdirNoFollow } from './local-dirfd';
import { errnoOf, mapFsError } from './local-fs';
import { MountDirs } from './local-mount-dirs';
import { type MutationStep, type Plan, type PlanRequest, TxStaging, assertPlanMatches, attachGuard } from './local-staging';
import { undoPlan } from './local-undo';
import type { PlanStore } from '../plan-store';

/** What an op's `prepare` step derives from the disk before anything changes. */
export type PlanDraft = Pick<Plan, 'kind' | 'hadPrevious' | 'createdDirs'>;

/** What the driver needs from the executor it runs for. */
export interface TxContext {
  /** The mount root after realpath. */
  readonly rootReal: string;
  readonly mountId: string;
  /** Where plans are kept (out of the mount users' reach). */
  readonly plans: PlanStore<Plan>;
  /** Reports a durable step to the executor's `afterStep` hook; throwing aborts the call as a crash would. */
  step(step: MutationStep, plan: Plan): Promise<void>;
}

/** A mount path, JSON-quoted for messages. */
export const q = (p: string): string => JSON.stringify(p);

/** Host path of a canonical mount path; only for paths whose containment was already proven. */
export function hostPath(rootReal: string, rel: string): string {
  return rel === '' ? rootReal : path.join(rootReal, ...rel.split('/'));
}

/**
 * The idempotency core: an applied plan answers with its stored outcome; an unfinished one is
 * resumed with the history it recorded (never re-derived: after a crash the target may already
 * hold the new content); otherwise `prepare` validates and describes the op, and the plan is
 * written before anything destructive happens.
 */
export async function runTransaction(
  ctx: TxContext,
  req: PlanRequest,
  opts: MutationOptions,
  prepare: () => Promise<PlanDraft>,
  apply: (staging: TxStaging, plan: Plan) => Promise<MutationOutcome>,
): Promise<MutationOutcome> {
  const guard = opts.guard ?? (async () => undefined);
  const staging = new TxStaging(ctx.rootReal, opts.txId, ctx.mountId, ctx.plans, guard);
  let plan = await staging.readPlan();
  if (plan) {
    assertPlanMatches(plan, req);
    if (plan.applied && plan.outcome) return plan.outcome;
    // An undone or finalized transaction is over: applying it again would undo the undo.
    if (plan.undone || plan.finalized) throw new InvalidRequestError(`transaction ${opts.txId} has already ended`, { txId: opts.txId });
  } else {
    plan = { version: 1, txId: opts.txId, ...req, ...(await prepare()), applied: false };
    await staging.savePlan(plan);
  }
  attachGuard(plan, guard);
  try {
    // Held (no-follow) for the whole call, a resumed one too: every staging path goes through it.
    await staging.ensure();
    await ctx.step('plan-saved', plan);
    const outcome = await apply(staging, plan);
    plan.applied = true;
    plan.outcome = outcome;
    await staging.savePlan(plan);
    return outcome;
  } catch (err) {
    const mapped = mapFsError(err, q(req.target), { mountId: ctx.mountId });
    if (mapped instanceof FilestoreError && !mapped.retryable) {
      // A permanent failure will not be retried: leave the mount as it was, not half-done — but
      // only while this attempt still holds the transaction (the guard passes). A stale attempt
      // must never undo what a later attempt did. If this cleanup fails the plan stays, and the
      // workflow's compensation finishes it.
      const stillOurs = await guard().then(
        () => true,
        () => false,
      );
      if (stillOurs) await undoPlan(ctx.rootReal, staging, plan).catch(() => undefined);
    }
    throw mapped;
  } finally {
    // Whatever stopped the call (a crash, a lost fence), the held staging fd goes with it.
    await staging.release();
  }
}

/**
 * Ancestors of `rel` (a real canonical path) that do not exist yet (parents first), found by the
 * no-follow walk: a file in the way is NOT_A_DIRECTORY, a symlink is refused.
 */
export async function missingParents(mount: MountDirs, rel: string, mayCreate: boolean): Promise<string[]> {
  const ancestors = ancestorsOf(rel);
  let cur = await mount.openDir('');
  try {
    for (let i = 0; i < ancestors.length; i++) {
      const next = await cur.child(baseName(ancestors[i]));
      if (!next) {
        if (!mayCreate) throw new NotFoundError(`parent directory ${q(parentPath(rel))}`);
        return ancestors.slice(i);
      }
      await cur.close();
      cur = next;
    }
    return [];
  } finally {
    await cur.close();
  }
}

/**
 * Creates the plan's directories, each with a no-follow mkdir in its held parent (undone and
 * refused when that parent moved, see local-dirfd.ts); ones already there (from an earlier
 * attempt) are fine, as long as they are real directories.
 */
export async function createPlanDirs(ctx: TxContext, plan: Plan): Promise<void> {
  const mount = new MountDirs(ctx.rootReal, ctx.mountId);
  for (const dir of plan.createdDirs) {
    await mount.withParent(dir, async (parent, name) => {
      try {
        await mkdirNoFollow(parent, name);
      } catch (err) {
        if (errnoOf(err) !== 'EEXIST') throw err;
        // Opening it no-follow proves it is a directory and not a symlink someone put there.
        const existing = await parent.child(name);
        if (!existing) throw err;
        await existing.close();
        return;
      }
      await parent.sync();
    });
  }
  await ctx.step('dirs-created', plan);
}
