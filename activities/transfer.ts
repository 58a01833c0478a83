/**
 * Cross-mount copy and move: the bytes leave the source executor as a stream (`openRead`) and
 * enter the target executor through its staged, undoable `write`, under the transaction's fence.
 * A move then deletes the source — staged and undoable too, on the source mount, under the same
 * journal id (plans are kept per mount, see src/catalog/plans.ts) — only after the workflow has
 * verified the target. Undo and finalize of each side are the ordinary per-mount activities
 * (`compensateMutation` / `finalizeMutation` with that side's mount id).
 *
 * Placement (see activities/journal.ts `TransferPlacement`): prepare and transfer run where a
 * disk is — the source's host when the source is local (which must then reach a local target too),
 * else the target's; the source delete runs on the source's queue.
 */
import { Readable } from 'node:stream';
import { Context } from '@temporalio/activity';
import type { Db } from '../db/client';
import { entryState } from '../src/catalog/journal';
import { claimRealPaths } from '../src/catalog/locks';
import { getMount } from '../src/catalog/mounts';
import { catalogedContent } from '../src/catalog/nodes';
import {
  FilestoreError,
  InvalidRequestError,
  MountNotReachableError,
  NotFoundError,
  SourceChangedError,
  UnsupportedError,
} from '../src/errors';
import type { Executor, MutationOutcome, NodeMeta } from '../src/executors/executor';
import type { ExecutorRegistry } from '../src/executor-registry';
import { crossMountTarget, type MutationRequest } from '../src/mutations';
import { progressHeartbeat } from './heartbeat-interceptor';
import { fenced, type FencePool } from './tx-fence';

export interface TransferDeps {
  db: Db;
  executors: ExecutorRegistry;
  fences: FencePool;
  maxFileBytes: number;
}

type TransferRequest = Extract<MutationRequest, { op: 'copy' | 'move' }>;

/**
 * What identifies the source file's state without reading it: a file whose size, modification
 * time and backend identity (local `dev:ino`, S3 ETag) are unchanged still holds the bytes that
 * were copied.
 */
export interface SourceFingerprint {
  size: number;
  mtime: string;
  identity: string | null;
}

/** What the transfer did: the target side's outcome, and the source as it was copied. */
export interface TransferResult {
  outcome: MutationOutcome;
  source: SourceFingerprint;
}

function fingerprintOf(meta: NodeMeta): SourceFingerprint {
  return { size: meta.size, mtime: meta.mtime, identity: meta.identity };
}

function sameFingerprint(a: SourceFingerprint, b: SourceFingerprint): boolean {
  return a.size === b.size && a.mtime === b.mtime && a.identity === b.identity;
}

function asTransfer(req: MutationRequest): TransferRequest & { targetMountId: string } {
  const targetMountId = crossMountTarget(req);
  if (targetMountId === null) throw new InvalidRequestError(`${req.op} ${req.mountId}:${req.path} is not a cross-mount copy or move`);
  return { ...(req as TransferRequest), targetMountId };
}



