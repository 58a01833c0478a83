/**
 * The catalog side of a reconcile: what the backend showed is captured into `outcome_nodes` under
 * the reconcile's journal id (always, whatever the size: the payload then never carries a tree),
 * and the commit applies it in set-based statements inside the commit's one transaction — a new
 * version (and snapshot) only for rows that differ from what the backend showed or are not ACTIVE,
 * DELETED for catalogued nodes in scope that the backend no longer has, open drift events in scope
 * resolved.
 */
import { sql } from 'drizzle-orm';
import type { NodeMeta } from '../executors/executor';
import { dropOutcome, writeMetas, type DbOrTx } from './outcomes';
import { belowPattern } from './subtree';

/** Columns a snapshot copies from a changed `nodes` row (the CTE `changed`). */
const SNAPSHOT_INSERT = sql.raw(`
  INSERT INTO snapshots (node_id, journal_id, mount_id, path, version, kind, state, size, sha256, etag, storage_class, version_id, mode, uid, gid, mtime)
  SELECT id, last_journal_id, mount_id, path, version, kind, state, size, sha256, etag, storage_class, version_id, mode, uid, gid, mtime FROM changed`);

/** Which catalogued paths a reconcile speaks for. */
export interface ReconcileScope {
  mountId: string;
  /** The (real) path reconciled. */
  path: string;
  /**
   * Whether everything below `path` is in scope too: a recursive reconcile, or a path that is
   * gone or is a file now (nothing can be below it any more).
   */
  subtree: boolean;
}

function scopeSql(scope: ReconcileScope, column = sql.raw('path')) {
  if (scope.path === '') return sql`TRUE`;
  return scope.subtree ? sql`(${column} = ${scope.path} OR ${column} LIKE ${belowPattern(scope.path)})` : sql`${column} = ${scope.path}`;
}

/** True when the catalog has a live (not DELETED) node at `path` or below it. */
export async function catalogKnows(db: DbOrTx, mountId: string, path: string): Promise<boolean> {
  const res = await db.execute<{ found: boolean }>(sql`
    SELECT EXISTS (
      SELECT 1 FROM nodes WHERE mount_id = ${mountId} AND state <> 'DELETED' AND (${path} = '' OR path = ${path} OR path LIKE ${belowPattern(path)})
    ) AS found`);
  return res.rows[0]?.found === true;
}

/** The catalog's clock, in Postgres's text form (microseconds kept; a JS Date would round them away). */
export async function catalogNow(db: DbOrTx): Promise<string> {
  const res = await db.execute<{ t: string }>(sql`SELECT now()::text AS t`);
  return res.rows[0]!.t;
}

/** Forgets what an earlier attempt of this reconcile captured (a retried capture starts over). */
export async function clearCaptured(db: DbOrTx, journalId: string): Promise<void> {
  await dropOutcome(db, journalId);
}

/** Adds captured backend metadata to the reconcile's stored outcome (idempotent per path). */
export async function storeCaptured(db: DbOrTx, journalId: string, metas: NodeMeta[]): Promise<void> {
  await writeMetas(db, journalId, metas);
}

/** How many captured rows the reconcile's stored outcome holds. */
export async function capturedCount(db: DbOrTx, journalId: string): Promise<number> {
  const res = await db.execute<{ n: number }>(sql`SELECT count(*)::int AS n FROM outcome_nodes WHERE journal_id = ${journalId}::uuid`);
  return Number(res.rows[0]?.n ?? 0);
}

async function count(db: DbOrTx, statement: ReturnType<typeof sql>): Promise<number> {
  const res = await db.execute<{ n: number }>(statement);
  return Number(res.rows[0]?.n ?? 0);
}

/**
 * Inside the commit's transaction: writes the captured nodes whose catalog row is missing, not
 * ACTIVE, or differs (files: kind, size, hash, ETag, version id, storage class, mode, owner,
 * mtime; directories: kind, mode, owner — a directory's mtime moves with every child, Filestore's
 * own writes included), each with a new version and a snapshot; marks every other live node in
 * scope DELETED (new version, snapshot); adds `ancestors` the catalog lacks (or holds DELETED);
 * resolves the open drift events in scope. The stored outcome is left for the caller to drop.
 *
 * @returns how many node rows changed.
 */
