/**
 * The apply step of a recursive copy on a local mount: the tree is copied into the transaction's
 * staging folder, then renamed into place in one step, so the destination appears whole or not at
 * all. Resumable from any crash point the plan records.
 */
import { AlreadyExistsError } from '../../errors';
import { joinPath } from '../../paths';
import type { CopyOptions, MutationOutcome, NodeMeta } from '../executor';
import { type HeldDir, removeTreeNoFollow, renameNoFollow } from './local-dirfd';
import { nodeMetaFromStats } from './local-fs';
import { copyFileData, copyTree, walkTree } from './local-transfer';
import { type Plan, type TxStaging, identityOf } from './local-staging';
import { type TxContext, q } from './local-transaction';

/** What {@link copyTreeInto} needs from the executor, beyond the transaction driver's view. */
export interface TreeCopyContext extends TxContext {
  /** Adds `n` to the bytes-written metric of the mount. */
  countBytes(n: number): void;
  /** Current metadata of existing canonical mount paths. */
  metas(rels: string[]): Promise<NodeMeta[]>;
}

/**
 * Copies the directory tree at real mount path `from` into staging/tree.tmp, then renames it into
 * place at real mount path `to` in one no-follow rename through the held parent (local-dirfd.ts):
 * neither tree's parents are re-resolved by path once opened.
 */
export async function copyTreeInto(
  ctx: TreeCopyContext,
  staging: TxStaging,
  plan: Plan,
  from: string,
  to: string,
  opts: CopyOptions,
): Promise<MutationOutcome> {
  return staging.mount.withParent(from, (srcDir, srcName) =>
    staging.mount.withParent(to, (dstDir, dstName) => copyHeldTree(ctx, staging, plan, { dir: srcDir, name: srcName }, { dir: dstDir, name: dstName }, opts)),
  );
}

async function copyHeldTree(
  ctx: TreeCopyContext,
  staging: TxStaging,
  plan: Plan,
  src: { dir: HeldDir; name: string },
  dst: { dir: HeldDir; name: string },
  opts: CopyOptions,
): Promise<MutationOutcome> {
  const to = plan.target;
  const own = staging.heldDir();
  const fromAbs = src.dir.at(src.name);
  const toAbs = dst.dir.at(dst.name);
  let hashes = plan.staged?.hashes;
  let bytes = plan.staged?.bytes ?? 0;
  // Plan says staged, no tree.tmp left, destination present: the rename happened before a crash.
  const landed = hashes !== undefined && !(await own.lstat('tree.tmp')) && !!(await dst.dir.lstat(dst.name));
  if (!landed) {
    await removeTreeNoFollow(own, 'tree.tmp');
    const entries = await walkTree(fromAbs, plan.src ?? '', opts.maxEntries);
    const sums: Record<string, string> = {};
    let done = 0;
    await copyTree(fromAbs, staging.treeTmp, entries, async (entry, src, dest) => {
      const known = opts.known?.[entry.rel];
      const r = await copyFileData(src, dest, entry.stats, known, { signal: opts.signal, onProgress: (n) => opts.onProgress?.(done + n) });
      sums[entry.rel] = r.sha256;
      done += r.bytes;
    }, { allowSpecialModes: opts.allowSpecialModes });
    [hashes, bytes] = [sums, done];
    ctx.countBytes(bytes);
    await ctx.step('data-staged', plan);
    if (await dst.dir.lstat(dst.name)) throw new AlreadyExistsError(q(to));
    const tree = await own.lstat('tree.tmp');
    plan.staged = { bytes, hashes, ...(tree ? { identity: identityOf(tree) } : {}) };
    await staging.savePlan(plan);
    await renameNoFollow(own, 'tree.tmp', dst.dir, dst.name);
    await dst.dir.sync();
    await ctx.step('committed', plan);
  }
  const upserted = await ctx.metas(plan.createdDirs);
  for (const entry of await walkTree(toAbs, to)) {
    if (entry.kind === 'symlink') continue;
    upserted.push(nodeMetaFromStats(joinPath(to, entry.rel), entry.stats, hashes?.[entry.rel] ?? null));
  }
  return { op: 'copy', upserted, removed: [], bytesWritten: bytes };
}
