/**
 * Commit: ONE transaction writes nodes, their snapshots and the journal entry COMMITTED. Either
 * the catalog shows the whole mutation or none of it. A tree's outcome is read from
 * outcome_nodes (see src/catalog/outcomes.ts) and whole subtrees change in set-based statements
 * (commit-tree.ts), so a 100,000-node copy, move or delete never passes through this process.
 */
import { and, eq, inArray, ne, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { journal, nodes, snapshots, type NodeRow } from '../db/schema';
import { dropOutcome, isOffloaded, outcomePages } from '../src/catalog/outcomes';
import { CommitError } from '../src/errors';
import type { MutationOutcome, NodeMeta } from '../src/executors/executor';
import { mutationOutcomes } from '../src/metrics';
import { fenceKey } from './tx-fence';
import { primaryPath, type MutationRequest, type MutationResult, type NodeSummary } from '../src/mutations';
import { copySubtreeRows, markSubtreeDeleted, upsertFromOutcome } from './commit-tree';

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

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
        mode: r.mode,
        uid: r.uid,
        gid: r.gid,
        mtime: r.mtime,
      })),
    );
  }
}

/** Inserts or revives nodes with the given metadata (new version each) and snapshots them. */
async function upsertNodes(tx: Tx, mountId: string, journalId: string, metas: NodeMeta[]): Promise<NodeRow[]> {
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
      storageClass: row.storageClass,
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

function summarize(row: NodeRow | undefined): NodeSummary | null {
  if (!row || row.state === 'DELETED') return null;
  return { path: row.path, kind: row.kind, size: row.size, sha256: row.sha256, mode: row.mode, mtime: row.mtime, version: row.version };
}

export function createCommitActivities(deps: { db: Db }) {
  /** Applies a verified outcome to the catalog and commits the journal entry, all in one transaction. */
  async function commitMutation(input: { journalId: string; request: MutationRequest; outcome: MutationOutcome }): Promise<MutationResult> {
    const { journalId, request: req, outcome } = input;
    const result = await deps.db.transaction(async (tx) => {
      // The transaction's fence, for this database transaction: commit waits while any attempt
      // (a stale execute, the janitor's undo) still holds it, and nobody takes it while the commit
      // runs — so the janitor never undoes a mutation whose commit is in flight.
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${fenceKey(journalId)}, 0))`);
      const [entry] = await tx.select().from(journal).where(eq(journal.id, journalId)).for('update');
      if (!entry) throw new CommitError(`journal entry ${journalId} does not exist`);
      // A retried commit whose first attempt landed: same answer, no second write.
      if (entry.status === 'COMMITTED') return { result: entry.result as unknown as MutationResult, fresh: false };
      if (entry.status !== 'PENDING') throw new CommitError(`journal entry ${journalId} is ${entry.status}, not PENDING`);

      let affected = 0;
      if (outcome.moved) {
        // Before the source is marked DELETED: both read its live rows.
        const fresh = await mergeMovedFresh(tx, req.mountId, outcome.moved, await freshOf(tx, journalId, outcome));
        affected += await copySubtreeRows(tx, req.mountId, journalId, outcome.moved, fresh.map((m) => m.path));
        for (const p of outcome.removed) affected += await markSubtreeDeleted(tx, req.mountId, journalId, p);
        affected += (await upsertNodes(tx, req.mountId, journalId, fresh)).length;
      } else {
        for (const p of outcome.removed) affected += await markSubtreeDeleted(tx, req.mountId, journalId, p);
        if (isOffloaded(outcome)) {
          const applied = await upsertFromOutcome(tx, req.mountId, journalId);
          // Fewer rows than execute stored would commit a partial tree as if it were whole.
          if (applied !== outcome.upsertedRef.count) {
            throw new CommitError(`the stored outcome of journal entry ${journalId} holds ${applied} nodes, execute reported ${outcome.upsertedRef.count}`);
          }
          affected += applied;
        } else {
          affected += (await upsertNodes(tx, req.mountId, journalId, outcome.upserted)).length;
        }
      }
      // Applied: the stored outcome has served its purpose, and goes in the same transaction.
      await dropOutcome(tx, journalId);

      // Where the node really is: a request through an in-mount symlinked directory was executed
      // (and its nodes recorded) at the real location the mount's host resolved.
      const target = (req.op === 'move' || req.op === 'copy' ? entry.realTargetPath : entry.realPath) ?? primaryPath(req);
      const [primary] =
        req.op === 'delete' ? [] : await tx.select().from(nodes).where(and(eq(nodes.mountId, req.mountId), eq(nodes.path, target)));
      const committedAt = new Date();
      const result: MutationResult = {
        status: 'COMMITTED',
        journalId,
        workflowId: entry.workflowId,
        op: req.op,
        mountId: req.mountId,
        path: req.path,
        targetPath: req.op === 'move' || req.op === 'copy' ? req.targetPath : null,
        node: req.op === 'delete' ? null : summarize(primary),
        nodesAffected: affected,
        bytesWritten: outcome.bytesWritten,
        committedAt: committedAt.toISOString(),
      };
      await tx
        .update(journal)
        .set({ status: 'COMMITTED', result: { ...result }, updatedAt: committedAt, completedAt: committedAt })
        .where(eq(journal.id, journalId));
      return { result, fresh: true };
    });
    if (result.fresh) mutationOutcomes.inc({ mount: req.mountId, op: req.op, outcome: 'committed' });
    return result.result;
  }

  return { commitMutation };
}
