/**
 * Reconcile: the catalog accepts what the backend shows now for a path (or a subtree). Capture runs
 * on the mount's queue (it reads the backend: stat, list, and the content of files whose hash the
 * backend does not store), never changes the backend, and stores what it saw in `outcome_nodes`;
 * commit applies that in one catalog transaction (src/catalog/reconcile.ts). Nothing to undo.
 */
import { createHash } from 'node:crypto';
import type { Db } from '../db/client';
import { entryState } from '../src/catalog/journal';
import { claimRealPaths } from '../src/catalog/locks';
import { nodeAt } from '../src/catalog/nodes';
import { applyReconcile, capturedCount, catalogKnows, catalogNow, clearCaptured, storeCaptured } from '../src/catalog/reconcile';
import { CommitError, InvalidRequestError, NotFoundError, TreeTooLargeError, VerificationError } from '../src/errors';
import type { Executor, NodeKind, NodeMeta } from '../src/executors/executor';
import type { ExecutorRegistry } from '../src/executor-registry';
import type { MutationRequest, MutationResult, ReconcileRequest } from '../src/mutations';
import { ancestorsOf, joinPath } from '../src/paths';
import { commitEntry, summarize } from './commit';
import { progressHeartbeat } from './heartbeat-interceptor';
import { fenced, type FencePool } from './tx-fence';
import { mapBounded } from './verify';

export interface ReconcileDeps {
  db: Db;
  executors: ExecutorRegistry;
  fences: FencePool;
  /** FILESTORE_MAX_TREE_ENTRIES: most nodes one reconcile may capture. */
  maxTreeEntries: number;
}

/** What capture saw, as the payload carries it (the nodes themselves wait in outcome_nodes). */
export interface ReconcileCapture {
  /** The real path reconciled (where the catalog records it). */
  path: string;
  /** What the backend has there now; null when nothing (or only a symlink leading out of the mount). */
  kind: NodeKind | null;
  /** Whether everything below `path` is in scope (recursive, or a path that is gone or a file). */
  subtree: boolean;
  /** Rows stored in outcome_nodes. */
  count: number;
  /** Ancestors of `path` as the backend shows them, recorded where the catalog has no live row. */
  ancestors: NodeMeta[];
  /**
   * The catalog's clock when capture began (Postgres text form, microseconds kept). Drift detected
   * after it is newer than what was captured: the commit leaves those paths INCONSISTENT and their
   * events open instead of recording a stale view over them.
   */
  since: string;
}

/** Listed entries captured (stat, and hash where needed) per batch; also the outcome_nodes write size. */
const BATCH = 256;
/** Files hashed at once within a batch. */
const HASH_CONCURRENCY = 8;
/** Reads of one file that may find it changing under them before the attempt gives up (retryable). */
const STABLE_READS = 3;

/**
 * Metadata of `p` as the backend shows it, or null when nothing is there — or only a symlink
 * leading out of the mount: that is not part of the mount, and is never followed (the drift
 * processor sees it the same way).
 */
async function statInside(executor: Executor, p: string): Promise<NodeMeta | null> {
  try {
    return await executor.stat(p);
  } catch (err) {
    if ((err as { code?: string }).code === 'SYMLINK_ESCAPE') return null;
    throw err;
  }
}

async function hashContent(executor: Executor, p: string, onBytes: (n: number) => void): Promise<{ sha256: string; bytes: number }> {
  const stream = await executor.openRead(p);
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
    onBytes((chunk as Buffer).length);
  }
  return { sha256: hash.digest('hex'), bytes };
}

/**
 * The node at `p` with its content hash: the hash the backend stores beside the content where it
 * has one (S3: x-amz-meta-sha256), else computed by reading it through openRead (which never leaves
 * the mount). The file is stat'ed again after the read: one that changed meanwhile is read again,
 * and one that keeps changing fails the attempt (retryable). Null when it is gone.
 */
async function captureNode(executor: Executor, p: string, onBytes: (n: number) => void): Promise<NodeMeta | null> {
  for (let i = 0; i < STABLE_READS; i++) {
    const before = await statInside(executor, p);
    if (!before || before.kind !== 'file' || before.sha256) return before;
    let hashed: { sha256: string; bytes: number };
    try {
      hashed = await hashContent(executor, p, onBytes);
    } catch (err) {
      const code = (err as { code?: string }).code;
      // Swapped (for a symlink leading out, a directory) or removed since the stat: look again.
      if (code === 'SYMLINK_ESCAPE' || code === 'NOT_FOUND' || code === 'IS_A_DIRECTORY' || code === 'PATH_CHANGED') continue;
      throw err;
    }
    const after = await statInside(executor, p);
    if (after && after.kind === 'file' && after.identity === before.identity && after.size === before.size && after.mtime === before.mtime && hashed.bytes === before.size) {
      return { ...before, sha256: hashed.sha256 };
    }
  }
  throw new VerificationError(`${JSON.stringify(p)} kept changing while reconcile read it`, { path: p });
}

/**
 * Where `p` really is (symlinked parent directories inside the mount resolved). A final component
 * that is a symlink leading out of the mount is kept as spelled — reconcile records it as gone
 * instead of refusing it; a parent leading out is still SYMLINK_ESCAPE.
 */
async function realPathOf(executor: Executor, p: string): Promise<string> {
  if (!executor.resolve) return p;
  try {
    return (await executor.resolve([p]))[0];
  } catch (err) {
    if ((err as { code?: string }).code !== 'SYMLINK_ESCAPE') throw err;
    const cut = p.lastIndexOf('/');
    if (cut < 0) return p;
    return joinPath((await executor.resolve([p.slice(0, cut)]))[0], p.slice(cut + 1));
  }
}

