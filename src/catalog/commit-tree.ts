/**
 * The commit's set-based writes: statements that change a whole subtree of `nodes` and record
 * one snapshot per changed row without the rows ever travelling to this process. A 100,000-node
 * copy, move or delete commits in a handful of statements instead of 100,000 rows each way.
 * All of them run inside the commit's one transaction.
 */
import { sql } from 'drizzle-orm';
import { belowPattern } from './subtree';
import type { DbOrTx } from './outcomes';

/** Rows per statement when applying an offloaded outcome (keyset pages over outcome_nodes). */
const OUTCOME_COMMIT_PAGE = 5000;

/** Columns a snapshot copies from a changed `nodes` row (the CTE `changed` below). */
const SNAPSHOT_INSERT = sql.raw(`
  INSERT INTO snapshots (node_id, journal_id, mount_id, path, version, kind, state, size, sha256, etag, storage_class, version_id, mode, uid, gid, mtime)
  SELECT id, last_journal_id, mount_id, path, version, kind, state, size, sha256, etag, storage_class, version_id, mode, uid, gid, mtime FROM changed`);

/** What an upsert does to a row that is already there (revived or replaced: a new version). */
const ON_CONFLICT_NEW_VERSION = sql.raw(`
  ON CONFLICT (mount_id, path) DO UPDATE SET
    kind = excluded.kind, size = excluded.size, sha256 = excluded.sha256, etag = excluded.etag,
    storage_class = excluded.storage_class, version_id = excluded.version_id, mode = excluded.mode, uid = excluded.uid, gid = excluded.gid,
    mtime = excluded.mtime, state = 'ACTIVE', version = nodes.version + 1,
    last_journal_id = excluded.last_journal_id, updated_at = now()
  RETURNING *`);

function subtreeSql(mountId: string, p: string) {
  return sql`mount_id = ${mountId} AND (path = ${p} OR path LIKE ${belowPattern(p)})`;
}

async function count(db: DbOrTx, statement: ReturnType<typeof sql>): Promise<number> {
  const res = await db.execute<{ n: number }>(statement);
  return Number(res.rows[0]?.n ?? 0);
}

/** Marks `p` and everything below it DELETED (new version each) and snapshots them; returns how many. */
export async function markSubtreeDeleted(tx: DbOrTx, mountId: string, journalId: string, p: string): Promise<number> {
  return count(
    tx,
    sql`WITH changed AS (
          UPDATE nodes SET state = 'DELETED', version = version + 1, last_journal_id = ${journalId}::uuid, updated_at = now()
          WHERE ${subtreeSql(mountId, p)} AND state <> 'DELETED'
          RETURNING *
        ), snap AS (${SNAPSHOT_INSERT})
        SELECT count(*)::int AS n FROM changed`,
  );
}

/**
 * Applies a transaction's offloaded outcome (outcome_nodes, written by execute and refreshed by
 * verify) to `nodes`, page by page in path order, snapshotting every row; returns how many.
 */
export async function upsertFromOutcome(tx: DbOrTx, mountId: string, journalId: string): Promise<number> {
  let total = 0;
  let after: string | null = null;
  for (;;) {
    const res: { rows: Array<{ n: number; last: string | null }> } = await tx.execute<{ n: number; last: string | null }>(sql`
      WITH page AS (
        SELECT path, meta FROM outcome_nodes
        WHERE journal_id = ${journalId}::uuid ${after === null ? sql`` : sql`AND path > ${after}`}
        ORDER BY path LIMIT ${OUTCOME_COMMIT_PAGE}
      ), changed AS (
        INSERT INTO nodes (mount_id, path, kind, size, sha256, etag, storage_class, version_id, mode, uid, gid, mtime, state, version, last_journal_id)
        SELECT ${mountId}, path, (meta->>'kind')::node_kind, COALESCE((meta->>'size')::bigint, 0), meta->>'sha256', meta->>'etag',
               meta->>'storageClass', meta->>'versionId', (meta->>'mode')::int, (meta->>'uid')::int, (meta->>'gid')::int, (meta->>'mtime')::timestamptz,
               'ACTIVE', 1, ${journalId}::uuid
        FROM page
        ${ON_CONFLICT_NEW_VERSION}
      ), snap AS (${SNAPSHOT_INSERT})
      SELECT (SELECT count(*) FROM changed)::int AS n, (SELECT max(path) FROM page) AS last`);
    const { n, last } = res.rows[0];
    total += Number(n);
    if (last === null || Number(n) < OUTCOME_COMMIT_PAGE) return total;
    after = last;
  }
}

/**
 * For a move: the catalogued subtree at `from` reappears at `to` in one INSERT … SELECT that
 * rewrites the path prefix, keeping each node's metadata and content hash (rename keeps the
 * bytes) — but only the hash of what Filestore wrote (ACTIVE): an INCONSISTENT node's hash may be
 * stale. The version id is not kept: on S3 it names one object at the old key, not the new one.
 * Paths in `skip` (the executor's fresh stats, merged and upserted by the caller) are
 * left out so no row changes twice in one statement. Returns how many rows were written.
 */
export async function copySubtreeRows(
  tx: DbOrTx,
  mountId: string,
  journalId: string,
  moved: { from: string; to: string },
  skip: string[],
): Promise<number> {
  const { from, to } = moved;
  return count(
    tx,
    sql`WITH src AS (
          SELECT *, ${to} || substr(path, char_length(${from}) + 1) AS new_path FROM nodes
          WHERE ${subtreeSql(mountId, from)} AND state <> 'DELETED'
        ), changed AS (
          INSERT INTO nodes (mount_id, path, kind, size, sha256, etag, storage_class, version_id, mode, uid, gid, mtime, state, version, last_journal_id)
          SELECT mount_id, new_path, kind, size, CASE WHEN state = 'ACTIVE' THEN sha256 END, etag, storage_class, NULL, mode, uid, gid,
                 COALESCE(mtime, 'epoch'::timestamptz), 'ACTIVE', 1, ${journalId}::uuid
          FROM src
          WHERE new_path NOT IN (SELECT jsonb_array_elements_text(${JSON.stringify(skip)}::jsonb))
          ${ON_CONFLICT_NEW_VERSION}
        ), snap AS (${SNAPSHOT_INSERT})
        SELECT count(*)::int AS n FROM changed`,
  );
}
