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
import { Readable } from 'node:stream';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client, type Connection } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { openCatalog, type Catalog } from '../../db/client';
import type { JournalQuery } from '../catalog/journal';
import type { ListPageOptions, NodePage } from '../catalog/listing';
import { addLocalMount, setMountOptions, type AddLocalMount } from '../catalog/mounts';
import type { JournalRow, NodeRow } from '../catalog/types';
import { loadConfig, type Config } from '../config';
import { errorFromInfo, FilestoreError, IdempotencyKeyReusedError, InvalidRequestError, type ErrorInfo } from '../errors';
import { openCurrentFile, type FileReaderDeps, type FileVersion } from '../operations/read-file';
import type { UploadStore } from '../operations/upload-area';
import { mutationWorkflowId, type MutationRequest, type MutationResult } from '../mutations';
import { SEARCH_ATTRIBUTES } from '../search-attributes';
import { CatalogReader } from './catalog-reader';
import { MutationStarter, type MutationHandle, type MutationOptions, type MutationProgress, type PutOptions, type PutSource, type StartSpec } from './mutation-starter';
import { FINGERPRINT_MEMO_KEY, requestFingerprint } from '../request-fingerprint';
import { connectTemporal } from '../temporal';

export type { MutationHandle, MutationOptions, MutationProgress, PutOptions, PutSource } from './mutation-starter';

export type { JournalQuery };

export class FilestoreClient {
  private constructor(
    readonly config: Config,
    readonly temporal: Client,
    private readonly connection: Connection | null,
    private readonly catalog: Catalog,
  ) {
    this.reader = new CatalogReader(catalog.db);
    this.starter = new MutationStarter(config, catalog.db, { start: (spec) => this.startRun(spec), handleOf: (id) => this.handleOf(id) });
  }

  /** Builds and checks each request, then starts it through {@link FilestoreClient.startRun}. */
  private readonly starter: MutationStarter;

  /** The catalog reads, on this client's pool. */
  private readonly reader: CatalogReader;

