/**
 * Per-transaction staging of the local executor: `<root>/.filestore-staging/<txId>/` (0700, the
 * worker's own) holds
 *
 *  - `data.tmp`   a file's new content until it is renamed over the target;
 *  - `tree.tmp`   a directory copy until it is renamed into place;
 *  - `backup`     what the op replaced or deleted, until finalize drops it or undo restores it.
 *
 * The plan — what the op does and what existed before it — is NOT kept here: it lives in a
 * {@link PlanStore} (the catalog), where users who can write the mount cannot forge it. A tampered
 * staging folder can therefore only make a mutation fail, never make undo touch anything else.
 * Everything here lives on the mount's own file system, so every hand-over is an atomic rename.
 */
import type { BigIntStats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { InvalidRequestError, PathChangedError } from '../../errors';
import { STAGING_DIR } from '../../paths';
import type { MutationOp, MutationOutcome, NodeKind } from '../executor';
import type { PlanStore } from '../plan-store';
import { type HeldDir, linkNoFollow, openNoFollow, openedPath, removeTreeNoFollow, renameAnywhereNoFollow, renameNoFollow } from './local-dirfd';
import { chownQuietly, errnoOf, fsyncFile } from './local-fs';
import { MountDirs } from './local-mount-dirs';
import { moveAcrossHeld } from './local-xdev';
import { permittedMode } from './special-modes';

/** Durable points inside a mutation, in order; a test hook that throws at one simulates a crash there. */
export type MutationStep = 'plan-saved' | 'dirs-created' | 'data-staged' | 'backup-taken' | 'committed';

/** Reports that a mutation reached a {@link MutationStep}. */
export type StepReporter = (step: MutationStep) => Promise<void>;

/** The durable record of one transaction on a local mount. */
export interface Plan {
  version: 1;
  txId: string;
  op: MutationOp;
  /** Destination of write / mkdir / copy / move; the deleted path for delete. */
  target: string;
  /** Source of copy / move. */
  src?: string;
  /** Kind of node the op writes, moves or deletes. */
  kind: NodeKind;
  /** Whether `target` held a node before the op, as seen when the plan was first written. */
  hadPrevious: boolean;
  /** Directories the op creates (parents first); undo removes those left empty. */
  createdDirs: string[];
  /**
   * Recorded just before the commit rename. Its presence proves that a node found at a target
   * that was empty before is this transaction's own, so undo may remove it; `hashes` keeps the
   * sha256 of a copied tree across a crash after its rename.
   */
  staged?: {
    bytes: number;
    hashes?: Record<string, string>;
    /** Identity ({@link identityOf}) of what the commit rename put in place: undo removes that and nothing else. */
    identity?: string;
  };
  /** True once the op fully applied; `outcome` is then returned to every retry. */
  applied: boolean;
  outcome?: MutationOutcome;
  /** Set once undo finished: a retried undo answers the same instead of "nothing to undo". */
  undone?: { changed: boolean };
  /** Set once finalize dropped staging and backups. */
  finalized?: boolean;
}

/**
 * Checks that the calling attempt may still act on the transaction (its fence is held, it was not
 * cancelled); throws otherwise. Called before every destructive step.
 */
export type TxGuard = () => Promise<void>;

/**
 * The guard of the call that loaded a plan travels with that in-memory plan object (a symbol key:
 * never saved), so each durable step checks its own call's fence — never that of a newer attempt
 * of the same transaction running in the same process.
 */
const PLAN_GUARD = Symbol('filestore.planGuard');
export function attachGuard(plan: Plan, guard: TxGuard): void {
  Object.defineProperty(plan, PLAN_GUARD, { value: guard, enumerable: false, configurable: true });
}
export function guardOf(plan: Plan): TxGuard | undefined {
  return (plan as unknown as Record<symbol, TxGuard | undefined>)[PLAN_GUARD];
}

/** What identifies a request for the "same txId, same op" check. */
export interface PlanRequest {
  op: MutationOp;
  target: string;
  src?: string;
}

const TX_ID = /^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,199}$/;

/** Refuses transaction ids that could not safely name a staging folder. */
export function validateTxId(txId: unknown): string {
  if (typeof txId !== 'string' || !TX_ID.test(txId)) {
    throw new InvalidRequestError(`txId ${JSON.stringify(txId)} is not a valid transaction id (letters, digits and ._:@+=- only, at most 200)`);
  }
  return txId;
}

