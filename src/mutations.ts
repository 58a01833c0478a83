/**
 * Mutation requests and results as they travel through Temporal. Pure types and functions only:
 * workflow code imports this file, so it must stay deterministic and free of Node APIs.
 * File bytes never appear here except small inline content (≤ 256 KiB, base64).
 */
import type { MutationOp as BackendMutationOp, NodeKind } from './executors/executor';

/**
 * Every journaled mutation: the backend ops an executor carries out, and `reconcile`, which
 * changes only the catalog (it accepts what the backend shows now).
 */
export type MutationOp = BackendMutationOp | 'reconcile';

export type WriteSourceRef =
  /** A file readable on the host of the mount's worker. */
  | { kind: 'file'; path: string }
  /** Small content carried in the payload (≤ FILESTORE_INLINE_MAX_BYTES). */
  | { kind: 'inline'; base64: string }
  /**
   * An object of the S3 upload area (FILESTORE_UPLOAD_S3), by its name under the area's prefix:
   * the worker reads it with its own configuration, never from another bucket or prefix. The name
   * is where the bytes wait, not what they are — the request's identity is the content's hash
   * (`expectedSha256`), so it is left out of the idempotency comparison.
   */
  | { kind: 'upload'; name: string };

interface RequestBase {
  /** Same key → same workflow, same journal entry, same result. */
  idempotencyKey: string;
  mountId: string;
  /** Canonical mount-relative path the mutation acts on. */
  path: string;
  /**
   * @deprecated Ignored. Routing comes from the catalog: the workflow takes the mount's task queue
   * from `beginJournal`, so a request cannot send a mount's activities to a queue of its choosing.
   * Accepted (and left out of the idempotency comparison) only so older callers still validate.
   */
  mountTaskQueue?: string;
  /** Wait (up to lockTimeoutMs) for a conflicting mutation to finish instead of failing fast. */
  waitForLock?: boolean;
  /** @defaultValue 300000 */
  lockTimeoutMs?: number;
  /**
   * Mutate even if the catalog marks the path (or, for delete / move / copy, a node below it)
   * INCONSISTENT — changed behind Filestore's back. Without it such a mutation is refused with
   * `INCONSISTENT_NODE`. Part of the request compared for idempotency. @defaultValue false
   */
  force?: boolean;
}

export interface WriteRequest extends RequestBase {
  op: 'write';
  source: WriteSourceRef;
  overwrite?: boolean;
  createParents?: boolean;
  mode?: number;
  expectedSha256?: string;
}
export interface MkdirRequest extends RequestBase {
  op: 'mkdir';
  parents?: boolean;
}
/**
 * A copy or move may land on another mount: `targetMountId` names it (absent, or equal to
 * `mountId`, means the same mount). Across mounts the bytes are streamed from the source
 * executor into the target executor, both (mount, path) pairs are locked by the one journal
 * entry, and a move deletes the source only after the target is verified.
 */
interface TransferFields {
  targetPath: string;
  /** Mount the target path is on. @defaultValue the source's `mountId` */
  targetMountId?: string;
}

export interface MoveRequest extends RequestBase, TransferFields {
  op: 'move';
  overwrite?: boolean;
  createParents?: boolean;
}
export interface CopyRequest extends RequestBase, TransferFields {
  op: 'copy';
  overwrite?: boolean;
  recursive?: boolean;
  createParents?: boolean;
}
export interface DeleteRequest extends RequestBase {
  op: 'delete';
  recursive?: boolean;
}

/**
 * Accepts what is on the backend now as the catalog's truth for `path` (a file or a directory's
 * own row) or, with `recursive`, its whole subtree: metadata and content hashes re-captured, new
 * node versions for what changed, DELETED for what is gone, drift events resolved, INCONSISTENT
 * cleared. Never changes the backend: allowed on read-only mounts, and never refused because a
 * node is INCONSISTENT (it is how that state is cleared).
 */
