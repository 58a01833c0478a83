/**
 * Catalog nodes of one mount read in byte order of their paths, page by page: what a scan that
 * walks a backend in key order (S3 lists keys in UTF-8 binary order) compares against without
 * loading the mount's whole catalog. Byte order is Postgres's `~<~` family (the comparison of
 * `text_pattern_ops`, so `nodes_mount_path_prefix_idx` serves these reads), which is the order of
 * `Buffer.compare` on the UTF-8 paths.
 */
import { and, eq, ne, sql, type AnyColumn, type SQL } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { nodes } from '../../db/schema';
import type { CatalogNode } from './types';

const PAGE = 1000;

/** The columns of a {@link CatalogNode}: what drift comparison reads of a node. */
export const CATALOG_NODE_COLUMNS = {
  path: nodes.path,
  kind: nodes.kind,
  size: nodes.size,
  sha256: nodes.sha256,
  etag: nodes.etag,
  mode: nodes.mode,
  mtime: nodes.mtime,
  state: nodes.state,
  version: nodes.version,
  updatedAt: nodes.updatedAt,
  lastJournalId: nodes.lastJournalId,
};

/** Options of {@link catalogNodesInOrder}. */
export interface NodeRangeQuery {
  /** Only nodes of this kind; absent: both. */
  kind?: 'file' | 'directory';
  /** Only paths after this one (exclusive, byte order); null: from the first. */
  after?: string | null;
  /** Only paths up to this one (inclusive, byte order); null: to the last. */
  upTo?: string | null;
  /** Only paths before this one (exclusive, byte order): with `after` = `d/`, `before` = `d0` bounds the subtree of `d`. */
  before?: string | null;
  /** Include DELETED nodes (what a drift comparison reads: one counts as absent, yet is the row a detection names). @defaultValue false */
  includeDeleted?: boolean;
  /** Rows per query. @defaultValue 1000 */
  pageSize?: number;
}

/**
 * Catalog nodes of mount `mountId` within the range (live ones of `kind` unless asked otherwise),
 * in byte order of their paths, fetched a page at a time as the caller iterates.
 */
export async function* catalogNodesInOrder(db: Db, mountId: string, q: NodeRangeQuery): AsyncGenerator<CatalogNode> {
  const page = Math.max(1, q.pageSize ?? PAGE);
  let after = q.after ?? null;
  for (;;) {
    const conds: SQL[] = [eq(nodes.mountId, mountId)];
    if (q.kind) conds.push(eq(nodes.kind, q.kind));
    if (!q.includeDeleted) conds.push(ne(nodes.state, 'DELETED'));
    if (after !== null) conds.push(sql`${nodes.path} ~>~ ${after}`);
    if (q.upTo != null) conds.push(sql`${nodes.path} ~<=~ ${q.upTo}`);
    if (q.before != null) conds.push(sql`${nodes.path} ~<~ ${q.before}`);
    const rows = await db
      .select(CATALOG_NODE_COLUMNS)
      .from(nodes)
      .where(and(...conds))
      .orderBy(sql`${nodes.path} USING ~<~`)
      .limit(page);
    for (const r of rows) yield r;
    if (rows.length < page) return;
    after = rows[rows.length - 1].path;
  }
}

/** The catalog node at exactly `path` (DELETED included), or null. */
export async function catalogNodeAt(db: Db, mountId: string, path: string): Promise<CatalogNode | null> {
  const [row] = await db
    .select(CATALOG_NODE_COLUMNS)
    .from(nodes)
    .where(and(eq(nodes.mountId, mountId), eq(nodes.path, path)));
  return row ?? null;
}

/**
 * `column = ANY($1::text[])`: the values as ONE array parameter. drizzle's inArray binds one
 * parameter per value, and building and binding thousands of them per query cost more than the
 * index lookups (drift scans ask about a batch of paths at a time).
 */
export function anyOf(column: AnyColumn, values: readonly string[]): SQL {
  return sql`${column} = ANY(${sql.param(values)}::text[])`;
}
