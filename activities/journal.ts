/**
 * Journal activities: the PENDING entry that locks a mutation's path(s), and its end as
 * ROLLED_BACK / FAILED. Commit lives in commit.ts.
 */
import { and, eq, inArray, like, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { journal, nodes, type JournalRow } from '../db/schema';
import { getMount } from '../src/catalog/mounts';
import { lockError, lockMount, pendingLockHolder } from '../src/catalog/locks';
import { mountTaskQueue, type Config } from '../src/config';
import {
  IdempotencyKeyReusedError,
  InconsistentNodeError,
  InvalidRequestError,
  ReadOnlyMountError,
  UnsupportedError,
  type ErrorInfo,
} from '../src/errors';
import { mutationOutcomes } from '../src/metrics';
import { IDEMPOTENCY_KEY_PATTERN, type MutationRequest, type MutationResult } from '../src/mutations';
import { normalizeMountPath, isStrictlyInside } from '../src/paths';
import { canonicalRequest, stableStringify } from '../src/request-fingerprint';
import { dropOutcome } from '../src/catalog/outcomes';
import { fenceKey } from './tx-fence';
import { belowPattern } from '../src/catalog/subtree';

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/**
 * What beginJournal found. `taskQueue` is where the mount's activities (execute, verify,
 * compensate, finalize) must run, resolved from the catalog — never from the request.
 */
export type BeginResult =
  | { state: 'new'; journalId: string; taskQueue: string }
  | { state: 'committed'; journalId: string; taskQueue: string; result: MutationResult }
  | { state: 'ended'; journalId: string; taskQueue: string; status: 'ROLLED_BACK' | 'FAILED'; error: ErrorInfo };


/** Re-validates everything a client could have got wrong; the workflow trusts nothing it is given. */
export function validateRequest(req: MutationRequest, limits: { inlineMaxBytes: number }): MutationRequest {
  if (!req || typeof req !== 'object') throw new InvalidRequestError('mutation request must be an object');
  if (typeof req.idempotencyKey !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(req.idempotencyKey)) {
    throw new InvalidRequestError(`idempotency key must match ${IDEMPOTENCY_KEY_PATTERN}`);
  }
  const path = normalizeMountPath(req.path);
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
      } else {
        throw new InvalidRequestError('write needs a source of kind "file" or "inline"');
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
      if (target === path) throw new InvalidRequestError(`${req.op} source and target are the same path`);
      if (isStrictlyInside(target, path)) throw new InvalidRequestError(`cannot ${req.op} ${path} into itself (${target})`);
      break;
    }
    case 'mkdir':
    case 'delete':
      break;
    default:
      throw new UnsupportedError(`unknown op ${JSON.stringify((req as { op?: unknown }).op)}`);
  }
  return req;
}

/**
 * The first node the mutation would act on that the catalog marks INCONSISTENT, or null: its path
 * and move/copy target, and for delete, move and copy also everything below the path (they carry
 * the whole catalogued subtree; a delete marks it DELETED even when not recursive). A move/copy
 * target is never a directory that gets replaced, so its subtree is not touched. One query,
 * served by the partial index on INCONSISTENT nodes.
 */
async function inconsistentNode(tx: Tx, req: MutationRequest, targetPath: string | null): Promise<string | null> {
  const exact = inArray(nodes.path, [req.path, ...(targetPath ? [targetPath] : [])]);
  const carriesSubtree = req.op === 'delete' || req.op === 'move' || req.op === 'copy';
  const rows = await tx
    .select({ path: nodes.path })
    .from(nodes)
    .where(
      and(
        eq(nodes.mountId, req.mountId),
        eq(nodes.state, 'INCONSISTENT'),
        carriesSubtree ? or(exact, like(nodes.path, belowPattern(req.path))) : exact,
      ),
    )
    .orderBy(nodes.path)
    .limit(1);
  return rows[0]?.path ?? null;
}

export interface JournalDeps {
  db: Db;
  inlineMaxBytes: number;
  /** Base task queue: local mounts' activities go to `mountTaskQueue(config, id)`, others here. */
  taskQueue: Config['taskQueue'];
}

