/**
 * How a mutation is asked for, whatever carries it to Temporal: the request each verb builds, the
 * checks a client can make before starting anything (inline size, the file source, known and
 * writable mounts, the idempotency key), and the start spec — workflow id, queue, memo, search
 * attributes, summary — every run of a mutation is started with. Free of the Temporal SDK:
 * FilestoreClient starts specs over gRPC (@temporalio/client), the CLI over Temporal's HTTP API
 * when one is configured (src/client/temporal-http.ts), and both get the same requests, ids and
 * refusals from here.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Db } from '../../db/client';
import { getMount } from '../catalog/mounts';
import { mountTaskQueue, type Config } from '../config';
import { InvalidRequestError, PayloadTooLargeError, ReadOnlyMountError } from '../errors';
import { checkWriteSource } from '../executors/local/local-source';
import {
  crossMountTarget,
  describeMutation,
  IDEMPOTENCY_KEY_PATTERN,
  mutationWorkflowId,
  startSearchAttributes,
  type MutationRequest,
  type MutationResult,
} from '../mutations';
import { normalizeMountPath } from '../paths';
import { FINGERPRINT_MEMO_KEY, requestFingerprint } from '../request-fingerprint';

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
  | { content: Buffer | string }
  /** An object of the S3 upload area (FILESTORE_UPLOAD_S3) by name, as an upload store received it; needs expectedSha256. */
  | { upload: string };

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

/** Everything a run of `mutationWorkflow` is started with. */
export interface StartSpec {
  workflowId: string;
  /** The general task queue (the workflow resolves the mount's own queue from the catalog). */
  taskQueue: string;
  request: MutationRequest;
  /** requestFingerprint(request), kept in the run's memo under FINGERPRINT_MEMO_KEY. */
  fingerprint: string;
  memo: Record<string, string>;
  /** Keyword search attributes by name. */
  searchAttributes: Record<string, string>;
  /** The Web UI's summary and details of the run. */
  summary: string;
  details: string;
}

/**
 * What carries a start spec to Temporal. `start` never attaches blindly: a run already going under
 * the id is joined only when it carries the same request (its fingerprint), and anything else under
 * the key is refused with IdempotencyKeyReusedError.
 */
export interface StartTransport {
  start(spec: StartSpec): Promise<void>;
  handleOf(workflowId: string): MutationHandle;
}

/** The mutating verbs, over one transport (see the header). */
export class MutationStarter {
  constructor(
    private readonly config: Config,
    private readonly db: Db,
    private readonly transport: StartTransport,
  ) {}

  /** Writes a file (from a host file or small inline content). */
  async put(mountId: string, filePath: string, source: PutSource, opts: PutOptions = {}): Promise<MutationHandle> {
    let ref: Extract<MutationRequest, { op: 'write' }>['source'];
    if ('upload' in source) {
      if (opts.expectedSha256 === undefined) throw new InvalidRequestError('an upload-area source needs expectedSha256');
      ref = { kind: 'upload', name: source.upload };
    } else if ('content' in source) {
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

  /** See FilestoreClient.move. */
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

  /** See FilestoreClient.copy. */
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

  /** See FilestoreClient.reconcile. */
  async reconcile(mountId: string, target: string, opts: MutationOptions & { recursive?: boolean } = {}): Promise<MutationHandle> {
    // The mount root reconciles the whole mount (always recursive: the root has no node of its own).
    const p = normalizeMountPath(target, { allowRoot: true });
    return this.start(mountId, opts, (base) => ({ ...base, op: 'reconcile', path: p, recursive: p === '' ? true : opts.recursive }));
  }

  /** Handle of a mutation started earlier (by workflow id). */
  handleOf(workflowId: string): MutationHandle {
    return this.transport.handleOf(workflowId);
  }

  /**
   * What a write of `filePath` on `mountId` would be refused for before it starts — a bad path,
   * an unknown or a read-only mount — checked before a caller spends an upload on it.
   */
  async precheck(mountId: string, filePath: string): Promise<void> {
    normalizeMountPath(filePath);
    const mount = await getMount(this.db, mountId);
    if (mount.options.readOnly) throw new ReadOnlyMountError(mountId);
  }

  private async start(
    mountId: string,
    opts: MutationOptions,
    build: (base: { idempotencyKey: string; mountId: string; waitForLock?: boolean; lockTimeoutMs?: number; force?: boolean }) => MutationRequest,
  ): Promise<MutationHandle> {
    const key = opts.idempotencyKey ?? randomUUID();
    if (!IDEMPOTENCY_KEY_PATTERN.test(key)) throw new InvalidRequestError(`idempotency key must match ${IDEMPOTENCY_KEY_PATTERN}`);
    // Fail fast on what the client can see; the workflow checks all of it again.
    const mount = await getMount(this.db, mountId);
    // Shown in the Web UI only: the workflow resolves the queue from the catalog itself.
    const queue = mount.kind === 'local' ? mountTaskQueue(this.config, mountId) : this.config.taskQueue;
    const req = build({ idempotencyKey: key, mountId, waitForLock: opts.waitForLock, lockTimeoutMs: opts.lockTimeoutMs, force: opts.force });
    // A cross-mount copy only reads its source; everything else writes the source's mount, and a
    // copy or move writes its target's.
    const targetMountId = crossMountTarget(req);
    // A reconcile only reads the backend (it changes the catalog): allowed on a read-only mount.
    if (mount.options.readOnly && !(targetMountId !== null && req.op === 'copy') && req.op !== 'reconcile') throw new ReadOnlyMountError(mountId);
    if (targetMountId !== null) {
      const target = await getMount(this.db, targetMountId);
      if (target.options.readOnly) throw new ReadOnlyMountError(targetMountId);
    }
    const workflowId = mutationWorkflowId(mountId, req.op, key);
    const fingerprint = requestFingerprint(req);
    await this.transport.start({
      workflowId,
      taskQueue: this.config.taskQueue,
      request: req,
      fingerprint,
      memo: { [FINGERPRINT_MEMO_KEY]: fingerprint },
      searchAttributes: startSearchAttributes(req),
      summary: describeMutation(req),
      details: `idempotency key \`${key}\`, mount queue \`${queue}\``,
    });
    return this.transport.handleOf(workflowId);
  }
}

/** The request field naming another mount as a copy/move target; none for the same mount. */
function crossMountField(mountId: string, targetMountId: string | undefined): { targetMountId?: string } {
  return targetMountId !== undefined && targetMountId !== mountId ? { targetMountId } : {};
}
