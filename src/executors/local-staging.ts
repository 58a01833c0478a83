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
import fs from 'node:fs/promises';
import path from 'node:path';
import { InvalidRequestError, MountUnavailableError } from '../errors';
import { STAGING_DIR, resolveInsideRoot } from '../paths';
import type { MutationOp, MutationOutcome, NodeKind } from './executor';
import type { PlanStore } from './plan-store';
import { chownQuietly, entryExists, errnoOf, fsyncDir, fsyncFile, lstatOrNull, removeDirIfEmpty, sameInode } from './local-fs';
import { crossDeviceScratch, renameAnywhere } from './local-transfer';
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
  staged?: { bytes: number; hashes?: Record<string, string> };
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

/** The staging folder of one transaction, its well-known files, and its plan (in the plan store). */
export class TxStaging {
  readonly root: string;
  readonly dir: string;
  readonly dataTmp: string;
  readonly treeTmp: string;
  readonly backup: string;

  constructor(
    readonly rootReal: string,
    readonly txId: string,
    private readonly mountId: string,
    private readonly store: PlanStore<Plan>,
    /** Runs before every plan save and destructive step of this call. */
    readonly guard: TxGuard = async () => undefined,
  ) {
    this.root = stagingRoot(rootReal);
    this.dir = path.join(this.root, validateTxId(txId));
    this.dataTmp = path.join(this.dir, 'data.tmp');
    this.treeTmp = path.join(this.dir, 'tree.tmp');
    this.backup = path.join(this.dir, 'backup');
  }

  /** The plan, or null when this transaction never got as far as saving one. */
  async readPlan(): Promise<Plan | null> {
    const plan = await this.store.load(this.txId);
    if (plan && plan.txId !== this.txId) throw new InvalidRequestError(`the plan stored for ${this.txId} names ${plan.txId}`);
    return plan;
  }

  /** Creates the staging folders, 0700 (durably: staging that vanishes on power loss holds no backup). */
  async ensure(): Promise<void> {
    await this.assertStagingIsOurs();
    if (!(await entryExists(this.root))) {
      await fs.mkdir(this.root, { recursive: true, mode: 0o700 });
      await fsyncDir(this.rootReal);
    }
    await this.assertStagingIsOurs();
    if (!(await entryExists(this.dir))) {
      await fs.mkdir(this.dir, { mode: 0o700 });
      await fsyncDir(this.root);
    }
  }

  /** Saves the plan (atomically, in the plan store) once the guard says this attempt may still act. */
  async savePlan(plan: Plan): Promise<void> {
    await this.guard();
    await this.store.save(plan);
  }

  /** Drops the whole staging folder of the transaction; idempotent. */
  async remove(): Promise<void> {
    await this.assertStagingIsOurs();
    if (!(await entryExists(this.dir))) return;
    await fs.rm(this.dir, { recursive: true, force: true });
    await fsyncDir(this.root);
  }

  /**
   * Staging must be a plain directory owned by this process's user and closed to everyone else:
   * a symlink would redirect backups outside the mount, and a folder others can write would let
   * them swap what undo restores.
   */
  private async assertStagingIsOurs(): Promise<void> {
    const st = await lstatOrNull(this.root);
    if (!st) return;
    if (!st.isDirectory()) {
      throw new MountUnavailableError(this.mountId, `${STAGING_DIR} inside the mount root is not a plain directory`);
    }
    const uid = process.getuid?.();
    if (uid !== undefined && Number(st.uid) !== uid) {
      throw new MountUnavailableError(this.mountId, `${STAGING_DIR} is owned by uid ${st.uid}, not by the worker (uid ${uid})`);
    }
    if ((Number(st.mode) & 0o077) !== 0) {
      // Ours but too open (made by an older release): close it rather than refuse.
      await fs.chmod(this.root, 0o700);
    }
  }
}

/**
 * Keeps what sits at `targetAbs` in the transaction's backup, once: on a retry the target may
 * already hold the new content, so an existing backup is never replaced. A hard link keeps the
 * path visible to readers; where links are refused the fallback is a copy (for a file about to be
 * overwritten) or a rename (for a move's destination, which the move replaces anyway).
 */
