/**
 * Activities that touch the backend. For local mounts they run on the mount's own task queue,
 * polled only by workers on the host that has the disk.
 */
import { Context } from '@temporalio/activity';
import { and, eq, like, or } from 'drizzle-orm';
import type { Db } from '../db/client';
import { nodes } from '../db/schema';
import { InvalidRequestError } from '../src/errors';
import type { Executor, KnownContent, MutationOutcome, WriteSource } from '../src/executors/executor';
import type { ExecutorRegistry } from '../src/executors/registry';
import type { MutationRequest } from '../src/mutations';
import { belowPattern } from '../src/catalog/subtree';
import { getMount } from '../src/catalog/mounts';

export interface ExecuteDeps {
  db: Db;
  executors: ExecutorRegistry;
  maxFileBytes: number;
  maxTreeEntries: number;
  /** FILESTORE_SOURCE_ROOTS: where a write's file source may lie (empty refuses file sources). */
  sourceRoots: readonly string[];
}

/** Heartbeats at most once a second with the bytes done, so a dead worker is noticed within the heartbeat timeout. */
function progressHeartbeat(): (bytes: number) => void {
  let last = 0;
  return (bytes) => {
    const now = Date.now();
    if (now - last < 1000) return;
    last = now;
    Context.current().heartbeat({ bytes });
  };
}

function writeSourceOf(req: Extract<MutationRequest, { op: 'write' }>): WriteSource {
  if (req.source.kind === 'inline') return { kind: 'inline', data: Buffer.from(req.source.base64, 'base64') };
  return { kind: 'file', path: req.source.path };
}

/** Catalogued hashes below a copy source, so unchanged files are copied by the kernel without re-hashing. */
async function knownContent(db: Db, mountId: string, src: string, limit: number): Promise<Record<string, KnownContent>> {
  const rows = await db
    .select({ path: nodes.path, size: nodes.size, mtime: nodes.mtime, sha256: nodes.sha256 })
    .from(nodes)
    .where(
      and(
        eq(nodes.mountId, mountId),
        eq(nodes.kind, 'file'),
        // Only what Filestore itself wrote: an INCONSISTENT node's hash may no longer describe the file.
        eq(nodes.state, 'ACTIVE'),
        or(eq(nodes.path, src), like(nodes.path, belowPattern(src))),
      ),
    )
    .limit(limit + 1);
  const known: Record<string, KnownContent> = {};
  for (const r of rows) {
    if (!r.sha256 || !r.mtime) continue;
    known[r.path === src ? '' : r.path.slice(src.length + 1)] = { size: r.size, mtime: r.mtime, sha256: r.sha256 };
  }
  return known;
}

/** The mount's `allowSpecialModes` option, read at execute time so a toggle applies to the next mutation. */
async function allowsSpecialModes(db: Db, mountId: string): Promise<boolean> {
  return (await getMount(db, mountId)).options.allowSpecialModes === true;
}

async function runOp(executor: Executor, deps: ExecuteDeps, journalId: string, req: MutationRequest): Promise<MutationOutcome> {
  const base = { txId: journalId, onProgress: progressHeartbeat(), signal: Context.current().cancellationSignal };
  switch (req.op) {
    case 'write':
      return executor.write(req.path, writeSourceOf(req), {
        ...base,
        overwrite: req.overwrite,
        createParents: req.createParents,
        mode: req.mode,
        maxBytes: deps.maxFileBytes,
        expectedSha256: req.expectedSha256,
        sourceRoots: deps.sourceRoots,
        allowSpecialModes: await allowsSpecialModes(deps.db, req.mountId),
      });
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

export function createExecuteActivities(deps: ExecuteDeps) {
  async function executeMutation(input: { journalId: string; request: MutationRequest }): Promise<MutationOutcome> {
    const executor = await deps.executors.get(input.request.mountId);
    return runOp(executor, deps, input.journalId, input.request);
  }

  async function compensateMutation(input: { journalId: string; mountId: string }): Promise<{ undone: boolean }> {
    const executor = await deps.executors.get(input.mountId);
    return executor.undo(input.journalId);
  }

  async function finalizeMutation(input: { journalId: string; mountId: string }): Promise<void> {
    const executor = await deps.executors.get(input.mountId);
    await executor.finalize(input.journalId);
  }

  return { executeMutation, compensateMutation, finalizeMutation };
}
