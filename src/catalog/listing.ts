/**
 * Listing a directory from the catalog, one page at a time. Direct children are one range scan
 * of the (mount_id, parent, path) index; a subtree is a path-ordered range below the directory.
 * Pages are keyed by the last path returned (keyset paging), so each page costs the same however
 * deep into a huge directory it is, and a row is never skipped or repeated between pages.
 */
import { and, asc, eq, gt, like, ne, type SQL } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { nodes, type NodeRow } from '../../db/schema';
import { InvalidRequestError } from '../errors';
import { belowPattern } from './subtree';

/** Rows per page when the caller does not say. @defaultValue 1000 */
export const DEFAULT_PAGE_SIZE = 1000;
/** Largest page one call returns. */
export const MAX_PAGE_SIZE = 10_000;

export interface ListPageOptions {
  /** The whole subtree (path order), not just the direct children. @defaultValue false */
  recursive?: boolean;
  /** Include nodes in state DELETED. @defaultValue false */
  includeDeleted?: boolean;
  /** Rows per page, 1 … {@link MAX_PAGE_SIZE}. @defaultValue {@link DEFAULT_PAGE_SIZE} */
  limit?: number;
  /** `nextCursor` of the previous page of the same listing; absent for the first page. */
  cursor?: string | null;
}

/** One page of a listing. */
export interface NodePage {
  /** Rows in path order: exactly `limit` of them when `nextCursor` is set, fewer only at the end. */
  nodes: NodeRow[];
  /** Pass as `cursor` for the next page; null when this page is the last. Opaque. */
  nextCursor: string | null;
}

interface CursorBody {
  /** Directory and mode the cursor belongs to, so a cursor from one listing is refused by another. */
  d: string;
  r: boolean;
  /** Last path returned. */
  a: string;
}

function encodeCursor(body: CursorBody): string {
  return Buffer.from(JSON.stringify(body)).toString('base64url');
}

function decodeCursor(cursor: string, dir: string, recursive: boolean): string {
  let body: Partial<CursorBody>;
  try {
    body = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Partial<CursorBody>;
  } catch {
    throw new InvalidRequestError('cursor is not one this listing returned');
  }
  if (typeof body !== 'object' || body === null || typeof body.a !== 'string' || body.a.includes('\0') || body.d !== dir || body.r !== recursive) {
    throw new InvalidRequestError('cursor belongs to a different listing (directory or --recursive differ)');
  }
  return body.a;
}

/** Validates a page size. */
export function pageSize(limit: number | undefined): number {
  const n = limit ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE_SIZE) {
    throw new InvalidRequestError(`limit must be an integer from 1 to ${MAX_PAGE_SIZE}, got ${String(limit)}`);
  }
  return n;
}

/**
 * One page of the live (or, with `includeDeleted`, all) nodes directly below canonical directory
 * `dir` ('' is the mount root), or of its whole subtree with `recursive`.
 */
export async function listNodePage(db: Db, mountId: string, dir: string, opts: ListPageOptions = {}): Promise<NodePage> {
  const recursive = opts.recursive ?? false;
  const limit = pageSize(opts.limit);
  const conds: SQL[] = [eq(nodes.mountId, mountId)];
  if (!recursive) conds.push(eq(nodes.parent, dir));
  else if (dir !== '') conds.push(like(nodes.path, belowPattern(dir)));
  // The mount root is never its own child.
  if (dir === '') conds.push(ne(nodes.path, ''));
  if (!opts.includeDeleted) conds.push(ne(nodes.state, 'DELETED'));
  if (opts.cursor) conds.push(gt(nodes.path, decodeCursor(opts.cursor, dir, recursive)));
  // One row past the page tells whether another page exists, so a full last page is not
  // followed by an empty one.
  const rows = await db
    .select()
    .from(nodes)
    .where(and(...conds))
    .orderBy(asc(nodes.path))
    .limit(limit + 1);
  if (rows.length <= limit) return { nodes: rows, nextCursor: null };
  const page = rows.slice(0, limit);
  return { nodes: page, nextCursor: encodeCursor({ d: dir, r: recursive, a: page[page.length - 1].path }) };
}
