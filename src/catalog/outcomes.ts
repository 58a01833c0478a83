/**
 * Tree outcomes out of workflow payloads. A recursive copy reports one NodeMeta per entry; at
 * 5,000 entries that is already ~2 MiB, Temporal's hard payload limit, and history would keep it
 * forever. So once an outcome reports more than a threshold of upserted nodes, execute stores
 * them in `outcome_nodes` keyed by the journal id and the payload carries only
 * `upsertedRef: { count }`. Verify reads and rewrites them page by page, commit applies them to
 * `nodes` in SQL and drops them in the same transaction; rollback drops them too.
 *
 * Every function here is idempotent (activities run at least once) and works in pages, so
 * nothing holds the whole tree in one array or one statement.
 */
import { sql } from 'drizzle-orm';
import type { Db } from '../../db/client';
import type { MutationOutcome, NodeMeta } from '../executors/executor';

/** A catalog handle or an open transaction on it. */
export type DbOrTx = Db | Parameters<Parameters<Db['transaction']>[0]>[0];

/**
 * Outcomes reporting more upserted nodes than this go to `outcome_nodes`. 256 nodes of 160-byte
 * paths are ~100 KiB of payload: small against the 2 MiB limit, large enough that writes,
 * mkdirs, moves and small copies never touch the table. @defaultValue 256
 */
export const OUTCOME_OFFLOAD_THRESHOLD = 256;

/** Rows per INSERT / UPDATE statement, sent as one jsonb array parameter (~1.5 MiB at 160-byte paths). */
const WRITE_CHUNK = 5000;

/** Rows per page when reading an offloaded outcome back. */
export const OUTCOME_PAGE_SIZE = 1000;

/** True when `outcome` keeps its upserted nodes in `outcome_nodes` rather than in the payload. */
export function isOffloaded(outcome: MutationOutcome): outcome is MutationOutcome & { upsertedRef: { count: number } } {
  return outcome.upsertedRef !== undefined;
}

/** Adds (or replaces, per path) node metadata in a transaction's stored outcome, in chunks. */
export async function writeMetas(db: DbOrTx, journalId: string, metas: NodeMeta[]): Promise<void> {
  for (let i = 0; i < metas.length; i += WRITE_CHUNK) {
    const chunk = JSON.stringify(metas.slice(i, i + WRITE_CHUNK));
    await db.execute(sql`
      INSERT INTO outcome_nodes (journal_id, path, meta)
      SELECT ${journalId}::uuid, e->>'path', e FROM jsonb_array_elements(${chunk}::jsonb) AS e
      ON CONFLICT (journal_id, path) DO UPDATE SET meta = excluded.meta`);
  }
}

/**
 * Moves a large outcome's upserted nodes into `outcome_nodes` and returns the payload-sized
 * outcome: `upserted: []` plus `upsertedRef: { count }`. Outcomes at or under `threshold`, and
 * outcomes already offloaded, are returned unchanged.
 *
 * Idempotent: a second run (a retried execute) replaces the rows of the first in one
 * transaction, so no stale row of an earlier attempt survives.
 *
 * @param journalId - the transaction's journal id (the executor's `txId`).
 * @param threshold - @defaultValue {@link OUTCOME_OFFLOAD_THRESHOLD}
 */
export async function offloadOutcome(
  db: Db,
  journalId: string,
  outcome: MutationOutcome,
  threshold: number = OUTCOME_OFFLOAD_THRESHOLD,
): Promise<MutationOutcome> {
  if (isOffloaded(outcome) || outcome.upserted.length <= threshold) return outcome;
  await db.transaction(async (tx) => {
    await dropOutcome(tx, journalId);
    await writeMetas(tx, journalId, outcome.upserted);
  });
  return { ...outcome, upserted: [], upsertedRef: { count: outcome.upserted.length } };
}

/**
 * The offloaded nodes of a transaction, `pageSize` at a time in path order (keyset paging on the
 * (journal_id, path) unique index, so each page costs the same however deep into the tree).
 */
export async function* outcomePages(db: DbOrTx, journalId: string, pageSize: number = OUTCOME_PAGE_SIZE): AsyncGenerator<NodeMeta[]> {
  let after: string | null = null;
  for (;;) {
    const res: { rows: Array<{ path: string; meta: NodeMeta }> } = await db.execute<{ path: string; meta: NodeMeta }>(sql`
      SELECT path, meta FROM outcome_nodes
      WHERE journal_id = ${journalId}::uuid ${after === null ? sql`` : sql`AND path > ${after}`}
      ORDER BY path LIMIT ${pageSize}`);
    if (res.rows.length === 0) return;
    yield res.rows.map((r) => r.meta);
    if (res.rows.length < pageSize) return;
    after = res.rows[res.rows.length - 1].path;
  }
}

/** Replaces the stored metadata of offloaded nodes (verify's captured metadata), matched by path. */
export async function updateOutcomeMetas(db: DbOrTx, journalId: string, metas: NodeMeta[]): Promise<void> {
  for (let i = 0; i < metas.length; i += WRITE_CHUNK) {
    const chunk = JSON.stringify(metas.slice(i, i + WRITE_CHUNK));
    await db.execute(sql`
      UPDATE outcome_nodes AS o SET meta = e
      FROM jsonb_array_elements(${chunk}::jsonb) AS e
      WHERE o.journal_id = ${journalId}::uuid AND o.path = e->>'path'`);
  }
}

/**
 * Deletes a transaction's offloaded outcome: in the commit transaction once `nodes` hold it, or
 * when the transaction is rolled back. Idempotent; returns how many rows went.
 */
export async function dropOutcome(db: DbOrTx, journalId: string): Promise<number> {
  const res = await db.execute(sql`DELETE FROM outcome_nodes WHERE journal_id = ${journalId}::uuid`);
  return res.rowCount ?? 0;
}
