/**
 * Journal activities: the PENDING entry that locks a mutation's path(s), and its end as
 * ROLLED_BACK / FAILED. Commit lives in commit.ts.
 */
import type { Db } from '../db/client';
import type { JournalRow, MountRow } from '../src/catalog/types';
import { endPendingUnderFence, entryByKey, insertPendingEntry } from '../src/catalog/journal';
import { getMount, MOUNT_ID_PATTERN } from '../src/catalog/mounts';
import { mountTaskQueue, type Config } from '../src/config';
import { IdempotencyKeyReusedError, InvalidRequestError, ReadOnlyMountError, UnsupportedError, type ErrorInfo } from '../src/errors';
import { mutationOutcomes } from '../src/metrics';
import { crossMountTarget, IDEMPOTENCY_KEY_PATTERN, type MutationRequest, type MutationResult } from '../src/mutations';
import { UPLOAD_NAME_PATTERN } from '../src/executors/s3/s3-upload-objects';
import { normalizeMountPath, isStrictlyInside } from '../src/paths';
import { canonicalRequest, stableStringify } from '../src/request-fingerprint';
import { fenceKey } from './tx-fence';

/**
 * Where the steps of a cross-mount copy or move run, resolved from the catalog. The transfer runs
 * where a disk is: on the source's queue when the source is a local mount (it must then reach the
 * target too), else on the target's when that is local, else (S3 → S3) on the general queue.
 * Each side's own steps (verify, a move's source delete, undo, finalize) run on that side's queue.
 */
export interface TransferPlacement {
  targetMountId: string;
  transferQueue: string;
  sourceQueue: string;
  targetQueue: string;
}

/**
 * What beginJournal found. `taskQueue` is where the mount's activities (execute, verify,
 * compensate, finalize) must run, resolved from the catalog — never from the request. A
 * cross-mount copy/move also gets its {@link TransferPlacement}.
 */
export type BeginResult =
  | { state: 'new'; journalId: string; taskQueue: string; placement?: TransferPlacement }
  | { state: 'committed'; journalId: string; taskQueue: string; result: MutationResult }
  | { state: 'ended'; journalId: string; taskQueue: string; status: 'ROLLED_BACK' | 'FAILED'; error: ErrorInfo };


