/**
 * A recursive walk of a local directory that yields its subtree in UTF-8 byte order of the mount
 * paths (src/path-order.ts) — the order of the catalog's path index — with up to `concurrency`
 * metadata reads (lstat, and the readdir of directories) in flight on the libuv threadpool.
 * What a drift scan needs to merge a mount of millions of files with the catalog range by range
 * (src/watcher/ordered-scan.ts) at the speed of parallel stats; the plain depth-first walk
 * (iterateEntries in local-fs.ts) reads one entry at a time in the file system's order.
 *
 * Byte order of whole paths is not "sort each directory, then descend": a directory `a`'s
 * descendants start with `a/`, and `/` (0x2F) sorts after `-` and `.` but before `0`, so `a-b`
 * and `a.b` (and their subtrees) come between `a` and `a/x`. Each directory's entries are
 * therefore sorted with two keys per subdirectory — its name (its own entry) and its name plus
 * `/` (its subtree) — and the subtree is walked when its key comes up.
 *
 * Everything else is iterateEntries' contract, kept exactly: Filestore's own entries (the staging
 * folder and mount marker at the root, cross-device scratch names anywhere) are skipped; a
 * symlink is reported as what it points to when that stays inside the mount and is never
 * descended into, one leading out is skipped; an entry that cannot be read goes to
 * `onUnreadable` (in order: before the entry's own metadata, if it has any) or, without it, ends
 * the walk; a directory gone since its parent was read lists nothing; the walked directory itself
 * failing throws.
 *
 * Memory: a directory's entry names are held from its own entry's turn to its subtree's turn
 * (entries are read whole to be sorted; their metadata is not kept), plus `concurrency` entries
 * in flight — never the tree.
 */
