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
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client, type Connection } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { openCatalog, type Catalog } from '../../db/client';
import type { JournalQuery } from '../catalog/journal';
import type { ListPageOptions, NodePage } from '../catalog/listing';
import { addLocalMount, setMountOptions, type AddLocalMount } from '../catalog/mounts';
import type { JournalRow, NodeRow } from '../catalog/types';
import { loadConfig, type Config } from '../config';
import { errorFromInfo, FilestoreError, IdempotencyKeyReusedError, type ErrorInfo } from '../errors';
import type { MutationRequest, MutationResult } from '../mutations';
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
  put(mountId: string, filePath: string, source: PutSource, opts: PutOptions = {}): Promise<MutationHandle> {
    return this.starter.put(mountId, filePath, source, opts);
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
