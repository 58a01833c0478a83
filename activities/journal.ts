/**
 * Journal activities: the PENDING entry that locks a mutation's path(s), and its end as
 * ROLLED_BACK / FAILED. Commit lives in commit.ts.
 */
import { and, eq, inArray, like, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { journal, nodes, type JournalRow } from '../db/schema';
import { getMount } from '../src/catalog/mounts';
import {
  ConflictError,
  IdempotencyKeyReusedError,
  InconsistentNodeError,
  InvalidRequestError,
  PathLockedError,
  ReadOnlyMountError,
  UnsupportedError,
  type ErrorInfo,
} from '../src/errors';
import { mutationOutcomes } from '../src/metrics';
import { IDEMPOTENCY_KEY_PATTERN, type MutationRequest, type MutationResult } from '../src/mutations';
import { normalizeMountPath, pathsOverlap, isStrictlyInside } from '../src/paths';
import { belowPattern } from '../src/catalog/subtree';

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

export type BeginResult =
  | { state: 'new'; journalId: string }
  | { state: 'committed'; journalId: string; result: MutationResult }
  | { state: 'ended'; journalId: string; status: 'ROLLED_BACK' | 'FAILED'; error: ErrorInfo };

/** The request as it is compared for idempotency and stored in the journal (no routing fields). */
function canonicalRequest(req: MutationRequest): Record<string, unknown> {
  const { mountTaskQueue: _q, waitForLock: _w, lockTimeoutMs: _t, ...rest } = req;
  return JSON.parse(JSON.stringify(rest));
}

/** JSON with sorted keys: jsonb does not keep key order, so compare this form. */
function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

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

export function createJournalActivities(deps: { db: Db; inlineMaxBytes: number }) {
  const { db } = deps;

  /**
   * Validates the request, then in one transaction (serialised per mount by an advisory lock)
   * refuses INCONSISTENT nodes unless forced, checks that no PENDING mutation holds an overlapping
   * path and inserts this one as PENDING. The same idempotency key answers with the earlier entry
   * instead of inserting a second one (a committed mutation stays answerable even if its node
   * became INCONSISTENT since).
   */
  async function beginJournal(input: { request: MutationRequest; workflowId: string; runId: string }): Promise<BeginResult> {
    const req = validateRequest(input.request, deps);
    const mount = await getMount(db, req.mountId);
    if (mount.options.readOnly) throw new ReadOnlyMountError(req.mountId);
    const canonical = canonicalRequest(req);
    const targetPath = req.op === 'move' || req.op === 'copy' ? req.targetPath : null;

    return db.transaction(async (tx) => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`filestore:mount:${req.mountId}`}))`);
      const existing = await tx.select().from(journal).where(eq(journal.idempotencyKey, req.idempotencyKey));
      if (existing.length > 0) return answerExisting(existing[0], canonical, input);

      // Refused before anything is written: no journal entry, nothing on the backend touched.
      if (!req.force) {
        const inconsistent = await inconsistentNode(tx, req, targetPath);
        if (inconsistent !== null) throw new InconsistentNodeError(req.mountId, inconsistent);
      }

      const pending = await tx
        .select({ id: journal.id, op: journal.op, path: journal.path, targetPath: journal.targetPath, workflowId: journal.workflowId })
        .from(journal)
        .where(and(eq(journal.status, 'PENDING'), or(eq(journal.mountId, req.mountId), eq(journal.targetMountId, req.mountId))));
      const mine = [req.path, ...(targetPath ? [targetPath] : [])];
      for (const other of pending) {
        const theirs = [other.path, ...(other.targetPath ? [other.targetPath] : [])];
        const clash = mine.find((p) => theirs.some((q) => pathsOverlap(p, q)));
        if (clash !== undefined) {
          const message = `${req.mountId}:${clash} is locked by a pending ${other.op} (${other.workflowId}); retry later or pass waitForLock`;
          const details = { mountId: req.mountId, path: clash, heldBy: other.workflowId, journalId: other.id };
          throw req.waitForLock ? new PathLockedError(message, details) : new ConflictError(message, details);
        }
      }
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
      return { state: 'new', journalId: row.id } as const;
    });
  }

  /** Ends a PENDING entry as ROLLED_BACK (something was undone) or FAILED (nothing had changed). */
  async function rollbackJournal(input: {
    journalId: string;
    request: MutationRequest;
    status: 'ROLLED_BACK' | 'FAILED';
    error: ErrorInfo;
  }): Promise<void> {
    const rows = await db
      .update(journal)
      .set({ status: input.status, error: { ...input.error }, updatedAt: new Date(), completedAt: new Date() })
      .where(and(eq(journal.id, input.journalId), eq(journal.status, 'PENDING')))
      .returning({ id: journal.id });
    // A retried attempt finds the entry already ended; count the outcome once.
    if (rows.length > 0) {
      mutationOutcomes.inc({ mount: input.request.mountId, op: input.request.op, outcome: input.status.toLowerCase() });
    }
  }

  return { beginJournal, rollbackJournal };
}

function answerExisting(row: JournalRow, canonical: Record<string, unknown>, input: { workflowId: string }): BeginResult {
  if (stableStringify(row.request) !== stableStringify(canonical) || row.workflowId !== input.workflowId) {
    throw new IdempotencyKeyReusedError(row.idempotencyKey);
  }
  switch (row.status) {
    case 'COMMITTED':
      return { state: 'committed', journalId: row.id, result: row.result as unknown as MutationResult };
    case 'ROLLED_BACK':
    case 'FAILED':
      return { state: 'ended', journalId: row.id, status: row.status, error: row.error as unknown as ErrorInfo };
    case 'PENDING':
      // A retry of this begin, or a new run of the same workflow after the old one died: continue
      // the same entry (execute and undo are idempotent per journal id).
      return { state: 'new', journalId: row.id };
  }
}