export function createJournalActivities(deps: JournalDeps) {
  const { db } = deps;

  /**
   * Validates the request, then in one transaction (serialised per mount by an advisory lock)
   * refuses INCONSISTENT nodes unless forced, checks that no PENDING mutation holds an overlapping
   * path and inserts this one as PENDING. The same idempotency key answers with the earlier entry
   * instead of inserting a second one (a committed mutation stays answerable even if its node
   * became INCONSISTENT since). The lock compares the requested paths with every other PENDING
   * entry's paths and, once claimed, their real locations (see catalog/locks.ts).
   *
   * Routing: the result names the task queue of the mount's activities, from the catalog row.
   * A `mountTaskQueue` in the request is ignored — a caller must not choose which worker (or
   * which impostor polling a queue name) runs a mount's activities.
   */
  async function beginJournal(input: { request: MutationRequest; workflowId: string; runId: string }): Promise<BeginResult> {
    const req = validateRequest(input.request, deps);
    const mount = await getMount(db, req.mountId);
    if (mount.options.readOnly) throw new ReadOnlyMountError(req.mountId);
    const canonical = canonicalRequest(req);
    const taskQueue = mount.kind === 'local' ? mountTaskQueue(deps, mount.id) : deps.taskQueue;

    try {
      return await insertPending(req, canonical, input, taskQueue);
    } catch (err) {
      // The advisory lock is per mount: a begin under the same key on another mount can win the
      // insert in between. The unique key caught it; answer as if that entry had been there first.
      if (!isUniqueViolation(err, 'journal_idempotency_key_uq')) throw err;
      const [existing] = await db.select().from(journal).where(eq(journal.idempotencyKey, req.idempotencyKey));
      if (!existing) throw err;
      return answerExisting(existing, canonical, input, taskQueue);
    }
  }

  async function insertPending(
    req: MutationRequest,
    canonical: Record<string, unknown>,
    input: { workflowId: string; runId: string },
    taskQueue: string,
  ): Promise<BeginResult> {
    const targetPath = req.op === 'move' || req.op === 'copy' ? req.targetPath : null;
    return db.transaction(async (tx) => {
      await lockMount(tx, req.mountId);
      const existing = await tx.select().from(journal).where(eq(journal.idempotencyKey, req.idempotencyKey));
      if (existing.length > 0) return answerExisting(existing[0], canonical, input, taskQueue);

      // Refused before anything is written: no journal entry, nothing on the backend touched.
      if (!req.force) {
        const inconsistent = await inconsistentNode(tx, req, targetPath);
        if (inconsistent !== null) throw new InconsistentNodeError(req.mountId, inconsistent);
      }

      const held = await pendingLockHolder(tx, { mountId: req.mountId, paths: [req.path, ...(targetPath ? [targetPath] : [])] });
      if (held) throw lockError(req.mountId, held, req.waitForLock);
      const [row] = await tx
        .insert(journal)
        .values({
          idempotencyKey: req.idempotencyKey,
          workflowId: input.workflowId,
          runId: input.runId,
          op: req.op,
          mountId: req.mountId,
          path: req.path,
          targetMountId: targetPath ? req.mountId : null,
          targetPath,
          request: canonical,
        })
        .returning({ id: journal.id });
      return { state: 'new', journalId: row.id, taskQueue } as const;
    });
  }

  /** Ends a PENDING entry as ROLLED_BACK (something was undone) or FAILED (nothing had changed). */
  async function rollbackJournal(input: {
    journalId: string;
    request: MutationRequest;
    status: 'ROLLED_BACK' | 'FAILED';
    error: ErrorInfo;
  }): Promise<void> {
    const rows = await db.transaction(async (tx) => {
      // Like commit: the entry (and its path lock) ends only once no attempt holds the fence.
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${fenceKey(input.journalId)}, 0))`);
      const ended = await tx
        .update(journal)
        .set({ status: input.status, error: { ...input.error }, updatedAt: new Date(), completedAt: new Date() })
        .where(and(eq(journal.id, input.journalId), eq(journal.status, 'PENDING')))
        .returning({ id: journal.id });
      // An offloaded tree outcome of a mutation that never committed is of no further use.
      if (ended.length > 0) await dropOutcome(tx, input.journalId);
      return ended;
    });
    // A retried attempt finds the entry already ended; count the outcome once.
    if (rows.length > 0) {
      mutationOutcomes.inc({ mount: input.request.mountId, op: input.request.op, outcome: input.status.toLowerCase() });
    }
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

function answerExisting(row: JournalRow, canonical: Record<string, unknown>, input: { workflowId: string }, taskQueue: string): BeginResult {
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
      return { state: 'new', journalId: row.id, taskQueue };
  }
}
