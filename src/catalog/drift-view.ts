/**
 * What the drift processor (src/watcher/drift-processor.ts) compares a backend against: one
 * consistent, read-only snapshot of the catalog rows in a job's scope, the paths PENDING
 * mutations hold on the mount, and the mutations begun lately that already ended.
 */
import { and, eq, gte, inArray, ne, or, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { journal, nodes } from '../../db/schema';
import { anyOf, CATALOG_NODE_COLUMNS } from './node-ranges';
import type { CatalogNode } from './types';
import { belowPattern } from './subtree';

/** A snapshot of the catalog for one drift job (see {@link catalogView}). */
export interface CatalogView {
  rows: Map<string, CatalogNode>;
  pending: string[];
  /** The database's clock when the view was taken. */
  takenAt: Date;
  /** Journal entries begun lately (see {@link BEGIN_SLACK_MS}) that are no longer PENDING: id → path and target. */
  ended: Map<string, string[]>;
}

const CHUNK = 1000;
/**
 * How far before the first catalog read a mutation may have begun and still count as "began in
 * between": a begin transaction that started just before that read commits just after it, so the
 * read neither saw it PENDING nor its effects. Seconds are generous; entries the first read
 * already saw ended are told apart by id, so the slack costs no needless deferral.
 */
const BEGIN_SLACK_MS = 5000;

function scopeFilter(mountId: string, scopes: string[]): SQL {
  if (scopes.includes('')) return eq(nodes.mountId, mountId);
  return and(
    eq(nodes.mountId, mountId),
    // ARRAY[...] by hand: drizzle expands a JS array into a parenthesised list, not one array parameter.
    or(inArray(nodes.path, scopes), sql`${nodes.path} LIKE ANY(ARRAY[${sql.join(scopes.map((p) => sql`${belowPattern(p)}`), sql`, `)}])`),
  )!;
}

/** The part of a {@link CatalogView} that is about mutations: what a scan reads once, before it looks at the backend. */
export type JournalView = Omit<CatalogView, 'rows'>;

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/** Pending paths now, and entries begun since `since` (default: now) that already ended, read in `tx`. */
async function readJournal(tx: Tx, mountId: string, since?: Date): Promise<JournalView> {
  const [{ now }] = (await tx.execute(sql`SELECT now() AS now`)).rows as Array<{ now: string | Date }>;
  const pendingRows = await tx
    .select({ path: journal.path, targetPath: journal.targetPath })
    .from(journal)
    .where(and(eq(journal.status, 'PENDING'), or(eq(journal.mountId, mountId), eq(journal.targetMountId, mountId))));
  const pending = pendingRows.flatMap((p) => [p.path, ...(p.targetPath !== null ? [p.targetPath] : [])]);
  const takenAt = new Date(now);
  // Served by journal_created_at_idx: only entries of the last few seconds are read.
  const endedRows = await tx
    .select({ id: journal.id, path: journal.path, targetPath: journal.targetPath })
    .from(journal)
    .where(
      and(
        gte(journal.createdAt, new Date((since ?? takenAt).getTime() - BEGIN_SLACK_MS)),
        ne(journal.status, 'PENDING'),
        or(eq(journal.mountId, mountId), eq(journal.targetMountId, mountId)),
      ),
    );
  const ended = new Map(endedRows.map((e) => [e.id, [e.path, ...(e.targetPath !== null ? [e.targetPath] : [])]]));
  return { pending, takenAt, ended };
}

const SNAPSHOT = { isolationLevel: 'repeatable read', accessMode: 'read only' } as const;

/**
 * Catalog rows at and below `scopes`, the paths PENDING mutations hold, and the mutations begun
 * since `since` (default: this view's own clock) that already ended — one consistent snapshot.
 */
export async function catalogView(db: Db, mountId: string, scopes: string[], since?: Date): Promise<CatalogView> {
  return db.transaction(async (tx) => {
    const rows = new Map<string, CatalogNode>();
    for (let i = 0; i < scopes.length; i += CHUNK) {
      const found = await tx
        .select(CATALOG_NODE_COLUMNS)
        .from(nodes)
        .where(scopeFilter(mountId, scopes.slice(i, i + CHUNK)));
      for (const r of found) rows.set(r.path, r);
    }
    return { rows, ...(await readJournal(tx, mountId, since)) };
  }, SNAPSHOT);
}

/**
 * The mutation side of a view alone (no rows): what a scan that reads the catalog's rows range
 * by range (src/watcher/ordered-scan.ts) takes once, before it looks at the backend.
 */
export async function journalView(db: Db, mountId: string, since?: Date): Promise<JournalView> {
  return db.transaction((tx) => readJournal(tx, mountId, since), SNAPSHOT);
}

/**
 * The rows of exactly `paths` (none below them) with the journal side, in one snapshot: the
 * second read that confirms a batch of mismatches (see drift-processor.ts). A `path IN (…)`
 * lookup per chunk, where {@link catalogView}'s subtree patterns would cost a pass over the
 * mount's rows per pattern.
 */
export async function catalogViewAt(db: Db, mountId: string, paths: string[], since?: Date): Promise<CatalogView> {
  return db.transaction(async (tx) => {
    const rows = new Map<string, CatalogNode>();
    for (let i = 0; i < paths.length; i += CHUNK) {
      const found = await tx
        .select(CATALOG_NODE_COLUMNS)
        .from(nodes)
        .where(and(eq(nodes.mountId, mountId), anyOf(nodes.path, paths.slice(i, i + CHUNK))));
      for (const r of found) rows.set(r.path, r);
    }
    return { rows, ...(await readJournal(tx, mountId, since)) };
  }, SNAPSHOT);
}
