/**
 * The apply step of a recursive copy on a local mount: the tree is copied into the transaction's
 * staging folder, then renamed into place in one step, so the destination appears whole or not at
 * all. Resumable from any crash point the plan records.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { AlreadyExistsError } from '../errors';
import { joinPath } from '../paths';
import type { CopyOptions, MutationOutcome, NodeMeta } from './executor';
import { entryExists, fsyncDir, nodeMetaFromStats } from './local-fs';
import { copyFileData, copyTree, walkTree } from './local-transfer';
import type { Plan, TxStaging } from './local-staging';
import { type TxContext, q } from './local-transaction';

/** What {@link copyTreeInto} needs from the executor, beyond the transaction driver's view. */
export interface TreeCopyContext extends TxContext {
  /** Adds `n` to the bytes-written metric of the mount. */
  countBytes(n: number): void;
  /** Current metadata of existing canonical mount paths. */
  metas(rels: string[]): Promise<NodeMeta[]>;
}

/** Copies a directory tree into staging/tree.tmp, then renames it into place in one step. */
export async function copyTreeInto(
  ctx: TreeCopyContext,
  staging: TxStaging,
  plan: Plan,
  fromAbs: string,
  toAbs: string,
  opts: CopyOptions,
): Promise<MutationOutcome> {
  const to = plan.target;
  let hashes = plan.staged?.hashes;
  let bytes = plan.staged?.bytes ?? 0;
  // Plan says staged, no tree.tmp left, destination present: the rename happened before a crash.
  const landed = hashes !== undefined && !(await entryExists(staging.treeTmp)) && (await entryExists(toAbs));
  if (!landed) {
    await fs.rm(staging.treeTmp, { recursive: true, force: true });
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
    if (await entryExists(toAbs)) throw new AlreadyExistsError(q(to));
    plan.staged = { bytes, hashes };
    await staging.savePlan(plan);
    await fs.rename(staging.treeTmp, toAbs);
    await fsyncDir(path.dirname(toAbs));
    await ctx.step('committed', plan);
  }
  const upserted = await ctx.metas(plan.createdDirs);
  for (const entry of await walkTree(toAbs, to)) {
    if (entry.kind === 'symlink') continue;
    upserted.push(nodeMetaFromStats(joinPath(to, entry.rel), entry.stats, hashes?.[entry.rel] ?? null));
  }
  return { op: 'copy', upserted, removed: [], bytesWritten: bytes };
}