import type { Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { BackendIoError } from '../../errors';
import { compareUtf8 } from '../../path-order';
import { STAGING_DIR, isMountMarkerName, joinPath } from '../../paths';
import type { NodeMeta } from '../executor';
import { errnoOf, linkTargetMeta, lstatOrNull, mapFsError, nodeMetaFromStats } from './local-fs';
import { isFilestoreScratchName } from './scratch-names';

/** Options of {@link sortedEntries}. */
export interface SortedWalkOptions {
  /** Metadata reads kept in flight. @defaultValue 1 */
  concurrency?: number;
  /** See ListEntriesOptions.onUnreadable (local-fs.ts); called in path order. */
  onUnreadable?: (path: string, err: unknown) => void;
  /** Entries asked of the kernel per read of a directory (fs.opendir's bufferSize). @defaultValue 256 */
  batchSize?: number;
}

/** One key of a directory's sorted listing: an entry, or (`subtree`) where its descendants go. */
interface Item {
  name: string;
  key: string;
  subtree: boolean;
  /** What the directory entry said it is (d_type): a symlink is resolved, never lstat-ed again. */
  link: boolean;
}

/** What one entry turned out to be. `failure` (typed) is reported before `meta`. */
interface Look {
  meta: NodeMeta | null;
  failure?: unknown;
  /** A directory's sorted items, read on its own turn so a refusal is known before its entry is reported. */
  items?: Item[] | null;
}

const GONE: Look = { meta: null };

/** d_type says directory, or says nothing (file systems without d_type): its subtree may need a turn. */
function mayBeDirectory(d: Dirent): boolean {
  if (d.isDirectory()) return true;
  return !(d.isFile() || d.isSymbolicLink() || d.isFIFO() || d.isSocket() || d.isCharacterDevice() || d.isBlockDevice());
}

/**
 * The subtree of `abs` (mount path `rel`, '' for the root), its entries in byte order of their
 * mount paths; `abs` itself is not reported. See the module comment.
 */
export async function* sortedEntries(rootReal: string, abs: string, rel: string, opts: SortedWalkOptions = {}): AsyncGenerator<NodeMeta> {
  const { onUnreadable } = opts;
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 1));
  const bufferSize = opts.batchSize ?? 256;

  /** Reads and sorts one directory's entries; Filestore's own are left out. Throws what opendir/read throw. */
  const readItems = async (dirAbs: string, dirRel: string): Promise<{ items: Item[]; failure?: unknown }> => {
    const dir = await fs.opendir(dirAbs, { bufferSize });
    const items: Item[] = [];
    let failure: unknown;
    try {
      for (;;) {
        let d: Dirent | null;
        try {
          d = await dir.read();
        } catch (err) {
          // Failed part-way (EIO; removed under us on some file systems): what was read stands.
          if (errnoOf(err) !== 'ENOENT') failure = err;
          break;
        }
        if (d === null) break;
        if ((dirRel === '' && (d.name === STAGING_DIR || isMountMarkerName(d.name))) || isFilestoreScratchName(d.name)) continue;
        const link = d.isSymbolicLink();
        items.push({ name: d.name, key: d.name, subtree: false, link });
        if (!link && mayBeDirectory(d)) items.push({ name: d.name, key: `${d.name}/`, subtree: true, link });
      }
    } finally {
      await dir.close().catch(() => undefined);
    }
    items.sort((a, b) => compareUtf8(a.key, b.key));
    return { items, failure };
  };

  const typed = (childRel: string, err: unknown) => mapFsError(err, JSON.stringify(childRel));

  /** Metadata of one entry as iterateEntries' entryMeta decides it, and a directory's items. Never rejects. */
  const look = async (childAbs: string, childRel: string, item: Item, planned: boolean): Promise<Look> => {
    let isLink = item.link;
    try {
      if (!isLink) {
        const st = await lstatOrNull(childAbs);
        if (!st) return GONE;
        if (!st.isSymbolicLink()) {
          const meta = nodeMetaFromStats(childRel, st);
          if (!st.isDirectory()) return { meta };
          if (!planned) {
            // d_type said "not a directory" when the parent was read; it is one now. Its subtree
            // had no turn, so it is not seen: a transient failure, looked at again later.
            return { meta, failure: new BackendIoError(`${JSON.stringify(childRel)} became a directory while it was listed; looking again`, { path: childRel }) };
          }
          try {
            const { items, failure } = await readItems(childAbs, childRel);
            return { meta, items, ...(failure !== undefined ? { failure: typed(childRel, failure) } : {}) };
          } catch (err) {
            // Gone (or replaced by a file) since it was stat-ed: nothing to list.
            if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return { meta, items: [] };
            return { meta, items: null, failure: typed(childRel, err) };
          }
        }
        isLink = true;
      }
      const meta = await linkTargetMeta(rootReal, childAbs, childRel);
      return meta ? { meta } : GONE;
    } catch (err) {
      // Listing for a user: a symlink that cannot be resolved is skipped as it always was.
      if (!onUnreadable && isLink) return GONE;
      return { meta: null, failure: typed(childRel, err) };
    }
  };

  /**
   * The looks of a directory's subtree in order, each started as it is produced; a subdirectory's
   * subtree waits for its own look (which read its items) when its key comes up.
   */
  async function* produce(dirAbs: string, dirRel: string, items: Item[]): AsyncGenerator<{ rel: string; look: Promise<Look> }> {
    const dirs = new Map<string, Promise<Look>>();
    const planned = new Set<string>();
    for (const item of items) if (item.subtree) planned.add(item.name);
    for (const item of items) {
      const childAbs = path.join(dirAbs, item.name);
      const childRel = joinPath(dirRel, item.name);
      if (!item.subtree) {
        const p = look(childAbs, childRel, item, planned.has(item.name));
        if (planned.has(item.name)) dirs.set(item.name, p);
        yield { rel: childRel, look: p };
        continue;
      }
      const own = dirs.get(item.name);
      dirs.delete(item.name);
      const seen = own ? await own : null;
      if (seen?.items) yield* produce(childAbs, childRel, seen.items);
    }
  }

  const root = await readItems(abs, rel);
  if (root.failure !== undefined) throw root.failure;
  const producer = produce(abs, rel, root.items);
  const window: Array<{ rel: string; look: Promise<Look> }> = [];
  let exhausted = false;
  try {
    for (;;) {
      while (!exhausted && window.length < concurrency) {
        const next = await producer.next();
        if (next.done) exhausted = true;
        else window.push(next.value);
      }
      const head = window.shift();
      if (!head) return;
      const { meta, failure } = await head.look;
      if (failure !== undefined) {
        if (!onUnreadable) throw failure;
        onUnreadable(head.rel, failure);
      }
      if (meta) yield meta;
    }
  } finally {
    // Also when the consumer stops early. Looks still in flight hold no descriptor past their own end.
    await producer.return(undefined);
  }
}
