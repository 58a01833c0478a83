/**
 * Activities that touch the backend. For local mounts they run on the mount's own task queue,
 * polled only by workers on the host that has the disk.
 */
import { Context } from '@temporalio/activity';
import type { Db } from '../db/client';
import { FilestoreError, InvalidRequestError, SourceNotAllowedError } from '../src/errors';
import type { UploadObjects } from '../src/executors/s3/s3-upload-objects';
import { finalizeIncomplete } from '../src/metrics';
import type { Executor, MutationOutcome, WriteSource } from '../src/executors/executor';
import type { ExecutorRegistry } from '../src/executor-registry';
import type { MutationRequest } from '../src/mutations';
import { entryState } from '../src/catalog/journal';
import { knownContent } from '../src/catalog/known-content';
import { getMount } from '../src/catalog/mounts';
import { claimRealPaths } from '../src/catalog/locks';
import { offloadOutcome } from '../src/catalog/outcomes';
import { progressHeartbeat } from './heartbeat-interceptor';
import { fenced, type FencePool, type TxFence } from './tx-fence';

export interface ExecuteDeps {
  db: Db;
  executors: ExecutorRegistry;
  /** One live attempt per transaction (see tx-fence.ts). */
  fences: FencePool;
  maxFileBytes: number;
  maxTreeEntries: number;
  /** FILESTORE_SOURCE_ROOTS: where a write's file source may lie (empty refuses file sources). */
  sourceRoots: readonly string[];
  /** The S3 upload area (FILESTORE_UPLOAD_S3) `upload` sources are read from; null refuses them. */
  uploadObjects?: UploadObjects | null;
}


/**
 * Runs a write from `source`, then drops a stream source however the write ended: a write refused
 * before it read (ALREADY_EXISTS, a resumed upload) must not hold the upload object's connection.
 */
async function writeFrom(source: WriteSource, write: (source: WriteSource) => Promise<MutationOutcome>): Promise<MutationOutcome> {
  try {
    return await write(source);
  } finally {
    if (source.kind === 'stream') source.stream.destroy();
  }
}

async function writeSourceOf(req: Extract<MutationRequest, { op: 'write' }>, deps: ExecuteDeps, signal: AbortSignal): Promise<WriteSource> {
  if (req.source.kind === 'inline') return { kind: 'inline', data: Buffer.from(req.source.base64, 'base64') };
  if (req.source.kind === 'upload') {
    if (!deps.uploadObjects) throw new SourceNotAllowedError('an upload-area source needs FILESTORE_UPLOAD_S3 on the worker');
    // Opened per attempt; expectedSha256 (required for this kind) proves what arrived.
    return { kind: 'stream', stream: await deps.uploadObjects.open(req.source.name, signal) };
  }
  return { kind: 'file', path: req.source.path };
}

/** The mount's `allowSpecialModes` option, read at execute time so a toggle applies to the next mutation. */
async function allowsSpecialModes(db: Db, mountId: string): Promise<boolean> {
  return (await getMount(db, mountId)).options.allowSpecialModes === true;
}

async function runOp(executor: Executor, deps: ExecuteDeps, journalId: string, req: MutationRequest, fence: TxFence): Promise<MutationOutcome> {
  // The paths were resolved and claimed as real locations (claimedRequest): never re-resolved elsewhere.
  const base = { txId: journalId, ...progressHeartbeat(), signal: Context.current().cancellationSignal, guard: fence.check, claimedPaths: true };
  switch (req.op) {
    case 'write': {
      // Everything that may fail before a byte is read, before the source is opened.
      const allowSpecialModes = await allowsSpecialModes(deps.db, req.mountId);
      return writeFrom(await writeSourceOf(req, deps, base.signal), (source) =>
        executor.write(req.path, source, {
          ...base,
          overwrite: req.overwrite,
          createParents: req.createParents,
          mode: req.mode,
          maxBytes: deps.maxFileBytes,
          expectedSha256: req.expectedSha256,
          sourceRoots: deps.sourceRoots,
          allowSpecialModes,
        }),
      );
    }
    case 'mkdir':
      return executor.mkdir(req.path, { ...base, parents: req.parents });
    case 'move':
      return executor.move(req.path, req.targetPath, {
        ...base,
        overwrite: req.overwrite,
        createParents: req.createParents,
        allowSpecialModes: await allowsSpecialModes(deps.db, req.mountId),
      });
    case 'copy':
      return executor.copy(req.path, req.targetPath, {
        ...base,
        overwrite: req.overwrite,
        createParents: req.createParents,
        recursive: req.recursive,
        maxEntries: deps.maxTreeEntries,
        known: await knownContent(deps.db, req.mountId, req.path, deps.maxTreeEntries),
        allowSpecialModes: await allowsSpecialModes(deps.db, req.mountId),
      });
    case 'delete':
      return executor.delete(req.path, { ...base, recursive: req.recursive });
    default:
      throw new InvalidRequestError(`unknown op ${JSON.stringify((req as { op?: unknown }).op)}`);
  }
}

