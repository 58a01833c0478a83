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
import { openCatalog, type Catalog } from '../../db/client';
import type { JournalQuery } from '../catalog/journal';
import type { ListPageOptions, NodePage } from '../catalog/listing';
import { getMount, addLocalMount, setMountOptions, type AddLocalMount } from '../catalog/mounts';
import type { JournalRow, NodeRow } from '../catalog/types';
import { loadConfig, mountTaskQueue, type Config } from '../config';
import { checkWriteSource } from '../executors/local/local-source';
import {
  errorFromInfo,
  FilestoreError,
  IdempotencyKeyReusedError,
  InvalidRequestError,
  PayloadTooLargeError,
  ReadOnlyMountError,
  type ErrorInfo,
} from '../errors';
import {
  crossMountTarget,
  describeMutation,
  IDEMPOTENCY_KEY_PATTERN,
  mutationWorkflowId,
  SEARCH_ATTRIBUTES,
  searchablePath,
  type MutationRequest,
  type MutationResult,
} from '../mutations';
import { normalizeMountPath } from '../paths';
import { CatalogReader } from './catalog-reader';
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
  /**
   * Where the running mutation's backend step stands, from its pending activity's heartbeat
   * details (bytes done, and an S3 upload's checkpoint); null when no step reports progress now.
   */
  progress(): Promise<MutationProgress | null>;
}

/** Progress of a running mutation's backend step (see {@link MutationHandle.progress}). */
export interface MutationProgress {
  /** The activity reporting it (`executeMutation`, …). */
  activity: string;
  bytes: number;
  checkpoint?: Record<string, unknown>;
}

export type { JournalQuery };

export class FilestoreClient {
  private constructor(
    readonly config: Config,
    readonly temporal: Client,
    private readonly connection: Connection | null,
    private readonly catalog: Catalog,
  ) {
    this.reader = new CatalogReader(catalog.db);
  }

  /** The catalog reads, on this client's pool. */
  private readonly reader: CatalogReader;

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

  /**
   * Moves (renames) a file or directory within a mount, or — with `targetMountId` — a file to
   * another mount (local ↔ local on one host, local ↔ S3, S3 ↔ S3): the bytes are streamed to the
   * target, verified there, and only then is the source deleted; all as one mutation, committed on
   * both mounts at once or rolled back on both.
   *
   * ```ts
   * await (await fs.move('docs', 'reports/q3.pdf', 'archive/2026/q3.pdf', { targetMountId: 'archive-s3' })).result();
   * ```
   */
  async move(
    mountId: string,
    from: string,
    to: string,
    opts: MutationOptions & { overwrite?: boolean; createParents?: boolean; targetMountId?: string } = {},
  ): Promise<MutationHandle> {
    return this.start(mountId, opts, (base) => ({
      ...base,
      op: 'move',
      path: normalizeMountPath(from),
      targetPath: normalizeMountPath(to),
      ...crossMountField(mountId, opts.targetMountId),
      overwrite: opts.overwrite,
      createParents: opts.createParents,
    }));
  }

  /**
   * Copies a file, or a directory with `recursive`, within a mount — or, with `targetMountId`, a
   * file to another mount (directories across mounts are refused with UNSUPPORTED for now). The
   * source of a cross-mount copy may be a read-only mount: it is only read.
   */
  async copy(
    mountId: string,
    from: string,
    to: string,
    opts: MutationOptions & { overwrite?: boolean; recursive?: boolean; createParents?: boolean; targetMountId?: string } = {},
  ): Promise<MutationHandle> {
    return this.start(mountId, opts, (base) => ({
      ...base,
      op: 'copy',
      path: normalizeMountPath(from),
      targetPath: normalizeMountPath(to),
      ...crossMountField(mountId, opts.targetMountId),
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
    return { workflowId, idempotencyKey: key, result: () => this.awaitResult(workflowId), progress: () => this.progressOf(workflowId) };
  }

  /** Heartbeat details of the workflow's pending activities that report bytes. */
  private async progressOf(workflowId: string): Promise<MutationProgress | null> {
    const described = await this.temporal.workflow.getHandle(workflowId).describe();
    for (const pending of described.raw.pendingActivities ?? []) {
      const payload = pending.heartbeatDetails?.payloads?.[0];
      if (!payload) continue;
      const details = (await this.temporal.options.loadedDataConverter.payloadConverter.fromPayload(payload)) as { bytes?: unknown; checkpoint?: Record<string, unknown> } | null;
      if (typeof details?.bytes !== 'number') continue;
      return { activity: pending.activityType?.name ?? 'activity', bytes: details.bytes, ...(details.checkpoint ? { checkpoint: details.checkpoint } : {}) };
    }
    return null;
  }

  // ---- catalog reads (CatalogReader's, on this client's pool) ----------------------------

  getNode(mountId: string, nodePath: string): Promise<NodeRow | null> {
    return this.reader.getNode(mountId, nodePath);
  }

  /** See {@link CatalogReader.listNodes}. */
  listNodes(mountId: string, dirPath: string, opts: { recursive?: boolean; includeDeleted?: boolean; limit?: number } = {}): Promise<NodeRow[]> {
    return this.reader.listNodes(mountId, dirPath, opts);
  }

  /** See {@link CatalogReader.listPage}. */
  listPage(mountId: string, dirPath: string, opts: ListPageOptions = {}): Promise<NodePage> {
    return this.reader.listPage(mountId, dirPath, opts);
  }

  listJournal(q: JournalQuery = {}): Promise<JournalRow[]> {
    return this.reader.listJournal(q);
  }

  getJournalEntry(idOrKey: string): Promise<JournalRow | null> {
    return this.reader.getJournalEntry(idOrKey);
  }

  // ---- mounts ------------------------------------------------------------------------------

  listMounts() {
    return this.reader.listMounts();
  }
  getMount(id: string) {
    return this.reader.getMount(id);
  }
  addLocalMount(input: AddLocalMount) {
    return addLocalMount(this.db, input);
  }
  setMountOptions(id: string, patch: { readOnly?: boolean; watch?: boolean; allowSpecialModes?: boolean }) {
    return setMountOptions(this.db, id, patch);
  }

  // ---- internals ---------------------------------------------------------------------------

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
    // A cross-mount copy only reads its source; everything else writes the source's mount, and a
    // copy or move writes its target's.
    const targetMountId = crossMountTarget(req);
    if (mount.options.readOnly && !(targetMountId !== null && req.op === 'copy')) throw new ReadOnlyMountError(mountId);
    if (targetMountId !== null) {
      const target = await getMount(this.db, targetMountId);
      if (target.options.readOnly) throw new ReadOnlyMountError(targetMountId);
    }
    const workflowId = mutationWorkflowId(mountId, req.op, key);
    const fingerprint = requestFingerprint(req);
    const handle = this.handleOf(workflowId);
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

/** The request field naming another mount as a copy/move target; none for the same mount. */
function crossMountField(mountId: string, targetMountId: string | undefined): { targetMountId?: string } {
  return targetMountId !== undefined && targetMountId !== mountId ? { targetMountId } : {};
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
