/**
 * drift_events: recording what the watcher detected (marking the nodes INCONSISTENT) and reading
 * the events back. A reconcile resolves them (./reconcile.ts).
 */
import { and, desc, eq, isNull, ne, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { driftEvents, nodes, type DriftEventRow } from '../../db/schema';
import { InvalidRequestError } from '../errors';
import { anyOf } from './node-ranges';
import type { CatalogNode, DriftKind, DriftObserved } from './types';

export interface DriftQuery {
  mountId?: string;
  /** Include events that were resolved. @defaultValue false */
  all?: boolean;
  /** @defaultValue 100 */
  limit?: number;
}

/** Drift events, newest first; open ones only unless `all`. */
export async function listDriftEvents(db: Db, q: DriftQuery = {}): Promise<DriftEventRow[]> {
  const conds: SQL[] = [];
  if (q.mountId) conds.push(eq(driftEvents.mountId, q.mountId));
  if (!q.all) conds.push(isNull(driftEvents.resolvedAt));
  return db
    .select()
    .from(driftEvents)
    .where(conds.length ? and(...conds) : undefined)
    .orderBy(desc(driftEvents.detectedAt), desc(driftEvents.id))
    .limit(q.limit ?? 100);
}

/** One page of drift events, newest first: see {@link listDriftPage}. */
export interface DriftPage {
  events: DriftEventRow[];
  /** Pass as `cursor` for the next (older) page; null when this page is the last. Opaque. */
  nextCursor: string | null;
}

/**
 * One page of drift events (open ones unless `all`), newest first, keyset-paged on
 * (detected_at, id). The cursor carries the last event's id; its detected_at is read back from the
 * row (Postgres keeps microseconds a JS Date would round away).
 *
 * @throws InvalidRequestError for a cursor that is not one this function returned.
 */
export async function listDriftPage(db: Db, q: DriftQuery & { cursor?: string | null } = {}): Promise<DriftPage> {
  const limit = q.limit ?? 100;
  const conds: SQL[] = [];
  if (q.mountId) conds.push(eq(driftEvents.mountId, q.mountId));
  if (!q.all) conds.push(isNull(driftEvents.resolvedAt));
  if (q.cursor) {
    let after: unknown;
    try {
      after = (JSON.parse(Buffer.from(q.cursor, 'base64url').toString('utf8')) as { d?: unknown }).d;
    } catch {
      after = undefined;
    }
    if (typeof after !== 'number' || !Number.isSafeInteger(after)) throw new InvalidRequestError('cursor is not one the drift listing returned');
    conds.push(sql`(${driftEvents.detectedAt}, ${driftEvents.id}) < (SELECT d.detected_at, d.id FROM ${driftEvents} d WHERE d.id = ${after})`);
  }
  const rows = await db
    .select()
    .from(driftEvents)
    .where(conds.length ? and(...conds) : undefined)
    .orderBy(desc(driftEvents.detectedAt), desc(driftEvents.id))
    .limit(limit + 1);
  if (rows.length <= limit) return { events: rows, nextCursor: null };
  const events = rows.slice(0, limit);
  return { events, nextCursor: Buffer.from(JSON.stringify({ d: events[events.length - 1].id }), 'utf8').toString('base64url') };
}

/** One confirmed difference between a backend and the catalog. */
export interface DriftDetection {
  path: string;
  kind: DriftKind;
  observed: DriftObserved;
  /** The catalog row compared against; null when the catalog had none. */
  row: CatalogNode | null;
}

/** The last open detection of a path, as {@link recordDriftDetections} hands it to `sameAsOpen`. */
export interface OpenDetection {
  path: string;
  kind: DriftKind;
  observed: DriftObserved;
}

const CHUNK = 5000;

/**
 * Marks the nodes INCONSISTENT (inserting one for a path the catalog did not know) and appends
 * drift events, in one transaction serialised per mount; skips a detection that repeats the
 * path's open one (`sameAsOpen`) once its node is marked, or when there is no node to mark.
 *
 * @returns the detections recorded.
 */
export async function recordDriftDetections<T extends DriftDetection>(
  db: Db,
  mountId: string,
  found: T[],
  jobId: string | undefined,
  sameAsOpen: (open: OpenDetection | undefined, m: T) => boolean,
): Promise<T[]> {
  if (found.length === 0) return [];
  return db.transaction(async (tx) => {
    // Jobs run concurrently and may overlap (a scan and a check of the same path): recording per
    // mount is serialised so the "already recorded?" test below cannot race.
    await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`filestore:drift:${mountId}`}))`);
    const out: T[] = [];
    for (let i = 0; i < found.length; i += CHUNK) {
      const chunk = found.slice(i, i + CHUNK);
      const open = await tx
        .select({ path: driftEvents.path, kind: driftEvents.kind, observed: sql<DriftObserved>`${driftEvents.observed}` })
        .from(driftEvents)
        .where(and(eq(driftEvents.mountId, mountId), isNull(driftEvents.resolvedAt), anyOf(driftEvents.path, chunk.map((m) => m.path))))
        .orderBy(driftEvents.detectedAt);
      const last = new Map(open.map((e) => [e.path, e]));
      const states = new Map(
        (
          await tx
            .select({ path: nodes.path, state: nodes.state })
            .from(nodes)
            .where(and(eq(nodes.mountId, mountId), anyOf(nodes.path, chunk.map((m) => m.path))))
        ).map((r) => [r.path, r.state]),
      );
      // A repeat of the open detection adds nothing — once its node is marked, or when there is no
      // node to mark (an unreadable entry whose kind could not even be seen).
      const settled = (m: T) => states.get(m.path) === 'INCONSISTENT' || (!states.has(m.path) && !m.observed.kind);
      const fresh = chunk.filter((m) => !(settled(m) && sameAsOpen(last.get(m.path), m)));
      if (fresh.length === 0) continue;

      const known = fresh.filter((m) => m.row).map((m) => m.path);
      if (known.length > 0) {
        await tx
          .update(nodes)
          .set({ state: 'INCONSISTENT', updatedAt: new Date() })
          .where(and(eq(nodes.mountId, mountId), anyOf(nodes.path, known), ne(nodes.state, 'INCONSISTENT')));
      }
      const unknown = fresh.filter((m) => !m.row && m.observed.kind);
      if (unknown.length > 0) {
        // One JSON parameter per statement, not one bind parameter per value: building and
        // binding ~10 parameters × 1,000 rows cost more than the insert itself (a scan of a mount
        // of new files records them all).
        const rows = unknown.map((m) => ({
          path: m.path,
          kind: m.observed.kind,
          size: m.observed.size ?? 0,
          sha256: m.observed.sha256 ?? null,
          // An object's ETag: later scans compare the node by it, as they do a committed one.
          etag: m.observed.etag ?? null,
          mode: m.observed.mode,
          mtime: m.observed.mtime,
        }));
        await tx.execute(sql`
          INSERT INTO ${nodes} (mount_id, path, kind, size, sha256, etag, mode, mtime, state)
          SELECT ${mountId}, r.path, r.kind::node_kind, r.size, r.sha256, r.etag, r.mode, r.mtime::timestamptz, 'INCONSISTENT'
          FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS r(path text, kind text, size bigint, sha256 text, etag text, mode integer, mtime text)
          ON CONFLICT (mount_id, path) DO UPDATE SET state = 'INCONSISTENT', updated_at = ${new Date().toISOString()}::timestamptz`);
      }
      const events = fresh.map((m) => ({
        path: m.path,
        kind: m.kind,
        observed: m.observed,
        catalog: m.row ? { ...m.row, updatedAt: m.row.updatedAt.toISOString() } : null,
      }));
      await tx.execute(sql`
        INSERT INTO ${driftEvents} (mount_id, path, kind, observed, catalog, job_id)
        SELECT ${mountId}, e.path, e.kind::drift_kind, e.observed, e.catalog, ${jobId ?? null}
        FROM jsonb_to_recordset(${JSON.stringify(events)}::jsonb) AS e(path text, kind text, observed jsonb, catalog jsonb)`);
      out.push(...fresh);
    }
    return out;
  });
}
