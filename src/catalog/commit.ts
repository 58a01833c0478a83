/**
 * The catalog writes of a commit: a verified outcome applied to `nodes` with one snapshot per
 * changed row, inside the commit's one transaction (opened by activities/commit.ts and
 * activities/commit-cross-mount.ts, which also lock and end the journal entry through
 * ./journal.ts). Whole subtrees change in set-based statements (./commit-tree.ts); only the
 * executor's fresh stats — a handful of nodes, or an offloaded tree read from outcome_nodes —
 * pass through this process.
 */
import { and, eq, inArray, ne, sql } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { nodes, snapshots, type NodeRow } from '../../db/schema';
import { CommitError } from '../errors';
import type { MutationOutcome, NodeMeta } from '../executors/executor';
import { copySubtreeRows, markSubtreeDeleted, upsertFromOutcome } from './commit-tree';
import { isOffloaded, outcomePages } from './outcomes';

/** An open transaction on the catalog (a commit runs in exactly one). */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

const CHUNK = 1000;

async function recordSnapshots(tx: Tx, journalId: string, rows: NodeRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) {
    await tx.insert(snapshots).values(
      rows.slice(i, i + CHUNK).map((r) => ({
        nodeId: r.id,
        journalId,
        mountId: r.mountId,
        path: r.path,
        version: r.version,
        kind: r.kind,
        state: r.state,
        size: r.size,
        sha256: r.sha256,
        etag: r.etag,
        storageClass: r.storageClass,
        versionId: r.versionId,
        mode: r.mode,
        uid: r.uid,
        gid: r.gid,
        mtime: r.mtime,
      })),
    );
  }
}

/** Inserts or revives nodes with the given metadata (new version each) and snapshots them. */
export async function upsertNodes(tx: Tx, mountId: string, journalId: string, metas: NodeMeta[]): Promise<NodeRow[]> {
  const out: NodeRow[] = [];
  for (let i = 0; i < metas.length; i += CHUNK) {
    const rows = await tx
      .insert(nodes)
      .values(
        metas.slice(i, i + CHUNK).map((m) => ({
          mountId,
          path: m.path,
          kind: m.kind,
          size: m.size,
          sha256: m.sha256,
          etag: m.etag ?? null,
          storageClass: m.storageClass ?? null,
          versionId: m.versionId ?? null,
          mode: m.mode,
          uid: m.uid,
          gid: m.gid,
          mtime: m.mtime,
          state: 'ACTIVE' as const,
          version: 1,
          lastJournalId: journalId,
        })),
      )
      .onConflictDoUpdate({
        target: [nodes.mountId, nodes.path],
        set: {
          kind: sql`excluded.kind`,
          size: sql`excluded.size`,
          sha256: sql`excluded.sha256`,
          etag: sql`excluded.etag`,
          storageClass: sql`excluded.storage_class`,
          versionId: sql`excluded.version_id`,
          mode: sql`excluded.mode`,
          uid: sql`excluded.uid`,
          gid: sql`excluded.gid`,
          mtime: sql`excluded.mtime`,
          state: 'ACTIVE',
          version: sql`${nodes.version} + 1`,
          lastJournalId: journalId,
          updatedAt: new Date(),
        },
      })
      .returning();
    out.push(...rows);
  }
  await recordSnapshots(tx, journalId, out);
  return out;
}

/**
 * For a move, the executor's fresh stats (the target and the parents it created) merged with what
 * the catalog knew at their old paths: the fresh stat wins for everything it reports, the content
 * hash carries over when the bytes cannot have changed (same size, and only for what Filestore
 * wrote: an INCONSISTENT node's hash may be stale). The rest of the subtree moves in SQL
 * ({@link copySubtreeRows}).
 */
async function mergeMovedFresh(tx: Tx, mountId: string, moved: { from: string; to: string }, fresh: NodeMeta[]): Promise<NodeMeta[]> {
  const { from, to } = moved;
  const oldPathOf = (p: string) => (p === to || p.startsWith(`${to}/`) ? from + p.slice(to.length) : null);
  const oldPaths = fresh.map((m) => oldPathOf(m.path)).filter((p): p is string => p !== null);
  const rows = oldPaths.length
    ? await tx
        .select()
        .from(nodes)
        .where(and(eq(nodes.mountId, mountId), inArray(nodes.path, oldPaths), ne(nodes.state, 'DELETED')))
    : [];
  const byOldPath = new Map(rows.map((r) => [r.path, r]));
  return fresh.map((live) => {
    const old = oldPathOf(live.path);
    const row = old === null ? undefined : byOldPath.get(old);
    if (!row) return live;
    return {
      ...live,
      sha256: live.sha256 ?? (row.state !== 'ACTIVE' || live.size !== row.size ? null : row.sha256),
      etag: live.etag ?? row.etag,
      storageClass: live.storageClass ?? row.storageClass,
      // A version id names one object at one key: the old path's says nothing about the new one.
      versionId: live.versionId ?? null,
      mode: live.mode ?? row.mode,
      uid: live.uid ?? row.uid,
      gid: live.gid ?? row.gid,
      mtime: live.mtime ?? row.mtime ?? new Date(0).toISOString(),
    };
  });
}

/** An outcome's upserted nodes, from the payload or — offloaded — from outcome_nodes (moves only: a handful). */
async function freshOf(tx: Tx, journalId: string, outcome: MutationOutcome): Promise<NodeMeta[]> {
  if (!isOffloaded(outcome)) return outcome.upserted;
  const all: NodeMeta[] = [];
  for await (const page of outcomePages(tx, journalId)) all.push(...page);
  return all;
}

/**
 * Applies a same-mount mutation's verified outcome to `nodes` (and snapshots every changed row)
 * inside the commit's transaction: a move's subtree reappears at its target before the source is
 * marked DELETED, removed paths are marked DELETED with everything below them, and the upserted
 * nodes — from the payload or from outcome_nodes — are written with a new version each. The
 * stored outcome is left for the caller to drop.
 *
 * @returns how many node rows changed.
 * @throws CommitError when an offloaded outcome holds fewer nodes than execute reported.
 */
export async function applyOutcome(tx: Tx, mountId: string, journalId: string, outcome: MutationOutcome): Promise<number> {
  let affected = 0;
  if (outcome.moved) {
    // Before the source is marked DELETED: both read its live rows.
    const fresh = await mergeMovedFresh(tx, mountId, outcome.moved, await freshOf(tx, journalId, outcome));
    affected += await copySubtreeRows(tx, mountId, journalId, outcome.moved, fresh.map((m) => m.path));
    for (const p of outcome.removed) affected += await markSubtreeDeleted(tx, mountId, journalId, p);
    affected += (await upsertNodes(tx, mountId, journalId, fresh)).length;
  } else {
    for (const p of outcome.removed) affected += await markSubtreeDeleted(tx, mountId, journalId, p);
    if (isOffloaded(outcome)) {
      const applied = await upsertFromOutcome(tx, mountId, journalId);
      // Fewer rows than execute stored would commit a partial tree as if it were whole.
      if (applied !== outcome.upsertedRef.count) {
        throw new CommitError(`the stored outcome of journal entry ${journalId} holds ${applied} nodes, execute reported ${outcome.upsertedRef.count}`);
      }
      affected += applied;
    } else {
      affected += (await upsertNodes(tx, mountId, journalId, outcome.upserted)).length;
    }
  }
  return affected;
}
