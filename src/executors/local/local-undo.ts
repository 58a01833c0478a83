/**
 * Undo of a local transaction, from whatever point its op reached, and the removal of the
 * cross-device move's scratch names. Everything here acts through held, no-follow directories
 * (local-dirfd.ts) on the real paths the plan recorded: undo never re-resolves a path through a
 * symlink, never `rm -rf`s a path a mount user could swap (what it removes is first renamed into
 * the transaction's 0700 staging, checked to be the inode the plan recorded, and only then
 * removed there), and where a parent it needs is now a symlink it refuses (SYMLINK_ESCAPE /
 * PATH_CHANGED) rather than follow.
 */
import fs from 'node:fs/promises';
import { NotFoundError } from '../../errors';
import { baseName, parentPath } from '../../paths';
import { type HeldDir, removeTreeNoFollow, renameAnywhereNoFollow, renameNoFollow } from './local-dirfd';
import { errnoOf } from './local-fs';
import type { MountDirs } from './local-mount-dirs';
import { identityOf, type Plan, type TxStaging } from './local-staging';
import { crossDeviceScratch } from './local-transfer';
import { moveAcrossHeld } from './local-xdev';

const moveAcross = moveAcrossHeld;
const q = (p: string): string => JSON.stringify(p);

/** The held parent of a mount path, opened on first use (undo opens only what it must touch). */
class LazyParent {
  private opened: Promise<HeldDir | null> | null = null;
  readonly name: string;

  constructor(
    private readonly mount: MountDirs,
    readonly rel: string,
  ) {
    this.name = baseName(rel);
  }

  /** The parent, or null when it does not exist; a parent that is now a symlink is refused. */
  dir(): Promise<HeldDir | null> {
    this.opened ??= this.mount.tryOpenDir(parentPath(this.rel));
    return this.opened;
  }

  async need(): Promise<HeldDir> {
    const dir = await this.dir();
    if (!dir) throw new NotFoundError(`parent directory of ${q(this.rel)}`, { path: this.rel });
    return dir;
  }

  async exists(): Promise<boolean> {
    const dir = await this.dir();
    return !!dir && !!(await dir.lstat(this.name));
  }

  async close(): Promise<void> {
    if (!this.opened) return;
    await (await this.opened.catch(() => null))?.close();
  }
}

/**
 * Removes what this transaction put at `name` of `dir`: renamed (no-follow) into its staging
 * first, checked there against the inode the plan recorded (`identity`, when it recorded one),
 * then removed inside staging, where no other user can swap anything. What turns out not to be
 * ours (replaced since the commit) is put back untouched.
 *
 * @returns whether something was removed.
 */
async function removeOwn(staging: TxStaging, dir: HeldDir, name: string, identity: string | undefined): Promise<boolean> {
  const own = (await staging.hold(true))!;
  const victim = 'undo-victim';
  await removeTreeNoFollow(own, victim);
  try {
    await renameNoFollow(dir, name, own, victim);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return false;
    if (errnoOf(err) !== 'EXDEV') throw err;
    // On a nested file system it cannot enter staging: checked and removed where it is, through
    // held fds only.
    const st = await dir.lstat(name);
    if (!st || (identity !== undefined && identityOf(st) !== identity)) return false;
    await removeTreeNoFollow(dir, name);
    await dir.sync();
    return true;
  }
  const st = await own.lstat(victim);
  if (identity !== undefined && st && identityOf(st) !== identity) {
    await renameNoFollow(own, victim, dir, name);
    return false;
  }
  await dir.sync();
  await removeTreeNoFollow(own, victim);
  return true;
}

/** Puts the backup back at `target`; returns whether that changed what readers see. */
async function restoreBackup(own: HeldDir, target: LazyParent): Promise<boolean> {
  const dir = await target.need();
  const [backup, current] = [await own.lstat('backup'), await dir.lstat(target.name)];
  if (!backup) return false;
  // Crash between taking a hard-link backup and the commit rename: both names are one inode.
  const changed = !(current && backup.dev === current.dev && backup.ino === current.ino);
  await renameAnywhereNoFollow(own, 'backup', dir, target.name, moveAcross);
  await dir.sync();
  return changed;
}

/** rmdir of a directory the plan created, if it is still empty; never through a symlink. */
async function removeCreatedDir(mount: MountDirs, rel: string): Promise<boolean> {
  let parent: HeldDir | null;
  try {
    parent = await mount.tryOpenDir(parentPath(rel));
  } catch (err) {
    // A parent swapped for a symlink: an empty directory left behind beats following it.
    if (['SYMLINK_ESCAPE', 'PATH_CHANGED', 'NOT_A_DIRECTORY'].includes((err as { code?: string }).code ?? '')) return false;
    throw err;
  }
  if (!parent) return false;
  try {
    await parent.verify();
    await fs.rmdir(parent.at(baseName(rel)));
    await parent.sync();
    return true;
  } catch (err) {
    if (['ENOENT', 'ENOTEMPTY', 'EEXIST', 'ENOTDIR'].includes(errnoOf(err) ?? '')) return false;
    throw err;
  } finally {
    await parent.close();
  }
}