/** Throws InvalidRequestError when an existing plan was made for a different request. */
export function assertPlanMatches(plan: Plan, req: PlanRequest): void {
  if (plan.op !== req.op || plan.target !== req.target || (plan.src ?? null) !== (req.src ?? null)) {
    throw new InvalidRequestError(
      `transaction ${plan.txId} already holds a ${plan.op} of ${JSON.stringify(plan.src ?? plan.target)}; a transaction id cannot be reused for a different mutation`,
      { txId: plan.txId, plannedOp: plan.op, requestedOp: req.op },
    );
  }
}

/** Absolute host path of the staging folder of a mount. */
export function stagingRoot(rootReal: string): string {
  return path.join(rootReal, STAGING_DIR);
}

/** Transaction ids that still have a staging folder. */
export async function listStagedTransactions(rootReal: string): Promise<string[]> {
  try {
    const entries = await fs.readdir(stagingRoot(rootReal), { withFileTypes: true });
    return entries
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return [];
    throw err;
  }
}

/**
 * The staging folder of one transaction, its well-known files, and its plan (in the plan store).
 * Once {@link TxStaging.ensure}d (or {@link TxStaging.hold}), the folder is held open and every
 * path below it goes through that fd, so swapping `.filestore-staging` (which sits in the
 * mount root, where mount users may write) for a symlink cannot redirect a backup or a removal.
 */
export class TxStaging {
  readonly root: string;
  /** The mount's no-follow view (local-mount-dirs.ts). */
  readonly mount: MountDirs;
  private held: HeldDir | null = null;

  constructor(
    readonly rootReal: string,
    readonly txId: string,
    private readonly mountId: string,
    private readonly store: PlanStore<Plan>,
    /** Runs before every plan save and destructive step of this call. */
    readonly guard: TxGuard = async () => undefined,
  ) {
    validateTxId(txId);
    this.root = stagingRoot(rootReal);
    this.mount = new MountDirs(rootReal, this.mountId);
  }

  /** The transaction folder, through its held fd. */
  get dir(): string {
    return this.heldDir().self();
  }
  get dataTmp(): string {
    return this.heldDir().at('data.tmp');
  }
  get treeTmp(): string {
    return this.heldDir().at('tree.tmp');
  }
  get backup(): string {
    return this.heldDir().at('backup');
  }

  /** The held transaction folder; only after {@link ensure} or a successful {@link hold}. */
  heldDir(): HeldDir {
    if (!this.held) throw new Error(`internal: staging of ${this.txId} used before it was opened`);
    return this.held;
  }

  /** The plan, or null when this transaction never got as far as saving one. */
  async readPlan(): Promise<Plan | null> {
    const plan = await this.store.load(this.txId);
    if (plan && plan.txId !== this.txId) throw new InvalidRequestError(`the plan stored for ${this.txId} names ${plan.txId}`);
    return plan;
  }

  /**
   * Opens (with `create`, first creates) the transaction folder with the no-follow walk; both it
   * and `.filestore-staging` must be plain directories owned by the worker, 0700 (one of ours
   * that is too open — made by an older release — is closed rather than refused; anything else
   * is MOUNT_UNAVAILABLE: a symlink would redirect backups, a folder others can write would let
   * them swap what undo restores). Null when it does not exist and `create` is false.
   */
  async hold(create = false): Promise<HeldDir | null> {
    if (this.held) {
      await this.held.verify();
      return this.held;
    }
    this.held = await this.mount.openStaging(this.txId, create);
    return this.held;
  }

  /** Creates the staging folders, 0700 (durably: staging that vanishes on power loss holds no backup), and holds them. */
  async ensure(): Promise<void> {
    await this.hold(true);
  }

  /** Closes the held folder (the call is over). */
  async release(): Promise<void> {
    const held = this.held;
    this.held = null;
    await held?.close();
  }

  /** Saves the plan (atomically, in the plan store) once the guard says this attempt may still act. */
  async savePlan(plan: Plan): Promise<void> {
    await this.guard();
    await this.store.save(plan);
  }

  /** Drops the whole staging folder of the transaction, never following a symlink in it; idempotent. */
  async remove(): Promise<void> {
    await this.release();
    const staging = await this.mount.openStaging(null, false);
    if (!staging) return;
    try {
      if (!(await staging.lstat(this.txId))) return;
      await removeTreeNoFollow(staging, this.txId);
      await staging.sync();
    } finally {
      await staging.close();
    }
  }
}

