/**
 * What the catalog knows of the files below a copy source, so a local copy can hand unchanged
 * files to the kernel without re-hashing them (see KnownContent in src/executors/executor.ts).
 */
import { and, eq, like, or } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { nodes } from '../../db/schema';
import type { KnownContent } from '../executors/executor';
import { belowPattern } from './subtree';

/**
 * Catalogued size, mtime and hash of the ACTIVE files at and below `src`, keyed by path relative
 * to `src` ('' for `src` itself). Reads at most `limit + 1` rows: a tree larger than the copy's
 * entry limit is refused by the executor anyway.
 */
export async function knownContent(db: Db, mountId: string, src: string, limit: number): Promise<Record<string, KnownContent>> {
  const rows = await db
    .select({ path: nodes.path, size: nodes.size, mtime: nodes.mtime, sha256: nodes.sha256 })
    .from(nodes)
    .where(
      and(
        eq(nodes.mountId, mountId),
        eq(nodes.kind, 'file'),
        // Only what Filestore itself wrote: an INCONSISTENT node's hash may no longer describe the file.
        eq(nodes.state, 'ACTIVE'),
        or(eq(nodes.path, src), like(nodes.path, belowPattern(src))),
      ),
    )
    .limit(limit + 1);
  const known: Record<string, KnownContent> = {};
  for (const r of rows) {
    if (!r.sha256 || !r.mtime) continue;
    known[r.path === src ? '' : r.path.slice(src.length + 1)] = { size: r.size, mtime: r.mtime, sha256: r.sha256 };
  }
  return known;
}