  /**
   * Connects to Temporal and the catalog with `config` (default: from the environment).
   * @param opts.catalogPoolSize - Postgres connections of the catalog pool. @defaultValue 4
   */
  static async connect(config: Config = loadConfig(), opts: { catalogPoolSize?: number } = {}): Promise<FilestoreClient> {
    const catalog = openCatalog(config.databaseUrl, { max: opts.catalogPoolSize ?? 4 });
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

  /**
   * Writes a file: from a file on the worker's host (`{ file }`), from content of any size
   * (`{ content }`: a Buffer or string) or from a stream of any size (`{ stream }`: a Node
   * Readable or any async iterable of bytes). Content up to FILESTORE_INLINE_MAX_BYTES travels in
   * the request; anything larger, and every stream, is first streamed into the upload area
   * (FILESTORE_UPLOAD_DIR, which the workers must see at the same path) and read from there by
   * the worker — never carried through Temporal's history. The upload file is removed once the
   * run has ended.
   *
   * ```ts
   * await (await fs.put('docs', 'big.iso', { stream: fs.createReadStream('/data/big.iso') })).result();
   * ```
   */
  async put(mountId: string, filePath: string, source: PutSource | { stream: Readable | AsyncIterable<Uint8Array> }, opts: PutOptions = {}): Promise<MutationHandle> {
    if ('file' in source || 'upload' in source) return this.starter.put(mountId, filePath, source, opts);
    if ('content' in source && Buffer.byteLength(source.content) <= this.config.inlineMaxBytes) return this.starter.put(mountId, filePath, source, opts);
    const body = 'content' in source ? Readable.from([Buffer.from(source.content)]) : source.stream instanceof Readable ? source.stream : Readable.from(source.stream);
    // Refused before any byte is stored: a bad path, an unknown or read-only mount.
    await this.starter.precheck(mountId, filePath);
    const idempotencyKey = opts.idempotencyKey ?? randomUUID();
    // Loaded on first use: the S3 area brings the AWS SDK, which the CLI's bundle keeps out.
    const uploads = (this.uploadStore ??= (await import('../operations/upload-store')).uploadStoreOf(this.config));
    const received = await uploads.receive(body, { workflowId: mutationWorkflowId(mountId, 'write', idempotencyKey), maxBytes: this.config.maxFileBytes });
    if (opts.expectedSha256 !== undefined && opts.expectedSha256.toLowerCase() !== received.sha256) {
      await uploads.releaseUnlessRunning(received.ref, mutationWorkflowId(mountId, 'write', idempotencyKey), (id) => this.isRunning(id));
      throw new InvalidRequestError(`content hashes to ${received.sha256}, not the expected ${opts.expectedSha256}`);
    }
    let handle: MutationHandle;
    try {
      handle = await this.starter.put(mountId, filePath, received.source, { ...opts, idempotencyKey, expectedSha256: received.sha256 });
    } catch (err) {
      // The same key and content name the same file: a run of an earlier, identical call may read it.
      await uploads.releaseUnlessRunning(received.ref, mutationWorkflowId(mountId, 'write', idempotencyKey), (id) => this.isRunning(id));
      throw err;
    }
    // Removed once the run ended (its result or its typed failure came back); a crash leaves it to the API's sweep.
    return {
      ...handle,
      result: () =>
        handle.result().then(
          async (r) => (await uploads.release(received.ref), r),
          async (err: unknown) => {
            if (err instanceof FilestoreError) await uploads.release(received.ref);
            throw err;
          },
        ),
    };
  }

  /**
   * Opens a file of a mount for reading, through its backend (`range.end` inclusive). The stream
   * is the file as the backend has it now; `version.etag` says whether that is the catalog's
   * committed version (a strong `"<sha256>"`) or not (weak).
   */
  async openRead(mountId: string, filePath: string, opts: { range?: { start: number; end?: number }; signal?: AbortSignal } = {}): Promise<{ version: FileVersion; stream: Readable }> {
    const deps = await this.readerDeps();
    const { version, stream } = await openCurrentFile(
      deps,
      mountId,
      filePath,
      (v) => (opts.range ? { range: { start: opts.range.start, end: Math.min(opts.range.end ?? v.meta.size - 1, v.meta.size - 1) } } : {}),
      opts.signal,
    );
    return { version, stream: stream! };
  }

  /** A whole file's content (for files that fit in memory; stream larger ones with {@link FilestoreClient.openRead}). */
  async get(mountId: string, filePath: string): Promise<Buffer> {
    const { stream } = await this.openRead(mountId, filePath);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  private fileReader: FileReaderDeps | null = null;

  /** The upload area of stream puts (FILESTORE_UPLOAD_S3, else FILESTORE_UPLOAD_DIR), made on first use. */
  private uploadStore: UploadStore | null = null;

  /** The executors, loaded on first read only (they bring the backends' SDKs). */
  private async readerDeps(): Promise<FileReaderDeps> {
    if (!this.fileReader) {
      const [{ ExecutorRegistry }, { s3OptionsOf }] = await Promise.all([import('../executor-registry'), import('../executors/index')]);
      this.fileReader = { db: this.db, executors: new ExecutorRegistry(this.db, {}, s3OptionsOf(this.config)) };
    }
    return this.fileReader;
  }

  /** Creates a directory (and missing parents unless `parents: false`). */
  mkdir(mountId: string, dirPath: string, opts: MutationOptions & { parents?: boolean } = {}): Promise<MutationHandle> {
    return this.starter.mkdir(mountId, dirPath, opts);
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
  move(mountId: string, from: string, to: string, opts: MutationOptions & { overwrite?: boolean; createParents?: boolean; targetMountId?: string } = {}): Promise<MutationHandle> {
    return this.starter.move(mountId, from, to, opts);
  }

  /**
   * Copies a file, or a directory with `recursive`, within a mount — or, with `targetMountId`, a
   * file to another mount (directories across mounts are refused with UNSUPPORTED for now). The
   * source of a cross-mount copy may be a read-only mount: it is only read.
   */
  copy(
    mountId: string,
    from: string,
    to: string,
    opts: MutationOptions & { overwrite?: boolean; recursive?: boolean; createParents?: boolean; targetMountId?: string } = {},
  ): Promise<MutationHandle> {
    return this.starter.copy(mountId, from, to, opts);
  }

  /** Deletes a file, or a directory tree with `recursive`. */
  remove(mountId: string, target: string, opts: MutationOptions & { recursive?: boolean } = {}): Promise<MutationHandle> {
    return this.starter.remove(mountId, target, opts);
  }

  /**
   * Accepts what is on the backend now as the catalog's truth for a path — a file, a directory's
   * own row, or with `recursive` a whole subtree: metadata and sha256 re-captured (read from the
   * backend where it does not store the hash), a new node version and snapshot for what changed or
   * appeared, DELETED for what is gone, the path's open drift events resolved and INCONSISTENT
   * cleared. The backend is never changed, so read-only mounts allow it, and it is the way out of
   * `INCONSISTENT_NODE`. A path neither the backend nor the catalog knows fails with NOT_FOUND; a
   * subtree over FILESTORE_MAX_TREE_ENTRIES with TREE_TOO_LARGE. Journaled like any mutation
   * (op `reconcile`); the same idempotency key answers with the same entry.
   *
   * ```ts
   * // docs/report.pdf was edited behind Filestore's back and is INCONSISTENT:
   * const result = await (await fs.reconcile('docs', 'docs/report.pdf')).result();
   * console.log(result.node?.sha256, result.node?.version);
   * // a whole directory, files added, changed and removed out of band:
   * await (await fs.reconcile('docs', 'imports', { recursive: true })).result();
   * ```
   */
  reconcile(mountId: string, path: string, opts: MutationOptions & { recursive?: boolean } = {}): Promise<MutationHandle> {
    return this.starter.reconcile(mountId, path, opts);
  }

  /**
   * Whether a run of `workflowId` is going now. Unknown ids are not; when Temporal cannot be asked
   * the answer is yes — callers use it to decide whether a run may still need something.
   */
  async isRunning(workflowId: string): Promise<boolean> {
    try {
      return (await this.temporal.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
    } catch (err) {
      return (err as Error).name !== 'WorkflowNotFoundError';
    }
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

  /**
   * Starts a run over gRPC, or — a run already going under the id — joins it when it carries the
   * same request and refuses anything else (see StartTransport).
   */
  async startRun(spec: StartSpec): Promise<void> {
    try {
      await this.temporal.workflow.start('mutationWorkflow', {
        taskQueue: spec.taskQueue,
        workflowId: spec.workflowId,
        args: [spec.request],
        memo: spec.memo,
        // Never attach blindly (USE_EXISTING would hand a different request the first one's result):
        // a running workflow under this key is compared below. After it closed → a new run, whose
        // beginJournal answers from the journal or refuses a different request.
        workflowIdConflictPolicy: 'FAIL',
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        typedSearchAttributes: Object.values(SEARCH_ATTRIBUTES).map((key) => ({ key, value: spec.searchAttributes[key.name] })),
        staticSummary: spec.summary,
        staticDetails: spec.details,
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      // The same request again (a retry, a second caller) attaches; anything else under the key is refused.
      if ((await this.runningFingerprint(spec.workflowId)) !== spec.fingerprint) throw new IdempotencyKeyReusedError(spec.request.idempotencyKey);
    }
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