/**
 * The request at its real location, locked as such (as execute claims its paths): the first
 * attempt resolves and claims it in the catalog, so two spellings of one place conflict; later
 * attempts use what was claimed. An entry no longer PENDING is never acted on.
 */
async function claimedReconcile(db: Db, executor: Executor, journalId: string, req: ReconcileRequest): Promise<ReconcileRequest> {
  const entry = await entryState(db, journalId);
  if (entry?.status !== 'PENDING') {
    throw new InvalidRequestError(`journal entry ${journalId} is ${entry?.status ?? 'missing'}, not PENDING; it will not be reconciled`, { journalId });
  }
  let realPath = entry.realPath;
  if (realPath === null) {
    realPath = await realPathOf(executor, req.path);
    await claimRealPaths(db, { journalId, mountId: req.mountId, realPath, realTargetPath: null, waitForLock: req.waitForLock });
  }
  return { ...req, path: realPath };
}

export function createReconcileActivities(deps: ReconcileDeps) {
  /**
   * Looks at the backend for a reconcile and stores what it shows in outcome_nodes (a retried
   * attempt starts over). A path the backend does not have is captured as gone — NOT_FOUND when
   * the catalog does not know it either. A recursive capture of more than FILESTORE_MAX_TREE_ENTRIES
   * nodes is refused with TREE_TOO_LARGE.
   */
  async function captureReconcile(input: { journalId: string; request: ReconcileRequest }): Promise<ReconcileCapture> {
    const { journalId } = input;
    if (input.request.op !== 'reconcile') throw new InvalidRequestError(`captureReconcile got a ${JSON.stringify((input.request as MutationRequest).op)} request`);
    const executor = await deps.executors.get(input.request.mountId);
    return fenced(deps.fences, journalId, async (fence) => {
      // Locked at its real location, like every mutation: two spellings of one place conflict.
      const req = await claimedReconcile(deps.db, executor, journalId, input.request);
      const { onProgress } = progressHeartbeat();
      let bytes = 0;
      const onBytes = (n: number) => onProgress((bytes += n));
      await clearCaptured(deps.db, journalId);
      const since = await catalogNow(deps.db);

      const root = await captureNode(executor, req.path, onBytes);
      if (!root) {
        if (!(await catalogKnows(deps.db, req.mountId, req.path))) {
          throw new NotFoundError(`${req.mountId}:${JSON.stringify(req.path)}`, { mountId: req.mountId, path: req.path });
        }
        return { path: req.path, kind: null, subtree: true, count: 0, ancestors: [], since };
      }
      const ancestors: NodeMeta[] = [];
      for (const a of ancestorsOf(req.path)) {
        const meta = await statInside(executor, a);
        if (meta?.kind === 'directory') ancestors.push(meta);
      }
      // The mount root has no node of its own: only what is below it is recorded.
      const isRoot = req.path === '';
      if (!isRoot) await storeCaptured(deps.db, journalId, [root]);
      let count = isRoot ? 0 : 1;
      if ((req.recursive || isRoot) && root.kind === 'directory') {
        let batch: string[] = [];
        const flush = async () => {
          await fence.check();
          const captured = await mapBounded(batch, HASH_CONCURRENCY, (p) => captureNode(executor, p, onBytes));
          // Gone since it was listed: absent from the capture, so the commit marks it DELETED.
          const present = captured.filter((m): m is NodeMeta => m !== null);
          await storeCaptured(deps.db, journalId, present);
          count += present.length;
          batch = [];
        };
        let listed = 1;
        for await (const m of executor.list(req.path, { recursive: true })) {
          if (++listed > deps.maxTreeEntries) throw new TreeTooLargeError(req.path, deps.maxTreeEntries);
          batch.push(m.path);
          if (batch.length >= BATCH) await flush();
        }
        if (batch.length > 0) await flush();
      }
      return { path: req.path, kind: root.kind, subtree: req.recursive === true || root.kind === 'file', count, ancestors, since };
    });
  }

  /**
   * Applies a capture to the catalog and commits the journal entry, in one transaction
   * (commitEntry): changed and new nodes get a new version and a snapshot, gone ones are DELETED,
   * open drift events in scope are resolved, INCONSISTENT is cleared.
   */
  async function commitReconcile(input: { journalId: string; request: ReconcileRequest; capture: ReconcileCapture }): Promise<MutationResult> {
    const { journalId, request: req, capture } = input;
    return commitEntry(deps.db, journalId, req, async (tx) => {
      // Rows lost between capture and here (a rollback's cleanup racing a stale attempt) would
      // otherwise mark the missing nodes DELETED.
      const stored = await capturedCount(tx, journalId);
      if (stored !== capture.count) throw new CommitError(`the stored capture of reconcile ${journalId} holds ${stored} nodes, capture reported ${capture.count}`);
      const affected = await applyReconcile(tx, journalId, { mountId: req.mountId, path: capture.path, subtree: capture.subtree }, capture.ancestors, capture.since);
      const node = await nodeAt(tx, req.mountId, capture.path);
      return { op: 'reconcile', mountId: req.mountId, path: req.path, targetPath: null, node: summarize(node ?? undefined), nodesAffected: affected, bytesWritten: 0 };
    });
  }

  return { captureReconcile, commitReconcile };
}
