/**
 * FilestoreClient: what services use to start mutations and read the catalog.
 *
 * ```ts
 * const fs = await FilestoreClient.connect();
 * const handle = await fs.put('docs', 'reports/q3.pdf', { file: '/tmp/q3.pdf' });
 * console.log(handle.workflowId);          // filestore:docs:write:<key>
 * const result = await handle.result();    // MutationResult, or a typed FilestoreError
 * ```
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client, type Connection } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { and, desc, eq, or, type SQL } from 'drizzle-orm';
import { openCatalog, type Catalog } from '../../db/client';
import { journal, nodes, type JournalRow, type NodeRow } from '../../db/schema';
import { listNodePage, MAX_PAGE_SIZE, type ListPageOptions, type NodePage } from '../catalog/listing';
import { getMount, listMounts, addLocalMount, setMountOptions, type AddLocalMount } from '../catalog/mounts';
import { loadConfig, mountTaskQueue, type Config } from '../config';
import { checkWriteSource } from '../executors/local-source';
import {
  errorFromInfo,
  FilestoreError,
  IdempotencyKeyReusedError,
  InvalidRequestError,
  PayloadTooLargeError,
  ReadOnlyMountError,
  UnsupportedError,
  type ErrorInfo,
} from '../errors';
import {
  describeMutation,
  IDEMPOTENCY_KEY_PATTERN,
  mutationWorkflowId,
  SEARCH_ATTRIBUTES,
  searchablePath,
  type MutationRequest,
  type MutationResult,
} from '../mutations';
import { normalizeMountPath } from '../paths';
import { FINGERPRINT_MEMO_KEY, requestFingerprint } from '../request-fingerprint';
import { connectTemporal } from '../temporal';

/** Options every mutation accepts. */
export interface MutationOptions {
  /** Same key → same workflow and the same result; generated when absent. */
  idempotencyKey?: string;
  /** Wait for a conflicting mutation of the same path to finish instead of failing with CONFLICT. @defaultValue false */
  waitForLock?: boolean;
  /** How long waitForLock may wait (ms). @defaultValue 300000 */
  lockTimeoutMs?: number;
  /**
   * Mutate even if the catalog marks the path — or, for remove / move / copy, a node below it —
   * INCONSISTENT (changed behind Filestore's back). Without it such a mutation fails with
   * `INCONSISTENT_NODE` and nothing is journaled or touched. Part of the request an idempotency
   * key stands for. @defaultValue false
   */
  force?: boolean;
}

export type PutSource =
  /** A file path readable on the host that serves the mount (checked here when `checkSource` is on). */
  | { file: string; checkSource?: boolean }
  /** Small content (≤ FILESTORE_INLINE_MAX_BYTES, default 256 KiB) carried inline. */
  | { content: Buffer | string };

export interface PutOptions extends MutationOptions {
  /** Replace an existing file. @defaultValue false */
  overwrite?: boolean;
  /** Create missing parent directories. @defaultValue true */
  createParents?: boolean;
  /** POSIX mode for a new file. */
  mode?: number;
  /** Refuse the write unless the content hashes to this hex sha256. */
  expectedSha256?: string;
}

/** A started mutation. */
export interface MutationHandle {
  workflowId: string;
  idempotencyKey: string;
  /** Waits for the workflow; resolves with its result or rejects with a typed FilestoreError. */
  result(): Promise<MutationResult>;
}

export interface JournalQuery {
  mountId?: string;
  status?: JournalRow['status'];
  limit?: number;
}

export class FilestoreClient {
  private constructor(
    readonly config: Config,
    readonly temporal: Client,
    private readonly connection: Connection | null,
    private readonly catalog: Catalog,
  ) {}

  /** Connects to Temporal and the catalog with `config` (default: from the environment). */
  static async connect(config: Config = loadConfig()): Promise<FilestoreClient> {
    const catalog = openCatalog(config.databaseUrl, { max: 4 });
    try {
      const { client, connection } = await connectTemporal(config);
      return new FilestoreClient(config, client, connection, catalog);
    } catch (err) {
      await catalog.close();
      throw err;
    }
  }