export async function applyReconcile(tx: DbOrTx, journalId: string, scope: ReconcileScope, ancestors: NodeMeta[], since?: string): Promise<number> {
  const { mountId } = scope;
  // A path with drift detected after capture began changed after it was looked at: the capture
  // would record a stale view over it, so it stays as the watcher left it (INCONSISTENT, event open).
  const changedSince = (pathSql: ReturnType<typeof sql>) =>
    since === undefined
      ? sql`FALSE`
      : sql`EXISTS (SELECT 1 FROM drift_events d WHERE d.mount_id = ${mountId} AND d.path = ${pathSql} AND d.resolved_at IS NULL AND d.detected_at > ${since}::timestamptz)`;
  let affected = 0;
  affected += await count(
    tx,
    sql`WITH captured AS (
          SELECT path, meta FROM outcome_nodes WHERE journal_id = ${journalId}::uuid
        ), changed AS (
          INSERT INTO nodes AS n (mount_id, path, kind, size, sha256, etag, storage_class, version_id, mode, uid, gid, mtime, state, version, last_journal_id)
          SELECT ${mountId}, path, (meta->>'kind')::node_kind, COALESCE((meta->>'size')::bigint, 0), meta->>'sha256', meta->>'etag',
                 meta->>'storageClass', meta->>'versionId', (meta->>'mode')::int, (meta->>'uid')::int, (meta->>'gid')::int, (meta->>'mtime')::timestamptz,
                 'ACTIVE', 1, ${journalId}::uuid
          FROM captured
          WHERE NOT ${changedSince(sql`captured.path`)}
          ON CONFLICT (mount_id, path) DO UPDATE SET
            kind = excluded.kind, size = excluded.size, sha256 = excluded.sha256, etag = excluded.etag,
            storage_class = excluded.storage_class, version_id = excluded.version_id, mode = excluded.mode, uid = excluded.uid, gid = excluded.gid,
            mtime = excluded.mtime, state = 'ACTIVE', version = n.version + 1, last_journal_id = excluded.last_journal_id, updated_at = now()
          WHERE n.state <> 'ACTIVE'
             OR n.kind IS DISTINCT FROM excluded.kind
             OR n.mode IS DISTINCT FROM excluded.mode OR n.uid IS DISTINCT FROM excluded.uid OR n.gid IS DISTINCT FROM excluded.gid
             OR (excluded.kind = 'file' AND (
                  n.size IS DISTINCT FROM excluded.size OR n.sha256 IS DISTINCT FROM excluded.sha256 OR n.etag IS DISTINCT FROM excluded.etag
                  OR n.version_id IS DISTINCT FROM excluded.version_id OR n.storage_class IS DISTINCT FROM excluded.storage_class
                  OR n.mtime IS DISTINCT FROM excluded.mtime))
          RETURNING *
        ), snap AS (${SNAPSHOT_INSERT})
        SELECT count(*)::int AS n FROM changed`,
  );
  affected += await count(
    tx,
    sql`WITH changed AS (
          UPDATE nodes SET state = 'DELETED', version = version + 1, last_journal_id = ${journalId}::uuid, updated_at = now()
          WHERE mount_id = ${mountId} AND ${scopeSql(scope)} AND state <> 'DELETED'
            AND NOT EXISTS (SELECT 1 FROM outcome_nodes o WHERE o.journal_id = ${journalId}::uuid AND o.path = nodes.path)
            AND NOT ${changedSince(sql`nodes.path`)}
          RETURNING *
        ), snap AS (${SNAPSHOT_INSERT})
        SELECT count(*)::int AS n FROM changed`,
  );
  if (ancestors.length > 0) {
    // Parents of a reconciled path are recorded only where the catalog has no live row: their own
    // drift (if any) is theirs to reconcile.
    affected += await count(
      tx,
      sql`WITH changed AS (
            INSERT INTO nodes AS n (mount_id, path, kind, size, sha256, etag, storage_class, version_id, mode, uid, gid, mtime, state, version, last_journal_id)
            SELECT ${mountId}, e->>'path', (e->>'kind')::node_kind, COALESCE((e->>'size')::bigint, 0), e->>'sha256', e->>'etag',
                   e->>'storageClass', e->>'versionId', (e->>'mode')::int, (e->>'uid')::int, (e->>'gid')::int, (e->>'mtime')::timestamptz,
                   'ACTIVE', 1, ${journalId}::uuid
            FROM jsonb_array_elements(${JSON.stringify(ancestors)}::jsonb) AS e
            ON CONFLICT (mount_id, path) DO UPDATE SET
              kind = excluded.kind, size = excluded.size, sha256 = excluded.sha256, etag = excluded.etag,
              storage_class = excluded.storage_class, version_id = excluded.version_id, mode = excluded.mode, uid = excluded.uid, gid = excluded.gid,
              mtime = excluded.mtime, state = 'ACTIVE', version = n.version + 1, last_journal_id = excluded.last_journal_id, updated_at = now()
            WHERE n.state = 'DELETED'
            RETURNING *
          ), snap AS (${SNAPSHOT_INSERT})
          SELECT count(*)::int AS n FROM changed`,
    );
  }
  await tx.execute(sql`
    UPDATE drift_events SET resolved_at = now()
    WHERE mount_id = ${mountId} AND resolved_at IS NULL AND ${scopeSql(scope)}
      ${since === undefined ? sql`` : sql`AND detected_at <= ${since}::timestamptz`}`);
  return affected;
}
