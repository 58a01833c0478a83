/**
 * Commit: ONE transaction writes nodes, their snapshots and the journal entry COMMITTED. Either
 * the catalog shows the whole mutation or none of it.
 */
import { and, eq, like, ne, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { journal, nodes, snapshots, type NodeRow } from '../db/schema';
import { belowPattern } from '../src/catalog/subtree';
import { CommitError } from '../src/errors';
import type { MutationOutcome, NodeMeta } from '../src/executors/executor';
import { mutationOutcomes } from '../src/metrics';
import { primaryPath, type MutationRequest, type MutationResult, type NodeSummary } from '../src/mutations';

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

const CHUNK = 1000;

function subtreeOf(mountId: string, p: string) {
  return and(eq(nodes.mountId, mountId), or(eq(nodes.path, p), like(nodes.path, belowPattern(p))));
}

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

/** Marks `p` and everything below it DELETED (new version each) and snapshots them. */
async function markDeleted(tx: Tx, mountId: string, journalId: string, p: string): Promise<NodeRow[]> {
  const rows = await tx
    .update(nodes)
    .set({ state: 'DELETED', version: sql`${nodes.version} + 1`, lastJournalId: journalId, updatedAt: new Date() })
    .where(and(subtreeOf(mountId, p), ne(nodes.state, 'DELETED')))
    .returning();
  await recordSnapshots(tx, journalId, rows);
  return rows;
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
 * For a move, the catalogued subtree at `from` reappears at `to` with its content hashes; the
 * executor's fresh stat of the moved paths wins for everything it reports.
 */
async function movedMetas(tx: Tx, mountId: string, outcome: MutationOutcome): Promise<NodeMeta[]> {
  const { from, to } = outcome.moved!;
  const fresh = new Map(outcome.upserted.map((m) => [m.path, m]));
  const catalogued = await tx
    .select()
    .from(nodes)
    .where(and(subtreeOf(mountId, from), ne(nodes.state, 'DELETED')));
  for (const row of catalogued) {
    const path = to + row.path.slice(from.length);
    const live = fresh.get(path);
    fresh.set(path, {
      path,
      kind: live?.kind ?? row.kind,
      size: live?.size ?? row.size,
      // rename keeps the bytes: the catalogued hash stays true when the size did not change — but
      // only for what Filestore wrote (ACTIVE); an INCONSISTENT node's hash may be stale.
      sha256: live?.sha256 ?? (row.state !== 'ACTIVE' || (live && live.size !== row.size) ? null : row.sha256),
      etag: live?.etag ?? row.etag,
      storageClass: row.storageClass,
      mode: live?.mode ?? row.mode,
      uid: live?.uid ?? row.uid,
      gid: live?.gid ?? row.gid,
      mtime: live?.mtime ?? row.mtime ?? new Date(0).toISOString(),
      identity: live?.identity ?? null,
    });
  }
  return [...fresh.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
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
      const [entry] = await tx.select().from(journal).where(eq(journal.id, journalId)).for('update');
      if (!entry) throw new CommitError(`journal entry ${journalId} does not exist`);
      // A retried commit whose first attempt landed: same answer, no second write.
      if (entry.status === 'COMMITTED') return { result: entry.result as unknown as MutationResult, fresh: false };
      if (entry.status !== 'PENDING') throw new CommitError(`journal entry ${journalId} is ${entry.status}, not PENDING`);

      const upserts = outcome.moved ? await movedMetas(tx, req.mountId, outcome) : outcome.upserted;
      let affected = 0;
      for (const p of outcome.removed) affected += (await markDeleted(tx, req.mountId, journalId, p)).length;
      const rows = await upsertNodes(tx, req.mountId, journalId, upserts);
      affected += rows.length;

      const target = primaryPath(req);
      let primary = rows.find((r) => r.path === target);
      if (!primary && req.op !== 'delete') {
        [primary] = await tx.select().from(nodes).where(and(eq(nodes.mountId, req.mountId), eq(nodes.path, target)));
      }
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
