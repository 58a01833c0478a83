/**
 * Moving an entry to another file system inside a mount (a nested mount, where rename() fails
 * with EXDEV) without following anything a mount user could swap. The copy is built inside a
 * fresh 0700 folder the worker creates next to the destination (under the cross-device scratch
 * name, so crash cleanup finds it) and fills through that folder's held fd: no other user can
 * reach into it, so none can swap a directory of the half-built copy for a symlink. The source
 * is then renamed aside and removed with the fd-based tree removal, never `rm -rf` by path.
 */
import type { BigIntStats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { SpecialModeOptions } from '../executor';
import { type HeldDir, mkdirNoFollow, removeTreeNoFollow, renameNoFollow } from './local-dirfd';
import { copyFileData, copyTree, crossDeviceScratch, walkTree } from './local-transfer';

/**
 * Moves entry `fromName` of `from` to `toName` of `to` across file systems: copy (modes, owner
 * where permitted, mtimes kept) into a private folder, one no-follow rename into place (replacing
 * a file there), then the source renamed to its trash name and removed. At every instant one
 * complete copy is reachable under its real name.
 *
 * @returns bytes copied.
 */
export async function moveAcrossHeld(
  from: HeldDir,
  fromName: string,
  to: HeldDir,
  toName: string,
  opts: SpecialModeOptions & {
    /**
     * Called with the built copy's stats just before it is renamed into place (the rename keeps
     * its inode): a caller records it durably, so after a crash it can tell its own copy at the
     * destination from an entry someone else put there.
     */
    beforePlace?: (copy: BigIntStats) => Promise<void>;
  } = {},
): Promise<number> {
  const scratch = crossDeviceScratch(from.at(fromName), to.at(toName));
  const [tmpName, trashName] = [path.basename(scratch.tmp), path.basename(scratch.trash)];
  await removeTreeNoFollow(to, tmpName);
  await mkdirNoFollow(to, tmpName, 0o700);
  const own = await to.child(tmpName);
  if (!own) throw Object.assign(new Error(`scratch folder ${tmpName} vanished`), { code: 'ENOENT' });
  let bytes = 0;
  try {
    const src = from.at(fromName);
    const entries = await walkTree(src, fromName);
    await copyTree(
      src,
      own.at('copy'),
      entries,
      async (entry, s, d) => {
        bytes += (await copyFileData(s, d, entry.stats, undefined)).bytes;
      },
      { keepTimes: true, keepOwner: true, allowSpecialModes: opts.allowSpecialModes },
    );
    const copy = await own.lstat('copy');
    if (copy && opts.beforePlace) await opts.beforePlace(copy);
    await renameNoFollow(own, 'copy', to, toName);
  } finally {
    await own.close();
  }
  await fs.rmdir(to.at(tmpName)).catch(() => removeTreeNoFollow(to, tmpName));
  await to.sync();
  await removeTreeNoFollow(from, trashName);
  await renameNoFollow(from, fromName, from, trashName);
  await from.sync();
  await removeTreeNoFollow(from, trashName);
  return bytes;
}