export async function takeBackup(staging: TxStaging, targetAbs: string, fallback: 'copy' | 'rename', step: StepReporter): Promise<void> {
  if ((await entryExists(staging.backup)) || !(await entryExists(targetAbs))) return;
  try {
    await fs.link(targetAbs, staging.backup);
  } catch (err) {
    if (fallback === 'rename') {
      await renameAnywhere(targetAbs, staging.backup);
    } else {
      if (!['EPERM', 'EXDEV', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP', 'EACCES'].includes(errnoOf(err) ?? '')) throw err;
      // Copy under a temp name so a crash never leaves a truncated "backup" that undo would trust.
      const tmp = `${staging.backup}.tmp`;
      await fs.copyFile(targetAbs, tmp);
      const st = await fs.stat(targetAbs, { bigint: true });
      await chownQuietly(tmp, st);
      await fs.chmod(tmp, Number(st.mode) & 0o7777);
      await fs.utimes(tmp, st.atime, st.mtime);
      await fsyncFile(tmp);
      await fs.rename(tmp, staging.backup);
    }
  }
  await fsyncDir(staging.dir);
  await step('backup-taken');
}

/**
 * Replaces `targetAbs` with the fsynced `staging.dataTmp` in one rename, so no reader ever sees a
 * partial file. What was there goes to the backup first (see {@link takeBackup}); an overwritten
 * file's mode and owner carry over unless `mode` is given; a new file gets `mode ?? defaultMode`.
 * `plan.staged` is recorded before the rename: it is what later lets undo remove a new file.
 */
export async function commitStagedFile(
  staging: TxStaging,
  plan: Plan,
  targetAbs: string,
  file: { bytes: number; mode?: number; defaultMode?: number; allowSpecialModes?: boolean },
  step: StepReporter,
): Promise<void> {
  await step('data-staged');
  if (plan.hadPrevious) await takeBackup(staging, targetAbs, 'copy', step);
  const previous = plan.hadPrevious ? await lstatOrNull(staging.backup) : null;
  // chown before chmod: chown clears setuid/setgid bits the mode may carry.
  if (previous?.isFile()) await chownQuietly(staging.dataTmp, previous);
  // setuid/setgid/sticky survive only where the mount allows them (an explicit mode with them was refused before).
  const mode = file.mode ?? (previous?.isFile() ? Number(previous.mode) & 0o7777 : file.defaultMode);
  if (mode !== undefined) await fs.chmod(staging.dataTmp, permittedMode(mode, file.allowSpecialModes));
  plan.staged = { bytes: file.bytes };
  await staging.savePlan(plan);
  await fs.rename(staging.dataTmp, targetAbs);
  await fsyncDir(path.dirname(targetAbs));
  await step('committed');
}

/** Scratch names a cross-device fallback of this plan (or of its undo) may have left behind. */
async function scratchOf(rootReal: string, staging: TxStaging, plan: Plan): Promise<string[]> {
  const targetAbs = await resolveInsideRoot(rootReal, plan.target);
  if (plan.op === 'delete') {
    const { tmp, trash } = crossDeviceScratch(targetAbs, staging.backup);
    const back = crossDeviceScratch(staging.backup, targetAbs);
    return [tmp, trash, back.tmp];
  }
  if (plan.op === 'move' && plan.src !== undefined) {
    const srcAbs = await resolveInsideRoot(rootReal, plan.src);
    const fwd = crossDeviceScratch(srcAbs, targetAbs);
    const back = crossDeviceScratch(targetAbs, srcAbs);
    return [fwd.tmp, fwd.trash, back.tmp, back.trash];
  }
  return [];
}

/** Removes cross-device scratch left by a crash; the plan says the move was ours, so they are too. */
export async function removeScratch(rootReal: string, staging: TxStaging, plan: Plan): Promise<void> {
  for (const abs of await scratchOf(rootReal, staging, plan)) await fs.rm(abs, { recursive: true, force: true });
}

/** Puts `backup` back at `targetAbs`; returns whether that changed what readers see. */
async function restoreBackup(staging: TxStaging, targetAbs: string): Promise<boolean> {
  if (!(await entryExists(staging.backup))) return false;
  // Crash between taking a hard-link backup and the commit rename: both names are one inode.
  const changed = !(await sameInode(staging.backup, targetAbs));
  await renameAnywhere(staging.backup, targetAbs);
  await fsyncDir(path.dirname(targetAbs));
  return changed;
}

/**
 * Reverses what `plan` did, from whatever point its op reached (nothing, half, or all), then
 * drops the staging folder. Each step checks the disk before acting, so running it again after a
 * crash half-way through the undo itself is safe.
 *
 * @returns whether anything visible on the mount changed.
 */
export async function undoPlan(rootReal: string, staging: TxStaging, plan: Plan): Promise<boolean> {
  if (plan.undone) return plan.undone.changed;
  // Committed and finalized: its backups are gone and the catalog records it; nothing to undo.
  if (plan.finalized) return false;
  await staging.guard();
  let changed = false;
  const targetAbs = await resolveInsideRoot(rootReal, plan.target);
  switch (plan.op) {
    case 'write':
    case 'copy':
      if (await entryExists(staging.backup)) {
        changed = await restoreBackup(staging, targetAbs);
      } else if (!plan.hadPrevious && plan.staged && (await entryExists(targetAbs))) {
        // `staged` proves the op reached its commit rename, so what sits there now is ours.
        await fs.rm(targetAbs, { recursive: true, force: true });
        await fsyncDir(path.dirname(targetAbs));
        changed = true;
      }
      break;
    case 'move': {
      const srcAbs = await resolveInsideRoot(rootReal, plan.src ?? '');
      const srcThere = await entryExists(srcAbs);
      const dstThere = await entryExists(targetAbs);
      if (!srcThere && dstThere) {
        await renameAnywhere(targetAbs, srcAbs);
        await fsyncDir(path.dirname(srcAbs));
        await fsyncDir(path.dirname(targetAbs));
        changed = true;
      } else if (srcThere && dstThere && !plan.hadPrevious && plan.staged) {
        // A cross-device move that crashed after its copy landed but before the source left:
        // the source is complete and the destination is our copy.
        await fs.rm(targetAbs, { recursive: true, force: true });
        changed = true;
      }
      if (await restoreBackup(staging, targetAbs)) changed = true;
      break;
    }
    case 'delete':
      if ((await entryExists(staging.backup)) && !(await entryExists(targetAbs))) {
        await renameAnywhere(staging.backup, targetAbs);
        await fsyncDir(path.dirname(targetAbs));
        changed = true;
      }
      break;
    case 'mkdir':
      break;
  }
  for (const dir of [...plan.createdDirs].reverse()) {
    const abs = await resolveInsideRoot(rootReal, dir);
    if (await removeDirIfEmpty(abs)) {
      await fsyncDir(path.dirname(abs));
      changed = true;
    }
  }
  await removeScratch(rootReal, staging, plan);
  plan.undone = { changed };
  await staging.savePlan(plan);
  await staging.remove();
  return changed;
}