export interface ReconcileRequest extends RequestBase {
  op: 'reconcile';
  /** Reconcile everything below a directory too. @defaultValue false */
  recursive?: boolean;
}

export type MutationRequest = WriteRequest | MkdirRequest | MoveRequest | CopyRequest | DeleteRequest | ReconcileRequest;

/** The node a mutation left behind (null for delete). */
export interface NodeSummary {
  path: string;
  kind: NodeKind;
  size: number;
  sha256: string | null;
  mode: number | null;
  mtime: string | null;
  version: number;
}

export interface MutationResult {
  status: 'COMMITTED';
  journalId: string;
  workflowId: string;
  op: MutationOp;
  mountId: string;
  path: string;
  targetPath: string | null;
  /** Mount of `targetPath` when it differs from `mountId` (a cross-mount copy or move); absent otherwise. */
  targetMountId?: string;
  /** The primary node after the mutation (write/copy/move target, mkdir dir); null after delete. */
  node: NodeSummary | null;
  /** Catalog rows touched (nodes upserted or marked deleted). */
  nodesAffected: number;
  bytesWritten: number;
  committedAt: string;
}

/** Deterministic, readable workflow id: `filestore:<mount>:<op>:<key>`. */
export function mutationWorkflowId(mountId: string, op: MutationOp, idempotencyKey: string): string {
  return `filestore:${mountId}:${op}:${idempotencyKey}`;
}

/**
 * The mount a copy/move lands on when it is another mount than the source's, else null (same-mount
 * requests, other ops). A `targetMountId` equal to `mountId` is the same mount.
 */
export function crossMountTarget(req: MutationRequest): string | null {
  if (req.op !== 'move' && req.op !== 'copy') return null;
  return req.targetMountId !== undefined && req.targetMountId !== req.mountId ? req.targetMountId : null;
}

/** Path the mutation leaves a node at (move/copy target, else the path itself). */
export function primaryPath(req: MutationRequest): string {
  return req.op === 'move' || req.op === 'copy' ? req.targetPath : req.path;
}

/** One-line description for the Web UI summary and logs. */
export function describeMutation(req: MutationRequest): string {
  const target = req.op === 'move' || req.op === 'copy' ? ` → ${crossMountTarget(req) ?? req.mountId}:${req.targetPath}` : '';
  return `${req.op} ${req.mountId}:${req.path}${target}`;
}

/**
 * Names of the search attributes (all Keyword) registered on the Temporal namespace so runs can be
 * found in the Web UI. Plain strings, so this file loads without the Temporal SDK (the CLI's HTTP
 * start path, src/client/temporal-http.ts); the SDK's typed keys are in src/search-attributes.ts.
 */
export const SEARCH_ATTRIBUTE_NAMES = {
  mount: 'FilestoreMount',
  op: 'FilestoreOp',
  path: 'FilestorePath',
  key: 'FilestoreKey',
  status: 'FilestoreStatus',
} as const;

/** The search attributes a mutation's run starts with (its status changes as it runs). */
export function startSearchAttributes(req: MutationRequest): Record<(typeof SEARCH_ATTRIBUTE_NAMES)[keyof typeof SEARCH_ATTRIBUTE_NAMES], string> {
  return {
    FilestoreMount: req.mountId,
    FilestoreOp: req.op,
    FilestorePath: searchablePath(req.path),
    FilestoreKey: req.idempotencyKey,
    FilestoreStatus: 'PENDING',
  };
}

/**
 * Idempotency keys: at most 128 characters, so `filestore:<mount ≤63>:<op>:<key>` stays within
 * Temporal's 255-character workflow id limit.
 */
export const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** Keyword search attributes are VARCHAR(255) on SQL visibility stores; longer paths are cut for search only. */
export function searchablePath(p: string): string {
  let out = p.slice(0, 255);
  const encoder = new TextEncoder();
  while (encoder.encode(out).length > 255) out = out.slice(0, -1);
  return out;
}