/**
 * How plans record what the commit put in place: `dev:ino`, plus the birth time where the file
 * system reports one (inode numbers are reused at once: a file a user put there after removing
 * ours may carry our old number). Birth time survives renames, ctime does not.
 */
export const identityOf = (st: BigIntStats): string => `${st.dev}:${st.ino}${st.birthtimeNs > 0n ? `:${st.birthtimeNs}` : ''}`;

/**
 * Keeps what sits at entry `name` of `target` in the transaction's backup, once: on a retry the
 * target may already hold the new content, so an existing backup is never replaced. A hard link
 * keeps the path visible to readers; where links are refused the fallback is a copy (for a file
 * about to be overwritten) or a rename (for a move's destination, which the move replaces anyway,
 * and for anything that is not a regular file). Nothing is followed: the entry itself is kept.
 */
export async function takeBackup(staging: TxStaging, target: HeldDir, name: string, fallback: 'copy' | 'rename', step: StepReporter): Promise<void> {
  const own = staging.heldDir();
  if ((await own.lstat('backup')) || !(await target.lstat(name))) return;
  try {
    await linkNoFollow(target, name, own, 'backup');
  } catch (err) {
    if (errnoOf(err) === undefined) throw err; // a containment refusal, already undone
    if (fallback === 'rename' || !(await target.lstat(name))?.isFile()) {
      await renameAnywhereNoFollow(target, name, own, 'backup', moveAcrossHeld);
    } else {
      if (!['EPERM', 'EXDEV', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP', 'EACCES'].includes(errnoOf(err) ?? '')) throw err;
      // Copy under a temp name so a crash never leaves a truncated "backup" that undo would trust.
      const tmp = own.at('backup.tmp');
      const src = await openNoFollow(target, name);
      try {
        await fs.copyFile(openedPath(src, target, name), tmp);
        const st = await src.stat({ bigint: true });
        await chownQuietly(tmp, st);
        await fs.chmod(tmp, Number(st.mode) & 0o7777);
        await fs.utimes(tmp, st.atime, st.mtime);
        await fsyncFile(tmp);
      } finally {
        await src.close();
      }
      await renameNoFollow(own, 'backup.tmp', own, 'backup');
    }
  }
  await own.sync();
  await step('backup-taken');
}

/**
 * Replaces entry `target` (a real canonical mount path) with the fsynced `data.tmp` in one
 * no-follow rename through the held parent, so no reader ever sees a partial file and a parent
 * swapped for a symlink cannot redirect it (see local-dirfd.ts). What was there goes to the backup
 * first (see {@link takeBackup}); an overwritten file's mode and owner carry over unless `mode` is
 * given; a new file gets `mode ?? defaultMode`. `plan.staged` (with the inode that will land) is
 * recorded before the rename: it is what later lets undo remove a new file, and only that file.
 *
 * @returns the committed file's stats (lstat through the held parent).
 */
export async function commitStagedFile(
  staging: TxStaging,
  plan: Plan,
  target: string,
  file: { bytes: number; mode?: number; defaultMode?: number; allowSpecialModes?: boolean },
  step: StepReporter,
): Promise<BigIntStats> {
  return staging.mount.withParent(target, async (dir, name) => {
    await step('data-staged');
    const own = staging.heldDir();
    if (plan.hadPrevious) await takeBackup(staging, dir, name, 'copy', step);
    const previous = plan.hadPrevious ? await own.lstat('backup') : null;
    // chown before chmod: chown clears setuid/setgid bits the mode may carry.
    if (previous?.isFile()) await chownQuietly(staging.dataTmp, previous);
    // setuid/setgid/sticky survive only where the mount allows them (an explicit mode with them was refused before).
    const mode = file.mode ?? (previous?.isFile() ? Number(previous.mode) & 0o7777 : file.defaultMode);
    if (mode !== undefined) await fs.chmod(staging.dataTmp, permittedMode(mode, file.allowSpecialModes));
    const staged = await own.lstat('data.tmp');
    plan.staged = { bytes: file.bytes, ...(staged ? { identity: identityOf(staged) } : {}) };
    await staging.savePlan(plan);
    await renameNoFollow(own, 'data.tmp', dir, name);
    await dir.sync();
    const landed = await dir.lstat(name);
    if (!landed) throw new PathChangedError(target, { reason: 'removed right after the commit' });
    await step('committed');
    return landed;
  });
}