  /** Wraps an existing Temporal client (tests, services that already hold one). */
  static fromParts(config: Config, temporal: Client, catalog: Catalog): FilestoreClient {
    return new FilestoreClient(config, temporal, null, catalog);
  }

  get db() {
    return this.catalog.db;
  }

  async close(): Promise<void> {
    await this.connection?.close();
    await this.catalog.close();
  }

  // ---- mutations -------------------------------------------------------------------------

  /** Writes a file (from a host file or small inline content). */
  async put(mountId: string, filePath: string, source: PutSource, opts: PutOptions = {}): Promise<MutationHandle> {
    let ref: Extract<MutationRequest, { op: 'write' }>['source'];
    if ('content' in source) {
      const data = typeof source.content === 'string' ? Buffer.from(source.content) : source.content;
      if (data.length > this.config.inlineMaxBytes) {
        throw new PayloadTooLargeError(
          `inline content is ${data.length} bytes; the limit is ${this.config.inlineMaxBytes} (FILESTORE_INLINE_MAX_BYTES) — pass a file instead`,
        );
      }
      ref = { kind: 'inline', base64: data.toString('base64') };
    } else {
      const abs = path.resolve(source.file);
      if (source.checkSource ?? true) {
        // The worker's rules (local-source.ts), applied early where this host can: under
        // FILESTORE_SOURCE_ROOTS, no symlink, a regular file within FILESTORE_MAX_FILE_BYTES. The
        // worker checks again and is the authority — it may have other roots — so a client without
        // roots of its own checks only the file itself.
        await checkWriteSource(abs, { roots: this.config.sourceRoots, maxBytes: this.config.maxFileBytes });
      }
      ref = { kind: 'file', path: abs };
    }
    return this.start(mountId, opts, (base) => ({
      ...base,
      op: 'write',
      path: normalizeMountPath(filePath),
      source: ref,
      overwrite: opts.overwrite,
      createParents: opts.createParents,
      mode: opts.mode,
      expectedSha256: opts.expectedSha256,
    }));
  }

  /** Creates a directory (and missing parents unless `parents: false`). */
  async mkdir(mountId: string, dirPath: string, opts: MutationOptions & { parents?: boolean } = {}): Promise<MutationHandle> {
    return this.start(mountId, opts, (base) => ({ ...base, op: 'mkdir', path: normalizeMountPath(dirPath), parents: opts.parents }));
  }

  /** Moves (renames) a file or directory within a mount. */
  async move(
    mountId: string,
    from: string,
    to: string,
    opts: MutationOptions & { overwrite?: boolean; createParents?: boolean; targetMountId?: string } = {},
  ): Promise<MutationHandle> {
    this.sameMount(mountId, opts.targetMountId, 'move');
    return this.start(mountId, opts, (base) => ({
      ...base,
      op: 'move',
      path: normalizeMountPath(from),
      targetPath: normalizeMountPath(to),
      overwrite: opts.overwrite,
      createParents: opts.createParents,
    }));
  }

  /** Copies a file, or a directory with `recursive`, within a mount. */
  async copy(
    mountId: string,
    from: string,
    to: string,
    opts: MutationOptions & { overwrite?: boolean; recursive?: boolean; createParents?: boolean; targetMountId?: string } = {},
  ): Promise<MutationHandle> {
    this.sameMount(mountId, opts.targetMountId, 'copy');
    return this.start(mountId, opts, (base) => ({
      ...base,
      op: 'copy',
      path: normalizeMountPath(from),
      targetPath: normalizeMountPath(to),
      overwrite: opts.overwrite,
      recursive: opts.recursive,
      createParents: opts.createParents,
    }));
  }

  /** Deletes a file, or a directory tree with `recursive`. */
  async remove(mountId: string, target: string, opts: MutationOptions & { recursive?: boolean } = {}): Promise<MutationHandle> {
    return this.start(mountId, opts, (base) => ({ ...base, op: 'delete', path: normalizeMountPath(target), recursive: opts.recursive }));
  }