export function createTransferActivities(deps: TransferDeps) {
  const { db } = deps;

  /**
   * The executor of `mountId` as seen from this host. The mount whose queue this activity runs on
   * (`home`) is this host's by construction, so its unavailability stays the retryable
   * MOUNT_UNAVAILABLE (its disk may come back). The other side of a transfer that is a local
   * mount must be on this host too; if it is not, no retry will move it here: the permanent
   * MOUNT_NOT_REACHABLE, naming the problem.
   */
  async function reach(mountId: string, home: string): Promise<Executor> {
    try {
      return await deps.executors.get(mountId);
    } catch (err) {
      if (mountId === home || !(err instanceof FilestoreError) || err.code !== 'MOUNT_UNAVAILABLE') throw err;
      throw new MountNotReachableError(
        mountId,
        `a cross-mount transfer between two local mounts runs on the source's host, and mount ${JSON.stringify(mountId)} is not on it (${err.message}); both local mounts must be on one host`,
        { home },
      );
    }
  }

  /** Which side's host this transfer runs on: the source when it is local, else the target. */
  async function homeOf(req: TransferRequest & { targetMountId: string }): Promise<string> {
    return (await getMount(db, req.mountId)).kind === 'local' ? req.mountId : req.targetMountId;
  }

  /** The entry must still be PENDING (read under the fence): an ended entry holds no lock and must never be applied. */
  async function pendingEntry(journalId: string) {
    const entry = await entryState(db, journalId);
    if (entry?.status !== 'PENDING') {
      throw new InvalidRequestError(`journal entry ${journalId} is ${entry?.status ?? 'missing'}, not PENDING; it will not be executed`, { journalId });
    }
    return entry;
  }

  /** The source file's metadata, refused typed when it is missing or not a file (directories are not transferred yet). */
  async function sourceFile(source: Executor, req: TransferRequest, path: string): Promise<NodeMeta> {
    const meta = await source.stat(path);
    if (!meta) throw new NotFoundError(`${req.op} source ${req.mountId}:${path}`, { mountId: req.mountId, path });
    if (meta.kind !== 'file') {
      throw new UnsupportedError(
        `${req.op} of a directory between mounts (${req.mountId}:${path}) is not supported yet; ${req.op} its files one by one`,
        { mountId: req.mountId, path },
      );
    }
    return meta;
  }

  /**
   * Before any byte moves: both mounts are reachable from this host, the source is a file, and
   * both paths are resolved to their real locations and claimed on their own mounts (so two
   * spellings of one place conflict, as for same-mount mutations). Writes nothing on a backend:
   * a failure here needs no undo.
   */
  async function prepareTransfer(input: { journalId: string; request: MutationRequest }): Promise<{ path: string; targetPath: string }> {
    const req = asTransfer(input.request);
    const home = await homeOf(req);
    const [source, target] = [await reach(req.mountId, home), await reach(req.targetMountId, home)];
    return fenced(deps.fences, input.journalId, async () => {
      const entry = await pendingEntry(input.journalId);
      let realPath = entry.realPath;
      let realTargetPath = entry.realTargetPath;
      if (realPath === null || realTargetPath === null) {
        [realPath] = source.resolve ? await source.resolve([req.path]) : [req.path];
        [realTargetPath] = target.resolve ? await target.resolve([req.targetPath]) : [req.targetPath];
        await claimRealPaths(db, {
          journalId: input.journalId,
          mountId: req.mountId,
          realPath,
          targetMountId: req.targetMountId,
          realTargetPath,
          waitForLock: req.waitForLock,
        });
      }
      await sourceFile(source, req, realPath);
      return { path: realPath, targetPath: realTargetPath };
    });
  }

  /**
   * Streams the source file into the target executor's staged write under the journal id. The
   * write is idempotent per transaction: a retry after a crash resumes or answers with the stored
   * outcome. Where the catalog records the source as written by Filestore (ACTIVE), its sha256 is
   * the write's `expectedSha256`, so bytes that differ from what Filestore recorded never commit.
   *
   * The source must not change while it is read (same size, mtime and identity before and after;
   * else SOURCE_CHANGED and the staged target is undone). When the write answered from an earlier
   * attempt without reading this stream, the source is hashed instead and must match what was
   * written: the fingerprint returned — which a move's source delete checks — always describes the
   * bytes now at the target.
   */
  async function transferToTarget(input: { journalId: string; request: MutationRequest }): Promise<TransferResult> {
    const req = asTransfer(input.request);
    const home = await homeOf(req);
    const [source, target] = [await reach(req.mountId, home), await reach(req.targetMountId, home)];
    return fenced(deps.fences, input.journalId, async (fence) => {
      const entry = await pendingEntry(input.journalId);
      if (entry.realPath === null || entry.realTargetPath === null) {
        throw new InvalidRequestError(`journal entry ${input.journalId} has no claimed paths; prepareTransfer runs first`, { journalId: input.journalId });
      }
      const [path, targetPath] = [entry.realPath, entry.realTargetPath];
      const signal = Context.current().cancellationSignal;
      const before = await sourceFile(source, req, path);
      const known = await catalogedContent(db, req.mountId, path);
      if (known && known.size !== before.size) {
        throw new SourceChangedError(
          `${req.mountId}:${path} has ${before.size} bytes, the catalog recorded ${known.size}: it changed behind Filestore's back; nothing was ${req.op === 'move' ? 'moved' : 'copied'}`,
          { mountId: req.mountId, path },
        );
      }
      const targetMount = await getMount(db, req.targetMountId);
      const keepsMode = target.capabilities().posixMode && before.mode !== null;

      let streamed = 0;
      let ended = false;
      const raw = await source.openRead(path, { signal });
      // Counts what the write consumed (without switching the source into flowing mode): a write
      // that answers from an earlier attempt's plan reads nothing. Destroying it closes `raw`.
      const stream = Readable.from(
        (async function* () {
          for await (const chunk of raw) {
            streamed += (chunk as Buffer).length;
            yield chunk as Buffer;
          }
          ended = true;
        })(),
        { objectMode: false },
      );
      let outcome: MutationOutcome;
      try {
        outcome = await target.write(
          targetPath,
          { kind: 'stream', stream },
          {
            txId: input.journalId,
            overwrite: req.overwrite,
            createParents: req.createParents,
            // Permission bits travel with the file, as `cp` gives a new file its source's; never setuid/setgid/sticky.
            mode: keepsMode ? before.mode! & 0o777 : undefined,
            allowSpecialModes: targetMount.options.allowSpecialModes === true,
            expectedSha256: known?.sha256,
            maxBytes: deps.maxFileBytes,
            guard: fence.check,
            signal,
            onProgress: progressHeartbeat().onProgress,
            claimedPaths: true,
          },
        );
      } finally {
        // An answer from an earlier attempt's plan leaves the stream unread: close the file / connection.
        stream.destroy();
        raw.destroy();
      }

      const file = outcome.upserted.find((m) => m.path === targetPath && m.kind === 'file');
      if (!file) throw new InvalidRequestError(`the write to ${req.targetMountId}:${targetPath} reported no file`, { journalId: input.journalId });
      const after = await sourceFile(source, req, path);
      const changed = () =>
        new SourceChangedError(`${req.mountId}:${path} changed while it was ${req.op === 'move' ? 'moved' : 'copied'}; the target is rolled back`, {
          mountId: req.mountId,
          path,
        });
      if (ended && streamed === file.size) {
        if (!sameFingerprint(fingerprintOf(before), fingerprintOf(after))) throw changed();
      } else {
        // Written by an earlier attempt: prove the source still holds those bytes.
        const sum = await source.checksum(path);
        const again = await sourceFile(source, req, path);
        if (sum !== file.sha256 || !sameFingerprint(fingerprintOf(after), fingerprintOf(again))) throw changed();
      }
      return { outcome, source: fingerprintOf(after) };
    });
  }

  /**
   * A move's second step, after the target was verified: deletes the source on the source mount,
   * staged and undoable under the same journal id (the source mount's own plan). Refused with
   * SOURCE_CHANGED — nothing deleted — when the source is no longer the file that was copied
   * (`source`, from {@link transferToTarget}). A retry after the delete applied answers with the
   * stored outcome.
   */
  async function deleteTransferSource(input: { journalId: string; request: MutationRequest; source: SourceFingerprint }): Promise<MutationOutcome> {
    const req = asTransfer(input.request);
    if (req.op !== 'move') throw new InvalidRequestError(`only a move deletes its source, not a ${req.op}`);
    const executor = await deps.executors.get(req.mountId);
    return fenced(deps.fences, input.journalId, async (fence) => {
      const entry = await pendingEntry(input.journalId);
      const path = entry.realPath ?? req.path;
      const live = await executor.stat(path);
      // Gone: either an earlier attempt's delete applied (the call below answers from its plan) or
      // someone removed it (the call below fails NOT_FOUND and the move is rolled back).
      if (live && (live.kind !== 'file' || !sameFingerprint(fingerprintOf(live), input.source))) {
        throw new SourceChangedError(`${req.mountId}:${path} changed after it was copied to ${req.targetMountId}; it is kept and the move is rolled back`, {
          mountId: req.mountId,
          path,
        });
      }
      return executor.delete(path, { txId: input.journalId, guard: fence.check, signal: Context.current().cancellationSignal, claimedPaths: true });
    });
  }

  return { prepareTransfer, transferToTarget, deleteTransferSource };
}