/** Re-validates everything a client could have got wrong; the workflow trusts nothing it is given. */
export function validateRequest(req: MutationRequest, limits: { inlineMaxBytes: number }): MutationRequest {
  if (!req || typeof req !== 'object') throw new InvalidRequestError('mutation request must be an object');
  if (typeof req.idempotencyKey !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(req.idempotencyKey)) {
    throw new InvalidRequestError(`idempotency key must match ${IDEMPOTENCY_KEY_PATTERN}`);
  }
  // The mount root ('') is a path only a reconcile may name: the whole mount as the backend has it.
  const path = normalizeMountPath(req.path, { allowRoot: req.op === 'reconcile' });
  if (path !== req.path) throw new InvalidRequestError(`path ${JSON.stringify(req.path)} is not canonical (expected ${JSON.stringify(path)})`);
  switch (req.op) {
    case 'write':
      if (req.source?.kind === 'inline') {
        if (typeof req.source.base64 !== 'string') throw new InvalidRequestError('inline source needs base64 content');
        const bytes = Math.floor((req.source.base64.length * 3) / 4);
        if (bytes > limits.inlineMaxBytes + 3) {
          throw new InvalidRequestError(`inline content is limited to ${limits.inlineMaxBytes} bytes; pass a file source instead`);
        }
      } else if (req.source?.kind === 'file') {
        if (typeof req.source.path !== 'string' || !req.source.path.startsWith('/')) {
          throw new InvalidRequestError('file source needs an absolute path on the worker host');
        }
      } else if (req.source?.kind === 'upload') {
        if (typeof req.source.name !== 'string' || !UPLOAD_NAME_PATTERN.test(req.source.name)) {
          throw new InvalidRequestError('upload source needs the name of an upload-area object');
        }
        // The name is left out of the idempotency comparison (canonicalRequest): the content's
        // hash must stand for what the request writes.
        if (req.expectedSha256 === undefined) throw new InvalidRequestError('an upload source needs expectedSha256 (the hash of what was uploaded)');
      } else {
        throw new InvalidRequestError('write needs a source of kind "file", "inline" or "upload"');
      }
      // Checked before any byte moves: a malformed hash would otherwise fail only after the whole
      // stream, and a bad mode would reach chmod.
      if (req.expectedSha256 !== undefined && !/^[0-9a-f]{64}$/.test(req.expectedSha256)) {
        throw new InvalidRequestError('expectedSha256 must be 64 lower-case hex digits');
      }
      if (req.mode !== undefined && !(Number.isInteger(req.mode) && req.mode >= 0 && req.mode <= 0o7777)) {
        throw new InvalidRequestError(`mode must be a permission number from 0 to 0o7777, got ${JSON.stringify(req.mode)}`);
      }
      break;
    case 'move':
    case 'copy': {
      const target = normalizeMountPath(req.targetPath);
      if (target !== req.targetPath) throw new InvalidRequestError(`target path ${JSON.stringify(req.targetPath)} is not canonical`);
      if (req.targetMountId !== undefined && (typeof req.targetMountId !== 'string' || !MOUNT_ID_PATTERN.test(req.targetMountId))) {
        throw new InvalidRequestError(`target mount id ${JSON.stringify(req.targetMountId)} must match ${MOUNT_ID_PATTERN}`);
      }
      // Across mounts the same path names two different places.
      if (crossMountTarget(req) !== null) break;
      if (target === path) throw new InvalidRequestError(`${req.op} source and target are the same path`);
      if (isStrictlyInside(target, path)) throw new InvalidRequestError(`cannot ${req.op} ${path} into itself (${target})`);
      break;
    }
    case 'mkdir':
    case 'delete':
      break;
    case 'reconcile':
      if (req.recursive !== undefined && typeof req.recursive !== 'boolean') throw new InvalidRequestError('reconcile recursive must be a boolean');
      break;
    default:
      throw new UnsupportedError(`unknown op ${JSON.stringify((req as { op?: unknown }).op)}`);
  }
  return req;
}

export interface JournalDeps {
  db: Db;
  inlineMaxBytes: number;
  /** Base task queue: local mounts' activities go to `mountTaskQueue(config, id)`, others here. */
  taskQueue: Config['taskQueue'];
}

