/**
 * The journal's SQL: inserting the PENDING entry that locks a mutation's (mount, path) pairs,
 * finding and listing entries, and ending a PENDING entry. Activities call these instead
 * of touching the schema; the rules (validation, routing, what an existing entry answers) stay in
 * activities/journal.ts.
 */
import { and, asc, desc, eq, inArray, like, lt, or, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { journal, nodes, type JournalRow } from '../../db/schema';
import { InconsistentNodeError, InvalidRequestError, type ErrorInfo } from '../errors';
import type { MutationOp } from '../mutations';
import { lockError, lockMounts, pendingLockHolder } from './locks';
import { dropOutcome } from './outcomes';
import { belowPattern } from './subtree';

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/** What a new PENDING entry records and locks. */
export interface PendingEntry {
  idempotencyKey: string;
  workflowId: string;
  runId: string;
  op: MutationOp;
  mountId: string;
  path: string;
  /** Move/copy: where the target is; the same mount for a same-mount move/copy. */
  target: { mountId: string; path: string } | null;
  /** The canonical request (what the idempotency key stands for). */
  request: Record<string, unknown>;
  /** Refuse INCONSISTENT nodes unless false. */
  refuseInconsistent: boolean;
  /** A clash is the retryable PATH_LOCKED instead of CONFLICT. */
  waitForLock?: boolean;
}

/**
 * The first node the mutation would act on that the catalog marks INCONSISTENT, as
 * `mount:path`, or null: its path and (on the target's mount) its move/copy target, and for
 * delete, move and copy also everything below the path (they carry the whole catalogued subtree;
 * a delete marks it DELETED even when not recursive). A move/copy target is never a directory
 * that gets replaced, so its subtree is not touched. Served by the partial index on INCONSISTENT
 * nodes.
 */
async function inconsistentNode(tx: Tx, e: PendingEntry): Promise<{ mountId: string; path: string } | null> {
  const carriesSubtree = e.op === 'delete' || e.op === 'move' || e.op === 'copy';
  const sameMountTarget = e.target && e.target.mountId === e.mountId ? [e.target.path] : [];
  const exact = inArray(nodes.path, [e.path, ...sameMountTarget]);
  const onSource = await tx
    .select({ path: nodes.path })
    .from(nodes)
    .where(
      and(
        eq(nodes.mountId, e.mountId),
        eq(nodes.state, 'INCONSISTENT'),
        carriesSubtree ? or(exact, like(nodes.path, belowPattern(e.path))) : exact,
      ),
    )
    .orderBy(nodes.path)
    .limit(1);
  if (onSource[0]) return { mountId: e.mountId, path: onSource[0].path };
  if (!e.target || e.target.mountId === e.mountId) return null;
  const onTarget = await tx
    .select({ path: nodes.path })
    .from(nodes)
    .where(and(eq(nodes.mountId, e.target.mountId), eq(nodes.state, 'INCONSISTENT'), eq(nodes.path, e.target.path)))
    .limit(1);
  return onTarget[0] ? { mountId: e.target.mountId, path: onTarget[0].path } : null;
}

/**
 * In one transaction, serialised per mount (both mounts of a cross-mount copy/move, in a fixed
 * order): answers with the entry already under the idempotency key if there is one; otherwise
 * refuses INCONSISTENT nodes (unless forced) and paths another PENDING entry holds — the source
 * path on the source mount, the target on the target mount — and inserts this one as PENDING.
 *
 * @returns `{ existing }` when the key was taken, else `{ journalId }` of the new entry.
 * @throws InconsistentNodeError, ConflictError / PathLockedError — nothing is written then.
 */
export async function insertPendingEntry(db: Db, e: PendingEntry): Promise<{ existing: JournalRow } | { journalId: string }> {
  return db.transaction(async (tx) => {
    await lockMounts(tx, [e.mountId, ...(e.target ? [e.target.mountId] : [])]);
    const [existing] = await tx.select().from(journal).where(eq(journal.idempotencyKey, e.idempotencyKey));
    if (existing) return { existing };

    if (e.refuseInconsistent) {
      const inconsistent = await inconsistentNode(tx, e);
      if (inconsistent !== null) throw new InconsistentNodeError(inconsistent.mountId, inconsistent.path);
    }

    const claims =
      e.target && e.target.mountId !== e.mountId
        ? [
            { mountId: e.mountId, paths: [e.path] },
            { mountId: e.target.mountId, paths: [e.target.path] },
          ]
        : [{ mountId: e.mountId, paths: [e.path, ...(e.target ? [e.target.path] : [])] }];
    for (const claim of claims) {
      const held = await pendingLockHolder(tx, claim);
      if (held) throw lockError(claim.mountId, held, e.waitForLock);
    }
    const [row] = await tx
      .insert(journal)
      .values({
        idempotencyKey: e.idempotencyKey,
        workflowId: e.workflowId,
        runId: e.runId,
        op: e.op,
        mountId: e.mountId,
        path: e.path,
        targetMountId: e.target?.mountId ?? null,
        targetPath: e.target?.path ?? null,
        request: e.request,
      })
      .returning({ id: journal.id });
    return { journalId: row.id };
  });
}

/** The entry recorded under an idempotency key, or null. */
export async function entryByKey(db: Db, idempotencyKey: string): Promise<JournalRow | null> {
  const [row] = await db.select().from(journal).where(eq(journal.idempotencyKey, idempotencyKey));
  return row ?? null;
}

/** Filters of {@link listJournalEntries}. */
export interface JournalQuery {
  /** Entries on this mount, as source or as a copy/move's target. */
  mountId?: string;
  status?: JournalRow['status'];
  /** @defaultValue 50 */
  limit?: number;
}

/** Journal entries, newest first. */
export async function listJournalEntries(db: Db, q: JournalQuery = {}): Promise<JournalRow[]> {
  const conds: SQL[] = [];
  if (q.mountId) conds.push(or(eq(journal.mountId, q.mountId), eq(journal.targetMountId, q.mountId))!);
  if (q.status) conds.push(eq(journal.status, q.status));
  return db
    .select()
    .from(journal)
    .where(conds.length ? and(...conds) : undefined)
    .orderBy(desc(journal.createdAt))
    .limit(q.limit ?? 50);
}

/** One page of the journal, newest first: see {@link listJournalPage}. */
export interface JournalPage {
  entries: JournalRow[];
  /** Pass as `cursor` for the next (older) page; null when this page is the last. Opaque. */
  nextCursor: string | null;
}

/**
 * One page of journal entries, newest first, keyset-paged on (created_at, id): entries committed
 * while a reader pages never shift the pages it has not read yet. The cursor names the last entry's
 * id only; its created_at is read back from the row, because Postgres keeps microseconds that a JS
 * Date would round away (and a rounded key would skip or repeat entries).
 *
 * @throws InvalidRequestError for a cursor that is not one this function returned.
 */
export async function listJournalPage(db: Db, q: JournalQuery & { cursor?: string | null } = {}): Promise<JournalPage> {
  const limit = q.limit ?? 50;
  const conds: SQL[] = [];
  if (q.mountId) conds.push(or(eq(journal.mountId, q.mountId), eq(journal.targetMountId, q.mountId))!);
  if (q.status) conds.push(eq(journal.status, q.status));
  if (q.cursor) {
    const after = decodeJournalCursor(q.cursor);
    conds.push(sql`(${journal.createdAt}, ${journal.id}) < (SELECT j.created_at, j.id FROM ${journal} j WHERE j.id = ${after})`);
  }
  const rows = await db
    .select()
    .from(journal)
    .where(conds.length ? and(...conds) : undefined)
    .orderBy(desc(journal.createdAt), desc(journal.id))
    .limit(limit + 1);
  if (rows.length <= limit) return { entries: rows, nextCursor: null };
  const entries = rows.slice(0, limit);
  return { entries, nextCursor: Buffer.from(JSON.stringify({ j: entries[entries.length - 1].id }), 'utf8').toString('base64url') };
}

function decodeJournalCursor(cursor: string): string {
  let body: { j?: unknown };
  try {
    body = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { j?: unknown };
  } catch {
    throw new InvalidRequestError('cursor is not one the journal listing returned');
  }
  if (typeof body?.j !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(body.j)) {
    throw new InvalidRequestError('cursor is not one the journal listing returned');
  }
  return body.j;
}

/** The entry with this id (when it is a UUID) or idempotency key, or null. */
export async function findJournalEntry(db: Db, idOrKey: string): Promise<JournalRow | null> {
  const isUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(idOrKey);
  const rows = await db
    .select()
    .from(journal)
    .where(isUuid ? or(eq(journal.id, idOrKey), eq(journal.idempotencyKey, idOrKey)) : eq(journal.idempotencyKey, idOrKey))
    // An id wins over a key that happens to spell another entry's id (keys are the caller's choice).
    .orderBy(sql`(${journal.id}::text = ${idOrKey}) DESC`)
    .limit(1);
  return rows[0] ?? null;
}

/** A PENDING entry as the janitor sees it: which workflow owns it, on which mount(s). */
export type StalePendingEntry = Pick<JournalRow, 'id' | 'workflowId' | 'mountId' | 'targetMountId'>;

/**
 * PENDING entries not updated since `olderThan`, oldest first, at most `limit` (the janitor's
 * candidates: their workflow may be gone).
 */
export async function stalePendingEntries(db: Db, olderThan: Date, limit: number): Promise<StalePendingEntry[]> {
  return db
    .select({ id: journal.id, workflowId: journal.workflowId, mountId: journal.mountId, targetMountId: journal.targetMountId })
    .from(journal)
    .where(and(eq(journal.status, 'PENDING'), lt(journal.updatedAt, olderThan)))
    .orderBy(asc(journal.createdAt))
    .limit(limit);
}

/** Status and claimed real locations of an entry (what execute-like activities check before acting). */
export async function entryState(
  db: Db,
  journalId: string,
): Promise<Pick<JournalRow, 'status' | 'realPath' | 'realTargetPath' | 'targetMountId'> | null> {
  const [row] = await db
    .select({ status: journal.status, realPath: journal.realPath, realTargetPath: journal.realTargetPath, targetMountId: journal.targetMountId })
    .from(journal)
    .where(eq(journal.id, journalId));
  return row ?? null;
}

/**
 * Ends a PENDING entry as ROLLED_BACK or FAILED and drops its stored tree outcome, once no attempt
 * holds the transaction's fence (`fenceLockKey`, taken for this database transaction): like
 * commit, the entry — and its path locks — end only when nothing still acts on it.
 *
 * @returns false when the entry was no longer PENDING (a retry, or someone else ended it).
 */
export async function endPendingUnderFence(
  db: Db,
  input: { journalId: string; status: 'ROLLED_BACK' | 'FAILED'; error: ErrorInfo; fenceLockKey: string },
): Promise<boolean> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${input.fenceLockKey}, 0))`);
    const ended = await tx
      .update(journal)
      .set({ status: input.status, error: { ...input.error }, updatedAt: new Date(), completedAt: new Date() })
      .where(and(eq(journal.id, input.journalId), eq(journal.status, 'PENDING')))
      .returning({ id: journal.id });
    // An offloaded tree outcome of a mutation that never committed is of no further use.
    if (ended.length > 0) await dropOutcome(tx, input.journalId);
    return ended.length > 0;
  });
}

/**
 * Inside a commit's transaction: waits for the transaction's fence (`fenceLockKey`) — so no stale
 * attempt still acts and nobody (the janitor) takes it while the commit runs — then locks and
 * returns the entry row.
 */
export async function lockEntryForCommit(tx: Tx, journalId: string, fenceLockKey: string): Promise<JournalRow | null> {
  await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${fenceLockKey}, 0))`);
  const [entry] = await tx.select().from(journal).where(eq(journal.id, journalId)).for('update');
  return entry ?? null;
}

/** Records the entry COMMITTED with its result (inside the commit's transaction). */
export async function markCommitted(tx: Tx, journalId: string, result: Record<string, unknown>, at: Date): Promise<void> {
  await tx.update(journal).set({ status: 'COMMITTED', result, updatedAt: at, completedAt: at }).where(eq(journal.id, journalId));
}