  /** Handle of a mutation started earlier (by workflow id). */
  handleOf(workflowId: string): MutationHandle {
    const key = workflowId.split(':').slice(3).join(':');
    return { workflowId, idempotencyKey: key, result: () => this.awaitResult(workflowId) };
  }

  // ---- catalog reads ----------------------------------------------------------------------

  async getNode(mountId: string, nodePath: string): Promise<NodeRow | null> {
    const p = normalizeMountPath(nodePath, { allowRoot: true });
    const rows = await this.db.select().from(nodes).where(and(eq(nodes.mountId, mountId), eq(nodes.path, p)));
    return rows[0] ?? null;
  }

  /**
   * Live (with `includeDeleted`, all) children of a directory in the catalog, or its whole subtree
   * with `recursive`, in path order. Reads page by page and drops nothing: without `limit` every
   * node comes back, with it the first `limit`. For directories of unknown size prefer
   * {@link FilestoreClient.listPage}.
   */
  async listNodes(mountId: string, dirPath: string, opts: { recursive?: boolean; includeDeleted?: boolean; limit?: number } = {}): Promise<NodeRow[]> {
    if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit >= 0)) {
      throw new InvalidRequestError(`limit must be a non-negative integer, got ${String(opts.limit)}`);
    }
    const out: NodeRow[] = [];
    let cursor: string | null = null;
    while (opts.limit === undefined || out.length < opts.limit) {
      const limit = opts.limit === undefined ? MAX_PAGE_SIZE : Math.min(MAX_PAGE_SIZE, opts.limit - out.length);
      const page: NodePage = await this.listPage(mountId, dirPath, { recursive: opts.recursive, includeDeleted: opts.includeDeleted, limit, cursor });
      out.push(...page.nodes);
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    return out;
  }

  /**
   * One page of a directory listing (direct children through the parent index, or the subtree
   * with `recursive`), in path order. Pass `nextCursor` back as `cursor` for the next page; a
   * page is full (`limit` nodes) whenever `nextCursor` is set, and null marks the end.
   */
  async listPage(mountId: string, dirPath: string, opts: ListPageOptions = {}): Promise<NodePage> {
    await getMount(this.db, mountId);
    return listNodePage(this.db, mountId, normalizeMountPath(dirPath, { allowRoot: true }), opts);
  }

  async listJournal(q: JournalQuery = {}): Promise<JournalRow[]> {
    const conds: SQL[] = [];
    if (q.mountId) conds.push(or(eq(journal.mountId, q.mountId), eq(journal.targetMountId, q.mountId))!);
    if (q.status) conds.push(eq(journal.status, q.status));
    return this.db
      .select()
      .from(journal)
      .where(conds.length ? and(...conds) : undefined)
      .orderBy(desc(journal.createdAt))
      .limit(q.limit ?? 50);
  }

  async getJournalEntry(idOrKey: string): Promise<JournalRow | null> {
    const isUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(idOrKey);
    const rows = await this.db
      .select()
      .from(journal)
      .where(isUuid ? or(eq(journal.id, idOrKey), eq(journal.idempotencyKey, idOrKey)) : eq(journal.idempotencyKey, idOrKey));
    return rows[0] ?? null;
  }

  // ---- mounts ------------------------------------------------------------------------------

  listMounts() {
    return listMounts(this.db);
  }
  getMount(id: string) {
    return getMount(this.db, id);
  }
  addLocalMount(input: AddLocalMount) {
    return addLocalMount(this.db, input);
  }
  setMountOptions(id: string, patch: { readOnly?: boolean; watch?: boolean; allowSpecialModes?: boolean }) {
    return setMountOptions(this.db, id, patch);
  }

  // ---- internals ---------------------------------------------------------------------------

  private sameMount(mountId: string, target: string | undefined, op: string): void {
    if (target !== undefined && target !== mountId) {
      throw new UnsupportedError(`${op} between mounts (${mountId} → ${target}) is not supported yet; copy then delete`);
    }
  }

  private async start(
    mountId: string,
    opts: MutationOptions,
    build: (base: {
      idempotencyKey: string;
      mountId: string;
      waitForLock?: boolean;
      lockTimeoutMs?: number;
      force?: boolean;
    }) => MutationRequest,
  ): Promise<MutationHandle> {
    const key = opts.idempotencyKey ?? randomUUID();
    if (!IDEMPOTENCY_KEY_PATTERN.test(key)) throw new InvalidRequestError(`idempotency key must match ${IDEMPOTENCY_KEY_PATTERN}`);
    // Fail fast on what the client can see; the workflow checks all of it again.
    const mount = await getMount(this.db, mountId);
    // Shown in the Web UI only: the workflow resolves the queue from the catalog itself.
    const queue = mount.kind === 'local' ? mountTaskQueue(this.config, mountId) : this.config.taskQueue;
    const req = build({
      idempotencyKey: key,
      mountId,
      waitForLock: opts.waitForLock,
      lockTimeoutMs: opts.lockTimeoutMs,
      force: opts.force,
    });
    if (mount.options.readOnly) throw new ReadOnlyMountError(mountId);
    const workflowId = mutationWorkflowId(mountId, req.op, key);
    const fingerprint = requestFingerprint(req);
    const handle = { workflowId, idempotencyKey: key, result: () => this.awaitResult(workflowId) };
    try {
      await this.temporal.workflow.start('mutationWorkflow', {
        taskQueue: this.config.taskQueue,
        workflowId,
        args: [req],
        memo: { [FINGERPRINT_MEMO_KEY]: fingerprint },
        // Never attach blindly (USE_EXISTING would hand a different request the first one's result):
        // a running workflow under this key is compared below. After it closed → a new run, whose
        // beginJournal answers from the journal or refuses a different request.
        workflowIdConflictPolicy: 'FAIL',
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        typedSearchAttributes: [
          { key: SEARCH_ATTRIBUTES.mount, value: mountId },
          { key: SEARCH_ATTRIBUTES.op, value: req.op },
          { key: SEARCH_ATTRIBUTES.path, value: searchablePath(req.path) },
          { key: SEARCH_ATTRIBUTES.key, value: key },
          { key: SEARCH_ATTRIBUTES.status, value: 'PENDING' },
        ],
        staticSummary: describeMutation(req),
        staticDetails: `idempotency key \`${key}\`, mount queue \`${queue}\``,
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      // The same request again (a retry, a second caller) attaches; anything else under the key is refused.
      if ((await this.runningFingerprint(workflowId)) !== fingerprint) throw new IdempotencyKeyReusedError(key);
    }
    return handle;
  }

  /**
   * Fingerprint of the request the workflow `workflowId` (its latest run) was started with: from
   * its memo, or — for a run started without one (an older client, a raw start) — recomputed from
   * the input in its first history event.
   */
  private async runningFingerprint(workflowId: string): Promise<string | null> {
    const described = await this.temporal.workflow.getHandle(workflowId).describe();
    const memo = described.memo?.[FINGERPRINT_MEMO_KEY];
    if (typeof memo === 'string') return memo;
    const { history } = await this.temporal.workflowService.getWorkflowExecutionHistory({
      namespace: this.temporal.options.namespace,
      execution: { workflowId, runId: described.runId },
      maximumPageSize: 1,
    });
    const payload = history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    if (!payload) return null;
    const started = this.temporal.options.loadedDataConverter.payloadConverter.fromPayload<MutationRequest>(payload);
    return started && typeof started === 'object' ? requestFingerprint(started) : null;
  }

  private async awaitResult(workflowId: string): Promise<MutationResult> {
    try {
      return (await this.temporal.workflow.getHandle(workflowId).result()) as MutationResult;
    } catch (err) {
      throw toFilestoreError(err);
    }
  }
}

/** Turns a workflow failure back into the typed FilestoreError the activities raised. */
export function toFilestoreError(err: unknown): unknown {
  if (err instanceof FilestoreError) return err;
  let cur: unknown = err instanceof WorkflowFailedError ? err.cause : err;
  while (cur) {
    if (cur instanceof ApplicationFailure) {
      const info = cur.details?.[0] as ErrorInfo | undefined;
      if (info && typeof info.code === 'string') return errorFromInfo(info);
    }
    cur = (cur as Error).cause;
  }
  return err;
}
