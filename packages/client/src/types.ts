/**
 * What the HTTP API sends back, as JSON. The mutation requests and results, the node kinds and the
 * error shape are the server's own types (src/mutations.ts, src/errors.ts — compiled into this
 * package); the catalog rows below are their JSON form (timestamps as ISO-8601 strings), written
 * out here because the server's row types come from the database schema, which a client must not
 * pull in.
 */
import type { ErrorInfo } from '../../../src/errors';
import type { BackendKind, MutationOp, NodeKind } from '../../../src/executors/executor';
import type { MutationResult } from '../../../src/mutations';

export type { ErrorInfo } from '../../../src/errors';
export type { BackendKind, MutationOp, NodeKind } from '../../../src/executors/executor';
export type { MutationRequest, MutationResult, NodeSummary } from '../../../src/mutations';

/** A journaled operation: the mutations, and `reconcile`. */
export type JournalOp = MutationOp | 'reconcile';

/** Catalog state of a node. `INCONSISTENT`: changed behind Filestore's back until reconciled. */
export type NodeState = 'ACTIVE' | 'INCONSISTENT' | 'DELETED';

/** One catalog node (`GET /v1/mounts/{mount}/nodes/{path}`, and the items of a listing). */
export interface CatalogNode {
  id: number;
  mountId: string;
  /** Canonical mount-relative path ('' is the mount root). */
  path: string;
  /** Parent path ('' for top-level nodes). */
  parent: string;
  kind: NodeKind;
  size: number;
  /** Hex sha256 of a file's content (null for directories). */
  sha256: string | null;
  etag: string | null;
  storageClass: string | null;
  versionId: string | null;
  mode: number | null;
  uid: number | null;
  gid: number | null;
  mtime: string | null;
  state: NodeState;
  /** Incremented by each committed mutation of the node. */
  version: number;
  lastJournalId: string | null;
  createdAt: string;
  updatedAt: string;
}

/** A page of a listing; pass `nextCursor` back as `cursor` (null: the last page). */
export interface NodePage {
  nodes: CatalogNode[];
  nextCursor: string | null;
}

export type JournalStatus = 'PENDING' | 'COMMITTED' | 'ROLLED_BACK' | 'FAILED';

/** One journal entry: one per mutation (its idempotency key), whatever its outcome. */
export interface JournalEntry {
  id: string;
  idempotencyKey: string;
  workflowId: string;
  runId: string | null;
  op: JournalOp;
  mountId: string;
  path: string;
  targetMountId: string | null;
  targetPath: string | null;
  status: JournalStatus;
  /** Why it failed or rolled back. */
  error: ErrorInfo | null;
  /** The canonical request (what the idempotency key stands for). */
  request: Record<string, unknown>;
  result: MutationResult | null;
  createdAt: string;
  updatedAt: string;
  completedAt: string | null;
}

export interface JournalPage {
  entries: JournalEntry[];
  nextCursor: string | null;
}

export type DriftKind = 'added' | 'modified' | 'removed' | 'unreadable';

/** One change detected behind Filestore's back; open until `resolvedAt` is set (reconcile). */
export interface DriftEvent {
  id: number;
  mountId: string;
  path: string;
  kind: DriftKind;
  /** What the backend showed (null fields: the path is gone). */
  observed: { kind: NodeKind | null; size: number | null; mtime: string | null; mode: number | null; sha256?: string | null; [key: string]: unknown };
  /** The catalog's view at detection time (null for a path it did not know). */
  catalog: Record<string, unknown> | null;
  detectedAt: string;
  jobId: string | null;
  resolvedAt: string | null;
}

export interface DriftPage {
  events: DriftEvent[];
  nextCursor: string | null;
}

/** A backend mount as the API shows it (never its credentials). */
export interface Mount {
  id: string;
  kind: BackendKind;
  rootPath: string | null;
  bucket: string | null;
  prefix: string | null;
  endpoint: string | null;
  region: string | null;
  options: { readOnly?: boolean; watch?: boolean; [key: string]: unknown };
  createdAt: string;
  updatedAt: string;
  [key: string]: unknown;
}

/** The 202 answer to a mutation sent with `Prefer: respond-async`. */
export interface MutationAccepted {
  workflowId: string;
  idempotencyKey: string;
  /** `/v1/runs/<workflowId>` (relative to the API's base URL). */
  statusUrl: string;
}

/** Where a mutation's run stands (`GET /v1/runs/{workflowId}`). */
export interface RunStatus {
  workflowId: string;
  /** `RUNNING` while it runs; `COMMITTED` with `result`; otherwise failed, with `error`. */
  status: string;
  result?: MutationResult;
  error?: ErrorInfo | (Partial<ErrorInfo> & { detail?: string });
  [key: string]: unknown;
}

/** A file's headers as `HEAD /v1/mounts/{mount}/files/{path}` answers them. */
export interface FileInfo {
  size: number;
  /** Strong `"<sha256>"` for the catalog's committed version, weak `W/"…"` for a file changed behind Filestore's back. */
  etag: string | null;
  lastModified: string | null;
  contentType: string | null;
}

/** Inclusive byte range, as HTTP counts it; `end` absent reads to the end of the file. */
export interface ByteRange {
  start: number;
  end?: number;
}