/**
 * Reverses what `plan` did, from whatever point its op reached (nothing, half, or all), then
 * drops the staging folder. Each step checks the disk before acting, so running it again after a
 * crash half-way through the undo itself is safe.
 *
 * @returns whether anything visible on the mount changed.
 */
export async function undoPlan(_rootReal: string, staging: TxStaging, plan: Plan): Promise<boolean> {
  if (plan.undone) {
    // A crash between recording the undo and dropping staging leaves the folder: finish that.
    await staging.remove();
    return plan.undone.changed;
  }
  // Committed and finalized: its backups are gone and the catalog records it; nothing to undo.
  if (plan.finalized) return false;
  await staging.guard();
  const own = await staging.hold(false);
  const hasBackup = !!own && !!(await own.lstat('backup'));
  const target = new LazyParent(staging.mount, plan.target);
  const src = new LazyParent(staging.mount, plan.src ?? plan.target);
  let changed = false;
  try {
    switch (plan.op) {
      case 'write':
      case 'copy':
        if (hasBackup) {
          await staging.guard();
          changed = await restoreBackup(own!, target);
        } else if (!plan.hadPrevious && plan.staged && (await target.exists())) {
          // `staged` proves the op reached its commit rename, so what sits there now is ours.
          await staging.guard();
          changed = await removeOwn(staging, (await target.dir())!, target.name, plan.staged.identity);
        }
        break;
      case 'move': {
        if (plan.staged) {
          const [srcThere, dstThere] = [await src.exists(), await target.exists()];
          if (!srcThere && dstThere) {
            await staging.guard();
            await renameAnywhereNoFollow((await target.dir())!, target.name, await src.need(), src.name, moveAcross);
            await (await src.dir())!.sync();
            await (await target.dir())!.sync();
            changed = true;
          } else if (srcThere && dstThere && !plan.hadPrevious && plan.staged.identity) {
            // A cross-device move that crashed after its copy landed but before the source left:
            // the source is complete and the destination is our copy — the one whose identity was
            // recorded before it was placed (anything else there is someone else's and stays).
            await staging.guard();
            changed = await removeOwn(staging, (await target.dir())!, target.name, plan.staged.identity);
          }
        }
        if (hasBackup) {
          await staging.guard();
          if (await restoreBackup(own!, target)) changed = true;
        }
        break;
      }
      case 'delete':
        if (hasBackup && !(await target.exists())) {
          await staging.guard();
          const dir = await target.need();
          await renameAnywhereNoFollow(own!, 'backup', dir, target.name, moveAcross);
          await dir.sync();
          changed = true;
        }
        break;
      case 'mkdir':
        break;
    }
  } finally {
    await target.close();
    await src.close();
  }
  // The guard before every step, not once: undo of a big tree takes long, and a stale attempt
  // that lost its fence meanwhile must not remove a directory a later mutation created.
  for (const dir of [...plan.createdDirs].reverse()) {
    await staging.guard();
    if (await removeCreatedDir(staging.mount, dir)) changed = true;
  }
  await staging.guard();
  await removeScratch(staging, plan);
  plan.undone = { changed };
  await staging.savePlan(plan);
  await staging.remove();
  return changed;
}

/**
 * Removes the scratch names a cross-device fallback of this plan (or of its undo) may have left
 * behind, through held parents and without following anything; the plan says the move was ours,
 * so they are too. Parents that are gone or now symlinks are skipped.
 */
export async function removeScratch(staging: TxStaging, plan: Plan): Promise<void> {
  if (plan.op !== 'delete' && !(plan.op === 'move' && plan.src !== undefined)) return;
  const target = new LazyParent(staging.mount, plan.target);
  const src = new LazyParent(staging.mount, plan.src ?? plan.target);
  const quietly = async (p: LazyParent): Promise<HeldDir | null> => p.dir().catch(() => null);
  try {
    const own = await staging.hold(false);
    const dirs = [await quietly(target), plan.op === 'move' ? await quietly(src) : null, own].filter((d): d is HeldDir => d !== null);
    const tdir = await quietly(target);
    const pairs: Array<[string, string]> = [];
    if (plan.op === 'delete' && tdir && own) {
      const fwd = crossDeviceScratch(tdir.at(target.name), own.at('backup'));
      pairs.push([fwd.tmp, fwd.trash], [crossDeviceScratch(own.at('backup'), tdir.at(target.name)).tmp, '']);
    }
    const sdir = plan.op === 'move' ? await quietly(src) : null;
    if (plan.op === 'move' && tdir && sdir) {
      const fwd = crossDeviceScratch(sdir.at(src.name), tdir.at(target.name));
      const back = crossDeviceScratch(tdir.at(target.name), sdir.at(src.name));
      pairs.push([fwd.tmp, fwd.trash], [back.tmp, back.trash]);
    }
    for (const scratch of pairs.flat().filter((p) => p !== '')) {
      const slash = scratch.lastIndexOf('/');
      const owner = dirs.find((d) => d.self() === scratch.slice(0, slash));
      if (owner) await removeTreeNoFollow(owner, scratch.slice(slash + 1));
    }
  } finally {
    await target.close();
    await src.close();
  }
}
