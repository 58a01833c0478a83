/** nodes: reads of single catalogued nodes that activities need outside a commit. */
import { and, eq } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { nodes, type NodeRow } from '../../db/schema';
import type { DbOrTx } from './outcomes';

/**
 * Size and content hash the catalog records for a file Filestore itself wrote (ACTIVE, with a
 * hash), or null: an INCONSISTENT node's hash may no longer describe the file, and a directory
 * has none.
 */
export async function catalogedContent(db: Db, mountId: string, path: string): Promise<{ size: number; sha256: string } | null> {
  const [row] = await db
    .select({ size: nodes.size, sha256: nodes.sha256 })
    .from(nodes)
    .where(and(eq(nodes.mountId, mountId), eq(nodes.path, path), eq(nodes.state, 'ACTIVE'), eq(nodes.kind, 'file')));
  return row?.sha256 ? { size: row.size, sha256: row.sha256 } : null;
}

/** The catalogued node at `path` on `mountId` (in any state), or null. */
export async function nodeAt(db: DbOrTx, mountId: string, path: string): Promise<NodeRow | null> {
  const [row] = await db.select().from(nodes).where(and(eq(nodes.mountId, mountId), eq(nodes.path, path)));
  return row ?? null;
}