/**
 * The request with its paths at their real locations, locked as such. The first attempt asks the
 * backend where the paths really are (an in-mount symlinked directory resolves to its target) and
 * claims those places in the catalog — so two spellings of one place conflict — and every later
 * attempt uses what was claimed, even if a symlink changed since.
 */
async function claimedRequest(db: Db, executor: Executor, journalId: string, req: MutationRequest): Promise<MutationRequest> {
  const entry = await entryState(db, journalId);
  // Read under the fence: an entry the janitor (or a compensation) already ended holds no lock any
  // more, and must never be applied.
  if (entry?.status !== 'PENDING') {
    throw new InvalidRequestError(`journal entry ${journalId} is ${entry?.status ?? 'missing'}, not PENDING; it will not be executed`, { journalId });
  }
  const hasTarget = req.op === 'move' || req.op === 'copy';
  let realPath = entry?.realPath ?? null;
  let realTargetPath = entry?.realTargetPath ?? null;
  if (realPath === null || (hasTarget && realTargetPath === null)) {
    const spelled = hasTarget ? [req.path, req.targetPath] : [req.path];
    const real = executor.resolve ? await executor.resolve(spelled) : spelled;
    [realPath, realTargetPath] = [real[0], hasTarget ? real[1] : null];
    await claimRealPaths(db, { journalId, mountId: req.mountId, realPath, realTargetPath, waitForLock: req.waitForLock });
  }
  return hasTarget ? { ...req, path: realPath, targetPath: realTargetPath! } : { ...req, path: realPath };
}

export function createExecuteActivities(deps: ExecuteDeps) {
  async function executeMutation(input: { journalId: string; request: MutationRequest }): Promise<MutationOutcome> {
    const executor = await deps.executors.get(input.request.mountId);
    return fenced(deps.fences, input.journalId, async (fence) => {
      const req = await claimedRequest(deps.db, executor, input.journalId, input.request);
      // A tree's per-node outcome goes to the catalog; the payload carries a reference and a count.
      return offloadOutcome(deps.db, input.journalId, await runOp(executor, deps, input.journalId, req, fence));
    });
  }

  async function compensateMutation(input: { journalId: string; mountId: string }): Promise<{ undone: boolean }> {
    const executor = await deps.executors.get(input.mountId);
    return fenced(deps.fences, input.journalId, (fence) => executor.undo(input.journalId, { guard: fence.check }));
  }

  /**
   * Drops staging and backups of a committed transaction. The commit stands whatever happens
   * here: transient errors are retried, a permanent one keeps the staging for an operator, is
   * counted (filestore_finalize_incomplete_total) and logged, and does not fail the mutation.
   */
  async function finalizeMutation(input: { journalId: string; mountId: string; op?: string }): Promise<{ complete: boolean }> {
    const executor = await deps.executors.get(input.mountId);
    try {
      await fenced(deps.fences, input.journalId, (fence) => executor.finalize(input.journalId, { guard: fence.check }));
      return { complete: true };
    } catch (err) {
      if (!(err instanceof FilestoreError) || err.retryable) throw err;
      finalizeIncomplete.inc({ mount: input.mountId, op: input.op ?? 'unknown' });
      Context.current().log.error('finalize failed permanently; staging kept for an operator', { journalId: input.journalId, code: err.code, error: err.message });
      return { complete: false };
    }
  }

  return { executeMutation, compensateMutation, finalizeMutation };
}
