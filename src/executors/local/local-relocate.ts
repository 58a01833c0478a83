/**
 * The apply steps of the local executor that take an existing entry by its name — move, delete,
 * and reading a copy's source file — done through held, no-follow parents (local-dirfd.ts): once
 * an op has resolved its real paths, a parent swapped for a symlink or renamed away cannot
 * redirect the rename, and an escape is undone and refused.
 */
import { constants as C, type BigIntStats } from 'node:fs';
import fs from 'node:fs/promises';
import { AccessDeniedError, AlreadyExistsError, NotFoundError, PathChangedError } from '../../errors';
import { baseName, parentPath } from '../../paths';
import type { KnownContent, MoveOptions, MutationOutcome } from '../executor';
import { type HeldDir, openNoFollow, openedPath, removeTreeNoFollow, renameAnywhereNoFollow } from './local-dirfd';
import { errnoOf, nodeMetaFromStats } from './local-fs';
import { type Plan, type TxStaging, identityOf, takeBackup } from './local-staging';
import { removeScratch } from './local-undo';
import { type TransferOptions, type TransferResult, copyFileData } from './local-transfer';
import type { TreeCopyContext } from './local-tree-copy';
import { moveAcrossHeld } from './local-xdev';

const q = (p: string): string => JSON.stringify(p);

/** Moves `plan.src` to `plan.target` (both real canonical paths): backup of a replaced target, one no-follow rename. */
export async function applyMove(ctx: TreeCopyContext, staging: TxStaging, plan: Plan, opts: MoveOptions): Promise<MutationOutcome> {
  const [from, to] = [plan.src!, plan.target];
  // Across file systems the copy is placed before the source leaves; its identity is saved first,
  // so a retry or undo after a crash removes that copy at the target, never someone else's entry.
  const moveAcross = (f: HeldDir, fn: string, t: HeldDir, tn: string): Promise<number> =>
    moveAcrossHeld(f, fn, t, tn, {
      allowSpecialModes: opts.allowSpecialModes,
      beforePlace: async (copy) => {
        plan.staged = { ...(plan.staged ?? { bytes: 0 }), identity: identityOf(copy) };
        await staging.savePlan(plan);
      },
    });
  const step = (s: Parameters<TreeCopyContext['step']>[0]): Promise<void> => ctx.step(s, plan);
  return staging.mount.withParent(from, (srcDir, srcName) =>
    staging.mount.withParent(to, async (dstDir, dstName) => {
      let moved = 0;
      if (await srcDir.lstat(srcName)) {
        if (plan.hadPrevious) await takeBackup(staging, dstDir, dstName, 'rename', step);
        const there = plan.hadPrevious ? null : await dstDir.lstat(dstName);
        if (there) {
          // Only our own half-finished cross-device copy may sit there (see local-xdev.ts), and it
          // is recognised by the identity recorded before it was placed — anything else a user put
          // there after a crash is theirs, and the move is refused.
          if (!plan.staged?.identity || identityOf(there) !== plan.staged.identity) throw new AlreadyExistsError(q(to));
          await removeTreeNoFollow(dstDir, dstName);
        }
        if (!plan.staged) {
          plan.staged = { bytes: 0 };
          await staging.savePlan(plan);
        }
        moved = await renameAnywhereNoFollow(srcDir, srcName, dstDir, dstName, moveAcross);
        await dstDir.sync();
        await srcDir.sync();
        ctx.countBytes(moved);
        await step('committed');
      } else if (!(await dstDir.lstat(dstName))) {
        throw new NotFoundError(`move source ${q(from)}`);
      }
      await removeScratch(staging, plan);
      // Metadata as verify will see it (stat follows a moved link that stays inside the mount).
      const target = nodeMetaFromStats(to, await fs.stat(dstDir.at(dstName), { bigint: true }));
      return { op: 'move', moved: { from, to }, removed: [from], upserted: [...(await ctx.metas(plan.createdDirs)), target], bytesWritten: moved };
    }),
  );
}

/** Deletes `plan.target` by renaming the entry itself (never what a link points to) into the transaction's backup. */
export async function applyDelete(ctx: TreeCopyContext, staging: TxStaging, plan: Plan): Promise<MutationOutcome> {
  const rel = plan.target;
  const own = staging.heldDir();
  // A parent gone since a crashed attempt's rename is fine as long as the backup holds the entry.
  const dir = await staging.mount.tryOpenDir(parentPath(rel));
  try {
    const name = baseName(rel);
    const there = dir ? await dir.lstat(name) : null;
    const backedUp = await own.lstat('backup');
    if (dir && there) {
      // Both present only after a crashed cross-device backup; the original is still whole.
      if (backedUp) await removeTreeNoFollow(own, 'backup');
      // Renaming into staging makes the path vanish atomically and keeps the bytes for undo.
      await renameAnywhereNoFollow(dir, name, own, 'backup', moveAcrossHeld);
      await dir.sync();
      await own.sync();
      await ctx.step('committed', plan);
    } else if (!backedUp) {
      throw new NotFoundError(q(rel));
    }
    await removeScratch(staging, plan);
    return { op: 'delete', upserted: [], removed: [rel], bytesWritten: 0 };
  } finally {
    await dir?.close();
  }
}

/**
 * Copies the bytes of the regular file at real path `from` into the transaction's data.tmp. The
 * source is opened no-follow and non-blocking through its held parent (a FIFO cannot stall the
 * worker, a symlink swapped in is refused), checked with fstat, and read through its own fd.
 */
export async function stageFileCopy(
  staging: TxStaging,
  from: string,
  known: KnownContent | undefined,
  opts: TransferOptions,
): Promise<{ staged: TransferResult; source: BigIntStats }> {
  return staging.mount.withParent(from, async (dir, name) => {
    let fh: fs.FileHandle;
    try {
      fh = await openNoFollow(dir, name, C.O_RDONLY | C.O_NONBLOCK);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') throw new NotFoundError(`copy source file ${q(from)}`);
      if (errnoOf(err) === 'ELOOP') throw new PathChangedError(from, { reason: 'the copy source is a symlink now' });
      throw err;
    }
    try {
      const source = await fh.stat({ bigint: true });
      if (source.isDirectory()) throw new NotFoundError(`copy source file ${q(from)}`);
      if (!source.isFile()) throw new AccessDeniedError(`${q(from)} is a special file (device, socket or fifo) and cannot be copied`);
      const staged = await copyFileData(openedPath(fh, dir, name), staging.dataTmp, source, known, opts);
      return { staged, source };
    } finally {
      await fh.close();
    }
  });
}