export function createJournalActivities(deps: JournalDeps) {
  const { db } = deps;
  const queueOf = (mount: MountRow) => (mount.kind === 'local' ? mountTaskQueue(deps, mount.id) : deps.taskQueue);

  /**
   * Validates the request, then in one transaction (serialised per mount by an advisory lock —
   * both mounts of a cross-mount copy/move) refuses INCONSISTENT nodes unless forced, checks that
   * no PENDING mutation holds an overlapping path and inserts this one as PENDING. The same
   * idempotency key answers with the earlier entry instead of inserting a second one (a committed
   * mutation stays answerable even if its node became INCONSISTENT since). The lock compares the
   * requested paths with every other PENDING entry's paths and, once claimed, their real locations
   * (see catalog/locks.ts); across mounts the source path is locked on the source mount and the
   * target path on the target mount.
   *
   * Routing: the result names the task queue of the mount's activities, from the catalog row, and
   * for a cross-mount copy/move where each step runs ({@link TransferPlacement}).
   * A `mountTaskQueue` in the request is ignored — a caller must not choose which worker (or
   * which impostor polling a queue name) runs a mount's activities.
   *
   * Read-only: a mount that is written to must not be read-only — the source of anything but a
   * cross-mount copy (which only reads it), and the target of a cross-mount copy or move.
   */
  async function beginJournal(input: { request: MutationRequest; workflowId: string; runId: string }): Promise<BeginResult> {
    const req = validateRequest(input.request, deps);
    const mount = await getMount(db, req.mountId);
    const targetMountId = crossMountTarget(req);
    const target = targetMountId === null ? null : await getMount(db, targetMountId);
    // A reconcile changes only the catalog (it reads the backend), so a read-only mount allows it.
    if (mount.options.readOnly && !(target && req.op === 'copy') && req.op !== 'reconcile') throw new ReadOnlyMountError(req.mountId);
    if (target?.options.readOnly) throw new ReadOnlyMountError(target.id);
    const canonical = canonicalRequest(req);
    const taskQueue = queueOf(mount);
    const placement: TransferPlacement | undefined = target
      ? {
          targetMountId: target.id,
          transferQueue: mount.kind === 'local' ? taskQueue : queueOf(target),
          sourceQueue: taskQueue,
          targetQueue: queueOf(target),
        }
      : undefined;

    try {
      const inserted = await insertPendingEntry(db, {
        idempotencyKey: req.idempotencyKey,
        workflowId: input.workflowId,
        runId: input.runId,
        op: req.op,
        mountId: req.mountId,
        path: req.path,
        target: req.op === 'move' || req.op === 'copy' ? { mountId: targetMountId ?? req.mountId, path: req.targetPath } : null,
        request: canonical,
        // Reconcile is how INCONSISTENT is cleared: it is never refused for it.
        refuseInconsistent: !req.force && req.op !== 'reconcile',
        waitForLock: req.waitForLock,
      });
      if ('existing' in inserted) return answerExisting(inserted.existing, canonical, input, taskQueue, placement);
      return { state: 'new', journalId: inserted.journalId, taskQueue, ...(placement ? { placement } : {}) };
    } catch (err) {
      // The advisory lock is per mount: a begin under the same key on another mount can win the
      // insert in between. The unique key caught it; answer as if that entry had been there first.
      if (!isUniqueViolation(err, 'journal_idempotency_key_uq')) throw err;
      const existing = await entryByKey(db, req.idempotencyKey);
      if (!existing) throw err;
      return answerExisting(existing, canonical, input, taskQueue, placement);
    }
  }

  /** Ends a PENDING entry as ROLLED_BACK (something was undone) or FAILED (nothing had changed). */
  async function rollbackJournal(input: {
    journalId: string;
    request: MutationRequest;
    status: 'ROLLED_BACK' | 'FAILED';
    error: ErrorInfo;
  }): Promise<void> {
    const ended = await endPendingUnderFence(db, { journalId: input.journalId, status: input.status, error: input.error, fenceLockKey: fenceKey(input.journalId) });
    // A retried attempt finds the entry already ended; count the outcome once.
    if (ended) mutationOutcomes.inc({ mount: input.request.mountId, op: input.request.op, outcome: input.status.toLowerCase() });
  }

  return { beginJournal, rollbackJournal };
}

/** A Postgres unique violation of `constraint` (node-postgres error, possibly wrapped by drizzle). */
function isUniqueViolation(err: unknown, constraint: string): boolean {
  for (let cur = err as { code?: unknown; constraint?: unknown; cause?: unknown } | undefined; cur; cur = cur.cause as typeof cur) {
    if (cur.code === '23505' && cur.constraint === constraint) return true;
  }
  return false;
}

function answerExisting(
  row: JournalRow,
  canonical: Record<string, unknown>,
  input: { workflowId: string },
  taskQueue: string,
  placement: TransferPlacement | undefined,
): BeginResult {
  if (stableStringify(row.request) !== stableStringify(canonical) || row.workflowId !== input.workflowId) {
    throw new IdempotencyKeyReusedError(row.idempotencyKey);
  }
  switch (row.status) {
    case 'COMMITTED':
      return { state: 'committed', journalId: row.id, taskQueue, result: row.result as unknown as MutationResult };
    case 'ROLLED_BACK':
    case 'FAILED':
      return { state: 'ended', journalId: row.id, taskQueue, status: row.status, error: row.error as unknown as ErrorInfo };
    case 'PENDING':
      // A retry of this begin, or a new run of the same workflow after the old one died: continue
      // the same entry (execute and undo are idempotent per journal id).
      return { state: 'new', journalId: row.id, taskQueue, ...(placement ? { placement } : {}) };
  }
}
